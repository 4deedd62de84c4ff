// The int8 kernel for every AVX2 CPU (see packed_int8.hpp): 4 rows x 16 columns per register tile.
// pmaddubsw multiplies unsigned by signed bytes into saturating 16-bit pair sums; with the weights'
// magnitudes (<= 127) as the unsigned operand and the activations carrying the weights' signs (|q| <=
// 127), a pair sum stays within 2 * 127 * 127 < 2^15, so nothing saturates and the int32 sums are exact.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "fastmath.hpp"
#include "packed_int8.hpp"

namespace asdcap::nn::int8 {

namespace {

constexpr int64_t kWidth = PackedLinear::kPanelWidth;
constexpr int64_t kCols = 16;  // columns per tile: two vectors of 8 int32

template <int MR>
void tile(const Layer& w, const Rows& x, int64_t r, const int8_t* panel, int64_t col, int64_t ncols, float* y,
          PackedLinear::Epilogue ep) {
  __m256i acc[MR][2];
  for (int i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_si256();
  const __m256i ones = _mm256_set1_epi16(1);
  const int64_t quads = w.k4 / 4;
  for (int64_t g = 0; g < quads; ++g) {
    const int8_t* at = panel + g * kWidth * 4;
    const __m256i w0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(at));
    const __m256i w1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(at + 32));
    const __m256i a0 = _mm256_sign_epi8(w0, w0), a1 = _mm256_sign_epi8(w1, w1);
    for (int i = 0; i < MR; ++i) {
      int32_t quad;
      std::memcpy(&quad, x.q + (r + i) * x.stride + 4 * g, 4);
      const __m256i xb = _mm256_set1_epi32(quad);
      acc[i][0] =
          _mm256_add_epi32(acc[i][0], _mm256_madd_epi16(_mm256_maddubs_epi16(a0, _mm256_sign_epi8(xb, w0)), ones));
      acc[i][1] =
          _mm256_add_epi32(acc[i][1], _mm256_madd_epi16(_mm256_maddubs_epi16(a1, _mm256_sign_epi8(xb, w1)), ones));
    }
  }
  for (int i = 0; i < MR; ++i) {
    alignas(32) float v[kCols];
    for (int h = 0; h < 2; ++h) {
      const fast::v8f sums = (fast::v8f)_mm256_cvtepi32_ps(acc[i][h]);
      const fast::v8f s = fast::load8(w.scale + col + 8 * h), b = fast::load8(w.bias + col + 8 * h);
      fast::v8f out = sums * s * x.scale[r + i] + b;
      if (ep == PackedLinear::Epilogue::kGelu) out = fast::gelu_erf8(out);
      fast::store8(v + 8 * h, out);
    }
    float* dst = y + (r + i) * w.n + col;
    for (int64_t j = 0; j < ncols; ++j) dst[j] = ep == PackedLinear::Epilogue::kAccumulate ? dst[j] + v[j] : v[j];
  }
}

void block(const Layer& w, const Rows& x, int64_t r0, int64_t r1, int64_t panel0, int64_t panel1, float* y,
           PackedLinear::Epilogue ep) {
  for (int64_t pn = panel0; pn < panel1; ++pn)
    for (int64_t sub = 0; sub < kWidth / kCols; ++sub) {
      const int64_t col = pn * kWidth + sub * kCols;
      if (col >= w.n) break;
      const int8_t* panel = w.panels + pn * w.k4 * kWidth + sub * kCols * 4;
      const int64_t ncols = std::min(kCols, w.n - col);
      int64_t r = r0;
      for (; r + 4 <= r1; r += 4) tile<4>(w, x, r, panel, col, ncols, y, ep);
      switch (r1 - r) {
        case 3: tile<3>(w, x, r, panel, col, ncols, y, ep); break;
        case 2: tile<2>(w, x, r, panel, col, ncols, y, ep); break;
        case 1: tile<1>(w, x, r, panel, col, ncols, y, ep); break;
        default: break;
      }
    }
}

}  // namespace

Block avx2_block() { return &block; }

Block block(KernelSet set) {
  static const bool vnni = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512vnni");
  }();
  return set == KernelSet::kAvx512 && vnni ? avx512_block() : avx2_block();
}

void column_sums(const int8_t* panels, int64_t n_panels, int64_t k4, int32_t* sums) {
  // pmaddubsw of ones (unsigned) and the weights: 16-bit sums of input pairs (|.| <= 254), then
  // pmaddwd with ones: each column's four inputs of a group in one int32 lane.
  const __m256i ones8 = _mm256_set1_epi8(1), ones16 = _mm256_set1_epi16(1);
  for (int64_t pn = 0; pn < n_panels; ++pn) {
    __m256i acc[6];
    for (auto& a : acc) a = _mm256_setzero_si256();
    const int8_t* panel = panels + pn * k4 * kWidth;
    for (int64_t g = 0; g < k4 / 4; ++g)
      for (int v = 0; v < 6; ++v) {
        const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(panel + g * kWidth * 4 + 32 * v));
        acc[v] = _mm256_add_epi32(acc[v], _mm256_madd_epi16(_mm256_maddubs_epi16(ones8, w), ones16));
      }
    for (int v = 0; v < 6; ++v) _mm256_storeu_si256(reinterpret_cast<__m256i*>(sums + pn * kWidth + 8 * v), acc[v]);
  }
}

void quantize_rows(const float* x, int64_t m, int64_t k, int64_t stride, int8_t* q, float* scale) {
  for (int64_t r = 0; r < m; ++r) {
    const float* row = x + r * k;
    int8_t* out = q + r * stride;
    float top = 0.f;
    bool finite = true;
    for (int64_t p = 0; p < k; ++p) {
      top = std::max(top, std::fabs(row[p]));
      finite &= std::isfinite(row[p]);
    }
    std::memset(out, 0, static_cast<size_t>(stride));
    if (!finite) {  // the row's outputs are NaN, as the float kernels' would be
      scale[r] = std::numeric_limits<float>::quiet_NaN();
      continue;
    }
    const float s = top > 0.f ? top / 127.f : 1.f;
    scale[r] = s;
    for (int64_t p = 0; p < k; ++p) out[p] = static_cast<int8_t>(std::clamp(std::nearbyint(row[p] / s), -127.f, 127.f));
  }
}

}  // namespace asdcap::nn::int8
