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

bool all_finite(const std::vector<float>& v) {
  return std::all_of(v.begin(), v.end(), [](float x) { return std::isfinite(x); });
}

using Groups = std::map<std::pair<std::string, std::string>, Group>;

struct Embedded {
  std::map<const Clip*, std::vector<float>> embeddings;
  std::map<const Clip*, std::string> failures;  // clip -> why it has no embedding
  int cache_hits = 0;
  // From a backend's machine scorer: every embedded clip's score (training clips too) and the
  // models it trained or loaded. No scores: the score is the k-NN distance.
  std::map<const Clip*, double> scores;
  int models_trained = 0, models_cached = 0;
};

bool stop_requested(const DetectOptions& options) { return options.cancelled && options.cancelled(); }

// Embeds every clip of `to_embed` (from the cache when it holds the clip under this backend's
// identity and crop); a clip that cannot be embedded is a failure, a cache that cannot be written
// is fatal.
Embedded embed_clips(const std::vector<const Clip*>& to_embed, const DetectOptions& options,
                     const CropPolicy& crop_policy, const std::unique_ptr<EmbeddingBackend>& backend,
                     EmbeddingCache& cache) {
  // ---- embedding: the (thread-safe) acoustic backend spreads clips over the threads, its kernels
  // then running serially in each worker; the msclap encoder spreads each clip's work itself ------
  std::map<const Clip*, std::vector<float>> embeddings;
  std::map<const Clip*, std::string> failures;
  std::atomic<int> hits{0};
  std::atomic<bool> cache_failed{false};
  const int clip_threads = backend->thread_safe_embed() ? options.threads : 1;
  const std::string identity = backend->identity();
  {
    std::vector<std::vector<float>> embedded(to_embed.size());
    std::vector<std::string> errors(to_embed.size());
    Progress progress("embedding", static_cast<int64_t>(to_embed.size()));
    // A clip that cannot be read or embedded is skipped; a cache that cannot be written stops the
    // run (parallel_for rethrows it once the clips already started are done).
    parallel_for(clip_threads, static_cast<int64_t>(to_embed.size()), [&](int64_t item) {
      if (cache_failed.load() || stop_requested(options)) return;
      const auto i = static_cast<size_t>(item);
      const Clip* c = to_embed[i];
      std::string sha, key;
      std::vector<float> emb;
      bool computed = false;
      try {
        sha = sha256_file(c->path);
        ClipCrop resolved = resolve_clip_crop(crop_policy, sha);
        key = std::move(resolved.cache_key);
        const CropPolicy& crop = resolved.policy;
        auto cached = cache.get(sha, identity, key);
        if (cached && cached->size() == static_cast<size_t>(backend->dim())) {
          emb = std::move(*cached);
          hits.fetch_add(1);
        } else {
          auto signal = load_audio(c->path, backend->sample_rate(), options.channels);
          emb = backend->embed(signal, crop);
          if (emb.size() != static_cast<size_t>(backend->dim()))
            throw FormatError(c->path + ": embedding has the wrong size");
          if (!all_finite(emb)) throw FormatError(c->path + ": embedding is not finite");
          computed = true;
        }
      } catch (const Error& e) {
        errors[i] = e.what();
      } catch (const std::bad_alloc&) {
        errors[i] = c->path + ": out of memory while decoding";
      }
      if (computed) {
        try {
          cache.put(sha, identity, key, emb);
        } catch (...) {
          cache_failed = true;
          throw;
        }
      }
      if (errors[i].empty()) embedded[i] = std::move(emb);
      progress.tick();
    });
    if (stop_requested(options)) throw Error("detect: cancelled (the embeddings computed so far are in the cache)");
    for (size_t i = 0; i < to_embed.size(); ++i) {
      if (errors[i].empty())
        embeddings[to_embed[i]] = std::move(embedded[i]);
      else
        failures[to_embed[i]] = std::move(errors[i]);
    }
  }
  Embedded out;
  out.embeddings = std::move(embeddings);
  out.failures = std::move(failures);
  out.cache_hits = hits.load();
  return out;
}

