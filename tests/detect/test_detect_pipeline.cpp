// End-to-end detection runs on synthetic data: accuracy, output files, bad files, caching,
// unlabelled sets, and a CLI run killed with SIGKILL that resumes from its cache.
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <thread>

#include "asdcap/backend.hpp"
#include "asdcap/detect.hpp"
#include "asdcap/error.hpp"
#include "asdcap/run.hpp"
#include "asdcap/synth.hpp"
#include "core/files.hpp"
#include "detect/detect_test_util.hpp"

using namespace asdcap;
using asdcap::test::lines_of;
using asdcap::test::temp_dir;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

DetectSummary detect(const fs::path& data, const fs::path& out, int threads = 0) {
  DetectOptions o;
  o.data_root = data.string();
  o.out_dir = out.string();
  o.threads = threads;
  o.quiet = true;
  return run_detect(o);
}

int64_t cache_rows(const fs::path& db) {
  sqlite3* h = nullptr;
  int64_t n = 0;
  if (sqlite3_open_v2(db.c_str(), &h, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(h, "SELECT COUNT(*) FROM embeddings", -1, &st, nullptr) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
      n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
  }
  sqlite3_close(h);
  return n;
}

}  // namespace

// The acoustic backend separates every synthetic machine type's faults (AUC >= 0.9 per type);
// the output files have the agreed shapes; a rerun takes every embedding from the cache.
TEST(DetectPipeline, SyntheticSetHighAucAndOutputs) {
  fs::path data = temp_dir("pipe_data"), out = temp_dir("pipe_out");
  SynthOptions so;
  so.out_dir = data.string();
  so.seed = 11;
  so.machines = synth_machine_types();
  so.ids = {"id_00"};
  so.n_train = 20;
  so.n_test_normal = 8;
  so.n_test_anomaly = 8;
  synthesize_dataset(so);
  auto s = detect(data, out);
  const int per_type = so.n_test_normal + so.n_test_anomaly;
  ASSERT_EQ(s.rows.size(), so.machines.size());
  EXPECT_EQ(s.n_scored, per_type * static_cast<int>(so.machines.size()));
  EXPECT_EQ(s.n_skipped, 0);
  for (const auto& r : s.rows) {
    EXPECT_GE(r.auc, 0.9) << r.machine;
    EXPECT_EQ(r.threshold_rule, "roc_closest");
    EXPECT_EQ(r.n_normal, so.n_test_normal);
    EXPECT_EQ(r.n_anomaly, so.n_test_anomaly);
    std::printf("%s %s AUC %.4f pAUC %.4f\n", r.machine.c_str(), r.id.c_str(), r.auc, r.pauc);
  }
  auto results = lines_of(out / "results.csv");
  ASSERT_EQ(results.size(), 1 + 2 * so.machines.size() + 1);
  EXPECT_EQ(results[0], "machine,id,auc,pauc,threshold,threshold_rule,n_normal,n_anomaly");
  EXPECT_EQ(results.back().rfind("overall,average,", 0), 0u);
  auto scores = lines_of(out / "anomaly_score_fan_id_00.csv");
  auto decisions = lines_of(out / "decision_result_fan_id_00.csv");
  ASSERT_EQ(scores.size(), static_cast<size_t>(per_type));
  ASSERT_EQ(decisions.size(), scores.size());
  EXPECT_EQ(scores[0].rfind("anomaly_id_00_00000000.wav,", 0), 0u);
  for (auto& d : decisions) EXPECT_TRUE(d.back() == '0' || d.back() == '1');
  auto nb = lines_of(out / "neighbors.jsonl");
  ASSERT_EQ(nb.size(), static_cast<size_t>(s.n_scored));
  for (auto& l : nb) {
    auto j = json::parse(l);
    ASSERT_EQ(j["neighbors"].size(), 4u);
    double prev = 0, sum = 0;
    for (auto& n : j["neighbors"]) {
      EXPECT_NE(n["file"].get<std::string>().find("/train/normal_"), std::string::npos);
      EXPECT_GE(n["distance"].get<double>(), prev);
      prev = n["distance"].get<double>();
      sum += prev;
    }
    EXPECT_NEAR(j["score"].get<double>(), sum / 4, 1e-9);
    EXPECT_EQ(j["decision"].get<int>(), j["score"].get<double>() > j["threshold"].get<double>() ? 1 : 0);
    EXPECT_TRUE(j["label"] == "normal" || j["label"] == "anomaly");
  }
  auto run = json::parse(read_text_file((out / "run.json").string()));
  EXPECT_EQ(run["backend"], "acoustic");
  EXPECT_EQ(run["k"], 4);
  EXPECT_EQ(run["schema"], kRunSchema);
  EXPECT_EQ(run["crop"], "random");
  EXPECT_EQ(run["cache_key"], "random@content-sha256");
  EXPECT_EQ(run["channels"], "mean");
  EXPECT_EQ(lines_of(out / "skipped.jsonl").size(), 0u);

  std::string first_scores = read_text_file((out / "anomaly_score_pump_id_00.csv").string());
  auto again = detect(data, out, 1);
  EXPECT_EQ(again.n_cache_hits, again.n_embedded);
  EXPECT_EQ(again.n_embedded, s.n_embedded);
  EXPECT_EQ(read_text_file((out / "anomaly_score_pump_id_00.csv").string()), first_scores);

  // A rerun with fewer machine types leaves no score files of the others behind, and run.json lists
  // exactly the files there are.
  DetectOptions fan_only;
  fan_only.data_root = data.string();
  fan_only.out_dir = out.string();
  fan_only.machines = {"fan"};
  fan_only.quiet = true;
  run_detect(fan_only);
  for (const auto& m : so.machines) {
    EXPECT_EQ(fs::exists(out / ("anomaly_score_" + m + "_id_00.csv")), m == "fan") << m;
    EXPECT_EQ(fs::exists(out / ("decision_result_" + m + "_id_00.csv")), m == "fan") << m;
  }
  const RunSettings settings = read_run_settings(out.string());
  EXPECT_EQ(settings.machines, std::vector<std::string>{"fan"});
  EXPECT_EQ(settings.files,
            (std::vector<std::string>{"results.csv", "anomaly_score_fan_id_00.csv", "decision_result_fan_id_00.csv",
                                      "neighbors.jsonl", "skipped.jsonl"}));
  fs::remove_all(data);
  fs::remove_all(out);
}

