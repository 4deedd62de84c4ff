#include "ae/layers.hpp"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <mutex>

#include "core/parallel.hpp"

namespace asdcap::ae {
namespace {

// Row-major C[m x n] = op(A) op(B) + beta C.
void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb,
          float beta, float* c, int64_t ldc) {
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, static_cast<int>(m),
              static_cast<int>(n), static_cast<int>(k), 1.0f, a, static_cast<int>(lda), b, static_cast<int>(ldb), beta,
              c, static_cast<int>(ldc));
}
void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const double* a, int64_t lda, const double* b, int64_t ldb,
          double beta, double* c, int64_t ldc) {
  cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, static_cast<int>(m),
              static_cast<int>(n), static_cast<int>(k), 1.0, a, static_cast<int>(lda), b, static_cast<int>(ldb), beta,
              c, static_cast<int>(ldc));
}

}  // namespace

void blas_single_threaded() {
  static std::once_flag once;
  std::call_once(once, [] { openblas_set_num_threads(1); });
}

template <class T>
void dense_rows(const T* x, int64_t r0, int64_t r1, int in, const T* w, const T* b, int out, T* z) {
  T* zr = z + r0 * out;
  for (int64_t r = r0; r < r1; ++r, zr += out)
    if (b)
      std::copy(b, b + out, zr);
    else
      std::fill(zr, zr + out, T(0));
  gemm(false, false, r1 - r0, out, in, x + r0 * in, in, w, out, T(1), z + r0 * out, out);
}

template <class T>
void dense_input_grad_rows(const T* dz, int64_t r0, int64_t r1, int in, const T* w, int out, T* dx) {
  gemm(false, true, r1 - r0, in, out, dz + r0 * out, out, w, out, T(0), dx + r0 * in, in);
}

template <class T>
void dense_weight_grad_rows(const T* x, const T* dz, int64_t rows, int in, int out, int64_t i0, int64_t i1, T* dw) {
  gemm(true, false, i1 - i0, out, rows, x + i0, in, dz, out, T(0), dw + i0 * out, out);
}

template <class T>
void dense_forward(int threads, const T* x, int64_t rows, int in, const T* w, const T* b, int out, T* z) {
  blas_single_threaded();
  parallel_chunks(
      threads, rows, kRowChunk, [&](int64_t r0, int64_t r1) { dense_rows(x, r0, r1, in, w, b, out, z); },
      Schedule::kStatic);
}

template <class T>
void dense_backward(int threads, const T* x, const T* dz, int64_t rows, int in, const T* w, int out, T* dw, T* db,
                    T* dx) {
  blas_single_threaded();
  // Jobs: the row chunks of dx, then the row chunks of dw.
  const int64_t dx_jobs = dx ? row_chunks(rows) : 0;
  const int64_t dw_jobs = (in + kWeightRowChunk - 1) / kWeightRowChunk;
  parallel_chunks(threads, dx_jobs + dw_jobs, 1, [&](int64_t job, int64_t) {
    if (job < dx_jobs) {
      dense_input_grad_rows(dz, job * kRowChunk, std::min(rows, (job + 1) * kRowChunk), in, w, out, dx);
    } else {
      const int64_t i0 = (job - dx_jobs) * kWeightRowChunk;
      dense_weight_grad_rows(x, dz, rows, in, out, i0, std::min<int64_t>(in, i0 + kWeightRowChunk), dw);
    }
  });
  if (db) {
    std::vector<double> sum(static_cast<size_t>(out), 0.0);
    for (int64_t c = 0; c < row_chunks(rows); ++c) {  // chunk partials, in order
      std::vector<double> part(static_cast<size_t>(out), 0.0);
      for (int64_t r = c * kRowChunk; r < std::min(rows, (c + 1) * kRowChunk); ++r)
        for (int j = 0; j < out; ++j) part[static_cast<size_t>(j)] += static_cast<double>(dz[r * out + j]);
      for (int j = 0; j < out; ++j) sum[static_cast<size_t>(j)] += part[static_cast<size_t>(j)];
    }
    for (int j = 0; j < out; ++j) db[j] = static_cast<T>(sum[static_cast<size_t>(j)]);
  }
}

