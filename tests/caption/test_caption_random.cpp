// The cached decoder against the naive path (whole sequence recomputed every step, as msclap) on a
// full-size random model: identical tokens. Short on purpose: one embedding, a few steps.
#include <gtest/gtest.h>

#include <random>

#include "asdcap/caption.hpp"
#include "asdcap/model_file.hpp"
#include "support/random_model.hpp"

using namespace asdcap;

TEST(CaptionRandomFullSize, CachedEqualsNaive) {
  const auto model = ModelFile::open(test::random_full_model_path(false, true));
  const Captioner cap(model);
  ASSERT_EQ(cap.decoder().n_embd(), 768);
  std::mt19937 rng(3);
  std::normal_distribution<float> nd;
  std::vector<float> emb(static_cast<size_t>(cap.embedding_dim()));
  for (auto& v : emb) v = nd(rng);
  const auto prefix = cap.prefix_embeddings(emb.data());
  const int64_t n = static_cast<int64_t>(prefix.size()) / 768;
  const int steps = 4;
  const auto cached = beam_search(cap.decoder(), prefix.data(), n, 5, steps, 1.f, 220, true);
  const auto naive = beam_search(cap.decoder(), prefix.data(), n, 5, steps, 1.f, 220, false);
  EXPECT_EQ(cached.steps, naive.steps);
  EXPECT_EQ(cached.slots, naive.slots);
  ASSERT_EQ(cached.beams.size(), naive.beams.size());
  for (size_t i = 0; i < cached.beams.size(); ++i) {
    EXPECT_EQ(cached.beams[i].tokens, naive.beams[i].tokens) << i;
    EXPECT_NEAR(cached.beams[i].score, naive.beams[i].score, 1e-4) << i;
  }
  // Greedy too.
  const auto g1 = beam_search(cap.decoder(), prefix.data(), n, 1, steps, 1.f, 220, true);
  const auto g2 = beam_search(cap.decoder(), prefix.data(), n, 1, steps, 1.f, 220, false);
  EXPECT_EQ(g1.slots, g2.slots);
}
