// The run folder: the files `asdcap detect` writes into DIR and `asdcap explain` / `asdcap report`
// read back, as typed records. Each file has exactly one writer and one reader, here:
//
//   run.json                       RunSettings         written last: it lists the run's other files
//   results.csv                    ResultRow           one line per machine ID, per machine type, overall
//   anomaly_score_<m>_<id>.csv     DcaseScore          DCASE format: file name, score
//   decision_result_<m>_<id>.csv   DcaseDecision       DCASE format: file name, 0/1
//   neighbors.jsonl                ScoredClip          one test clip and its nearest normal clips per line
//   skipped.jsonl                  SkippedRecord       files left out, by which stage and why
//   explanations.jsonl             ExplanationRecord   appended record by record by explain
//
// Versions: run.json and every JSON line carry "schema" (kRunSchema). The CSV files are DCASE formats
// and stay as they are; their version is the run.json's. Schema 1 is a run folder written before the
// field existed: it is read (run.json then held the embedding cache key in "crop"). A folder written by
// a newer asdcap, or one whose run.json lists a file that is missing, is refused (RunRefused).
#pragma once
#include <cmath>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "asdcap/error.hpp"

namespace asdcap {

// The run-folder schema this asdcap writes; it reads 1 up to this.
inline constexpr int kRunSchema = 2;

// A run folder that must not be used at all: written by a newer asdcap, or incomplete (a file its
// run.json lists is missing). The message names the file and what is wrong.
class RunRefused : public FormatError {
 public:
  using FormatError::FormatError;
};

// ---- run.json ---------------------------------------------------------------------------------
struct RunSettings {
  int schema = kRunSchema;
  std::string asdcap_version;         // of the asdcap that wrote the run
  std::string data_root;              // absolute dataset root at detection time
  std::string backend;                // embedding backend name, e.g. "acoustic"
  std::string backend_identity;       // backend, maths version and model hash (keys the embedding cache)
  std::string model;                  // model file; empty when the backend needs none (null in the file)
  int k = 0;                          // neighbours averaged into a score
  std::string crop;                   // crop policy as CropPolicy::parse reads it: random, random:SEED, offset:N, cover
  std::string cache_key;              // the crop's part of the embedding cache key: "random@content-sha256"
                                      // (random window seeded by each clip's content hash) or the crop policy
  std::string channels;               // multi-channel files: "mean" or "concat"
  std::vector<std::string> machines;  // machine types scored
  std::string created;                // UTC, e.g. "2026-11-23T14:00:00Z"
  int n_scored = 0, n_skipped = 0, n_embedded = 0, n_cache_hits = 0;
  // The run's files, relative to DIR (schema >= 2; empty for schema 1). Every one must exist.
  std::vector<std::string> files;
};

// ---- results.csv ------------------------------------------------------------------------------
// A machine ID's metrics, a machine type's average, or the overall average (of the type averages).
struct ResultRow {
  enum class Kind { Id, Average, Overall };
  Kind kind = Kind::Id;
  std::string machine, id;                        // Average: id "average"; Overall: machine "overall", id "average"
  double auc = NAN, pauc = NAN, threshold = NAN;  // NaN: not available (e.g. one class only)
  std::string threshold_rule;                     // "roc_closest" | "gamma_q0.9" | "none"; empty on summary lines
  int n_normal = 0, n_anomaly = 0;
  int n_unknown = 0, n_train = 0;  // Kind::Id, as detection counted them (not in results.csv)
};

// ---- anomaly_score_*.csv, decision_result_*.csv ------------------------------------------------
struct DcaseScore {
  std::string file;  // file name only
  double score = NAN;
};
struct DcaseDecision {
  std::string file;
  int decision = 0;
};

// ---- neighbors.jsonl --------------------------------------------------------------------------
struct Neighbor {
  std::string file;  // relative to the data root
  std::string path;  // as detection found it
  double distance = NAN;
};

struct ScoredClip {
  std::string file, path, machine, id;
  std::string split = "test";
  std::optional<std::string> label;   // "normal" / "anomaly"; none when the name does not say
  std::optional<std::string> domain;  // "source" / "target" when the name says
  double score = NAN;
  double threshold = NAN;           // NaN: no threshold could be set
  int decision = 0;                 // 1: flagged (score above the threshold)
  std::vector<Neighbor> neighbors;  // nearest first
};

// ---- skipped.jsonl ----------------------------------------------------------------------------
struct SkippedRecord {
  std::string path;
  std::string stage;  // "detect" | "explain"
  std::string reason;
};

// ---- explanations.jsonl -----------------------------------------------------------------------
struct EvidenceFeature {
  std::string key, name, unit;
  std::optional<double> anomalous;
  std::optional<double> z;                       // none: descriptive feature
  std::vector<std::optional<double>> neighbors;  // none: that neighbour could not be measured
  std::optional<double> reference_mean;
  // Newer records: against the whole reference set (robust z, percentile) and the ranking strength.
  std::optional<double> z_all, percentile, strength;
  std::vector<double> times;  // seconds: where a feature made of moments has them (crackle_db); else empty
};

struct UnreadableNeighbor {
  std::string path, reason;
};

struct CaptionsRecord {
  std::optional<std::string> anomalous;
  std::vector<std::optional<std::string>> neighbors;
  std::optional<std::string> prompt;          // the captions' forced beginning, when captions were asked for
  std::optional<std::string> missing_reason;  // why there are none
};

struct SimilarityRecord {
  std::vector<std::string> texts;
  std::optional<std::vector<double>> anomalous;  // one per text
  std::vector<std::vector<double>> neighbors;
  std::optional<std::string> missing_reason;
};

struct MethodRecord {
  std::optional<std::string> prompt, answer;
  std::string backend;  // "offline" | "openai"
  std::optional<std::string> model, error;
  double seconds = 0;
  std::optional<std::string> missing_reason;      // the method could not run
  std::optional<std::vector<std::string>> named;  // offline explainer: what it names, strongest first
  bool reused = false;                            // the answer of an earlier run to the identical prompt
  std::optional<int> attempts;                    // LLM requests: attempts it took
  std::optional<std::string> request;             // LLM requests: what was sent besides the prompt (requested
                                                  // model and parameters, OpenAiClient::request_settings)
};

struct ExplainTimings {
  double evidence_s_all_clips = 0, captions_s = 0, similarity_s = 0, llm_s = 0, total_s = 0;
};

struct ExplanationRecord {
  std::string file, path, machine, id;
  double score = NAN, threshold = NAN;
  std::optional<std::string> label, domain;
  std::vector<Neighbor> neighbors;
  std::vector<EvidenceFeature> evidence;
  std::vector<double> burst_times;  // seconds: the clip's short events (empty in older records)
  std::vector<UnreadableNeighbor> unreadable_neighbors;
  CaptionsRecord captions;
  SimilarityRecord similarity;
  std::vector<std::pair<std::string, MethodRecord>> methods;  // in the order they ran
  std::optional<ExplainTimings> timings;
};

// ---- file names -------------------------------------------------------------------------------
namespace run_files {
inline constexpr const char* kSettings = "run.json";
inline constexpr const char* kResults = "results.csv";
inline constexpr const char* kNeighbors = "neighbors.jsonl";
inline constexpr const char* kSkipped = "skipped.jsonl";
inline constexpr const char* kExplanations = "explanations.jsonl";
inline constexpr const char* kExplanationsPartial = "explanations.partial.jsonl";
inline constexpr const char* kLock = "run.lock";
std::string anomaly_scores(const std::string& machine, const std::string& id);    // anomaly_score_<m>_<id>.csv
std::string decision_results(const std::string& machine, const std::string& id);  // decision_result_<m>_<id>.csv
}  // namespace run_files

// ---- writers (each file atomically: a reader sees the old or the new file, never a part) -----------
void write_run_settings(const std::string& dir, const RunSettings& settings);
void write_results(const std::string& dir, const std::vector<ResultRow>& rows);
// Rows sorted by file name, as DCASE expects.
void write_anomaly_scores(const std::string& dir, const std::string& machine, const std::string& id,
                          std::vector<DcaseScore> rows);
void write_decision_results(const std::string& dir, const std::string& machine, const std::string& id,
                            std::vector<DcaseDecision> rows);
void write_neighbors(const std::string& dir, const std::vector<ScoredClip>& clips);
void write_skipped(const std::string& dir, const std::vector<SkippedRecord>& records);

// Publishes a detection run as one unit: removes run.json, writes results.csv, the DCASE files of
// every machine ID in `scored`, neighbors.jsonl and skipped.jsonl, removes the DCASE files of
// machine IDs no longer in the run, and writes run.json last, listing the files (settings.files is
// filled in here). Until run.json is back, readers see an incomplete run. `before_run_json`, when
// set, is called after the other files are written, just before run.json.
void publish_detection_run(const std::string& dir, RunSettings settings, const std::vector<ResultRow>& results,
                           const std::vector<ScoredClip>& scored, const std::vector<SkippedRecord>& skipped,
                           const std::function<void()>& before_run_json = {});

// explanations.jsonl, record by record: the records go to explanations.partial.jsonl (started
// empty), each appended as one line in one write and not synced (N records write their N lines
// once); commit() syncs the file, renames it to explanations.jsonl and syncs the folder. An
// interrupted run leaves the partial file, whose answers the next run may reuse: read it (and the
// previous explanations.jsonl) before constructing the writer.
class ExplanationWriter {
 public:
  explicit ExplanationWriter(const std::string& dir);
  ~ExplanationWriter();
  ExplanationWriter(const ExplanationWriter&) = delete;
  ExplanationWriter& operator=(const ExplanationWriter&) = delete;
  void append(const ExplanationRecord& record);
  std::string commit();  // returns the path of explanations.jsonl

