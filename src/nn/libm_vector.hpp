// Vectorised loops with the C library's bits (libm_vector.cpp). Internal to src/nn: the public
// functions (nn::gelu_tanh, nn::exp_shifted_sum) spread or finish them.
#pragma once
#include <cstdint>

namespace asdcap::nn {

// x[i] = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) for i < n, on the calling thread.
void gelu_tanh_serial(float* x, int64_t n);

// x[i] = expf(x[i] - shift) for i < n, on the calling thread.
void exp_shifted_serial(float* x, int64_t n, float shift);

}  // namespace asdcap::nn