// While one process writes a run folder, a second detect into it fails at once, naming the folder.
TEST(DetectPipeline, SecondWriterFailsAtOnce) {
  fs::path out = temp_dir("locked_out");
  const RunLock held(out.string());
  DetectOptions o;
  o.data_root = out.string();
  o.out_dir = out.string();
  o.quiet = true;
  try {
    run_detect(o);
    FAIL() << "detect wrote a folder another writer holds";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("another asdcap process is writing this run folder"), std::string::npos)
        << e.what();
  }
  fs::remove_all(out);
}

// Library errors name the problem, not a command-line flag.
TEST(DetectPipeline, BadOptionsAreInvalidArguments) {
  DetectOptions o;
  o.data_root = "/nonexistent";
  o.out_dir = "/nonexistent";
  o.k = 0;
  try {
    run_detect(o);
    FAIL();
  } catch (const InvalidArgument& e) {
    EXPECT_EQ(std::string(e.what()).find("--"), std::string::npos) << e.what();
  }
  EXPECT_THROW(make_backend("wav2vec", {}), InvalidArgument);
}

// Corrupt, empty, unreadable (a directory and a dangling link named like clips) and misnamed
// files: the run completes, scores every good clip and lists each bad one with a reason.
TEST(DetectPipeline, BadFilesAreSkippedAndListed) {
  fs::path data = temp_dir("bad_data"), out = temp_dir("bad_out");
  SynthOptions so;
  so.out_dir = data.string();
  so.machines = {"fan"};
  so.ids = {"id_00"};
  so.n_train = 6;
  so.n_test_normal = 3;
  so.n_test_anomaly = 3;
  synthesize_dataset(so);
  fs::path t = data / "fan/test";
  std::ofstream(t / "normal_id_00_00000050.wav") << "RIFF\x10\0\0\0WAVEjunkjunkjunkjunk not audio at all";
  std::ofstream(t / "normal_id_00_00000051.wav");  // empty
  fs::create_directories(t / "anomaly_id_00_00000052.wav");
  fs::create_symlink(data / "gone.wav", data / "fan/train/normal_id_00_00000053.wav");
  fs::copy_file(t / "normal_id_00_00000000.wav", t / "take 3.wav");
  auto s = detect(data, out);
  EXPECT_EQ(s.n_scored, 6);
  auto lines = lines_of(out / "skipped.jsonl");
  ASSERT_EQ(lines.size(), 5u);
  std::map<std::string, std::string> why;
  for (auto& l : lines) {
    auto j = json::parse(l);
    EXPECT_EQ(j["stage"], "detect");
    why[fs::path(j["path"].get<std::string>()).filename().string()] = j["reason"];
  }
  for (auto name : {"normal_id_00_00000050.wav", "normal_id_00_00000051.wav", "anomaly_id_00_00000052.wav",
                    "normal_id_00_00000053.wav", "take 3.wav"}) {
    ASSERT_TRUE(why.count(name)) << name;
    EXPECT_FALSE(why[name].empty()) << name;
  }
  EXPECT_NE(why["anomaly_id_00_00000052.wav"].find("directory"), std::string::npos);
  EXPECT_NE(why["normal_id_00_00000053.wav"].find("dangling"), std::string::npos);
  EXPECT_NE(why["take 3.wav"].find("no known layout"), std::string::npos);
  EXPECT_EQ(lines_of(out / "anomaly_score_fan_id_00.csv").size(), 6u);
  fs::remove_all(data);
  fs::remove_all(out);
}

