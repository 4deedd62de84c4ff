// The int8 path of nn::PackedLinear (internal to src/nn): weights stored int8 with one scale per
// output feature, activations quantized per row to int8, products summed exactly in int32.
//
// Weight panels: [ceil(n / 48)][ceil(k / 4)][48][4], four consecutive inputs of an output column side
// by side (the operand order of VNNI's vpdpbusd), the padding zero (core/panels.hpp, pack_int8).
// Activations: row r of x as q[r][p] = round(x[r][p] / s[r]), s[r] = max_p |x[r][p]| / 127, stride
// ceil(k / 4) * 4 bytes, the padding zero. Output: y = float(sum_p q[r][p] * w[j][p]) * wscale[j] * s[r]
// + b[j], the sum exact in int32 (|sum| <= 127 * 127 * k < 2^31 for k <= kMaxInputs), so every kernel
// set gives the same integer sums.
#pragma once
#include <cstdint>

#include "asdcap/nn.hpp"

namespace asdcap::nn::int8 {

inline constexpr int64_t kMaxInputs = 131072;

struct Rows {  // activations quantized per row
  const int8_t* q = nullptr;
  const float* scale = nullptr;  // per row; NaN for a row holding a NaN or infinity
  int64_t stride = 0;            // bytes per row (a multiple of 4)
};

struct Layer {  // a layer's int8 panels and per-output data, padded to whole panels
  const int8_t* panels = nullptr;
  const float* bias = nullptr;
  const float* scale = nullptr;
  const int32_t* column_sums = nullptr;  // sum_p w[j][p] (the VNNI kernel's correction of its unsigned operand)
  int64_t n = 0, k4 = 0;                 // outputs; inputs rounded up to a multiple of 4
};

// Rows [r0, r1) of x against panels [panel0, panel1): y[r][col] (row stride n) = epilogue(...).
using Block = void (*)(const Layer& w, const Rows& x, int64_t r0, int64_t r1, int64_t panel0, int64_t panel1, float* y,
                       PackedLinear::Epilogue ep);

Block avx2_block();    // int8_avx2.cpp: AVX2 (pmaddubsw on the weights' magnitudes and the signed activations)
Block avx512_block();  // int8_avx512vnni.cpp: AVX-512 VNNI (vpdpbusd); only on CPUs with AVX512_VNNI
// The block this process runs: VNNI with the avx512 kernel set on a CPU that has it, else AVX2.
Block block(KernelSet set);
// Whether that block reads Layer::column_sums (only VNNI does; the AVX2 block leaves it unread).
inline bool uses_column_sums(KernelSet set) { return block(set) == avx512_block(); }

// sums[j] = sum_p w[j][p] for the columns of panels [0, n_panels) (48 per panel) of int8 panels with
// k4 inputs (AVX2; sums of bytes, exact).
void column_sums(const int8_t* panels, int64_t n_panels, int64_t k4, int32_t* sums);

// Quantizes rows [0, m) of x [m, k] into q (m * stride bytes) and scale (m floats).
void quantize_rows(const float* x, int64_t m, int64_t k, int64_t stride, int8_t* q, float* scale);

}  // namespace asdcap::nn::int8