// Hands each machine type's clips to the backend's machine scorer: its model learns from the normal
// training clips of all the type's IDs, sorted by path.
Embedded score_by_machine(const Groups& groups, const std::vector<const Clip*>& to_embed, const DetectOptions& options,
                          MachineScorer& scorer) {
  std::map<std::string, MachineClips> machines;
  for (const Clip* c : to_embed) machines[c->machine].clips.push_back(c);
  for (const auto& [key, g] : groups)
    if (auto it = machines.find(key.first); it != machines.end())
      it->second.train.insert(it->second.train.end(), g.train.begin(), g.train.end());
  const MachineScorerContext context{options.out_dir, options.channels, options.threads, options.quiet};
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
                        static_cast<int64_t>(dim), k);
  auto loo = knn_search(R.data(), static_cast<int64_t>(refs.size()), R.data(), static_cast<int64_t>(refs.size()),
                        static_cast<int64_t>(dim), k, /*leave_one_out=*/true);

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

DetectSummary run_detect(const DetectOptions& options) {
  if (options.k < 1) throw InvalidArgument("detect: k (neighbours averaged into a score) must be at least 1");
  if (options.data_root.empty()) throw InvalidArgument("detect: no dataset root given");
  if (options.out_dir.empty()) throw InvalidArgument("detect: no output folder given");
  // The dataset is listed first: a bad --data leaves no output folder behind.
  Dataset ds = discover_dataset(options.data_root, options.machines);
  std::error_code ec;
  fs::create_directories(options.out_dir, ec);
  if (ec || !fs::is_directory(options.out_dir))
    throw IoError(options.out_dir + ": cannot create the output folder" + (ec ? ": " + ec.message() : ""));
  const RunLock lock(options.out_dir);

  DetectSummary summary;
  summary.out_dir = options.out_dir;
  std::vector<SkippedRecord> skipped;
  for (const auto& s : ds.skipped) skipped.push_back({s.path, "detect", s.reason});

  Groups groups;
  for (const auto& c : ds.clips) {
    auto& g = groups[{c.machine, c.id}];
    (c.split == Split::Train ? g.train : g.test).push_back(&c);
  }
  const std::vector<const Clip*> to_embed = clips_to_embed(groups, skipped);

  BackendOptions bopt;
  bopt.model_path = options.model_path;
  bopt.threads = options.threads;
  bopt.training = options.training;
  bopt.cancelled = options.cancelled;
  std::string backend_name = options.backend;
  if (backend_name.empty())
    backend_name = options.model_path.empty() ? "acoustic" : backend_for_model_file(options.model_path);
  auto backend = make_backend(backend_name, bopt);
  const CropPolicy crop = options.crop ? *options.crop : backend->default_crop();
  RunSettings settings;
  settings.data_root = ds.root;
  settings.backend = backend->name();
  settings.backend_identity = backend->identity();
  settings.model = options.model_path;
  settings.k = options.k;
  settings.crop = crop.to_string();
  settings.cache_key = resolve_clip_crop(crop, std::string(64, '0')).cache_key;
  settings.channels = to_string(options.channels);
  EmbeddingCache cache((fs::path(options.out_dir) / "cache.sqlite").string());

  MachineScorer* scorer = backend->machine_scorer();
  const Embedded embedded = scorer ? score_by_machine(groups, to_embed, options, *scorer)
                                   : embed_clips(to_embed, options, crop, backend, cache);
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
    if (!score_group(key, g, embedded, *backend, options.k, row, scored, skipped)) continue;
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
  publish_detection_run(options.out_dir, settings, result_lines(summary), scored, skipped);
  if (!options.quiet) {
    const std::string models = scorer ? ", " + std::to_string(summary.n_models_trained) + " models trained (" +
                                            std::to_string(summary.n_models_cached) + " from cache)"
                                      : "";
    std::fprintf(stderr, "asdcap detect: %d clips embedded (%d from cache)%s, %d test clips scored, %d skipped%s\n",
                 summary.n_embedded, summary.n_cache_hits, models.c_str(), summary.n_scored, summary.n_skipped,
                 summary.n_skipped ? " (see skipped.jsonl)" : "");
  }
  return summary;
}

}  // namespace asdcap
