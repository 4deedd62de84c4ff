#include <cblas.h>
#include <sys/mman.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "asdcap/nn.hpp"
#include "core/parallel.hpp"
#include "fastmath.hpp"
#include "libm_vector.hpp"
#include "ops_avx512.hpp"

namespace asdcap::nn {

namespace {

// Below this many multiply-adds a GEMM is not worth splitting across threads.
constexpr int64_t kParallelGemmMacs = int64_t{1} << 20;
// Row split granularity of parallel GEMMs (see gemm_parallel).
constexpr int64_t kRowQuantum = 48;
// Element-wise work below this size stays on one thread.
constexpr int64_t kParallelElements = int64_t{1} << 15;

// y[m, ncols] (leading dimension ldy) = x[m, k] . W + b, where W is w[ncols, k] (ld k) when
// w_is_nk, else w[k, ncols] (leading dimension ldw).
void gemm_block(const float* x, int64_t m, int64_t k, const float* w, bool w_is_nk, int64_t ldw, int64_t ncols,
                const float* b, float* y, int64_t ldy, bool accumulate) {
  for (int64_t i = 0; i < m; ++i) {
    float* row = y + i * ldy;
    if (b) {
      if (accumulate)
        for (int64_t j = 0; j < ncols; ++j) row[j] += b[j];
      else
        std::memcpy(row, b, static_cast<size_t>(ncols) * sizeof(float));
    } else if (!accumulate) {
      std::memset(row, 0, static_cast<size_t>(ncols) * sizeof(float));
    }
  }
  if (m == 0 || ncols == 0) return;
  cblas_sgemm(CblasRowMajor, CblasNoTrans, w_is_nk ? CblasTrans : CblasNoTrans, static_cast<int>(m),
              static_cast<int>(ncols), static_cast<int>(k), 1.0f, x, static_cast<int>(k), w, static_cast<int>(ldw),
              1.0f, y, static_cast<int>(ldy));
}

// OpenBLAS runs on the calling thread: asdcap splits GEMMs itself (and runs them serially inside its
// own parallel regions). Set once, before the library's first GEMM.
void ensure_blas_single_threaded() {
  static const bool done = [] {
    openblas_set_num_threads(1);
    return true;
  }();
  (void)done;
}

// Splits a GEMM over threads by rows, at multiples of kRowQuantum. OpenBLAS's kernels handle rows in
// register tiles (24 rows for its Zen sgemm kernel, 16 on others) and round a row differently when it
// falls in a partial tile; splitting at tile-aligned rows keeps every row in the same tile as an
// unsplit call, so the result does not depend on the thread count (test_nn_kernels checks the bits).
// Splitting by output columns would change results.
void gemm_parallel(int threads, const float* x, int64_t m, int64_t k, const float* w, bool w_is_nk, int64_t n,
                   const float* b, float* y, bool accumulate) {
  ensure_blas_single_threaded();
  const int t = resolve_threads(threads);
  const int64_t ldw = w_is_nk ? k : n;
  if (t <= 1 || in_parallel_region() || m * n * k < kParallelGemmMacs || m < 2 * kRowQuantum) {
    gemm_block(x, m, k, w, w_is_nk, ldw, n, b, y, n, accumulate);
    return;
  }
  // Thread `part` the part-th share of `step` rows.
  const int64_t step = ((m + t - 1) / t + kRowQuantum - 1) / kRowQuantum * kRowQuantum;
  parallel_chunks(
      t, t, 1,
      [&](int64_t part, int64_t) {
        const int64_t r0 = std::min(m, part * step), r1 = std::min(m, r0 + step);
        gemm_block(x + r0 * k, r1 - r0, k, w, w_is_nk, ldw, n, b, y + r0 * n, n, accumulate);
      },
      Schedule::kStatic);
}

void layer_norm_row(const float* xr, int64_t dim, const float* gamma, const float* beta, float eps, float* yr) {
  double sum = 0;
#pragma omp simd reduction(+ : sum)
  for (int64_t i = 0; i < dim; ++i) sum += xr[i];
  const double mean = sum / static_cast<double>(dim);
  double var = 0;
#pragma omp simd reduction(+ : var)
  for (int64_t i = 0; i < dim; ++i) {
    const double d = xr[i] - mean;
    var += d * d;
  }
  var /= static_cast<double>(dim);
  const float inv = static_cast<float>(1.0 / std::sqrt(var + eps));
  const float mu = static_cast<float>(mean);
  if (gamma && beta) {
#pragma omp simd
    for (int64_t i = 0; i < dim; ++i) yr[i] = (xr[i] - mu) * inv * gamma[i] + beta[i];
  } else {
    for (int64_t i = 0; i < dim; ++i) {
      const float v = (xr[i] - mu) * inv;
      yr[i] = gamma ? v * gamma[i] + (beta ? beta[i] : 0.f) : v;
    }
  }
}

// Rows [0, rows) of x through LayerNorm, four at a time where the shape allows.
void layer_norm_serial(const float* x, int64_t rows, int64_t dim, const float* gamma, const float* beta, float eps,
                       float* y) {
  if (dim % kLayerNormAvx512DimMultiple == 0 && gamma && beta && kernel_set() == KernelSet::kAvx512) {
    layer_norm_avx512(x, rows, dim, gamma, beta, eps, y);
    return;
  }
  for (int64_t r = 0; r < rows; ++r) layer_norm_row(x + r * dim, dim, gamma, beta, eps, y + r * dim);
}

// fn(begin, end) over [0, n): on the calling thread for small n (or inside a parallel region),
// else one contiguous share per thread, each a multiple of `align` elements but the last.
template <typename F>
void elementwise_shares(int threads, int64_t n, int64_t align, F fn) {
  const int t = resolve_threads(threads);
  if (t <= 1 || n < kParallelElements || in_parallel_region()) {
    fn(int64_t{0}, n);
    return;
  }
  const int64_t step = ((n + t - 1) / t + align - 1) / align * align;
  parallel_chunks(
      t, t, 1,
      [&](int64_t part, int64_t) {
        const int64_t a = std::min(n, part * step), b = std::min(n, a + step);
        fn(a, b);
      },
      Schedule::kStatic);
}

// Element-wise f8 (8-wide) over x, in chunks of whole vectors across threads.
template <typename F8>
void elementwise8(int threads, float* x, int64_t n, F8 f8) {
  elementwise_shares(threads, n, 8, [&](int64_t a, int64_t b) { fast::apply8(x + a, b - a, f8); });
}

constexpr size_t kHugePage = size_t{2} << 20;
bool huge_block(size_t bytes) { return bytes >= kHugePage / 2; }

}  // namespace

void* allocate_lines(size_t bytes) {
  if (!huge_block(bytes)) return ::operator new (bytes, std::align_val_t{64});
  const size_t rounded = (bytes + kHugePage - 1) / kHugePage * kHugePage;
  void* p = ::operator new (rounded, std::align_val_t{kHugePage});
  madvise(p, rounded, MADV_HUGEPAGE);  // advice only: without THP the memory is ordinary pages
  return p;
}

void free_lines(void* p, size_t bytes) { ::operator delete (p, std::align_val_t{huge_block(bytes) ? kHugePage : 64}); }

void linear_serial(const float* x, int64_t m, int64_t k, const float* w, int64_t n, const float* b, float* y,
                   bool accumulate) {
  ensure_blas_single_threaded();
  gemm_block(x, m, k, w, /*w_is_nk=*/true, k, n, b, y, n, accumulate);
}

void linear(int threads, const float* x, int64_t m, int64_t k, const float* w, int64_t n, const float* b, float* y,
            bool accumulate) {
  gemm_parallel(threads, x, m, k, w, /*w_is_nk=*/true, n, b, y, accumulate);
}

void linear_kn(int threads, const float* x, int64_t m, int64_t k, const float* w, int64_t n, const float* b, float* y,
               bool accumulate) {
  gemm_parallel(threads, x, m, k, w, /*w_is_nk=*/false, n, b, y, accumulate);
}

void layer_norm(int threads, const float* x, int64_t rows, int64_t dim, const float* gamma, const float* beta,
                float eps, float* y) {
  const int t = resolve_threads(threads);
  if (t <= 1 || rows * dim < kParallelElements || in_parallel_region()) {
    layer_norm_serial(x, rows, dim, gamma, beta, eps, y);
    return;
  }
  const int64_t step = (rows + t - 1) / t;
  parallel_chunks(
      t, t, 1,
      [&](int64_t part, int64_t) {
        const int64_t r0 = std::min(rows, part * step), r1 = std::min(rows, r0 + step);
        layer_norm_serial(x + r0 * dim, r1 - r0, dim, gamma, beta, eps, y + r0 * dim);
      },
      Schedule::kStatic);
}

void gelu_erf(int threads, float* x, int64_t n) {
  elementwise8(threads, x, n, [](fast::v8f v) { return fast::gelu_erf8(v); });
}

void gelu_tanh(int threads, float* x, int64_t n) {
  elementwise_shares(threads, n, 8, [&](int64_t a, int64_t b) { gelu_tanh_serial(x + a, b - a); });
}

void relu(float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] = x[i] > 0 ? x[i] : 0.f;
}

