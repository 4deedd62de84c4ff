// Acoustic evidence on signals whose answer is known by construction (a tone at a set frequency,
// clicks at a set rate, silences of a set length), and the z-scores' floor for small k.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <random>

#include "asdcap/error.hpp"
#include "asdcap/evidence.hpp"
#include "evidence_values.hpp"

using namespace asdcap;
using asdcap::test::with_values;

namespace {

constexpr int kRate = 16000;

std::vector<float> noise(double seconds, double rms, uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> dist(0.f, static_cast<float>(rms));
  std::vector<float> x(static_cast<size_t>(seconds * kRate));
  for (auto& v : x) v = dist(gen);
  return x;
}

// The largest value of a profile between two parameters.
std::optional<double> profile_max(const FeatureProfile& p, double from, double to) {
  std::optional<double> best;
  for (size_t i = 0; i < p.values.size(); ++i) {
    const double at = p.first + static_cast<double>(i) * p.step;
    if (at >= from && at <= to) best = std::max(best.value_or(p.values[i]), p.values[i]);
  }
  return best;
}

double value(const ClipEvidence& e, const char* key) { return e.values[evidence_index(key)]; }

// Adds a 50-ms burst of Gaussian noise (standard deviation `rms`) at each time of `at` (seconds).
void add_noise_bursts(std::vector<float>& x, const std::vector<double>& at, float rms, uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> burst(0.f, rms);
  for (double t : at)
    for (size_t i = static_cast<size_t>(t * kRate); i < static_cast<size_t>((t + 0.05) * kRate); ++i)
      x[i] += burst(gen);
}

// Distance in seconds from the middle of a 50-ms burst starting at `t` to the nearest found event.
double nearest_event(const std::vector<double>& found, double t) {
  double nearest = 1e9;
  for (double f : found) nearest = std::min(nearest, std::fabs(f - (t + 0.025)));
  return nearest;
}

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
  ClipEvidence a = with_values(n, 0.0);
  std::vector<ClipEvidence> refs(4, with_values(n, 0.0));
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

// A 1-kHz tone whose amplitude swells and fades by +-30 % 20 times a second: modulation depth 30 %
// at 20 Hz, and (AM theory) one sideband pair at +-20 Hz, each line (0.3/2)^2 of the carrier's
// power: the pair 10 log10(2 x 0.0225) = -13.5 dBc.
TEST(ExplainEvidence, AmplitudeModulatedToneGivesDepthRateAndSidebands) {
  auto x = noise(5, 0.001, 7);
  for (size_t i = 0; i < x.size(); ++i) {
    const double t = static_cast<double>(i) / kRate;
    x[i] += static_cast<float>(0.1 * (1 + 0.3 * std::sin(2 * M_PI * 20.0 * t)) * std::sin(2 * M_PI * 1000.0 * t));
  }
  const ClipEvidence e = measure(x);
  EXPECT_NEAR(value(e, "vibration_pct"), 30.0, 3.0);
  EXPECT_NEAR(value(e, "vibration_hz"), 20.0, 0.3);
  EXPECT_NEAR(value(e, "carrier_hz"), 1000.0, 2.0);
  EXPECT_NEAR(value(e, "sideband_hz"), 20.0, 2.0);
  EXPECT_NEAR(value(e, "sideband_db"), -13.5, 0.5);
}

// A 900-Hz tone with sidebands at +-25 Hz (amplitude 0.1 of the tone's) and +-50 Hz (0.05):
// pairs 2 x 0.01 + 2 x 0.0025 = 0.025 of the tone's power, -16.0 dBc. Without them the measure
// falls to the noise around the tone.
TEST(ExplainEvidence, SidebandsOfAToneAreMeasuredWithTheirSpacing) {
  auto plain = noise(5, 0.001, 8);
  auto x = plain;
  for (size_t i = 0; i < x.size(); ++i) {
    const double t = static_cast<double>(i) / kRate;
    plain[i] += static_cast<float>(0.1 * std::sin(2 * M_PI * 900.0 * t));
    x[i] += static_cast<float>(0.1 * std::sin(2 * M_PI * 900.0 * t) + 0.01 * std::sin(2 * M_PI * 875.0 * t + 1) +
                               0.01 * std::sin(2 * M_PI * 925.0 * t + 2) + 0.005 * std::sin(2 * M_PI * 850.0 * t + 3) +
                               0.005 * std::sin(2 * M_PI * 950.0 * t + 4));
  }
  const ClipEvidence e = measure(x);
  EXPECT_NEAR(value(e, "carrier_hz"), 900.0, 2.0);
  EXPECT_NEAR(value(e, "sideband_hz"), 25.0, 2.0);
  EXPECT_NEAR(value(e, "sideband_db"), -16.0, 0.5);
  EXPECT_LT(value(measure(plain), "sideband_db"), -35.0);
}

// A single line beside the tone is not a sideband pair, and the noise between lines does not count:
// without pairs the measure is at the -60 dBc floor or far below the -16 dBc of real pairs.
TEST(ExplainEvidence, OneSidedLineAndNoiseAreNotSidebands) {
  auto x = noise(5, 0.01, 13);  // noise 20 dB louder than in the test above
  for (size_t i = 0; i < x.size(); ++i) {
    const double t = static_cast<double>(i) / kRate;
    x[i] += static_cast<float>(0.1 * std::sin(2 * M_PI * 900.0 * t) + 0.01 * std::sin(2 * M_PI * 925.0 * t + 1));
  }
  const ClipEvidence e = measure(x);
  EXPECT_NEAR(value(e, "carrier_hz"), 900.0, 2.0);
  EXPECT_LT(value(e, "sideband_db"), -30.0);
}

// A motor hum on the fine spectrum's bins (52 and 104 x 16000 / 8192 Hz) over white noise: its two
// lines' power, (a1^2 + a2^2) / 2, over the noise from 1 kHz to 0.9 x Nyquist (7.2 kHz), sigma^2 x
// (bins 64..460 of 512) of the 1024-point spectrum. Scaling hum by +1 dB and noise by -1 dB (a dry
// run) raises it by 2 dB; scaling both alike (gain) leaves it.
TEST(ExplainEvidence, MotorHumOverFlowNoise) {
  const double f1 = 52.0 * kRate / 8192, f2 = 104.0 * kRate / 8192, a1 = 0.02, a2 = 0.01, sigma = 0.05;
  const auto clip = [&](double hum_gain, double noise_gain) {
    auto x = noise(5, sigma * noise_gain, 14);
    for (size_t i = 0; i < x.size(); ++i) {
      const double t = static_cast<double>(i) / kRate;
      x[i] += static_cast<float>(hum_gain * (a1 * std::sin(2 * M_PI * f1 * t) + a2 * std::sin(2 * M_PI * f2 * t)));
    }
    return measure(x);
  };
  const ClipEvidence normal = clip(1.0, 1.0);
  const double expected = 10 * std::log10((a1 * a1 + a2 * a2) / 2 / (sigma * sigma * 397.0 / 512.0));
  EXPECT_NEAR(value(normal, "hum_noise_hz"), f1, 0.1);
  EXPECT_NEAR(value(normal, "hum_noise_db"), expected, 0.5);
  const double up = std::pow(10.0, 1.0 / 20);
  EXPECT_NEAR(value(clip(up, 1.0 / up), "hum_noise_db") - value(normal, "hum_noise_db"), 2.0, 0.3);
  EXPECT_NEAR(value(clip(0.5, 0.5), "hum_noise_db"), value(normal, "hum_noise_db"), 0.05);
  // Noise alone has no hum line.
  EXPECT_EQ(value(measure(noise(5, sigma, 15)), "hum_noise_db"), -60.0);
}

// A weak low peak whose 3rd harmonic falls on another source's strong line (e.g. a blade-pass tone)
// is not a strong shaft tone: each harmonic counts at most as much as the fundamental.
TEST(ExplainEvidence, ShaftToneHarmonicsAreCappedAtTheFundamental) {
  auto x = noise(5, 0.01, 16);
  for (size_t i = 0; i < x.size(); ++i) {
    const double t = static_cast<double>(i) / kRate;
    // 25 Hz about 10 dB over the noise around it, 75 Hz about 30 dB.
    x[i] += static_cast<float>(0.0012 * std::sin(2 * M_PI * 25.0 * t) + 0.012 * std::sin(2 * M_PI * 75.0 * t));
  }
  const ClipEvidence e = measure(x);
  EXPECT_NEAR(value(e, "shaft_hz"), 25.0, 2.0);
  // Mean of (r, <= 1 + something, r) over 3 with r the fundamental's ratio: below its own prominence.
  EXPECT_LT(value(e, "shaft_db"), 12.0);
  EXPECT_GT(value(e, "shaft_db"), 3.0);
}

// Clicks 8 times a second, standing well over the noise: as many events as clicks, at the clicks'
// times, periodic at 8 Hz.
TEST(ExplainEvidence, ImpulseTrainGivesEventRateTimesAndPeriod) {
  auto x = noise(5, 0.01, 9);
  std::vector<double> at;
  for (double t = 0.0625; t < 4.9; t += 1.0 / 8) at.push_back(t);
  for (double t : at) {
    const size_t start = static_cast<size_t>(t * kRate);
    for (size_t i = 0; i < 40; ++i) x[start + i] += 0.3f * std::exp(-double(i) / 10) * ((i % 2) ? 1 : -1);
  }
  const ClipEvidence e = measure(x);
  EXPECT_NEAR(value(e, "burst_rate"), at.size() / 5.0, 0.21);
  ASSERT_EQ(e.burst_times.size(), at.size());
  // Timed at the strongest 5-ms frame: the click's own frame (its energy decays within 2.5 ms).
  for (size_t i = 0; i < at.size(); ++i) EXPECT_NEAR(e.burst_times[i], at[i], 0.006);
  EXPECT_NEAR(value(e, "burst_period_hz"), 8.0, 0.3);
  EXPECT_GT(value(e, "burst_regularity"), 0.5);
  EXPECT_GT(value(e, "burst_db"), 3.0);
}

// Ten 50-ms bursts of noise at twice the background's amplitude (energy 1 + 4 = 5 times the
// background's: 7.0 dB) at irregular times: ten events, at those times, about 7 dB over the
// background, not periodic.
TEST(ExplainEvidence, ShortBurstsAreCountedTimedAndLevelled) {
  auto x = noise(5, 0.02, 10);
  const std::vector<double> at = {0.31, 0.77, 1.12, 1.83, 2.05, 2.66, 3.02, 3.71, 4.18, 4.6};
  add_noise_bursts(x, at, 0.04f, 11);
  const ClipEvidence e = measure(x);
  // Every burst found, at its time (within its 50 ms), and at most one event in the noise.
  EXPECT_GE(e.burst_times.size(), at.size());
  EXPECT_LE(e.burst_times.size(), at.size() + 1);
  EXPECT_NEAR(value(e, "burst_rate"), e.burst_times.size() / 5.0, 1e-9);
  for (double t : at) EXPECT_LT(nearest_event(e.burst_times, t), 0.03) << "burst at " << t << " s";
  EXPECT_NEAR(value(e, "burst_db"), 7.0, 1.5);
  EXPECT_LT(value(e, "burst_regularity"), 0.5);
  // The same noise without bursts: (almost) no events.
  EXPECT_LT(value(measure(noise(5, 0.02, 10)), "burst_rate"), 0.5);
}

// Bursts of 50 ms that raise the noise by about 2 dB: each 20-ms frame holds too little of the
// noise to show them above its own fluctuation, 50-ms frames do. Found and timed; the same noise
// alone gives (almost) none.
TEST(ExplainEvidence, FaintFiftyMillisecondBurstsAreFound) {
  auto x = noise(5, 0.02, 21);
  const std::vector<double> at = {0.35, 0.9, 1.6, 2.2, 2.9, 3.5, 4.3};
  add_noise_bursts(x, at, 0.016f, 22);
  const ClipEvidence e = measure(x);
  EXPECT_GE(e.burst_times.size(), at.size());
  EXPECT_LE(e.burst_times.size(), at.size() + 1);
  for (double t : at) EXPECT_LT(nearest_event(e.burst_times, t), 0.04) << "burst at " << t << " s";
  EXPECT_LT(value(measure(noise(5, 0.02, 21)), "burst_rate"), 0.5);
}

// Crackle near 6.5 kHz in a 16 kHz recording lies above the last full octave band (2.8-5.7 kHz):
// the search ends with the partial band 5657-7600 Hz (0.95 x Nyquist), centre sqrt(5657 x 7600).
TEST(ExplainEvidence, BurstsInThePartialTopBandAreFound) {
  auto x = noise(5, 0.02, 12);
  const std::vector<double> at = {0.4, 1.1, 1.7, 2.5, 3.3, 4.1};
  for (double t : at)
    for (size_t i = static_cast<size_t>(t * kRate); i < static_cast<size_t>((t + 0.05) * kRate); ++i)
      x[i] += 0.03f * static_cast<float>(std::sin(2 * M_PI * 6500.0 * static_cast<double>(i) / kRate));
  const ClipEvidence e = measure(x);
  EXPECT_NEAR(value(e, "burst_hz"), std::sqrt(1000.0 / std::sqrt(8.0) * 16 * 0.95 * kRate / 2), 1e-6);
  EXPECT_EQ(e.burst_times.size(), at.size());
  // Five searched bands from 354 Hz; the busiest is the last, and its rate is burst_rate.
  const FeatureProfile& bands = e.profiles.at("burst_rate");
  ASSERT_EQ(bands.values.size(), 5u);
  EXPECT_EQ(bands.at, 4.0);
  EXPECT_DOUBLE_EQ(bands.values[4], value(e, "burst_rate"));
}

// The references' short events count in the anomalous clip's busiest band: four events per 5 s at
// 6.6 kHz are new even though every reference has one event per 5 s at 500 Hz.
TEST(ExplainEvidence, BurstRateComparesTheSameBand) {
  const size_t n = evidence_features().size();
  const size_t burst = evidence_index("burst_rate");
  ClipEvidence a = with_values(n, 0.0);
  a.profiles["burst_rate"] = {0.0, 1.0, {0.0, 0.0, 0.0, 0.0, 0.8}, 4.0, 0.0};
  a.values[burst] = 0.8;
  ClipEvidence normal = with_values(n, 0.0);
  normal.profiles["burst_rate"] = {0.0, 1.0, {0.2, 0.0, 0.0, 0.0, 0.0}, 0.0, 0.0};
  normal.values[burst] = 0.2;
  const std::vector<ClipEvidence> refs(4, normal), pool(12, normal);
  const auto rows = compare_evidence(a, refs, pool);
  EXPECT_EQ(rows[burst].neighbors, std::vector<double>(4, 0.0));
  EXPECT_DOUBLE_EQ(rows[burst].reference_mean, 0.0);
  // Spread: burst_rate's floor, 0.3 per second.
  EXPECT_DOUBLE_EQ(*rows[burst].z, 0.8 / 0.3);
  EXPECT_DOUBLE_EQ(*rows[burst].z_all, 0.8 / 0.3);
  EXPECT_DOUBLE_EQ(rows[burst].strength, 0.8 / 0.3);
  // References measured without per-band rates compare by their own busiest band.
  ClipEvidence old = normal;
  old.profiles.clear();
  const auto own = compare_evidence(a, std::vector<ClipEvidence>(4, old), std::vector<ClipEvidence>(12, old));
  EXPECT_DOUBLE_EQ(own[burst].reference_mean, 0.2);
  EXPECT_DOUBLE_EQ(*own[burst].z, 0.6 / 0.3);
}

// A reference with clicks at another rate: its periodicity counts at the clip's rate, the best
// autocorrelation within +-10 % of the clip's period (4 Hz: 250 ms, so lags 225-275 ms: steps
// 45-55 of 5 ms).
TEST(ExplainEvidence, ClickStrengthComparesTheSameRate) {
  const size_t n = evidence_features().size();
  const size_t strength = evidence_index("click_strength");
  ClipEvidence a = with_values(n, 0.0);
  a.values[strength] = 0.5;
  a.profiles["click_strength"] = {0.0, 0.005, std::vector<double>(101, 0.0), 0.25, 0.1};
  ClipEvidence other = with_values(n, 0.0);
  other.values[strength] = 0.4;  // at 110 ms (9.1 Hz)
  other.profiles["click_strength"] = {0.0, 0.005, std::vector<double>(101, 0.0), 0.11, 0.1};
  auto& r = other.profiles["click_strength"].values;
  r[22] = 0.4;
  r[44] = 0.3;  // 220 ms: outside +-10 % of 250 ms
  r[52] = 0.05;
  const std::vector<ClipEvidence> refs(4, other);
  const auto rows = compare_evidence(a, refs);
  EXPECT_EQ(rows[strength].neighbors, std::vector<double>(4, 0.05));
  EXPECT_DOUBLE_EQ(*rows[strength].z, (0.5 - 0.05) / 0.1);  // spread floor 0.1
  // Measured on a signal: the profile peaks at the period of the clicks, where the clip's own
  // maximum is recorded.
  auto x = noise(5, 0.01, 13);
  for (size_t i = 0; i < x.size(); i += kRate / 8) x[i] += 0.8f;  // 8 clicks per second
  const ClipEvidence e = measure(x);
  const FeatureProfile& p = e.profiles.at("click_strength");
  const auto peak = static_cast<double>(std::max_element(p.values.begin(), p.values.end()) - p.values.begin());
  EXPECT_NEAR(p.first + peak * p.step, 0.125, 0.006);
  EXPECT_NEAR(p.at, 0.125, 0.006);
  EXPECT_NEAR(1.0 / p.at, value(e, "click_rate"), 1e-9);
}

// The same for a modulation and a low tone: a reference's vibration counts at the clip's rate
// (+-10 %), not at the reference's own strongest rate.
TEST(ExplainEvidence, VibrationAndShaftToneCompareTheSameRate) {
  // A swell at 25 Hz in the clip, at 40 Hz (deeper) in the reference.
  auto swell = [](double hz, double depth, uint32_t seed) {
    auto x = noise(5, 0.05, seed);
    for (size_t i = 0; i < x.size(); ++i)
      x[i] *= static_cast<float>(1.0 + depth * std::sin(2 * M_PI * hz * static_cast<double>(i) / kRate));
    return x;
  };
  const ClipEvidence clip = measure(swell(25.0, 0.2, 14)), ref = measure(swell(40.0, 0.3, 15));
  EXPECT_NEAR(value(clip, "vibration_hz"), 25.0, 0.5);
  EXPECT_NEAR(value(ref, "vibration_hz"), 40.0, 0.5);
  const size_t vib = evidence_index("vibration_pct");
  const auto rows = compare_evidence(clip, std::vector<ClipEvidence>(4, ref));
  // The reference's own ~30 % at 40 Hz is not what it has at 25 Hz (noise only: a few %).
  EXPECT_GT(value(ref, "vibration_pct"), 25.0);
  EXPECT_LT(rows[vib].neighbors[0], 5.0);
  EXPECT_EQ(rows[vib].neighbors[0], *profile_max(ref.profiles.at("vibration_pct"), 22.5, 27.5));
  // The shaft tone's profile covers 10-60 Hz.
  const FeatureProfile& shaft = clip.profiles.at("shaft_db");
  EXPECT_GE(shaft.first, 10.0);
  EXPECT_LE(shaft.first + static_cast<double>(shaft.values.size() - 1) * shaft.step, 60.0);
}

// A 25-Hz shaft tone with its 2nd and 3rd harmonics, each 20 dB over the noise around it.
TEST(ExplainEvidence, ShaftRateToneAndHarmonics) {
  auto x = noise(5, 0.01, 12);
  const double before = value(measure(x), "shaft_db");
  for (size_t i = 0; i < x.size(); ++i) {
    const double t = static_cast<double>(i) / kRate;
    x[i] += static_cast<float>(0.02 * std::sin(2 * M_PI * 25.0 * t) + 0.01 * std::sin(2 * M_PI * 50.0 * t) +
                               0.005 * std::sin(2 * M_PI * 75.0 * t));
  }
  const ClipEvidence e = measure(x);
  EXPECT_NEAR(value(e, "shaft_hz"), 25.0, 2.0);
  EXPECT_GT(value(e, "shaft_db") - before, 15.0);
}

// Ranking against the whole reference set: a difference the set already spans is not strong, a
// difference below the feature's resolution is none.
TEST(ExplainEvidence, StrengthUsesTheWholeReferenceSetAndTheResolution) {
  const size_t n = evidence_features().size();
  const size_t level = evidence_index("level_db"), burst = evidence_index("burst_rate");
  ClipEvidence a = with_values(n, 0.0);
  std::vector<ClipEvidence> refs(4, with_values(n, 0.0));
  a.values[level] = -17.0;
  a.values[burst] = 0.1;  // below burst_rate's resolution (0.2 per second)
  for (auto& r : refs) r.values[level] = -20.0;
  // The whole set: 11 clips from -23 to -13 dB (median -18, MAD 3 -> sd 4.4478).
  std::vector<ClipEvidence> pool(11, with_values(n, 0.0));
  for (size_t i = 0; i < pool.size(); ++i) pool[i].values[level] = -23.0 + static_cast<double>(i);
  const auto rows = compare_evidence(a, refs, pool);
  EXPECT_DOUBLE_EQ(*rows[level].z, 3.0);
  EXPECT_NEAR(*rows[level].z_all, 1.0 / (1.4826 * 3.0), 1e-12);
  EXPECT_NEAR(*rows[level].percentile, 100.0 * 6.5 / 11, 1e-12);  // 6 below, one tie
  // Five clips of the set (-17 ... -13 dB) reach the clip's level: not a difference.
  EXPECT_EQ(rows[level].strength, 0.0);
  EXPECT_EQ(rows[burst].strength, 0.0);
  EXPECT_GT(*rows[burst].z, 0.0);
  // Without a reference set, the strength is the neighbours' z.
  EXPECT_DOUBLE_EQ(compare_evidence(a, refs)[level].strength, 3.0);
}

// A background sound present at varying level in a few normal clips (a heavy upper tail): the
// spread on that side is the distance from the median to the 90th percentile over 1.2816.
TEST(ExplainEvidence, StrengthUsesTheSpreadOnTheSideOfTheDifference) {
  const size_t n = evidence_features().size();
  const size_t tone = evidence_index("tone_db");
  ClipEvidence a = with_values(n, 0.0);
  a.values[tone] = 15.0;
  std::vector<ClipEvidence> refs(4, with_values(n, 0.0));
  for (auto& r : refs) r.values[tone] = 1.0;
  // 20 clips: 17 at 1 dB, and 10, 12 and 14 dB. Median 1, MAD 0; the 90th percentile lies at
  // position 0.9 x 19 = 17.1 of the sorted values: 10 + 0.1 x (12 - 10) = 10.2 dB.
  std::vector<ClipEvidence> pool(20, with_values(n, 0.0));
  for (auto& p : pool) p.values[tone] = 1.0;
  pool[17].values[tone] = 10.0;
  pool[18].values[tone] = 12.0;
  pool[19].values[tone] = 14.0;
  auto rows = compare_evidence(a, refs, pool);
  const double spread = (10.2 - 1.0) / 1.2816;
  EXPECT_NEAR(*rows[tone].z_all, 14.0 / spread, 1e-9);
  EXPECT_NEAR(rows[tone].strength, 14.0 / spread, 1e-9);  // beyond every normal clip
  // Below the clip the tail does not count: the floor (1.5 dB for tone_db) is the spread.
  a.values[tone] = -2.0;
  rows = compare_evidence(a, refs, pool);
  EXPECT_NEAR(*rows[tone].z_all, -3.0 / 1.5, 1e-9);
  // A level that two normal clips reach is not named, however far from the median.
  a.values[tone] = 11.0;
  EXPECT_EQ(compare_evidence(a, refs, pool)[tone].strength, 0.0);
}

// Sidebands compare only around the references' tone; the motor hum only when the references share
// its line.
TEST(ExplainEvidence, TonalFeaturesCompareOnlyTheSameLine) {
  const size_t n = evidence_features().size();
  const size_t sideband = evidence_index("sideband_db"), carrier = evidence_index("carrier_hz");
  const size_t hum = evidence_index("hum_noise_db"), hum_hz = evidence_index("hum_noise_hz");
  ClipEvidence a = with_values(n, 0.0);
  a.values[sideband] = -15.0;
  a.values[hum] = 6.0;
  std::vector<ClipEvidence> refs(4, with_values(n, 0.0));
  std::vector<ClipEvidence> pool(10, with_values(n, 0.0));
  for (size_t i = 0; i < pool.size(); ++i) {
    pool[i].values[sideband] = -35.0 + 0.5 * static_cast<double>(i % 3);
    pool[i].values[carrier] = 950.0 + 4.0 * static_cast<double>(i);  // 950-986 Hz: the tone moves with speed
    pool[i].values[hum] = 0.5 * static_cast<double>(i % 3);
    pool[i].values[hum_hz] = 100.0;
    if (i < 4) refs[i] = pool[i];
  }
  a.values[carrier] = 1010.0;  // within 3 % of the highest reference tone (986 x 1.03 = 1015.6)
  a.values[hum_hz] = 100.0;
  auto rows = compare_evidence(a, refs, pool);
  EXPECT_GT(rows[sideband].strength, 2.5);
  EXPECT_GT(rows[hum].strength, 2.5);
  a.values[carrier] = 1020.0;  // another tone
  a.values[hum_hz] = 150.0;    // another line
  rows = compare_evidence(a, refs, pool);
  EXPECT_EQ(rows[sideband].strength, 0.0);
  EXPECT_EQ(rows[hum].strength, 0.0);
  // References without a common hum line (each finds another frequency): nothing to compare.
  for (size_t i = 0; i < pool.size(); ++i) pool[i].values[hum_hz] = 80.0 + 12.0 * static_cast<double>(i);
  a.values[hum_hz] = 128.0;
  EXPECT_EQ(compare_evidence(a, refs, pool)[hum].strength, 0.0);
}

TEST(ExplainEvidence, BadInputIsAnErrorNotACrash) {
  std::vector<float> short_clip(100, 0.f);
  EXPECT_THROW(measure_evidence(short_clip.data(), 100, kRate), FormatError);
  std::vector<float> silence(kRate, 0.f);
  const ClipEvidence e = measure_evidence(silence.data(), kRate, kRate);  // all-zero: finite values
  for (double v : e.values) EXPECT_TRUE(std::isfinite(v));
  EXPECT_THROW(measure_evidence_file("/no/such/file.wav"), Error);
}

namespace {

// Ticks `rate` times a second, each a 5-kHz ring decaying with a 1-ms time constant, peak
// amplitude `peak`, added to white noise of RMS 0.02. Like mechanical impacts, each comes up to
// `jitter` seconds early or late (uniformly).
std::vector<float> ticking(double rate, double peak, uint32_t seed, double jitter = 0.001) {
  auto x = noise(5, 0.02, seed);
  std::mt19937 gen(seed + 100);
  std::uniform_real_distribution<double> early_late(-jitter, jitter);
  for (double t = 0.01; t < 4.99; t += 1.0 / rate) {
    const size_t start = static_cast<size_t>((t + 0.001 + early_late(gen)) * kRate);
    for (size_t i = 0; i < 80 && start + i < x.size(); ++i)
      x[start + i] += static_cast<float>(peak * std::exp(-double(i) / 16) * std::sin(2 * M_PI * 5000.0 * i / kRate));
  }
  return x;
}

}  // namespace

// Periodic ticks ringing at 5 kHz: found at their rate, in the half-octave band 4.0-5.7 kHz
// (centre 4757 Hz), with envelope lines far over the floor that plain noise gives.
TEST(ExplainEvidence, PeriodicTicksGiveImpactRateAndBand) {
  const ClipEvidence e = measure(ticking(25.0, 0.1, 12));
  EXPECT_NEAR(value(e, "impact_hz"), 25.0, 0.3);
  EXPECT_NEAR(value(e, "impact_band_hz"), std::sqrt(4000.0 * 4000.0 * M_SQRT2), 1.0);
  EXPECT_GT(value(e, "impact_db"), 20.0);
  // The same noise without ticks: no line stands clearly out.
  EXPECT_LT(value(measure(noise(5, 0.02, 12)), "impact_db"), 13.0);
  // Another rate in the range, and weaker ticks (a 5-ms frame of the band holds about three times as much
  // tick as noise) still seen.
  const ClipEvidence slow = measure(ticking(13.0, 0.07, 13));
  EXPECT_NEAR(value(slow, "impact_hz"), 13.0, 0.3);
  EXPECT_GT(value(slow, "impact_db"), 15.0);
  // Exactly periodic ticks are a set of steady spectral lines, which whitening flattens like any
  // tone: they are found in the band as it is, by their many envelope lines.
  const ClipEvidence exact = measure(ticking(25.0, 0.1, 16, 0.0));
  EXPECT_NEAR(value(exact, "impact_hz"), 25.0, 0.3);
  EXPECT_GT(value(exact, "impact_db"), 15.0);
}

// What is not a train of impacts: noise swelling and fading smoothly at 25 Hz (an unbalanced
// rotor: one envelope line, not its multiples), and a 1.2-kHz tone with sidebands at +-25 and
// +-50 Hz (gear wear: pre-whitening leaves the tone no stronger than the noise beside it).
TEST(ExplainEvidence, SmoothModulationAndSidebandsAreNotImpacts) {
  auto swell = noise(5, 0.02, 14);
  auto mesh = noise(5, 0.002, 15);
  for (size_t i = 0; i < swell.size(); ++i) {
    const double t = static_cast<double>(i) / kRate;
    swell[i] *= static_cast<float>(1 + 0.5 * std::sin(2 * M_PI * 25.0 * t));
    mesh[i] += static_cast<float>(0.1 * std::sin(2 * M_PI * 1200.0 * t) + 0.03 * std::sin(2 * M_PI * 1175.0 * t) +
                                  0.03 * std::sin(2 * M_PI * 1225.0 * t) + 0.02 * std::sin(2 * M_PI * 1150.0 * t) +
                                  0.02 * std::sin(2 * M_PI * 1250.0 * t));
  }
  const ClipEvidence s = measure(swell);
  EXPECT_GT(value(s, "vibration_pct"), 30.0);  // the swell itself is measured, as vibration
  EXPECT_LT(value(s, "impact_db"), 13.0);
  EXPECT_LT(value(measure(mesh), "impact_db"), 13.0);
}

// Periodic impacts are a maximum over bands and rates: a reference counts in the clip's own row
// (view and band) at the clip's rate (+-10 %), not where its own line train is strongest.
TEST(ExplainEvidence, ImpactsCompareTheSameBandAndRate) {
  const size_t n = evidence_features().size();
  const size_t impact = evidence_index("impact_db");
  // Hand-made profiles: 3 rows of 11 rates (20, 21, ... 30 Hz); the clip's impacts in row 1 at 25 Hz.
  ClipEvidence a = with_values(n, 0.0);
  a.values[impact] = 12.0;
  a.profiles["impact_db"] = {20.0, 1.0, std::vector<double>(33, 0.0), 25.0, 0.1, 11, 1};
  ClipEvidence other = with_values(n, 0.0);
  other.values[impact] = 14.0;  // row 2, 21 Hz
  other.profiles["impact_db"] = {20.0, 1.0, std::vector<double>(33, 1.0), 21.0, 0.1, 11, 2};
  auto& v = other.profiles["impact_db"].values;
  v[2 * 11 + 1] = 14.0;
  v[0 * 11 + 5] = 9.0;  // row 0 at 25 Hz: another band
  v[1 * 11 + 2] = 8.0;  // row 1 at 22 Hz: outside 25 Hz +-10 %
  v[1 * 11 + 3] = 3.0;  // row 1 at 23 Hz: inside
  const auto rows = compare_evidence(a, std::vector<ClipEvidence>(4, other));
  EXPECT_EQ(rows[impact].neighbors, std::vector<double>(4, 3.0));
  // A reference whose profile has no such row counts with its own value.
  ClipEvidence short_profile = other;
  short_profile.profiles["impact_db"].values.resize(11);
  EXPECT_EQ(compare_evidence(a, std::vector<ClipEvidence>(4, short_profile))[impact].neighbors,
            std::vector<double>(4, 14.0));

  // Measured on signals: ticks at 25 Hz ringing at 5 kHz in the clip; in the reference, stronger
  // ticks at 40 Hz in the same band. The reference's own value is its 40-Hz train; at 25 Hz it
  // has only noise.
  const ClipEvidence clip = measure(ticking(25.0, 0.05, 21)), ref = measure(ticking(40.0, 0.1, 22));
  EXPECT_NEAR(value(ref, "impact_hz"), 40.0, 0.5);
  const FeatureProfile& p = clip.profiles.at("impact_db");
  ASSERT_EQ(p.columns, 201u);  // 10-60 Hz by 0.25 Hz
  EXPECT_EQ(p.values.size() % p.columns, 0u);
  EXPECT_NEAR(p.at, value(clip, "impact_hz"), 1e-9);
  // The grid cell at the clip's rate holds the largest value of the rates searched within it.
  const double cell = p.values[p.row * p.columns + static_cast<size_t>(std::lround((p.at - 10.0) / 0.25))];
  EXPECT_GE(cell, value(clip, "impact_db"));
  EXPECT_LT(cell, value(clip, "impact_db") + 1.0);
  const auto measured = compare_evidence(clip, std::vector<ClipEvidence>(4, ref));
  EXPECT_GT(value(ref, "impact_db"), 20.0);
  EXPECT_LT(measured[impact].neighbors[0], 13.0);  // no more than plain noise gives
  EXPECT_GT(*measured[impact].z, 3.0);
}

namespace {

// A 1-ms-decaying ring at `hz` with peak amplitude `peak`, starting at `t` seconds.
void add_ring(std::vector<float>& x, double t, double peak, double hz) {
  const auto start = static_cast<size_t>(t * kRate);
  for (size_t i = 0; i < 80 && start + i < x.size(); ++i)
    x[start + i] += static_cast<float>(peak * std::exp(-double(i) / 16) * std::sin(2 * M_PI * hz * i / kRate));
}

// Noise of RMS 0.02 with a ring at 3 kHz every 1 / rate seconds (+-0.2 ms).
std::vector<float> faint_impacts(double rate, double peak, uint32_t seed) {
  auto x = noise(5, 0.02, seed);
  std::mt19937 gen(seed + 7);
  std::uniform_real_distribution<double> early_late(-0.0002, 0.0002);
  for (double t = 0.01; t < 4.99; t += 1.0 / rate) add_ring(x, t + early_late(gen), peak, 3000.0);
  return x;
}

}  // namespace

// Impacts ringing at 3 kHz, 28.3 a second, each adding about a tenth of the noise's energy over
// the millisecond it lasts in the octave band 2-4 kHz: no single one stands out, and the envelope
// spectrum's lines (impact_db) stay within what the noise alone gives. Averaged over the clip's 141
// periods they stand out: found at their rate (within 0.02 Hz: 5 s resolve rates 0.008 Hz apart)
// in the band 2-4 kHz (centre 2828 Hz), far over the largest fold plain noise gives anywhere.
TEST(ExplainEvidence, SynchronousAveragingFindsFaintPeriodicImpacts) {
  for (uint32_t seed : {41u, 42u, 43u}) {
    const ClipEvidence plain = measure(noise(5, 0.02, seed));
    const ClipEvidence e = measure(faint_impacts(28.3, 0.025, seed));
    EXPECT_LT(value(plain, "impact_sync"), 7.0) << seed;
    EXPECT_GT(value(e, "impact_sync"), 8.5) << seed;
    EXPECT_NEAR(value(e, "impact_sync_hz"), 28.3, 0.02) << seed;
    EXPECT_NEAR(value(e, "impact_sync_band_hz"), std::sqrt(2000.0 * 4000.0), 1e-6) << seed;
    EXPECT_LT(value(e, "impact_db"), value(plain, "impact_db") + 3.0) << seed;
  }
  // Impacts at 24 a second that ring for longer (5 ms), so that their envelope's energy lies in its
  // first harmonics: the fold at 12 Hz holds them too (in every 2nd harmonic) and can stand higher;
  // the rate given is theirs.
  auto longer = noise(5, 0.02, 61);
  for (double t = 0.01; t < 4.95; t += 1.0 / 24.0) {
    const auto start = static_cast<size_t>(t * kRate);
    for (size_t i = 0; i < 480 && start + i < longer.size(); ++i)
      longer[start + i] +=
          static_cast<float>(0.02 * std::exp(-double(i) / 80) * std::sin(2 * M_PI * 3000.0 * i / kRate));
  }
  const ClipEvidence strong = measure(longer);
  EXPECT_NEAR(value(strong, "impact_sync_hz"), 24.0, 0.02);
  EXPECT_GT(value(strong, "impact_sync"), 8.5);
}

// What is not a train of impacts for the fold: eight strong knocks at random times (held at ten
// times the band's median envelope, they align at no rate), and noise swelling and fading by 50 %
// at 25 Hz (its envelope lines at 25 and 50 Hz lie below the fold's 4th harmonic, or are one line
// alone, which does not count).
TEST(ExplainEvidence, SynchronousAveragingIgnoresRandomKnocksAndASwell) {
  for (uint32_t seed : {41u, 42u, 43u}) {
    auto knocks = noise(5, 0.02, seed);
    std::mt19937 gen(seed + 9);
    std::uniform_real_distribution<double> when(0.05, 4.9);
    for (int k = 0; k < 8; ++k) add_ring(knocks, when(gen), 1.0, 3000.0);
    EXPECT_LT(value(measure(knocks), "impact_sync"), 7.0) << seed;
    auto swell = noise(5, 0.02, seed);
    for (size_t i = 0; i < swell.size(); ++i)
      swell[i] *= static_cast<float>(1 + 0.5 * std::sin(2 * M_PI * 25.0 * static_cast<double>(i) / kRate));
    EXPECT_LT(value(measure(swell), "impact_sync"), 7.0) << seed;
  }
}

// Crackle: ten 50-ms bursts of noise in 4-8 kHz, each raising that band by about 2 dB, none
// standing out alone from the band's frame-to-frame fluctuation. The sixth-loudest separate moment
// of the band stands clearly higher than the noise alone gives, and its six moments are bursts.
// One loud event, or drop-outs, do not raise it.
TEST(ExplainEvidence, CrackleCountsRepeatedBurstsNotOneEvent) {
  const std::vector<double> at = {0.3, 0.8, 1.25, 1.7, 2.1, 2.6, 3.05, 3.5, 4.0, 4.45};
  auto x = noise(5, 0.02, 51);
  auto bursts = noise(5, 1.0, 52);  // band-limited below by 4 kHz: a high-passed copy
  for (int pass = 0; pass < 4; ++pass)
    for (size_t i = bursts.size() - 1; i > 0; --i) bursts[i] = 0.5f * (bursts[i] - bursts[i - 1]);
  for (double t : at)
    for (size_t i = static_cast<size_t>(t * kRate); i < static_cast<size_t>((t + 0.05) * kRate); ++i)
      x[i] += 0.025f * bursts[i];
  const ClipEvidence plain = measure(noise(5, 0.02, 51)), e = measure(x);
  // The band 4-7.6 kHz (the last, centre sqrt(4000 x 7600)).
  const FeatureProfile& bands = e.profiles.at("crackle_db");
  const FeatureProfile& centres = e.profiles.at("crackle_hz");
  const FeatureProfile& moments = e.profiles.at("crackle_times");
  ASSERT_EQ(bands.values.size(), 5u);
  EXPECT_NEAR(centres.values[4], std::sqrt(4000.0 * 0.95 * kRate / 2), 1e-6);
  EXPECT_GT(bands.values[4], plain.profiles.at("crackle_db").values[4] + 0.5);
  // Each of its six moments lies within a burst (the middle of a 50-ms frame that overlaps one).
  ASSERT_EQ(moments.columns, 6u);
  for (size_t m = 0; m < 6; ++m) {
    const double t = moments.values[4 * 6 + m];
    double nearest = 1e9;
    for (double start : at) nearest = std::min(nearest, std::fabs(start + 0.025 - t));
    EXPECT_LT(nearest, 0.03) << "moment at " << t << " s";
  }
  // One loud 80-ms event, and five drop-outs of 400 ms (40 % of the clip, which would lower a plain
  // median): no more than the noise alone gives (in the
  // band where it is highest, the clip's own crackle_db).
  auto event = noise(5, 0.02, 51);
  for (size_t i = 2 * kRate; i < static_cast<size_t>(2.08 * kRate); ++i) event[i] *= 4.0f;
  EXPECT_LT(value(measure(event), "crackle_db"), value(plain, "crackle_db") + 0.3);
  auto gaps = noise(5, 0.02, 51);
  for (double t : {0.3, 1.3, 2.3, 3.3, 4.3})
    for (size_t i = static_cast<size_t>(t * kRate); i < static_cast<size_t>((t + 0.4) * kRate); ++i) gaps[i] *= 0.05f;
  EXPECT_LT(value(measure(gaps), "crackle_db"), value(plain, "crackle_db") + 0.3);
}

// Crackle is compared in the band where the clip stands furthest above its references, not where
// its own value is highest: the references' occasional loud events in 1-2 kHz (their own
// background) do not mask a faint crackle at 4-8 kHz that they never have. The times given are
// that band's.
TEST(ExplainEvidence, CrackleComparesTheBandWhereTheClipDiffers) {
  const size_t n = evidence_features().size();
  const size_t crackle = evidence_index("crackle_db"), hz = evidence_index("crackle_hz");
  // Hand-made: three bands (centres 1414, 2828, 5657 Hz); clip 3.0 / 0.7 / 1.4 dB, references
  // 2.5-4.5 / 0.6-0.8 / 0.6-0.7 dB.
  const auto clip_with = [&](std::vector<double> bands, std::vector<double> times) {
    ClipEvidence c = with_values(n, 0.0);
    c.values[crackle] = *std::max_element(bands.begin(), bands.end());
    c.profiles["crackle_db"] = {0.0, 1.0, bands, 0.0, 0.0, 1, 0, true};
    c.profiles["crackle_hz"] = {0.0, 1.0, {1414.0, 2828.0, 5657.0}, 0.0, 0.0, 1, 0};
    c.profiles["crackle_times"] = {0.0, 1.0, times, 0.0, 0.0, 2, 0};
    return c;
  };
  const ClipEvidence a = clip_with({3.0, 0.7, 1.4}, {2.0, 2.1, 3.5, 0.5, 4.0, 1.0});
  std::vector<ClipEvidence> pool;
  for (int i = 0; i < 10; ++i)
    pool.push_back(
        clip_with({2.5 + 0.2 * i, 0.6 + 0.02 * i, 0.6 + 0.01 * i}, {0.2, 0.3, 0.4, 0.5, 3.0 + 0.1 * i, 1.0}));
  const std::vector<ClipEvidence> refs(pool.begin(), pool.begin() + 4);
  const auto rows = compare_evidence(a, refs, pool);
  EXPECT_DOUBLE_EQ(rows[crackle].anomalous, 1.4);
  EXPECT_DOUBLE_EQ(rows[hz].anomalous, 5657.0);
  EXPECT_EQ(rows[crackle].neighbors, (std::vector<double>{0.6, 0.61, 0.62, 0.63}));
  EXPECT_GT(rows[crackle].strength, 2.5);
  EXPECT_EQ(rows[crackle].times, (std::vector<double>{1.0, 4.0}));  // the third band's, in time order
  ASSERT_EQ(rows[crackle].neighbor_times.size(), refs.size());      // the references' moments in the same band
  for (size_t i = 0; i < refs.size(); ++i)
    EXPECT_EQ(rows[crackle].neighbor_times[i], (std::vector<double>{1.0, 3.0 + 0.1 * static_cast<double>(i)}));
  // Without profiles (older evidence) the clip's own value counts, and no times are given.
  ClipEvidence bare = with_values(n, 0.0);
  bare.values[crackle] = 3.0;
  const auto plain = compare_evidence(bare, std::vector<ClipEvidence>(4, with_values(n, 0.0)));
  EXPECT_DOUBLE_EQ(plain[crackle].anomalous, 3.0);
  EXPECT_TRUE(plain[crackle].times.empty());
}
