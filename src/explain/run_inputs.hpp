// The first stage of run_explain: what it reads from the run folder.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "asdcap/audio.hpp"
#include "asdcap/explain.hpp"
#include "asdcap/run.hpp"

namespace asdcap::explain_detail {

struct RunInputs {
  RunSettings settings;
  CropPolicy crop;  // the crop detection embedded with (parsed from run.json)
  ChannelMode channels = ChannelMode::Mean;
  std::vector<ScoredClip> chosen;  // the flagged clips to explain, paths found again if the dataset moved
  // Per machine ID (reference_key): every distinct normal clip retrieved as a neighbour of any clip
  // of the run (the whole reference set the evidence is ranked against), paths found again too.
  std::map<std::string, std::vector<std::string>> reference_pool;
  int n_flagged = 0;
};

// The key of a clip's machine ID in RunInputs::reference_pool.
inline std::string reference_key(const ScoredClip& clip) { return clip.machine + "/" + clip.id; }

// Throws Error telling the user to run detection first when `dir` has no detection results.
void require_detection_results(const std::string& dir);

// Reads run.json and neighbors.jsonl of options.out_dir. Throws RunRefused / FormatError when they
// cannot be used. Unreadable lines of neighbors.jsonl are logged and skipped.
RunInputs read_run_inputs(const ExplainOptions& options);

// The flagged clips to explain: per machine/id the `top` highest scores (all when top <= 0),
// ordered by machine, id, then score (highest first).
std::vector<ScoredClip> select_flagged(const std::vector<ScoredClip>& clips, int top, int* n_flagged);

}  // namespace asdcap::explain_detail
