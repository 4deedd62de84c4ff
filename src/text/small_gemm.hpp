// Matrix products with few rows (decoding steps: one row per beam). OpenBLAS packs the whole weight
// matrix on every call, which costs more than the product itself when m is small; these kernels
// stream each weight once. Private to the text/caption areas.
#pragma once
#include <cstdint>

namespace asdcap::text_detail {

constexpr int64_t kSmallRows = 8;  // use the kernels below for m <= kSmallRows

// y[m, n] = x[m, k] . w[k, n] + b[n]   (GPT-2 Conv1D layout; b may be null).
void small_linear_kn(const float* x, int64_t m, int64_t k, const float* w, int64_t n, const float* b, float* y);
// y[m, n] = x[m, k] . w[n, k]^T        (nn.Linear layout, e.g. the tied lm_head).
void small_linear_nt(const float* x, int64_t m, int64_t k, const float* w, int64_t n, float* y);

// Dispatch: the kernels above for m <= kSmallRows, otherwise nn::linear_kn / nn::linear (OpenBLAS).
void linear_kn(const float* x, int64_t m, int64_t k, const float* w, int64_t n, const float* b, float* y);
void linear_nt(const float* x, int64_t m, int64_t k, const float* w, int64_t n, float* y);

}  // namespace asdcap::text_detail
