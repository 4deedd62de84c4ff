// Prompts: each method's prompt for one clip, and the same information for the offline explainer.
#include <cstdio>

#include "asdcap/prompts.hpp"
#include "stages.hpp"

namespace asdcap::explain_detail {

namespace {

// CSV cells of the evidence table (anomalous row and one row per measured neighbour).
struct EvidenceCells {
  std::vector<std::string> headers, anomalous;
  std::vector<std::vector<std::string>> normals;
};

// "0.81 2.14 3.02": the times of a clip's short events (the CSV cell has no comma).
std::string times_cell(const std::vector<double>& times) {
  std::string s;
  for (double t : times) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2f", t);
    if (!s.empty()) s += ' ';
    s += buf;
  }
  return s;
}

EvidenceCells evidence_cells(const ClipComparison& c) {
  EvidenceCells cells;
  const size_t k = c.rows.empty() ? 0 : c.rows[0].neighbors.size();
  cells.normals.resize(k);
  for (const auto& r : c.rows) {
    cells.headers.push_back(feature_header(*r.spec));
    cells.anomalous.push_back(format_feature(*r.spec, r.anomalous));
    for (size_t i = 0; i < k; ++i) cells.normals[i].push_back(format_feature(*r.spec, r.neighbors[i]));
  }
  cells.headers.push_back("Times of those short events (s)");
  cells.anomalous.push_back(times_cell(c.burst_times));
  for (size_t i = 0; i < k; ++i)
    cells.normals[i].push_back(i < c.neighbor_burst_times.size() ? times_cell(c.neighbor_burst_times[i]) : "");
  // A feature made of moments (crackle) brings their times too, in the band the clip is compared in.
  for (const auto& r : c.rows) {
    if (r.spec->key != "crackle_db") continue;
    cells.headers.push_back("Times of the crackle moments in that band (s)");
    cells.anomalous.push_back(times_cell(r.times));
    for (size_t i = 0; i < k; ++i)
      cells.normals[i].push_back(i < r.neighbor_times.size() ? times_cell(r.neighbor_times[i]) : "");
  }
  return cells;
}

// The evidence columns of the combined method's CSV: only the measured neighbours line up with the
// rows; a neighbour without evidence gets empty cells.
ExtraColumns combined_columns(const EvidenceCells& cells, const std::vector<bool>& neighbor_ok) {
  ExtraColumns extra;
  extra.headers = cells.headers;
  extra.anomalous = cells.anomalous;
  size_t next = 0;
  for (bool good : neighbor_ok)
    extra.normals.push_back(good ? cells.normals[next++] : std::vector<std::string>(cells.headers.size()));
  return extra;
}

}  // namespace

MethodPrompt method_prompt(const std::string& m, const ScoredClip& clip, const Plan& plan, const ExplainOptions& o,
                           const ClipComparison& evidence, const ClapInputs& clap) {
  MethodPrompt p;
  p.missing = plan.method_missing(m);
  if (p.missing.empty() && needs_captions(m) && !clap.anomalous_caption) p.missing = clap.caption_error;
  if (p.missing.empty() && needs_similarity(m) && !clap.anomalous_similarity) p.missing = clap.similarity_error;
  if (!p.missing.empty()) return p;

  const EvidenceCells cells = evidence_cells(evidence);
  OfflineInput& input = p.input;
  input.machine = clip.machine;
  if (const auto declared = o.machine_parts.find(clip.machine); declared != o.machine_parts.end())
    input.parts = declared->second;
  if (m == "text") {
    p.prompt = build_text_prompt(o.templates, clip.machine, *clap.anomalous_caption, clap.normal_captions);
    input.anomalous_caption = &*clap.anomalous_caption;
    input.normal_captions = &clap.normal_captions;
  } else if (m == "zeroshot") {
    p.prompt = build_zeroshot_prompt(o.templates, clip.machine, plan.texts, *clap.anomalous_similarity,
                                     clap.normal_similarity);
  } else if (m == "combined") {
    const ExtraColumns extra = o.combined_evidence ? combined_columns(cells, evidence.neighbor_ok) : ExtraColumns{};
    p.prompt = build_combined_prompt(o.templates, clip.machine, plan.texts, *clap.anomalous_caption,
                                     *clap.anomalous_similarity, clap.normal_captions, clap.normal_similarity,
                                     o.combined_evidence ? &extra : nullptr);
    input.anomalous_caption = &*clap.anomalous_caption;
    input.normal_captions = &clap.normal_captions;
    input.evidence = o.combined_evidence ? &evidence.rows : nullptr;
    input.burst_times = o.combined_evidence ? &evidence.burst_times : nullptr;
  } else {
    p.prompt = build_acoustic_prompt(o.templates, clip.machine, cells.headers, cells.anomalous, cells.normals);
    input.evidence = &evidence.rows;
    input.burst_times = &evidence.burst_times;
  }
  if (needs_similarity(m)) {
    input.texts = &plan.texts;
    input.anomalous_similarity = &*clap.anomalous_similarity;
    input.normal_similarity = &clap.normal_similarity;
  }
  return p;
}

}  // namespace asdcap::explain_detail
