// The flags several subcommands share, each declared once here: one help text, one parser, one
// validator. Values are parsed while the command line is read; a bad value is a UsageError (exit 2)
// whose message starts with the flag ("--crop: invalid crop policy 'middle': ...").
//
// The library reports a bad argument as InvalidArgument (exit 1). Where the argument came straight
// from a flag, the CLI turns it into a UsageError naming the flag: the parsers below do that for the
// values they parse, and rethrow_for_flag() for library calls whose only variable argument is a flag.
#pragma once
#include <CLI/CLI.hpp>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "asdcap/audio.hpp"
#include "asdcap/error.hpp"
#include "asdcap/explain.hpp"

namespace asdcap::cli {

// What --crop's policies do in a command. `random_by_content`: "random" is seeded by each clip's
// content hash (a rerun takes the same window); otherwise a fresh seed each run, as msclap does.
// `cover`: what becomes of the windows with "cover", e.g. "embeddings averaged".
struct CropMeaning {
  bool random_by_content = true;
  const char* cover = "embeddings averaged";
};

// --crop POLICY (default random): random | random:SEED | offset:N | cover.
CLI::Option* add_crop(CLI::App* sub, CropPolicy& target, const CropMeaning& meaning);

// --channels MODE (default mean): mean | concat.
CLI::Option* add_channels(CLI::App* sub, ChannelMode& target);

// --threads N (default 0 = all cores), 0..kMaxThreads.
constexpr int kMaxThreads = 1024;
CLI::Option* add_threads(CLI::App* sub, int& target);

// --model FILE: an asdcap model file. `holds` says what the command needs from it (e.g. "with the
// captioner"); empty for plain CLAP. The file itself is checked when the command opens it.
CLI::Option* add_model(CLI::App* sub, std::string& target, const std::string& holds = "");

// --quiet: no progress lines on stderr.
CLI::Option* add_quiet(CLI::App* sub, bool& target);

// How explanations are made, shared by explain and serve: --llm, --llm-model, --llm-timeout,
// --llm-retries, --llm-temperature (target.llm, target.llm_options), --texts and --templates (files,
// read by finish_explain_flags), --caption-prompt, --combined-evidence.
struct ExplainFiles {
  std::string texts, templates;
  std::vector<std::string> machine_parts;  // --machine-parts TYPE=LIST, parsed by finish_explain_flags
};
void add_explain_flags(CLI::App* sub, ExplainOptions& target, ExplainFiles& files);
// After parsing: reads --texts / --templates, the LLM server and key from the environment
// (OPENAI_BASE_URL, OPENAI_API_KEY: never on a command line) and, for --llm openai, checks that there
// is a --llm-model and a usable server address. UsageError otherwise.
void finish_explain_flags(ExplainOptions& target, const ExplainFiles& files);

// Every backend but acoustic (msclap, panns) needs `--model FILE`: a UsageError naming both flags otherwise.
void require_model_for_backend(const std::string& backend, const std::string& model);

// The parsers behind the options above (exposed for tests): UsageError naming `flag` on a bad value.
CropPolicy parse_crop_flag(const std::string& flag, const std::string& text);
ChannelMode parse_channels_flag(const std::string& flag, const std::string& text);
int parse_threads_flag(const std::string& flag, const std::string& text);
// --machine-parts values (TYPE=LIST): one entry per type, a UsageError on a malformed value or a
// type given twice.
std::map<std::string, MachineParts> parse_machine_parts_flags(const std::vector<std::string>& values);

// Runs `fn`; an InvalidArgument it throws becomes a UsageError with `flag` in front. For library
// calls whose arguments all come from that flag (e.g. a crop offset beyond a clip).
template <typename Fn>
decltype(auto) rethrow_for_flag(const std::string& flag, Fn&& fn) {
  try {
    return std::forward<Fn>(fn)();
  } catch (const InvalidArgument& e) {
    throw UsageError(flag + ": " + e.what());
  }
}

// Runs `fn`; an InvalidArgument it throws becomes a UsageError with the same message. For library
// calls whose every argument comes from the command line, when the message names the bad value.
template <typename Fn>
decltype(auto) rethrow_for_flags(Fn&& fn) {
  try {
    return std::forward<Fn>(fn)();
  } catch (const InvalidArgument& e) {
    throw UsageError(e.what());
  }
}

}  // namespace asdcap::cli
