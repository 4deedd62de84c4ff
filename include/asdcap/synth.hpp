// Synthetic machine sounds in the DCASE 2020 layout, deterministic by seed: normal clips with
// plausible variation and anomalous clips with physically motivated faults. Feeds tests and the demo.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace asdcap {

struct SynthOptions {
  std::string out_dir;
  uint64_t seed = 1;
  std::vector<std::string> machines = {"fan", "pump", "slider", "valve"};  // also "gearbox"
  std::vector<std::string> ids = {"id_00", "id_02"};
  int n_train = 40, n_test_normal = 15, n_test_anomaly = 15;
  double seconds = 10.0;
  int sample_rate = 16000;
  int threads = 0;  // 0: all cores
};

// Machine types synth knows, and the faults each can show.
std::vector<std::string> synth_machine_types();
std::vector<std::string> synth_faults(const std::string& machine);

struct SynthSummary {
  int n_files = 0;
  std::string manifest;  // <out_dir>/synth_manifest.csv
};

// Writes <out_dir>/<machine>/{train,test}/{normal,anomaly}_id_XX_NNNNNNNN.wav (16-bit PCM mono)
// and <out_dir>/synth_manifest.csv (file,machine,id,split,label,fault). Every file is written
// atomically. Throws InvalidArgument on an unknown machine type or bad sizes.
SynthSummary synthesize_dataset(const SynthOptions& options);

// One clip's samples (in [-1, 1]) without writing anything; fault "none" for a normal clip.
// Deterministic in (seed, machine, id, clip_index, fault).
std::vector<float> synthesize_clip(const std::string& machine, const std::string& id, const std::string& fault,
                                   uint64_t seed, uint64_t clip_index, double seconds = 10.0, int sample_rate = 16000);

}  // namespace asdcap
