// The stages of run_explain, in order (not a public interface):
//   inputs    (run_inputs.cpp)         the run folder's settings and the flagged clips to explain
//   plan      (stage_plan.cpp)         options -> methods, and what this run can deliver
//   evidence  (stage_evidence.cpp)     every distinct file measured once, in parallel
//   CLAP      (stage_clap_inputs.cpp)  captions and text similarities, each file's once
//   prompts   (stage_prompts.cpp)      one prompt (and offline-explainer input) per method
//   answers   (stage_answers.cpp)      offline explainer or LLM, reusing an earlier identical answer
//   record    (stage_record.cpp)       one explanations.jsonl record per clip
#pragma once
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "asdcap/evidence.hpp"
#include "asdcap/explain.hpp"
#include "asdcap/llm.hpp"
#include "asdcap/run.hpp"
#include "clap_methods.hpp"
#include "run_inputs.hpp"

namespace asdcap::explain_detail {

// ---- plan ---------------------------------------------------------------------------------------
bool needs_captions(const std::string& method);
bool needs_similarity(const std::string& method);

// Throws InvalidArgument for options no run can use.
void check_options(const ExplainOptions& options);

struct Plan {
  std::vector<std::string> methods;  // in the order they run
  std::vector<std::string> texts;    // reference texts of the similarities
  bool want_captions = false, want_similarity = false;
  std::string caption_missing, similarity_missing;  // why they cannot be had ("" = available)
  std::string not_needed;                           // recorded when no chosen method needs captions / similarities
  std::unique_ptr<ClapMethods> clap;                // when a method needs it and a model is given
  std::unique_ptr<OpenAiClient> client;             // --llm openai
  std::string llm_backend, llm_model;               // recorded with every answer

  // Why `method` cannot run at all in this run ("" = it can).
  std::string method_missing(const std::string& method) const;
};

// Opens what the methods need (the CLAP model with the run's crop and channel mode, the LLM client).
Plan make_plan(const ExplainOptions& options, const RunInputs& run);
// The same for clips outside a run folder: the CLAP model (when a method needs it) embeds and
// captions with `crop` and `channels`; `cache_path` is an embedding cache (empty: none). Throws
// InvalidArgument when options.model_path is not an msclap model file.
Plan make_plan(const ExplainOptions& options, const CropPolicy& crop, ChannelMode channels,
               const std::string& cache_path);
// The answering side of a plan from options.llm: the LLM client (--llm openai) or the offline
// explainer, and the backend and model names recorded with every answer.
void open_llm(Plan& plan, const ExplainOptions& options);

// ---- evidence -----------------------------------------------------------------------------------
struct MeasuredFile {
  std::optional<ClipEvidence> value;
  std::string error;  // why it could not be measured
};
using EvidenceByPath = std::map<std::string, MeasuredFile>;

// Measures every distinct file of the clips, their neighbours and the reference sets of their
// machine IDs once, on `threads` threads.
EvidenceByPath measure_all(const std::vector<ScoredClip>& clips,
                           const std::map<std::string, std::vector<std::string>>& reference_pool, int threads);

// One clip's evidence against the neighbours that could be measured, and against the whole
// reference set of its machine ID.
struct ClipComparison {
  std::vector<EvidenceRow> rows;
  std::vector<bool> neighbor_ok;  // per neighbour: measured
  std::vector<UnreadableNeighbor> unreadable;
  std::vector<double> burst_times;                        // seconds: the clip's short events
  std::vector<std::vector<double>> neighbor_burst_times;  // the same, per measured neighbour
};
ClipComparison compare_with_neighbors(const ScoredClip& clip, const ClipEvidence& own, const EvidenceByPath& evidence,
                                      const std::vector<std::string>& reference_pool);

// ---- CLAP inputs --------------------------------------------------------------------------------
struct ClapInputs {
  std::optional<std::string> anomalous_caption;  // none when missing
  std::vector<std::string> normal_captions;
  std::string caption_error;  // why there is no caption ("" = there is, or none was asked for)
  double caption_seconds = 0;
  std::optional<std::vector<double>> anomalous_similarity;
  std::vector<std::vector<double>> normal_similarity;
  std::string similarity_error;
  double similarity_seconds = 0;
};

// Captions and embeddings of each file are computed once per run, however many clips share it.
// Captions are computed in batches (one decoder batch per beam-search step): the files of the clip
// asked for, then those of the clips that follow it in `upcoming` (the order the clips are explained
// in), up to kCaptionBatch files not captioned yet.
class ClapInputStage {
 public:
  static constexpr size_t kCaptionBatch = 16;
  ClapInputStage(const Plan& plan, std::string caption_prompt, std::vector<ScoredClip> upcoming = {})
      : plan_(plan), caption_prompt_(std::move(caption_prompt)), upcoming_(std::move(upcoming)) {}
  ClapInputs inputs_for(const ScoredClip& clip);
  // Drops what is remembered of a file (a long-lived stage keeps only the files that recur).
  void forget(const std::string& path);
  // Drops what is remembered of the least recently used files until at most `files` remain.
  void keep_at_most(size_t files);
  size_t remembered_files() const { return last_use_.size(); }

