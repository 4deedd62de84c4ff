// Similarities between embeddings, as msclap's compute_similarity.
#include <cmath>

#include "asdcap/clap.hpp"
#include "asdcap/error.hpp"

namespace asdcap {

namespace {
std::vector<double> inverse_norms(const float* x, int64_t n, int64_t dim) {
  std::vector<double> inv(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    double s = 0;
    for (int64_t d = 0; d < dim; ++d) s += static_cast<double>(x[i * dim + d]) * x[i * dim + d];
    inv[static_cast<size_t>(i)] = s > 0 ? 1.0 / std::sqrt(s) : 0.0;
  }
  return inv;
}
}  // namespace

std::vector<double> cosine_matrix_f64(const float* a, int64_t na, const float* b, int64_t nb, int64_t dim) {
  if (na < 0 || nb < 0 || dim <= 0) throw InvalidArgument("cosine_matrix: bad sizes");
  const auto ia = inverse_norms(a, na, dim), ib = inverse_norms(b, nb, dim);
  std::vector<double> out(static_cast<size_t>(na * nb));
  for (int64_t i = 0; i < na; ++i)
    for (int64_t j = 0; j < nb; ++j) {
      double s = 0;
      for (int64_t d = 0; d < dim; ++d) s += static_cast<double>(a[i * dim + d]) * b[j * dim + d];
      out[static_cast<size_t>(i * nb + j)] = s * ia[static_cast<size_t>(i)] * ib[static_cast<size_t>(j)];
    }
  return out;
}

std::vector<float> cosine_matrix(const float* a, int64_t na, const float* b, int64_t nb, int64_t dim) {
  const std::vector<double> c = cosine_matrix_f64(a, na, b, nb, dim);
  return std::vector<float>(c.begin(), c.end());
}

std::vector<float> scaled_logits(const float* a, int64_t na, const float* b, int64_t nb, int64_t dim,
                                 float logit_scale) {
  auto out = cosine_matrix(a, na, b, nb, dim);
  const double scale = std::exp(static_cast<double>(logit_scale));
  for (float& v : out) v = static_cast<float>(scale * v);
  return out;
}

std::vector<float> softmax_rows_copy(const std::vector<float>& logits, int64_t rows, int64_t cols) {
  if (static_cast<int64_t>(logits.size()) != rows * cols) throw InvalidArgument("softmax_rows_copy: bad sizes");
  std::vector<float> out(logits.size());
  for (int64_t r = 0; r < rows; ++r) {
    const float* x = logits.data() + r * cols;
    double mx = -INFINITY, sum = 0;
    for (int64_t j = 0; j < cols; ++j) mx = std::max(mx, static_cast<double>(x[j]));
    for (int64_t j = 0; j < cols; ++j) sum += std::exp(x[j] - mx);
    for (int64_t j = 0; j < cols; ++j)
      out[static_cast<size_t>(r * cols + j)] = static_cast<float>(std::exp(x[j] - mx) / sum);
  }
  return out;
}

}  // namespace asdcap