// An evaluation-style set (no labels in the test names): no AUC, a gamma threshold fitted on the
// training clips' leave-one-out scores.
TEST(DetectPipeline, UnlabelledTestSetUsesGammaThreshold) {
  fs::path data = temp_dir("eval_data"), out = temp_dir("eval_out");
  SynthOptions so;
  so.out_dir = data.string();
  so.machines = {"gearbox"};
  so.ids = {"id_04"};
  so.n_train = 12;
  so.n_test_normal = 3;
  so.n_test_anomaly = 3;
  so.seconds = 8;
  synthesize_dataset(so);
  int i = 0;
  for (auto& e : std::vector<fs::directory_entry>(fs::directory_iterator(data / "gearbox/test"), {})) {
    char name[64];
    std::snprintf(name, sizeof name, "id_04_%08d.wav", i++);
    fs::rename(e.path(), e.path().parent_path() / name);
  }
  auto s = detect(data, out);
  ASSERT_EQ(s.rows.size(), 1u);
  EXPECT_EQ(s.rows[0].threshold_rule, "gamma_q0.9");
  EXPECT_TRUE(std::isnan(s.rows[0].auc));
  EXPECT_GT(s.rows[0].threshold, 0);
  EXPECT_EQ(s.rows[0].n_unknown, 6);
  auto j = json::parse(lines_of(out / "neighbors.jsonl").at(0));
  EXPECT_TRUE(j["label"].is_null());
  fs::remove_all(data);
  fs::remove_all(out);
}

