// asdcap demo: the whole job on a synthetic dataset in one command (the README's first command):
// synthesise machine sounds, detect, explain, write the report, print the results.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>

#include <nlohmann/json.hpp>

#include "asdcap/backend.hpp"
#include "asdcap/detect.hpp"
#include "asdcap/error.hpp"
#include "asdcap/explain.hpp"
#include "asdcap/report.hpp"
#include "asdcap/synth.hpp"
#include "command.hpp"
#include "core/files.hpp"
#include "options.hpp"
#include "training.hpp"

namespace {
namespace fs = std::filesystem;

// The demo trains ae for fewer epochs than detect's 100 so that it stays under a minute on 2 cores
// (docs/ae.md, "In asdcap demo").
asdcap::TrainingOptions demo_training() {
  asdcap::TrainingOptions t;
  t.epochs = 20;
  return t;
}

struct DemoOptions {
  std::string out = "asdcap-demo";
  std::string model;
  uint64_t seed = 1;
  std::string audio = "link";
  bool small = false;
  int threads = 0;
  std::string backend;  // empty: msclap with a model, else acoustic
  asdcap::TrainingOptions training = demo_training();
};

double since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// The dataset is reused when an earlier demo wrote it with the same settings and every file of
// its manifest is still there (synth writes the manifest last).
bool dataset_complete(const std::string& data, const nlohmann::json& settings) {
  std::error_code ec;
  const fs::path marker = fs::path(data) / "demo_settings.json";
  const fs::path manifest = fs::path(data) / "synth_manifest.csv";
  if (!fs::exists(marker, ec) || !fs::exists(manifest, ec)) return false;
  try {
    if (nlohmann::json::parse(asdcap::read_text_file(marker.string())) != settings) return false;
  } catch (const std::exception&) {
    return false;
  }
  std::ifstream in(manifest);
  std::string line;
  std::getline(in, line);
  int files = 0;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    if (!fs::exists(fs::path(data) / line.substr(0, line.find(',')), ec)) return false;
    ++files;
  }
  return files > 0;
}

