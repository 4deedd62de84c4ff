// asdcap convert --laion-clap, info, embed, tags and detect --backend laion as a user runs them, on
// the golden tiny LAION-CLAP checkpoint (../shared/golden-laion).
#include <gtest/gtest.h>
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <sstream>

#include "cli/cli_runner.hpp"
#include "core/files.hpp"
#include "laion_golden.hpp"

using namespace asdcap;
using namespace laiontest;
namespace fs = std::filesystem;

namespace {

using asdcap::test::CliResult;

// Runs asdcap with whitespace-separated arguments (no argument here has spaces).
CliResult run_cli(const std::string& args) {
  std::vector<std::string> v;
  std::istringstream in(args);
  for (std::string a; in >> a;) v.push_back(a);
  return asdcap::test::run_cli(v);
}

std::string input(const std::string& clip) { return golden_dir() + "inputs/" + clip + ".wav"; }

// The model converted by the CLI, once.
const std::string& cli_model() {
  static const std::string path = [] {
    const std::string out = (temp_dir() / "cli.gguf").string();
    const CliResult r = run_cli("convert --laion-clap " + golden_checkpoint() + " --out " + out);
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.out.find("wrote " + out), std::string::npos) << r.out;
    return out;
  }();
  return path;
}

}  // namespace

TEST(LaionCli, ConvertAndInfo) {
  const CliResult r = run_cli("info " + cli_model());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("architecture: asdcap-laion"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("embed_dim 16, depths 2-2-2-2, heads 1-2-4-8"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("text branch stored"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("source checkpoint: laion_clap_htsat_tiny.pt"), std::string::npos) << r.out;
}

TEST(LaionCli, EmbedEqualsLaionClap) {
  // c01 is exactly 10 s; c02 is cropped at the offset laion_clap drew.
  const fs::path out = temp_dir() / "emb.npy";
  const CliResult r = run_cli("embed --model " + cli_model() + " --out " + out.string() + " --crop offset:72752 " +
                              input("c01_hum_10s") + " " + input("c02_clicks_12s"));
  ASSERT_EQ(r.code, 0) << r.err;
  const NpyArray a = read_npy(out.string());
  ASSERT_EQ(a.shape, (std::vector<int64_t>{2, 64}));
  const std::vector<float> got = a.as_float();
  const std::vector<float> ref = read_npy(golden_dir() + "audio_embeddings.npy").as_float();
  EXPECT_LE(max_abs_diff(got, std::vector<float>(ref.begin(), ref.begin() + 128)), 1e-5);
  // --text needs a text tower.
  EXPECT_EQ(run_cli("embed --model " + cli_model() + " --out " + out.string() + " --text hum").code, 2);
}

TEST(LaionCli, TagsRankTheClipwiseOutput) {
  const CliResult r = run_cli("tags --model " + cli_model() + " --csv --top 1 " + input("c03_gap_5s5"));
  ASSERT_EQ(r.code, 0) << r.err;
  const std::vector<float> clipwise = npy("c03_gap_5s5", "clipwise");
  const auto best = std::max_element(clipwise.begin(), clipwise.end()) - clipwise.begin();
  EXPECT_NE(r.out.find(",1," + std::to_string(best) + ",class_" + std::to_string(best) + ","), std::string::npos)
      << r.out;
}

TEST(LaionCli, DetectWithTheLaionBackend) {
  // A DCASE 2020 layout made of the golden clips (any rate the backend resamples to 48 kHz).
  const fs::path root = temp_dir() / "data";
  const char* train[] = {"c01_hum_10s", "c03_gap_5s5", "c04_quiet_3s", "c06_pulses_1s3"};
  for (int i = 0; i < 4; ++i) {
    fs::create_directories(root / "fan" / "train");
    fs::copy_file(input(train[i]), root / "fan" / "train" / ("normal_id_00_0000000" + std::to_string(i) + ".wav"),
                  fs::copy_options::overwrite_existing);
  }
  fs::create_directories(root / "fan" / "test");
  fs::copy_file(input("c05_burst_0s5"), root / "fan" / "test" / "normal_id_00_00000000.wav",
                fs::copy_options::overwrite_existing);
  fs::copy_file(input("c02_clicks_12s"), root / "fan" / "test" / "anomaly_id_00_00000000.wav",
                fs::copy_options::overwrite_existing);
  const fs::path out = temp_dir() / "run";
  const std::string args = "detect --data " + root.string() + " --out " + out.string() + " --backend laion --model " +
                           cli_model() + " --k 2";
  const CliResult r = run_cli(args);
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string results = read_text_file((out / "results.csv").string());
  EXPECT_NE(results.find("fan"), std::string::npos) << results;
  EXPECT_NE(read_text_file((out / "run.json").string()).find("laion"), std::string::npos);
  // Without a model file the backend is a usage error.
  EXPECT_EQ(
      run_cli("detect --data " + root.string() + " --out " + (temp_dir() / "run2").string() + " --backend laion").code,
      2);
}

TEST(LaionCli, HostileCheckpointIsOneLine) {
  const fs::path bad = temp_dir() / "half.pt";
  const std::string bytes = read_text_file(golden_checkpoint());
  write_file_atomic(bad.string(), bytes.substr(0, bytes.size() / 2));
  const CliResult r = run_cli("convert --laion-clap " + bad.string() + " --out " + (temp_dir() / "x.gguf").string());
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("half.pt"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_FALSE(fs::exists(temp_dir() / "x.gguf"));
}
