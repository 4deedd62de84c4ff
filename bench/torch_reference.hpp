// What bench_text and bench_caption share for their comparison with msclap's computation in
// PyTorch (scripts/dev/msclap_torch_reference.py, run first on the same machine; its folder in
// ASDCAP_MSCLAP_TORCH_DIR): the folder's files, and the wall time of a whole asdcap process.
#pragma once
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>

namespace asdcap::benchsupport {

// The reference folder, or nothing (the benchmark is then skipped with a message saying how to make it).
inline std::optional<std::string> msclap_torch_dir(benchmark::State& state) {
  const char* dir = std::getenv("ASDCAP_MSCLAP_TORCH_DIR");
  if (dir) return std::string(dir) + "/";
  state.SkipWithError("set ASDCAP_MSCLAP_TORCH_DIR to the output folder of scripts/dev/msclap_torch_reference.py");
  return std::nullopt;
}

inline nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return nlohmann::json::parse(s.str());
}

// The best wall time of `repeats` runs of the asdcap CLI with `args` (output discarded); a failing
// run throws, naming the command.
inline double best_process_seconds(const std::string& args, int repeats) {
  const std::string command = std::string(ASDCAP_CLI) + " " + args + " > /dev/null 2>&1";
  double best = 1e30;
  for (int i = 0; i < repeats; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    if (std::system(command.c_str()) != 0) throw std::runtime_error("failed: " + command);
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

}  // namespace asdcap::benchsupport