void run_demo(const DemoOptions& o) {
  const auto t0 = std::chrono::steady_clock::now();
  std::string model = o.model;
  if (model.empty())
    if (const char* env = std::getenv("ASDCAP_MODEL"); env && *env) model = env;
  if (!model.empty() && !fs::is_regular_file(model))
    throw asdcap::UsageError("demo: model file not found: " + model + (o.model.empty() ? " (from ASDCAP_MODEL)" : ""));
  const std::string backend = !o.backend.empty() ? o.backend
                              : model.empty()      ? "acoustic"
                                                   : asdcap::backend_for_model_file(model);
  const bool msclap_model = !model.empty() && asdcap::backend_for_model_file(model) == "msclap";
  asdcap::cli::require_model_for_backend(backend, model);
  fs::create_directories(o.out);
  const std::string data = (fs::path(o.out) / "data").string();

  asdcap::SynthOptions synth;
  synth.out_dir = data;
  synth.seed = o.seed;
  synth.threads = o.threads;
  if (o.small) {
    synth.machines = {"fan", "slider"};
    synth.ids = {"id_00"};
    synth.n_train = 10, synth.n_test_normal = 5, synth.n_test_anomaly = 5;
    synth.seconds = 4.0;
  }
  const nlohmann::json settings = {
      {"seed", synth.seed},       {"machines", synth.machines},         {"ids", synth.ids},
      {"train", synth.n_train},   {"test_normal", synth.n_test_normal}, {"test_anomaly", synth.n_test_anomaly},
      {"seconds", synth.seconds}, {"rate", synth.sample_rate}};
  auto t = std::chrono::steady_clock::now();
  if (dataset_complete(data, settings)) {
    std::fprintf(stderr, "demo: 1/4 dataset already in %s\n", data.c_str());
  } else {
    std::fprintf(stderr, "demo: 1/4 synthesising machine sounds into %s\n", data.c_str());
    auto s = asdcap::synthesize_dataset(synth);
    asdcap::write_file_atomic((fs::path(data) / "demo_settings.json").string(), settings.dump(2) + "\n");
    std::fprintf(stderr, "demo:     %d clips in %.1f s\n", s.n_files, since(t));
  }

  t = std::chrono::steady_clock::now();
  asdcap::DetectOptions detect;
  detect.data_root = data;
  detect.out_dir = o.out;
  detect.backend = backend;
  detect.model_path = backend == "acoustic" || backend == "ae" ? "" : model;
  detect.threads = o.threads;
  detect.training = o.training;
  detect.cancelled = &asdcap::cli::InterruptRequest::requested;
  std::fprintf(stderr, "demo: 2/4 detecting anomalies (backend %s)\n", detect.backend.c_str());
  const auto summary = [&] {
    const asdcap::cli::InterruptRequest interrupt;  // Ctrl-C stops detection cleanly
    return asdcap::run_detect(detect);
  }();
  std::fprintf(stderr, "demo:     %d test clips scored (%d embeddings from cache) in %.1f s\n", summary.n_scored,
               summary.n_cache_hits, since(t));

  t = std::chrono::steady_clock::now();
  asdcap::ExplainOptions explain;
  explain.out_dir = o.out;
  explain.data_root = data;
  explain.model_path = msclap_model ? model : "";  // the CLAP methods need an msclap model
  explain.llm = "offline";
  explain.threads = o.threads;
  std::fprintf(stderr, "demo: 3/4 explaining flagged clips (offline explainer%s)\n",
               explain.model_path.empty() ? ", acoustic evidence" : "");
  const auto ex = asdcap::run_explain(explain);
  std::fprintf(stderr, "demo:     %d clips explained in %.1f s\n", ex.n_explained, since(t));

  t = std::chrono::steady_clock::now();
  std::fprintf(stderr, "demo: 4/4 writing the report\n");
  asdcap::ReportOptions report;
  report.out_dir = o.out;
  report.embed_audio = o.audio == "embed";
  report.threads = o.threads;
  const std::string page = asdcap::build_report(report);
  std::fprintf(stderr, "demo:     report in %.1f s; whole demo %.1f s\n", since(t), since(t0));

  std::printf("%s\n", asdcap::format_results_table(summary).c_str());
  std::error_code ec;
  const fs::path abs = fs::absolute(page, ec);
  std::printf("Report: %s\n", (ec ? page : abs.string()).c_str());
  std::fflush(stdout);
}

void setup(CLI::App& app) {
  auto o = std::make_shared<DemoOptions>();
  auto* sub =
      app.add_subcommand("demo", "The whole job on synthetic machine sounds: dataset, detection, explanations, report");
  sub->add_option("--out", o->out, "Run folder (the dataset goes to DIR/data)")->capture_default_str();
  asdcap::cli::add_model(sub, o->model,
                         "for the msclap or panns backend (from the file); default: $ASDCAP_MODEL, else the "
                         "built-in acoustic backend");
  sub->add_option("--seed", o->seed, "Seed of the synthetic dataset")->capture_default_str();
  sub->add_option("--audio", o->audio, "Report audio players: link or embed")
      ->check(CLI::IsMember({"link", "embed"}))
      ->capture_default_str();
  sub->add_flag("--small", o->small, "A tiny dataset (2 machine types, 1 ID, 4-s clips) for a quick look or a test");
  asdcap::cli::add_threads(sub, o->threads);
  sub->add_option("--backend", o->backend,
                  "Detection backend: acoustic, ae, msclap, panns or laion; default: the one for the model file, else acoustic")
      ->check(CLI::IsMember(asdcap::backend_names()));
  asdcap::cli::add_training(sub, o->training, "--train-seed");
  sub->callback([o] { run_demo(*o); });
}

}  // namespace

ASDCAP_REGISTER_COMMAND(10, setup)
