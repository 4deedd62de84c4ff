// Single-threaded on purpose: a decoding step is bound by streaming the weights from memory, and
// dozens of fork/join points per step stall badly whenever the cores are shared with other work.
#include "small_gemm.hpp"

#include <algorithm>

#include "asdcap/nn.hpp"

namespace asdcap::text_detail {

void small_linear_kn(const float* x, int64_t m, int64_t k, const float* w, int64_t n, const float* b, float* y) {
  constexpr int64_t kBlock = 256;
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  for (int64_t blk = 0; blk < blocks; ++blk) {
    const int64_t j0 = blk * kBlock, nb = std::min(kBlock, n - j0);
    alignas(64) float acc[kSmallRows][kBlock];
    for (int64_t r = 0; r < m; ++r)
      for (int64_t j = 0; j < nb; ++j) acc[r][j] = 0.f;
    for (int64_t kk = 0; kk < k; ++kk) {
      const float* wr = w + kk * n + j0;
      for (int64_t r = 0; r < m; ++r) {
        const float xv = x[r * k + kk];
        float* a = acc[r];
#pragma omp simd
        for (int64_t j = 0; j < nb; ++j) a[j] += xv * wr[j];
      }
    }
    for (int64_t r = 0; r < m; ++r)
      for (int64_t j = 0; j < nb; ++j) y[r * n + j0 + j] = acc[r][j] + (b ? b[j0 + j] : 0.f);
  }
}

void small_linear_nt(const float* x, int64_t m, int64_t k, const float* w, int64_t n, float* y) {
  for (int64_t v = 0; v < n; ++v) {
    const float* wr = w + v * k;
    for (int64_t r = 0; r < m; ++r) {
      const float* xr = x + r * k;
      float acc = 0.f;
#pragma omp simd reduction(+ : acc)
      for (int64_t i = 0; i < k; ++i) acc += xr[i] * wr[i];
      y[r * n + v] = acc;
    }
  }
}

void linear_kn(const float* x, int64_t m, int64_t k, const float* w, int64_t n, const float* b, float* y) {
  if (m <= kSmallRows) small_linear_kn(x, m, k, w, n, b, y);
  else nn::linear_kn(x, m, k, w, n, b, y);
}

void linear_nt(const float* x, int64_t m, int64_t k, const float* w, int64_t n, float* y) {
  if (m <= kSmallRows) small_linear_nt(x, m, k, w, n, y);
  else nn::linear(x, m, k, w, n, nullptr, y);
}

}  // namespace asdcap::text_detail
