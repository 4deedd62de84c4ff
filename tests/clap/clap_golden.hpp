// Shared helpers of the CLAP tests: the golden clips, their arrays and the comparisons.
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "asdcap/clap.hpp"
#include "asdcap/npy.hpp"
#include "support/golden_model.hpp"

namespace asdcap::test {

inline const std::vector<std::string>& golden_clip_ids() {
  static const std::vector<std::string> ids = {
      "c01_hum_16k_pcm16_10s", "c02_clicks_16k_pcm16_10s",  "c03_gap_16k_pcm16_10s", "c04_short_16k_pcm16_3s",
      "c05_44k1_f32_7s",       "c06_stereo_22k05_pcm16_5s", "c07_48k_pcm24_8s",      "c08_short_32k_pcm16_0p5s"};
  return ids;
}

inline std::vector<float> golden_array(const std::string& relative) {
  return read_npy(std::string(ASDCAP_SHARED_DIR) + "/golden/" + relative).as_float();
}

inline std::shared_ptr<const ModelFile> golden_clap_model() {
  static const auto model = ModelFile::open(golden_model_path(false));
  return model;
}

inline const AudioEncoder& golden_encoder() {
  static const AudioEncoder encoder(golden_clap_model(), "audio.");
  return encoder;
}

inline double max_abs(const std::vector<float>& v) {
  double m = 0;
  for (float x : v) m = std::max(m, static_cast<double>(std::fabs(x)));
  return m;
}

// Largest |a - ref| divided by max |ref| (the scale of the array).
inline double relative_max_error(const std::vector<float>& a, const std::vector<float>& ref) {
  EXPECT_EQ(a.size(), ref.size());
  double worst = 0;
  for (size_t i = 0; i < a.size() && i < ref.size(); ++i) worst = std::max(worst, std::fabs(double(a[i]) - ref[i]));
  return worst / std::max(1e-30, max_abs(ref));
}

inline double cosine(const std::vector<float>& a, const std::vector<float>& b) {
  double ab = 0, aa = 0, bb = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    ab += double(a[i]) * b[i];
    aa += double(a[i]) * a[i];
    bb += double(b[i]) * b[i];
  }
  return ab / std::sqrt(aa * bb);
}

// The acceptance criterion for embeddings (docs/clap.md, "Exactness"): cosine >= 0.99999 and
// max |a - ref| <= 1e-4 * ||ref||.
inline void expect_embedding_close(const std::vector<float>& a, const std::vector<float>& ref,
                                   const std::string& what) {
  ASSERT_EQ(a.size(), ref.size()) << what;
  double norm = 0, worst = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    norm += double(ref[i]) * ref[i];
    worst = std::max(worst, std::fabs(double(a[i]) - ref[i]));
  }
  EXPECT_GE(cosine(a, ref), 0.99999) << what;
  EXPECT_LE(worst, 1e-4 * std::sqrt(norm)) << what;
}

}  // namespace asdcap::test
