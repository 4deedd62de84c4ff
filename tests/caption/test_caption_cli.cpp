// `asdcap caption` end to end: WAV -> captioner's audio encoder -> caption, against msclap's caption.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <array>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "support/golden_model.hpp"
#include "text/golden_text.hpp"

namespace {
struct CliResult {
  int code;
  std::string out;
};
CliResult run(const std::string& args) {
  const std::string cmd = std::string(ASDCAP_CLI) + " " + args + " 2>/dev/null";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  const int status = pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}
}  // namespace

TEST(CaptionCli, GoldenClipGreedyAndBadFile) {
  using asdcap::testing_text::golden_dir;
  using asdcap::testing_text::manifest;
  const std::string model = golden_model_path(true);
  const auto& c = manifest()["captions"].front();  // c01: msclap cropped at 33919, channels concatenated
  ASSERT_EQ(c["clip"], "c01_hum_16k_pcm16_10s");
  const CliResult r = run("caption --model " + model + " --crop offset:33919 --channels concat --beam 1 " +
                          golden_dir() + "/inputs/c01_hum_16k_pcm16_10s.wav /nonexistent/x.wav");
  EXPECT_EQ(r.code, 1);
  std::istringstream lines(r.out);
  std::string line;
  ASSERT_TRUE(std::getline(lines, line));
  const auto j = nlohmann::json::parse(line);
  EXPECT_EQ(j["caption"], c["beam1"]["caption"]);
  EXPECT_EQ(j["tokens"], c["beam1"]["beams"].front()["token_ids"]);
  ASSERT_TRUE(std::getline(lines, line));
  const auto e = nlohmann::json::parse(line);
  EXPECT_EQ(e["file"], "/nonexistent/x.wav");
  EXPECT_TRUE(e.contains("error"));
}

TEST(CaptionCli, ModelWithoutCaptioner) {
  const CliResult r = run("caption --model " + golden_model_path(false) + " x.wav");
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(r.out.empty());
}

// Several files in one call are captioned as one batch; each line is still msclap's caption of its
// file (beam 5), in the order given, and a bad file in the middle only gets its error line.
TEST(CaptionCli, ManyFilesBatchedEachEqualsMsclap) {
  using asdcap::testing_text::golden_dir;
  using asdcap::testing_text::manifest;
  const std::string model = golden_model_path(true);
  const auto& c = manifest()["captions"].front();
  ASSERT_EQ(c["clip"], "c01_hum_16k_pcm16_10s");
  const std::string wav = golden_dir() + "/inputs/c01_hum_16k_pcm16_10s.wav";
  const CliResult r = run("caption --model " + model + " --crop offset:33919 --channels concat " + wav +
                          " /nonexistent/x.wav " + wav + " " + wav);
  EXPECT_EQ(r.code, 1);
  std::istringstream lines(r.out);
  std::string line;
  std::vector<nlohmann::json> js;
  while (std::getline(lines, line)) js.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(js.size(), 4u);
  for (size_t i : {0u, 2u, 3u}) {
    EXPECT_EQ(js[i]["file"], wav);
    EXPECT_EQ(js[i]["caption"], c["beam5"]["caption"]) << i;
    EXPECT_EQ(js[i]["tokens"], c["beam5"]["beams"].front()["token_ids"]) << i;
  }
  EXPECT_EQ(js[1]["file"], "/nonexistent/x.wav");
  EXPECT_TRUE(js[1].contains("error"));
}
