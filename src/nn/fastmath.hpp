// Branch-free float exp / erf written so that GCC vectorises the loops that call them
// (no libm calls, no errno). Internal to src/nn.
#pragma once
#include <bit>
#include <cmath>
#include <cstdint>

namespace asdcap::nn::fast {

// Cephes expf: Cody-Waite reduction by ln 2, degree-6 polynomial; about 1 ulp on [-87.3, 88].
// Inputs are clamped to that range: below -87.3 gives ~1e-38 (not 0), above 88 gives exp(88);
// harmless where it is used (softmax after max subtraction, erf tail, sigmoid).
inline float exp(float x) {
  x = x < -87.336544f ? -87.336544f : x;
  x = x > 88.0f ? 88.0f : x;
  const float k = std::floor(x * 1.44269504088896341f + 0.5f);
  float r = x - k * 0.693359375f;
  r = r - k * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * (r * r) + r + 1.0f;
  const int32_t e = static_cast<int32_t>(k) + 127;
  return p * std::bit_cast<float>(static_cast<uint32_t>(e) << 23);
}

// erf by Abramowitz & Stegun 7.1.26 (|error| <= 1.5e-7), the formula PyTorch's vectorised CPU
// kernels use for GELU: erf(|x|) = 1 - t (a1 + t (a2 + ...)) exp(-x^2), t = 1 / (1 + p |x|).
inline float erf(float x) {
  const float ax = std::fabs(x);
  const float t = 1.0f / (1.0f + 0.3275911f * ax);
  float p = 1.061405429f;
  p = p * t - 1.453152027f;
  p = p * t + 1.421413741f;
  p = p * t - 0.284496736f;
  p = p * t + 0.254829592f;
  const float y = 1.0f - p * t * exp(-ax * ax);
  return x < 0 ? -y : y;
}

inline float gelu_erf(float x) { return 0.5f * x * (1.0f + erf(x * 0.70710678118654752f)); }

inline float sigmoid(float x) { return 1.0f / (1.0f + exp(-x)); }

}  // namespace asdcap::nn::fast
