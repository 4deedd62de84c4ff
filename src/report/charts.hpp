// Building blocks of the HTML report, exposed for tests: the run folder as data, and the inline
// SVG charts. Every chart returns a complete <svg> element sized by its viewBox (it scales with
// the page) with a <title> for screen readers.
#pragma once
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "asdcap/run.hpp"

namespace asdcap::report {

// ---- the run folder (records: asdcap/run.hpp) ---------------------------------------------
struct RunData {
  std::string dir;
  std::optional<RunSettings> settings;  // run.json, when it could be read
  std::vector<ResultRow> results;
  std::vector<ScoredClip> clips;
  std::vector<ExplanationRecord> explanations;
  std::vector<SkippedRecord> skipped;
  // Files that are absent ("results.csv: not found") or lines that could not be read
  // ("neighbors.jsonl line 7 could not be read: ..."). Shown on the page; never fatal.
  std::vector<std::string> problems;
  bool has_results = false, has_neighbors = false, has_explanations = false, has_skipped = false;
};

// Bad content becomes a `problems` entry. Throws IoError if `dir` is not a folder, RunRefused if
// the run folder was written by a newer asdcap or is incomplete.
RunData load_run(const std::string& dir);

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
// (ticks at mel band centres `band_hz`). `marks` (seconds) are drawn as small triangles above the
// image: where the explanation found short events.
std::string spectrogram_panel(const std::vector<float>& db, int frames, int mel_bins, double seconds,
                              const std::vector<double>& band_hz, double db_lo, double db_hi, const std::string& alt,
                              const std::vector<double>& marks = {});

// The image of a spectrogram panel alone, as PNG bytes: at most 320 columns (each the mean of the
// frames it covers), one row per mel band, low bands at the bottom. Throws Error for an empty one.
std::string spectrogram_png(const std::vector<float>& db, int frames, int mel_bins, double db_lo, double db_hi);
// The colour range shared by some spectrograms: their 2nd to 99.8th percentile in dB, at least 10 dB
// wide ({-100, 0} when there are none).
std::pair<double, double> spectrogram_db_range(const std::vector<const std::vector<float>*>& dbs);

// A page shows a normal clip as the neighbour of many flagged clips: every spectrogram <img> of
// `body` whose data: URI occurs more than once becomes a <div role="img"> with a CSS class, and the
// returned CSS holds each such URI once (as that class's background image). Images that occur once
// stay <img>. The page looks the same, without JavaScript, at a fraction of the size.
std::string share_repeated_images(std::string& body);

}  // namespace asdcap::report
