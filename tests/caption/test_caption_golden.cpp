// The captioner against msclap's own outputs (../shared/golden/caption): mapper, first-step logits,
// and beam search tokens/scores/texts for every clip (beam 5, beam 1, with the "Sounds like" prompt).
#include <gtest/gtest.h>

#include "asdcap/caption.hpp"
#include "asdcap/error.hpp"
#include "asdcap/model_file.hpp"
#include "asdcap/npy.hpp"
#include "support/golden_model.hpp"
#include "text/compare.hpp"
#include "text/golden_text.hpp"

using namespace asdcap;
using namespace asdcap::testing_text;

namespace {
std::shared_ptr<const ModelFile> golden_model() {
  static const auto m = ModelFile::open(golden_model_path(true));
  return m;
}
const Captioner& captioner() {
  static const Captioner c(golden_model());
  return c;
}
std::string clip_dir(const nlohmann::json& c) { return golden_dir() + "/caption/" + c["clip"].get<std::string>(); }

// The golden run `run` ("beam5", "beam1", "prompt_beam5") of clip entry c against a search result.
void expect_same_search(const nlohmann::json& c, const std::string& run, const BeamSearchResult& r,
                        const Tokenizer& tok) {
  const auto& g = c[run];
  const std::string where = c["clip"].get<std::string>() + " " + run;
  EXPECT_EQ(r.steps, g["steps_run"].get<int>()) << where;
  const auto slots = read_npy(clip_dir(c) + "/" + run + "_tokens.npy");
  ASSERT_EQ(slots.shape.size(), 2u) << where;
  const auto flat = slots.as_int64();
  ASSERT_EQ(int64_t(r.slots.size()), slots.shape[0]) << where;
  for (size_t b = 0; b < r.slots.size(); ++b) {
    const std::vector<int64_t> want(flat.begin() + int64_t(b) * slots.shape[1],
                                    flat.begin() + int64_t(b + 1) * slots.shape[1]);
    EXPECT_EQ(r.slots[b], want) << where << " slot " << b;
  }
  const auto& beams = g["beams"];
  ASSERT_EQ(r.beams.size(), beams.size()) << where;
  for (size_t i = 0; i < beams.size(); ++i) {
    const auto& w = beams[i];
    EXPECT_EQ(r.beams[i].tokens.size(), w["length"].get<size_t>()) << where << " rank " << i;
    const auto ids = w["token_ids"].get<std::vector<int64_t>>();
    const std::vector<int64_t> used(ids.begin(),
                                    ids.begin() + int64_t(std::min(ids.size(), w["length"].get<size_t>())));
    EXPECT_EQ(r.beams[i].tokens, used) << where << " rank " << i;
    // Scores: float32 sums over up to 67 steps; golden selection margins are >= 4e-4.
    EXPECT_NEAR(r.beams[i].score, w["score"].get<double>(), 2e-5) << where << " rank " << i;
    EXPECT_EQ(tok.decode(r.beams[i].tokens), w["text"].get<std::string>()) << where << " rank " << i;
  }
}
}  // namespace

TEST(CaptionGolden, Mapper) {
  for (const auto& c : manifest()["captions"]) {
    const auto emb = read_npy(clip_dir(c) + "/clapcap_audio_embedding.npy").as_float();
    const auto want = read_npy(clip_dir(c) + "/mapper_out.npy");
    ASSERT_EQ(want.shape, (std::vector<int64_t>{40, 64}));
    const auto w = want.as_float();
    const auto got = captioner().prefix_embeddings(emb.data());
    ASSERT_EQ(got.size(), w.size());
    for (int64_t r = 0; r < 40; ++r)
      EXPECT_TRUE(close_vector(got.data() + r * 64, w.data() + r * 64, 64)) << c["clip"] << " row " << r;
    // The mapper alone, fed msclap's normalised prefix.
    const auto pn = read_npy(clip_dir(c) + "/prefix_normalized.npy").as_float();
    CaptionMapper mapper(golden_model());
    const auto got2 = mapper.map(pn.data());
    EXPECT_TRUE(close_vector(got2.data(), w.data(), int64_t(w.size()))) << c["clip"];
  }
}

TEST(CaptionGolden, FirstStepLogits) {
  const Gpt2& gpt2 = captioner().decoder();
  for (const auto& c : manifest()["captions"]) {
    const auto prefix = read_npy(clip_dir(c) + "/mapper_out.npy").as_float();
    const auto want = read_npy(clip_dir(c) + "/logits_step0.npy").as_float();
    ASSERT_EQ(want.size(), 50257u);
    std::vector<float> hidden(prefix.size()), logits(want.size());
    gpt2.forward_nocache(prefix.data(), 1, 40, hidden.data());
    gpt2.logits(hidden.data() + 39 * 64, 1, logits.data());
    EXPECT_TRUE(close_vector(logits.data(), want.data(), int64_t(want.size()))) << c["clip"];
    // The cached path gives the same first step.
    auto cache = gpt2.make_cache(1, 40);
    gpt2.forward(prefix.data(), 40, cache, hidden.data());
    gpt2.logits(hidden.data() + 39 * 64, 1, logits.data());
    EXPECT_TRUE(close_vector(logits.data(), want.data(), int64_t(want.size()))) << c["clip"];
  }
}

