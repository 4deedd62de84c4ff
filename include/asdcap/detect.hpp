// The detection pipeline: discover clips, embed them (with a cache), score test clips by the
// mean distance to their k nearest normal training clips, evaluate, threshold, write outputs.
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "asdcap/audio.hpp"
#include "asdcap/backend.hpp"
#include "asdcap/run.hpp"

namespace asdcap {

struct DetectOptions {
  std::string data_root, out_dir;
  // Embedding backend (backend_names()); empty: the one that runs model_path's architecture
  // (backend_for_model_file), or "acoustic" without a model file.
  std::string backend;
  std::string model_path;
  int k = 4;
  // Empty: the backend's default_crop() (a random crop seeded from the clip's content hash, or the
  // whole clip for panns; see docs/detection.md). run.json records the crop used.
  std::optional<CropPolicy> crop;
  ChannelMode channels = ChannelMode::Mean;
  std::vector<std::string> machines;  // empty: all
  int threads = 0;                    // 0: all cores
  bool quiet = false;                 // no progress bar / summary lines on stderr
  TrainingOptions training;           // backends that train per machine type ("ae")
  // Polled between clips and training batches: true stops the run (an Error is thrown; embeddings
  // and models already finished stay in the cache, no half-written file is left).
  std::function<bool()> cancelled;
  // Called with a clip's path each time detection decodes an audio file, from the reading threads
  // (e.g. to count the decodes).
  std::function<void(const std::string& path)> on_decode;
  // Called with each dataset folder just before it is listed (discover_dataset's on_folder).
  std::function<void(const std::string& folder)> on_folder;
  // Called for each system once its run folder's files are written, before run.json makes them the
  // current run (a process killed here leaves a folder that readers refuse as incomplete).
  std::function<void(const std::string& out_dir)> before_run_json;
};

struct DetectSummary {
  std::vector<ResultRow> rows;  // one per machine ID (Kind::Id), sorted by machine, id; NaN for
                                // metrics that need both classes
  int n_scored = 0;             // test clips scored
  int n_skipped = 0;            // entries in skipped.jsonl
  int n_embedded = 0;           // clips embedded (train + test)
  int n_cache_hits = 0;         // of which taken from cache.sqlite
  int n_models_trained = 0;     // per-machine-type models trained ("ae")
  int n_models_cached = 0;      // per-machine-type models loaded from the run's model cache
  std::string out_dir;
};

// Runs the whole pipeline and publishes the run folder out_dir (created if missing; see run.hpp):
// results.csv, anomaly_score_*.csv, decision_result_*.csv, neighbors.jsonl, skipped.jsonl, then
// run.json; cache.sqlite holds the embeddings. Bad or misnamed files are skipped and listed, never
// fatal. Throws InvalidArgument for unusable options, IoError when out_dir is being written by
// another process or cannot be written.
DetectSummary run_detect(const DetectOptions& options);

// Several systems (backends or model files) on the same clips, each into its own out_dir exactly
// as run_detect writes it, reading every clip once for all of them: one decode per clip, each
// sample rate the backends take converted once from it, and the clip handed to every system that
// has not got it in its cache (the `ae` backend's features included). Only a block of clips' audio
// is in memory at a time. The systems must agree on data_root, machines and channels
// (InvalidArgument otherwise); threads, quiet, cancelled and on_decode are the first system's.
// The systems' run folders are published in order after every clip is read; an error stops the
// run at that system, the ones before it published.
std::vector<DetectSummary> run_detect_systems(const std::vector<DetectOptions>& systems);

// The lines of results.csv: the machine IDs' rows plus a per-machine "average" and one "overall"
// line (Table I of the papers).
std::vector<ResultRow> result_lines(const DetectSummary& summary);

// The human-readable table printed on stdout (AUC and pAUC in %).
std::string format_results_table(const DetectSummary& summary);

}  // namespace asdcap
