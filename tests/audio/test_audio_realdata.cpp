// Real recordings from ../shared/realdata: an 8-channel MIMII file and a 109 s drone flight go
// through the whole front end without trouble. Durations are printed, not asserted.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <filesystem>

#include "asdcap/audio.hpp"
#include "asdcap/clap.hpp"

namespace asdcap {
namespace {

std::string realdata(const std::string& rel) { return std::string(ASDCAP_SHARED_DIR) + "/realdata/" + rel; }

void run_front_end(const std::string& path, ChannelMode mode, int expect_channels, double expect_seconds) {
  ASSERT_TRUE(std::filesystem::exists(path)) << path;
  const auto t0 = std::chrono::steady_clock::now();
  AudioInfo info;
  const std::vector<float> signal = load_audio_44k(path, mode, &info);
  EXPECT_EQ(info.channels, expect_channels);
  EXPECT_NEAR(double(info.frames) / info.sample_rate, expect_seconds, 0.5);
  const auto starts = window_starts(static_cast<int64_t>(signal.size()), CropPolicy::parse("cover"));
  EXPECT_EQ(static_cast<int64_t>(starts.size()),
            (static_cast<int64_t>(signal.size()) + kWindowSamples - 1) / kWindowSamples);
  for (int64_t s : starts) {
    const auto w = window_at(signal, s);
    const auto mel = log_mel(0, w.data(), kWindowSamples);
    ASSERT_EQ(mel.size(), size_t(kWindowFrames * kMelBins));
    double mean = 0;
    for (float v : mel) {
      ASSERT_TRUE(std::isfinite(v));
      mean += v;
    }
    mean /= double(mel.size());
    EXPECT_GT(mean, -99.0) << "a real recording should not be digital silence";
    const auto image = wav_to_image(mel.data());
    ASSERT_EQ(image.size(), size_t(kImageSize * kImageSize));
  }
  // The whole clip as one spectrogram (what report / evidence use).
  const auto whole = log_mel(0, signal.data(), static_cast<int64_t>(signal.size()));
  EXPECT_EQ(static_cast<int64_t>(whole.size()), (static_cast<int64_t>(signal.size()) / kHop + 1) * kMelBins);
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  std::printf("[ realdata ] %s: %d ch, %.1f s, %zu windows, front end %.0f ms\n",
              std::filesystem::path(path).filename().c_str(), info.channels, double(info.frames) / info.sample_rate,
              starts.size(), ms);
  ::testing::Test::RecordProperty("milliseconds", std::to_string(ms));
}

TEST(AudioRealData, MimiiEightChannelsMean) {
  run_front_end(realdata("mimii-8ch/pump_id_00_anomaly_00000000.wav"), ChannelMode::Mean, 8, 10.0);
}

TEST(AudioRealData, MimiiEightChannelsConcat) {
  run_front_end(realdata("mimii-8ch/valve_id_00_normal_00000000.wav"), ChannelMode::Concat, 8, 10.0);
}

TEST(AudioRealData, LongDroneFlight) {
  // The longest of the UAV recordings (about 109 s at 16 kHz).
  std::string longest;
  uintmax_t size = 0;
  for (const auto& e : std::filesystem::directory_iterator(realdata("uav-propeller")))
    if (e.path().extension() == ".wav" && e.file_size() > size) {
      size = e.file_size();
      longest = e.path().string();
    }
  ASSERT_FALSE(longest.empty());
  run_front_end(longest, ChannelMode::Mean, 1, double(size - 44) / 2 / 16000);
}

TEST(AudioRealData, DcaseClip) {
  for (const auto& e : std::filesystem::directory_iterator(realdata("dcase2023"))) {
    if (e.path().extension() != ".wav") continue;
    run_front_end(e.path().string(), ChannelMode::Mean, 1, double(probe_audio(e.path().string()).frames) / 16000);
    break;
  }
}

}  // namespace
}  // namespace asdcap
