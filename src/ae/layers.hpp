// The layer kernels of the autoencoder, for a batch of rows (row-major), in float (training) or
// double (the finite-difference tests). Rows are processed in fixed chunks of kRowChunk, and every
// reduction over rows adds per-chunk partial sums in chunk order, so results depend on the data only,
// never on the thread count.
#pragma once
#include <cstdint>
#include <vector>

namespace asdcap::ae {

inline constexpr int64_t kRowChunk = 128;

// Makes OpenBLAS single-threaded (the kernels split GEMMs themselves); called by every entry point.
void blas_single_threaded();

// z[rows x out] = x[rows x in] . w[in x out] + b[out] (Keras kernel layout; b may be null).
template <class T>
void dense_forward(int threads, const T* x, int64_t rows, int in, const T* w, const T* b, int out, T* z);

// Gradients of dense_forward from dz[rows x out]: dw[in x out] = x^T dz; db[out] = column sums of dz
// (when db is not null); dx[rows x in] = dz w^T (when dx is not null).
template <class T>
void dense_backward(int threads, const T* x, const T* dz, int64_t rows, int in, const T* w, int out, T* dw, T* db,
                    T* dx);

// Batch statistics of a BatchNorm in training mode: per column mean, biased variance and
// 1 / sqrt(var + eps), all in double.
struct BnStats {
  std::vector<double> mean, var, inv;
};

// BatchNorm in training mode followed by ReLU when `relu`: z (rows x dim) is overwritten by
// xhat = (z - mean) / sqrt(var + eps); y = gamma xhat + beta, then max(y, 0). `stats` receives the
// batch statistics (two-pass: the mean, then the mean squared deviation).
template <class T>
void bn_train_forward(int threads, T* z_to_xhat, int64_t rows, int dim, const T* gamma, const T* beta, double eps,
                      bool relu, T* y, BnStats& stats);

// Gradients of bn_train_forward from dy (rows x dim, the gradient at its output y, after the ReLU
// when `relu`): dgamma, dbeta (dim) and dz (rows x dim; may alias dy).
template <class T>
void bn_train_backward(int threads, const T* xhat, const T* y, const T* dy, int64_t rows, int dim, const T* gamma,
                       const BnStats& stats, bool relu, T* dgamma, T* dbeta, T* dz);

// BatchNorm in inference mode (moving statistics) followed by ReLU when `relu`, in place:
// z * s + (beta - mean s), s = gamma / sqrt(var + eps), as Keras's TensorFlow backend computes it.
template <class T>
void bn_eval_forward(T* z, int64_t rows, int dim, const T* gamma, const T* beta, const T* moving_mean,
                     const T* moving_var, double eps, bool relu);

// Mean squared error over all rows x dim values (Keras: per-row mean, then mean over the batch),
// returned in double; grad (may be null) receives d loss / d out = 2 (out - target) / (rows dim).
template <class T>
double mse_loss(int threads, const T* out, const T* target, int64_t rows, int dim, T* grad);

// Per-row mean squared error (double) of out against target.
template <class T>
void row_errors(const T* out, const T* target, int64_t rows, int dim, double* errors);

}  // namespace asdcap::ae
