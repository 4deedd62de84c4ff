// The cached decoder against the naive path (whole sequence recomputed every step, as msclap) on a
// full-size random model: identical tokens. Short on purpose: one embedding, a few steps.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <set>

#include "asdcap/caption.hpp"
#include "asdcap/model_file.hpp"
#include "support/golden_model.hpp"
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

// Batched beam search on the full-size random decoder: batches of 1, 2, 3 and 7 captions give each
// caption's one-at-a-time tokens and scores bit for bit. The stop token is one the first caption
// picks early, so captions finish at different steps.
TEST(CaptionRandomFullSize, BatchedEqualsOneAtATime) {
  const auto model = ModelFile::open(test::random_full_model_path(false, true));
  const Captioner cap(model);
  const Gpt2& gpt2 = cap.decoder();
  std::mt19937 rng(11);
  std::normal_distribution<float> nd;
  std::vector<std::vector<float>> prefixes;
  for (int i = 0; i < 7; ++i) {
    std::vector<float> emb(static_cast<size_t>(cap.embedding_dim()));
    for (auto& v : emb) v = nd(rng);
    prefixes.push_back(cap.prefix_embeddings(emb.data()));
  }
  const int64_t n = static_cast<int64_t>(prefixes[0].size()) / gpt2.n_embd();
  const int max_tokens = 5;
  // The stop token: the token of the first caption's best beam at step 2 (a greedy run).
  const auto probe = beam_search(gpt2, prefixes[0].data(), n, 1, 2, 1.f, -1, true);
  const int64_t stop = probe.slots[0][1];
  std::vector<BeamSearchResult> single;
  std::set<int> steps;
  for (const auto& p : prefixes) {
    single.push_back(beam_search(gpt2, p.data(), n, 3, max_tokens, 1.f, stop, true));
    steps.insert(single.back().steps);
  }
  std::vector<const float*> ptrs;
  for (const auto& p : prefixes) ptrs.push_back(p.data());
  for (size_t count : {size_t{1}, size_t{2}, size_t{3}, size_t{7}}) {
    const std::vector<const float*> some(ptrs.begin(), ptrs.begin() + static_cast<int64_t>(count));
    const auto batched = beam_search_batch(gpt2, some, n, 3, max_tokens, 1.f, stop, count == 7 ? 4 : 16);
    ASSERT_EQ(batched.size(), count);
    for (size_t i = 0; i < count; ++i) {
      EXPECT_EQ(batched[i].steps, single[i].steps) << count << " " << i;
      EXPECT_EQ(batched[i].slots, single[i].slots) << count << " " << i;
      ASSERT_EQ(batched[i].beams.size(), single[i].beams.size());
      for (size_t b = 0; b < single[i].beams.size(); ++b)
        EXPECT_EQ(batched[i].beams[b].score, single[i].beams[b].score) << count << " " << i << " " << b;
    }
  }
  EXPECT_GT(steps.size(), 1u) << "the captions should finish at different steps";
}

// The mapper on several clips at once (each weight matrix read, and widened from 16 bits, once for
// all of them; the clips on the threads) gives each clip's map() bit for bit, on one thread and on
// several: the full-size random captioner (f16 weights) and the golden tiny one (f32 weights).
TEST(CaptionRandomFullSize, MapperBatchEqualsOneAtATime) {
  for (const bool full : {true, false}) {
    const auto model =
        ModelFile::open(full ? test::random_full_model_path(false, true) : test::golden_model_path(true));
    const DType dtype = full ? DType::F16 : DType::F32;
    std::mt19937 rng(5);
    std::normal_distribution<float> nd;
    for (const int threads : {1, 2}) {
      const CaptionMapper mapper(model, threads);
      std::vector<std::vector<float>> inputs;
      std::vector<const float*> ptrs;
      for (int i = 0; i < 5; ++i) {
        std::vector<float> v(static_cast<size_t>(mapper.input_dim()));
        double ss = 0;
        for (auto& x : v) {
          x = nd(rng);
          ss += static_cast<double>(x) * x;
        }
        for (auto& x : v) x = static_cast<float>(x / std::sqrt(ss));
        inputs.push_back(std::move(v));
        ptrs.push_back(inputs.back().data());
      }
      const auto batch = mapper.map_batch(ptrs);
      ASSERT_EQ(batch.size(), ptrs.size());
      for (size_t i = 0; i < ptrs.size(); ++i) {
        const std::vector<float> alone = mapper.map(ptrs[i]);
        ASSERT_EQ(batch[i].size(), static_cast<size_t>(mapper.output_tokens() * mapper.dim()));
        EXPECT_EQ(0, std::memcmp(batch[i].data(), alone.data(), alone.size() * sizeof(float)))
            << "clip " << i << ", threads " << threads << ", " << (dtype == DType::F16 ? "f16" : "f32");
      }
    }
  }
}