template <class T>
void bn_moments_rows(const T* z, int64_t r0, int64_t r1, int dim, double* mean, double* m2) {
  std::fill(mean, mean + dim, 0.0);
  std::fill(m2, m2 + dim, 0.0);
  for (int64_t r = r0; r < r1; ++r) {
    const T* zr = z + r * dim;
#pragma omp simd
    for (int j = 0; j < dim; ++j) mean[j] += static_cast<double>(zr[j]);
  }
  const double n = static_cast<double>(r1 - r0);
#pragma omp simd
  for (int j = 0; j < dim; ++j) mean[j] /= n;
  for (int64_t r = r0; r < r1; ++r) {
    const T* zr = z + r * dim;
#pragma omp simd
    for (int j = 0; j < dim; ++j) {
      const double d = static_cast<double>(zr[j]) - mean[j];
      m2[j] += d * d;
    }
  }
}

void bn_combine(const std::vector<double>& mean, const std::vector<double>& m2, int64_t rows, int dim, double eps,
                BnStats& stats) {
  const size_t d = static_cast<size_t>(dim);
  stats.mean.assign(mean.begin(), mean.begin() + static_cast<std::ptrdiff_t>(d));
  std::vector<double> acc(m2.begin(), m2.begin() + static_cast<std::ptrdiff_t>(d));
  double n = static_cast<double>(std::min(rows, kRowChunk));
  for (int64_t c = 1; c < row_chunks(rows); ++c) {
    const double nb = static_cast<double>(std::min(rows, (c + 1) * kRowChunk) - c * kRowChunk), total = n + nb;
    for (size_t j = 0; j < d; ++j) {
      const double delta = mean[c * d + j] - stats.mean[j];
      stats.mean[j] += delta * (nb / total);
      acc[j] += m2[c * d + j] + delta * delta * (n * nb / total);
    }
    n = total;
  }
  stats.var.resize(d);
  stats.inv.resize(d);
  for (size_t j = 0; j < d; ++j) {
    stats.var[j] = acc[j] / static_cast<double>(rows);
    stats.inv[j] = 1.0 / std::sqrt(stats.var[j] + eps);
  }
}

template <class T>
void bn_normalize_rows(T* z, int64_t r0, int64_t r1, int dim, const T* mean, const T* inv, const T* gamma,
                       const T* beta, bool relu, T* y) {
  for (int64_t r = r0; r < r1; ++r) {
    T* zr = z + r * dim;
    T* yr = y + r * dim;
#pragma omp simd
    for (int j = 0; j < dim; ++j) {
      const T xh = (zr[j] - mean[j]) * inv[j];
      zr[j] = xh;
      const T v = gamma[j] * xh + beta[j];
      yr[j] = relu ? std::max(v, T(0)) : v;
    }
  }
}

template <class T>
void bn_grad_sums_rows(const T* xhat, const T* y, const T* dy, int64_t r0, int64_t r1, int dim, bool relu,
                       double* sum_g, double* sum_gx) {
  for (int64_t r = r0; r < r1; ++r) {
    const T* xr = xhat + r * dim;
    const T* yr = y + r * dim;
    const T* dr = dy + r * dim;
    if (relu) {
#pragma omp simd
      for (int j = 0; j < dim; ++j) {
        const double g = static_cast<double>(dr[j] * static_cast<T>(yr[j] > T(0)));  // ReLU mask, branch-free
        sum_g[j] += g;
        sum_gx[j] += g * static_cast<double>(xr[j]);
      }
    } else {
#pragma omp simd
      for (int j = 0; j < dim; ++j) {
        const double g = static_cast<double>(dr[j]);
        sum_g[j] += g;
        sum_gx[j] += g * static_cast<double>(xr[j]);
      }
    }
  }
}

