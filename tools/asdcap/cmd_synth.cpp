// asdcap synth: a synthetic machine-sound dataset in the DCASE 2020 layout.
#include <cstdio>
#include <memory>

#include "asdcap/synth.hpp"
#include "command.hpp"

namespace {

void setup(CLI::App& app) {
  auto o = std::make_shared<asdcap::SynthOptions>();
  auto* sub = app.add_subcommand("synth", "generate a synthetic machine-sound dataset (DCASE 2020 layout, with ground truth)");
  sub->add_option("--out", o->out_dir, "output folder")->required();
  sub->add_option("--seed", o->seed, "random seed (same seed, same files)")->capture_default_str();
  sub->add_option("--machines", o->machines, "machine types: fan pump slider valve gearbox")->capture_default_str();
  sub->add_option("--ids", o->ids, "machine IDs (id_NN)")->capture_default_str();
  sub->add_option("--train", o->n_train, "normal training clips per ID")->capture_default_str();
  sub->add_option("--test-normal", o->n_test_normal, "normal test clips per ID")->capture_default_str();
  sub->add_option("--test-anomaly", o->n_test_anomaly, "anomalous test clips per ID")->capture_default_str();
  sub->add_option("--seconds", o->seconds, "clip length in seconds")->capture_default_str();
  sub->add_option("--threads", o->threads, "worker threads (0: all cores)")->capture_default_str();
  sub->callback([o] {
    auto s = asdcap::synthesize_dataset(*o);
    std::printf("wrote %d clips and %s\n", s.n_files, s.manifest.c_str());
  });
}

}  // namespace

ASDCAP_REGISTER_COMMAND(45, setup)