void sigmoid(int threads, float* x, int64_t n) {
  elementwise8(threads, x, n, [](fast::v8f v) { return fast::sigmoid8(v); });
}

void query_key_dots(const float* q, const float* keys, int64_t n, int64_t hd, float* out) {
  using v8 = float __attribute__((vector_size(32)));
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    v8 acc = {};
    for (int64_t e = 0; e < hd; ++e) {
      v8 k;
      std::memcpy(&k, keys + e * n + j, sizeof k);
      v8 p = q[e] * k;
      asm("" : "+x"(p));  // the product rounded on its own, never fused into the sum
      acc += p;
    }
    std::memcpy(out + j, &acc, sizeof acc);
  }
  for (; j < n; ++j) {
    float acc = 0.f;
    for (int64_t e = 0; e < hd; ++e) {
      float p = q[e] * keys[e * n + j];
      asm("" : "+x"(p));
      acc += p;
    }
    out[j] = acc;
  }
}

void add(float* y, const float* x, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) y[i] += x[i];
}

// std::exp here (not the fast one): callers include the caption decoder's log-probabilities.
void softmax_rows(int threads, float* x, int64_t rows, int64_t cols) {
  auto row_fn = [cols](float* row) {
    float mx = -INFINITY;
    for (int64_t j = 0; j < cols; ++j) mx = row[j] > mx ? row[j] : mx;
    float sum = 0;
    for (int64_t j = 0; j < cols; ++j) {
      row[j] = std::exp(row[j] - mx);
      sum += row[j];
    }
    const float inv = 1.0f / sum;
#pragma omp simd
    for (int64_t j = 0; j < cols; ++j) row[j] *= inv;
  };
  const int t = resolve_threads(threads);
  if (t <= 1 || rows * cols < kParallelElements || in_parallel_region()) {
    for (int64_t r = 0; r < rows; ++r) row_fn(x + r * cols);
    return;
  }
  // Thread i the i-th contiguous share of the rows (rows are independent).
  parallel_chunks(
      t, rows, (rows + t - 1) / t,
      [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) row_fn(x + r * cols);
      },
      Schedule::kStatic);
}