template <class T>
void bn_grad_rows(const T* xhat, const T* y, const T* dy, int64_t r0, int64_t r1, int dim, bool relu, const T* scale,
                  const T* mean_g, const T* mean_gx, T* dz) {
  for (int64_t r = r0; r < r1; ++r) {
    const T* xr = xhat + r * dim;
    const T* yr = y + r * dim;
    const T* dr = dy + r * dim;
    T* zr = dz + r * dim;
#pragma omp simd
    for (int j = 0; j < dim; ++j) {
      const T g = relu ? dr[j] * static_cast<T>(yr[j] > T(0)) : dr[j];
      zr[j] = scale[j] * (g - mean_g[j] - xr[j] * mean_gx[j]);
    }
  }
}

template <class T>
void bn_train_forward(int threads, T* z, int64_t rows, int dim, const T* gamma, const T* beta, double eps, bool relu,
                      T* y, BnStats& stats) {
  const int64_t chunks = row_chunks(rows);
  std::vector<double> mean(static_cast<size_t>(chunks * dim)), m2(static_cast<size_t>(chunks * dim));
  parallel_chunks(
      threads, rows, kRowChunk,
      [&](int64_t r0, int64_t r1) {
        const int64_t c = r0 / kRowChunk;
        bn_moments_rows(z, r0, r1, dim, mean.data() + c * dim, m2.data() + c * dim);
      },
      Schedule::kStatic);
  bn_combine(mean, m2, rows, dim, eps, stats);
  std::vector<T> mean_t(stats.mean.begin(), stats.mean.end()), inv_t(stats.inv.begin(), stats.inv.end());
  parallel_chunks(
      threads, rows, kRowChunk,
      [&](int64_t r0, int64_t r1) {
        bn_normalize_rows(z, r0, r1, dim, mean_t.data(), inv_t.data(), gamma, beta, relu, y);
      },
      Schedule::kStatic);
}

template <class T>
void bn_train_backward(int threads, const T* xhat, const T* y, const T* dy, int64_t rows, int dim, const T* gamma,
                       const BnStats& stats, bool relu, T* dgamma, T* dbeta, T* dz) {
  const int64_t chunks = row_chunks(rows);
  std::vector<double> sg(static_cast<size_t>(chunks * dim), 0.0), sgx(static_cast<size_t>(chunks * dim), 0.0);
  parallel_chunks(
      threads, rows, kRowChunk,
      [&](int64_t r0, int64_t r1) {
        const int64_t c = r0 / kRowChunk;
        bn_grad_sums_rows(xhat, y, dy, r0, r1, dim, relu, sg.data() + c * dim, sgx.data() + c * dim);
      },
      Schedule::kStatic);
  std::vector<T> scale(static_cast<size_t>(dim)), mean_g(static_cast<size_t>(dim)), mean_gx(static_cast<size_t>(dim));
  for (int j = 0; j < dim; ++j) {
    double a = 0, b = 0;
    for (int64_t c = 0; c < chunks; ++c)
      a += sg[static_cast<size_t>(c * dim + j)], b += sgx[static_cast<size_t>(c * dim + j)];
    const size_t u = static_cast<size_t>(j);
    dbeta[j] = static_cast<T>(a);
    dgamma[j] = static_cast<T>(b);
    scale[u] = static_cast<T>(static_cast<double>(gamma[j]) * stats.inv[u]);
    mean_g[u] = static_cast<T>(a / static_cast<double>(rows));
    mean_gx[u] = static_cast<T>(b / static_cast<double>(rows));
  }
  parallel_chunks(
      threads, rows, kRowChunk,
      [&](int64_t r0, int64_t r1) {
        bn_grad_rows(xhat, y, dy, r0, r1, dim, relu, scale.data(), mean_g.data(), mean_gx.data(), dz);
      },
      Schedule::kStatic);
}