// `asdcap detect` killed with SIGKILL half-way keeps every embedding it committed; the rerun takes
// them from the cache (counted in run.json) and the database passes SQLite's integrity check.
TEST(DetectPipeline, KilledCliRunResumesFromCache) {
  fs::path data = temp_dir("kill_data"), out = temp_dir("kill_out");
  SynthOptions so;
  so.out_dir = data.string();
  so.machines = {"pump"};
  so.ids = {"id_00"};
  so.n_train = 40;
  so.n_test_normal = 10;
  so.n_test_anomaly = 10;
  synthesize_dataset(so);
  const int total = 60;
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    std::freopen("/dev/null", "w", stdout);
    std::freopen("/dev/null", "w", stderr);
    execl(ASDCAP_CLI, ASDCAP_CLI, "detect", "--data", data.c_str(), "--out", out.c_str(), "--threads", "1",
          static_cast<char*>(nullptr));
    _exit(127);
  }
  int64_t at_kill = 0;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(300);
  while (std::chrono::steady_clock::now() < deadline) {
    at_kill = cache_rows(out / "cache.sqlite");
    if (at_kill >= 5) break;
    int st;
    if (waitpid(pid, &st, WNOHANG) == pid) FAIL() << "the CLI ended before it could be killed";
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status));
  at_kill = cache_rows(out / "cache.sqlite");  // rows committed before the kill
  ASSERT_GE(at_kill, 5);
  ASSERT_LT(at_kill, total) << "the run finished before the kill; nothing to resume";
  EXPECT_FALSE(fs::exists(out / "results.csv"));

  std::string cmd = std::string(ASDCAP_CLI) + " detect --data '" + data.string() + "' --out '" + out.string() +
                    "' > '" + (out / "stdout.txt").string() + "' 2>/dev/null";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  auto run = json::parse(read_text_file((out / "run.json").string()));
  EXPECT_EQ(run["n_embedded"].get<int>(), total);
  EXPECT_GE(run["n_cache_hits"].get<int>(), at_kill);
  EXPECT_EQ(cache_rows(out / "cache.sqlite"), total);
  EXPECT_NE(read_text_file((out / "stdout.txt").string()).find("pump"), std::string::npos);
  sqlite3* h = nullptr;
  ASSERT_EQ(sqlite3_open((out / "cache.sqlite").c_str(), &h), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(h, "PRAGMA integrity_check", -1, &st, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)), "ok");
  sqlite3_finalize(st);
  sqlite3_close(h);
  fs::remove_all(data);
  fs::remove_all(out);
}

namespace {

fs::path small_dataset(const std::string& name, const std::vector<std::string>& machines = {"fan"}) {
  fs::path data = temp_dir(name);
  SynthOptions so;
  so.out_dir = data.string();
  so.machines = machines;
  so.ids = {"id_00"};
  so.n_train = 8;
  so.n_test_normal = 3;
  so.n_test_anomaly = 3;
  synthesize_dataset(so);
  return data;
}

void sql(const fs::path& db, const std::string& statement) {
  sqlite3* h = nullptr;
  ASSERT_EQ(sqlite3_open(db.c_str(), &h), SQLITE_OK);
  char* err = nullptr;
  EXPECT_EQ(sqlite3_exec(h, statement.c_str(), nullptr, nullptr, &err), SQLITE_OK) << (err ? err : "");
  sqlite3_free(err);
  sqlite3_close(h);
}

}  // namespace

