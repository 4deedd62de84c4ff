// asdcap detect: k-NN anomaly scores, DCASE metrics and thresholds for a dataset folder.
#include <cstdio>
#include <memory>

#include "asdcap/backend.hpp"
#include "asdcap/detect.hpp"
#include "asdcap/error.hpp"
#include "command.hpp"

namespace {

struct DetectArgs {
  asdcap::DetectOptions options;
  std::string crop = "random", channels = "mean";
};

void setup(CLI::App& app) {
  auto args = std::make_shared<DetectArgs>();
  auto* sub = app.add_subcommand("detect", "score a DCASE-layout dataset: anomaly scores, AUC/pAUC, thresholds, neighbours");
  auto& o = args->options;
  sub->add_option("--data", o.data_root, "dataset root: <root>/<machine>/{train,test}/<clip>.wav (DCASE 2020-2025 names)")->required();
  sub->add_option("--out", o.out_dir, "output folder (created; also holds the embedding cache)")->required();
  sub->add_option("--backend", o.backend, "embedding backend: acoustic (no weights) or msclap")
      ->capture_default_str()->check(CLI::IsMember(asdcap::backend_names()));
  sub->add_option("--model", o.model_path, "model file (GGUF) for --backend msclap");
  sub->add_option("--k", o.k, "neighbours averaged into the score")->capture_default_str()->check(CLI::Range(1, 1000));
  sub->add_option("--crop", args->crop,
                  "7-s window(s) per clip: random (seeded by the clip's content hash), random:SEED, offset:N, cover")
      ->capture_default_str();
  sub->add_option("--channels", args->channels, "multi-channel files: mean (average) or concat (msclap's behaviour)")
      ->capture_default_str()->check(CLI::IsMember({"mean", "concat"}));
  sub->add_option("--machine", o.machines, "only this machine type (repeatable)");
  sub->add_option("--threads", o.threads, "worker threads (0: all cores)")->capture_default_str()->check(CLI::Range(0, 1024));
  sub->callback([args] {
    auto opts = args->options;
    opts.crop = asdcap::CropPolicy::parse(args->crop);
    opts.channels = args->channels == "concat" ? asdcap::ChannelMode::Concat : asdcap::ChannelMode::Mean;
    auto summary = asdcap::run_detect(opts);
    std::fputs(asdcap::format_results_table(summary).c_str(), stdout);
    std::fflush(stdout);
  });
}

}  // namespace

ASDCAP_REGISTER_COMMAND(40, setup)
