// run_explain: the flagged clips of a run folder -> explanations.jsonl, stage by stage (stages.hpp).
#include "asdcap/explain.hpp"

#include <algorithm>
#include <chrono>

#include "asdcap/error.hpp"
#include "asdcap/run.hpp"
#include "core/progress.hpp"
#include "stages.hpp"

namespace asdcap {

using namespace explain_detail;

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

const std::vector<std::string> kAllMethods = {"text", "zeroshot", "combined", "acoustic"};

// What one run shares between its clips.
struct RunContext {
  const ExplainOptions& options;
  const Plan& plan;
  const EvidenceByPath& evidence;
  const std::map<std::string, std::vector<std::string>>& reference_pool;
  double evidence_seconds;
  ClapInputStage& clap;
  const std::map<std::string, ExplanationRecord>& previous;
  AnswerCounts& counts;
};

// One measured clip: CLAP inputs, each method's prompt and answer -> its record; `brief` gets the
// answers and errors for the summary.
ExplanationRecord explain_clip(const ScoredClip& clip, const ClipEvidence& own, RunContext& run, ExplainedClip& brief) {
  const auto t_clip = Clock::now();
  static const std::vector<std::string> no_pool;
  const auto pool = run.reference_pool.find(reference_key(clip));
  const ClipComparison evidence =
      compare_with_neighbors(clip, own, run.evidence, pool == run.reference_pool.end() ? no_pool : pool->second);
  const ClapInputs clap = run.clap.inputs_for(clip);
  ExplanationRecord rec = explain_record(clip, evidence, clap, run.plan, run.options, run.previous, run.counts);
  brief = {clip.file, clip.machine, clip.id, clip.score, {}, {}};
  for (const auto& [m, answered] : rec.methods) {
    if (answered.missing_reason)
      brief.errors[m] = "unavailable: " + *answered.missing_reason;
    else if (answered.answer)
      brief.answers[m] = *answered.answer;
    else if (answered.error)
      brief.errors[m] = *answered.error;
  }
  rec.timings->evidence_s_all_clips = run.evidence_seconds;
  rec.timings->total_s = since(t_clip);
  return rec;
}

std::string joined(const std::vector<std::string>& words) {
  std::string s;
  for (const auto& w : words) s += " " + w;
  return s;
}

}  // namespace

std::vector<std::string> parse_methods(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find(',', start);
    if (end == std::string::npos) end = text.size();
    const std::string m = text.substr(start, end - start);
    if (m == "all") {
      for (const auto& a : kAllMethods)
        if (std::find(out.begin(), out.end(), a) == out.end()) out.push_back(a);
    } else if (std::find(kAllMethods.begin(), kAllMethods.end(), m) != kAllMethods.end()) {
      if (std::find(out.begin(), out.end(), m) == out.end()) out.push_back(m);
    } else {
      throw InvalidArgument("unknown explanation method \"" + m +
                            "\" (expected text, zeroshot, combined, acoustic or all)");
    }
    start = end + 1;
  }
  return out;
}

ExplainSummary run_explain(const ExplainOptions& o) {
  check_options(o);
  auto log = [&](const std::string& line) {
    if (o.log) o.log(line);
  };
  require_detection_results(o.out_dir);
  const RunLock lock(o.out_dir);
  const RunInputs inputs = read_run_inputs(o);
  const Plan plan = make_plan(o, inputs);

  ExplainSummary summary;
  summary.n_flagged = inputs.n_flagged;
  summary.methods = plan.methods;
  for (const auto& m : plan.methods)
    if (auto why = plan.method_missing(m); !why.empty()) summary.unavailable[m] = why;
  std::vector<std::string> problems;
  const auto previous =
      o.reuse_answers ? previous_records(o.out_dir, &problems) : std::map<std::string, ExplanationRecord>{};
  for (const auto& p : problems) log("explain: earlier explanations: " + p);

  log("explain: " + std::to_string(inputs.chosen.size()) + " of " + std::to_string(summary.n_flagged) +
      " flagged clips, methods:" + joined(plan.methods));
  const auto t_evidence = Clock::now();
  const EvidenceByPath evidence = measure_all(inputs.chosen, inputs.reference_pool, o.threads);
  ClapInputStage clap(plan, o.caption_prompt, inputs.chosen);
  AnswerCounts counts;
  RunContext run{o, plan, evidence, inputs.reference_pool, since(t_evidence), clap, previous, counts};

  ExplanationWriter writer(o.out_dir);  // after the earlier records were read: it starts the partial file anew
  std::vector<SkippedRecord> skipped;
  Progress progress("explain", static_cast<int64_t>(inputs.chosen.size()));
  for (const auto& clip : inputs.chosen) {
    const MeasuredFile& own = evidence.at(clip.path);
    if (own.value) {
      ExplainedClip brief;
      writer.append(explain_clip(clip, *own.value, run, brief));
      summary.clips.push_back(std::move(brief));
    } else {
      skipped.push_back({clip.path, "explain", own.error});
      log("explain: skipped " + clip.path + ": " + own.error);
    }
    progress.tick();
  }
  summary.explanations_path = writer.commit();
  update_skipped(o.out_dir, skipped);
  summary.n_explained = static_cast<int>(summary.clips.size());
  summary.n_skipped = static_cast<int>(skipped.size());
  summary.n_errors = counts.n_errors;
  summary.n_reused = counts.n_reused;
  summary.n_llm_requests = counts.n_llm_requests;
  summary.first_llm_error = counts.first_llm_error;
  return summary;
}

}  // namespace asdcap