void exp_shifted(float* x, int64_t n, float shift) { exp_shifted_serial(x, n, shift); }

double exp_shifted_sum(float* x, int64_t n, float shift) {
  exp_shifted_serial(x, n, shift);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += x[i];
  return sum;
}

namespace {

// e1 = first(x); out = LayerNorm(e1 + second(GELU(e1))), where second_accumulate(h, e1) adds h . W2^T.
template <typename First, typename SecondAccumulate>
void projection(int threads, int64_t rows, int64_t out_dim, First first, SecondAccumulate second_accumulate,
                const float* ln_gamma, const float* ln_beta, float* out) {
  std::vector<float> e1(static_cast<size_t>(rows * out_dim));
  first(e1.data());
  std::vector<float> h = e1;
  gelu_erf(threads, h.data(), static_cast<int64_t>(h.size()));
  second_accumulate(h.data(), e1.data());
  layer_norm(threads, e1.data(), rows, out_dim, ln_gamma, ln_beta, 1e-5f, out);
}

}  // namespace

void clap_projection(int threads, const float* x, int64_t rows, int64_t in_dim, const float* w1, const float* w2,
                     int64_t out_dim, const float* ln_gamma, const float* ln_beta, float* out) {
  projection(
      threads, rows, out_dim, [&](float* e1) { linear(threads, x, rows, in_dim, w1, out_dim, nullptr, e1); },
      [&](const float* h, float* e1) {
        linear(threads, h, rows, out_dim, w2, out_dim, nullptr, e1, /*accumulate=*/true);
      },
      ln_gamma, ln_beta, out);
}

void clap_projection(int threads, const float* x, int64_t rows, const PackedLinear& w1, const PackedLinear& w2,
                     const float* ln_gamma, const float* ln_beta, float* out) {
  projection(
      threads, rows, w1.out_features(), [&](float* e1) { w1.forward(threads, x, rows, e1); },
      [&](const float* h, float* e1) { w2.forward(threads, h, rows, e1, PackedLinear::Epilogue::kAccumulate); },
      ln_gamma, ln_beta, out);
}

}  // namespace asdcap::nn
