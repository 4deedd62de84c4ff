#include "asdcap/detect.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <exception>
#include <filesystem>
#include <map>
#include <set>

#include "asdcap/backend.hpp"
#include "asdcap/dataset.hpp"
#include "asdcap/error.hpp"
#include "asdcap/knn.hpp"
#include "asdcap/metrics.hpp"
#include "asdcap/run.hpp"
#include "core/clock.hpp"
#include "core/files.hpp"
#include "core/parallel.hpp"
#include "core/progress.hpp"
#include "detect/clip_reader.hpp"
#include "detect/embedding_cache.hpp"
#include "detect/machine_scorer.hpp"
#include "detect/standardise.hpp"

namespace asdcap {
namespace fs = std::filesystem;

namespace {

constexpr double kGammaQuantile = 0.9;

struct Group {
  std::vector<const Clip*> train, test;
};

using Groups = std::map<std::pair<std::string, std::string>, Group>;

bool stop_requested(const DetectOptions& options) { return options.cancelled && options.cancelled(); }

// Hands each machine type's clips to the backend's machine scorer: its model learns from the normal
// training clips of all the type's IDs, sorted by path.
Embedded score_by_machine(const Groups& groups, const std::vector<const Clip*>& to_embed, const DetectOptions& options,
                          MachineScorer& scorer, ClipReader& reader) {
  std::map<std::string, MachineClips> machines;
  for (const Clip* c : to_embed) machines[c->machine].clips.push_back(c);
  for (const auto& [key, g] : groups)
    if (auto it = machines.find(key.first); it != machines.end())
      it->second.train.insert(it->second.train.end(), g.train.begin(), g.train.end());
  MachineScorerContext context{options.out_dir, options.channels, options.threads, options.quiet, {}};
  context.read = [&reader](const std::vector<const Clip*>& clips, const std::string& label, const ClipUse& use,
                           std::vector<std::string>& errors) { reader.read(clips, label, use, errors); };
  Embedded out;
  for (auto& [machine, mc] : machines) {
    mc.machine = machine;
    std::sort(mc.train.begin(), mc.train.end(), [](const Clip* a, const Clip* b) { return a->rel < b->rel; });
    MachineScores s = scorer.score_machine(mc, context);
    out.embeddings.merge(s.embeddings);
    out.failures.merge(s.failures);
    out.scores.merge(s.scores);
    out.models_trained += s.trained ? 1 : 0;
    out.models_cached += s.cached ? 1 : 0;
  }
  return out;
}

// The test clips of the machine IDs that have normal training clips; the others are skipped.
std::vector<const Clip*> clips_to_embed(const Groups& groups, std::vector<SkippedRecord>& skipped) {
  std::vector<const Clip*> to_embed;
  for (auto& [key, g] : groups) {
    if (g.test.empty()) continue;
    if (g.train.empty()) {
      for (auto* c : g.test)
        skipped.push_back({c->path, "detect", "no normal training clips for " + key.first + " " + key.second});
      continue;
    }
    to_embed.insert(to_embed.end(), g.train.begin(), g.train.end());
    to_embed.insert(to_embed.end(), g.test.begin(), g.test.end());
  }
  return to_embed;
}

ScoredClip scored_clip(const Clip& clip, double score, double threshold) {
  ScoredClip s;
  s.file = clip.rel;
  s.path = clip.path;
  s.machine = clip.machine;
  s.id = clip.id;
  if (clip.label != Label::Unknown) s.label = to_string(clip.label);
  if (!clip.domain.empty()) s.domain = clip.domain;
  s.score = score;
  s.threshold = threshold;
  s.decision = std::isfinite(threshold) && score > threshold ? 1 : 0;
  return s;
}

// Scores the test clips of one machine ID against its normal references: the mean distance to the
// k nearest (or the backend's own score), the ID's metrics and threshold; the k nearest are the
// clip's neighbours. Returns false (and lists the clips as skipped) when no reference could be embedded.
bool score_group(const std::pair<std::string, std::string>& key, const Group& g, const Embedded& embedded,
                 const EmbeddingBackend& backend, int k, ResultRow& row, std::vector<ScoredClip>& scored,
                 std::vector<SkippedRecord>& skipped) {
  const auto& embeddings = embedded.embeddings;
  std::vector<const Clip*> refs, tests;
  for (auto* c : g.train)
    if (embeddings.count(c)) refs.push_back(c);
  for (auto* c : g.test)
    if (embeddings.count(c)) tests.push_back(c);
  if (tests.empty()) return false;
  if (refs.empty()) {
    for (auto* c : tests)
      skipped.push_back({c->path, "detect", "no usable normal training clips for " + key.first + " " + key.second});
    return false;
  }
  const size_t dim = static_cast<size_t>(backend.dim());
  std::vector<float> R(refs.size() * dim), Q(tests.size() * dim);
  for (size_t i = 0; i < refs.size(); ++i) std::copy_n(embeddings.at(refs[i]).begin(), dim, R.begin() + i * dim);
  for (size_t i = 0; i < tests.size(); ++i) std::copy_n(embeddings.at(tests[i]).begin(), dim, Q.begin() + i * dim);
  if (backend.standardise_per_group()) standardise(R, refs.size(), Q, tests.size(), dim);
  auto knn = knn_search(Q.data(), static_cast<int64_t>(tests.size()), R.data(), static_cast<int64_t>(refs.size()),
                        static_cast<int64_t>(dim), k, /*leave_one_out=*/false, backend.distance_order());
  auto loo = knn_search(R.data(), static_cast<int64_t>(refs.size()), R.data(), static_cast<int64_t>(refs.size()),
                        static_cast<int64_t>(dim), k, /*leave_one_out=*/true, backend.distance_order());

  // Without the backend's own scores, the test clips' k-NN distances and the references' leave-one-out ones.
  const bool own = !embedded.scores.empty();
  auto test_score = [&](size_t i) { return own ? embedded.scores.at(tests[i]) : knn.mean_distance[i]; };
  row = ResultRow{};
  row.machine = key.first;
  row.id = key.second;
  row.n_train = static_cast<int>(refs.size());
  std::vector<double> labelled_scores;
  std::vector<bool> labelled_anomalous;
  for (size_t i = 0; i < tests.size(); ++i) {
    Label l = tests[i]->label;
    if (l == Label::Unknown) {
      ++row.n_unknown;
      continue;
    }
    (l == Label::Anomaly ? row.n_anomaly : row.n_normal) += 1;
    labelled_scores.push_back(test_score(i));
    labelled_anomalous.push_back(l == Label::Anomaly);
  }
  row.auc = roc_auc(labelled_scores, labelled_anomalous);
  row.pauc = partial_roc_auc(labelled_scores, labelled_anomalous, 0.1);
  row.threshold = std::nan("");
  row.threshold_rule = "none";
  if (auto t = threshold_closest_to_corner(labelled_scores, labelled_anomalous)) {
    row.threshold = *t;
    row.threshold_rule = "roc_closest";
  } else if (loo.k > 0) {
    std::vector<double> loo_scores(loo.mean_distance.begin(), loo.mean_distance.end());
    if (own)
      for (size_t i = 0; i < refs.size(); ++i) loo_scores[i] = embedded.scores.at(refs[i]);
    if (auto gt = gamma_threshold(loo_scores, kGammaQuantile)) {
      row.threshold = *gt;
      row.threshold_rule = "gamma_q0.9";
    }
  }
  for (size_t i = 0; i < tests.size(); ++i) {
    ScoredClip s = scored_clip(*tests[i], test_score(i), row.threshold);
    for (int t = 0; t < knn.k; ++t) {
      const Clip* n = refs[static_cast<size_t>(knn.index[i * knn.k + t])];
      s.neighbors.push_back({n->rel, n->path, knn.distance[i * knn.k + t]});
    }
    scored.push_back(std::move(s));
  }
  return true;
}

// A run that scores no test clip is a failure, not an empty result: nothing is published and the
// message says why (no clips found, or the first reason a clip was skipped).
[[noreturn]] void throw_nothing_scored(const DetectOptions& options, const Dataset& ds,
                                       const std::vector<SkippedRecord>& skipped) {
  std::string what = options.data_root + ": no test clip could be scored";
  if (!options.machines.empty()) {
    what += " (machine filter:";
    for (const auto& m : options.machines) what += " " + m;
    what += ")";
  }
  if (ds.clips.empty())
    what += ": no clips found";
  else if (skipped.empty())
    what += ": no test clips found";
  if (!skipped.empty())
    what += ": " + std::to_string(skipped.size()) + " skipped, first " + skipped.front().path + ": " +
            skipped.front().reason;
  throw FormatError(what);
}

}  // namespace

namespace {

// One system of a run: its backend, crop, settings, cache and, once read, its embeddings.
struct System {
  const DetectOptions* options = nullptr;
  std::unique_ptr<EmbeddingBackend> backend;
  CropPolicy crop;
  RunSettings settings;
  std::unique_ptr<EmbeddingCache> cache;
  Embedded embedded;
};

System make_system(const DetectOptions& options, const Dataset& ds) {
  System sys;
  sys.options = &options;
  BackendOptions bopt;
  bopt.model_path = options.model_path;
  bopt.threads = options.threads;
  bopt.training = options.training;
  bopt.cancelled = options.cancelled;
  std::string backend_name = options.backend;
  if (backend_name.empty())
    backend_name = options.model_path.empty() ? "acoustic" : backend_for_model_file(options.model_path);
  sys.backend = make_backend(backend_name, bopt);
  sys.crop = options.crop ? *options.crop : sys.backend->default_crop();
  RunSettings& settings = sys.settings;
  settings.data_root = ds.root;
  settings.backend = sys.backend->name();
  settings.backend_identity = sys.backend->identity();
  settings.model = options.model_path;
  settings.k = options.k;
  settings.crop = sys.crop.to_string();
  settings.cache_key = resolve_clip_crop(sys.crop, std::string(64, '0')).cache_key;
  settings.channels = to_string(options.channels);
  sys.cache = std::make_unique<EmbeddingCache>((fs::path(options.out_dir) / "cache.sqlite").string());
  return sys;
}

// Scores a system's test clips from its embeddings and publishes its run folder.
DetectSummary score_and_publish(System& sys, const Groups& groups, const Dataset& ds,
                                std::vector<SkippedRecord> skipped) {
  const DetectOptions& options = *sys.options;
  const Embedded& embedded = sys.embedded;
  RunSettings& settings = sys.settings;
  DetectSummary summary;
  summary.out_dir = options.out_dir;
  summary.n_cache_hits = embedded.cache_hits;
  summary.n_models_trained = embedded.models_trained;
  summary.n_models_cached = embedded.models_cached;
  summary.n_embedded = static_cast<int>(embedded.embeddings.size());
  for (auto& [c, why] : embedded.failures) skipped.push_back({c->path, "detect", why});

  std::vector<ScoredClip> scored;  // grouped by machine/id, by file within a group
  for (auto& [key, g] : groups) {
    if (g.test.empty() || g.train.empty()) continue;
    ResultRow row;
    const size_t before = scored.size();
    if (!score_group(key, g, embedded, *sys.backend, options.k, row, scored, skipped)) continue;
    summary.n_scored += static_cast<int>(scored.size() - before);
    summary.rows.push_back(row);
    if (settings.machines.empty() || settings.machines.back() != key.first) settings.machines.push_back(key.first);
  }
  std::sort(skipped.begin(), skipped.end(),
            [](const SkippedRecord& a, const SkippedRecord& b) { return a.path < b.path; });
  if (summary.n_scored == 0) throw_nothing_scored(options, ds, skipped);
  summary.n_skipped = static_cast<int>(skipped.size());
  settings.created = utc_now();
  settings.n_scored = summary.n_scored;
  settings.n_skipped = summary.n_skipped;
  settings.n_embedded = summary.n_embedded;
  settings.n_cache_hits = summary.n_cache_hits;
  publish_detection_run(options.out_dir, settings, result_lines(summary), scored, skipped, [&] {
    if (options.before_run_json) options.before_run_json(options.out_dir);
  });
  if (!options.quiet) {
    const std::string models = sys.backend->machine_scorer()
                                   ? ", " + std::to_string(summary.n_models_trained) + " models trained (" +
                                         std::to_string(summary.n_models_cached) + " from cache)"
                                   : "";
    std::fprintf(stderr, "asdcap detect: %d clips embedded (%d from cache)%s, %d test clips scored, %d skipped%s\n",
                 summary.n_embedded, summary.n_cache_hits, models.c_str(), summary.n_scored, summary.n_skipped,
                 summary.n_skipped ? " (see skipped.jsonl)" : "");
  }
  return summary;
}

}  // namespace

std::vector<DetectSummary> run_detect_systems(const std::vector<DetectOptions>& systems) {
  if (systems.empty()) throw InvalidArgument("detect: no system to run");
  const DetectOptions& first = systems.front();
  std::set<std::string> out_dirs;
  for (const auto& options : systems) {
    if (options.k < 1) throw InvalidArgument("detect: k (neighbours averaged into a score) must be at least 1");
    if (options.data_root.empty()) throw InvalidArgument("detect: no dataset root given");
    if (options.out_dir.empty()) throw InvalidArgument("detect: no output folder given");
    if (options.data_root != first.data_root || options.machines != first.machines ||
        options.channels != first.channels)
      throw InvalidArgument("detect: systems run together need the same dataset, machine types and channel mode");
    if (!out_dirs.insert(fs::absolute(options.out_dir).lexically_normal().string()).second)
      throw InvalidArgument("detect: two systems write to the same output folder " + options.out_dir);
  }
  // The dataset is listed first: a bad --data leaves no output folder behind.
  const Dataset ds = discover_dataset(first.data_root, first.machines, first.on_folder);
  std::vector<std::unique_ptr<RunLock>> locks;
  for (const auto& options : systems) {
    std::error_code ec;
    fs::create_directories(options.out_dir, ec);
    if (ec || !fs::is_directory(options.out_dir))
      throw IoError(options.out_dir + ": cannot create the output folder" + (ec ? ": " + ec.message() : ""));
    locks.push_back(std::make_unique<RunLock>(options.out_dir));
  }

  std::vector<SkippedRecord> skipped;
  for (const auto& s : ds.skipped) skipped.push_back({s.path, "detect", s.reason});
  Groups groups;
  for (const auto& c : ds.clips) {
    auto& g = groups[{c.machine, c.id}];
    (c.split == Split::Train ? g.train : g.test).push_back(&c);
  }
  const std::vector<const Clip*> to_embed = clips_to_embed(groups, skipped);

  std::vector<System> runs;
  for (const auto& options : systems) runs.push_back(make_system(options, ds));

  // ---- reading: every clip once for all systems. The k-NN systems take their embeddings from the
  // reader (their caches first); a machine scorer reads its clips through it, which embeds them for
  // the k-NN systems at the same time; the reader then reads what is still missing -----------------
  std::vector<KnnTarget> targets;
  for (auto& sys : runs)
    if (!sys.backend->machine_scorer()) targets.push_back({sys.backend.get(), sys.crop, sys.cache.get()});
  ClipReader reader(to_embed, targets, first);
  for (auto& sys : runs)
    if (MachineScorer* scorer = sys.backend->machine_scorer())
      sys.embedded = score_by_machine(groups, to_embed, *sys.options, *scorer, reader);
  reader.read_remaining();
  if (stop_requested(first)) throw Error("detect: cancelled (the embeddings computed so far are in the cache)");
  size_t target = 0;
  for (auto& sys : runs)
    if (!sys.backend->machine_scorer()) sys.embedded = reader.take(target++);

  std::vector<DetectSummary> summaries;
  for (auto& sys : runs) summaries.push_back(score_and_publish(sys, groups, ds, skipped));
  return summaries;
}

DetectSummary run_detect(const DetectOptions& options) { return run_detect_systems({options}).front(); }

}  // namespace asdcap
