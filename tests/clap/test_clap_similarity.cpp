// Similarities against golden/similarity (msclap's compute_similarity on the golden embeddings),
// then end to end: asdcap's own audio embeddings x asdcap's own text embeddings.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "asdcap/text_encoder.hpp"
#include "clap_golden.hpp"

using namespace asdcap;
using namespace asdcap::test;

namespace {
constexpr int64_t kClips = 8, kTexts = 14, kDim = 64;

std::vector<std::string> golden_texts() {
  std::ifstream in(std::string(ASDCAP_SHARED_DIR) + "/golden/manifest.json");
  std::vector<std::string> texts;
  const nlohmann::json manifest = nlohmann::json::parse(in);
  const nlohmann::json& list = manifest.at("texts");
  for (size_t i = 0; i < list.size(); ++i) texts.push_back(list[i].at("text").get<std::string>());
  return texts;
}

double max_diff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double worst = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) worst = std::max(worst, std::fabs(double(a[i]) - b[i]));
  return worst;
}
}  // namespace

TEST(ClapSimilarity, CosineScaledLogitsAndSoftmaxOnGoldenEmbeddings) {
  const auto audio = golden_array("similarity/audio_embeddings.npy");
  const auto text = golden_array("similarity/text_embeddings.npy");
  ASSERT_EQ(audio.size(), static_cast<size_t>(kClips * kDim));
  ASSERT_EQ(text.size(), static_cast<size_t>(kTexts * kDim));
  const auto cos = cosine_matrix(audio.data(), kClips, text.data(), kTexts, kDim);
  EXPECT_LE(max_diff(cos, golden_array("similarity/cosine.npy")), 1e-6);
  const float logit_scale = golden_clap_model()->config().logit_scale;
  EXPECT_FLOAT_EQ(logit_scale, 2.9375f);  // golden README
  const auto logits = scaled_logits(audio.data(), kClips, text.data(), kTexts, kDim, logit_scale);
  EXPECT_LE(max_diff(logits, golden_array("similarity/similarity.npy")), 2e-5);  // values up to 18.9
  EXPECT_LE(max_diff(softmax_rows_copy(logits, kClips, kTexts), golden_array("similarity/softmax_over_texts.npy")),
            1e-6);
}

TEST(ClapSimilarity, ZeroVectorGivesZeroCosineNotNaN) {
  const std::vector<float> a = {0, 0, 0}, b = {1, 2, 3};
  EXPECT_EQ(cosine_matrix(a.data(), 1, b.data(), 1, 3).at(0), 0.f);
}

TEST(ClapSimilarity, EndToEndFromWaveformsAndTexts) {
  std::vector<std::vector<float>> waves;
  std::vector<const float*> ptrs;
  for (const auto& id : golden_clip_ids()) waves.push_back(golden_array("audio/" + id + "/waveform.npy"));
  for (const auto& w : waves) ptrs.push_back(w.data());
  std::vector<float> audio;
  for (const auto& o : golden_encoder().encode(ptrs)) audio.insert(audio.end(), o.embedding.begin(), o.embedding.end());
  const TextEncoder text_encoder(golden_clap_model());
  const auto text = text_encoder.embed(golden_texts());
  ASSERT_EQ(text.size(), static_cast<size_t>(kTexts * kDim));
  const float logit_scale = golden_clap_model()->config().logit_scale;
  const auto logits = scaled_logits(audio.data(), kClips, text.data(), kTexts, kDim, logit_scale);
  // cosines within 1e-5 (both embeddings within the 1e-4 * norm criterion), times exp(2.9375) = 18.9
  EXPECT_LE(
      max_diff(cosine_matrix(audio.data(), kClips, text.data(), kTexts, kDim), golden_array("similarity/cosine.npy")),
      1e-5);
  EXPECT_LE(max_diff(logits, golden_array("similarity/similarity.npy")), 2e-4);
}
