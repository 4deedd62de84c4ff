// LayerNorm rows on AVX-512 (see ops_avx512.hpp). This file is compiled for x86-64-v4
// (src/nn/CMakeLists.txt) and runs only on AVX-512 CPUs (nn::kernel_set()).
#include "ops_avx512.hpp"

#include <immintrin.h>

#include <cmath>

namespace asdcap::nn {

namespace {

// layer_norm_row on kRows rows of a multiple of 16 at once, in AVX-512: the same arithmetic but for
// the order of the double sums (which does not reach the float results in practice); every row of
// such a width goes through here, alone or in a block, so its bits do not depend on its neighbours.
// Compiled from plain code, a row cost ~160 cycles for 96 values: float -> double conversions split
// in halves, and one row's sums, divisions and square root a single dependent chain; four rows'
// chains overlap.
// (maskz forms: the plain ones trip GCC 12's -Wmaybe-uninitialized in its own headers)
inline __m512d widen8(const float* p) { return _mm512_maskz_cvtps_pd(0xff, _mm256_loadu_ps(p)); }
inline double sum8(__m512d v) {
  const __m256d h = _mm256_add_pd(_mm512_maskz_extractf64x4_pd(0xf, v, 0), _mm512_maskz_extractf64x4_pd(0xf, v, 1));
  const __m128d q = _mm_add_pd(_mm256_castpd256_pd128(h), _mm256_extractf128_pd(h, 1));
  return _mm_cvtsd_f64(_mm_add_sd(q, _mm_unpackhi_pd(q, q)));
}

template <int kRows>
void layer_norm_rows(const float* x, int64_t dim, const float* gamma, const float* beta, float eps, float* y) {
  __m512d lo[kRows], hi[kRows];
  for (int r = 0; r < kRows; ++r) lo[r] = hi[r] = _mm512_setzero_pd();
  for (int64_t i = 0; i < dim; i += 16)
    for (int r = 0; r < kRows; ++r) {
      const float* p = x + r * dim + i;
      lo[r] = _mm512_add_pd(lo[r], widen8(p));
      hi[r] = _mm512_add_pd(hi[r], widen8(p + 8));
    }
  __m512d mean[kRows];
  for (int r = 0; r < kRows; ++r) {
    mean[r] = _mm512_set1_pd(sum8(_mm512_add_pd(lo[r], hi[r])) / static_cast<double>(dim));
    lo[r] = hi[r] = _mm512_setzero_pd();
  }
  for (int64_t i = 0; i < dim; i += 16)
    for (int r = 0; r < kRows; ++r) {
      const float* p = x + r * dim + i;
      const __m512d d0 = _mm512_sub_pd(widen8(p), mean[r]);
      const __m512d d1 = _mm512_sub_pd(widen8(p + 8), mean[r]);
      lo[r] = _mm512_fmadd_pd(d0, d0, lo[r]);
      hi[r] = _mm512_fmadd_pd(d1, d1, hi[r]);
    }
  __m512 mu[kRows], inv[kRows];
  for (int r = 0; r < kRows; ++r) {
    const double var = sum8(_mm512_add_pd(lo[r], hi[r])) / static_cast<double>(dim);
    inv[r] = _mm512_set1_ps(static_cast<float>(1.0 / std::sqrt(var + eps)));
    mu[r] = _mm512_set1_ps(static_cast<float>(_mm512_cvtsd_f64(mean[r])));
  }
  for (int64_t i = 0; i < dim; i += 16) {
    const __m512 g = _mm512_loadu_ps(gamma + i), b = _mm512_loadu_ps(beta + i);
    for (int r = 0; r < kRows; ++r) {
      const __m512 v = _mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(x + r * dim + i), mu[r]), inv[r]);
      _mm512_storeu_ps(y + r * dim + i, _mm512_fmadd_ps(v, g, b));
    }
  }
}

}  // namespace

void layer_norm_avx512(const float* x, int64_t rows, int64_t dim, const float* gamma, const float* beta, float eps,
                       float* y) {
  int64_t r = 0;
  for (; r + 4 <= rows; r += 4) layer_norm_rows<4>(x + r * dim, dim, gamma, beta, eps, y + r * dim);
  for (; r < rows; ++r) layer_norm_rows<1>(x + r * dim, dim, gamma, beta, eps, y + r * dim);
}

}  // namespace asdcap::nn