 private:
  void caption_batch(const ScoredClip& clip);
  const std::pair<std::vector<float>, std::string>& embedding_of(const std::string& path);
  void captions(const ScoredClip& clip, ClapInputs& in);
  void similarities(const ScoredClip& clip, ClapInputs& in);

  const Plan& plan_;
  std::string caption_prompt_;
  std::vector<ScoredClip> upcoming_;
  size_t cursor_ = 0;  // where in upcoming_ the last clip asked for was found
  std::map<std::string, std::pair<std::string, std::string>> caption_memo_;  // path -> (caption, error)
  std::map<std::string, std::pair<std::vector<float>, std::string>> embedding_memo_;
  std::map<std::string, uint64_t> last_use_;  // every remembered file -> when a clip last needed it
  uint64_t tick_ = 0;
};

// ---- prompts ------------------------------------------------------------------------------------
struct MethodPrompt {
  std::string missing;  // why the method cannot run for this clip ("" = it can)
  std::string prompt;
  OfflineInput input;  // points into the Plan / ClapInputs / ClipComparison it was built from
};

MethodPrompt method_prompt(const std::string& method, const ScoredClip& clip, const Plan& plan,
                           const ExplainOptions& options, const ClipComparison& evidence, const ClapInputs& clap);

// ---- answers ------------------------------------------------------------------------------------
// Earlier records by clip path (explanations.jsonl, then a left-over partial file: later wins).
// Lines that cannot be read are described in `problems`.
std::map<std::string, ExplanationRecord> previous_records(const std::string& dir, std::vector<std::string>* problems);

struct AnswerCounts {
  int n_errors = 0, n_reused = 0, n_llm_requests = 0;
  std::string first_llm_error;
};

// Answers one prompt: the offline explainer, an earlier identical answer, or the LLM.
MethodRecord answer(const std::string& method, const ScoredClip& clip, MethodPrompt& prompt, const Plan& plan,
                    const ExplainOptions& options, const std::map<std::string, ExplanationRecord>& previous,
                    AnswerCounts& counts);

// ---- record -------------------------------------------------------------------------------------
// One clip's record: make_record, then each method of the plan prompted and answered, in order.
// Sets the timings but the evidence's (the caller's: measured for all clips at once).
ExplanationRecord explain_record(const ScoredClip& clip, const ClipComparison& evidence, const ClapInputs& clap,
                                 const Plan& plan, const ExplainOptions& options,
                                 const std::map<std::string, ExplanationRecord>& previous, AnswerCounts& counts);

ExplanationRecord make_record(const ScoredClip& clip, const ClipComparison& evidence, const ClapInputs& clap,
                              const Plan& plan, const ExplainOptions& options);

// skipped.jsonl keeps detection's entries and gets this run's explain entries (earlier explain
// entries go).
void update_skipped(const std::string& dir, const std::vector<SkippedRecord>& explain_entries);

}  // namespace asdcap::explain_detail
