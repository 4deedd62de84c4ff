// `detect --backend ae` on small synthetic sets: one model per machine type, kept in the run's
// model cache (a rerun trains nothing and is bit-identical, a corrupt model is trained again), the
// neighbours from the AE's clip embedding, another seed, clips at another sample rate, the 2021+
// layout, cancellation.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "asdcap/ae.hpp"
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

// Two machine types, one ID, 2-s clips: 59 vectors a clip.
fs::path tiny_dataset(const std::string& name, int rate = 16000, std::vector<std::string> machines = {"fan", "pump"},
                      std::vector<std::string> ids = {"id_00"}) {
  fs::path data = temp_dir("ae_" + name);
  SynthOptions so;
  so.out_dir = data.string();
  so.seed = 5;
  so.machines = std::move(machines);
  so.ids = std::move(ids);
  so.n_train = 8;
  so.n_test_normal = 3;
  so.n_test_anomaly = 3;
  so.seconds = 2.0;
  so.sample_rate = rate;
  synthesize_dataset(so);
  return data;
}

DetectOptions ae_options(const fs::path& data, const fs::path& out, uint64_t seed = 1) {
  DetectOptions o;
  o.data_root = data.string();
  o.out_dir = out.string();
  o.backend = "ae";
  o.quiet = true;
  o.threads = 1;  // results do not depend on it; one thread is fastest on a loaded machine
  o.training.epochs = 3;
  o.training.batch_size = 64;
  o.training.seed = seed;
  return o;
}

std::vector<fs::path> model_files(const fs::path& out) {
  std::vector<fs::path> files;
  if (fs::is_directory(out / "ae-models"))
    for (auto& e : fs::directory_iterator(out / "ae-models")) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  return files;
}

std::map<std::string, double> scores_of(const fs::path& out) {
  std::map<std::string, double> s;
  for (auto& l : lines_of(out / "neighbors.jsonl")) {
    auto j = json::parse(l);
    s[j["file"]] = j["score"];
  }
  return s;
}

}  // namespace

// A first run trains one model per machine type and stores it; the outputs have the usual shapes,
// with the AE's scores and the neighbours found by the AE's embedding; a rerun loads the models,
// trains nothing and writes the same bytes.
TEST(DetectAe, TrainsOncePerMachineTypeAndRerunIsIdentical) {
  const fs::path data = tiny_dataset("data"), out = temp_dir("ae_out");
  const DetectSummary first = run_detect(ae_options(data, out));
  EXPECT_EQ(first.n_models_trained, 2);
  EXPECT_EQ(first.n_models_cached, 0);
  EXPECT_EQ(first.n_scored, 12);
  EXPECT_EQ(first.n_skipped, 0);
  EXPECT_EQ(first.n_embedded, 2 * (8 + 6));
  ASSERT_EQ(first.rows.size(), 2u);
  for (const auto& r : first.rows) {
    EXPECT_TRUE(std::isfinite(r.auc)) << r.machine;
    EXPECT_EQ(r.n_train, 8);
  }

  const auto files = model_files(out);
  ASSERT_EQ(files.size(), 2u);
  EXPECT_EQ(files[0].filename().string().rfind("fan.", 0), 0u);
  EXPECT_EQ(files[1].filename().string().rfind("pump.", 0), 0u);
  for (const auto& f : files) {
    EXPECT_TRUE(is_ae_model_file(f.string()));
    const AeModelInfo info = AeModel::load(f.string()).info();
    EXPECT_EQ(info.clips, 8);
    EXPECT_EQ(info.vectors, 8 * 59);
    EXPECT_EQ(info.epochs, 3);
    EXPECT_EQ(info.batch_size, 64);
    EXPECT_EQ(info.seed, 1u);
    EXPECT_EQ(info.sample_rate, 16000);
    EXPECT_EQ(f.filename().string(), info.machine_type + "." + info.training_key.substr(0, 16) + ".gguf");
  }

  const RunSettings settings = read_run_settings(out.string());
  EXPECT_EQ(settings.backend, "ae");
  EXPECT_EQ(settings.backend_identity,
            "ae/v" + std::to_string(kAeBackendVersion) + " epochs=3 batch=64 lr=0.001 seed=1 validation=0.1");
  EXPECT_TRUE(settings.model.empty());

  // The score is the model's mean reconstruction error, not the neighbours' mean distance; the
  // neighbours are training clips of the same ID, nearest first.
  const AeModel fan = AeModel::load(files[0].string());
  for (auto& l : lines_of(out / "neighbors.jsonl")) {
    auto j = json::parse(l);
    ASSERT_EQ(j["neighbors"].size(), 4u);
    double prev = 0;
    for (auto& n : j["neighbors"]) {
      EXPECT_NE(n["file"].get<std::string>().find("/train/normal_id_00_"), std::string::npos);
      EXPECT_GE(n["distance"].get<double>(), prev);
      prev = n["distance"];
    }
    if (j["machine"] == "fan") {
      const AeClipFeatures f = ae_clip_features(j["path"]);
      EXPECT_EQ(j["score"].get<double>(), fan.score(f.data.data(), f.rows));
    }
  }

  const std::string scores = read_text_file((out / "anomaly_score_pump_id_00.csv").string());
  const std::string neighbours = read_text_file((out / "neighbors.jsonl").string());
  const std::string model_bytes = read_text_file(files[1].string());
  const DetectSummary again = run_detect(ae_options(data, out));
  EXPECT_EQ(again.n_models_trained, 0);
  EXPECT_EQ(again.n_models_cached, 2);
  EXPECT_EQ(read_text_file((out / "anomaly_score_pump_id_00.csv").string()), scores);
  EXPECT_EQ(read_text_file((out / "neighbors.jsonl").string()), neighbours);
  EXPECT_EQ(read_text_file(files[1].string()), model_bytes);
  EXPECT_EQ(model_files(out), files);
  fs::remove_all(data);
  fs::remove_all(out);
}