// The cached decoder (what asdcap runs) from msclap's own mapper output: every run of every clip.
TEST(CaptionGolden, BeamSearchTokensFromGoldenPrefix) {
  const Gpt2& gpt2 = captioner().decoder();
  const Tokenizer& tok = captioner().tokenizer();
  for (const auto& c : manifest()["captions"]) {
    const auto prefix = read_npy(clip_dir(c) + "/mapper_out.npy").as_float();
    expect_same_search(c, "beam5", beam_search(gpt2, prefix.data(), 40, 5, 67, 1.f, 220, true), tok);
    if (c.contains("beam1"))
      expect_same_search(c, "beam1", beam_search(gpt2, prefix.data(), 40, 1, 67, 1.f, 220, true), tok);
    // Prompt "Sounds like": its token embeddings follow the 40 prefix vectors.
    const auto ids = c["prompt_beam5"]["prompt_token_ids"].get<std::vector<int64_t>>();
    ASSERT_EQ(tok.encode(c["prompt_beam5"]["prompt"].get<std::string>()), ids);
    std::vector<float> p = prefix;
    p.resize(p.size() + ids.size() * 64);
    gpt2.token_embeddings(ids.data(), int64_t(ids.size()), p.data() + 40 * 64);
    expect_same_search(c, "prompt_beam5", beam_search(gpt2, p.data(), 42, 5, 67, 1.f, 220, true), tok);
  }
}

// The naive oracle (whole sequence recomputed every step, as msclap) gives msclap's tokens too
// (three clips, to keep the test short; the cached path is checked on all eight above).
TEST(CaptionGolden, NaivePathMatchesMsclap) {
  const Gpt2& gpt2 = captioner().decoder();
  const Tokenizer& tok = captioner().tokenizer();
  for (const auto& c : manifest()["captions"]) {
    if (!c.contains("beam1")) continue;
    const auto prefix = read_npy(clip_dir(c) + "/mapper_out.npy").as_float();
    expect_same_search(c, "beam5", beam_search(gpt2, prefix.data(), 40, 5, 67, 1.f, 220, false), tok);
  }
}

// End to end from the captioner's audio embedding: normalisation, mapper, search, decode, capitalize.
TEST(CaptionGolden, CaptionerFromAudioEmbedding) {
  for (const auto& c : manifest()["captions"]) {
    if (!c.contains("beam1")) continue;  // the three clips with every run
    const auto emb = read_npy(clip_dir(c) + "/clapcap_audio_embedding.npy").as_float();
    CaptionOptions o;
    const auto r5 = captioner().caption_embedding(emb.data(), o);
    EXPECT_EQ(r5.caption, c["beam5"]["caption"].get<std::string>()) << c["clip"];
    ASSERT_EQ(r5.beams.size(), 5u);
    for (size_t i = 0; i < 5; ++i) {
      EXPECT_EQ(r5.beams[i].text, c["beam5"]["msclap_output_texts"][i].get<std::string>()) << c["clip"] << " " << i;
      EXPECT_NEAR(r5.beams[i].score, c["beam5"]["beams"][i]["score"].get<double>(), 2e-5) << c["clip"] << " " << i;
    }
    EXPECT_EQ(r5.beams[0].text, c["generate_caption_output"].get<std::string>());
    o.beam = 1;
    const auto r1 = captioner().caption_embedding(emb.data(), o);
    EXPECT_EQ(r1.caption, c["beam1"]["caption"].get<std::string>()) << c["clip"];
    o.beam = 5;
    o.prompt = "Sounds like";
    const auto rp = captioner().caption_embedding(emb.data(), o);
    EXPECT_EQ(rp.caption, c["prompt_beam5"]["caption_with_prompt"].get<std::string>()) << c["clip"];
    EXPECT_EQ(rp.beams[0].tokens, c["prompt_beam5"]["beams"].front()["token_ids"].get<std::vector<int64_t>>());
  }
}

TEST(CaptionGolden, BadOptionsAreClearErrors) {
  const auto emb = read_npy(golden_dir() + "/caption/c01_hum_16k_pcm16_10s/clapcap_audio_embedding.npy").as_float();
  CaptionOptions o;
  o.beam = 0;
  EXPECT_THROW(captioner().caption_embedding(emb.data(), o), InvalidArgument);
  o.beam = 5;
  o.max_tokens = 0;
  EXPECT_THROW(captioner().caption_embedding(emb.data(), o), InvalidArgument);
  o.max_tokens = 2000;
  EXPECT_THROW(captioner().caption_embedding(emb.data(), o), InvalidArgument);
  std::vector<float> zero(emb.size(), 0.f);
  EXPECT_THROW(captioner().caption_embedding(zero.data(), CaptionOptions{}), Error);
}

