// One clip, one crop policy, one embedding: `asdcap embed`, `asdcap detect` (its cache.sqlite) and
// explain's CLAP inputs (ClapMethods::audio_embedding) give the same bits under random, offset:N and
// cover; and those bits follow the rule written down in audio.hpp (content-hash seed, window mean in
// double), checked here against windows embedded one at a time.
#include <gtest/gtest.h>
#include <sndfile.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "asdcap/audio.hpp"
#include "asdcap/backend.hpp"
#include "asdcap/npy.hpp"
#include "cli/cli_runner.hpp"
#include "core/files.hpp"
#include "detect/embedding_cache.hpp"
#include "explain/clap_methods.hpp"
#include "support/golden_model.hpp"

using namespace asdcap;
using namespace asdcap::test;
namespace fs = std::filesystem;

namespace {

// 20 s at 44.1 kHz: three windows under "cover" (0, 308700 and the last start, 573300), so that the
// mean's division is not an exact halving (float and double averaging then differ).
constexpr int64_t kClipSamples = 882000;

void write_wav(const std::string& path, const std::vector<float>& samples) {
  SF_INFO info{};
  info.samplerate = 44100;
  info.channels = 1;
  info.format = SF_FORMAT_WAV | SF_FORMAT_FLOAT;  // float at 44.1 kHz: decoded without any change
  SNDFILE* f = sf_open(path.c_str(), SFM_WRITE, &info);
  ASSERT_NE(f, nullptr) << sf_strerror(nullptr);
  ASSERT_EQ(sf_write_float(f, samples.data(), static_cast<sf_count_t>(samples.size())),
            static_cast<sf_count_t>(samples.size()));
  sf_close(f);
}

// A machine-like signal whose content changes over time (so that every window differs).
std::vector<float> clip_signal(int64_t n, uint32_t seed) {
  std::vector<float> x(static_cast<size_t>(n));
  uint32_t state = seed;
  for (int64_t i = 0; i < n; ++i) {
    state = state * 1664525u + 1013904223u;
    const double noise = (static_cast<double>(state >> 8) / 16777216.0 - 0.5) * 0.2;
    const double t = static_cast<double>(i) / 44100.0;
    const double hum = 0.3 * std::sin(2 * M_PI * (120 + 40 * t) * t);
    x[static_cast<size_t>(i)] = static_cast<float>(hum + noise);
  }
  return x;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

class EmbeddingRule : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = fs::temp_directory_path() / ("asdcap_embedding_rule_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "data" / "fan" / "train");
    fs::create_directories(dir_ / "data" / "fan" / "test");
    clip_ = (dir_ / "data" / "fan" / "test" / "anomaly_id_00_00000000.wav").string();
    write_wav(clip_, clip_signal(kClipSamples, 1));
    write_wav((dir_ / "data" / "fan" / "train" / "normal_id_00_00000000.wav").string(), clip_signal(200000, 2));
    write_wav((dir_ / "data" / "fan" / "test" / "normal_id_00_00000001.wav").string(), clip_signal(300000, 3));
    model_ = golden_model_path(false);
  }
  static void TearDownTestSuite() {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // `asdcap embed --crop POLICY` of the clip.
  static std::vector<float> embed_cli(const std::string& policy) {
    const std::string out = (dir_ / ("embed_" + std::to_string(counter_++) + ".npy")).string();
    const CliResult r = run_cli({"embed", "--model", model_, "--crop", policy, "--out", out, clip_});
    EXPECT_EQ(r.code, 0) << r.err;
    return r.code == 0 ? read_npy(out).as_float() : std::vector<float>{};
  }

  // `asdcap detect --backend msclap --crop POLICY`, the clip's embedding read from its cache.sqlite.
  static std::vector<float> detect_cli(const std::string& policy, const std::string& cache_key) {
    const fs::path out = dir_ / ("detect_" + std::to_string(counter_++));
    const CliResult r = run_cli({"detect", "--backend", "msclap", "--model", model_, "--crop", policy, "--k", "1",
                                 "--data", (dir_ / "data").string(), "--out", out.string()});
    EXPECT_EQ(r.code, 0) << r.err;
    if (r.code != 0) return {};
    BackendOptions options;
    options.model_path = model_;
    const std::string identity = make_backend("msclap", options)->identity();
    EmbeddingCache cache((out / "cache.sqlite").string());
    const auto hit = cache.get(sha256_file(clip_), identity, cache_key);
    EXPECT_TRUE(hit.has_value()) << "no cached embedding under " << cache_key;
    return hit ? *hit : std::vector<float>{};
  }

  // explain's CLAP input: ClapMethods::audio_embedding (no cache: computed).
  static std::vector<float> explain_embedding(const std::string& policy) {
    explain_detail::ClapMethods clap(model_, CropPolicy::parse(policy), ChannelMode::Mean, "", 0);
    return clap.audio_embedding(clip_);
  }

  static void expect_all_paths_agree(const std::string& policy, const std::string& cache_key,
                                     std::vector<float>* embedding) {
    const std::vector<float> embed = embed_cli(policy);
    ASSERT_FALSE(embed.empty());
    const std::vector<float> detect = detect_cli(policy, cache_key);
    const std::vector<float> explain = explain_embedding(policy);
    EXPECT_TRUE(same_bits(embed, detect)) << policy << ": embed and detect differ";
    EXPECT_TRUE(same_bits(embed, explain)) << policy << ": embed and explain differ";
    *embedding = embed;
  }

  static fs::path dir_;
  static std::string clip_, model_;
  static int counter_;
};

fs::path EmbeddingRule::dir_;
std::string EmbeddingRule::clip_, EmbeddingRule::model_;
int EmbeddingRule::counter_ = 0;

TEST_F(EmbeddingRule, RandomIsSeededByTheContentHashAndAgreesEverywhere) {
  std::vector<float> random;
  expect_all_paths_agree("random", "random@content-sha256", &random);
  // The seed is the first 16 hex digits of the file's SHA-256; the window Python's randrange of it.
  const uint64_t seed = std::stoull(sha256_file(clip_).substr(0, 16), nullptr, 16);
  const int64_t start = python_randrange(seed, kClipSamples - kWindowSamples);
  EXPECT_TRUE(same_bits(random, embed_cli("offset:" + std::to_string(start))));
  EXPECT_TRUE(same_bits(random, embed_cli("random:" + std::to_string(seed))));
  EXPECT_FALSE(same_bits(random, embed_cli("offset:0")));
}

TEST_F(EmbeddingRule, OffsetAgreesEverywhere) {
  std::vector<float> offset;
  expect_all_paths_agree("offset:12345", "offset:12345", &offset);
  EXPECT_FALSE(same_bits(offset, embed_cli("offset:12346")));
}

TEST_F(EmbeddingRule, CoverIsTheDoubleMeanOfItsWindowsAndAgreesEverywhere) {
  std::vector<float> cover;
  expect_all_paths_agree("cover", "cover", &cover);
  // Cover of 20 s: the windows at 0, 308700 and the last start; their mean summed in double in that
  // order, divided by 3, rounded once.
  const std::vector<float> first = embed_cli("offset:0");
  const std::vector<float> second = embed_cli("offset:308700");
  const std::vector<float> last = embed_cli("offset:" + std::to_string(kClipSamples - kWindowSamples));
  ASSERT_EQ(first.size(), cover.size());
  ASSERT_EQ(second.size(), cover.size());
  ASSERT_EQ(last.size(), cover.size());
  std::vector<float> mean(cover.size());
  for (size_t i = 0; i < mean.size(); ++i) {
    double sum = 0.0;
    for (const auto* window : {&first, &second, &last}) sum += static_cast<double>((*window)[i]);
    mean[i] = static_cast<float>(sum / 3.0);
  }
  EXPECT_TRUE(same_bits(cover, mean));
  EXPECT_FALSE(same_bits(cover, first));
}

}  // namespace
