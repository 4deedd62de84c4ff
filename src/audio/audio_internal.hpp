// Internals of the audio front end shared with its benchmark.
#pragma once
#include <fftw3.h>

#include <cstdint>
#include <vector>

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

// The n samples with `pad` samples added at each end by numpy's / torch's "reflect" rule (the edge
// sample not repeated), extended periodically for signals shorter than the pad: the centred frames
// of an STFT.
std::vector<float> reflect_pad(const float* samples, int64_t n, int64_t pad);

// scipy.signal.get_window("hann", 1024, fftbins=True): the periodic Hann window of the 1024-point
// STFTs (msclap's front end, the autoencoder baseline's features), computed once.
const std::vector<double>& periodic_hann_1024();

}  // namespace asdcap
