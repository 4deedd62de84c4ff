// The golden tiny CNN14 models (../shared/golden-panns) converted to asdcap-panns files, for tests.
// Converted into a per-process temporary folder (removed at exit); each checkpoint once.
#pragma once
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "asdcap/npy.hpp"
#include "asdcap/panns.hpp"
#include "support/scratch_dir.hpp"

namespace pannstest {

inline const std::string& golden_dir() {
  static const std::string d = std::string(ASDCAP_SHARED_DIR) + "/golden-panns/";
  return d;
}

inline std::filesystem::path temp_dir() {
  static const std::filesystem::path dir = asdcap::test::process_scratch_dir("asdcap-panns-test");
  return dir;
}

// checkpoint (a path) -> converted model file, once per process.
inline std::string converted(const std::string& checkpoint, asdcap::DType dtype = asdcap::DType::F32) {
  static std::map<std::string, std::string> done;
  const std::string key = checkpoint + (dtype == asdcap::DType::F16 ? "#f16" : "#f32");
  auto it = done.find(key);
  if (it != done.end()) return it->second;
  const std::string out = (temp_dir() / (std::filesystem::path(checkpoint).stem().string() +
                                         (dtype == asdcap::DType::F16 ? ".f16.gguf" : ".gguf")))
                              .string();
  asdcap::PannsConvertOptions o;
  o.checkpoint = checkpoint;
  o.out = out;
  o.dtype = dtype;
  asdcap::convert_panns(o);
  return done[key] = out;
}

inline std::vector<float> npy(const std::string& model, const std::string& clip, const std::string& stage) {
  return asdcap::read_npy(golden_dir() + model + "/" + clip + "/" + stage + ".npy").as_float();
}

// max |a - b| / max |b|.
inline double rel_to_max(const std::vector<float>& a, const std::vector<float>& b) {
  double worst = 0, scale = 0;
  for (size_t i = 0; i < b.size(); ++i) {
    worst = std::max(worst, std::abs(static_cast<double>(a[i]) - b[i]));
    scale = std::max(scale, std::abs(static_cast<double>(b[i])));
  }
  return worst / std::max(scale, 1e-30);
}

inline double cosine(const std::vector<float>& a, const std::vector<float>& b) {
  double ab = 0, aa = 0, bb = 0;
  for (size_t i = 0; i < a.size(); ++i) ab += double(a[i]) * b[i], aa += double(a[i]) * a[i], bb += double(b[i]) * b[i];
  return ab / std::sqrt(aa * bb);
}

}  // namespace pannstest
