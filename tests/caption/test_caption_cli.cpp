// `asdcap caption` end to end: WAV -> captioner's audio encoder -> caption, against msclap's caption.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <array>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

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
