// `asdcap features` end to end: golden clips, cover mapping, parallel == serial, bad inputs.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <random>

#include "asdcap/npy.hpp"
#include "audio/audio_files.hpp"
#include "cli_runner.hpp"

namespace asdcap {
namespace {

using test::run_cli;
using test::TempDir;

std::string golden(const std::string& rel) { return std::string(ASDCAP_SHARED_DIR) + "/golden/" + rel; }
std::string clip(const std::string& id) { return golden("inputs/" + id + ".wav"); }

// Max |a - reference| over values with reference > -90 dB that lie within 90 dB of their frame's
// maximum (the zone where msclap's own float32 STFT is accurate to well under 1e-3 dB).
double logmel_error(const float* a, const std::vector<float>& reference) {
  double worst = 0;
  for (size_t t = 0; t < reference.size() / 64; ++t) {
    const float* ref = reference.data() + t * 64;
    const float frame_max = *std::max_element(ref, ref + 64);
    for (int m = 0; m < 64; ++m)
      if (ref[m] > -90.0f && ref[m] >= frame_max - 90.0f)
        worst = std::max(worst, std::fabs(double(a[t * 64 + m]) - ref[m]));
  }
  return worst;
}

TEST(CliFeatures, Help) {
  const auto r = run_cli({"features", "--help"});
  EXPECT_EQ(r.code, 0) << r.err;
  for (const char* option : {"--crop", "--channels", "--out", "--threads", "cover"})
    EXPECT_NE(r.out.find(option), std::string::npos) << option;
}

TEST(CliFeatures, ReproducesMsclapLogMelForGoldenClips) {
  TempDir dir;
  struct Case {
    std::string id, crop;
  };
  // offset:N with the manifest's crop start, and the manifest's seed for the stereo clip.
  const Case cases[] = {{"c01_hum_16k_pcm16_10s", "offset:33919"},
                        {"c06_stereo_22k05_pcm16_5s", "random:123406"},
                        {"c07_48k_pcm24_8s", "offset:1074"},
                        {"c08_short_32k_pcm16_0p5s", "cover"}};
  for (const auto& c : cases) {
    const std::string out = dir.file(c.id + ".npy");
    const auto r = run_cli({"features", "--crop", c.crop, "--channels", "concat", "--out", out, clip(c.id)});
    ASSERT_EQ(r.code, 0) << r.err;
    const NpyArray a = read_npy(out);
    ASSERT_EQ(a.shape, (std::vector<int64_t>{1, 965, 64}));
    const auto mel = a.as_float();
    const auto reference = read_npy(golden("audio/" + c.id + "/logmel.npy")).as_float();
    const double err = logmel_error(mel.data(), reference);
    EXPECT_LE(err, 1e-3) << c.id;
    const auto json = nlohmann::json::parse(r.out);
    EXPECT_EQ(json.at("rows").size(), 1u);
  }
}

TEST(CliFeatures, CoverMapsRowsToFiles) {
  TempDir dir;
  const std::string out = dir.file("cover.npy");
  const auto r = run_cli(
      {"features", "--crop", "cover", "--out", out, clip("c01_hum_16k_pcm16_10s"), clip("c04_short_16k_pcm16_3s")});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(read_npy(out).shape, (std::vector<int64_t>{3, 965, 64}));
  const auto json = nlohmann::json::parse(r.out);
  const auto& rows = json.at("rows");
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].at("file"), clip("c01_hum_16k_pcm16_10s"));
  EXPECT_EQ(rows[0].at("start"), 0);
  EXPECT_EQ(rows[1].at("file"), clip("c01_hum_16k_pcm16_10s"));
  EXPECT_EQ(rows[1].at("start"), 441000 - 308700);  // last window ends at the end of the clip
  EXPECT_EQ(rows[2].at("file"), clip("c04_short_16k_pcm16_3s"));
  EXPECT_EQ(rows[2].at("tiled"), true);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(rows[i].at("row"), i);
  EXPECT_EQ(json.at("shape"), nlohmann::json({3, 965, 64}));

  // The second row is the window offset:132300 gives on its own.
  const std::string single = dir.file("single.npy");
  ASSERT_EQ(run_cli({"features", "--crop", "offset:132300", "--out", single, clip("c01_hum_16k_pcm16_10s")}).code, 0);
  const auto all = read_npy(out).as_float();
  const auto one = read_npy(single).as_float();
  EXPECT_TRUE(std::equal(one.begin(), one.end(), all.begin() + 965 * 64));
}

