// Difference captions for flagged clips (papers §III-B/C, §IV-A): for each clip detection flagged,
// compare it with its k nearest normal clips by captions, zero-shot text similarities and
// measured acoustic evidence, and have an LLM (or the offline explainer) say how it differs.
// Explains an existing run folder (written by run_detect): writes DIR/explanations.jsonl and lists
// unreadable clips in DIR/skipped.jsonl (formats: asdcap/run.hpp).
#pragma once
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "asdcap/llm.hpp"
#include "asdcap/prompts.hpp"

namespace asdcap {

struct ExplainOptions {
  std::string data_root;   // where the dataset is now, if it moved since detection (default: run.json's)
  std::string out_dir;     // DIR: neighbors.jsonl, run.json (read), explanations.jsonl (written)
  std::string model_path;  // GGUF model; empty: CLAP methods are unavailable, acoustic runs
  // "text", "zeroshot", "combined", "acoustic"; empty: all four with a model, acoustic without.
  std::vector<std::string> methods;
  std::string llm = "offline";     // "offline" | "openai"
  LlmOptions llm_options;          // for "openai" (see llm_options_from_env)
  int top = 3;                     // per machine/id, highest scores first, among flagged clips
  bool all_flagged = false;        // explain every flagged clip
  std::vector<std::string> texts;  // reference texts; empty: the papers' 8
  PromptTemplates templates = PromptTemplates::defaults();
  std::string caption_prompt = "Sounds like";   // the captions' forced beginning (papers §IV-A)
  bool combined_evidence = false;               // add the acoustic evidence columns to the combined CSV
  bool reuse_answers = true;                    // reuse an earlier run's answer to the identical prompt
  int threads = 0;                              // evidence workers; 0: all cores
  std::function<void(const std::string&)> log;  // progress / diagnostics lines (optional)
  // Declared parts per machine type (the exact type name), for the offline explainer's causes;
  // other types' parts are guessed from their names (machine_parts_from_name).
  std::map<std::string, MachineParts> machine_parts;
};

struct ExplainedClip {
  std::string file, machine, id;
  double score = 0;
  std::map<std::string, std::string> answers;  // method -> answer
  std::map<std::string, std::string> errors;   // method -> error or missing reason
};

struct ExplainSummary {
  int n_flagged = 0;            // clips with decision 1 in neighbors.jsonl
  int n_explained = 0;          // records written
  int n_skipped = 0;            // flagged clips that could not be read (in skipped.jsonl)
  int n_errors = 0;             // method runs that ended with an error
  int n_reused = 0;             // answers reused from an earlier explanations.jsonl
  int n_llm_requests = 0;       // requests sent to an LLM server (--llm openai), failed or not
  std::string first_llm_error;  // the first failed request's error (API key redacted)
  std::vector<std::string> methods;
  std::map<std::string, std::string> unavailable;  // method -> why
  std::vector<ExplainedClip> clips;
  std::string explanations_path;
};

// Throws InvalidArgument for bad options, Error when DIR has no detection results (run detection
// first), RunRefused / FormatError when they cannot be used, IoError when DIR cannot be read or
// written or another process is writing it. Failures of single clips or LLM requests are recorded
// in the clip's record and never stop the run.
ExplainSummary run_explain(const ExplainOptions& options);

// The methods the options ask for, validated ("all" expands to the four). Throws InvalidArgument.
std::vector<std::string> parse_methods(const std::string& text);

}  // namespace asdcap
