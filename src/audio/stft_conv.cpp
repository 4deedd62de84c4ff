// msclap's STFT arithmetic for the bins where its rounding shows.
//
// torchlibrosa computes the STFT as a float32 Conv1d with 1024-tap kernels cos(2 pi k n / 1024) w[n]
// and -sin(...) w[n] (computed in float64, rounded to float32). oneDNN evaluates each output as one
// sequential chain of fused multiply-adds over the taps, so every bin carries rounding noise of
// about 1e-7 of the frame's peak amplitude. asdcap's double FFT is exact; on mel bands far below
// the frame's loudest band msclap's noise is what differs (2e-3 dB at 90 dB down). There asdcap
// redoes those bins msclap's way: the same float32 kernels, the same chain of fused multiply-adds,
// vectorised across 16 bins and 3 frames (12 with AVX-512; each lane is still one sequential chain:
// msclap's order).
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "audio_internal.hpp"

namespace asdcap {
namespace {

constexpr int kTaps = kFftSize;
constexpr int kGroupStride = 2 * kConvGroupBins;  // per tap: 16 real kernels, then 16 imaginary

// [group][tap][re 16 | im 16]; bins past 512 have zero kernels.
const std::vector<float>& conv_kernels(const double* window) {
  static const std::vector<float> table = [window] {
    std::vector<float> t(static_cast<size_t>(kConvGroups) * kTaps * kGroupStride, 0.f);
    for (int k = 0; k < kFftBins; ++k) {
      const int g = k / kConvGroupBins, lane = k % kConvGroupBins;
      for (int n = 0; n < kTaps; ++n) {
        const double angle = 2.0 * M_PI * static_cast<double>(k) * n / kTaps;
        float* at = t.data() + (static_cast<size_t>(g) * kTaps + n) * kGroupStride;
        at[lane] = static_cast<float>(std::cos(angle) * window[n]);
        at[kConvGroupBins + lane] = static_cast<float>(-std::sin(angle) * window[n]);
      }
    }
    return t;
  }();
  return table;
}

// torch: real ** 2 + imag ** 2, in float32.
inline double power_of(float re, float im) {
  const float rr = re * re, ii = im * im;
  return static_cast<double>(rr + ii);
}

// F frames (1..3) against one 16-bin group: 4F accumulators plus the 4 kernel vectors of a tap fill
// the 16 AVX registers, and each kernel load serves F frames.
template <int F>
__attribute__((target("avx2,fma"))) void group_power_fma(const float* const* frames, const float* kern,
                                                         double* const* power) {
  __m256 re[F][2], im[F][2];
  for (int f = 0; f < F; ++f) re[f][0] = re[f][1] = im[f][0] = im[f][1] = _mm256_setzero_ps();
  for (int n = 0; n < kTaps; ++n) {
    const float* k = kern + static_cast<size_t>(n) * kGroupStride;
    const __m256 c0 = _mm256_loadu_ps(k), c1 = _mm256_loadu_ps(k + 8);
    const __m256 s0 = _mm256_loadu_ps(k + 16), s1 = _mm256_loadu_ps(k + 24);
    for (int f = 0; f < F; ++f) {
      const __m256 x = _mm256_broadcast_ss(frames[f] + n);
      re[f][0] = _mm256_fmadd_ps(x, c0, re[f][0]);
      re[f][1] = _mm256_fmadd_ps(x, c1, re[f][1]);
      im[f][0] = _mm256_fmadd_ps(x, s0, im[f][0]);
      im[f][1] = _mm256_fmadd_ps(x, s1, im[f][1]);
    }
  }
  for (int f = 0; f < F; ++f) {
    alignas(32) float r[16], i[16];
    _mm256_store_ps(r, re[f][0]);
    _mm256_store_ps(r + 8, re[f][1]);
    _mm256_store_ps(i, im[f][0]);
    _mm256_store_ps(i + 8, im[f][1]);
    for (int e = 0; e < kConvGroupBins; ++e) power[f][e] = power_of(r[e], i[e]);
  }
}

// The same chains with AVX-512: the 16 bins of a group in one register (real and imaginary parts in
// two), so F frames take 2F accumulators and each pair of kernel loads serves F frames.
template <int F>
__attribute__((target("avx512f"))) void group_power_avx512(const float* const* frames, const float* kern,
                                                           double* const* power) {
  __m512 re[F], im[F];
  for (int f = 0; f < F; ++f) re[f] = im[f] = _mm512_setzero_ps();
  for (int n = 0; n < kTaps; ++n) {
    const float* k = kern + static_cast<size_t>(n) * kGroupStride;
    const __m512 c = _mm512_loadu_ps(k), s = _mm512_loadu_ps(k + 16);
    for (int f = 0; f < F; ++f) {
      const __m512 x = _mm512_set1_ps(frames[f][n]);
      re[f] = _mm512_fmadd_ps(x, c, re[f]);
      im[f] = _mm512_fmadd_ps(x, s, im[f]);
    }
  }
  for (int f = 0; f < F; ++f) {
    alignas(64) float r[16], i[16];
    _mm512_store_ps(r, re[f]);
    _mm512_store_ps(i, im[f]);
    for (int e = 0; e < kConvGroupBins; ++e) power[f][e] = power_of(r[e], i[e]);
  }
}

// Without FMA hardware: a fused multiply-add as one rounding of the exact double product and sum
// (a float product is exact in double; the double sum then differs from a true fma only in
// vanishingly rare double-rounding cases).
void group_power_portable(const float* frame, const float* kern, double* power) {
  float re[kConvGroupBins] = {}, im[kConvGroupBins] = {};
  for (int n = 0; n < kTaps; ++n) {
    const double x = frame[n];
    const float* k = kern + static_cast<size_t>(n) * kGroupStride;
    for (int lane = 0; lane < kConvGroupBins; ++lane) {
      re[lane] = static_cast<float>(x * k[lane] + re[lane]);
      im[lane] = static_cast<float>(x * k[kConvGroupBins + lane] + im[lane]);
    }
  }
  for (int lane = 0; lane < kConvGroupBins; ++lane) power[lane] = power_of(re[lane], im[lane]);
}

}  // namespace

void conv_stft_power(const float* const* frames, int count, const double* window, int group, double* const* power) {
  static const bool fma = __builtin_cpu_supports("fma") && __builtin_cpu_supports("avx2");
  static const bool avx512 = __builtin_cpu_supports("avx512f");
  const float* kern = conv_kernels(window).data() + static_cast<size_t>(group) * kTaps * kGroupStride;
  if (avx512) {
    constexpr int kF = 12;  // 24 accumulators of the 32 registers
    int first = 0;
    for (; first + kF <= count; first += kF) group_power_avx512<kF>(frames + first, kern, power + first);
    for (; first < count; ++first) group_power_avx512<1>(frames + first, kern, power + first);
    return;
  }
  for (int first = 0; first < count; first += 3) {
    const int n = std::min(3, count - first);
    if (!fma) {
      for (int f = 0; f < n; ++f) group_power_portable(frames[first + f], kern, power[first + f]);
    } else if (n == 3) {
      group_power_fma<3>(frames + first, kern, power + first);
    } else if (n == 2) {
      group_power_fma<2>(frames + first, kern, power + first);
    } else {
      group_power_fma<1>(frames + first, kern, power + first);
    }
  }
}

}  // namespace asdcap
