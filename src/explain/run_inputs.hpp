// Reading a run folder: neighbors.jsonl rows, run.json settings, earlier explanations.
#pragma once
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "asdcap/audio.hpp"

namespace asdcap::explain_detail {

struct NeighborRef {
  std::string file, path;
  double distance = 0;
};

struct ScoredClip {
  std::string file, path, machine, id;
  nlohmann::json label, domain;  // string or null, as detection wrote them
  double score = 0, threshold = 0;
  int decision = 0;
  std::vector<NeighborRef> neighbors;
};

// Rows of neighbors.jsonl; lines that do not parse are reported through `bad_lines` (1-based).
std::vector<ScoredClip> read_neighbors(const std::string& path, std::vector<int>* bad_lines);

// The flagged clips to explain: per machine/id the `top` highest scores (all when top <= 0),
// ordered by machine, id, then score (highest first).
std::vector<ScoredClip> select_flagged(const std::vector<ScoredClip>& clips, int top, int* n_flagged);

struct RunSettings {
  CropPolicy crop;
  ChannelMode channels = ChannelMode::Mean;
  std::string data_root;
};
// run.json when present (defaults otherwise); a malformed run.json is a FormatError.
RunSettings read_run_settings(const std::string& run_json);

// Earlier records by file (from explanations.jsonl and a partial checkpoint, later ones win).
std::map<std::string, nlohmann::ordered_json> read_previous_records(const std::vector<std::string>& paths);

}  // namespace asdcap::explain_detail
