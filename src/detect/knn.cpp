#include "asdcap/knn.hpp"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <utility>

#include "asdcap/error.hpp"

namespace asdcap {
namespace {

// Rows of `x` minus `center`, as float for sgemm, and their squared norms (double).
void center_rows(const float* x, int64_t n, int64_t dim, const std::vector<double>& center, std::vector<float>* out,
                 std::vector<double>* norms2) {
  out->resize(static_cast<size_t>(n * dim));
  norms2->assign(static_cast<size_t>(n), 0.0);
  for (int64_t i = 0; i < n; ++i) {
    double s = 0;
    for (int64_t d = 0; d < dim; ++d) {
      float v = static_cast<float>(x[i * dim + d] - center[d]);
      (*out)[i * dim + d] = v;
      s += static_cast<double>(v) * v;
    }
    (*norms2)[i] = s;
  }
}

double exact_d2(const float* a, const float* b, int64_t dim) {
  double s = 0;
  for (int64_t d = 0; d < dim; ++d) {
    double t = static_cast<double>(a[d]) - static_cast<double>(b[d]);
    s += t * t;
  }
  return s;
}

// sum_d |a_d - b_d|^p in double.
double exact_minkowski_p(const float* a, const float* b, int64_t dim, int order) {
  double s = 0;
  for (int64_t d = 0; d < dim; ++d) {
    const double t = std::fabs(static_cast<double>(a[d]) - static_cast<double>(b[d]));
    double tp = t;
    for (int i = 1; i < order; ++i) tp *= t;
    s += tp;
  }
  return s;
}

// Query qi's neighbours: the res.k smallest of `cand` (sums of |differences|^order with their
// reference index; ties: the lower index), their distances (the order-th roots) and their mean.
void keep_nearest(std::vector<std::pair<double, int64_t>>& cand, int64_t qi, int order, KnnResult& res) {
  const int kk = res.k;
  std::partial_sort(cand.begin(), cand.begin() + kk, cand.end());
  double sum = 0;
  for (int t = 0; t < kk; ++t) {
    const double dist = order == 2 ? std::sqrt(std::max(0.0, cand[t].first)) : std::pow(cand[t].first, 1.0 / order);
    res.index[qi * kk + t] = cand[t].second;
    res.distance[qi * kk + t] = dist;
    sum += dist;
  }
  res.mean_distance[qi] = sum / kk;
}

// Every pair in double, for Minkowski orders other than 2 (res.k, index and distance sized).
void knn_exhaustive(const float* queries, int64_t nq, const float* refs, int64_t nr, int64_t dim, bool leave_one_out,
                    int order, KnnResult& res) {
  std::vector<std::pair<double, int64_t>> cand;
  for (int64_t qi = 0; qi < nq; ++qi) {
    cand.clear();
    for (int64_t j = 0; j < nr; ++j)
      if (!(leave_one_out && j == qi))
        cand.emplace_back(exact_minkowski_p(queries + qi * dim, refs + j * dim, dim, order), j);
    keep_nearest(cand, qi, order, res);
  }
}

}  // namespace

KnnResult knn_search(const float* queries, int64_t nq, const float* refs, int64_t nr, int64_t dim, int k,
                     bool leave_one_out, int order) {
  if (nq < 0 || nr < 0 || dim <= 0 || k < 1) throw InvalidArgument("knn_search: bad sizes");
  if (order < 1 || order > 16)
    throw InvalidArgument("knn_search: the Minkowski order must be 1-16, got " + std::to_string(order));
  if (leave_one_out && nq != nr) throw InvalidArgument("knn_search: leave-one-out needs queries == references");
  KnnResult res;
  int64_t available = nr - (leave_one_out ? 1 : 0);
  res.k = static_cast<int>(std::max<int64_t>(0, std::min<int64_t>(k, available)));
  res.mean_distance.assign(static_cast<size_t>(nq), std::numeric_limits<double>::quiet_NaN());
  if (res.k == 0 || nq == 0) return res;
  const int kk = res.k;
  res.index.resize(static_cast<size_t>(nq * kk));
  res.distance.resize(static_cast<size_t>(nq * kk));
  if (order != 2) {
    knn_exhaustive(queries, nq, refs, nr, dim, leave_one_out, order, res);
    return res;
  }

  // Distances are translation invariant: centring on the references' mean keeps the norms (and
  // with them the rounding error of ||q||^2 + ||r||^2 - 2 q.r) as small as the data's spread.
  std::vector<double> center(static_cast<size_t>(dim), 0.0);
  for (int64_t j = 0; j < nr; ++j)
    for (int64_t d = 0; d < dim; ++d) center[d] += refs[j * dim + d];
  for (auto& c : center) c /= static_cast<double>(nr);
  std::vector<float> qc, rc;
  std::vector<double> qn2, rn2;
  center_rows(queries, nq, dim, center, &qc, &qn2);
  center_rows(refs, nr, dim, center, &rc, &rn2);
  std::vector<float> rn2f(rn2.begin(), rn2.end());
  double max_rn = std::sqrt(*std::max_element(rn2.begin(), rn2.end()));

  // Rounding-error bound of the float expression for any pair (q, r): each of the dot product and
  // the two norms is off by at most gamma_dim * (norm product) (Higham, any summation order),
  // plus the final additions, so |err| <= c * (|q| + |r|)^2 with a generous c.
  const double unit = std::ldexp(1.0, -24);
  const double err_coef = 2.0 * (static_cast<double>(dim) + 8) * unit * 1.01;

  const int64_t block_q = std::max<int64_t>(1, std::min<int64_t>(256, (int64_t{8} << 20) / std::max<int64_t>(nr, 1)));
  std::vector<float> dots(static_cast<size_t>(block_q * nr)), best;
  std::vector<std::pair<double, int64_t>> cand;
  for (int64_t q0 = 0; q0 < nq; q0 += block_q) {
    const int64_t bq = std::min(block_q, nq - q0);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(bq), static_cast<int>(nr),
                static_cast<int>(dim), 1.0f, qc.data() + q0 * dim, static_cast<int>(dim), rc.data(),
                static_cast<int>(dim), 0.0f, dots.data(), static_cast<int>(nr));
    // The selection is a few percent of the product; it stays on this thread so that no idle
    // OpenMP team spins against OpenBLAS's threads between blocks.
    for (int64_t bi = 0; bi < bq; ++bi) {
      const int64_t qi = q0 + bi;
      float* row = dots.data() + bi * nr;  // becomes approximate squared distances
      const float qn = static_cast<float>(qn2[qi]);
      // One pass: approximate squared distances and the k smallest of them (sorted, ascending).
      best.assign(static_cast<size_t>(kk), std::numeric_limits<float>::infinity());
      for (int64_t j = 0; j < nr; ++j) {
        float v = qn + rn2f[j] - 2.0f * row[j];
        if (leave_one_out && j == qi) v = std::numeric_limits<float>::infinity();
        row[j] = v;
        if (v < best[kk - 1]) {
          int t = kk - 1;
          for (; t > 0 && best[t - 1] > v; --t) best[t] = best[t - 1];
          best[t] = v;
        }
      }
      // Every true k-nearest lies within twice the error bound of the k-th smallest approximation.
      const double kth = best[kk - 1];
      const double bound = err_coef * std::pow(std::sqrt(qn2[qi]) + max_rn, 2);
      const double limit = kth + 2 * bound;
      cand.clear();
      for (int64_t j = 0; j < nr; ++j) {
        if (leave_one_out && j == qi) continue;
        if (row[j] <= limit) cand.emplace_back(exact_d2(queries + qi * dim, refs + j * dim, dim), j);
      }
      keep_nearest(cand, qi, 2, res);
    }
  }
  return res;
}

}  // namespace asdcap
