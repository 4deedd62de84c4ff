#include "ae/layers.hpp"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <mutex>

#include "core/parallel.hpp"

namespace asdcap::ae {
namespace {

// Columns of dw computed per job in dense_backward (rows of x^T).
constexpr int64_t kWeightRowChunk = 64;

int64_t chunks_of(int64_t rows) { return (rows + kRowChunk - 1) / kRowChunk; }

// Row-major C[m x n] = alpha op(A) op(B) + beta C.
void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb,
          float beta, float* c, int64_t ldc) {
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, static_cast<int>(m),
              static_cast<int>(n), static_cast<int>(k), 1.0f, a, static_cast<int>(lda), b, static_cast<int>(ldb), beta, c,
              static_cast<int>(ldc));
}
void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const double* a, int64_t lda, const double* b,
          int64_t ldb, double beta, double* c, int64_t ldc) {
  cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, static_cast<int>(m),
              static_cast<int>(n), static_cast<int>(k), 1.0, a, static_cast<int>(lda), b, static_cast<int>(ldb), beta, c,
              static_cast<int>(ldc));
}

// Sums per-chunk partials (chunks x dim, chunk order) into out (dim).
void add_partials(const std::vector<double>& partial, int64_t chunks, int dim, std::vector<double>& out) {
  out.assign(static_cast<size_t>(dim), 0.0);
  for (int64_t c = 0; c < chunks; ++c)
    for (int j = 0; j < dim; ++j) out[static_cast<size_t>(j)] += partial[static_cast<size_t>(c * dim + j)];
}

}  // namespace

void blas_single_threaded() {
  static std::once_flag once;
  std::call_once(once, [] { openblas_set_num_threads(1); });
}

template <class T>
void dense_forward(int threads, const T* x, int64_t rows, int in, const T* w, const T* b, int out, T* z) {
  blas_single_threaded();
  parallel_chunks(threads, rows, kRowChunk, [&](int64_t r0, int64_t r1) {
    T* zr = z + r0 * out;
    for (int64_t r = r0; r < r1; ++r, zr += out)
      if (b)
        std::copy(b, b + out, zr);
      else
        std::fill(zr, zr + out, T(0));
    gemm(false, false, r1 - r0, out, in, x + r0 * in, in, w, out, T(1), z + r0 * out, out);
  }, Schedule::kStatic);
}

template <class T>
void dense_backward(int threads, const T* x, const T* dz, int64_t rows, int in, const T* w, int out, T* dw, T* db,
                    T* dx) {
  blas_single_threaded();
  // Jobs: the row chunks of dx, then the row chunks of dw (= x^T dz, rows of dw are columns of x).
  const int64_t dx_jobs = dx ? chunks_of(rows) : 0;
  const int64_t dw_jobs = (in + kWeightRowChunk - 1) / kWeightRowChunk;
  parallel_chunks(threads, dx_jobs + dw_jobs, 1, [&](int64_t job, int64_t) {
    if (job < dx_jobs) {
      const int64_t r0 = job * kRowChunk, r1 = std::min(rows, r0 + kRowChunk);
      gemm(false, true, r1 - r0, in, out, dz + r0 * out, out, w, out, T(0), dx + r0 * in, in);
    } else {
      const int64_t i0 = (job - dx_jobs) * kWeightRowChunk, i1 = std::min<int64_t>(in, i0 + kWeightRowChunk);
      gemm(true, false, i1 - i0, out, rows, x + i0, in, dz, out, T(0), dw + i0 * out, out);
    }
  });
  if (db) {
    const int64_t chunks = chunks_of(rows);
    std::vector<double> partial(static_cast<size_t>(chunks * out), 0.0), sum;
    parallel_chunks(threads, rows, kRowChunk, [&](int64_t r0, int64_t r1) {
      double* p = partial.data() + (r0 / kRowChunk) * out;
      for (int64_t r = r0; r < r1; ++r)
        for (int j = 0; j < out; ++j) p[j] += static_cast<double>(dz[r * out + j]);
    });
    add_partials(partial, chunks, out, sum);
    for (int j = 0; j < out; ++j) db[j] = static_cast<T>(sum[static_cast<size_t>(j)]);
  }
}

