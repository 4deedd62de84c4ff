// Kernels of nn::WindowAttention: one window, a range of heads. Internal to src/nn.
#pragma once
#include <cstdint>
#include <vector>

#include "asdcap/nn.hpp"

namespace asdcap::nn::window {

struct Job {
  const float* qkv;     // [tokens][3C]: q | k | v, heads contiguous
  const int64_t* rows;  // the T rows of qkv (and out) that make up this window, in window order
  int64_t clip_row;     // first row of the window's clip (all its rows lie in that clip's map)
  const float* bias;    // [heads][T][T], in the layout of the kernel (see Layout)
  const float* mask;    // [T][T] (symmetric) or null
  float* out;           // [tokens][C]
  int64_t channels, head_dim, head_begin, head_end, tokens;
  float scale;                             // head_dim^-0.5
  const int64_t* prefetch_rows = nullptr;  // the next job's T rows (whole qkv rows), or null
};

// Scores more than this far below their maximum get probability 0 instead of exp(-64) ~ 1e-28 or
// less: far below float resolution against the maximum's 1, and they would otherwise become
// subnormal probabilities (every masked score does: -100) and products, each a microcode assist
// costing ~100 cycles on Intel CPUs.
inline constexpr float kNegligible = 64.f;

// Query-major bias[h][i][j] (i query, j key) for the generic and AVX kernels; key-major
// bias[h][j][i] for the AVX-512 one, which works on transposed scores.
enum class Layout { kQueryMajor, kKeyMajor };

// Which kernel runs a window of `tokens` tokens with heads of `head_dim` on a map whose qkv holds
// `map_elements` floats per clip with the given kernel set, and its bias layout.
enum class Kernel { kGeneric, kAvx64, kAvx512_64 };
Kernel choose(int64_t tokens, int64_t head_dim, int64_t map_elements, KernelSet set);
inline Layout layout_of(Kernel k) { return k == Kernel::kAvx512_64 ? Layout::kKeyMajor : Layout::kQueryMajor; }

void attend_generic(const Job& job, std::vector<float>& scratch);  // any T and head size
void attend_avx_64(const Job& job, std::vector<float>& scratch);   // T = 64, head_dim 16, 24 or 32
// T = 64, head_dim % 8 == 0; AVX-512 CPUs only (window_kernel_avx512.cpp). scratch holds
// avx512_scratch_floats(head_dim) floats.
void attend_avx512_64(const Job& job, float* scratch);
inline int64_t avx512_scratch_floats(int64_t head_dim) { return head_dim * 64 + 64 * 64; }

}  // namespace asdcap::nn::window
