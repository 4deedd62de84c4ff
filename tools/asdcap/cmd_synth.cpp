// asdcap synth: a synthetic machine-sound dataset in the DCASE 2020 layout.
#include <cstdio>
#include <memory>

#include "asdcap/synth.hpp"
#include "command.hpp"
#include "options.hpp"

namespace {

void setup(CLI::App& app) {
  auto o = std::make_shared<asdcap::SynthOptions>();
  auto* sub =
      app.add_subcommand("synth", "Generate a synthetic machine-sound dataset (DCASE 2020 layout, with ground truth)");
  sub->add_option("--out", o->out_dir, "Output folder")->required();
  sub->add_option("--seed", o->seed, "Random seed (same seed, same files)")->capture_default_str();
  sub->add_option("--machines", o->machines, "Machine types: fan pump slider valve gearbox")->capture_default_str();
  sub->add_option("--ids", o->ids, "Machine IDs (id_NN)")->capture_default_str();
  sub->add_option("--train", o->n_train, "Normal training clips per ID")->capture_default_str();
  sub->add_option("--test-normal", o->n_test_normal, "Normal test clips per ID")->capture_default_str();
  sub->add_option("--test-anomaly", o->n_test_anomaly, "Anomalous test clips per ID")->capture_default_str();
  sub->add_option("--seconds", o->seconds, "Clip length in seconds")->capture_default_str();
  asdcap::cli::add_threads(sub, o->threads);
  sub->callback([o] {
    // Every setting comes from a flag: an unknown machine type or a bad count is a bad command line.
    auto s = asdcap::cli::rethrow_for_flags([&] { return asdcap::synthesize_dataset(*o); });
    std::printf("wrote %d clips and %s\n", s.n_files, s.manifest.c_str());
  });
}

}  // namespace

ASDCAP_REGISTER_COMMAND(50, setup)
