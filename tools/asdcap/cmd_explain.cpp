// asdcap explain: difference captions for the clips detection flagged (papers §III-B/C, §IV-A).
#include <cstdio>
#include <memory>

#include "asdcap/error.hpp"
#include "asdcap/explain.hpp"
#include "command.hpp"
#include "options.hpp"

namespace {

struct ExplainArgs {
  asdcap::ExplainOptions options;
  std::string method;
  asdcap::cli::ExplainFiles files;
  bool quiet = false;
};

void print_summary(const asdcap::ExplainSummary& s) {
  for (const auto& c : s.clips) {
    std::printf("%s %s %s (score %.4f)\n", c.machine.c_str(), c.id.c_str(), c.file.c_str(), c.score);
    for (const auto& m : s.methods) {
      if (auto a = c.answers.find(m); a != c.answers.end())
        std::printf("  [%s] %s\n", m.c_str(), a->second.c_str());
      else if (auto e = c.errors.find(m); e != c.errors.end())
        std::printf("  [%s] (%s)\n", m.c_str(), e->second.c_str());
    }
  }
  std::fflush(stdout);
  std::fprintf(stderr,
               "explain: %d of %d flagged clips explained, %d skipped, %d failed requests, %d answers reused -> %s\n",
               s.n_explained, s.n_flagged, s.n_skipped, s.n_errors, s.n_reused, s.explanations_path.c_str());
  for (const auto& [m, why] : s.unavailable)
    std::fprintf(stderr, "explain: method %s unavailable: %s\n", m.c_str(), why.c_str());
}

void setup(CLI::App& app) {
  auto args = std::make_shared<ExplainArgs>();
  auto& o = args->options;
  auto* sub =
      app.add_subcommand("explain", "Difference captions: how each flagged clip differs from its nearest normal clips");
  sub->add_option("--data", o.data_root,
                  "Dataset root, if the clips moved since detection (default: the one in DIR/run.json)");
  sub->add_option("--out", o.out_dir,
                  "Run folder DIR of `asdcap detect` (neighbors.jsonl); explanations.jsonl goes here")
      ->required();
  asdcap::cli::add_model(sub, o.model_path, "with CLAP and the captioner, for the text/zeroshot/combined methods");
  sub->add_option("--method", args->method,
                  "Methods: text, zeroshot, combined, acoustic or all (comma-separated list allowed); "
                  "default: all with --model, acoustic without");
  auto* top =
      sub->add_option("--top", o.top, "Explain the N highest-scoring flagged clips per machine/id (the papers: 3)")
          ->capture_default_str()
          ->check(CLI::Range(1, 1000000));
  sub->add_flag("--all-flagged", o.all_flagged, "Explain every flagged clip")->excludes(top);
  asdcap::cli::add_explain_flags(sub, o, args->files);
  sub->add_flag(
      "--no-reuse", [args](int64_t) { args->options.reuse_answers = false; },
      "Ask the LLM again even for prompts an earlier run already answered");
  asdcap::cli::add_threads(sub, o.threads);
  asdcap::cli::add_quiet(sub, args->quiet);
  sub->callback([args] {
    asdcap::ExplainOptions opts = args->options;
    if (!args->method.empty()) {
      try {
        asdcap::parse_methods(args->method);
      } catch (const asdcap::InvalidArgument& e) {
        throw asdcap::UsageError(std::string("--method: ") + e.what());
      }
      opts.methods = {args->method};
    }
    asdcap::cli::finish_explain_flags(opts, args->files);
    if (!args->quiet) opts.log = [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); };
    const asdcap::ExplainSummary summary = asdcap::run_explain(opts);
    print_summary(summary);
    // Some failed requests are reported in the records and the summary; if every one failed, the run
    // produced no explanation at all, which a script must be able to see from the exit code.
    if (summary.n_llm_requests > 0 && summary.n_errors >= summary.n_llm_requests)
      throw asdcap::Error("explain: all " + std::to_string(summary.n_llm_requests) +
                          " LLM requests failed (first: " + summary.first_llm_error + "); the records, with their " +
                          "errors, are in " + summary.explanations_path + " and a rerun asks again");
  });
}

}  // namespace

ASDCAP_REGISTER_COMMAND(30, setup)
