// Branch-free float exp / erf written so that GCC vectorises the loops that call them
// (no libm calls, no errno). Internal to src/nn.
#pragma once
#include <bit>
#include <cmath>
#include <cstdint>

// Files compiled for AVX-512 (packed_kernel_avx512.cpp, ...) include this header too: an inline
// namespace named after the target keeps their copies of these inline functions apart from the
// AVX2 ones, so the linker never hands an AVX2-only CPU an AVX-512 copy.
#if defined(__AVX512F__)
#define ASDCAP_FAST_TARGET target_avx512
#else
#define ASDCAP_FAST_TARGET target_avx2
#endif

namespace asdcap::nn::fast {
inline namespace ASDCAP_FAST_TARGET {

// Cephes expf: Cody-Waite reduction by ln 2, degree-6 polynomial; about 1 ulp on [-87.3, 88].
// Inputs are clamped to that range: below -87.3 gives ~1e-38 (not 0), above 88 gives exp(88);
// harmless where it is used (softmax after max subtraction, erf tail, sigmoid). A NaN gives NaN:
// the exponent is taken from 0 instead (a NaN converted to int is undefined), the polynomial from x.
inline float exp(float x) {
  x = x < -87.336544f ? -87.336544f : x;
  x = x > 88.0f ? 88.0f : x;
  const float xk = x == x ? x : 0.0f;
  // k = floor(x / ln2 + 0.5) by truncating a positive number (std::floor is not inlined without
  // -fno-trapping-math, which would stop the vectorisation of the callers' loops).
  const int32_t ki = static_cast<int32_t>(xk * 1.44269504088896341f + 128.5f) - 128;
  const float k = static_cast<float>(ki);
  float r = x - k * 0.693359375f;
  r = r - k * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * (r * r) + r + 1.0f;
  const int32_t e = ki + 127;
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

}  // namespace ASDCAP_FAST_TARGET
}  // namespace asdcap::nn::fast

// ---- 8-wide versions (GCC vector extensions: one AVX2 register) ----
// Inline helpers of src/nn only, never an interface: the "AVX vector return without AVX changes
// the ABI" note does not apply.
#pragma GCC diagnostic ignored "-Wpsabi"
namespace asdcap::nn::fast {
inline namespace ASDCAP_FAST_TARGET {

typedef float v8f __attribute__((vector_size(32), aligned(4), may_alias));
// 16-wide: one AVX-512 register, or two AVX ones without AVX-512.
typedef float v16f __attribute__((vector_size(64), aligned(4), may_alias));

inline v8f load8(const float* p) { return *reinterpret_cast<const v8f*>(p); }
inline void store8(float* p, v8f x) { *reinterpret_cast<v8f*>(p) = x; }
inline v16f load16(const float* p) { return *reinterpret_cast<const v16f*>(p); }
inline void store16(float* p, v16f x) { *reinterpret_cast<v16f*>(p) = x; }

// Same algorithm and constants as the scalar exp above, for 8 or 16 lanes (the same value per lane
// for either width).
template <typename VF>
inline VF expv(VF x) {
  using VI = decltype(x < x);  // the int32 vector of the same width
  const VF lo = VF{} + -87.336544f, hi = VF{} + 88.0f;
  x = x < lo ? lo : x;
  x = x > hi ? hi : x;
  const VF xk = x == x ? x : VF{};  // NaN lanes: exponent from 0, NaN from the polynomial
  const VI ki = __builtin_convertvector(xk * 1.44269504088896341f + 128.5f, VI) - 128;
  const VF k = __builtin_convertvector(ki, VF);
  VF r = x - k * 0.693359375f;
  r = r - k * -2.12194440e-4f;
  VF p = VF{} + 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * (r * r) + r + 1.0f;
  const VI e = (ki + 127) << 23;
  return p * std::bit_cast<VF>(e);
}

template <typename VF>
inline VF erfv(VF x) {
  using VI = decltype(x < x);  // the int32 vector of the same width
  const VF ax = std::bit_cast<VF>(std::bit_cast<VI>(x) & 0x7fffffff);
  const VF t = 1.0f / (1.0f + 0.3275911f * ax);
  VF p = VF{} + 1.061405429f;
  p = p * t - 1.453152027f;
  p = p * t + 1.421413741f;
  p = p * t - 0.284496736f;
  p = p * t + 0.254829592f;
  // Where exp(-x^2) < 1e-35 (|x| > 8.9), erf(x) is +-1 in float whatever the tail; the tail is then
  // taken as 0 so that p * t * exp never makes a subnormal (a microcode assist per element on Intel).
  const VF tail = -ax * ax < -80.f ? VF{} : expv(-ax * ax);
  const VF y = 1.0f - p * t * tail;
  return x < 0 ? -y : y;
}

template <typename VF>
inline VF gelu_erfv(VF x) {
  return 0.5f * x * (1.0f + erfv(x * 0.70710678118654752f));
}

inline v8f exp8(v8f x) { return expv(x); }
inline v8f gelu_erf8(v8f x) { return gelu_erfv(x); }
inline v8f sigmoid8(v8f x) { return 1.0f / (1.0f + exp8(-x)); }

// Applies f8 to x[0, n): every element goes through the same vector code (a short tail is padded),
// so a value never depends on where it sits in the array.
template <typename F8>
inline void apply8(float* x, int64_t n, F8 f8) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) store8(x + i, f8(load8(x + i)));
  if (i < n) {
    float tail[8] = {};
    for (int64_t j = i; j < n; ++j) tail[j - i] = x[j];
    store8(tail, f8(load8(tail)));
    for (int64_t j = i; j < n; ++j) x[j] = tail[j - i];
  }
}

}  // namespace ASDCAP_FAST_TARGET
}  // namespace asdcap::nn::fast

