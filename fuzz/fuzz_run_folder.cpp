// libFuzzer target: every reader of the run folder (run.json, neighbors.jsonl, skipped.jsonl,
// explanations.jsonl, results.csv, the DCASE score and decision CSVs). The first byte picks the
// file; the rest is its content, written to a folder in /dev/shm (memory) that the public readers
// then read as asdcap does.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "asdcap/error.hpp"
#include "asdcap/run.hpp"

namespace {

namespace fs = std::filesystem;

// The folder of this process, removed at exit. Its path is never destroyed, so that the exit
// handler (which runs after static destructors registered later) can still use it.
const std::string& folder() {
  static const std::string* const dir = [] {
    const fs::path base = fs::is_directory("/dev/shm") ? fs::path("/dev/shm") : fs::temp_directory_path();
    const fs::path d = base / ("asdcap-fuzz-run-" + std::to_string(::getpid()));
    fs::create_directories(d);
    const auto* path = new std::string(d.string());
    std::atexit([] {
      std::error_code ec;
      fs::remove_all(folder(), ec);
    });
    return path;
  }();
  return *dir;
}

void put(const std::string& name, const uint8_t* data, size_t size) {
  std::FILE* f = std::fopen((fs::path(folder()) / name).c_str(), "wb");
  if (!f) __builtin_trap();
  if (size && std::fwrite(data, 1, size, f) != size) __builtin_trap();
  std::fclose(f);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const int mode = data[0] % 7;
  ++data;
  --size;
  const std::string& dir = folder();
  std::vector<std::string> problems;
  try {
    switch (mode) {
      case 0: {
        std::error_code ec;
        for (const auto& e : fs::directory_iterator(dir, ec)) fs::remove(e.path(), ec);
        // The files a run.json may list exist (empty), so that the checks after the listing run.
        for (const std::string& name :
             {std::string(asdcap::run_files::kResults), std::string(asdcap::run_files::kNeighbors),
              std::string(asdcap::run_files::kSkipped), asdcap::run_files::anomaly_scores("fan", "id_00"),
              asdcap::run_files::decision_results("fan", "id_00")})
          put(name, data, 0);
        put(asdcap::run_files::kSettings, data, size);
        asdcap::read_run_settings(dir);
        break;
      }
      case 1:
        put(asdcap::run_files::kNeighbors, data, size);
        asdcap::read_neighbors(dir, &problems);
        break;
      case 2:
        put(asdcap::run_files::kSkipped, data, size);
        asdcap::read_skipped(dir, &problems);
        break;
      case 3:
        put(asdcap::run_files::kExplanations, data, size);
        asdcap::read_explanations((fs::path(dir) / asdcap::run_files::kExplanations).string(), &problems);
        break;
      case 4:
        put(asdcap::run_files::kResults, data, size);
        asdcap::read_results(dir, &problems);
        break;
      case 5:
        put(asdcap::run_files::anomaly_scores("fan", "id_00"), data, size);
        asdcap::read_anomaly_scores(dir, "fan", "id_00", &problems);
        break;
      default:
        put(asdcap::run_files::decision_results("fan", "id_00"), data, size);
        asdcap::read_decision_results(dir, "fan", "id_00", &problems);
        break;
    }
  } catch (const asdcap::Error&) {
  }
  return 0;
}
