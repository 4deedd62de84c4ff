// Pieces of run_detect shared between its source files (not a public interface).
#pragma once
#include <string>
#include <vector>

#include "asdcap/dataset.hpp"
#include "asdcap/detect.hpp"

namespace asdcap::detail {

struct ScoredClip {
  const Clip* clip;
  double score, threshold;
  int decision;
  std::vector<const Clip*> neighbors;
  std::vector<double> distances;
};

struct RunRecord {
  const DetectOptions* options;
  std::string data_root, backend_name, backend_identity, crop;
  std::vector<std::string> machines;
  std::vector<ScoredClip> scored;      // grouped by machine/id, by file within a group
  std::vector<SkippedFile> skipped;
  DetectSummary* summary;
};

// Writes run.json, results.csv, anomaly_score_*.csv, decision_result_*.csv, neighbors.jsonl and
// skipped.jsonl into options.out_dir, each atomically.
void write_outputs(const RunRecord& run);

std::string csv_field(const std::string& s);
std::string format_number(double v, const char* fmt = "%.9g");

}  // namespace asdcap::detail