// A cached model that cannot be read (truncated, or not a model at all) is trained again, to the
// same bytes (training is deterministic), and the run's results do not change.
TEST(DetectAe, CorruptCachedModelIsRetrained) {
  const fs::path data = tiny_dataset("corrupt_data", 16000, {"fan"}), out = temp_dir("ae_corrupt_out");
  run_detect(ae_options(data, out));
  const auto files = model_files(out);
  ASSERT_EQ(files.size(), 1u);
  const std::string model_bytes = read_text_file(files[0].string());
  const std::string neighbours = read_text_file((out / "neighbors.jsonl").string());
  for (const std::string& junk : {model_bytes.substr(0, model_bytes.size() / 2), std::string("not a model")}) {
    write_file_atomic(files[0].string(), junk);
    const DetectSummary s = run_detect(ae_options(data, out));
    EXPECT_EQ(s.n_models_trained, 1);
    EXPECT_EQ(s.n_models_cached, 0);
    EXPECT_EQ(read_text_file(files[0].string()), model_bytes);
    EXPECT_EQ(read_text_file((out / "neighbors.jsonl").string()), neighbours);
  }
  fs::remove_all(data);
  fs::remove_all(out);
}

// Another seed trains another model (its own cache file): the scores change, but not by much.
TEST(DetectAe, AnotherSeedChangesScoresSlightly) {
  const fs::path data = tiny_dataset("seed_data", 16000, {"fan"}), out = temp_dir("ae_seed_out");
  DetectOptions one = ae_options(data, out, 1), two = ae_options(data, out, 2);
  one.training.epochs = two.training.epochs = 10;
  run_detect(one);
  const auto a = scores_of(out);
  const DetectSummary s = run_detect(two);
  EXPECT_EQ(s.n_models_trained, 1);
  const auto b = scores_of(out);
  EXPECT_EQ(model_files(out).size(), 2u);
  ASSERT_EQ(a.size(), b.size());
  double mean_change = 0;
  int differ = 0;
  for (auto& [file, score] : a) {
    ASSERT_TRUE(b.count(file));
    differ += score != b.at(file);
    mean_change += std::fabs(b.at(file) - score) / score / static_cast<double>(a.size());
  }
  EXPECT_EQ(differ, static_cast<int>(a.size()));
  EXPECT_LT(mean_change, 0.2);
  std::printf("mean relative score change, seed 1 -> 2: %.4f\n", mean_change);
  fs::remove_all(data);
  fs::remove_all(out);
}