template <class T>
void bn_train_forward(int threads, T* z, int64_t rows, int dim, const T* gamma, const T* beta, double eps, bool relu,
                      T* y, BnStats& stats) {
  const int64_t chunks = chunks_of(rows);
  std::vector<double> partial(static_cast<size_t>(chunks * dim), 0.0);
  parallel_chunks(threads, rows, kRowChunk, [&](int64_t r0, int64_t r1) {
    double* p = partial.data() + (r0 / kRowChunk) * dim;
    for (int64_t r = r0; r < r1; ++r)
      for (int j = 0; j < dim; ++j) p[j] += static_cast<double>(z[r * dim + j]);
  }, Schedule::kStatic);
  add_partials(partial, chunks, dim, stats.mean);
  for (auto& m : stats.mean) m /= static_cast<double>(rows);
  std::fill(partial.begin(), partial.end(), 0.0);
  parallel_chunks(threads, rows, kRowChunk, [&](int64_t r0, int64_t r1) {
    double* p = partial.data() + (r0 / kRowChunk) * dim;
    const double* mean = stats.mean.data();
    for (int64_t r = r0; r < r1; ++r)
      for (int j = 0; j < dim; ++j) {
        const double d = static_cast<double>(z[r * dim + j]) - mean[j];
        p[j] += d * d;
      }
  }, Schedule::kStatic);
  add_partials(partial, chunks, dim, stats.var);
  stats.inv.resize(static_cast<size_t>(dim));
  std::vector<T> mean_t(static_cast<size_t>(dim)), inv_t(static_cast<size_t>(dim));
  for (int j = 0; j < dim; ++j) {
    auto& v = stats.var[static_cast<size_t>(j)];
    v /= static_cast<double>(rows);
    stats.inv[static_cast<size_t>(j)] = 1.0 / std::sqrt(v + eps);
    mean_t[static_cast<size_t>(j)] = static_cast<T>(stats.mean[static_cast<size_t>(j)]);
    inv_t[static_cast<size_t>(j)] = static_cast<T>(stats.inv[static_cast<size_t>(j)]);
  }
  parallel_chunks(threads, rows, kRowChunk, [&](int64_t r0, int64_t r1) {
    const T* mean = mean_t.data();
    const T* inv = inv_t.data();
    for (int64_t r = r0; r < r1; ++r) {
      T* zr = z + r * dim;
      T* yr = y + r * dim;
      for (int j = 0; j < dim; ++j) {
        const T xh = (zr[j] - mean[j]) * inv[j];
        zr[j] = xh;
        const T v = gamma[j] * xh + beta[j];
        yr[j] = relu ? std::max(v, T(0)) : v;
      }
    }
  }, Schedule::kStatic);
}

template <class T>
void bn_train_backward(int threads, const T* xhat, const T* y, const T* dy, int64_t rows, int dim, const T* gamma,
                       const BnStats& stats, bool relu, T* dgamma, T* dbeta, T* dz) {
  const int64_t chunks = chunks_of(rows);
  // Per chunk: sums of g and of g xhat, g = dy masked by the ReLU.
  std::vector<double> partial(static_cast<size_t>(2 * chunks * dim), 0.0);
  parallel_chunks(threads, rows, kRowChunk, [&](int64_t r0, int64_t r1) {
    double* s1 = partial.data() + (r0 / kRowChunk) * dim;
    double* s2 = s1 + chunks * dim;
    for (int64_t r = r0; r < r1; ++r)
      for (int j = 0; j < dim; ++j) {
        const int64_t i = r * dim + j;
        const double g = (!relu || y[i] > T(0)) ? static_cast<double>(dy[i]) : 0.0;
        s1[j] += g;
        s2[j] += g * static_cast<double>(xhat[i]);
      }
  }, Schedule::kStatic);
  std::vector<double> sum_g, sum_gx;
  add_partials(std::vector<double>(partial.begin(), partial.begin() + chunks * dim), chunks, dim, sum_g);
  add_partials(std::vector<double>(partial.begin() + chunks * dim, partial.end()), chunks, dim, sum_gx);
  // dz = gamma inv / n (n g - sum g - xhat sum g xhat)
  std::vector<T> scale(static_cast<size_t>(dim)), mean_g(static_cast<size_t>(dim)), mean_gx(static_cast<size_t>(dim));
  const double n = static_cast<double>(rows);
  for (int j = 0; j < dim; ++j) {
    const size_t u = static_cast<size_t>(j);
    dgamma[j] = static_cast<T>(sum_gx[u]);
    dbeta[j] = static_cast<T>(sum_g[u]);
    scale[u] = static_cast<T>(static_cast<double>(gamma[j]) * stats.inv[u]);
    mean_g[u] = static_cast<T>(sum_g[u] / n);
    mean_gx[u] = static_cast<T>(sum_gx[u] / n);
  }
  parallel_chunks(threads, rows, kRowChunk, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r)
      for (int j = 0; j < dim; ++j) {
        const int64_t i = r * dim + j;
        const size_t u = static_cast<size_t>(j);
        const T g = (!relu || y[i] > T(0)) ? dy[i] : T(0);
        dz[i] = scale[u] * (g - mean_g[u] - xhat[i] * mean_gx[u]);
      }
  }, Schedule::kStatic);
}

