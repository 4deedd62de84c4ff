// Two functions of the C library (glibc 2.36, Debian 12), restated several lanes at a time with the
// same bits as the scalar calls, so that vectorised loops keep exactly the values of the scalar
// loops they replace: tanhf (fdlibm's algorithm: s_tanhf.c on s_expm1f.c) in GPT-2's GELU, and expf
// (e_expf.c: a 32-entry table of 2^(i/32) and a cubic in double; glibc runs its FMA build on every
// CPU this library runs on, x86-64-v3 and later) in the beam search's softmax. Checked against the scalar calls on
// every float by scripts/dev/libm_exhaustive.sh and on samples of bit patterns by the tests
// NnActivations.VectorGeluTanhIsTheScalarFormulaBitForBit and NnActivations.ExpShiftedSumIsTheScalarLoopBitForBit.
//
// This file is compiled without floating-point contraction (src/nn/CMakeLists.txt): every
// operation rounded separately, as in the C library; the fused multiply-adds of the scalar code
// as the compiler emitted it are written out explicitly.
#include "nn/libm_vector.hpp"

#include <immintrin.h>

#include <bit>
#include <cstdint>

#pragma GCC diagnostic ignored "-Wpsabi"
namespace asdcap::nn {
namespace {

// Own vector type and helpers (no inline function shared with the files compiled with contraction).
typedef float v8f __attribute__((vector_size(32), aligned(4), may_alias));

// expm1f for a in (-2, 0] and [2, 44), the arguments tanh_v passes (and 0 for the lanes it
// discards): every branch of the scalar routine that these reach, as selects.
template <typename VF>
inline VF expm1_v(VF a) {
  using VI = decltype(a < a);
  typedef uint32_t VU __attribute__((vector_size(sizeof(VF))));  // exponent arithmetic, modulo 2^32
  const float ln2_hi = 6.9313812256e-01f, ln2_lo = 9.0580006145e-06f, invln2 = 1.4426950216e+00f;
  const float q1 = -3.3333335072e-02f, q2 = 1.5873016091e-03f, q3 = -7.9365076090e-05f, q4 = 4.0082177293e-06f,
              q5 = -2.0109921195e-07f;
  const VI bits = std::bit_cast<VI>(a);
  const VI hx = bits & 0x7fffffff;
  const VI neg = bits < 0;
  // Argument reduction where |a| > ln2 / 2: k = 1 or -1 below 1.5 ln2, else a / ln2 rounded half
  // away from zero by truncation; a = hi - lo, c the rounding error of that difference.
  const VI reduce = hx > 0x3eb17218;
  const VI near = hx < 0x3f851592;
  const VI k_far = __builtin_convertvector(invln2 * a + (neg ? VF{} - 0.5f : VF{} + 0.5f), VI);
  const VI k = reduce ? (near ? (neg ? VI{} - 1 : VI{} + 1) : k_far) : VI{};
  const VF t = __builtin_convertvector(k, VF);
  const VF hi = a - t * ln2_hi;
  const VF lo = t * ln2_lo;
  const VF x = reduce ? hi - lo : a;
  const VF c = reduce ? (hi - x) - lo : VF{};
  // x in the primary range
  const VF hfx = 0.5f * x;
  const VF hxs = x * hfx;
  const VF r1 = 1.0f + hxs * (q1 + hxs * (q2 + hxs * (q3 + hxs * (q4 + hxs * q5))));
  const VF t3 = 3.0f - r1 * hfx;
  VF e = hxs * ((r1 - t3) / (6.0f - x * t3));
  const VF res_k0 = x - (x * e - hxs);
  e = (x * (e - c) - c);
  e = e - hxs;
  const VF res_km1 = 0.5f * (x - e) - 0.5f;
  const VF res_k1 = x < -0.25f ? -2.0f * (e - (x + 0.5f)) : 1.0f + 2.0f * (x - e);
  const VU k23 = std::bit_cast<VU>(k) << 23;  // k added to a float's exponent field
  // k <= -2 or k > 56: exp(x) - 1 as (1 - (e - x)) 2^k - 1
  const VF res_far = std::bit_cast<VF>(std::bit_cast<VU>(1.0f - (e - x)) + k23) - 1.0f;
  // 2 <= k < 23: (1 - 2^-k) - (e - x), times 2^k
  const VI k_mid = k < 2 ? VI{} + 2 : (k > 22 ? VI{} + 22 : k);
  const VF t_mid = std::bit_cast<VF>((VI{} + 0x3f800000) - ((VI{} + 0x1000000) >> k_mid));
  const VF res_mid = std::bit_cast<VF>(std::bit_cast<VU>(t_mid - (e - x)) + k23);
  // 23 <= k <= 56: (x - (e + 2^-k)) + 1, times 2^k
  const VI k_high = k < 23 ? VI{} + 23 : (k > 56 ? VI{} + 56 : k);
  const VF t_high = std::bit_cast<VF>((0x7f - k_high) << 23);
  const VF res_high = std::bit_cast<VF>(std::bit_cast<VU>((x - (e + t_high)) + 1.0f) + k23);
  VF r = res_k0;
  r = k == -1 ? res_km1 : r;
  r = k == 1 ? res_k1 : r;
  r = (k <= -2) | (k > 56) ? res_far : r;
  r = (k >= 2) & (k <= 22) ? res_mid : r;
  r = (k >= 23) & (k <= 56) ? res_high : r;
  // |a| < 2^-25: a itself
  return hx < 0x33000000 ? a : r;
}

// tanhf, lane by lane: +-1 from |x| >= 22 (and for +-infinity), x * (1 + x) below 2^-55, NaN for NaN.
template <typename VF>
inline VF tanh_v(VF x) {
  using VI = decltype(x < x);
  const VI jx = std::bit_cast<VI>(x);
  const VI ix = jx & 0x7fffffff;
  const VF ax = std::bit_cast<VF>(ix);
  const VI big = ix >= 0x3f800000;  // |x| >= 1
  const VI mid = ix < 0x41b00000;   // |x| < 22 (NaN and infinities are not)
  const VF a = mid ? (big ? 2.0f * ax : -2.0f * ax) : VF{};
  const VF t = expm1_v(a);
  VF z = big ? 1.0f - 2.0f / (t + 2.0f) : -t / (t + 2.0f);
  z = mid ? z : VF{} + 1.0f;  // 1 - 1e-30 in float
  z = jx < 0 ? -z : z;
  z = ix < 0x24000000 ? x * (1.0f + x) : z;  // also +-0
  return ix > 0x7f800000 ? x + x : z;
}

// expf for 4 lanes (floats widened to double), as e_expf.c compiled with FMA: z = x 32/ln2
// rounded to the integer k by adding 1.5 2^52, r = z - k (both with x 32/ln2 fused), s = 2^(k/32)
// from the table and k's high bits put in the exponent, then s (c0 r^3 + c1 r^2 + c2 r + 1) rounded
// to float. Outside [-103.97, 88.72]: 0, infinity, NaN as the scalar call.
__m128 exp4(__m128 xf) {
  // The bits of 2^(i/32) rounded to double, less i 2^47 (added back with k's bits shifted by 47).
  static const uint64_t kTable[32] = {0x3ff0000000000000, 0x3fefd9b0d3158574, 0x3fefb5586cf9890f, 0x3fef9301d0125b51,
                                      0x3fef72b83c7d517b, 0x3fef54873168b9aa, 0x3fef387a6e756238, 0x3fef1e9df51fdee1,
                                      0x3fef06fe0a31b715, 0x3feef1a7373aa9cb, 0x3feedea64c123422, 0x3feece086061892d,
                                      0x3feebfdad5362a27, 0x3feeb42b569d4f82, 0x3feeab07dd485429, 0x3feea47eb03a5585,
                                      0x3feea09e667f3bcd, 0x3fee9f75e8ec5f74, 0x3feea11473eb0187, 0x3feea589994cce13,
                                      0x3feeace5422aa0db, 0x3feeb737b0cdc5e5, 0x3feec49182a3f090, 0x3feed503b23e255d,
                                      0x3feee89f995ad3ad, 0x3feeff76f2fb5e47, 0x3fef199bdd85529c, 0x3fef3720dcef9069,
                                      0x3fef5818dcfba487, 0x3fef7c97337b9b5f, 0x3fefa4afa2a490da, 0x3fefd0765b6e4540};
  const __m256d inv_ln2_n = _mm256_set1_pd(0x1.71547652b82fep+0 * 32), shift = _mm256_set1_pd(0x1.8p+52);
  const __m256d c0 = _mm256_set1_pd(0x1.c6af84b912394p-5 / 32 / 32 / 32);
  const __m256d c1 = _mm256_set1_pd(0x1.ebfce50fac4f3p-3 / 32 / 32);
  const __m256d c2 = _mm256_set1_pd(0x1.62e42ff0c52d6p-1 / 32);
  // Lanes outside the normal path compute from 0 and are replaced at the end.
  const __m128 normal = _mm_and_ps(_mm_cmp_ps(xf, _mm_set1_ps(-0x1.9fe368p6f), _CMP_GE_OQ),
                                   _mm_cmp_ps(xf, _mm_set1_ps(0x1.62e42ep6f), _CMP_LE_OQ));
  const __m256d xd = _mm256_cvtps_pd(_mm_and_ps(xf, normal));
  __m256d kd = _mm256_fmadd_pd(xd, inv_ln2_n, shift);
  const __m256i ki = _mm256_castpd_si256(kd);
  kd = _mm256_sub_pd(kd, shift);
  const __m256d r = _mm256_fmsub_pd(xd, inv_ln2_n, kd);
  const __m256i idx = _mm256_and_si256(ki, _mm256_set1_epi64x(31));
  const __m256i t = _mm256_add_epi64(_mm256_i64gather_epi64(reinterpret_cast<const long long*>(kTable), idx, 8),
                                     _mm256_slli_epi64(ki, 47));
  const __m256d s = _mm256_castsi256_pd(t);
  const __m256d z = _mm256_fmadd_pd(r, c0, c1);
  const __m256d r2 = _mm256_mul_pd(r, r);
  __m256d y = _mm256_fmadd_pd(r, c2, _mm256_set1_pd(1.0));
  y = _mm256_fmadd_pd(z, r2, y);
  y = _mm256_mul_pd(y, s);
  const __m128 result = _mm256_cvtpd_ps(y);
  // Elsewhere: +infinity above 88.72, 0 below -103.97 (and for -infinity), NaN for NaN.
  const __m128 above = _mm_cmp_ps(xf, _mm_set1_ps(0x1.62e42ep6f), _CMP_GT_OQ);
  const __m128 nan = _mm_cmp_ps(xf, xf, _CMP_UNORD_Q);
  __m128 out = _mm_and_ps(result, normal);
  out = _mm_or_ps(out, _mm_and_ps(above, _mm_set1_ps(__builtin_inff())));
  out = _mm_or_ps(out, _mm_and_ps(nan, _mm_add_ps(xf, xf)));
  return out;
}

}  // namespace

void exp_shifted_serial(float* x, int64_t n, float shift) {
  const __m128 sh = _mm_set1_ps(shift);
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) _mm_storeu_ps(x + i, exp4(_mm_sub_ps(_mm_loadu_ps(x + i), sh)));
  if (i < n) {  // the tail through the same code
    float tail[4] = {};
    for (int64_t j = i; j < n; ++j) tail[j - i] = x[j];
    _mm_storeu_ps(tail, exp4(_mm_sub_ps(_mm_loadu_ps(tail), sh)));
    for (int64_t j = i; j < n; ++j) x[j] = tail[j - i];
  }
}

// 0.5 v (1 + tanh(c (v + 0.044715 v^3))), c = sqrt(2/pi), rounded as the scalar loop compiled for
// x86-64-v3 rounds it: t = (0.044715 v) v, then fma(v, t, v), then the products and the sum.
void gelu_tanh_serial(float* x, int64_t n) {
  const auto gelu = [](v8f v) {
    const v8f t = 0.044715f * v * v;
    const v8f inner = _mm256_fmadd_ps(v, t, v);
    const v8f half = 0.5f * v;
    return half * (1.0f + tanh_v(0.79788456080286536f * inner));
  };
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) *reinterpret_cast<v8f*>(x + i) = gelu(*reinterpret_cast<const v8f*>(x + i));
  if (i < n) {  // the tail through the same vector code
    v8f tail{};
    for (int64_t j = i; j < n; ++j) tail[j - i] = x[j];
    tail = gelu(tail);
    for (int64_t j = i; j < n; ++j) x[j] = tail[j - i];
  }
}

}  // namespace asdcap::nn