// One model per machine type takes one sample rate: a training clip at another rate is skipped and
// listed, naming the file and both rates; the others are trained on.
TEST(DetectAe, ClipAtAnotherSampleRateIsSkippedAndListed) {
  const fs::path data = tiny_dataset("rate_data", 16000, {"fan"}), other = tiny_dataset("rate_other", 22050, {"fan"});
  const fs::path odd = data / "fan/train/normal_id_00_00000099.wav", out = temp_dir("ae_rate_out");
  fs::copy_file(other / "fan/train/normal_id_00_00000000.wav", odd);
  const DetectSummary s = run_detect(ae_options(data, out));
  EXPECT_EQ(s.n_scored, 6);
  const auto skipped = lines_of(out / "skipped.jsonl");
  ASSERT_EQ(skipped.size(), 1u);
  const json j = json::parse(skipped[0]);
  EXPECT_EQ(j["path"], odd.string());
  const std::string reason = j["reason"];
  EXPECT_NE(reason.find(odd.string()), std::string::npos) << reason;
  EXPECT_NE(reason.find("22050 Hz"), std::string::npos) << reason;
  EXPECT_NE(reason.find("16000 Hz"), std::string::npos) << reason;
  EXPECT_EQ(AeModel::load(model_files(out).at(0).string()).info().clips, 8);
  fs::remove_all(data);
  fs::remove_all(other);
  fs::remove_all(out);
}

// DCASE 2021+ names (sections, domains): one model for the machine type, trained on every
// section's training clips, scores per section.
TEST(DetectAe, SectionLayoutTrainsOneModelPerMachineType) {
  const fs::path synth = tiny_dataset("sections_synth", 16000, {"valve"}, {"id_00", "id_02"});
  const fs::path data = temp_dir("ae_sections"), out = temp_dir("ae_sections_out");
  for (const std::string split : {"train", "test"}) {
    fs::create_directories(data / "valve" / split);
    for (auto& e : fs::directory_iterator(synth / "valve" / split)) {
      const std::string n = e.path().stem().string();  // e.g. normal_id_02_00000001
      const std::string label = n.substr(0, n.find('_')), section = "section_0" + n.substr(n.find("id_") + 4, 1);
      fs::rename(e.path(), data / "valve" / split /
                               (section + "_source_" + split + "_" + label + "_" + n.substr(n.size() - 4) + ".wav"));
    }
  }
  fs::remove_all(synth);
  const DetectSummary s = run_detect(ae_options(data, out));
  EXPECT_EQ(s.n_models_trained, 1);
  ASSERT_EQ(s.rows.size(), 2u);
  EXPECT_EQ(s.rows[0].id, "section_00");
  EXPECT_EQ(s.rows[1].id, "section_02");
  EXPECT_EQ(s.n_scored, 12);
  EXPECT_EQ(AeModel::load(model_files(out).at(0).string()).info().clips, 16);
  fs::remove_all(data);
  fs::remove_all(out);
}

// Cancelling (Ctrl-C in the CLI) during training stops the run with an error and leaves no model
// file, finished or half-written, and no run.json.
TEST(DetectAe, CancelledTrainingLeavesNoModelFile) {
  const fs::path data = tiny_dataset("cancel_data", 16000, {"fan"}), out = temp_dir("ae_cancel_out");
  DetectOptions o = ae_options(data, out);
  o.training.epochs = 50;
  std::atomic<int> polls{0};
  o.cancelled = [&polls] { return ++polls > 40; };  // after the clips are read, within training
  EXPECT_THROW(run_detect(o), AeCancelled);
  EXPECT_GT(polls, 40);
  EXPECT_TRUE(model_files(out).empty());
  EXPECT_FALSE(fs::exists(out / "run.json"));
  fs::remove_all(data);
  fs::remove_all(out);
}

TEST(DetectAe, BadSettingsAreRefused) {
  const fs::path out = temp_dir("ae_bad_out");
  BackendOptions b;
  b.training.epochs = 0;
  EXPECT_THROW(make_backend("ae", b), InvalidArgument);
  b.training.epochs = 1;
  b.training.learning_rate = -1;
  EXPECT_THROW(make_backend("ae", b), InvalidArgument);
  b.training.learning_rate = 1e-3;
  b.training.batch_size = 0;
  EXPECT_THROW(make_backend("ae", b), InvalidArgument);
  const fs::path data = tiny_dataset("bad_data", 16000, {"fan"});
  DetectOptions o = ae_options(data, out);
  o.channels = ChannelMode::Concat;
  EXPECT_THROW(run_detect(o), InvalidArgument);
  fs::remove_all(data);
  fs::remove_all(out);
}

