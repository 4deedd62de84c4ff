// The kernel sets of nn::PackedLinear (internal to src/nn).
#pragma once
#include <cstdint>

#include "asdcap/nn.hpp"

namespace asdcap::nn::packed {

// Output features per packed panel, for every kernel set (and in model files, docs/model-files.md):
// the AVX-512 tile covers a whole panel, the AVX2 tile one 16-column third of it.
constexpr int64_t kPanelWidth = PackedLinear::kPanelWidth;

// Rows [r0, r1) of x [., k] against panels [panel0, panel1) of the packed weights of an n x k
// layer: y[r][col] = epilogue(x . W^T + b) (y row stride n).
using ForwardBlock = void (*)(const void* packed, const float* bias, int64_t n, int64_t k, const float* x, int64_t r0,
                              int64_t r1, int64_t panel0, int64_t panel1, float* y, PackedLinear::Epilogue ep);

struct Kernel {
  int64_t nr = 0;  // output features per register tile (kPanelWidth or a divisor of it)
  int64_t mr = 0;  // rows per register tile
  // One per WeightType (f32, f16, bf16 panels): half-precision weights are widened in registers, so
  // every product equals the f32 kernel's on the widened weights, bit for bit.
  ForwardBlock forward_block[3] = {nullptr, nullptr, nullptr};
};

const Kernel& avx2_kernel();    // packed_kernel_avx2.cpp
const Kernel& avx512_kernel();  // packed_kernel_avx512.cpp; only on CPUs with AVX-512

inline const Kernel& kernel(KernelSet set) { return set == KernelSet::kAvx512 ? avx512_kernel() : avx2_kernel(); }

}  // namespace asdcap::nn::packed