TEST(CaptionGolden, ModelWithoutCaptionerIsAClearError) {
  const auto clap_only = ModelFile::open(golden_model_path(false));
  try {
    Captioner c(clap_only);
    FAIL() << "expected ModelError";
  } catch (const ModelError& e) {
    EXPECT_NE(std::string(e.what()).find("no captioner"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("cap.mapper"), std::string::npos) << e.what();
  }
}

namespace {
void expect_identical(const BeamSearchResult& a, const BeamSearchResult& b, const std::string& where) {
  EXPECT_EQ(a.steps, b.steps) << where;
  EXPECT_EQ(a.slots, b.slots) << where;
  EXPECT_EQ(a.slot_lengths, b.slot_lengths) << where;
  ASSERT_EQ(a.beams.size(), b.beams.size()) << where;
  for (size_t i = 0; i < a.beams.size(); ++i) {
    EXPECT_EQ(a.beams[i].tokens, b.beams[i].tokens) << where << " rank " << i;
    EXPECT_EQ(a.beams[i].score, b.beams[i].score) << where << " rank " << i;  // bit for bit
  }
}
}  // namespace

// Every golden clip's search in one batch (and in batches of 1, 2, 3): the same tokens and scores as
// each clip alone, which still match msclap.
TEST(CaptionGolden, BatchedBeamSearchEqualsOneAtATime) {
  const Gpt2& gpt2 = captioner().decoder();
  const auto& tok = captioner().tokenizer();
  std::vector<std::vector<float>> prefixes;
  std::vector<nlohmann::json> clips;
  for (const auto& c : manifest()["captions"]) {
    prefixes.push_back(read_npy(clip_dir(c) + "/mapper_out.npy").as_float());
    clips.push_back(c);
  }
  ASSERT_GE(prefixes.size(), 2u);
  std::vector<const float*> ptrs;
  for (const auto& p : prefixes) ptrs.push_back(p.data());
  for (int beam : {5, 1}) {
    std::vector<BeamSearchResult> single;
    for (const auto& p : prefixes) single.push_back(beam_search(gpt2, p.data(), 40, beam, 67, 1.f, 220, true));
    for (int max_batch : {1, 2, 3, 16}) {
      const auto batched = beam_search_batch(gpt2, ptrs, 40, beam, 67, 1.f, 220, max_batch);
      ASSERT_EQ(batched.size(), prefixes.size());
      for (size_t i = 0; i < prefixes.size(); ++i) {
        const std::string where = clips[i]["clip"].get<std::string>() + " beam " + std::to_string(beam) +
                                  " max_batch " + std::to_string(max_batch);
        expect_identical(batched[i], single[i], where);
        if (beam == 5) expect_same_search(clips[i], "beam5", batched[i], tok);
      }
    }
  }
  // A caption listed twice, and an empty list.
  const auto twice = beam_search_batch(gpt2, {ptrs[0], ptrs[0]}, 40, 5, 67, 1.f, 220);
  expect_identical(twice[0], twice[1], "same prefix twice");
  EXPECT_TRUE(beam_search_batch(gpt2, {}, 40, 5, 67, 1.f, 220).empty());
  EXPECT_THROW(beam_search_batch(gpt2, ptrs, 40, 5, 67, 1.f, 220, 0), InvalidArgument);
}

// The captioner's batched API: every clip's caption and beams, with and without a prompt, as alone.
TEST(CaptionGolden, CaptionEmbeddingsBatchedEqualsAlone) {
  std::vector<std::vector<float>> embs;
  for (const auto& c : manifest()["captions"])
    embs.push_back(read_npy(clip_dir(c) + "/clapcap_audio_embedding.npy").as_float());
  std::vector<const float*> ptrs;
  for (const auto& e : embs) ptrs.push_back(e.data());
  for (const std::string prompt : {"", "Sounds like"}) {
    CaptionOptions o;
    o.prompt = prompt;
    const auto all = captioner().caption_embeddings(ptrs, o, 2);
    ASSERT_EQ(all.size(), embs.size());
    for (size_t i = 0; i < embs.size(); ++i) {
      const auto one = captioner().caption_embedding(embs[i].data(), o);
      EXPECT_EQ(all[i].caption, one.caption) << i;
      ASSERT_EQ(all[i].beams.size(), one.beams.size());
      for (size_t b = 0; b < one.beams.size(); ++b) {
        EXPECT_EQ(all[i].beams[b].tokens, one.beams[b].tokens);
        EXPECT_EQ(all[i].beams[b].score, one.beams[b].score);
        EXPECT_EQ(all[i].beams[b].text, one.beams[b].text);
      }
    }
  }
}
