// The "acoustic" embedding: a fixed-length descriptor of a clip's log-mel spectrogram, no weights.
// Every feature is in decibels (or a dB-like log ratio), so one standardisation fits all.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace asdcap {

struct AcousticFeatureInfo {
  std::string key;   // e.g. "band_mean_12", "loudness_p99"
  std::string unit;  // "dB"
};

// Names of the descriptor's dimensions, in order.
const std::vector<AcousticFeatureInfo>& acoustic_feature_info();
int acoustic_dim();

// Descriptor of one window of `n` samples at 44.1 kHz: statistics of its log-mel spectrogram
// (log_mel, computed on `threads` threads) and an envelope analysis of the waveform itself.
std::vector<float> acoustic_features(const float* samples, int64_t n, int threads = 1);

}  // namespace asdcap
