// The int8 kernel for CPUs with AVX-512 VNNI (see packed_int8.hpp; compiled for x86-64-v4 + VNNI and
// called only when the CPU has it): 8 rows x 48 columns per register tile, vpdpbusd adding 4 products
// per int32 lane. vpdpbusd multiplies unsigned by signed bytes, so the activations enter as q + 128
// and 128 * sum_p w[j][p] is subtracted after: the same integer sums as the AVX2 kernel.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "fastmath.hpp"
#include "packed_int8.hpp"

namespace asdcap::nn::int8 {

namespace {

constexpr int64_t kWidth = PackedLinear::kPanelWidth;  // one tile covers a panel: 3 vectors of 16

template <int MR>
void tile(const Layer& w, const Rows& x, int64_t r, const int8_t* panel, int64_t col, int64_t ncols, float* y,
          PackedLinear::Epilogue ep) {
  __m512i acc[MR][3];
  for (int i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = acc[i][2] = _mm512_setzero_si512();
  const int64_t quads = w.k4 / 4;
  for (int64_t g = 0; g < quads; ++g) {
    const int8_t* at = panel + g * kWidth * 4;
    __m512i b[3];
    for (int v = 0; v < 3; ++v) b[v] = _mm512_loadu_si512(at + 64 * v);
    for (int i = 0; i < MR; ++i) {
      uint32_t quad;
      std::memcpy(&quad, x.q + (r + i) * x.stride + 4 * g, 4);
      const __m512i xb = _mm512_set1_epi32(static_cast<int32_t>(quad ^ 0x80808080u));  // q + 128, unsigned
      for (int v = 0; v < 3; ++v) acc[i][v] = _mm512_dpbusd_epi32(acc[i][v], xb, b[v]);
    }
  }
  for (int i = 0; i < MR; ++i) {
    alignas(64) float out[kWidth];
    for (int v = 0; v < 3; ++v) {
      const __m512i sums = _mm512_sub_epi32(
          acc[i][v], _mm512_maskz_slli_epi32(0xffff, _mm512_loadu_si512(w.column_sums + col + 16 * v), 7));
      const fast::v16f f = (fast::v16f)_mm512_maskz_cvtepi32_ps(0xffff, sums);
      const fast::v16f s = fast::load16(w.scale + col + 16 * v), bias = fast::load16(w.bias + col + 16 * v);
      fast::v16f o = f * s * x.scale[r + i] + bias;
      if (ep == PackedLinear::Epilogue::kGelu) o = fast::gelu_erf16(o);
      fast::store16(out + 16 * v, o);
    }
    float* dst = y + (r + i) * w.n + col;
    for (int64_t j = 0; j < ncols; ++j) dst[j] = ep == PackedLinear::Epilogue::kAccumulate ? dst[j] + out[j] : out[j];
  }
}

void block(const Layer& w, const Rows& x, int64_t r0, int64_t r1, int64_t panel0, int64_t panel1, float* y,
           PackedLinear::Epilogue ep) {
  for (int64_t pn = panel0; pn < panel1; ++pn) {
    const int64_t col = pn * kWidth;
    const int8_t* panel = w.panels + pn * w.k4 * kWidth;
    const int64_t ncols = std::min(kWidth, w.n - col);
    int64_t r = r0;
    for (; r + 8 <= r1; r += 8) tile<8>(w, x, r, panel, col, ncols, y, ep);
    switch (r1 - r) {
      case 7: tile<7>(w, x, r, panel, col, ncols, y, ep); break;
      case 6: tile<6>(w, x, r, panel, col, ncols, y, ep); break;
      case 5: tile<5>(w, x, r, panel, col, ncols, y, ep); break;
      case 4: tile<4>(w, x, r, panel, col, ncols, y, ep); break;
      case 3: tile<3>(w, x, r, panel, col, ncols, y, ep); break;
      case 2: tile<2>(w, x, r, panel, col, ncols, y, ep); break;
      case 1: tile<1>(w, x, r, panel, col, ncols, y, ep); break;
      default: break;
    }
  }
}

}  // namespace

Block avx512_block() { return &block; }

}  // namespace asdcap::nn::int8