// Random bytes over pages of cache.sqlite: the rerun recomputes what it cannot read, rebuilds the
// cache, and scores every clip exactly as before (the cache is derived data).
TEST(DetectPipeline, DamagedCacheIsRecomputedNotSkipped) {
  fs::path data = small_dataset("damaged_data"), out = temp_dir("damaged_out");
  const auto first = detect(data, out, 1);
  const std::string scores = read_text_file((out / "anomaly_score_fan_id_00.csv").string());
  fs::path db = out / "cache.sqlite";
  std::mt19937 rng(7);
  // Random bytes over the second half of pages [from, last) of the database file.
  auto scribble = [&](int64_t from, int64_t last) {
    sql(db, "PRAGMA wal_checkpoint(TRUNCATE)");
    std::fstream f(db, std::ios::in | std::ios::out | std::ios::binary);
    const int64_t pages = static_cast<int64_t>(fs::file_size(db)) / 4096;
    ASSERT_GE(pages, 2);
    for (int64_t page = from; page < std::min(last, pages); ++page) {
      f.seekp(page * 4096 + 2048);
      for (int i = 0; i < 2048; ++i) f.put(static_cast<char>(rng()));
    }
  };
  scribble(1, 1 << 20);  // the data pages: reads fail mid-run
  const auto second = detect(data, out, 1);
  EXPECT_EQ(second.n_skipped, 0);
  EXPECT_EQ(second.n_scored, first.n_scored);
  EXPECT_EQ(read_text_file((out / "anomaly_score_fan_id_00.csv").string()), scores);
  scribble(0, 1);  // the schema page: the cache cannot even be opened as it is
  const auto after_header = detect(data, out, 1);
  EXPECT_EQ(after_header.n_skipped, 0);
  EXPECT_EQ(read_text_file((out / "anomaly_score_fan_id_00.csv").string()), scores);
  // The rebuilt cache serves the next run entirely.
  const auto third = detect(data, out, 1);
  EXPECT_EQ(third.n_cache_hits, third.n_embedded);
  fs::remove_all(data);
  fs::remove_all(out);
}

// Each embedding is stored with its checksum: a flipped bit makes that row a miss (recomputed),
// never a changed score.
TEST(DetectPipeline, CachedEmbeddingsAreVerified) {
  fs::path data = small_dataset("checksum_data"), out = temp_dir("checksum_out");
  const auto first = detect(data, out, 1);
  const std::string scores = read_text_file((out / "anomaly_score_fan_id_00.csv").string());
  sql(out / "cache.sqlite",
      "UPDATE embeddings SET data = CAST(zeroblob(length(data)) AS BLOB) WHERE rowid IN "
      "(SELECT rowid FROM embeddings LIMIT 3)");
  const auto second = detect(data, out, 1);
  EXPECT_EQ(second.n_cache_hits, first.n_embedded - 3);
  EXPECT_EQ(read_text_file((out / "anomaly_score_fan_id_00.csv").string()), scores);
  fs::remove_all(data);
  fs::remove_all(out);
}

// A cache of the older layout (no checksums) is rebuilt, not an error.
TEST(DetectPipeline, OlderCacheSchemaIsRebuilt) {
  fs::path data = small_dataset("oldcache_data"), out = temp_dir("oldcache_out");
  sql(out / "cache.sqlite",
      "CREATE TABLE embeddings (sha256 TEXT NOT NULL, backend TEXT NOT NULL, crop TEXT NOT NULL,"
      " dim INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (sha256, backend, crop))");
  const auto s = detect(data, out, 1);
  EXPECT_EQ(s.n_cache_hits, 0);
  EXPECT_EQ(s.n_skipped, 0);
  EXPECT_EQ(cache_rows(out / "cache.sqlite"), s.n_embedded);
  fs::remove_all(data);
  fs::remove_all(out);
}

// Nothing scored is a failure that says why, with nothing published: an empty dataset, a
// misspelled --machine, a dataset whose every clip is unusable; the CLI exits 1.
TEST(DetectPipeline, NothingScoredIsAnError) {
  fs::path empty = temp_dir("none_data"), out = temp_dir("none_out");
  try {
    detect(empty, out);
    ADD_FAILURE() << "no error for an empty dataset";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no test clip could be scored: no clips found"), std::string::npos)
        << e.what();
  }
  fs::path data = small_dataset("none_fan");
  DetectOptions o;
  o.data_root = data.string();
  o.out_dir = out.string();
  o.quiet = true;
  o.machines = {"fna"};
  try {
    run_detect(o);
    ADD_FAILURE() << "no error for a machine filter matching nothing";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("(machine filter: fna): no clips found"), std::string::npos) << e.what();
  }
  for (const auto& e : fs::recursive_directory_iterator(data / "fan/test")) std::ofstream(e.path()) << "not audio";
  try {
    detect(data, out);
    ADD_FAILURE() << "no error when every test clip fails";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("6 skipped, first "), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(out / "run.json"));
  EXPECT_FALSE(fs::exists(out / "results.csv"));
  const std::string cmd =
      std::string(ASDCAP_CLI) + " detect --data '" + empty.string() + "' --out '" + out.string() + "' >/dev/null 2>&1";
  const int status = std::system(cmd.c_str());
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 1);
  fs::remove_all(empty);
  fs::remove_all(data);
  fs::remove_all(out);
}

