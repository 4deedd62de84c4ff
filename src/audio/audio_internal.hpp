// Internals of the audio front end shared with its benchmark.
#pragma once
#include <fftw3.h>

#include <cstdint>

#include "asdcap/audio.hpp"

namespace asdcap {

// The 1024-point double-precision real-to-complex FFTW plan of the STFT, created once (FFTW's
// planner is not thread-safe); execute it with fftw_execute_dft_r2c on buffers from fftw_malloc,
// which any number of threads may do at the same time.
fftw_plan stft_fft_plan();

// msclap's own float32 convolution STFT (stft_conv.cpp) for the 16 bins [16 group, 16 group + 16)
// of `count` 1024-sample frames (unwindowed): power[f][0..16) for frames[f]. `window` is the
// periodic Hann window (1024 doubles), the same on every call.
constexpr int kFftBins = 513;
constexpr int kConvGroupBins = 16;
constexpr int kConvGroups = (kFftBins + kConvGroupBins - 1) / kConvGroupBins;  // 33
void conv_stft_power(const float* const* frames, int count, const double* window, int group, double* const* power);

// Index of sample i of an n-sample signal padded by numpy's / torch's "reflect" rule (the edge
// sample not repeated), extended periodically for signals shorter than the pad.
inline int64_t reflect_index(int64_t i, int64_t n) {
  if (n == 1) return 0;
  const int64_t period = 2 * (n - 1);
  i %= period;
  if (i < 0) i += period;
  return i < n ? i : period - i;
}

}  // namespace asdcap
