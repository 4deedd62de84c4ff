// The golden clips of ../shared/golden (ASDCAP_SHARED_DIR; manifest.json) for the audio tests.
#pragma once
#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

namespace asdcap::test {

inline std::string golden_dir() { return std::string(ASDCAP_SHARED_DIR) + "/golden"; }

struct GoldenClip {
  std::string id, file;
  int sample_rate = 0, channels = 0;
  int64_t frames = 0, flattened_length = 0;
  uint64_t crop_seed = 0;
  std::optional<int64_t> crop_start, randrange_arg;
};

inline std::vector<GoldenClip> golden_clips() {
  std::ifstream in(golden_dir() + "/manifest.json");
  if (!in) return {};
  const auto manifest = nlohmann::json::parse(in);
  std::vector<GoldenClip> clips;
  for (const auto& c : manifest.at("clips")) {
    GoldenClip g;
    g.id = c.at("id");
    g.file = golden_dir() + "/" + c.at("file").get<std::string>();
    g.sample_rate = c.at("sample_rate");
    g.channels = c.at("channels");
    g.frames = c.at("frames");
    g.flattened_length = c.at("flattened_length");
    g.crop_seed = c.at("crop_seed");
    if (!c.at("crop_start").is_null()) g.crop_start = c.at("crop_start").get<int64_t>();
    if (c.contains("randrange_arg")) g.randrange_arg = c.at("randrange_arg").get<int64_t>();
    clips.push_back(g);
  }
  return clips;
}

// Largest |a - b| over the elements where `keep(reference)` holds.
template <typename Keep>
double max_abs_diff(const std::vector<float>& a, const std::vector<float>& reference, Keep keep) {
  double worst = 0.0;
  for (size_t i = 0; i < a.size() && i < reference.size(); ++i)
    if (keep(reference[i])) worst = std::max(worst, std::fabs(double(a[i]) - double(reference[i])));
  return worst;
}
inline double max_abs_diff(const std::vector<float>& a, const std::vector<float>& reference) {
  return max_abs_diff(a, reference, [](float) { return true; });
}

}  // namespace asdcap::test
