// Building blocks of the HTML report, exposed for tests: the run folder as data, and the inline
// SVG charts. Every chart returns a complete <svg> element sized by its viewBox (it scales with
// the page) with a <title> for screen readers.
#pragma once
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace asdcap::report {

// ---- the run folder ----------------------------------------------------------------------
struct ResultRow {
  enum class Kind { Id, Average, Overall };
  Kind kind = Kind::Id;
  std::string machine, id;
  std::optional<double> auc, pauc, threshold;  // absent when the CSV cell is empty / NaN
  std::string threshold_rule;
  long n_normal = 0, n_anomaly = 0;
};

struct NeighborRef {
  std::string file, path;
  double distance = 0;
};

struct ScoredClip {
  std::string file, path, machine, id;
  std::optional<std::string> label, domain;  // "normal" / "anomaly" when known
  double score = 0, threshold = 0;
  int decision = 0;
  std::vector<NeighborRef> neighbors;
};

struct EvidenceFeature {
  std::string key, name, unit;
  std::optional<double> anomalous, z;
  std::vector<std::optional<double>> neighbors;
};

struct MethodAnswer {
  std::optional<std::string> prompt, answer, model, error;
  std::string backend;
  double seconds = 0;
};

struct Explanation {
  std::string file, path, machine, id;
  std::optional<std::string> label;
  double score = 0, threshold = 0;
  std::vector<NeighborRef> neighbors;
  std::optional<std::string> caption_anomalous;
  std::vector<std::optional<std::string>> caption_neighbors;
  std::optional<std::string> captions_missing;
  std::vector<std::string> sim_texts;
  std::vector<double> sim_anomalous;
  std::vector<std::vector<double>> sim_neighbors;
  std::optional<std::string> similarity_missing;
  std::vector<EvidenceFeature> evidence;
  std::vector<std::pair<std::string, MethodAnswer>> methods;  // in the file's order
};

struct Skipped {
  std::string path, stage, reason;
};

struct RunData {
  std::string dir;
  nlohmann::json run;  // run.json, or null
  std::vector<ResultRow> results;
  std::vector<ScoredClip> clips;
  std::vector<Explanation> explanations;
  std::vector<Skipped> skipped;
  // Files that are absent ("results.csv: not found") or lines that could not be read
  // ("neighbors.jsonl line 7: ..."). Shown on the page; never fatal.
  std::vector<std::string> problems;
  bool has_results = false, has_neighbors = false, has_explanations = false, has_skipped = false;
};

// Never throws on bad content (it becomes a `problems` entry); throws IoError if `dir` is not a folder.
RunData load_run(const std::string& dir);
Explanation parse_explanation(const nlohmann::json& j);  // throws nlohmann::json::exception on bad shape

// ---- charts ------------------------------------------------------------------------------
std::string html_escape(std::string_view text);
std::string format_number(double v, int significant = 3);  // "0.0123", "12.3", "1.23e+04"

struct RocPoint {
  double fpr, tpr;
};
// ROC curve of scores (higher = more anomalous), labels true = anomaly; ties move diagonally.
// Starts at (0,0), ends at (1,1). Empty if either class is empty.
std::vector<RocPoint> roc_curve(const std::vector<double>& scores, const std::vector<bool>& anomaly);
double roc_auc(const std::vector<RocPoint>& curve);  // trapezoidal area

// Histogram of normal (cool) and anomalous (warm) scores on shared bins, unlabelled clips in grey,
// with the decision threshold as a dashed line.
std::string svg_score_distribution(const std::vector<double>& normal, const std::vector<double>& anomaly,
                                   const std::vector<double>& unlabeled, std::optional<double> threshold);
// ROC curve with the chance diagonal, the pAUC region (FPR <= 0.1) shaded, and the operating point
// of the threshold marked.
std::string svg_roc(const std::vector<double>& scores, const std::vector<bool>& anomaly,
                    std::optional<double> threshold);
// Dot plot: one row per text, the anomalous clip's similarity (warm) against its neighbours' (cool).
std::string svg_similarity(const std::vector<std::string>& texts, const std::vector<double>& anomalous,
                           const std::vector<std::vector<double>>& neighbors);
// Diverging bars of the evidence z-scores (anomalous vs its neighbours), labelled with values.
std::string svg_evidence(const std::vector<EvidenceFeature>& features);

// ---- spectrograms ------------------------------------------------------------------------
// A log-mel spectrogram (frames x mel_bins, row-major, dB) as an HTML panel: an <img> with a PNG
// data: URI coloured by sequential_colormap() over [db_lo, db_hi], and SVG axes in seconds and Hz
// (ticks at mel band centres `band_hz`).
std::string spectrogram_panel(const std::vector<float>& db, int frames, int mel_bins, double seconds,
                              const std::vector<double>& band_hz, double db_lo, double db_hi,
                              const std::string& alt);

// A page shows a normal clip as the neighbour of many flagged clips: every spectrogram <img> of
// `body` whose data: URI occurs more than once becomes a <div role="img"> with a CSS class, and the
// returned CSS holds each such URI once (as that class's background image). Images that occur once
// stay <img>. The page looks the same, without JavaScript, at a fraction of the size.
std::string share_repeated_images(std::string& body);

}  // namespace asdcap::report
