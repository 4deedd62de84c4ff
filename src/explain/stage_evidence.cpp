// Evidence: the acoustic features of every distinct file, measured once, and each clip's comparison
// with its neighbours.
#include <set>

#include "core/parallel.hpp"
#include "run_inputs.hpp"
#include "stages.hpp"

namespace asdcap::explain_detail {

EvidenceByPath measure_all(const std::vector<ScoredClip>& clips,
                           const std::map<std::string, std::vector<std::string>>& reference_pool, int threads) {
  std::vector<std::string> paths;
  std::set<std::string> seen;
  for (const auto& c : clips) {
    if (seen.insert(c.path).second) paths.push_back(c.path);
    for (const auto& n : c.neighbors)
      if (seen.insert(n.path).second) paths.push_back(n.path);
    if (auto pool = reference_pool.find(reference_key(c)); pool != reference_pool.end())
      for (const auto& p : pool->second)
        if (seen.insert(p).second) paths.push_back(p);
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

ClipComparison compare_with_neighbors(const ScoredClip& clip, const ClipEvidence& own, const EvidenceByPath& evidence,
                                      const std::vector<std::string>& reference_pool) {
  ClipComparison c;
  std::vector<ClipEvidence> pool;
  for (const auto& p : reference_pool)
    if (auto it = evidence.find(p); it != evidence.end() && it->second.value) pool.push_back(*it->second.value);
  std::vector<ClipEvidence> refs;
  for (const auto& n : clip.neighbors) {
    const MeasuredFile& r = evidence.at(n.path);
    c.neighbor_ok.push_back(r.value.has_value());
    if (r.value) {
      refs.push_back(*r.value);
      c.neighbor_burst_times.push_back(r.value->burst_times);
    } else {
      c.unreadable.push_back({n.path, r.error});
    }
  }
  c.rows = compare_evidence(own, refs, pool);
  c.burst_times = own.burst_times;
  return c;
}

}  // namespace asdcap::explain_detail
