// synthesize_dataset: the DCASE 2020 folder layout, 16-bit WAV files and synth_manifest.csv.
#include <sndfile.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>

#include "asdcap/error.hpp"
#include "asdcap/synth.hpp"
#include "audio/wav_encode.hpp"
#include "core/files.hpp"
#include "core/parallel.hpp"

namespace asdcap {
namespace fs = std::filesystem;

namespace {

void write_wav_pcm16(const std::string& path, const std::vector<float>& samples, int sample_rate) {
  std::string bytes;
  try {
    bytes = audio::wav_pcm16(samples.data(), samples.size(), sample_rate);
  } catch (const Error& e) {
    throw IoError(path + ": " + e.what());
  }
  write_file_atomic(path, bytes);
}

struct Job {
  std::string machine, id, split, label, fault, rel;
  uint64_t index;
};

}  // namespace

SynthSummary synthesize_dataset(const SynthOptions& o) {
  if (o.out_dir.empty()) throw InvalidArgument("synth: no output folder given");
  if (o.machines.empty()) throw InvalidArgument("synth: no machine types given");
  if (o.n_train < 1 || o.n_test_normal < 0 || o.n_test_anomaly < 0 || o.n_train > 100000 || o.n_test_normal > 100000 ||
      o.n_test_anomaly > 100000)
    throw InvalidArgument("synth: clip counts must be 1..100000 (train) and 0..100000 (test)");
  auto is_id = [](const std::string& id) {
    return id.size() == 5 && id.rfind("id_", 0) == 0 && std::isdigit(static_cast<unsigned char>(id[3])) &&
           std::isdigit(static_cast<unsigned char>(id[4]));
  };
  for (const auto& id : o.ids)
    if (!is_id(id)) throw InvalidArgument("synth: machine ID '" + id + "' is not of the form id_NN");
  for (const auto& m : o.machines) synth_faults(m);  // throws on an unknown type

  std::vector<Job> jobs;
  for (const auto& m : o.machines) {
    auto faults = synth_faults(m);
    for (const auto& id : o.ids) {
      auto name = [&](const char* label, int i) {
        char buf[64];
        std::snprintf(buf, sizeof buf, "%s_%s_%08d.wav", label, id.c_str(), i);
        return std::string(buf);
      };
      for (int i = 0; i < o.n_train; ++i)
        jobs.push_back({m, id, "train", "normal", "none", m + "/train/" + name("normal", i), static_cast<uint64_t>(i)});
      for (int i = 0; i < o.n_test_normal; ++i)
        jobs.push_back({m, id, "test", "normal", "none", m + "/test/" + name("normal", i), 1000000u + i});
      for (int i = 0; i < o.n_test_anomaly; ++i)
        jobs.push_back({m, id, "test", "anomaly", faults[static_cast<size_t>(i) % faults.size()],
                        m + "/test/" + name("anomaly", i), 2000000u + i});
    }
  }
  for (const auto& m : o.machines)
    for (const char* split : {"train", "test"}) {
      std::error_code ec;
      fs::create_directories(fs::path(o.out_dir) / m / split, ec);
      if (ec) throw IoError(o.out_dir + ": cannot create folders: " + ec.message());
    }

  // After a failure the remaining clips are not written; the first error (by clip order) is thrown.
  std::atomic<bool> failed{false};
  parallel_for(o.threads, static_cast<int64_t>(jobs.size()), [&](int64_t i) {
    if (failed.load()) return;
    try {
      const Job& j = jobs[static_cast<size_t>(i)];
      auto samples = synthesize_clip(j.machine, j.id, j.fault, o.seed, j.index, o.seconds, o.sample_rate);
      write_wav_pcm16((fs::path(o.out_dir) / j.rel).string(), samples, o.sample_rate);
    } catch (...) {
      failed = true;
      throw;
    }
  });

  std::string manifest = "file,machine,id,split,label,fault\n";
  for (const auto& j : jobs)
    manifest += j.rel + "," + j.machine + "," + j.id + "," + j.split + "," + j.label + "," + j.fault + "\n";
  SynthSummary s;
  s.n_files = static_cast<int>(jobs.size());
  s.manifest = (fs::path(o.out_dir) / "synth_manifest.csv").string();
  write_file_atomic(s.manifest, manifest);
  return s;
}

}  // namespace asdcap