 private:
  std::string dir_, partial_;
  int fd_ = -1;
};

// ---- readers ----------------------------------------------------------------------------------
// run.json, strictly: every field with the type it must have (schema 1 may lack fields: defaults).
// Throws IoError when it cannot be read, FormatError when it is not a run.json this asdcap
// understands, RunRefused when it was written by a newer asdcap or lists a file that is missing.
RunSettings read_run_settings(const std::string& dir);

// The other readers throw IoError when the file cannot be opened. Lines that cannot be used are
// skipped and described in `problems` ("neighbors.jsonl line 7: ...") when given; a JSON line
// written by a newer asdcap counts as such a line.
std::vector<ResultRow> read_results(const std::string& dir, std::vector<std::string>* problems = nullptr);
std::vector<DcaseScore> read_anomaly_scores(const std::string& dir, const std::string& machine, const std::string& id,
                                            std::vector<std::string>* problems = nullptr);
std::vector<DcaseDecision> read_decision_results(const std::string& dir, const std::string& machine,
                                                 const std::string& id, std::vector<std::string>* problems = nullptr);
std::vector<ScoredClip> read_neighbors(const std::string& dir, std::vector<std::string>* problems = nullptr);
std::vector<SkippedRecord> read_skipped(const std::string& dir, std::vector<std::string>* problems = nullptr);
// `path`: DIR/explanations.jsonl or a left-over DIR/explanations.partial.jsonl. A last line without
// its line break (an interrupted append) is ignored and reported.
std::vector<ExplanationRecord> read_explanations(const std::string& path, std::vector<std::string>* problems = nullptr);

// ---- the writer's lock ------------------------------------------------------------------------
// An exclusive lock (flock on DIR/run.lock) held while detect or explain writes the folder. A second
// writer fails at once with an Error naming the folder. Released by the destructor (or process exit).
class RunLock {
 public:
  explicit RunLock(const std::string& dir);
  ~RunLock();
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;

 private:
  int fd_ = -1;
};

}  // namespace asdcap
