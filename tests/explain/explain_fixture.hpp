// A small synthetic dataset (asdcap synth's generator) with detection already run on it (acoustic
// backend), built once per user in the system temp dir and reused by every explain test process.
// Each test gets its own run folder holding a copy of the detection outputs.
#pragma once
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "asdcap/detect.hpp"
#include "asdcap/synth.hpp"

namespace asdcap::test {

namespace fs = std::filesystem;

// Bump when the generator options or the detection defaults change.
inline fs::path explain_fixture_dir() {
  return fs::temp_directory_path() / ("asdcap-explain-fixture-v3-" + std::to_string(::getuid()));
}

// <fixture>/data (dataset + synth_manifest.csv) and <fixture>/detect (run folder). Built in place
// (detection records absolute paths) under an exclusive lock, so parallel test processes wait.
inline fs::path explain_fixture() {
  const fs::path dir = explain_fixture_dir();
  if (fs::exists(dir / "complete")) return dir;
  const std::string lock_path = dir.string() + ".lock";
  const int lock = ::open(lock_path.c_str(), O_CREAT | O_RDWR, 0600);
  if (lock >= 0) ::flock(lock, LOCK_EX);
  if (!fs::exists(dir / "complete")) {
    fs::remove_all(dir);
    SynthOptions s;
    s.out_dir = (dir / "data").string();
    s.seed = 7;
    s.machines = {"fan", "pump", "slider", "valve", "gearbox"};
    s.ids = {"id_00", "id_02"};
    s.n_train = 12;
    s.n_test_normal = 4;
    s.n_test_anomaly = 8;
    s.seconds = 4.0;
    synthesize_dataset(s);
    DetectOptions d;
    d.data_root = s.out_dir;
    d.out_dir = (dir / "detect").string();
    d.quiet = true;
    run_detect(d);
    std::ofstream(dir / "complete") << "ok\n";
  }
  if (lock >= 0) ::close(lock);  // releases the lock
  return dir;
}

inline std::string fixture_data_root() { return (explain_fixture() / "data").string(); }

// A fresh run folder for one test with the fixture's detection outputs.
inline std::string fresh_run_dir(const std::string& name) {
  const fs::path src = explain_fixture() / "detect";
  const fs::path dst = fs::temp_directory_path() / ("asdcap-explain-" + name + "-" + std::to_string(::getpid()));
  fs::remove_all(dst);
  fs::create_directories(dst);
  for (const auto& e : fs::directory_iterator(src))
    if (e.is_regular_file()) fs::copy_file(e.path(), dst / e.path().filename());
  return dst.string();
}

// synth_manifest.csv: file (relative) -> fault.
inline std::map<std::string, std::string> fixture_faults() {
  std::ifstream in(explain_fixture() / "data" / "synth_manifest.csv");
  std::map<std::string, std::string> faults;
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::stringstream ss(line);
    std::string cell;
    std::vector<std::string> cells;
    while (std::getline(ss, cell, ',')) cells.push_back(cell);
    if (cells.size() == 6) faults[cells[0]] = cells[5];
  }
  return faults;
}

}  // namespace asdcap::test
