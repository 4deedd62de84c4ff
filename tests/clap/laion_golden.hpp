// The golden tiny LAION-CLAP model (../shared/golden-laion) converted to an asdcap-laion file in a
// per-process temporary folder (removed at exit), and readers for its reference arrays.
#pragma once
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "asdcap/laion.hpp"
#include "asdcap/npy.hpp"

namespace laiontest {

inline const std::string& golden_dir() {
  static const std::string d = std::string(ASDCAP_SHARED_DIR) + "/golden-laion/";
  return d;
}
inline std::string golden_checkpoint() { return golden_dir() + "laion_clap_htsat_tiny.pt"; }

// A folder of this test process, removed with everything in it when the process ends.
struct ProcessTempDir {
  std::filesystem::path path =
      std::filesystem::temp_directory_path() / ("asdcap-laion-test-" + std::to_string(::getpid()));
  ProcessTempDir() { std::filesystem::create_directories(path); }
  ~ProcessTempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};
inline const std::filesystem::path& temp_dir() {
  static const ProcessTempDir dir;
  return dir.path;
}

// checkpoint -> converted model file (f32 or f16), converted once per process.
inline std::string converted(const std::string& checkpoint, asdcap::DType dtype = asdcap::DType::F32) {
  static std::map<std::pair<std::string, bool>, std::string> done;
  const bool half = dtype == asdcap::DType::F16;
  std::string& out = done[{checkpoint, half}];
  if (out.empty()) {
    const std::string stem = std::filesystem::path(checkpoint).stem().string();
    const std::string path = (temp_dir() / (stem + (half ? ".f16.gguf" : ".gguf"))).string();
    asdcap::convert_laion({checkpoint, path, dtype});
    out = path;
  }
  return out;
}

inline std::vector<float> npy(const std::string& clip, const std::string& stage) {
  return asdcap::read_npy(golden_dir() + "audio/" + clip + "/" + stage + ".npy").as_float();
}

// An int16 .npy (format 1.0, '<i2', C order): asdcap's reader holds float and int64 arrays only.
inline std::vector<int16_t> npy_int16(const std::string& clip, const std::string& stage) {
  const std::string path = golden_dir() + "audio/" + clip + "/" + stage + ".npy";
  std::ifstream in(path, std::ios::binary);
  const std::string b((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (b.size() < 10 || b.compare(0, 6, "\x93NUMPY") != 0 || b[6] != 1) throw std::runtime_error(path + ": not npy 1.0");
  const size_t header = static_cast<uint8_t>(b[8]) | static_cast<size_t>(static_cast<uint8_t>(b[9])) << 8;
  if (b.find("'<i2'", 10) > 10 + header) throw std::runtime_error(path + ": not int16");
  std::vector<int16_t> v((b.size() - 10 - header) / 2);
  std::memcpy(v.data(), b.data() + 10 + header, v.size() * 2);
  return v;
}

// max |a - b| / max |b|.
inline double rel_to_max(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return 1e30;
  double worst = 0, scale = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    worst = std::max(worst, std::abs(static_cast<double>(a[i]) - b[i]));
    scale = std::max(scale, std::abs(static_cast<double>(b[i])));
  }
  return worst / std::max(scale, 1e-30);
}

inline double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return 1e30;
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(static_cast<double>(a[i]) - b[i]));
  return worst;
}

inline double cosine(const std::vector<float>& a, const std::vector<float>& b) {
  double ab = 0, aa = 0, bb = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    ab += static_cast<double>(a[i]) * b[i];
    aa += static_cast<double>(a[i]) * a[i];
    bb += static_cast<double>(b[i]) * b[i];
  }
  return ab / std::sqrt(aa * bb);
}

}  // namespace laiontest
