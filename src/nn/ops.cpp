#include <cblas.h>

#include <cmath>
#include <cstring>

#include "asdcap/nn.hpp"

namespace asdcap::nn {

namespace {
void broadcast_bias(float* y, int64_t m, int64_t n, const float* b, bool accumulate) {
  for (int64_t i = 0; i < m; ++i) {
    float* row = y + i * n;
    if (b) {
      if (accumulate)
        for (int64_t j = 0; j < n; ++j) row[j] += b[j];
      else
        std::memcpy(row, b, static_cast<size_t>(n) * sizeof(float));
    } else if (!accumulate) {
      std::memset(row, 0, static_cast<size_t>(n) * sizeof(float));
    }
  }
}
}  // namespace

void linear(const float* x, int64_t m, int64_t k, const float* w, int64_t n, const float* b, float* y,
            bool accumulate) {
  broadcast_bias(y, m, n, b, accumulate);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(m), static_cast<int>(n),
              static_cast<int>(k), 1.0f, x, static_cast<int>(k), w, static_cast<int>(k), 1.0f, y,
              static_cast<int>(n));
}

void linear_kn(const float* x, int64_t m, int64_t k, const float* w, int64_t n, const float* b, float* y,
               bool accumulate) {
  broadcast_bias(y, m, n, b, accumulate);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(m), static_cast<int>(n),
              static_cast<int>(k), 1.0f, x, static_cast<int>(k), w, static_cast<int>(n), 1.0f, y,
              static_cast<int>(n));
}

void layer_norm(const float* x, int64_t rows, int64_t dim, const float* gamma, const float* beta, float eps,
                float* y) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * dim;
    float* yr = y + r * dim;
    double mean = 0;
    for (int64_t i = 0; i < dim; ++i) mean += xr[i];
    mean /= static_cast<double>(dim);
    double var = 0;
    for (int64_t i = 0; i < dim; ++i) {
      double d = xr[i] - mean;
      var += d * d;
    }
    var /= static_cast<double>(dim);
    const float inv = static_cast<float>(1.0 / std::sqrt(var + eps));
    const float mu = static_cast<float>(mean);
    for (int64_t i = 0; i < dim; ++i) {
      float v = (xr[i] - mu) * inv;
      yr[i] = gamma ? v * gamma[i] + (beta ? beta[i] : 0.f) : v;
    }
  }
}

void gelu_erf(float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] = 0.5f * x[i] * (1.0f + std::erf(x[i] * 0.70710678118654752f));
}

void gelu_tanh(float* x, int64_t n) {
  const float c = 0.79788456080286536f;  // sqrt(2/pi)
  for (int64_t i = 0; i < n; ++i) {
    float v = x[i];
    x[i] = 0.5f * v * (1.0f + std::tanh(c * (v + 0.044715f * v * v * v)));
  }
}

void relu(float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] = x[i] > 0 ? x[i] : 0.f;
}

void add(float* y, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += x[i];
}

void softmax_rows(float* x, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; ++r) {
    float* row = x + r * cols;
    float mx = -INFINITY;
    for (int64_t j = 0; j < cols; ++j) mx = row[j] > mx ? row[j] : mx;
    float sum = 0;
    for (int64_t j = 0; j < cols; ++j) {
      row[j] = std::exp(row[j] - mx);
      sum += row[j];
    }
    const float inv = 1.0f / sum;
    for (int64_t j = 0; j < cols; ++j) row[j] *= inv;
  }
}

void clap_projection(const float* x, int64_t rows, int64_t in_dim, const float* w1, const float* w2,
                     int64_t out_dim, const float* ln_gamma, const float* ln_beta, float* out) {
  std::vector<float> e1(static_cast<size_t>(rows * out_dim)), h(e1.size());
  linear(x, rows, in_dim, w1, out_dim, nullptr, e1.data());
  h = e1;
  gelu_erf(h.data(), static_cast<int64_t>(h.size()));
  linear(h.data(), rows, out_dim, w2, out_dim, nullptr, e1.data(), /*accumulate=*/true);
  layer_norm(e1.data(), rows, out_dim, ln_gamma, ln_beta, 1e-5f, out);
}

float f16_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f;
  uint32_t mant = h & 0x3ff;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: normalise
      exp = 127 - 15 + 1;
      while ((mant & 0x400) == 0) {
        mant <<= 1;
        --exp;
      }
      mant &= 0x3ff;
      bits = sign | (exp << 23) | (mant << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

float bf16_to_f32(uint16_t h) {
  uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

}  // namespace asdcap::nn
