// Properties of the acoustic descriptor that follow from its definition.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "asdcap/audio.hpp"
#include "asdcap/backend.hpp"
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
  // level, 16 band means, 4 loudness and 2 flux statistics, per group of 8 bands 6 modulation depths
  // + line prominence + burst excess + interquartile range, 5 octave bands x (envelope depth + line
  // prominence), 6 spectral-shape statistics.
  EXPECT_EQ(acoustic_dim(), 1 + 16 + 4 + 2 + 8 * (6 + 3) + 5 * 2 + 6);
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
  for (int g = 0; g < kMelBins / 4; ++g) {
    size_t k = index_of("band_mean_" + std::to_string(g));
    max_rise = std::max(max_rise, static_cast<double>(t[k] - base[k]));
  }
  EXPECT_GT(max_rise, 6.0);  // tone power 0.005 vs noise 0.0025 spread over all bands
  EXPECT_GT(t[index_of("crest_mean")], base[index_of("crest_mean")] + 3);
  auto knocks = x;
  for (int64_t at = 1000; at < kWindowSamples; at += 22050)  // 2 impacts per second
    for (int i = 0; i < 200; ++i)
      knocks[at + i] += 0.8f * std::exp(-i / 40.0f) * std::sin(2 * M_PI * 2000.0 * i / kSampleRate);
  auto k = features_of(knocks);
  double max_burst_rise = 0;
  for (int g = 0; g < kMelBins / 8; ++g) {
    size_t i = index_of("burst_mean_" + std::to_string(g));
    max_burst_rise = std::max(max_burst_rise, static_cast<double>(k[i] - base[i]));
  }
  // Each knock lifts about 3 frames (1024-sample window, hop 320) of its group well over 6 dB above the
  // local median: 2 knocks per second add at least 6 dB x 6 / 138 frames = 0.26 dB to the mean excess.
  EXPECT_GT(max_burst_rise, 0.25);
}

namespace {
// A tone of frequency f whose amplitude is modulated with depth m at rate fm: (1 + m cos(2 pi fm t)).
// Its power envelope is (1 + m cos)^2 = 1 + m^2/2 + 2m cos(w t) + (m^2/2) cos(2 w t): relative to its
// mean, a sinusoid of amplitude 2m / (1 + m^2/2) at fm and one of (m^2/2) / (1 + m^2/2) at 2 fm.
std::vector<float> am_tone(double f, double m, double fm) {
  std::vector<float> x(kWindowSamples);
  for (size_t i = 0; i < x.size(); ++i) {
    const double t = static_cast<double>(i) / kSampleRate;
    x[i] = static_cast<float>(0.1 * (1 + m * std::cos(2 * M_PI * fm * t)) * std::sin(2 * M_PI * f * t));
  }
  return x;
}
double db20(double a) { return 20 * std::log10(a); }
}  // namespace

// The mel groups' modulation depth in the octave 4-8 Hz of an AM tone at 5.66 Hz is the analytic
// depth of its power envelope at fm; the 2 fm component falls in the 8-16 Hz octave.
TEST(DetectAcoustic, ModulationDepthOfAnAmToneIsAnalytic) {
  const double m = 0.5, fm = 5.66;
  auto f = features_of(am_tone(1400, m, fm));
  int group = 0;  // the 8-band group that holds the tone: the loudest band_mean of 4 bands, halved
  for (int g = 1; g < kMelBins / 4; ++g)
    if (f[index_of("band_mean_" + std::to_string(g))] > f[index_of("band_mean_" + std::to_string(group))]) group = g;
  group /= 2;
  const std::string prefix = "mod_" + std::to_string(group) + "_";
  EXPECT_NEAR(f[index_of(prefix + "2")], db20(2 * m / (1 + m * m / 2)), 0.3);  // 4-8 Hz: -1.02 dB
  // 8-16 Hz: -19.1 dB, plus what leaks from the fm line 2.3 Hz away through the 7-s rectangular
  // window (about 1 / (pi^2 2.3 Hz 7 s) = 0.6 % of its power: at most +1.2 dB here).
  EXPECT_NEAR(f[index_of(prefix + "3")], db20(m * m / 2 / (1 + m * m / 2)) + 0.6, 0.6);
  // 1-2 Hz: only that leakage, 3.7 Hz away (0.4 % of the line's power, -25 dB) at most.
  EXPECT_LT(f[index_of(prefix + "0")], -24);
}

// The waveform's envelope analysis sees an AM at a shaft-like rate (20 Hz) in the octave band of its
// carrier: both components (20 and 40 Hz) lie in 10-100 Hz, so the depth is their combined amplitude.
TEST(DetectAcoustic, EnvelopeDepthOfAnAmToneIsAnalytic) {
  const double m = 0.3, fm = 20;
  auto f = features_of(am_tone(1400, m, fm));
  const double a1 = 2 * m / (1 + m * m / 2), a2 = m * m / 2 / (1 + m * m / 2);
  EXPECT_NEAR(f[index_of("env_depth_1000_2000")], 10 * std::log10(a1 * a1 + a2 * a2), 0.3);
  // A bare tone is not modulated: its depth is at the -80 dB floor of the measure.
  auto plain = features_of(am_tone(1400, 0, fm));
  EXPECT_LT(plain[index_of("env_depth_1000_2000")], -60);
}

// Short ticks of 3-kHz ringing repeated 25 times a second (a tooth or a rub once per revolution) over
// noise: their envelope spectrum is a line at 25 Hz and its harmonics, so the 2-4 kHz band's line
// prominence and depth rise far above those of the noise alone.
TEST(DetectAcoustic, TicksAtAShaftRateShowInTheEnvelopeSpectrum) {
  auto x = noise(4);
  auto base = features_of(x);
  auto ticks = x;
  const int64_t period = kSampleRate / 25;
  for (int64_t at = 0; at + 300 < kWindowSamples; at += period)
    for (int i = 0; i < 300; ++i)
      ticks[at + i] += 0.3f * std::exp(-i / 30.0f) * std::sin(2 * M_PI * 3000.0 * i / kSampleRate);
  auto t = features_of(ticks);
  EXPECT_GT(t[index_of("env_peak_2000_4000")], base[index_of("env_peak_2000_4000")] + 10);
  EXPECT_GT(t[index_of("env_depth_2000_4000")], base[index_of("env_depth_2000_4000")] + 10);
}

// A clip no longer than the 7-s window is described as it is, not tiled to 7 s.
TEST(DetectAcoustic, ShortClipDescribedWhole) {
  auto x = noise(5);
  x.resize(static_cast<size_t>(5 * kSampleRate));
  auto backend = make_backend("acoustic", BackendOptions{});
  auto e = backend->embed(x, CropPolicy{});
  auto f = features_of(x);
  ASSERT_EQ(e.size(), f.size());
  for (size_t i = 0; i < e.size(); ++i) EXPECT_FLOAT_EQ(e[i], f[i]) << acoustic_feature_info()[i].key;
}
