// Neither threads nor batching change results at all: every GEMM of the encoder runs on packed
// weights (nn::PackedLinear), whose output elements are the same chain of multiply-adds wherever a row
// falls, and every other kernel works row by row or window by window. So a clip's embedding and tag
// scores are bit-identical alone, in a batch of 7, and with 1 or 2 threads (msclap itself differs by
// 1.3e-6 between batched and single clips, golden README).
#include <gtest/gtest.h>

#include <cstdio>

#include "asdcap/audio.hpp"
#include "clap_golden.hpp"

using namespace asdcap;
using namespace asdcap::test;

namespace {

std::vector<std::vector<float>> golden_waveforms(size_t n) {
  std::vector<std::vector<float>> w;
  for (size_t i = 0; i < n; ++i) w.push_back(golden_array("audio/" + golden_clip_ids()[i] + "/waveform.npy"));
  return w;
}

std::vector<const float*> pointers(const std::vector<std::vector<float>>& w) {
  std::vector<const float*> p;
  for (const auto& x : w) p.push_back(x.data());
  return p;
}

}  // namespace

TEST(ClapBatching, BatchOfSevenEqualsOneByOne) {
  const auto waves = golden_waveforms(7);
  const auto batched = golden_encoder().encode(pointers(waves));
  ASSERT_EQ(batched.size(), 7u);
  for (size_t i = 0; i < waves.size(); ++i) {
    const auto single = golden_encoder().encode({waves[i].data()}).at(0);
    double norm = 0, worst = 0, worst_tag = 0;
    for (size_t d = 0; d < single.embedding.size(); ++d) {
      norm += double(single.embedding[d]) * single.embedding[d];
      worst = std::max(worst, std::fabs(double(batched[i].embedding[d]) - single.embedding[d]));
    }
    for (size_t d = 0; d < single.clipwise.size(); ++d)
      worst_tag = std::max(worst_tag, std::fabs(double(batched[i].clipwise[d]) - single.clipwise[d]));
    EXPECT_EQ(batched[i].embedding, single.embedding) << golden_clip_ids()[i];
    EXPECT_EQ(batched[i].clipwise, single.clipwise) << golden_clip_ids()[i];
    EXPECT_EQ(batched[i].latent, single.latent) << golden_clip_ids()[i];
    std::printf("%s: batch-7 vs single max |diff| %.3g (norm %.3g)\n", golden_clip_ids()[i].c_str(), worst,
                std::sqrt(norm));
    expect_embedding_close(batched[i].embedding, golden_array("audio/" + golden_clip_ids()[i] + "/embedding.npy"),
                           golden_clip_ids()[i]);
  }
}

TEST(ClapBatching, OneAndTwoThreadsGiveEqualBits) {
  const auto waves = golden_waveforms(7);
  const AudioEncoder one_thread(golden_clap_model(), "audio.", {1}), two_threads(golden_clap_model(), "audio.", {2});
  const auto one = one_thread.encode(pointers(waves));
  const auto two = two_threads.encode(pointers(waves));
  ASSERT_EQ(one.size(), two.size());
  for (size_t i = 0; i < one.size(); ++i) {
    EXPECT_EQ(one[i].embedding, two[i].embedding) << i;
    EXPECT_EQ(one[i].clipwise, two[i].clipwise) << i;
  }
}

TEST(ClapBatching, MoreWindowsThanOneBatch) {
  // 10 windows: two forward passes (8 + 2) inside encode(); outputs in input order.
  auto waves = golden_waveforms(8);
  waves.push_back(waves[0]);
  waves.push_back(waves[3]);
  const auto out = golden_encoder().encode(pointers(waves));
  ASSERT_EQ(out.size(), 10u);
  EXPECT_EQ(out[8].embedding, out[0].embedding);
  EXPECT_EQ(out[9].embedding, out[3].embedding);
  expect_embedding_close(out[9].embedding, golden_array("audio/" + golden_clip_ids()[3] + "/embedding.npy"), "10th");
}
