#include <gtest/gtest.h>

#include "asdcap/error.hpp"
#include "asdcap/model_file.hpp"
#include "asdcap/npy.hpp"
#include "asdcap/text_encoder.hpp"
#include "compare.hpp"
#include "golden_text.hpp"
#include "support/golden_model.hpp"

using namespace asdcap;
using namespace asdcap::testing_text;

namespace {
std::shared_ptr<const ModelFile> golden_clap() {
  static const auto m = ModelFile::open(golden_model_path(false));
  return m;
}
const TextEncoder& encoder() {
  static const TextEncoder e(golden_clap());
  return e;
}
}  // namespace

TEST(TextEncoder, GoldenHiddenStatesPooledAndEmbeddings) {
  const auto hs = read_npy(golden_dir() + "/text/hidden_states.npy");
  const auto pooled = read_npy(golden_dir() + "/text/pooled.npy").as_float();
  const auto emb = read_npy(golden_dir() + "/text/text_embeddings.npy").as_float();
  ASSERT_EQ(hs.shape.size(), 3u);
  const int64_t L = hs.shape[1], d = hs.shape[2];
  const auto h = hs.as_float();
  const auto& texts = manifest()["texts"];
  const int64_t P = encoder().dim();
  for (size_t t = 0; t < texts.size(); ++t) {
    const auto tr = encoder().trace(texts[t]["text"].get<std::string>());
    ASSERT_EQ(tr.pooled_index, texts[t]["last_index"].get<int64_t>());
    for (int64_t p = 0; p <= tr.pooled_index; ++p)
      EXPECT_TRUE(close_vector(tr.hidden.data() + p * d, h.data() + (int64_t(t) * L + p) * d, d))
          << texts[t]["id"] << " position " << p;
    EXPECT_TRUE(close_vector(tr.pooled.data(), pooled.data() + int64_t(t) * d, d)) << texts[t]["id"];
    EXPECT_TRUE(close_vector(tr.embedding.data(), emb.data() + int64_t(t) * P, P)) << texts[t]["id"];
  }
}

TEST(TextEncoder, BatchOfAllTextsMatchesGolden) {
  const auto emb = read_npy(golden_dir() + "/text/text_embeddings.npy").as_float();
  std::vector<std::string> texts;
  for (const auto& t : manifest()["texts"]) texts.push_back(t["text"]);
  const int64_t P = encoder().dim();
  const auto got = encoder().embed(texts);
  ASSERT_EQ(got.size(), texts.size() * size_t(P));
  for (size_t t = 0; t < texts.size(); ++t)
    EXPECT_TRUE(close_vector(got.data() + int64_t(t) * P, emb.data() + int64_t(t) * P, P)) << texts[t];
  // A batch of one, and the order of texts, do not change a text's embedding.
  const auto one = encoder().embed({texts[13]});
  EXPECT_TRUE(close_vector(one.data(), emb.data() + 13 * P, P));
  EXPECT_TRUE(encoder().embed({}).empty());
}

TEST(TextEncoder, OverlongTextKeepsAllTokens) {
  const auto& o = manifest()["overlong_text"];
  const auto hs = read_npy(golden_dir() + "/text/overlong/hidden_states.npy");
  const auto emb = read_npy(golden_dir() + "/text/overlong/text_embedding.npy").as_float();
  const auto tr = encoder().trace(o["text"].get<std::string>());
  EXPECT_EQ(tr.ids.size(), 106u);
  EXPECT_EQ(tr.pooled_index, 105);
  const int64_t d = hs.shape.back();
  const auto h = hs.as_float();
  ASSERT_EQ(h.size(), size_t(106 * d));
  for (int64_t p = 0; p < 106; ++p)
    EXPECT_TRUE(close_vector(tr.hidden.data() + p * d, h.data() + p * d, d)) << "position " << p;
  EXPECT_TRUE(close_vector(tr.embedding.data(), emb.data(), encoder().dim()));
  // Unlike msclap (which fails to stack 77- and 106-token rows), a batch with other texts works.
  const auto both = encoder().embed({"Vibration", o["text"].get<std::string>()});
  EXPECT_TRUE(close_vector(both.data() + encoder().dim(), emb.data(), encoder().dim()));
}

TEST(TextEncoder, TooLongTextIsAClearError) {
  std::string text;
  while (text.size() < 10000) text += "the pump hums and the bearing whines, ";
  text.resize(10000);
  try {
    encoder().embed({"ok", text});
    FAIL() << "expected an InvalidArgument";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("tokens"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("1024"), std::string::npos) << e.what();
  }
  // Invalid UTF-8 is embedded like its U+FFFD replacement (documented), not an error.
  const auto a = encoder().embed({"bad \xFF byte"});
  const auto b = encoder().embed({"bad \xEF\xBF\xBD byte"});
  EXPECT_EQ(a, b);
}
