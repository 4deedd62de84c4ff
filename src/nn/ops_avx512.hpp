// AVX-512 pieces of ops.cpp (internal to src/nn).
#pragma once
#include <cstdint>

namespace asdcap::nn {

inline constexpr int64_t kLayerNormAvx512DimMultiple = 16;

// layer_norm_row (ops.cpp) on every row, four rows at a time: the same arithmetic but for the order
// of the double sums. dim a multiple of kLayerNormAvx512DimMultiple, gamma and beta given; AVX-512
// CPUs only.
void layer_norm_avx512(const float* x, int64_t rows, int64_t dim, const float* gamma, const float* beta, float eps,
                       float* y);

}  // namespace asdcap::nn