// ---- AVX-512 versions, where the build targets it ---------------------------------------------
#if defined(__AVX512F__)
#include <immintrin.h>

namespace asdcap::nn::fast {
inline namespace ASDCAP_FAST_TARGET {

// exp for x <= 0 (softmax after max subtraction), ~1 ulp: the same reduction and polynomial as
// expv, with the exponent applied by vscalefps; exactly 0 where x < -cutoff (see the callers).
inline v16f exp16_nonpositive(v16f xv, float cutoff) {
  const __m512 x = xv;
  // (maskz forms throughout: the plain ones trip GCC 12's -Wmaybe-uninitialized in its own headers)
  const __m512 n = _mm512_maskz_roundscale_ps(0xffff, _mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                              _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  p = _mm512_add_ps(_mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r), _mm512_set1_ps(1.0f));
  const __mmask16 keep = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-cutoff), _CMP_GE_OQ);
  return _mm512_maskz_scalef_ps(keep, p, n);
}

// Exact GELU, 0.5 x (1 + erf(x / sqrt 2)), with erfv's formula (A&S 7.1.26, |error| <= 1.5e-7) but
// cheaper instructions: t = 1 / (1 + p |z|) by vrcp14ps and one Newton step (within 2 ulp; a
// division is the slowest AVX-512 instruction), exp(-z^2) by vscalefps, and the tail taken as 0
// where exp(-z^2) < 1e-35 (erf is +-1 in float there).
inline v16f gelu_erf16(v16f xv) {
  const __m512 x = xv;
  const __m512 z = _mm512_mul_ps(x, _mm512_set1_ps(0.70710678118654752f));
  const __m512 az = _mm512_abs_ps(z);
  const __m512 den = _mm512_fmadd_ps(az, _mm512_set1_ps(0.3275911f), _mm512_set1_ps(1.0f));
  const __m512 r0 = _mm512_maskz_rcp14_ps(0xffff, den);
  const __m512 t = _mm512_fmadd_ps(r0, _mm512_fnmadd_ps(den, r0, _mm512_set1_ps(1.0f)), r0);
  __m512 p = _mm512_set1_ps(1.061405429f);
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-1.453152027f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(1.421413741f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-0.284496736f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.254829592f));
  const __m512 w = _mm512_mul_ps(az, az);
  const __m512 e = exp16_nonpositive(_mm512_sub_ps(_mm512_setzero_ps(), w), 80.f);  // exp(-z^2)
  const __m512 y = _mm512_fnmadd_ps(_mm512_mul_ps(p, t), e, _mm512_set1_ps(1.0f));  // erf(|z|)
  // erf(z) = copysign(y, z); gelu = 0.5 x (1 + erf(z))
  const __m512 erf = _mm512_castsi512_ps(
      _mm512_ternarylogic_epi32(_mm512_castps_si512(y), _mm512_castps_si512(z), _mm512_set1_epi32(0x7fffffff), 0xe4));
  return _mm512_mul_ps(_mm512_mul_ps(x, _mm512_set1_ps(0.5f)), _mm512_add_ps(erf, _mm512_set1_ps(1.0f)));
}

}  // namespace ASDCAP_FAST_TARGET
}  // namespace asdcap::nn::fast
#endif
