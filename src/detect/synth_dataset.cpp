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
#include "core/files.hpp"
#include "core/parallel.hpp"

namespace asdcap {
namespace fs = std::filesystem;

namespace {

// libsndfile virtual I/O into a memory buffer, so that the file itself is written atomically.
struct MemoryFile {
  std::string bytes;
  sf_count_t pos = 0;
};
sf_count_t vio_len(void* u) { return static_cast<sf_count_t>(static_cast<MemoryFile*>(u)->bytes.size()); }
sf_count_t vio_seek(sf_count_t off, int whence, void* u) {
  auto* m = static_cast<MemoryFile*>(u);
  sf_count_t base = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? m->pos : static_cast<sf_count_t>(m->bytes.size());
  m->pos = std::max<sf_count_t>(0, base + off);
  return m->pos;
}
sf_count_t vio_read(void* ptr, sf_count_t count, void* u) {
  auto* m = static_cast<MemoryFile*>(u);
  sf_count_t n =
      std::max<sf_count_t>(0, std::min<sf_count_t>(count, static_cast<sf_count_t>(m->bytes.size()) - m->pos));
  std::memcpy(ptr, m->bytes.data() + m->pos, static_cast<size_t>(n));
  m->pos += n;
  return n;
}
sf_count_t vio_write(const void* ptr, sf_count_t count, void* u) {
  auto* m = static_cast<MemoryFile*>(u);
  if (static_cast<size_t>(m->pos + count) > m->bytes.size()) m->bytes.resize(static_cast<size_t>(m->pos + count));
  std::memcpy(m->bytes.data() + m->pos, ptr, static_cast<size_t>(count));
  m->pos += count;
  return count;
}
sf_count_t vio_tell(void* u) { return static_cast<MemoryFile*>(u)->pos; }

void write_wav_pcm16(const std::string& path, const std::vector<float>& samples, int sample_rate) {
  SF_VIRTUAL_IO vio{vio_len, vio_seek, vio_read, vio_write, vio_tell};
  MemoryFile mem;
  SF_INFO info{};
  info.samplerate = sample_rate;
  info.channels = 1;
  info.format = SF_FORMAT_WAV | SF_FORMAT_PCM_16;
  SNDFILE* f = sf_open_virtual(&vio, SFM_WRITE, &info, &mem);
  if (!f) throw IoError(path + ": cannot encode WAV: " + sf_strerror(nullptr));
  sf_command(f, SFC_SET_CLIPPING, nullptr, SF_TRUE);
  sf_count_t written = sf_write_float(f, samples.data(), static_cast<sf_count_t>(samples.size()));
  sf_close(f);
  if (written != static_cast<sf_count_t>(samples.size())) throw IoError(path + ": cannot encode WAV");
  write_file_atomic(path, mem.bytes);
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
