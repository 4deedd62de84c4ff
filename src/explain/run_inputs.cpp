#include "run_inputs.hpp"

#include <algorithm>
#include <filesystem>
#include <set>

#include "asdcap/error.hpp"

namespace asdcap::explain_detail {

namespace fs = std::filesystem;

namespace {

// A dataset that moved since detection: find a clip under `root` by its relative name.
void relocate(std::string& path, const std::string& file, const std::string& root) {
  std::error_code ec;
  if (root.empty() || file.empty() || fs::exists(path, ec)) return;
  const fs::path moved = fs::path(root) / file;
  if (fs::exists(moved, ec)) path = moved.string();
}

}  // namespace

void require_detection_results(const std::string& dir) {
  std::error_code ec;
  if (!fs::exists(fs::path(dir) / run_files::kSettings, ec) || !fs::exists(fs::path(dir) / run_files::kNeighbors, ec))
    throw Error("explain: " + dir + " has no detection results (" + run_files::kSettings + " and " +
                run_files::kNeighbors + "): run `asdcap detect` on it first, or `asdcap demo`");
}

RunInputs read_run_inputs(const ExplainOptions& o) {
  const fs::path dir(o.out_dir);
  RunInputs in;
  in.settings = read_run_settings(o.out_dir);
  const std::string run_json = (dir / run_files::kSettings).string();
  try {
    in.crop = CropPolicy::parse(in.settings.crop);
    in.channels = parse_channel_mode(in.settings.channels);
  } catch (const Error& e) {
    throw FormatError(run_json + ": " + e.what());
  }
  std::vector<std::string> problems;
  const std::vector<ScoredClip> scored = read_neighbors(o.out_dir, &problems);
  if (!problems.empty() && o.log)
    o.log("explain: " + std::to_string(problems.size()) + " unreadable line(s) in " +
          (dir / run_files::kNeighbors).string() + " ignored");
  in.chosen = select_flagged(scored, o.all_flagged ? 0 : o.top, &in.n_flagged);
  const std::string root = !o.data_root.empty() ? o.data_root : in.settings.data_root;
  for (auto& c : in.chosen) {
    relocate(c.path, c.file, root);
    for (auto& n : c.neighbors) relocate(n.path, n.file, root);
  }
  std::map<std::string, std::set<std::string>> seen;
  for (const auto& c : scored)
    for (Neighbor n : c.neighbors) {
      relocate(n.path, n.file, root);
      if (seen[reference_key(c)].insert(n.path).second) in.reference_pool[reference_key(c)].push_back(n.path);
    }
  return in;
}

std::vector<ScoredClip> select_flagged(const std::vector<ScoredClip>& clips, int top, int* n_flagged) {
  std::vector<ScoredClip> flagged;
  for (const auto& c : clips)
    if (c.decision == 1) flagged.push_back(c);
  if (n_flagged) *n_flagged = static_cast<int>(flagged.size());
  std::stable_sort(flagged.begin(), flagged.end(), [](const ScoredClip& a, const ScoredClip& b) {
    if (a.machine != b.machine) return a.machine < b.machine;
    if (a.id != b.id) return a.id < b.id;
    if (a.score != b.score) return a.score > b.score;
    return a.file < b.file;
  });
  if (top <= 0) return flagged;
  std::vector<ScoredClip> out;
  int taken = 0;
  for (size_t i = 0; i < flagged.size(); ++i) {
    if (i == 0 || flagged[i].machine != flagged[i - 1].machine || flagged[i].id != flagged[i - 1].id) taken = 0;
    if (taken++ < top) out.push_back(flagged[i]);
  }
  return out;
}

}  // namespace asdcap::explain_detail
