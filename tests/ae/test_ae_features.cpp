// The autoencoder features against an independent numpy/scipy implementation of their definition
// (scripts/dev/ae_features_reference.py, which wrote tests/ae/data/feat_*.npy).
//
// Tolerances: both sides compute the spectrum, the mel sums and the logarithm in double and round
// the log-mel to float32 once; what differs is the FFT algorithm (FFTW against numpy's pocketfft,
// relative differences of ~1e-16 of the frame's largest bin). Values are within 0.5 float32 ulp of
// the same double, so |difference| <= 1 ulp: below 1.6e-5 dB for |values| < 256. We allow 2e-5 dB.
// (On the machine these files were made on, every value compared here was equal bit for bit.)
#include <gtest/gtest.h>
#include <sndfile.h>

#include <cmath>
#include <cstdio>
#include <filesystem>

#include "asdcap/ae.hpp"
#include "asdcap/audio.hpp"
#include "asdcap/error.hpp"
#include "asdcap/npy.hpp"

namespace asdcap {
namespace {

constexpr double kTolDb = 2e-5;

std::string data(const std::string& name) { return std::string(ASDCAP_AE_TEST_DATA) + "/" + name; }
std::string shared(const std::string& name) { return std::string(ASDCAP_SHARED_DIR) + "/realdata/" + name; }

// Log-mel of a file as ae_clip_features sees it (decoded, channels averaged).
std::vector<float> file_log_mel(const std::string& path, int64_t* frames) {
  const DecodedAudio a = decode_audio(path);
  std::vector<float> mono(static_cast<size_t>(a.info.frames));
  for (int64_t i = 0; i < a.info.frames; ++i) {
    float s = 0;
    for (int c = 0; c < a.info.channels; ++c) s += a.interleaved[static_cast<size_t>(i * a.info.channels + c)];
    mono[static_cast<size_t>(i)] = s / static_cast<float>(a.info.channels);
  }
  *frames = a.info.frames / 512 + 1;
  return ae_log_mel(mono.data(), a.info.frames, a.info.sample_rate);
}

// Compares `mine` rows [first, first + ref rows) with the reference.
void expect_rows_near(const std::vector<float>& mine, int64_t first, const NpyArray& ref, double tol,
                      const std::string& what) {
  ASSERT_EQ(ref.shape.size(), 2u) << what;
  const int64_t cols = ref.shape[1];
  const std::vector<float> r = ref.as_float();
  ASSERT_LE(static_cast<size_t>((first + ref.shape[0]) * cols), mine.size()) << what;
  double worst = 0;
  int64_t at = -1;
  for (int64_t i = 0; i < ref.size(); ++i) {
    const double d =
        std::fabs(static_cast<double>(mine[static_cast<size_t>(first * cols + i)]) - r[static_cast<size_t>(i)]);
    if (d > worst) worst = d, at = i;
  }
  EXPECT_LE(worst, tol) << what << ": largest difference at row " << first + at / cols << ", column " << at % cols;
}

TEST(AeFeatures, MelFilterBankEqualsReference) {
  const std::vector<float> mine = ae_mel_filters(16000);
  ASSERT_EQ(mine.size(), 128u * 513u);
  const NpyArray rows = read_npy(data("feat_mel_16k_rows.npy"));
  const std::vector<int64_t> index = read_npy(data("feat_mel_16k_index.npy")).as_int64();
  const std::vector<float> ref = rows.as_float();
  ASSERT_EQ(rows.shape, (std::vector<int64_t>{static_cast<int64_t>(index.size()), 513}));
  for (size_t r = 0; r < index.size(); ++r)
    for (int k = 0; k < 513; ++k) {
      const float a = mine[static_cast<size_t>(index[r]) * 513 + static_cast<size_t>(k)],
                  b = ref[r * 513 + static_cast<size_t>(k)];
      // Same float64 formula rounded to float32; libm and numpy's exp/log may differ by 1 ulp of a double,
      // which can move the float32 result by 1 ulp.
      ASSERT_LE(std::fabs(a - b), 1.2e-7f * std::fabs(b)) << "band " << index[r] << " bin " << k;
    }
  // Area normalisation: every triangle of the Slaney bank has area 1 in Hz units (2 / width times
  // height 1 times width / 2) up to the sampling of the frequency axis: check the sum over bins.
  const double bin_hz = 8000.0 / 512;
  for (int m = 96; m < 128; ++m) {  // above 3.6 kHz: triangles over 8 bins wide
    double sum = 0;
    for (int k = 0; k < 513; ++k) sum += mine[static_cast<size_t>(m) * 513 + static_cast<size_t>(k)];
    EXPECT_NEAR(sum * bin_hz, 1.0, 0.01) << "band " << m;
  }
}

TEST(AeFeatures, SyntheticClipLogMelAndVectors) {
  int64_t frames = 0;
  const std::vector<float> lm = file_log_mel(data("synth_16k.wav"), &frames);
  EXPECT_EQ(frames, 24000 / 512 + 1);
  const NpyArray ref = read_npy(data("feat_synth_16k_logmel.npy"));
  ASSERT_EQ(ref.shape, (std::vector<int64_t>{frames, 128}));
  expect_rows_near(lm, 0, ref, kTolDb, "synth_16k log-mel");
  // The trailing digital silence gives 10 log10(eps) exactly.
  EXPECT_FLOAT_EQ(lm.back(), static_cast<float>(10.0 * std::log10(2.220446049250313e-16)));

  const AeClipFeatures f = ae_clip_features(data("synth_16k.wav"));
  EXPECT_EQ(f.sample_rate, 16000);
  EXPECT_EQ(f.rows, frames - 4);
  const NpyArray vref = read_npy(data("feat_synth_16k_vectors.npy"));
  ASSERT_EQ(vref.shape, (std::vector<int64_t>{frames - 4, 640}));
  expect_rows_near(f.data, 0, vref, kTolDb, "synth_16k vectors");
}

TEST(AeFeatures, StereoClipAtAnotherRate) {
  int64_t frames = 0;
  const std::vector<float> lm = file_log_mel(data("synth_22k_stereo.wav"), &frames);
  const NpyArray ref = read_npy(data("feat_synth_22k_logmel.npy"));
  ASSERT_EQ(ref.shape, (std::vector<int64_t>{frames, 128}));
  expect_rows_near(lm, 0, ref, kTolDb, "synth_22k_stereo log-mel");
  const AeClipFeatures f = ae_clip_features(data("synth_22k_stereo.wav"));
  EXPECT_EQ(f.sample_rate, 22050);
  ASSERT_EQ(f.rows, frames - 4);
  // Vector t holds frames t..t+4 one after the other.
  for (int64_t t : {int64_t{0}, f.rows / 2, f.rows - 1})
    for (int k = 0; k < 5; ++k)
      for (int m = 0; m < 128; ++m)
        ASSERT_EQ(f.data[static_cast<size_t>(t * 640 + k * 128 + m)], lm[static_cast<size_t>((t + k) * 128 + m)]);
}

TEST(AeFeatures, RealDcaseClip) {
  const std::string path = shared("dcase2023/ToyCar_test_section_00_source_test_normal_0028_car_C2_spd_34V_mic_1.wav");
  int64_t frames = 0;
  const std::vector<float> lm = file_log_mel(path, &frames);
  EXPECT_EQ(frames, 192000 / 512 + 1);
  expect_rows_near(lm, 0, read_npy(data("feat_dcase_toycar_head.npy")), kTolDb, "ToyCar head");
  expect_rows_near(lm, frames - 8, read_npy(data("feat_dcase_toycar_tail.npy")), kTolDb, "ToyCar tail");
  const AeClipFeatures f = ae_clip_features(path);
  EXPECT_EQ(f.rows, frames - 4);
}

TEST(AeFeatures, EightChannelClipIsAveraged) {
  int64_t frames = 0;
  const std::vector<float> lm = file_log_mel(shared("mimii-8ch/pump_id_00_normal_00000000.wav"), &frames);
  EXPECT_EQ(frames, 313);
  expect_rows_near(lm, 0, read_npy(data("feat_mimii_pump_head.npy")), kTolDb, "MIMII pump head");
  // A 10-s clip at 16 kHz: 313 frames, 309 vectors.
  EXPECT_EQ(ae_clip_features(shared("mimii-8ch/pump_id_00_normal_00000000.wav")).rows, 309);
}

TEST(AeFeatures, TooShortClipNamesTheFile) {
  const std::string path = (std::filesystem::temp_directory_path() / "asdcap_ae_short.wav").string();
  SF_INFO info{};
  info.samplerate = 16000;
  info.channels = 1;
  info.format = SF_FORMAT_WAV | SF_FORMAT_PCM_16;
  SNDFILE* f = sf_open(path.c_str(), SFM_WRITE, &info);
  ASSERT_NE(f, nullptr);
  std::vector<short> pcm(2047, 1000);  // 2047 samples: 4 frames
  sf_write_short(f, pcm.data(), static_cast<sf_count_t>(pcm.size()));
  sf_close(f);
  try {
    (void)ae_clip_features(path);
    ADD_FAILURE() << "no error for a clip of four frames";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
  std::filesystem::remove(path);
  const float one = 0.5f;
  EXPECT_THROW(ae_log_mel(&one, 0, 16000), FormatError);
  EXPECT_THROW(ae_log_mel(&one, 1, 0), FormatError);
  EXPECT_EQ(ae_vectors(std::vector<float>(4 * 128, 0.0f), 4).size(), 0u);
}

}  // namespace
}  // namespace asdcap
