// The run folder's records: each file written and read back, the exact DCASE/CSV text, a folder
// in the format of asdcap 0.1.0 before schema versions (committed by hand under data/), newer and
// incomplete folders refused, stale files removed, the writer's lock, explanations appended line by line.
#include <gtest/gtest.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "asdcap/error.hpp"
#include "asdcap/run.hpp"
#include "core/files.hpp"

using namespace asdcap;
namespace fs = std::filesystem;

// Every fsync of this test program, counted: the definition takes the place of the C library's
// for the statically linked run-folder code and forwards to the system call.
namespace {
std::atomic<int> g_fsyncs{0};
}
extern "C" int fsync(int fd) {
  ++g_fsyncs;
  return static_cast<int>(::syscall(SYS_fsync, fd));
}

namespace {

// Bytes this process has passed to write(2) and its kin so far (/proc/self/io "wchar").
uint64_t bytes_written_so_far() {
  std::ifstream in("/proc/self/io");
  std::string key;
  uint64_t value = 0;
  while (in >> key >> value)
    if (key == "wchar:") return value;
  return 0;
}

fs::path temp_dir(const std::string& name) {
  const fs::path p = fs::temp_directory_path() / ("asdcap_run_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

const fs::path kSchema1 = fs::path(ASDCAP_RUN_TEST_DATA) / "schema1-run";

RunSettings sample_settings() {
  RunSettings s;
  s.data_root = "/data/dcase";
  s.backend = "msclap";
  s.backend_identity = "msclap/v3 sha256=abc";
  s.model = "/models/clap.gguf";
  s.k = 3;
  s.crop = "offset:44100";
  s.cache_key = "offset:44100";
  s.channels = "concat";
  s.machines = {"fan", "valve"};
  s.created = "2026-11-23T14:00:00Z";
  s.n_scored = 12, s.n_skipped = 1, s.n_embedded = 40, s.n_cache_hits = 7;
  return s;
}

ScoredClip clip(const std::string& machine, const std::string& id, const std::string& name, double score,
                int decision) {
  ScoredClip c;
  c.file = machine + "/test/" + name;
  c.path = "/data/dcase/" + c.file;
  c.machine = machine;
  c.id = id;
  c.label = name.rfind("anomaly", 0) == 0 ? std::optional<std::string>("anomaly") : std::nullopt;
  c.score = score;
  c.threshold = 2.5;
  c.decision = decision;
  c.neighbors = {{machine + "/train/normal_00.wav", "/data/dcase/" + machine + "/train/normal_00.wav", 1.25},
                 {machine + "/train/normal_01.wav", "/data/dcase/" + machine + "/train/normal_01.wav", 1.5}};
  return c;
}

ResultRow row(ResultRow::Kind kind, const std::string& machine, const std::string& id, double auc, double pauc,
              double threshold, const std::string& rule, int n_normal, int n_anomaly) {
  ResultRow r;
  r.kind = kind;
  r.machine = machine, r.id = id, r.auc = auc, r.pauc = pauc, r.threshold = threshold, r.threshold_rule = rule;
  r.n_normal = n_normal, r.n_anomaly = n_anomaly;
  return r;
}

ExplanationRecord explanation(const std::string& file, double score) {
  ExplanationRecord e;
  e.file = file;
  e.path = "/data/dcase/" + file;
  e.machine = "fan", e.id = "id_00", e.score = score, e.threshold = 2.5, e.label = "anomaly";
  e.neighbors = {{"fan/train/normal_00.wav", "/data/dcase/fan/train/normal_00.wav", 1.25}};
  EvidenceFeature f;
  f.key = "impulse_rate", f.name = "Knocks", f.unit = "per second";
  f.anomalous = 4.0, f.neighbors = {0.5, std::nullopt}, f.z = 8.5, f.reference_mean = 0.5;
  f.z_all = 6.25, f.percentile = 97.5, f.strength = 6.25;
  EvidenceFeature descriptive;  // no z: no z_all, percentile or strength either
  descriptive.key = "burst_hz", descriptive.anomalous = 4000.0;
  EvidenceFeature moments;  // a feature made of moments: their times
  moments.key = "crackle_db", moments.anomalous = 1.5, moments.z = 4.0, moments.times = {0.375, 1.25, 3.5};
  e.evidence = {f, descriptive, moments};
  e.burst_times = {0.75, 2.125};
  e.unreadable_neighbors = {{"/data/gone.wav", "file not found"}};
  e.captions.anomalous = "Sounds like knocking";
  e.captions.neighbors = {"Sounds like a fan"};
  e.captions.prompt = "Sounds like";
  e.similarity.texts = {"Knocking", "Humming"};
  e.similarity.anomalous = std::vector<double>{0.25, -0.125};
  e.similarity.neighbors = {{0.0625, 0.5}};
  MethodRecord m;
  m.prompt = "p", m.answer = "This sound is knocking.", m.backend = "openai", m.model = "gpt", m.seconds = 1.5;
  m.attempts = 2;
  MethodRecord missing;
  missing.backend = "openai", missing.model = "gpt", missing.missing_reason = "no model";
  MethodRecord offline;
  offline.prompt = "q", offline.answer = "This sound is loud.", offline.backend = "offline";
  offline.model = "asdcap-offline-1", offline.named = std::vector<std::string>{"level_db"}, offline.reused = true;
  e.methods = {{"text", m}, {"zeroshot", missing}, {"acoustic", offline}};
  e.timings = ExplainTimings{0.5, 0.25, 0.125, 1.5, 2.5};
  return e;
}

void expect_same(const ExplanationRecord& a, const ExplanationRecord& b) {
  EXPECT_EQ(a.file, b.file);
  EXPECT_EQ(a.path, b.path);
  EXPECT_EQ(a.machine + a.id, b.machine + b.id);
  EXPECT_EQ(a.score, b.score);
  EXPECT_EQ(a.threshold, b.threshold);
  EXPECT_EQ(a.label, b.label);
  EXPECT_EQ(a.domain, b.domain);
  ASSERT_EQ(a.neighbors.size(), b.neighbors.size());
  EXPECT_EQ(a.neighbors[0].distance, b.neighbors[0].distance);
  ASSERT_EQ(a.evidence.size(), b.evidence.size());
  EXPECT_EQ(a.evidence[0].neighbors, b.evidence[0].neighbors);
  EXPECT_EQ(a.evidence[0].z, b.evidence[0].z);
  EXPECT_EQ(a.evidence[0].reference_mean, b.evidence[0].reference_mean);
  for (size_t i = 0; i < a.evidence.size(); ++i) {
    EXPECT_EQ(a.evidence[i].z_all, b.evidence[i].z_all);
    EXPECT_EQ(a.evidence[i].percentile, b.evidence[i].percentile);
    EXPECT_EQ(a.evidence[i].strength, b.evidence[i].strength);
    EXPECT_EQ(a.evidence[i].times, b.evidence[i].times);
  }
  EXPECT_EQ(a.burst_times, b.burst_times);
  EXPECT_EQ(a.unreadable_neighbors.size(), b.unreadable_neighbors.size());
  EXPECT_EQ(a.captions.anomalous, b.captions.anomalous);
  EXPECT_EQ(a.captions.neighbors, b.captions.neighbors);
  EXPECT_EQ(a.captions.prompt, b.captions.prompt);
  EXPECT_EQ(a.captions.missing_reason, b.captions.missing_reason);
  EXPECT_EQ(a.similarity.texts, b.similarity.texts);
  EXPECT_EQ(a.similarity.anomalous, b.similarity.anomalous);
  EXPECT_EQ(a.similarity.neighbors, b.similarity.neighbors);
  ASSERT_EQ(a.methods.size(), b.methods.size());
  for (size_t i = 0; i < a.methods.size(); ++i) {
    const auto& [na, ma] = a.methods[i];
    const auto& [nb, mb] = b.methods[i];
    EXPECT_EQ(na, nb);
    EXPECT_EQ(ma.prompt, mb.prompt);
    EXPECT_EQ(ma.answer, mb.answer);
    EXPECT_EQ(ma.backend, mb.backend);
    EXPECT_EQ(ma.model, mb.model);
    EXPECT_EQ(ma.error, mb.error);
    EXPECT_EQ(ma.seconds, mb.seconds);
    EXPECT_EQ(ma.missing_reason, mb.missing_reason);
    EXPECT_EQ(ma.named, mb.named);
    EXPECT_EQ(ma.reused, mb.reused);
    EXPECT_EQ(ma.attempts, mb.attempts);
  }
  ASSERT_EQ(a.timings.has_value(), b.timings.has_value());
  if (a.timings) {
    EXPECT_EQ(a.timings->llm_s, b.timings->llm_s);
  }
}

std::vector<std::string> lines_of(const fs::path& p) {
  std::ifstream in(p);
  std::vector<std::string> out;
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

}  // namespace

TEST(RunFolder, SettingsRoundTrip) {
  const fs::path dir = temp_dir("settings");
  RunSettings s = sample_settings();
  write_run_settings(dir.string(), s);
  const RunSettings r = read_run_settings(dir.string());
  EXPECT_EQ(r.schema, kRunSchema);
  EXPECT_FALSE(r.asdcap_version.empty());
  EXPECT_EQ(r.data_root, s.data_root);
  EXPECT_EQ(r.backend, s.backend);
  EXPECT_EQ(r.backend_identity, s.backend_identity);
  EXPECT_EQ(r.model, s.model);
  EXPECT_EQ(r.k, 3);
  EXPECT_EQ(r.crop, "offset:44100");
  EXPECT_EQ(r.cache_key, "offset:44100");
  EXPECT_EQ(r.channels, "concat");
  EXPECT_EQ(r.machines, s.machines);
  EXPECT_EQ(r.created, s.created);
  EXPECT_EQ(r.n_scored + r.n_skipped + r.n_embedded + r.n_cache_hits, 12 + 1 + 40 + 7);
  EXPECT_TRUE(r.files.empty());
  // No model is null in the file, and an empty model again.
  s.model.clear();
  write_run_settings(dir.string(), s);
  EXPECT_NE(read_text_file((dir / "run.json").string()).find("\"model\": null"), std::string::npos);
  EXPECT_EQ(read_run_settings(dir.string()).model, "");
  fs::remove_all(dir);
}

TEST(RunFolder, ResultsCsvTextAndRoundTrip) {
  const fs::path dir = temp_dir("results");
  using K = ResultRow::Kind;
  const std::vector<ResultRow> rows = {row(K::Id, "fan", "id_00", 0.9125, 0.74305, 2.25, "roc_closest", 3, 3),
                                       row(K::Id, "fan", "id_02", NAN, NAN, NAN, "none", 0, 0),
                                       row(K::Average, "fan", "average", 0.9125, 0.74305, NAN, "", 3, 3),
                                       row(K::Overall, "overall", "average", 0.9125, 0.74305, NAN, "", 3, 3)};
  write_results(dir.string(), rows);
  EXPECT_EQ(read_text_file((dir / "results.csv").string()),
            "machine,id,auc,pauc,threshold,threshold_rule,n_normal,n_anomaly\n"
            "fan,id_00,0.912500,0.743050,2.25,roc_closest,3,3\n"
            "fan,id_02,nan,nan,nan,none,0,0\n"
            "fan,average,0.912500,0.743050,,,3,3\n"
            "overall,average,0.912500,0.743050,,,3,3\n");
  std::vector<std::string> problems;
  const auto back = read_results(dir.string(), &problems);
  EXPECT_TRUE(problems.empty());
  ASSERT_EQ(back.size(), rows.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    EXPECT_EQ(back[i].kind, rows[i].kind) << i;
    EXPECT_EQ(back[i].machine + back[i].id, rows[i].machine + rows[i].id);
    EXPECT_EQ(std::isnan(back[i].threshold), std::isnan(rows[i].threshold));
    EXPECT_EQ(back[i].threshold_rule, rows[i].threshold_rule);
    EXPECT_EQ(back[i].n_normal, rows[i].n_normal);
  }
  EXPECT_DOUBLE_EQ(back[0].auc, 0.9125);
  EXPECT_DOUBLE_EQ(back[0].threshold, 2.25);
  EXPECT_TRUE(std::isnan(back[1].auc));
  fs::remove_all(dir);
}

TEST(RunFolder, DcaseFilesTextAndRoundTrip) {
  const fs::path dir = temp_dir("dcase");
  write_anomaly_scores(
      dir.string(), "fan", "id_00",
      {{"normal_id_00_00000001.wav", 1.5}, {"anomaly_id_00_00000000.wav", 12.345678912}, {"a,b.wav", 2}});
  write_decision_results(dir.string(), "fan", "id_00",
                         {{"normal_id_00_00000001.wav", 0}, {"anomaly_id_00_00000000.wav", 1}});
  EXPECT_EQ(read_text_file((dir / "anomaly_score_fan_id_00.csv").string()),
            "\"a,b.wav\",2\nanomaly_id_00_00000000.wav,12.3456789\nnormal_id_00_00000001.wav,1.5\n");
  EXPECT_EQ(read_text_file((dir / "decision_result_fan_id_00.csv").string()),
            "anomaly_id_00_00000000.wav,1\nnormal_id_00_00000001.wav,0\n");
  const auto scores = read_anomaly_scores(dir.string(), "fan", "id_00");
  ASSERT_EQ(scores.size(), 3u);
  EXPECT_EQ(scores[0].file, "a,b.wav");
  EXPECT_EQ(scores[1].score, 12.3456789);
  const auto decisions = read_decision_results(dir.string(), "fan", "id_00");
  ASSERT_EQ(decisions.size(), 2u);
  EXPECT_EQ(decisions[0].decision, 1);
  std::ofstream(dir / "decision_result_fan_id_00.csv", std::ios::app) << "x.wav,maybe\n";
  std::vector<std::string> problems;
  EXPECT_EQ(read_decision_results(dir.string(), "fan", "id_00", &problems).size(), 2u);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_NE(problems[0].find("decision_result_fan_id_00.csv line 3"), std::string::npos);
  EXPECT_THROW(read_anomaly_scores(dir.string(), "pump", "id_00"), IoError);
  fs::remove_all(dir);
}

TEST(RunFolder, NeighborsAndSkippedRoundTrip) {
  const fs::path dir = temp_dir("neighbors");
  std::vector<ScoredClip> clips = {clip("fan", "id_00", "anomaly_00.wav", 3.5, 1),
                                   clip("fan", "id_00", "x_01.wav", 1.0, 0)};
  clips[1].domain = "target";
  clips[1].threshold = NAN;
  write_neighbors(dir.string(), clips);
  write_skipped(dir.string(), {{"/data/a.wav", "detect", "not a sound file"}, {"/data/b.wav", "explain", "gone"}});
  std::vector<std::string> problems;
  const auto back = read_neighbors(dir.string(), &problems);
  EXPECT_TRUE(problems.empty());
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back[0].file, clips[0].file);
  EXPECT_EQ(back[0].path, clips[0].path);
  EXPECT_EQ(back[0].label, std::optional<std::string>("anomaly"));
  EXPECT_FALSE(back[1].label);
  EXPECT_EQ(back[1].domain, std::optional<std::string>("target"));
  EXPECT_EQ(back[0].score, 3.5);
  EXPECT_EQ(back[0].threshold, 2.5);
  EXPECT_TRUE(std::isnan(back[1].threshold));
  EXPECT_EQ(back[0].decision, 1);
  ASSERT_EQ(back[0].neighbors.size(), 2u);
  EXPECT_EQ(back[0].neighbors[1].file, "fan/train/normal_01.wav");
  EXPECT_EQ(back[0].neighbors[1].distance, 1.5);
  // Every line says its schema; null for a missing threshold, as before.
  for (const auto& l : lines_of(dir / "neighbors.jsonl")) EXPECT_NE(l.find("\"schema\":2"), std::string::npos);
  EXPECT_NE(lines_of(dir / "neighbors.jsonl")[1].find("\"threshold\":null"), std::string::npos);
  const auto skipped = read_skipped(dir.string());
  ASSERT_EQ(skipped.size(), 2u);
  EXPECT_EQ(skipped[1].path, "/data/b.wav");
  EXPECT_EQ(skipped[1].stage, "explain");
  EXPECT_EQ(skipped[1].reason, "gone");
  fs::remove_all(dir);
}

TEST(RunFolder, ExplanationsAppendedOneLineAtATimeAndCommitted) {
  const fs::path dir = temp_dir("explanations");
  const ExplanationRecord a = explanation("fan/test/a.wav", 3.5), b = explanation("fan/test/b.wav", 4.0);
  {
    ExplanationWriter w(dir.string());
    w.append(a);
    // Already on disk, complete, before the next record and before commit().
    const auto partial = lines_of(dir / "explanations.partial.jsonl");
    ASSERT_EQ(partial.size(), 1u);
    EXPECT_FALSE(fs::exists(dir / "explanations.jsonl"));
    w.append(b);
    EXPECT_EQ(w.commit(), (dir / "explanations.jsonl").string());
  }
  EXPECT_FALSE(fs::exists(dir / "explanations.partial.jsonl"));
  std::vector<std::string> problems;
  const auto back = read_explanations((dir / "explanations.jsonl").string(), &problems);
  EXPECT_TRUE(problems.empty());
  ASSERT_EQ(back.size(), 2u);
  expect_same(back[0], a);
  expect_same(back[1], b);
  // The method fields keep the order explain has always written them in.
  const std::string line = lines_of(dir / "explanations.jsonl")[0];
  EXPECT_NE(
      line.find("{\"prompt\":\"p\",\"answer\":\"This sound is knocking.\",\"backend\":\"openai\",\"model\":\"gpt\","
                "\"error\":null,\"seconds\":1.5,\"attempts\":2}"),
      std::string::npos)
      << line;
  EXPECT_EQ(line.rfind("{\"file\":\"fan/test/a.wav\",\"path\":", 0), 0u);

  // A writer that never commits leaves its partial file, and the previous explanations.jsonl as it was.
  {
    ExplanationWriter w(dir.string());
    w.append(b);
  }
  EXPECT_EQ(read_explanations((dir / "explanations.partial.jsonl").string()).size(), 1u);
  EXPECT_EQ(read_explanations((dir / "explanations.jsonl").string()).size(), 2u);
  fs::remove_all(dir);
}

// Appending N records writes each record once (about N*s bytes, not the N^2*s/2 of rewriting the
// partial file per record) and syncs nothing until commit(), which syncs the file and the folder.
TEST(RunFolder, ExplanationAppendsWriteEachRecordOnceAndSyncOnlyAtCommit) {
  if (bytes_written_so_far() == 0) GTEST_SKIP() << "/proc/self/io is not readable here";
  const fs::path dir = temp_dir("explanations_cost");
  ExplanationRecord big = explanation("fan/test/a.wav", 3.5);
  big.methods[0].second.answer = std::string(4000, 'k');
  const int n = 300;
  ExplanationWriter w(dir.string());
  const int fsyncs_before = g_fsyncs.load();
  const uint64_t before = bytes_written_so_far();
  for (int i = 0; i < n; ++i) {
    big.file = "fan/test/clip_" + std::to_string(i) + ".wav";
    w.append(big);
  }
  const uint64_t written = bytes_written_so_far() - before;
  EXPECT_EQ(g_fsyncs.load(), fsyncs_before) << "records are synced one by one";
  const uint64_t file_size = fs::file_size(dir / "explanations.partial.jsonl");
  EXPECT_GE(file_size, static_cast<uint64_t>(n) * 4000);
  EXPECT_GE(written, file_size);
  EXPECT_LE(written, file_size + file_size / 10) << "the partial file is rewritten, not appended to";
  w.commit();
  EXPECT_LE(g_fsyncs.load() - fsyncs_before, 2);
  EXPECT_EQ(read_explanations((dir / "explanations.jsonl").string()).size(), static_cast<size_t>(n));
  fs::remove_all(dir);
}

TEST(RunFolder, TruncatedLastExplanationLineIsIgnoredAndReported) {
  const fs::path dir = temp_dir("truncated");
  {
    ExplanationWriter w(dir.string());
    w.append(explanation("fan/test/a.wav", 3.5));
    w.append(explanation("fan/test/b.wav", 4.0));
  }
  // An append cut short: the last line lacks its end (and its line break).
  const std::string path = (dir / "explanations.partial.jsonl").string();
  std::string text = read_text_file(path);
  text.resize(text.size() - 40);
  write_file_atomic(path, text);
  std::vector<std::string> problems;
  const auto back = read_explanations(path, &problems);
  ASSERT_EQ(back.size(), 1u);
  EXPECT_EQ(back[0].file, "fan/test/a.wav");
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_NE(problems[0].find("explanations.partial.jsonl line 2"), std::string::npos) << problems[0];
  EXPECT_NE(problems[0].find("no line break"), std::string::npos) << problems[0];
  fs::remove_all(dir);
}

// A run folder written by asdcap 0.1.0 (before schema versions; written by hand in that format).
TEST(RunFolder, ReadsSchema1Folder) {
  const RunSettings s = read_run_settings(kSchema1.string());
  EXPECT_EQ(s.schema, 1);
  EXPECT_EQ(s.crop, "random");
  EXPECT_EQ(s.cache_key, "random@content-sha256");
  EXPECT_EQ(s.channels, "mean");
  EXPECT_EQ(s.backend, "acoustic");
  EXPECT_EQ(s.model, "");
  EXPECT_EQ(s.k, 2);
  EXPECT_EQ(s.data_root, "/srv/old-location/data");
  EXPECT_EQ(s.machines, std::vector<std::string>{"fan"});
  EXPECT_EQ(s.n_scored, 3);
  EXPECT_TRUE(s.files.empty());

  std::vector<std::string> problems;
  const auto results = read_results(kSchema1.string(), &problems);
  ASSERT_EQ(results.size(), 3u);
  EXPECT_EQ(results[0].threshold, 15.5);
  EXPECT_EQ(results[1].kind, ResultRow::Kind::Average);
  EXPECT_EQ(results[2].kind, ResultRow::Kind::Overall);
  const auto clips = read_neighbors(kSchema1.string(), &problems);
  ASSERT_EQ(clips.size(), 3u);
  EXPECT_EQ(clips[0].file, "fan/test/anomaly_id_00_00000000.wav");
  EXPECT_EQ(clips[0].path, "/srv/old-location/data/fan/test/anomaly_id_00_00000000.wav");
  EXPECT_EQ(clips[0].neighbors.size(), 2u);
  EXPECT_EQ(clips[0].neighbors[1].distance, 40.5);
  EXPECT_EQ(clips[2].decision, 0);
  EXPECT_EQ(read_anomaly_scores(kSchema1.string(), "fan", "id_00", &problems)[2].score, 12.125);
  EXPECT_EQ(read_decision_results(kSchema1.string(), "fan", "id_00", &problems)[1].decision, 1);
  EXPECT_EQ(read_skipped(kSchema1.string(), &problems).at(0).stage, "detect");
  const auto ex = read_explanations((kSchema1 / "explanations.jsonl").string(), &problems);
  ASSERT_EQ(ex.size(), 1u);
  ASSERT_EQ(ex[0].methods.size(), 1u);
  EXPECT_EQ(ex[0].methods[0].first, "acoustic");
  EXPECT_EQ(ex[0].methods[0].second.named, std::optional<std::vector<std::string>>({"impulse_rate"}));
  EXPECT_EQ(ex[0].evidence.at(0).z, 9.5);
  EXPECT_FALSE(ex[0].evidence.at(0).strength.has_value());  // written before the ranking fields
  EXPECT_TRUE(ex[0].burst_times.empty());
  EXPECT_TRUE(problems.empty()) << problems[0];

  // Schema 1 stored a crop that is not the hash-seeded random one as itself.
  const fs::path dir = temp_dir("schema1");
  std::string json = read_text_file((kSchema1 / "run.json").string());
  json.replace(json.find("random@content-sha256"), 21, "cover");
  write_file_atomic((dir / "run.json").string(), json);
  const RunSettings cover = read_run_settings(dir.string());
  EXPECT_EQ(cover.crop, "cover");
  EXPECT_EQ(cover.cache_key, "cover");
  fs::remove_all(dir);
}

TEST(RunFolder, NewerSchemaIsRefused) {
  const fs::path dir = temp_dir("newer");
  write_file_atomic((dir / "run.json").string(), "{\"schema\": 99, \"crop\": {\"kind\": \"spiral\"}}\n");
  try {
    read_run_settings(dir.string());
    FAIL() << "a run.json of schema 99 was read";
  } catch (const RunRefused& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find((dir / "run.json").string()), std::string::npos) << what;
    EXPECT_NE(what.find("written by a newer asdcap"), std::string::npos) << what;
    EXPECT_NE(what.find("schema 99"), std::string::npos) << what;
  }
  // A JSON line of a newer schema is one unreadable line, not a misread record.
  std::ofstream(dir / "neighbors.jsonl")
      << "{\"schema\":99,\"file\":\"a.wav\",\"path\":\"/a.wav\",\"machine\":\"fan\",\"id\":\"id_00\",\"score\":1}\n";
  std::vector<std::string> problems;
  EXPECT_TRUE(read_neighbors(dir.string(), &problems).empty());
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_NE(problems[0].find("newer asdcap"), std::string::npos) << problems[0];
  fs::remove_all(dir);
}

TEST(RunFolder, BadFieldsAreNamed) {
  const fs::path dir = temp_dir("badfields");
  write_run_settings(dir.string(), sample_settings());
  const std::string good = read_text_file((dir / "run.json").string());
  auto expect_error = [&](const std::string& from, const std::string& to, const std::string& needle) {
    std::string text = good;
    ASSERT_NE(text.find(from), std::string::npos) << from;
    text.replace(text.find(from), from.size(), to);
    write_file_atomic((dir / "run.json").string(), text);
    try {
      read_run_settings(dir.string());
      ADD_FAILURE() << "accepted: " << to;
    } catch (const FormatError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect_error("\"k\": 3", "\"k\": \"3\"", "\"k\" is not an integer");
  expect_error("\"channels\": \"concat\"", "\"channels\": \"left\"", "expected mean or concat");
  expect_error("\"cache_key\": \"offset:44100\",", "", "\"cache_key\" is missing");
  expect_error("\"crop\": \"offset:44100\"", "\"crop\": 7", "\"crop\" is not a string");
  fs::remove_all(dir);
}

TEST(RunFolder, PublishListsFilesAndIncompleteRunIsRefused) {
  const fs::path dir = temp_dir("publish");
  const std::vector<ScoredClip> scored = {clip("fan", "id_00", "anomaly_00.wav", 3.5, 1),
                                          clip("valve", "id_02", "anomaly_00.wav", 1.0, 0)};
  using K = ResultRow::Kind;
  publish_detection_run(dir.string(), sample_settings(),
                        {row(K::Id, "fan", "id_00", NAN, NAN, 2.5, "gamma_q0.9", 0, 1)}, scored,
                        {{"/data/x.wav", "detect", "empty"}});
  const RunSettings s = read_run_settings(dir.string());
  EXPECT_EQ(s.files, (std::vector<std::string>{"results.csv", "anomaly_score_fan_id_00.csv",
                                               "decision_result_fan_id_00.csv", "anomaly_score_valve_id_02.csv",
                                               "decision_result_valve_id_02.csv", "neighbors.jsonl", "skipped.jsonl"}));
  EXPECT_EQ(read_text_file((dir / "anomaly_score_fan_id_00.csv").string()), "anomaly_00.wav,3.5\n");
  EXPECT_EQ(read_neighbors(dir.string()).size(), 2u);

  fs::remove(dir / "decision_result_valve_id_02.csv");
  try {
    read_run_settings(dir.string());
    FAIL() << "an incomplete run was read";
  } catch (const RunRefused& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("decision_result_valve_id_02.csv"), std::string::npos) << what;
    EXPECT_NE(what.find("incomplete"), std::string::npos) << what;
  }
  fs::remove_all(dir);
}

TEST(RunFolder, RerunWithFewerMachinesRemovesStaleFiles) {
  const fs::path dir = temp_dir("stale");
  std::ofstream(dir / "notes.csv") << "not a run file\n";
  publish_detection_run(dir.string(), sample_settings(), {},
                        {clip("fan", "id_00", "a.wav", 3.5, 1), clip("valve", "id_02", "b.wav", 1.0, 0)}, {});
  ASSERT_TRUE(fs::exists(dir / "anomaly_score_valve_id_02.csv"));
  publish_detection_run(dir.string(), sample_settings(), {}, {clip("fan", "id_00", "a.wav", 3.5, 1)}, {});
  EXPECT_FALSE(fs::exists(dir / "anomaly_score_valve_id_02.csv"));
  EXPECT_FALSE(fs::exists(dir / "decision_result_valve_id_02.csv"));
  EXPECT_TRUE(fs::exists(dir / "anomaly_score_fan_id_00.csv"));
  EXPECT_TRUE(fs::exists(dir / "notes.csv"));
  EXPECT_EQ(read_run_settings(dir.string()).files.size(), 5u);
  fs::remove_all(dir);
}

TEST(RunFolder, SecondWriterIsRefusedAtOnce) {
  const fs::path dir = temp_dir("lock");
  {
    const RunLock first(dir.string());
    try {
      const RunLock second(dir.string());
      FAIL() << "two writers locked the folder";
    } catch (const IoError& e) {
      EXPECT_NE(std::string(e.what()).find("another asdcap process is writing this run folder"), std::string::npos)
          << e.what();
    }
    // Another process is refused too.
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      try {
        const RunLock other(dir.string());
        _exit(0);
      } catch (const IoError&) {
        _exit(3);
      }
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 3);
  }
  EXPECT_NO_THROW(RunLock again(dir.string()));  // released with its holder
  fs::remove_all(dir);
}

// A new detection makes the explanations of the earlier one stale: they leave explanations.jsonl
// (the report no longer shows them) and stay in the partial file, whose answers explain reuses.
TEST(RunFolder, RepublishingSetsEarlierExplanationsAside) {
  const fs::path dir = temp_dir("explained");
  publish_detection_run(dir.string(), sample_settings(), {}, {clip("fan", "id_00", "a.wav", 3.5, 1)}, {});
  const std::string old_line = "{\"path\": \"/data/pump/test/a.wav\"}\n";
  write_file_atomic((dir / "explanations.jsonl").string(), old_line);
  publish_detection_run(dir.string(), sample_settings(), {}, {clip("fan", "id_00", "a.wav", 3.5, 1)}, {});
  EXPECT_FALSE(fs::exists(dir / "explanations.jsonl"));
  EXPECT_EQ(read_text_file((dir / "explanations.partial.jsonl").string()), old_line);
  // With a newer partial file (an interrupted explain) the older complete file is dropped.
  write_file_atomic((dir / "explanations.jsonl").string(), "{}\n");
  publish_detection_run(dir.string(), sample_settings(), {}, {clip("fan", "id_00", "a.wav", 3.5, 1)}, {});
  EXPECT_FALSE(fs::exists(dir / "explanations.jsonl"));
  EXPECT_EQ(read_text_file((dir / "explanations.partial.jsonl").string()), old_line);
  fs::remove_all(dir);
}
