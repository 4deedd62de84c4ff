// Swin's relative position index and shifted-window masks as computed by asdcap vs the buffers
// msclap's PyTorch code saved in the golden checkpoint (relative_position_index, attn_mask).
#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <string>

#include "asdcap/checkpoint.hpp"
#include "asdcap/nn.hpp"

namespace {

const std::map<std::string, asdcap::CheckpointTensor>& golden_checkpoint() {
  static const auto tensors = [] {
    std::map<std::string, asdcap::CheckpointTensor> m;
    for (auto& t : asdcap::read_torch_checkpoint(std::string(ASDCAP_SHARED_DIR) + "/golden/clap_2023_tiny.pth"))
      m.emplace(t.name, std::move(t));
    return m;
  }();
  return tensors;
}

template <typename T>
std::vector<T> values(const asdcap::CheckpointTensor& t) {
  std::vector<T> v(t.data.size() / sizeof(T));
  std::memcpy(v.data(), t.data.data(), t.data.size());
  return v;
}

}  // namespace

TEST(NnSwinReference, RelativePositionBiasFollowsCheckpointIndex) {
  const auto& ck = golden_checkpoint();
  const std::string prefix = "audio_encoder.base.htsat.layers.";
  int checked = 0;
  for (int stage = 0; stage < 4; ++stage) {
    const auto it = ck.find(prefix + std::to_string(stage) + ".blocks.0.attn.relative_position_index");
    ASSERT_NE(it, ck.end());
    const auto index = values<int64_t>(it->second);
    ASSERT_EQ(index.size(), 64u * 64u);
    const int64_t heads = 3, window = 8, rows = 15 * 15;
    std::vector<float> table(rows * heads);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t h = 0; h < heads; ++h) table[r * heads + h] = static_cast<float>(r * heads + h);
    const auto bias = asdcap::nn::relative_position_bias(table.data(), window, heads);
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t ij = 0; ij < 64 * 64; ++ij) ASSERT_EQ(bias[h * 4096 + ij], float(index[ij] * heads + h));
    ++checked;
  }
  EXPECT_EQ(checked, 4);
}

TEST(NnSwinReference, ShiftedWindowMaskEqualsCheckpointAttnMask) {
  const auto& ck = golden_checkpoint();
  const int64_t sides[3] = {64, 32, 16};
  for (int stage = 0; stage < 3; ++stage) {
    const auto it = ck.find("audio_encoder.base.htsat.layers." + std::to_string(stage) + ".blocks.1.attn_mask");
    ASSERT_NE(it, ck.end()) << "stage " << stage;
    const auto expected = values<float>(it->second);
    const auto mask = asdcap::nn::shifted_window_mask(sides[stage], sides[stage], 8, 4);
    ASSERT_EQ(mask.size(), expected.size());
    EXPECT_EQ(mask, expected) << "stage " << stage;
  }
  // Unshifted blocks and the last (one-window) stage carry no mask.
  EXPECT_EQ(ck.count("audio_encoder.base.htsat.layers.0.blocks.0.attn_mask"), 0u);
  EXPECT_EQ(ck.count("audio_encoder.base.htsat.layers.3.blocks.1.attn_mask"), 0u);
}