// A --data that is not a folder is refused before the output folder is created.
TEST(DetectPipeline, BadDataRootCreatesNoOutputFolder) {
  fs::path dir = temp_dir("baddata");
  std::ofstream(dir / "file.txt") << "x";
  EXPECT_THROW(detect(dir / "file.txt", dir / "new"), IoError);
  EXPECT_FALSE(fs::exists(dir / "new"));
  fs::remove_all(dir);
}

namespace {

// Every file of a run folder but the embedding cache and the lock, with its bytes.
std::map<std::string, std::string> run_files_of(const fs::path& out) {
  std::map<std::string, std::string> files;
  for (const auto& e : fs::directory_iterator(out)) {
    const std::string name = e.path().filename().string();
    if (e.is_regular_file() && name.rfind("cache.sqlite", 0) != 0 && name != "run.lock")
      files[name] = read_text_file(e.path().string());
  }
  return files;
}

}  // namespace

// A dataset folder removed while the dataset is being listed (after its parent listed it): the
// run stops with an error naming it, and the previous good run in the output folder stays exactly
// as it was (it was rewritten as a run without that folder's clips).
TEST(DetectPipeline, FolderRemovedDuringListingKeepsThePreviousRun) {
  const fs::path data = small_dataset("vanish_data", {"fan", "pump"}), out = temp_dir("vanish_out");
  DetectOptions o;
  o.data_root = data.string();
  o.out_dir = out.string();
  o.quiet = true;
  ASSERT_EQ(run_detect(o).rows.size(), 2u);
  const auto before = run_files_of(out);
  ASSERT_TRUE(before.count("anomaly_score_pump_id_00.csv"));
  ASSERT_TRUE(before.count("run.json") && before.count("results.csv") && before.count("neighbors.jsonl"));

  const fs::path doomed = data / "pump" / "test";
  o.k = 2;  // a different run: anything it published would differ from the first
  o.on_folder = [&](const std::string& folder) {
    if (fs::path(folder) == doomed) fs::remove_all(doomed);
  };
  try {
    run_detect(o);
    ADD_FAILURE() << "the run went on without " << doomed;
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find(doomed.string() + ": the folder cannot be listed any more"), std::string::npos)
        << e.what();
  }
  EXPECT_FALSE(fs::exists(doomed));
  EXPECT_EQ(run_files_of(out), before);
  const RunSettings settings = read_run_settings(out.string());
  EXPECT_EQ(settings.k, 4);
  EXPECT_EQ(settings.machines, (std::vector<std::string>{"fan", "pump"}));
  fs::remove_all(data);
  fs::remove_all(out);
}

