// Mel filter bank, resampler and log-mel properties that golden clips alone do not pin down.
#include <gtest/gtest.h>

#include <cmath>

#include "asdcap/audio.hpp"
#include "asdcap/error.hpp"
#include "asdcap/npy.hpp"
#include "golden_clips.hpp"

namespace asdcap {
namespace {

TEST(AudioMelFilters, BuiltinEqualsGoldenMelW) {
  const NpyArray ref = read_npy(test::golden_dir() + "/frontend/melW.npy");
  ASSERT_EQ(ref.shape, (std::vector<int64_t>{513, 64}));
  const std::vector<float> expected = ref.as_float();
  const std::vector<float>& mine = builtin_mel_filters();
  ASSERT_EQ(mine.size(), expected.size());
  EXPECT_EQ(test::max_abs_diff(mine, expected), 0.0) << "built-in filter bank differs from melW.npy";
}

TEST(AudioMelFilters, ExplicitMelWIsUsed) {
  std::vector<float> signal(44100);
  for (size_t i = 0; i < signal.size(); ++i) signal[i] = float(0.3 * std::sin(0.05 * double(i)));
  std::vector<float> doubled = builtin_mel_filters();
  for (float& w : doubled) w *= 2.0f;
  const auto a = log_mel(0, signal.data(), 44100);
  const auto b = log_mel(0, signal.data(), 44100, doubled.data());
  ASSERT_EQ(a.size(), b.size());
  // x2 on the filters is +3.0103 dB wherever the value is above the floor.
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i] > -90.0f) {
      EXPECT_NEAR(b[i] - a[i], 10.0 * std::log10(2.0), 1e-4);
    }
  }
}

TEST(AudioLogMel, AnyLengthGivesLengthOverHopPlusOneFrames) {
  for (int64_t n :
       {int64_t{1}, int64_t{2}, int64_t{100}, int64_t{513}, int64_t{1024}, int64_t{308700}, int64_t{441001}}) {
    std::vector<float> x(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) x[static_cast<size_t>(i)] = float(std::sin(0.01 * double(i * i % 1000)));
    const auto mel = log_mel(0, x.data(), n);
    ASSERT_EQ(static_cast<int64_t>(mel.size()), (n / kHop + 1) * kMelBins) << n;
    for (float v : mel) ASSERT_TRUE(std::isfinite(v) && v >= -100.0f) << n;
  }
  EXPECT_THROW(log_mel(0, nullptr, 0), Error);
}

TEST(AudioLogMel, SilenceIsTheMinus100DbFloor) {
  std::vector<float> zeros(kWindowSamples, 0.0f);
  const auto mel = log_mel(0, zeros.data(), kWindowSamples);
  ASSERT_EQ(mel.size(), size_t(kWindowFrames * kMelBins));
  for (float v : mel) ASSERT_EQ(v, -100.0f);
}

TEST(AudioResample, LengthIsCeilNewOverOld) {
  const std::vector<float> x(16001, 0.25f);
  EXPECT_EQ(resample(x, 16000, 44100).size(), size_t((16001LL * 441 + 159) / 160));
  EXPECT_EQ(resample(x, 48000, 44100).size(), size_t((16001LL * 147 + 159) / 160));
  EXPECT_EQ(resample(x, 8000, 44100).size(), size_t((16001LL * 441 + 79) / 80));
  EXPECT_EQ(resample(x, 44100, 44100), x);
  EXPECT_THROW(resample(x, 0, 44100), Error);
}

// A tone below both Nyquist limits keeps its frequency and amplitude (away from the edges).
TEST(AudioResample, KeepsABandLimitedTone) {
  for (int rate : {8000, 11025, 16000, 22050, 32000, 48000, 96000, 44101}) {
    const double f = 1000.0;
    std::vector<float> x(static_cast<size_t>(rate));
    for (size_t i = 0; i < x.size(); ++i) x[i] = float(0.5 * std::sin(2 * M_PI * f * double(i) / rate));
    const auto y = resample(x, rate, kSampleRate);
    double worst = 0;
    for (size_t i = 2000; i + 2000 < y.size(); ++i)
      worst = std::max(worst, std::fabs(y[i] - 0.5 * std::sin(2 * M_PI * f * double(i) / kSampleRate)));
    EXPECT_LT(worst, 5e-3) << rate;
  }
}

}  // namespace
}  // namespace asdcap
