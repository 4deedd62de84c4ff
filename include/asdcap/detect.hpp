// The detection pipeline: discover clips, embed them (with a cache), score test clips by the
// mean distance to their k nearest normal training clips, evaluate, threshold, write outputs.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "asdcap/audio.hpp"

namespace asdcap {

struct DetectOptions {
  std::string data_root, out_dir, backend = "acoustic", model_path;
  int k = 4;
  CropPolicy crop;  // default: random crop, seeded from the clip's content hash (see docs)
  ChannelMode channels = ChannelMode::Mean;
  std::vector<std::string> machines;  // empty: all
  int threads = 0;                    // 0: all cores
  bool quiet = false;                 // no progress bar / summary lines on stderr
};

// One machine/id line of results.csv. NaN for metrics that need both classes.
struct DetectRow {
  std::string machine, id;
  double auc = 0, pauc = 0, threshold = 0;
  std::string threshold_rule;  // "roc_closest" | "gamma_q0.9" | "none"
  int n_normal = 0, n_anomaly = 0, n_unknown = 0, n_train = 0;
};

struct DetectSummary {
  std::vector<DetectRow> rows;  // sorted by machine, id
  int n_scored = 0;             // test clips scored
  int n_skipped = 0;            // entries in skipped.jsonl
  int n_embedded = 0;           // clips embedded (train + test)
  int n_cache_hits = 0;         // of which taken from cache.sqlite
  std::string out_dir;
};

// Runs the whole pipeline and writes run.json, results.csv, anomaly_score_*.csv,
// decision_result_*.csv, neighbors.jsonl, skipped.jsonl and cache.sqlite into out_dir
// (created if missing). Bad or misnamed files are skipped and listed, never fatal.
DetectSummary run_detect(const DetectOptions& options);

// results.csv rows plus per-machine "average" and one "overall" line (Table I of the papers).
struct ResultLine {
  std::string machine, id;
  double auc, pauc, threshold;
  std::string threshold_rule;
  int n_normal, n_anomaly;
};
std::vector<ResultLine> result_lines(const DetectSummary& summary);

// The human-readable table printed on stdout (AUC and pAUC in %).
std::string format_results_table(const DetectSummary& summary);

}  // namespace asdcap
