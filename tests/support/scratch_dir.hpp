// A test process's own scratch folder under the system temp dir, named after `prefix` and the process
// id, created on first use and removed when the process exits (std::atexit), so that folders kept for
// a whole test binary (datasets and models built once) do not accumulate in /tmp.
#pragma once
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <string>
#include <vector>

namespace asdcap::test {

inline std::filesystem::path process_scratch_dir(const std::string& prefix) {
  namespace fs = std::filesystem;
  static std::mutex mu;
  static std::vector<fs::path>* made = nullptr;  // never destroyed: the atexit handler reads it
  const fs::path dir = fs::temp_directory_path() / (prefix + "_" + std::to_string(::getpid()));
  std::lock_guard<std::mutex> lock(mu);
  if (!made) {
    made = new std::vector<fs::path>();
    std::atexit([] {
      for (const auto& d : *made) {
        std::error_code ec;
        fs::remove_all(d, ec);
      }
    });
  }
  bool known = false;
  for (const auto& d : *made) known |= d == dir;
  if (!known) {
    fs::remove_all(dir);
    made->push_back(dir);
  }
  fs::create_directories(dir);
  return dir;
}

}  // namespace asdcap::test
