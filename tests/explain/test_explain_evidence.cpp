// Acoustic evidence on signals whose answer is known by construction (a tone at a set frequency,
// clicks at a set rate, silences of a set length), and the z-scores' floor for small k.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "asdcap/error.hpp"
#include "asdcap/evidence.hpp"

using namespace asdcap;

namespace {

constexpr int kRate = 16000;

std::vector<float> noise(double seconds, double rms, uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> dist(0.f, static_cast<float>(rms));
  std::vector<float> x(static_cast<size_t>(seconds * kRate));
  for (auto& v : x) v = dist(gen);
  return x;
}

double value(const ClipEvidence& e, const char* key) { return e.values[evidence_index(key)]; }

ClipEvidence measure(const std::vector<float>& x) {
  return measure_evidence(x.data(), static_cast<int64_t>(x.size()), kRate);
}

}  // namespace

TEST(ExplainEvidence, WhiteNoiseBaseline) {
  const auto x = noise(5, 0.1, 1);
  const ClipEvidence e = measure(x);
  EXPECT_NEAR(value(e, "level_db"), -20.0, 0.2);                          // 20 log10(0.1)
  EXPECT_NEAR(value(e, "hum_db"), 10 * std::log10(185.0 / 8000.0), 1.0);  // band share of a flat spectrum
  EXPECT_LT(value(e, "tone_db"), 3.0);
  EXPECT_LT(value(e, "impulse_rate"), 0.5);
  EXPECT_LT(value(e, "click_strength"), 0.15);
  EXPECT_GT(value(e, "flatness"), 0.9);  // averaged periodograms of white noise: flat
  EXPECT_NEAR(value(e, "centroid_hz"), 4000, 150);
  EXPECT_EQ(value(e, "dropout_count"), 0);
  EXPECT_LT(value(e, "vibration_pct"), 3.0);
}

TEST(ExplainEvidence, HighFrequencyToneIsFoundWithItsFrequency) {
  auto x = noise(5, 0.05, 2);
  for (size_t i = 0; i < x.size(); ++i) x[i] += 0.02f * std::sin(2 * M_PI * 3200.0 * i / kRate);
  const ClipEvidence e = measure(x);
  EXPECT_NEAR(value(e, "tone_hz"), 3200, 16);
  // Tone power 0.02^2/2 over Hann's 1.5-bin noise bandwidth against the noise per bin
  // (0.05^2 / 512 bins): 10 log10(1.333e-4 / 4.883e-6) = 14.4 dB.
  EXPECT_NEAR(value(e, "tone_db"), 14.4, 1.0);
}

TEST(ExplainEvidence, PeriodicClicksGiveRateAndPeriodicity) {
  auto x = noise(5, 0.01, 3);
  const double rate = 8.0;
  for (double t = 0.01; t < 5.0; t += 1.0 / rate) {
    const size_t at = static_cast<size_t>(t * kRate);
    for (size_t i = 0; i < 40 && at + i < x.size(); ++i)
      x[at + i] += 0.3f * std::exp(-double(i) / 10) * ((i % 2) ? 1 : -1);
  }
  const ClipEvidence e = measure(x);
  EXPECT_NEAR(value(e, "impulse_rate"), rate, 0.5);
  EXPECT_NEAR(value(e, "click_rate"), rate, 0.3);
  EXPECT_GT(value(e, "click_strength"), 0.5);
  EXPECT_GT(value(e, "impulse_db"), 10.0);
}

TEST(ExplainEvidence, DropoutsAreCountedAndTimed) {
  auto x = noise(5, 0.1, 4);
  // Two 0.5-s gaps at -30 dB: 20 % of the clip.
  for (double start : {1.0, 3.0})
    for (size_t i = static_cast<size_t>(start * kRate); i < static_cast<size_t>((start + 0.5) * kRate); ++i)
      x[i] *= 0.0316f;
  const ClipEvidence e = measure(x);
  EXPECT_EQ(value(e, "dropout_count"), 2);
  EXPECT_NEAR(value(e, "dropout_pct"), 20.0, 1.0);
  EXPECT_GT(value(e, "irregularity"), 0.3);
}

TEST(ExplainEvidence, AmplitudeModulationIsVibration) {
  auto x = noise(5, 0.05, 5);
  for (size_t i = 0; i < x.size(); ++i) x[i] *= static_cast<float>(1 + 0.4 * std::sin(2 * M_PI * 23.0 * i / kRate));
  const ClipEvidence e = measure(x);
  EXPECT_NEAR(value(e, "vibration_hz"), 23.0, 0.3);
  EXPECT_NEAR(value(e, "vibration_pct"), 40.0, 6.0);
}

TEST(ExplainEvidence, LowHumRaisesHumShare) {
  auto x = noise(5, 0.01, 6);
  const double before = value(measure(x), "hum_db");
  for (size_t i = 0; i < x.size(); ++i) x[i] += 0.05f * std::sin(2 * M_PI * 100.0 * i / kRate);
  EXPECT_GT(value(measure(x), "hum_db") - before, 15.0);
}

TEST(ExplainEvidence, ZScoresUseTheSpreadFloor) {
  const size_t n = evidence_features().size();
  ClipEvidence a{std::vector<double>(n, 0.0)};
  std::vector<ClipEvidence> refs(4, ClipEvidence{std::vector<double>(n, 0.0)});
  const size_t level = evidence_index("level_db");
  a.values[level] = -17.0;
  for (auto& r : refs) r.values[level] = -20.0;  // identical references: spread 0
  const auto rows = compare_evidence(a, refs);
  ASSERT_TRUE(rows[level].z.has_value());
  EXPECT_DOUBLE_EQ(*rows[level].z, 3.0 / evidence_features()[level].spread_floor);
  EXPECT_DOUBLE_EQ(rows[level].reference_mean, -20.0);
  EXPECT_FALSE(rows[evidence_index("tone_hz")].z.has_value());  // descriptive only
  // A real spread above the floor is used as is: references -22, -20, -20, -18 -> sd 1.633.
  refs[0].values[level] = -22.0;
  refs[3].values[level] = -18.0;
  EXPECT_NEAR(*compare_evidence(a, refs)[level].z, 3.0 / std::sqrt(8.0 / 3.0), 1e-12);
}

TEST(ExplainEvidence, BadInputIsAnErrorNotACrash) {
  std::vector<float> short_clip(100, 0.f);
  EXPECT_THROW(measure_evidence(short_clip.data(), 100, kRate), FormatError);
  std::vector<float> silence(kRate, 0.f);
  const ClipEvidence e = measure_evidence(silence.data(), kRate, kRate);  // all-zero: finite values
  for (double v : e.values) EXPECT_TRUE(std::isfinite(v));
  EXPECT_THROW(measure_evidence_file("/no/such/file.wav"), Error);
}