TEST(CliFeatures, ParallelEqualsSerial) {
  TempDir dir;
  std::vector<std::string> files;
  for (const char* id :
       {"c01_hum_16k_pcm16_10s", "c02_clicks_16k_pcm16_10s", "c03_gap_16k_pcm16_10s", "c04_short_16k_pcm16_3s",
        "c05_44k1_f32_7s", "c06_stereo_22k05_pcm16_5s", "c07_48k_pcm24_8s", "c08_short_32k_pcm16_0p5s"})
    files.push_back(clip(id));
  auto run_with = [&](const std::string& threads, const std::string& out) {
    std::vector<std::string> args = {"features", "--crop", "cover", "--threads", threads, "--out", out};
    args.insert(args.end(), files.begin(), files.end());
    return run_cli(args);
  };
  const auto serial = run_with("1", dir.file("serial.npy"));
  const auto parallel = run_with("4", dir.file("parallel.npy"));
  ASSERT_EQ(serial.code, 0) << serial.err;
  ASSERT_EQ(parallel.code, 0) << parallel.err;
  EXPECT_EQ(test::read_bytes(dir.file("serial.npy")), test::read_bytes(dir.file("parallel.npy")));
  auto s = nlohmann::json::parse(serial.out), p = nlohmann::json::parse(parallel.out);
  s.erase("out");
  p.erase("out");
  EXPECT_EQ(s, p);
  EXPECT_EQ(s.at("rows").size(), 12u);  // 10-s and 8-s clips: 2 windows each; the 4 others: 1
}

// ---- bad inputs: one line on stderr naming the file, exit code 1, no output file ----

void expect_clean_failure(const std::vector<std::string>& files, const std::string& out, const std::string& must_name,
                          int code = 1) {
  std::vector<std::string> args = {"features", "--out", out};
  args.insert(args.end(), files.begin(), files.end());
  const auto r = run_cli(args);
  EXPECT_EQ(r.code, code) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_EQ(r.err.rfind("asdcap: error: ", 0), 0u) << r.err;
  EXPECT_NE(r.err.find(must_name), std::string::npos) << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;
  EXPECT_FALSE(std::filesystem::exists(out)) << "output left behind for " << must_name;
}

class CliFeaturesBadInput : public ::testing::Test {
 protected:
  TempDir dir;
  std::string good = clip("c04_short_16k_pcm16_3s");
  std::string out() const { return dir.file("out.npy"); }
};

TEST_F(CliFeaturesBadInput, EmptyFile) {
  test::write_bytes(dir.file("empty.wav"), "");
  expect_clean_failure({dir.file("empty.wav")}, out(), dir.file("empty.wav"));
}

TEST_F(CliFeaturesBadInput, RandomBytesNamedWav) {
  std::mt19937 rng(3);
  std::string bytes(10000, '\0');
  for (char& b : bytes) b = static_cast<char>(rng());
  test::write_bytes(dir.file("random.wav"), bytes);
  expect_clean_failure({good, dir.file("random.wav")}, out(), dir.file("random.wav"));
}

TEST_F(CliFeaturesBadInput, TruncatedWav) {
  const std::string full = test::read_bytes(good);
  test::write_bytes(dir.file("truncated.wav"), full.substr(0, full.size() / 3));
  expect_clean_failure({dir.file("truncated.wav"), good}, out(), dir.file("truncated.wav"));
}

TEST_F(CliFeaturesBadInput, ZeroSampleWav) {
  test::write_ints(dir.file("zero.wav"), SF_FORMAT_WAV | SF_FORMAT_PCM_16, 16000, 1, {});
  expect_clean_failure({dir.file("zero.wav")}, out(), dir.file("zero.wav"));
}

TEST_F(CliFeaturesBadInput, NonexistentFile) {
  expect_clean_failure({good, dir.file("missing.wav")}, out(), dir.file("missing.wav"));
}

TEST_F(CliFeaturesBadInput, NanSample) {
  std::vector<float> x(1000, 0.1f);
  x[500] = std::nanf("");
  test::write_floats(dir.file("nan.wav"), SF_FORMAT_WAV | SF_FORMAT_FLOAT, 16000, 1, x);
  expect_clean_failure({dir.file("nan.wav")}, out(), "sample 500 is NaN");
}

TEST_F(CliFeaturesBadInput, OutputInMissingFolder) {
  const std::string target = dir.file("no/such/folder/out.npy");
  expect_clean_failure({good}, target, dir.file("no/such/folder"));
}

TEST(CliFeaturesUsage, BadCropAndOffsetBeyondClip) {
  TempDir dir;
  const std::string out = dir.file("o.npy");
  auto r = run_cli({"features", "--crop", "middle", "--out", out, clip("c01_hum_16k_pcm16_10s")});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("middle"), std::string::npos) << r.err;
  r = run_cli({"features", "--crop", "offset:132301", "--out", out, clip("c01_hum_16k_pcm16_10s")});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("132300"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("c01_hum_16k_pcm16_10s.wav"), std::string::npos) << r.err;
  r = run_cli({"features", "--channels", "left", "--out", out, clip("c01_hum_16k_pcm16_10s")});
  EXPECT_EQ(r.code, 2);
  EXPECT_FALSE(std::filesystem::exists(out));
}

}  // namespace
}  // namespace asdcap
