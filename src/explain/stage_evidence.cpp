// Evidence: the acoustic features of every distinct file, measured once, and each clip's comparison
// with its neighbours.
#include <set>

#include "core/parallel.hpp"
#include "stages.hpp"

namespace asdcap::explain_detail {

EvidenceByPath measure_all(const std::vector<ScoredClip>& clips, int threads) {
  std::vector<std::string> paths;
  std::set<std::string> seen;
  for (const auto& c : clips) {
    if (seen.insert(c.path).second) paths.push_back(c.path);
    for (const auto& n : c.neighbors)
      if (seen.insert(n.path).second) paths.push_back(n.path);
  }
  std::vector<MeasuredFile> results(paths.size());
  parallel_for(threads, static_cast<int64_t>(paths.size()), [&](int64_t i) {
    try {
      results[static_cast<size_t>(i)].value = measure_evidence_file(paths[static_cast<size_t>(i)]);
    } catch (const std::exception& e) {
      results[static_cast<size_t>(i)].error = e.what();
    }
  });
  EvidenceByPath out;
  for (size_t i = 0; i < paths.size(); ++i) out[paths[i]] = std::move(results[i]);
  return out;
}

ClipComparison compare_with_neighbors(const ScoredClip& clip, const ClipEvidence& own, const EvidenceByPath& evidence) {
  ClipComparison c;
  std::vector<ClipEvidence> refs;
  for (const auto& n : clip.neighbors) {
    const MeasuredFile& r = evidence.at(n.path);
    c.neighbor_ok.push_back(r.value.has_value());
    if (r.value)
      refs.push_back(*r.value);
    else
      c.unreadable.push_back({n.path, r.error});
  }
  c.rows = compare_evidence(own, refs);
  return c;
}

}  // namespace asdcap::explain_detail
