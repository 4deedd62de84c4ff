#include <gtest/gtest.h>

#include "asdcap/checkpoint.hpp"
#include "support/golden_model.hpp"

using namespace asdcap;

TEST(Checkpoint, SmokeGolden) {
  auto t = read_torch_checkpoint(std::string(ASDCAP_SHARED_DIR) + "/golden/clap_2023_tiny.pth");
  EXPECT_EQ(t.size(), 179u);
  auto p = golden_model_path(true);
  auto m = ModelFile::open(p);
  printf("%s %zu tensors\n", p.c_str(), m->tensors().size());
  auto& c = m->config();
  printf("embed %d window %d spec %d heads %d %d %d %d nf %d proj %d text %d/%d/%d/%d mapper %d %d %d %d ls %f\n", c.audio.embed_dim, c.audio.window, c.audio.spec_size,
    c.audio.heads[0], c.audio.heads[1], c.audio.heads[2], c.audio.heads[3], c.audio.num_features, c.proj_dim, c.text.vocab, c.text.n_embd, c.text.n_layer, c.text.n_head,
    c.mapper.prefix_length, c.mapper.clip_length, c.mapper.layers, c.mapper.mlp_hidden, c.logit_scale);
}