namespace {

struct Cli {
  int code = -1;
  std::string err;
};

// Runs `asdcap ARGS` to the end (stdout discarded), with its exit code and stderr.
Cli cli(const std::vector<std::string>& args, const fs::path& scratch) {
  std::string cmd = "ASDCAP_NO_PROGRESS=1 '" + std::string(ASDCAP_CLI) + "'";
  for (const auto& a : args) cmd += " '" + a + "'";
  const fs::path err = scratch / "cli.err";
  cmd += " >/dev/null 2>'" + err.string() + "' </dev/null";
  const int status = std::system(cmd.c_str());
  Cli r;
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.err = read_text_file(err.string());
  return r;
}

// Starts `asdcap detect` held (ASDCAP_HOLD_BEFORE_RUN_JSON) after writing its files, before
// run.json; returns once it is there.
pid_t start_held_detect(const fs::path& data, const fs::path& out, const std::string& k, const fs::path& hold) {
  std::ofstream(hold) << "";
  const pid_t pid = fork();
  if (pid == 0) {
    std::freopen("/dev/null", "w", stdout);
    std::freopen("/dev/null", "w", stderr);
    ::setenv("ASDCAP_HOLD_BEFORE_RUN_JSON", hold.c_str(), 1);
    execl(ASDCAP_CLI, ASDCAP_CLI, "detect", "--data", data.c_str(), "--out", out.c_str(), "--k", k.c_str(), "--threads",
          "1", static_cast<char*>(nullptr));
    _exit(127);
  }
  const fs::path reached = hold.string() + ".reached";
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (!fs::exists(reached) && std::chrono::steady_clock::now() < deadline) {
    int st;
    if (waitpid(pid, &st, WNOHANG) == pid) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return fs::exists(reached) ? pid : -1;
}

size_t neighbours_per_clip(const fs::path& out) {
  std::set<size_t> counts;
  for (const auto& l : lines_of(out / "neighbors.jsonl")) counts.insert(json::parse(l)["neighbors"].size());
  return counts.size() == 1 ? *counts.begin() : 0;  // 0: lines of two runs mixed
}

}  // namespace

// Through the CLI: `detect --machine fan` over a run of fan + pump that was explained leaves no pump
// score files or explanations in the folder, and `report` shows no pump.
TEST(DetectPipeline, CliRerunWithFewerMachinesLeavesNoTraceOfTheOthers) {
  const fs::path data = small_dataset("cli_fewer_data", {"fan", "pump"}), out = temp_dir("cli_fewer_out");
  ASSERT_EQ(cli({"detect", "--data", data.string(), "--out", out.string()}, out).code, 0);
  const Cli explained = cli({"explain", "--out", out.string(), "--top", "2"}, out);
  ASSERT_EQ(explained.code, 0) << explained.err;
  ASSERT_NE(read_text_file((out / "explanations.jsonl").string()).find("pump/test/"), std::string::npos);
  ASSERT_EQ(cli({"detect", "--data", data.string(), "--out", out.string(), "--machine", "fan"}, out).code, 0);
  const Cli report = cli({"report", "--out", out.string()}, out);
  ASSERT_EQ(report.code, 0) << report.err;
  for (const auto& e : fs::directory_iterator(out)) {
    const std::string name = e.path().filename().string();
    EXPECT_EQ(name.find("pump"), std::string::npos) << name;
    // Not part of the run: the cache, and the earlier answers kept for reuse.
    if (e.is_regular_file() && name != "cli.err" && name.rfind("cache.sqlite", 0) != 0 &&
        name != "explanations.partial.jsonl") {
      EXPECT_EQ(read_text_file(e.path().string()).find("pump"), std::string::npos) << name;
    }
  }
  EXPECT_EQ(read_run_settings(out.string()).machines, std::vector<std::string>{"fan"});
  fs::remove_all(data);
  fs::remove_all(out);
}

// Two CLI detects with different --k on one folder at once: the second is refused with the lock
// message while the first holds the folder, and the folder ends as the first's complete run.
TEST(DetectPipeline, CliConcurrentDetectsOneRefusedFolderConsistent) {
  const fs::path data = small_dataset("cli_two_data"), out = temp_dir("cli_two_out"), scratch = temp_dir("cli_two");
  const pid_t first = start_held_detect(data, out, "2", scratch / "hold");
  ASSERT_GT(first, 0) << "the first detect did not reach the point before run.json";
  const Cli second = cli({"detect", "--data", data.string(), "--out", out.string(), "--k", "3"}, scratch);
  EXPECT_EQ(second.code, 1);
  EXPECT_NE(second.err.find("another asdcap process is writing this run folder"), std::string::npos) << second.err;
  fs::remove(scratch / "hold");
  int status = 0;
  waitpid(first, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  const RunSettings settings = read_run_settings(out.string());  // complete: every listed file there
  EXPECT_EQ(settings.k, 2);
  EXPECT_EQ(neighbours_per_clip(out), 2u);
  fs::remove_all(data);
  fs::remove_all(out);
  fs::remove_all(scratch);
}

// A CLI detect killed (SIGKILL) after writing its files and before run.json, over a complete run
// with another k: explain and report refuse the folder, or see the old run whole, never a mix.
TEST(DetectPipeline, CliDetectKilledBeforeRunJsonIsNeverReadAsAMix) {
  const fs::path data = small_dataset("cli_kill_data"), out = temp_dir("cli_kill_out"), scratch = temp_dir("cli_kill");
  ASSERT_EQ(cli({"detect", "--data", data.string(), "--out", out.string(), "--k", "4"}, scratch).code, 0);
  const pid_t held = start_held_detect(data, out, "2", scratch / "hold");
  ASSERT_GT(held, 0) << "the detect did not reach the point before run.json";
  ASSERT_EQ(neighbours_per_clip(out), 2u) << "the new run's files are not written yet";
  kill(held, SIGKILL);
  int status = 0;
  waitpid(held, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status));
  for (const std::vector<std::string>& args : {std::vector<std::string>{"explain", "--out", out.string(), "--top", "1"},
                                               std::vector<std::string>{"report", "--out", out.string()}}) {
    const Cli r = cli(args, scratch);
    if (r.code == 0) {
      const RunSettings settings = read_run_settings(out.string());
      EXPECT_EQ(static_cast<size_t>(settings.k), neighbours_per_clip(out)) << args[0] << " read a mixed run";
    } else {
      EXPECT_EQ(r.code, 1) << args[0] << ": " << r.err;
      EXPECT_NE(r.err.find("run.json"), std::string::npos) << args[0] << ": " << r.err;
    }
  }
  fs::remove_all(data);
  fs::remove_all(out);
  fs::remove_all(scratch);
}

// A full disk, simulated by a file-size limit on the CLI process (SIGXFSZ ignored: writes fail with
// EFBIG), at the embedding cache's creation, its set-up and its first rows: exit 1, one error line
// naming the cache file and the reason (SQLite alone says "disk I/O error"), nothing published.
TEST(DetectPipeline, CliFileSizeLimitNamesTheCacheAndTheReason) {
  const fs::path data = small_dataset("fsize_data"), scratch = temp_dir("fsize");
  for (const rlim_t kib : {1, 2, 8, 40}) {
    const fs::path out = scratch / ("out_" + std::to_string(kib));
    const fs::path err = scratch / "err.txt";
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      std::freopen("/dev/null", "w", stdout);
      std::freopen(err.c_str(), "w", stderr);
      std::signal(SIGXFSZ, SIG_IGN);
      rlimit lim{kib * 1024, kib * 1024};
      if (setrlimit(RLIMIT_FSIZE, &lim) != 0) _exit(126);
      ::setenv("ASDCAP_NO_PROGRESS", "1", 1);
      execl(ASDCAP_CLI, ASDCAP_CLI, "detect", "--data", data.c_str(), "--out", out.c_str(), "--threads", "1",
            static_cast<char*>(nullptr));
      _exit(127);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFEXITED(status)) << kib;
    EXPECT_EQ(WEXITSTATUS(status), 1) << kib;
    const std::string text = read_text_file(err.string());
    EXPECT_EQ(lines_of(err).size(), 1u) << text;
    EXPECT_NE(text.find((out / "cache.sqlite").string()), std::string::npos) << text;
    EXPECT_NE(text.find("File too large"), std::string::npos) << kib << " KiB: " << text;
    EXPECT_FALSE(fs::exists(out / "run.json")) << kib;
    EXPECT_FALSE(fs::exists(out / "results.csv")) << kib;
  }
  fs::remove_all(data);
  fs::remove_all(scratch);
}
