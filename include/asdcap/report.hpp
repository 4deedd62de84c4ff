// The HTML report of a run folder (DIR): overview table like the papers' Table I, score
// distributions and ROC curves per machine ID, and one figure per explained clip in the layout
// of the papers' Fig. 3 (spectrograms of the anomalous clip and its k nearest normal clips,
// captions, similarities / acoustic evidence, difference captions). One self-contained file:
// images are inline data: URIs, no script or font is fetched from anywhere.
#pragma once
#include <string>

namespace asdcap {

struct ReportOptions {
  std::string out_dir;       // the run folder; report.html is written there
  bool embed_audio = false;  // true: players carry a 16 kHz WAV as data: URI; false: link relative to DIR
  int max_figures = 200;     // explained clips shown as figures (highest scores first); the rest are listed
  int threads = 0;           // spectrogram rendering threads; 0 = hardware concurrency
};

// Reads DIR/results.csv, neighbors.jsonl, explanations.jsonl, skipped.jsonl, run.json (any may be
// missing; the page says so), writes DIR/report.html atomically and returns its path.
// Throws IoError if DIR does not exist or the page cannot be written.
std::string build_report(const ReportOptions& options);

}  // namespace asdcap
