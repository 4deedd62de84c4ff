// One decode per clip, whatever the number of compared systems: run_compare (run_detect_systems)
// counted through DetectOptions::on_decode, and its run folders equal to separate detect runs.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>

#include "asdcap/compare.hpp"
#include "asdcap/dataset.hpp"
#include "asdcap/detect.hpp"
#include "asdcap/error.hpp"
#include "asdcap/panns.hpp"
#include "asdcap/synth.hpp"
#include "support/golden_model.hpp"
#include "support/scratch_dir.hpp"

using namespace asdcap;
namespace fs = std::filesystem;

namespace {

// Emptied at every call; all removed when the process exits.
fs::path temp_dir(const std::string& name) {
  const fs::path p = test::process_scratch_dir("asdcap_compare_decode_" + name);
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

// Two machine types, one ID each: 6 training, 3 normal and 3 anomalous test clips of 3 s per type.
const fs::path& dataset() {
  static const fs::path data = [] {
    const fs::path d = temp_dir("data");
    SynthOptions so;
    so.out_dir = d.string();
    so.machines = {"fan", "pump"};
    so.ids = {"id_00"};
    so.n_train = 6;
    so.n_test_normal = 3;
    so.n_test_anomaly = 3;
    so.seconds = 3.0;
    synthesize_dataset(so);
    return d;
  }();
  return data;
}

size_t clip_count() { return discover_dataset(dataset().string(), {}).clips.size(); }

// Counts each file's decodes.
struct DecodeCount {
  std::mutex mu;
  std::map<std::string, int> by_path;
  std::function<void(const std::string&)> hook() {
    return [this](const std::string& path) {
      std::lock_guard<std::mutex> lock(mu);
      ++by_path[path];
    };
  }
  int total() {
    int n = 0;
    for (const auto& [p, c] : by_path) n += c;
    return n;
  }
  int most() {
    int n = 0;
    for (const auto& [p, c] : by_path) n = std::max(n, c);
    return n;
  }
};

std::string read(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  EXPECT_TRUE(in) << p;
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// The files of a run folder that hold results (run.json differs by its time stamp and cache counts).
std::vector<std::string> result_files(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string n = e.path().filename().string();
    if (n == "results.csv" || n == "neighbors.jsonl" || n == "skipped.jsonl" || n.rfind("anomaly_score_", 0) == 0 ||
        n.rfind("decision_result_", 0) == 0)
      names.push_back(n);
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::string panns_model() {
  const fs::path out = temp_dir("panns") / "cnn14_tiny.gguf";
  PannsConvertOptions o;
  o.checkpoint = std::string(ASDCAP_SHARED_DIR) + "/golden-panns/Cnn14_tiny.pth";
  o.out = out.string();
  convert_panns(o);
  return out.string();
}

CompareOptions options(const fs::path& out, std::vector<CompareSystem> systems, DecodeCount& count) {
  CompareOptions o;
  o.data_root = dataset().string();
  o.out_dir = out.string();
  o.systems = std::move(systems);
  o.detect.quiet = true;
  o.detect.threads = 2;
  o.detect.training.epochs = 3;
  o.detect.on_decode = count.hook();
  return o;
}

TEST(CompareDecode, OneDecodePerClipForTwoSystems) {
  const fs::path out = temp_dir("two");
  DecodeCount count;
  const CompareResult r = run_compare(options(out, {{"", "acoustic", ""}, {"", "ae", ""}}, count));
  ASSERT_EQ(r.run_dirs.size(), 2u);
  EXPECT_EQ(count.by_path.size(), clip_count());
  EXPECT_EQ(count.total(), static_cast<int>(clip_count()));
  EXPECT_EQ(count.most(), 1);

  // A rerun: acoustic's embeddings all come from its cache, ae (which keeps no per-clip cache)
  // reads every clip again to score it: once each still.
  DecodeCount again;
  run_compare(options(out, {{"", "acoustic", ""}, {"", "ae", ""}}, again));
  EXPECT_EQ(again.total(), static_cast<int>(clip_count()));
  EXPECT_EQ(again.most(), 1);
  const RunSettings s = read_run_settings((out / "acoustic").string());
  EXPECT_EQ(s.n_cache_hits, s.n_embedded);

  // Without the ae a rerun decodes nothing at all.
  DecodeCount cached;
  run_compare(options(out, {{"", "acoustic", ""}}, cached));
  EXPECT_EQ(cached.total(), 0);
  fs::remove_all(out);
}

// acoustic (44.1 kHz), ae (the clip's own rate), msclap (44.1 kHz) and PANNs (32 kHz): still one decode
// per clip, and every run folder holds the same results as a separate detect run of its system.
TEST(CompareDecode, FourSystemsDecodeOnceAndMatchSeparateRuns) {
  const fs::path out = temp_dir("four"), alone = temp_dir("alone");
  const std::string clap = golden_model_path(false), panns = panns_model();
  DecodeCount count;
  const CompareResult r = run_compare(
      options(out, {{"", "acoustic", ""}, {"", "ae", ""}, {"clap", "", clap}, {"panns", "", panns}}, count));
  ASSERT_EQ(r.table.backends, (std::vector<std::string>{"acoustic", "ae", "msclap", "panns"}));
  EXPECT_EQ(count.by_path.size(), clip_count());
  EXPECT_EQ(count.total(), static_cast<int>(clip_count()));
  EXPECT_EQ(count.most(), 1);

  const std::vector<std::pair<std::string, std::string>> systems = {
      {"acoustic", ""}, {"ae", ""}, {"", clap}, {"", panns}};
  for (size_t i = 0; i < systems.size(); ++i) {
    DetectOptions d;
    d.data_root = dataset().string();
    d.out_dir = (alone / r.table.systems[i]).string();
    d.backend = systems[i].first;
    d.model_path = systems[i].second;
    d.quiet = true;
    d.threads = 1;  // another thread count: the results do not depend on it
    d.training.epochs = 3;
    DecodeCount one;
    d.on_decode = one.hook();
    run_detect(d);
    EXPECT_EQ(one.total(), static_cast<int>(clip_count())) << r.table.systems[i];
    const auto names = result_files(d.out_dir);
    ASSERT_EQ(names, result_files(r.run_dirs[i])) << r.table.systems[i];
    EXPECT_GE(names.size(), 5u);
    for (const auto& n : names)
      EXPECT_EQ(read(fs::path(d.out_dir) / n), read(fs::path(r.run_dirs[i]) / n)) << r.table.systems[i] << "/" << n;
  }
  fs::remove_all(out);
  fs::remove_all(alone);
}

// A cache that cannot be written stops the run (nothing published) instead of counting as the
// clips' failures: the CLI under a 48 KB file-size limit, SIGXFSZ ignored so writes fail with EFBIG.
TEST(CompareDecode, AnUnwritableCacheStopsTheRun) {
  const fs::path out = temp_dir("full");
  const std::string command = "bash -c \"trap '' XFSZ; ulimit -f 48; exec " + std::string(ASDCAP_CLI) +
                              " compare --data " + dataset().string() + " --out " + out.string() +
                              " --backend acoustic --threads 2\" >/dev/null 2>" + (out / "stderr.txt").string();
  const int status = std::system(command.c_str());
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 1);
  const std::string message = read(out / "stderr.txt");
  EXPECT_NE(message.find("embedding cache write failed"), std::string::npos) << message;
  EXPECT_EQ(message.find("could be scored"), std::string::npos) << message;  // the run's own error
  EXPECT_FALSE(fs::exists(out / "acoustic" / "run.json"));
  EXPECT_FALSE(fs::exists(out / "compare.json"));
  fs::remove_all(out);
}

TEST(CompareDecode, SystemsRunTogetherShareTheirDataset) {
  DetectOptions a, b;
  a.data_root = dataset().string();
  a.out_dir = (temp_dir("x") / "a").string();
  b = a;
  EXPECT_THROW(run_detect_systems({a, b}), InvalidArgument);  // one folder for two systems
  b.out_dir = (temp_dir("x") / "b").string();
  b.machines = {"fan"};
  EXPECT_THROW(run_detect_systems({a, b}), InvalidArgument);
  EXPECT_THROW(run_detect_systems({}), InvalidArgument);
  fs::remove_all(temp_dir("x"));
}

}  // namespace
