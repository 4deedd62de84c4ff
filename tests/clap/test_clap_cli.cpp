// asdcap embed / tags / similarity as a user runs them, against the golden reference outputs.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <sstream>

#include "clap_golden.hpp"
#include "core/files.hpp"
#include "support/scratch_dir.hpp"

using namespace asdcap;
using namespace asdcap::test;
namespace fs = std::filesystem;

namespace {

struct Run {
  int code = -1;
  std::string out;
};

// This process's scratch folder (outputs, the CLI's stderr), removed at exit.
fs::path scratch_dir() { return test::process_scratch_dir("asdcap_clap_cli"); }

// Runs the CLI with the given arguments (stderr to a file next to the output folder).
Run run_cli(const std::string& args) {
  Run r;
  const std::string cmd = std::string(ASDCAP_CLI) + " " + args + " 2>" + (scratch_dir() / "err.txt").string();
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int status = pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

std::string last_stderr() { return read_text_file((scratch_dir() / "err.txt").string()); }

std::string wav(const std::string& id) { return std::string(ASDCAP_SHARED_DIR) + "/golden/inputs/" + id + ".wav"; }

// c05 is exactly 7 s and c08 0.5 s (tiled): no crop choice involved, msclap's numbers directly.
const char* kC05 = "c05_44k1_f32_7s";
const char* kC08 = "c08_short_32k_pcm16_0p5s";

}  // namespace

TEST(ClapCli, EmbedAudioMatchesGolden) {
  const auto out = scratch_dir() / "emb.npy";
  const auto r = run_cli("embed --model " + golden_model_path(false) + " --out " + out.string() + " " + wav(kC05) +
                         " " + wav(kC08));
  ASSERT_EQ(r.code, 0) << last_stderr();
  const auto arr = read_npy(out.string());
  ASSERT_EQ(arr.shape, (std::vector<int64_t>{2, 64}));
  const auto v = arr.as_float();
  expect_embedding_close({v.begin(), v.begin() + 64}, golden_array(std::string("audio/") + kC05 + "/embedding.npy"),
                         kC05);
  expect_embedding_close({v.begin() + 64, v.end()}, golden_array(std::string("audio/") + kC08 + "/embedding.npy"),
                         kC08);
}

TEST(ClapCli, EmbedStereoConcatWithOffsetMatchesGolden) {
  // msclap concatenates channels; the manifest's crop_start for this clip is 42265.
  const auto out = scratch_dir() / "stereo.npy";
  const std::string id = "c06_stereo_22k05_pcm16_5s";
  const auto r = run_cli("embed --model " + golden_model_path(false) + " --channels concat --crop offset:42265 --out " +
                         out.string() + " " + wav(id));
  ASSERT_EQ(r.code, 0) << last_stderr();
  expect_embedding_close(read_npy(out.string()).as_float(), golden_array("audio/" + id + "/embedding.npy"), id);
}

TEST(ClapCli, TagsTopScoreIsGoldenArgmax) {
  const auto r = run_cli("tags --model " + golden_model_path(false) + " --top 3 --csv " + wav(kC05));
  ASSERT_EQ(r.code, 0) << last_stderr();
  const auto clipwise = golden_array(std::string("audio/") + kC05 + "/clipwise.npy");
  const auto best = std::max_element(clipwise.begin(), clipwise.end()) - clipwise.begin();
  std::istringstream lines(r.out);
  std::string header, first;
  std::getline(lines, header);
  std::getline(lines, first);
  EXPECT_EQ(header, "file,rank,class,label,score");
  // file,1,<class>,class_<class>,<score>
  std::istringstream f(first);
  std::string file, rank, cls, label, score;
  std::getline(f, file, ',');
  std::getline(f, rank, ',');
  std::getline(f, cls, ',');
  std::getline(f, label, ',');
  std::getline(f, score, ',');
  EXPECT_EQ(rank, "1");
  EXPECT_EQ(std::stoll(cls), best);
  EXPECT_EQ(label, "class_" + std::to_string(best));
  EXPECT_NEAR(std::stod(score), clipwise[static_cast<size_t>(best)], 2e-6);
}

TEST(ClapCli, SimilarityLogitsMatchGolden) {
  const auto r = run_cli("similarity --model " + golden_model_path(false) +
                         " --measure logits --csv --text Vibration --text 'Sounds like a fan running' " + wav(kC05));
  ASSERT_EQ(r.code, 0) << last_stderr();
  const auto sim = golden_array("similarity/similarity.npy");  // [8 clips, 14 texts]; c05 is clip 4
  std::istringstream lines(r.out);
  std::string header, row;
  std::getline(lines, header);
  std::getline(lines, row);
  EXPECT_EQ(header, "file,Vibration,Sounds like a fan running");
  const auto comma1 = row.find(','), comma2 = row.find(',', comma1 + 1);
  EXPECT_NEAR(std::stod(row.substr(comma1 + 1)), sim[4 * 14 + 0], 2e-4);  // text ref0
  EXPECT_NEAR(std::stod(row.substr(comma2 + 1)), sim[4 * 14 + 8], 2e-4);  // text "fan"
}

TEST(ClapCli, BadInputsGiveOneLineErrorsAndNoOutput) {
  const auto dir = scratch_dir();
  const auto out = dir / "never.npy";
  // an unreadable audio file among good ones: exit 1, message names it, nothing written
  const auto bogus = dir / "not_audio.wav";
  write_file_atomic(bogus.string(), "this is not a wav file");
  auto r = run_cli("embed --model " + golden_model_path(false) + " --out " + out.string() + " " + wav(kC05) + " " +
                   bogus.string());
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(last_stderr().find("not_audio.wav"), std::string::npos) << last_stderr();
  EXPECT_FALSE(fs::exists(out));
  // a model path that is not a model file
  r = run_cli("tags --model " + bogus.string() + " " + wav(kC05));
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(last_stderr().find("not_audio.wav"), std::string::npos) << last_stderr();
  // texts and files together, or neither: usage errors
  r = run_cli("embed --model " + golden_model_path(false) + " --out " + out.string() + " --text hi " + wav(kC05));
  EXPECT_EQ(r.code, 2);
  r = run_cli("embed --model " + golden_model_path(false) + " --out " + out.string());
  EXPECT_EQ(r.code, 2);
  EXPECT_FALSE(fs::exists(out));
  // a labels file of the wrong length
  const auto labels = dir / "labels.txt";
  write_file_atomic(labels.string(), "one\ntwo\n");
  r = run_cli("tags --model " + golden_model_path(false) + " --labels " + labels.string() + " " + wav(kC05));
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(last_stderr().find("527"), std::string::npos) << last_stderr();
}
