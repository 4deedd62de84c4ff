// The CLI's shared flags and its exit codes: a bad --crop / --channels / --threads value is a usage
// error (exit 2, one line naming the flag) in every command that takes the flag; a library refusal
// that no flag caused (InvalidArgument) exits 1; subcommands are listed in reading order.
#include <gtest/gtest.h>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <filesystem>
#include <new>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "asdcap/error.hpp"
#include "audio/audio_files.hpp"
#include "cli_runner.hpp"
#include "failure.hpp"
#include "options.hpp"
#include "support/golden_model.hpp"

namespace asdcap {
namespace {

using test::run_cli;
using test::TempDir;

std::string clip(const std::string& id) { return std::string(ASDCAP_SHARED_DIR) + "/golden/inputs/" + id + ".wav"; }
const std::string kClip10s = "c01_hum_16k_pcm16_10s";  // 441000 samples at 44.1 kHz: last window start 132300

// Exit 2, exactly one line on stderr, starting "asdcap: error: <flag>:" and holding `value`, no stdout.
void expect_flag_error(const std::vector<std::string>& args, const std::string& flag, const std::string& value) {
  const auto r = run_cli(args);
  std::string cmd;
  for (const auto& a : args) cmd += a + " ";
  EXPECT_EQ(r.code, 2) << cmd << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << cmd << r.err;
  EXPECT_EQ(r.err.rfind("asdcap: error: " + flag + ": ", 0), 0u) << cmd << r.err;
  EXPECT_NE(r.err.find(value), std::string::npos) << cmd << r.err;
  EXPECT_TRUE(r.out.empty()) << cmd << r.out;
}

// Every command with --crop / --channels / --threads, with what else it needs to get past parsing.
struct CommandLine {
  std::vector<std::string> args;
  bool crop_and_channels;  // takes --crop and --channels (every one of them takes --threads)
};

std::vector<CommandLine> commands_with_shared_flags(const TempDir& dir) {
  const std::string wav = clip(kClip10s), model = dir.file("never-opened.gguf");
  return {
      {{"features", "--out", dir.file("f.npy"), wav}, true},
      {{"embed", "--model", model, "--out", dir.file("e.npy"), wav}, true},
      {{"tags", "--model", model, wav}, true},
      {{"similarity", "--model", model, "--text", "a fan", wav}, true},
      {{"caption", "--model", model, wav}, true},
      {{"detect", "--data", dir.file("data"), "--out", dir.file("run")}, true},
      {{"explain", "--out", dir.file("run")}, false},
      {{"report", "--out", dir.file("run")}, false},
      {{"demo", "--out", dir.file("demo")}, false},
      {{"synth", "--out", dir.file("synth")}, false},
      {{"serve", "--data", dir.file("serve"), "--listen", "127.0.0.1:0"}, false},
  };
}

std::vector<std::string> with(std::vector<std::string> args, const std::string& flag, const std::string& value) {
  args.insert(args.begin() + 1, {flag, value});
  return args;
}

TEST(CliOptions, BadSharedFlagValuesAreUsageErrorsNamingTheFlag) {
  TempDir dir;
  for (const auto& c : commands_with_shared_flags(dir)) {
    if (c.crop_and_channels) {
      expect_flag_error(with(c.args, "--crop", "middle"), "--crop", "middle");
      expect_flag_error(with(c.args, "--crop", "offset:-5"), "--crop", "offset:-5");
      expect_flag_error(with(c.args, "--crop", "random:x"), "--crop", "random:x");
      expect_flag_error(with(c.args, "--channels", "left"), "--channels", "left");
    }
    expect_flag_error(with(c.args, "--threads", "many"), "--threads", "many");
    expect_flag_error(with(c.args, "--threads", "-1"), "--threads", "-1");
    expect_flag_error(with(c.args, "--threads", "1025"), "--threads", "1025");
  }
  // Nothing was run: no command got as far as writing anything.
  EXPECT_TRUE(std::filesystem::is_empty(dir.path()));
}

TEST(CliOptions, CropOffsetBeyondTheClipIsAUsageErrorNamingCropAndTheLimit) {
  TempDir dir;
  const std::string wav = clip(kClip10s);
  expect_flag_error({"features", "--crop", "offset:132301", "--out", dir.file("f.npy"), wav}, "--crop", "132300");
  expect_flag_error(
      {"embed", "--model", golden_model_path(false), "--crop", "offset:132301", "--out", dir.file("e.npy"), wav},
      "--crop", "132300");
  EXPECT_FALSE(std::filesystem::exists(dir.file("f.npy")));
  EXPECT_FALSE(std::filesystem::exists(dir.file("e.npy")));
}

TEST(CliOptions, BackendMsclapWithoutModelIsAUsageError) {
  TempDir dir;
  const auto r = run_cli({"detect", "--data", dir.file("data"), "--out", dir.file("run"), "--backend", "msclap"});
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_EQ(r.err, "asdcap: error: --backend msclap needs --model FILE\n");
  EXPECT_FALSE(std::filesystem::exists(dir.file("run")));
}

// The training flags of detect and demo (ae): out-of-range or malformed values are usage errors
// naming the flag, before anything is written.
TEST(CliOptions, BadTrainingFlagValuesAreUsageErrorsNamingTheFlag) {
  TempDir dir;
  const std::vector<std::pair<std::vector<std::string>, std::string>> commands = {
      {{"detect", "--data", dir.file("data"), "--out", dir.file("run"), "--backend", "ae"}, "--seed"},
      {{"demo", "--out", dir.file("demo"), "--backend", "ae"}, "--train-seed"},
  };
  for (const auto& [args, seed] : commands) {
    expect_flag_error(with(args, "--epochs", "0"), "--epochs", "0");
    expect_flag_error(with(args, "--epochs", "many"), "--epochs", "many");
    expect_flag_error(with(args, "--batch-size", "0"), "--batch-size", "0");
    expect_flag_error(with(args, "--learning-rate", "0"), "--learning-rate", "'0'");
    expect_flag_error(with(args, "--learning-rate", "-0.01"), "--learning-rate", "-0.01");
    expect_flag_error(with(args, "--learning-rate", "inf"), "--learning-rate", "inf");
    expect_flag_error(with(args, "--learning-rate", "1e-3x"), "--learning-rate", "1e-3x");
    expect_flag_error(with(args, seed, "-3"), seed, "-3");
    expect_flag_error(with(args, seed, "1.5"), seed, "1.5");
    expect_flag_error(with(args, seed, "18446744073709551616"), seed, "18446744073709551616");
  }
  EXPECT_TRUE(std::filesystem::is_empty(dir.path()));
}

TEST(CliOptions, SynthSettingsTheLibraryRefusesAreUsageErrors) {
  TempDir dir;
  const auto r = run_cli({"synth", "--out", dir.file("s"), "--machines", "toaster"});
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find("toaster"), std::string::npos) << r.err;
}

TEST(CliOptions, GoodValuesParseToTheLibrarysTypes) {
  EXPECT_EQ(cli::parse_crop_flag("--crop", "offset:7").offset, 7);
  EXPECT_EQ(cli::parse_crop_flag("--crop", "random:42").to_string(), "random:42");
  EXPECT_EQ(cli::parse_crop_flag("--crop", "cover").kind, CropPolicy::Kind::Cover);
  EXPECT_EQ(cli::parse_channels_flag("--channels", "concat"), ChannelMode::Concat);
  EXPECT_EQ(cli::parse_threads_flag("--threads", "0"), 0);
  EXPECT_EQ(cli::parse_threads_flag("--threads", "1024"), 1024);
  for (const char* bad : {"", " 2", "2 ", "1.5", "+3", "0x10", "99999999999"})
    EXPECT_THROW(cli::parse_threads_flag("--threads", bad), UsageError) << "'" << bad << "'";
}

TEST(CliOptions, MachinePartsFlags) {
  const auto parts = cli::parse_machine_parts_flags({"line3-motor=rotor", "Blower 2=flow,rotor", "tank=none"});
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_EQ(parts.at("line3-motor"), (MachineParts{false, true, false}));
  EXPECT_EQ(parts.at("Blower 2"), (MachineParts{true, true, false}));
  EXPECT_EQ(parts.at("tank"), (MachineParts{false, false, false}));
  EXPECT_TRUE(cli::parse_machine_parts_flags({}).empty());
  for (const std::vector<std::string>& bad : std::vector<std::vector<std::string>>{
           {"pump"}, {"=flow"}, {"pump="}, {"pump=wings"}, {"pump=flow", "pump=rotor"}})
    EXPECT_THROW(cli::parse_machine_parts_flags(bad), UsageError) << bad.front();
  try {
    cli::parse_machine_parts_flags({"pump=flow,wings"});
    FAIL() << "no exception";
  } catch (const UsageError& e) {
    EXPECT_STREQ(e.what(),
                 "--machine-parts pump: machine parts \"flow,wings\": \"wings\" is not one of flow, rotor, gears "
                 "(or none alone)");
  }
}

TEST(CliOptions, RethrowForFlagTurnsOnlyInvalidArgumentIntoUsageError) {
  try {
    cli::rethrow_for_flag("--text", []() -> int { throw InvalidArgument("text has 99 tokens"); });
    FAIL() << "no exception";
  } catch (const UsageError& e) {
    EXPECT_STREQ(e.what(), "--text: text has 99 tokens");
  }
  EXPECT_THROW(cli::rethrow_for_flag("--text", []() -> int { throw IoError("x.wav: cannot open"); }), IoError);
  EXPECT_EQ(cli::rethrow_for_flag("--text", [] { return 3; }), 3);
}

TEST(CliExitCodes, UsageErrorsExit2AndLibraryErrorsExit1InOneLine) {
  cli::Failure f = cli::failure_of(std::make_exception_ptr(UsageError("--crop: invalid crop policy 'x'")));
  EXPECT_EQ(f.exit_code, 2);
  EXPECT_EQ(f.message, "--crop: invalid crop policy 'x'");
  // The library refused an argument no flag gave it: an error of the run, not of the command line.
  f = cli::failure_of(std::make_exception_ptr(InvalidArgument("knn_search: bad sizes\nsecond line")));
  EXPECT_EQ(f.exit_code, 1);
  EXPECT_EQ(f.message, "knn_search: bad sizes second line");
  f = cli::failure_of(std::make_exception_ptr(IoError("x.wav: cannot open")));
  EXPECT_EQ(f.exit_code, 1);
  EXPECT_EQ(f.message, "x.wav: cannot open");
  f = cli::failure_of(std::make_exception_ptr(CLI::ValidationError("--k", "out of range")));
  EXPECT_EQ(f.exit_code, 2);
  EXPECT_NE(f.message.find("(see --help)"), std::string::npos) << f.message;
  f = cli::failure_of(std::make_exception_ptr(std::bad_alloc()));
  EXPECT_EQ(f.exit_code, 1);
  EXPECT_EQ(f.message, "out of memory");
  f = cli::failure_of(std::make_exception_ptr(std::logic_error("oops")));
  EXPECT_EQ(f.exit_code, 1);
  EXPECT_EQ(f.message, "internal error: oops");
}

TEST(CliHelp, SubcommandsInReadingOrder) {
  const auto r = run_cli({"--help"});
  ASSERT_EQ(r.code, 0) << r.err;
  const std::vector<std::string> order = {"demo",     "detect", "explain",    "report",  "serve",   "synth", "embed",
                                          "features", "tags",   "similarity", "caption", "convert", "info"};
  size_t at = r.out.find("Subcommands:");
  ASSERT_NE(at, std::string::npos) << r.out;
  for (const auto& name : order) {
    const size_t next = r.out.find("\n  " + name + " ", at);
    ASSERT_NE(next, std::string::npos) << name << " missing or out of order:\n" << r.out;
    at = next + 1;
  }
}

}  // namespace
}  // namespace asdcap
