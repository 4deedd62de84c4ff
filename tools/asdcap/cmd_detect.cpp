// asdcap detect: k-NN anomaly scores, DCASE metrics and thresholds for a dataset folder.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <thread>

#include "asdcap/backend.hpp"
#include "asdcap/detect.hpp"
#include "asdcap/error.hpp"
#include "command.hpp"
#include "options.hpp"
#include "training.hpp"

namespace {

struct DetectArgs {
  asdcap::DetectOptions options;
  asdcap::CropPolicy crop;  // used when --crop is given; otherwise the backend's default
};

// ASDCAP_HOLD_BEFORE_RUN_JSON=PATH (for crash and concurrency tests): once a run's files are
// written and before its run.json, create PATH.reached and wait while PATH exists.
std::function<void(const std::string&)> hold_before_run_json() {
  const char* env = std::getenv("ASDCAP_HOLD_BEFORE_RUN_JSON");
  if (!env || !*env) return {};
  return [hold = std::string(env)](const std::string&) {
    std::ofstream(hold + ".reached") << "";
    std::error_code ec;
    while (std::filesystem::exists(hold, ec)) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  };
}

std::string backend_list() {
  std::string list;
  for (const auto& n : asdcap::backend_names()) list += (list.empty() ? "" : ", ") + n;
  return list;
}

void setup(CLI::App& app) {
  auto args = std::make_shared<DetectArgs>();
  auto* sub =
      app.add_subcommand("detect", "Score a DCASE-layout dataset: anomaly scores, AUC/pAUC, thresholds, neighbours");
  auto& o = args->options;
  sub->add_option("--data", o.data_root,
                  "Dataset root: <root>/<machine>/{train,test}/<clip>.wav (DCASE 2020-2025 names)")
      ->required();
  sub->add_option("--out", o.out_dir, "Output folder (created; also holds the embedding cache)")->required();
  sub->add_option("--backend", o.backend,
                  "Embedding backend: " + backend_list() +
                      " (default: the one for --model's file, msclap, panns or laion; acoustic without --model). ae is "
                      "the DCASE 2020 autoencoder, trained on the normal training clips of each machine type; its "
                      "models are kept in OUT/ae-models")
      ->check(CLI::IsMember(asdcap::backend_names()));
  asdcap::cli::add_model(sub, o.model_path, "for the msclap, panns or laion backend (which one: from the file)");
  sub->add_option("--k", o.k, "Neighbours averaged into the score")->capture_default_str()->check(CLI::Range(1, 1000));
  auto* crop = asdcap::cli::add_crop(sub, args->crop, {.random_by_content = true, .cover = "embeddings averaged"})
                   ->default_str("the backend's: whole for panns, random otherwise");
  asdcap::cli::add_channels(sub, o.channels);
  sub->add_option("--machine", o.machines, "Only this machine type (repeatable)");
  asdcap::cli::add_threads(sub, o.threads);
  asdcap::cli::add_training(sub, o.training, "--seed");
  sub->callback([args, crop] {
    auto opts = args->options;
    if (crop->count() > 0) opts.crop = args->crop;
    asdcap::cli::require_model_for_backend(opts.backend, opts.model_path);
    const asdcap::cli::InterruptRequest interrupt;
    opts.cancelled = &asdcap::cli::InterruptRequest::requested;
    opts.before_run_json = hold_before_run_json();
    auto summary = asdcap::run_detect(opts);
    std::fputs(asdcap::format_results_table(summary).c_str(), stdout);
    std::fflush(stdout);
  });
}

}  // namespace

ASDCAP_REGISTER_COMMAND(20, setup)
