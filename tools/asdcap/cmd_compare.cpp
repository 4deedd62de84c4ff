// asdcap compare: several detection systems on one dataset, side by side as the papers' Table I.
#include <cstdio>
#include <memory>

#include "asdcap/backend.hpp"
#include "asdcap/compare.hpp"
#include "asdcap/error.hpp"
#include "command.hpp"
#include "options.hpp"
#include "training.hpp"

namespace {

struct CompareArgs {
  asdcap::CompareOptions options;
  std::vector<std::string> backends, models;
  asdcap::CropPolicy crop;  // used when --crop is given; otherwise each backend's default
};

void setup(CLI::App& app) {
  auto args = std::make_shared<CompareArgs>();
  auto* sub = app.add_subcommand(
      "compare", "Run several detection systems on one dataset and tabulate their AUC/pAUC side by side (Table I)");
  auto& o = args->options;
  sub->add_option("--data", o.data_root,
                  "Dataset root: <root>/<machine>/{train,test}/<clip>.wav (DCASE 2020-2025 names)")
      ->required();
  sub->add_option("--out", o.out_dir,
                  "Output folder: one run folder per system (DIR/<label>), table.csv, compare.json, report.html")
      ->required();
  sub->add_option("--backend", args->backends,
                  "A backend to compare (repeatable): the weight-free ones need no model file. Default, when neither "
                  "--backend nor --model is given: every weight-free backend")
      ->check(CLI::IsMember(asdcap::backend_names()));
  sub->add_option("--model", args->models,
                  "A model file to compare (repeatable); its architecture chooses the backend. Columns: the "
                  "--backend systems in the order given, then the --model ones")
      ->check(CLI::ExistingFile);
  sub->add_option("--k", o.detect.k, "Neighbours averaged into the k-NN scores")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000));
  auto* crop = asdcap::cli::add_crop(sub, args->crop, {.random_by_content = true, .cover = "embeddings averaged"})
                   ->default_str("each backend's: whole for panns, random otherwise");
  asdcap::cli::add_channels(sub, o.detect.channels);
  sub->add_option("--machine", o.detect.machines, "Only this machine type (repeatable)");
  asdcap::cli::add_threads(sub, o.detect.threads);
  asdcap::cli::add_training(sub, o.detect.training, "--seed");
  sub->callback([args, crop] {
    auto opts = args->options;
    if (crop->count() > 0) opts.detect.crop = args->crop;
    for (const auto& b : args->backends) {
      asdcap::cli::require_model_for_backend(b, "");
      opts.systems.push_back({"", b, ""});
    }
    for (const auto& m : args->models) opts.systems.push_back({"", "", m});
    const asdcap::cli::InterruptRequest interrupt;  // Ctrl-C stops the running system cleanly
    opts.detect.cancelled = &asdcap::cli::InterruptRequest::requested;
    const auto result = asdcap::run_compare(opts);
    std::fputs(asdcap::format_compare_table(result.table).c_str(), stdout);
    std::fprintf(stderr, "compare: %s/report.html\n", result.out_dir.c_str());
    std::fflush(stdout);
  });
}

}  // namespace

ASDCAP_REGISTER_COMMAND(25, setup)
