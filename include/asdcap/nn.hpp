// The small inference core shared by the audio encoder, the text encoder and the caption decoder.
// Row-major float32 everywhere. Matrix products go through OpenBLAS (cblas_sgemm).
#pragma once
#include <cstdint>
#include <vector>

namespace asdcap::nn {

// y[m, n] = x[m, k] · w[n, k]^T + b[n]   (PyTorch nn.Linear layout; b may be null).
// When accumulate is true, y += x · w^T (+ b) instead.
void linear(const float* x, int64_t m, int64_t k, const float* w, int64_t n, const float* b, float* y,
            bool accumulate = false);

// y[m, n] = x[m, k] · w[k, n] + b[n]   (Hugging Face GPT-2 Conv1D layout; b may be null).
void linear_kn(const float* x, int64_t m, int64_t k, const float* w, int64_t n, const float* b, float* y,
               bool accumulate = false);

// Row-wise LayerNorm over `dim` (biased variance, as PyTorch). y may alias x.
void layer_norm(const float* x, int64_t rows, int64_t dim, const float* gamma, const float* beta, float eps,
                float* y);

void gelu_erf(float* x, int64_t n);   // exact GELU: 0.5 x (1 + erf(x / sqrt 2))
void gelu_tanh(float* x, int64_t n);  // GPT-2 "gelu_new"
void relu(float* x, int64_t n);
void add(float* y, const float* x, int64_t n);  // y += x

// In-place softmax of each row (max-subtracted, float32 like PyTorch's CPU kernel).
void softmax_rows(float* x, int64_t rows, int64_t cols);

// CLAP's projection head (msclap Projection, eval mode), for `rows` vectors at once:
// e1 = x · W1^T; out = LayerNorm(e1 + GELU_erf(e1) · W2^T). W1 [out, in], W2 [out, out], no biases.
void clap_projection(const float* x, int64_t rows, int64_t in_dim, const float* w1, const float* w2,
                     int64_t out_dim, const float* ln_gamma, const float* ln_beta, float* out);

// IEEE half / bfloat16 to float.
float f16_to_f32(uint16_t h);
float bf16_to_f32(uint16_t h);

}  // namespace asdcap::nn
