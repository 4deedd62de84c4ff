// The layer kernels of the autoencoder, for a batch of rows (row-major), in float (training) or
// double (the finite-difference tests). Rows are processed in fixed chunks of kRowChunk, and every
// reduction over rows combines per-chunk partial results in chunk order, so results depend on the
// data only, never on the thread count.
//
// Each layer comes as row-range pieces (what the trainer fuses into one parallel pass per layer) and
// as whole-batch functions built from them (what the tests check).
#pragma once
#include <cstdint>
#include <vector>

namespace asdcap::ae {

inline constexpr int64_t kRowChunk = 128;
// Rows of a weight gradient (columns of the layer input) computed per job.
inline constexpr int64_t kWeightRowChunk = 64;

inline int64_t row_chunks(int64_t rows) { return (rows + kRowChunk - 1) / kRowChunk; }

// Makes OpenBLAS single-threaded (the kernels split GEMMs themselves); called by every entry point.
void blas_single_threaded();

// ---- Dense -----------------------------------------------------------------------------------
// z[r0..r1) = x[r0..r1) . w + b, x rows of `in`, w [in x out] (Keras kernel layout), b may be null.
template <class T>
void dense_rows(const T* x, int64_t r0, int64_t r1, int in, const T* w, const T* b, int out, T* z);
// dx[r0..r1) = dz[r0..r1) . w^T
template <class T>
void dense_input_grad_rows(const T* dz, int64_t r0, int64_t r1, int in, const T* w, int out, T* dx);
// Rows [i0, i1) of dw = x^T dz over all `rows` rows.
template <class T>
void dense_weight_grad_rows(const T* x, const T* dz, int64_t rows, int in, int out, int64_t i0, int64_t i1, T* dw);

// z = x . w + b for all rows.
template <class T>
void dense_forward(int threads, const T* x, int64_t rows, int in, const T* w, const T* b, int out, T* z);
// dw = x^T dz; db = column sums of dz (when not null); dx = dz w^T (when not null).
template <class T>
void dense_backward(int threads, const T* x, const T* dz, int64_t rows, int in, const T* w, int out, T* dw, T* db,
                    T* dx);

// ---- BatchNorm (training mode) followed by ReLU when `relu` ------------------------------------
// Batch statistics: per column mean, biased variance and 1 / sqrt(var + eps), in double.
struct BnStats {
  std::vector<double> mean, var, inv;
};

// Per-chunk moments of rows [r0, r1) (two passes over the chunk): count, mean and sum of squared
// deviations per column, written to mean[dim] and m2[dim].
template <class T>
void bn_moments_rows(const T* z, int64_t r0, int64_t r1, int dim, double* mean, double* m2);
// Combines the moments of consecutive chunks (chunk c has rows [c kRowChunk, ...) of `rows`), in
// chunk order (Chan, Golub and LeVeque's pairwise update), into the batch statistics.
void bn_combine(const std::vector<double>& mean, const std::vector<double>& m2, int64_t rows, int dim, double eps,
                BnStats& stats);
// Rows [r0, r1): z is overwritten by xhat = (z - mean) inv; y = gamma xhat + beta, then max(y, 0).
template <class T>
void bn_normalize_rows(T* z, int64_t r0, int64_t r1, int dim, const T* mean, const T* inv, const T* gamma,
                       const T* beta, bool relu, T* y);
// Backward sums of rows [r0, r1): sum_g[dim] += g, sum_gx[dim] += g xhat, g = dy masked by the ReLU.
template <class T>
void bn_grad_sums_rows(const T* xhat, const T* y, const T* dy, int64_t r0, int64_t r1, int dim, bool relu,
                       double* sum_g, double* sum_gx);
// Rows [r0, r1): dz = scale (g - mean_g - xhat mean_gx), scale = gamma inv (dz may alias dy).
template <class T>
void bn_grad_rows(const T* xhat, const T* y, const T* dy, int64_t r0, int64_t r1, int dim, bool relu, const T* scale,
                  const T* mean_g, const T* mean_gx, T* dz);

// Whole batch: z (rows x dim) is overwritten by xhat, y receives the output, `stats` the statistics.
template <class T>
void bn_train_forward(int threads, T* z_to_xhat, int64_t rows, int dim, const T* gamma, const T* beta, double eps,
                      bool relu, T* y, BnStats& stats);
// Whole batch: from dy (the gradient at y), dgamma, dbeta (dim) and dz (rows x dim; may alias dy).
template <class T>
void bn_train_backward(int threads, const T* xhat, const T* y, const T* dy, int64_t rows, int dim, const T* gamma,
                       const BnStats& stats, bool relu, T* dgamma, T* dbeta, T* dz);

// BatchNorm in inference mode (moving statistics) followed by ReLU when `relu`, in place:
// z * s + (beta - mean s), s = gamma / sqrt(var + eps), as Keras's TensorFlow backend computes it.
template <class T>
void bn_eval_forward(T* z, int64_t rows, int dim, const T* gamma, const T* beta, const T* moving_mean,
                     const T* moving_var, double eps, bool relu);

// ---- Loss ------------------------------------------------------------------------------------
// Rows [r0, r1) of the mean squared error over `total` values: returns the sum of squared
// differences (double); grad (may be null) receives 2 (out - target) / total.
template <class T>
double mse_rows(const T* out, const T* target, int64_t r0, int64_t r1, int dim, double total, T* grad);
// Mean over all rows x dim values (Keras: per-row mean, then mean over the batch), with its gradient.
template <class T>
double mse_loss(int threads, const T* out, const T* target, int64_t rows, int dim, T* grad);
// Per-row mean squared error (double) of out against target.
template <class T>
void row_errors(const T* out, const T* target, int64_t rows, int dim, double* errors);

}  // namespace asdcap::ae
