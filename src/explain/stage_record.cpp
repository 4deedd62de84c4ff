// Record: what explanations.jsonl says about one clip (its methods' answers are added by the caller),
// and the explain entries of skipped.jsonl.
#include <filesystem>

#include "stages.hpp"

namespace asdcap::explain_detail {

namespace {

std::vector<EvidenceFeature> evidence_features(const ClipComparison& c) {
  std::vector<EvidenceFeature> out;
  for (const auto& r : c.rows) {
    EvidenceFeature f;
    f.key = r.spec->key;
    f.name = r.spec->name;
    f.unit = r.spec->unit;
    f.anomalous = r.anomalous;
    size_t next = 0;
    for (bool ok : c.neighbor_ok) f.neighbors.push_back(ok ? std::optional<double>(r.neighbors[next++]) : std::nullopt);
    f.z = r.z;
    f.reference_mean = r.reference_mean;
    f.z_all = r.z_all;
    f.percentile = r.percentile;
    if (r.z) f.strength = r.strength;
    f.times = r.times;
    out.push_back(std::move(f));
  }
  return out;
}

std::optional<std::string> reason(const std::string& why) {
  return why.empty() ? std::nullopt : std::optional<std::string>(why);
}

}  // namespace

ExplanationRecord make_record(const ScoredClip& clip, const ClipComparison& evidence, const ClapInputs& clap,
                              const Plan& plan, const ExplainOptions& o) {
  ExplanationRecord rec;
  rec.file = clip.file;
  rec.path = clip.path;
  rec.machine = clip.machine;
  rec.id = clip.id;
  rec.score = clip.score;
  rec.threshold = clip.threshold;
  rec.label = clip.label;
  rec.domain = clip.domain;
  rec.neighbors = clip.neighbors;
  rec.evidence = evidence_features(evidence);
  rec.burst_times = evidence.burst_times;
  rec.unreadable_neighbors = evidence.unreadable;

  if (plan.want_captions) {
    rec.captions.anomalous = clap.anomalous_caption;
    if (clap.anomalous_caption) rec.captions.neighbors.assign(clap.normal_captions.begin(), clap.normal_captions.end());
    rec.captions.prompt = o.caption_prompt;
    rec.captions.missing_reason = reason(clap.caption_error);
  } else {
    rec.captions.missing_reason = plan.not_needed;
  }
  rec.similarity.texts = plan.texts;
  if (plan.want_similarity) {
    rec.similarity.anomalous = clap.anomalous_similarity;
    if (clap.anomalous_similarity) rec.similarity.neighbors = clap.normal_similarity;
    rec.similarity.missing_reason = reason(clap.similarity_error);
  } else {
    rec.similarity.missing_reason = plan.not_needed;
  }
  return rec;
}

ExplanationRecord explain_record(const ScoredClip& clip, const ClipComparison& evidence, const ClapInputs& clap,
                                 const Plan& plan, const ExplainOptions& o,
                                 const std::map<std::string, ExplanationRecord>& previous, AnswerCounts& counts) {
  ExplanationRecord rec = make_record(clip, evidence, clap, plan, o);
  double llm_seconds = 0;
  for (const auto& m : plan.methods) {
    MethodPrompt prompt = method_prompt(m, clip, plan, o, evidence, clap);
    MethodRecord answered = answer(m, clip, prompt, plan, o, previous, counts);
    llm_seconds += answered.seconds;
    rec.methods.emplace_back(m, std::move(answered));
  }
  rec.timings = ExplainTimings{0, clap.caption_seconds, clap.similarity_seconds, llm_seconds, 0};
  return rec;
}

void update_skipped(const std::string& dir, const std::vector<SkippedRecord>& explain_entries) {
  std::vector<SkippedRecord> entries;
  std::error_code ec;
  const bool exists = std::filesystem::exists(std::filesystem::path(dir) / run_files::kSkipped, ec);
  if (exists)
    for (auto& s : read_skipped(dir))
      if (s.stage != "explain") entries.push_back(std::move(s));
  if (!exists && explain_entries.empty()) return;
  entries.insert(entries.end(), explain_entries.begin(), explain_entries.end());
  write_skipped(dir, entries);
}

}  // namespace asdcap::explain_detail
