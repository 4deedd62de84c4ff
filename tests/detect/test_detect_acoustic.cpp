// Properties of the acoustic descriptor that follow from its definition.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "asdcap/audio.hpp"
#include "detect/acoustic.hpp"

using namespace asdcap;

namespace {
std::vector<float> features_of(const std::vector<float>& x) {
  return acoustic_features(x.data(), static_cast<int64_t>(x.size()), 0);
}
std::vector<float> noise(unsigned seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> nd(0, 0.05f);
  std::vector<float> x(kWindowSamples);
  for (auto& v : x) v = nd(gen);
  return x;
}
size_t index_of(const std::string& key) {
  const auto& info = acoustic_feature_info();
  for (size_t i = 0; i < info.size(); ++i)
    if (info[i].key == key) return i;
  ADD_FAILURE() << key;
  return 0;
}
}  // namespace

TEST(DetectAcoustic, DimensionMatchesItsDescription) {
  EXPECT_EQ(static_cast<int>(features_of(noise(1)).size()), acoustic_dim());
  EXPECT_EQ(acoustic_dim(), 159);
}

// Halving the amplitude lowers every log-mel value by 20 log10(2) = 6.0206 dB; all features but
// "level" are relative to the level, so only it moves (by exactly that much).
TEST(DetectAcoustic, GainMovesOnlyTheLevel) {
  auto x = noise(2);
  auto half = x;
  for (auto& v : half) v *= 0.5f;
  auto a = features_of(x), b = features_of(half);
  const size_t level = index_of("level");
  EXPECT_NEAR(a[level] - b[level], 20 * std::log10(2.0), 1e-3);
  for (size_t i = 0; i < a.size(); ++i) {
    if (i == level) continue;
    EXPECT_NEAR(a[i], b[i], 2e-3 * (1 + std::fabs(a[i]))) << acoustic_feature_info()[i].key;
  }
}

TEST(DetectAcoustic, ToneAndImpactsShowWhereExpected) {
  auto x = noise(3);
  auto base = features_of(x);
  auto tone = x;
  for (size_t i = 0; i < tone.size(); ++i) tone[i] += 0.1f * std::sin(2 * M_PI * 3000.0 * i / kSampleRate);
  auto t = features_of(tone);
  double max_rise = 0;
  for (int b = 0; b < kMelBins; ++b) {
    size_t k = index_of("band_mean_" + std::to_string(b));
    max_rise = std::max(max_rise, static_cast<double>(t[k] - base[k]));
  }
  EXPECT_GT(max_rise, 6.0);  // tone power 0.005 vs noise 0.0025 spread over all bands
  EXPECT_GT(t[index_of("crest_mean")], base[index_of("crest_mean")] + 3);
  auto knocks = x;
  for (int64_t at = 1000; at < kWindowSamples; at += 22050)  // 2 impacts per second
    for (int i = 0; i < 200; ++i)
      knocks[at + i] += 0.8f * std::exp(-i / 40.0f) * std::sin(2 * M_PI * 2000.0 * i / kSampleRate);
  auto k = features_of(knocks);
  EXPECT_GT(k[index_of("loudness_p99")], base[index_of("loudness_p99")] + 3);
}