template <class T>
void bn_eval_forward(T* z, int64_t rows, int dim, const T* gamma, const T* beta, const T* moving_mean,
                     const T* moving_var, double eps, bool relu) {
  std::vector<T> s(static_cast<size_t>(dim)), t(static_cast<size_t>(dim));
  for (int j = 0; j < dim; ++j) {
    s[static_cast<size_t>(j)] = static_cast<T>(1.0 / std::sqrt(static_cast<double>(moving_var[j]) + eps)) * gamma[j];
    t[static_cast<size_t>(j)] = beta[j] - moving_mean[j] * s[static_cast<size_t>(j)];
  }
  const T* sp = s.data();
  const T* tp = t.data();
  for (int64_t r = 0; r < rows; ++r) {
    T* zr = z + r * dim;
#pragma omp simd
    for (int j = 0; j < dim; ++j) {
      const T v = zr[j] * sp[j] + tp[j];
      zr[j] = relu ? std::max(v, T(0)) : v;
    }
  }
}

template <class T>
double mse_rows(const T* out, const T* target, int64_t r0, int64_t r1, int dim, double total, T* grad) {
  const T g = static_cast<T>(2.0 / total);
  double s = 0;
  for (int64_t i = r0 * dim; i < r1 * dim; ++i) {
    const T d = out[i] - target[i];
    s += static_cast<double>(d) * static_cast<double>(d);
    if (grad) grad[i] = g * d;
  }
  return s;
}

template <class T>
double mse_loss(int threads, const T* out, const T* target, int64_t rows, int dim, T* grad) {
  std::vector<double> partial(static_cast<size_t>(row_chunks(rows)), 0.0);
  const double total = static_cast<double>(rows) * dim;
  parallel_chunks(
      threads, rows, kRowChunk,
      [&](int64_t r0, int64_t r1) {
        partial[static_cast<size_t>(r0 / kRowChunk)] = mse_rows(out, target, r0, r1, dim, total, grad);
      },
      Schedule::kStatic);
  double s = 0;
  for (double p : partial) s += p;
  return s / total;
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

#define ASDCAP_AE_LAYERS(T)                                                                                           \
  template void dense_rows<T>(const T*, int64_t, int64_t, int, const T*, const T*, int, T*);                          \
  template void dense_input_grad_rows<T>(const T*, int64_t, int64_t, int, const T*, int, T*);                         \
  template void dense_weight_grad_rows<T>(const T*, const T*, int64_t, int, int, int64_t, int64_t, T*);               \
  template void dense_forward<T>(int, const T*, int64_t, int, const T*, const T*, int, T*);                           \
  template void dense_backward<T>(int, const T*, const T*, int64_t, int, const T*, int, T*, T*, T*);                  \
  template void bn_moments_rows<T>(const T*, int64_t, int64_t, int, double*, double*);                                \
  template void bn_normalize_rows<T>(T*, int64_t, int64_t, int, const T*, const T*, const T*, const T*, bool, T*);    \
  template void bn_grad_sums_rows<T>(const T*, const T*, const T*, int64_t, int64_t, int, bool, double*, double*);    \
  template void bn_grad_rows<T>(const T*, const T*, const T*, int64_t, int64_t, int, bool, const T*, const T*,        \
                                const T*, T*);                                                                        \
  template void bn_train_forward<T>(int, T*, int64_t, int, const T*, const T*, double, bool, T*, BnStats&);           \
  template void bn_train_backward<T>(int, const T*, const T*, const T*, int64_t, int, const T*, const BnStats&, bool, \
                                     T*, T*, T*);                                                                     \
  template void bn_eval_forward<T>(T*, int64_t, int, const T*, const T*, const T*, const T*, double, bool);           \
  template double mse_rows<T>(const T*, const T*, int64_t, int64_t, int, double, T*);                                 \
  template double mse_loss<T>(int, const T*, const T*, int64_t, int, T*);                                             \
  template void row_errors<T>(const T*, const T*, int64_t, int, double*);
ASDCAP_AE_LAYERS(float)
ASDCAP_AE_LAYERS(double)
#undef ASDCAP_AE_LAYERS

}  // namespace asdcap::ae