namespace {

std::string shell_arg(const fs::path& p) {
  std::string s(1, '\'');
  s.append(p.string());
  s.push_back('\'');
  return s;
}

// Runs the CLI with `args`; returns the exit code, stderr in `err`.
int cli(const std::string& args, const fs::path& err) {
  const std::string cmd =
      "ASDCAP_NO_PROGRESS=1 " + std::string(ASDCAP_CLI) + " " + args + " >/dev/null 2>" + shell_arg(err);
  const int status = std::system(cmd.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace

// The CLI end to end on an ae run: detect trains, a rerun trains nothing ("0 models trained"),
// explain (acoustic evidence, offline), report and info on the cached model work.
TEST(DetectAeCli, DetectRerunExplainReportInfo) {
  const fs::path data = tiny_dataset("cli_data", 16000, {"fan"}), out = temp_dir("ae_cli_out");
  const fs::path err = out.parent_path() / (out.filename().string() + ".err");
  const std::string detect = "detect --data " + shell_arg(data) + " --out " + shell_arg(out) +
                             " --backend ae --epochs 2 --batch-size 100 --learning-rate 0.002 --seed 7";
  ASSERT_EQ(cli(detect, err), 0) << read_text_file(err.string());
  EXPECT_NE(read_text_file(err.string()).find("1 models trained (0 from cache)"), std::string::npos)
      << read_text_file(err.string());
  const std::string scores = read_text_file((out / "neighbors.jsonl").string());
  ASSERT_EQ(cli(detect, err), 0) << read_text_file(err.string());
  EXPECT_NE(read_text_file(err.string()).find("0 models trained (1 from cache)"), std::string::npos)
      << read_text_file(err.string());
  EXPECT_EQ(read_text_file((out / "neighbors.jsonl").string()), scores);
  EXPECT_EQ(read_run_settings(out.string()).backend_identity,
            "ae/v" + std::to_string(kAeBackendVersion) + " epochs=2 batch=100 lr=0.002 seed=7 validation=0.1");

  ASSERT_EQ(cli("explain --out " + shell_arg(out), err), 0) << read_text_file(err.string());
  EXPECT_TRUE(fs::exists(out / "explanations.jsonl"));
  ASSERT_EQ(cli("report --out " + shell_arg(out), err), 0) << read_text_file(err.string());
  EXPECT_TRUE(fs::exists(out / "report.html"));
  const auto files = model_files(out);
  ASSERT_EQ(files.size(), 1u);
  const std::string info_out = out.parent_path() / (out.filename().string() + ".info");
  ASSERT_EQ(std::system(("ASDCAP_NO_PROGRESS=1 " + std::string(ASDCAP_CLI) + " info " + shell_arg(files[0]) + " >" +
                         shell_arg(info_out) + " 2>/dev/null")
                            .c_str()),
            0);
  const std::string info = read_text_file(info_out);
  EXPECT_NE(info.find("machine type: fan"), std::string::npos) << info;
  EXPECT_NE(info.find("training: 2 epochs, batch 100"), std::string::npos) << info;
  fs::remove(err);
  fs::remove(info_out);
  fs::remove_all(data);
  fs::remove_all(out);
}

// Ctrl-C during training: the CLI stops with a non-zero exit and one error line, and leaves no
// model file (finished or half-written) and no run.json.
TEST(DetectAeCli, SigintStopsTrainingCleanly) {
  const fs::path data = tiny_dataset("sigint_data", 16000, {"fan"}), out = temp_dir("ae_sigint_out");
  const fs::path err = out.parent_path() / (out.filename().string() + ".err");
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    setenv("ASDCAP_NO_PROGRESS", "1", 1);
    std::freopen("/dev/null", "w", stdout);
    std::freopen(err.c_str(), "w", stderr);
    execl(ASDCAP_CLI, ASDCAP_CLI, "detect", "--data", data.c_str(), "--out", out.c_str(), "--backend", "ae", "--epochs",
          "100000", "--threads", "1", static_cast<char*>(nullptr));
    _exit(127);
  }
  bool training = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (!training && std::chrono::steady_clock::now() < deadline) {
    int st;
    if (waitpid(pid, &st, WNOHANG) == pid) FAIL() << "the CLI ended before training: " << read_text_file(err.string());
    std::error_code ec;
    training =
        fs::exists(err, ec) && read_text_file(err.string()).find("training the ae model of fan") != std::string::npos;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(training);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  kill(pid, SIGINT);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status)) << "the CLI was killed by the signal instead of stopping";
  EXPECT_NE(WEXITSTATUS(status), 0);
  const std::string text = read_text_file(err.string());
  const std::string last = text.substr(text.rfind('\n', text.size() - 2) + 1);
  EXPECT_EQ(last.rfind("asdcap: error: autoencoder training cancelled in epoch ", 0), 0u) << text;
  EXPECT_TRUE(model_files(out).empty());
  EXPECT_FALSE(fs::exists(out / "run.json"));
  fs::remove(err);
  fs::remove_all(data);
  fs::remove_all(out);
}