template <class T>
void bn_eval_forward(T* z, int64_t rows, int dim, const T* gamma, const T* beta, const T* moving_mean,
                     const T* moving_var, double eps, bool relu) {
  std::vector<T> s(static_cast<size_t>(dim)), t(static_cast<size_t>(dim));
  for (int j = 0; j < dim; ++j) {
    s[static_cast<size_t>(j)] = static_cast<T>(1.0 / std::sqrt(static_cast<double>(moving_var[j]) + eps)) * gamma[j];
    t[static_cast<size_t>(j)] = beta[j] - moving_mean[j] * s[static_cast<size_t>(j)];
  }
  for (int64_t r = 0; r < rows; ++r) {
    T* zr = z + r * dim;
    for (int j = 0; j < dim; ++j) {
      const T v = zr[j] * s[static_cast<size_t>(j)] + t[static_cast<size_t>(j)];
      zr[j] = relu ? std::max(v, T(0)) : v;
    }
  }
}

template <class T>
double mse_loss(int threads, const T* out, const T* target, int64_t rows, int dim, T* grad) {
  const int64_t chunks = chunks_of(rows);
  std::vector<double> partial(static_cast<size_t>(chunks), 0.0);
  const T g = static_cast<T>(2.0 / (static_cast<double>(rows) * dim));
  parallel_chunks(threads, rows, kRowChunk, [&](int64_t r0, int64_t r1) {
    double s = 0;
    for (int64_t i = r0 * dim; i < r1 * dim; ++i) {
      const T d = out[i] - target[i];
      s += static_cast<double>(d) * static_cast<double>(d);
      if (grad) grad[i] = g * d;
    }
    partial[static_cast<size_t>(r0 / kRowChunk)] = s;
  }, Schedule::kStatic);
  double s = 0;
  for (double p : partial) s += p;
  return s / (static_cast<double>(rows) * dim);
}

template <class T>
void row_errors(const T* out, const T* target, int64_t rows, int dim, double* errors) {
  for (int64_t r = 0; r < rows; ++r) {
    double s = 0;
    for (int j = 0; j < dim; ++j) {
      const double d = static_cast<double>(out[r * dim + j]) - static_cast<double>(target[r * dim + j]);
      s += d * d;
    }
    errors[r] = s / dim;
  }
}

#define ASDCAP_AE_LAYERS(T)                                                                                         \
  template void dense_forward<T>(int, const T*, int64_t, int, const T*, const T*, int, T*);                        \
  template void dense_backward<T>(int, const T*, const T*, int64_t, int, const T*, int, T*, T*, T*);               \
  template void bn_train_forward<T>(int, T*, int64_t, int, const T*, const T*, double, bool, T*, BnStats&);        \
  template void bn_train_backward<T>(int, const T*, const T*, const T*, int64_t, int, const T*, const BnStats&,    \
                                     bool, T*, T*, T*);                                                             \
  template void bn_eval_forward<T>(T*, int64_t, int, const T*, const T*, const T*, const T*, double, bool);         \
  template double mse_loss<T>(int, const T*, const T*, int64_t, int, T*);                                           \
  template void row_errors<T>(const T*, const T*, int64_t, int, double*);
ASDCAP_AE_LAYERS(float)
ASDCAP_AE_LAYERS(double)
#undef ASDCAP_AE_LAYERS

}  // namespace asdcap::ae
