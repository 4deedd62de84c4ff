#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "asdcap/error.hpp"
#include "asdcap/npy.hpp"
#include "golden_text.hpp"

using namespace asdcap;
using asdcap::testing_text::golden_dir;
using asdcap::testing_text::gpt2_tokenizer;
using asdcap::testing_text::manifest;

namespace {
int64_t pooled_index(const std::vector<int64_t>& ids) {
  int64_t n = 0;
  for (auto id : ids) n += id != 0;
  return n - 1;
}
// Byte offsets at which the tokens of `text` start.
std::vector<size_t> token_starts(const Tokenizer& tok, const std::vector<int64_t>& ids) {
  std::vector<size_t> starts;
  size_t pos = 0;
  for (auto id : ids) {
    starts.push_back(pos);
    pos += tok.decode_raw({id}).size();
  }
  return starts;
}
}  // namespace

TEST(TextTokenizer, GoldenTextsTokenIdsAndPooledIndex) {
  const auto& tok = gpt2_tokenizer();
  const auto& texts = manifest()["texts"];
  ASSERT_EQ(texts.size(), 14u);
  const auto ids_npy = read_npy(golden_dir() + "/text/input_ids.npy");
  const auto last_npy = read_npy(golden_dir() + "/text/last_index.npy").as_int64();
  ASSERT_EQ(ids_npy.shape, (std::vector<int64_t>{14, 77}));
  const auto all_ids = ids_npy.as_int64();
  for (size_t t = 0; t < texts.size(); ++t) {
    const auto& e = texts[t];
    const auto got = tok.encode_clap_text(e["text"].get<std::string>());
    EXPECT_EQ(got, e["token_ids"].get<std::vector<int64_t>>()) << e["id"];
    EXPECT_EQ(pooled_index(got), e["last_index"].get<int64_t>()) << e["id"];
    EXPECT_EQ(pooled_index(got), last_npy[t]) << e["id"];
    // The padded row msclap fed to GPT-2: our ids, then id 0.
    for (size_t j = 0; j < 77; ++j)
      EXPECT_EQ(all_ids[t * 77 + j], j < got.size() ? got[j] : 0) << e["id"] << " position " << j;
  }
}

TEST(TextTokenizer, OverlongTextKeepsAllTokens) {
  const auto& tok = gpt2_tokenizer();
  const auto& o = manifest()["overlong_text"];
  const auto got = tok.encode_clap_text(o["text"].get<std::string>());
  EXPECT_EQ(got.size(), 106u);
  EXPECT_EQ(got, o["token_ids"].get<std::vector<int64_t>>());
  EXPECT_EQ(pooled_index(got), 105);
  const auto npy = read_npy(golden_dir() + "/text/overlong/input_ids.npy").as_int64();
  EXPECT_EQ(npy, got);
}

TEST(TextTokenizer, KnownGpt2Ids) {
  const auto& tok = gpt2_tokenizer();
  // Well-known GPT-2 ids: "Hello" 15496, " world" 995, "<|endoftext|>" 50256, " " 220, "!" 0.
  EXPECT_EQ(tok.encode("Hello world"), (std::vector<int64_t>{15496, 995}));
  EXPECT_EQ(tok.encode(""), std::vector<int64_t>{});
  EXPECT_EQ(tok.encode_clap_text(""), (std::vector<int64_t>{220, 50256}));
  EXPECT_EQ(tok.eos_id(), 50256);
  EXPECT_EQ(tok.pad_id(), 0);
  EXPECT_EQ(tok.vocab_size(), 50257);
}

TEST(TextTokenizer, ExclamationIsAlwaysALoneToken) {
  const auto& tok = gpt2_tokenizer();
  // In plain GPT-2 "!!" is one token (3228); msclap's pad registration splits every "!".
  EXPECT_EQ(tok.encode("!!"), (std::vector<int64_t>{0, 0}));
  const auto ids = tok.encode("stop! now!? ok !");
  size_t bangs = 0;
  for (auto id : ids) bangs += id == 0;
  EXPECT_EQ(bangs, 3u);
  EXPECT_EQ(tok.decode_raw(ids), "stop! now!? ok !");
  // The special token inside a text is one id, spaces around it kept as their own tokens.
  EXPECT_EQ(tok.encode("a<|endoftext|>b"), (std::vector<int64_t>{64, 50256, 65}));
}

TEST(TextTokenizer, RoundTripOfUnicodeText) {
  const auto& tok = gpt2_tokenizer();
  const std::vector<std::string> texts = {
      "a fan 🌀 whirring 😀😀 and a pump 🚰",        // emoji (4-byte UTF-8)
      "cafe\xCC\x81 nai\xCC\x88ve",              // combining marks
      "Ελληνικά, кириллица, 中文字符, العربية",  // other scripts
      "tabs\tand\nnewlines  \n\n  spaces   ",
      "numbers 12345 3.14 and 'quotes' it's we're I'll",
  };
  for (const auto& t : texts) {
    const auto ids = tok.encode(t);
    EXPECT_FALSE(ids.empty());
    EXPECT_EQ(tok.decode_raw(ids), t);
    for (auto id : ids) EXPECT_TRUE(id >= 0 && id < 50257);
  }
}

TEST(TextTokenizer, CombiningMarkIsNotPartOfTheLetterRun) {
  // \p{L}+ stops at U+0301 (a mark, category Mn): "cafe" and the mark are separate pieces, so a
  // token boundary falls at byte 4.
  const auto& tok = gpt2_tokenizer();
  const auto ids = tok.encode("cafe\xCC\x81");
  const auto starts = token_starts(tok, ids);
  EXPECT_NE(std::find(starts.begin(), starts.end(), 4u), starts.end());
  // Precomposed é is a letter: no boundary between "caf" and "é" is forced by the pattern.
  EXPECT_EQ(tok.decode_raw(tok.encode("café")), "café");
}

TEST(TextTokenizer, InvalidUtf8IsReplacedNotACrash) {
  const auto& tok = gpt2_tokenizer();
  // Documented behaviour: invalid bytes become U+FFFD as Python's decode(errors="replace") does.
  EXPECT_EQ(tok.encode("bad \xFF byte"), tok.encode("bad \xEF\xBF\xBD byte"));
  EXPECT_EQ(tok.encode("cut \xE2\x82"), tok.encode("cut \xEF\xBF\xBD"));      // truncated 3-byte sequence
  EXPECT_EQ(tok.encode("\xC0\xAF"), tok.encode("\xEF\xBF\xBD\xEF\xBF\xBD"));  // overlong: 2 replacements
  EXPECT_EQ(tok.encode(std::string("nul\0byte", 8)).size(), tok.encode("nul byte").size() + 1);
}

TEST(TextTokenizer, LongText) {
  const auto& tok = gpt2_tokenizer();
  std::string text;
  while (text.size() < 10000) text += "the pump hums and the bearing whines, ";
  text.resize(10000);
  const auto ids = tok.encode(text);
  EXPECT_GT(ids.size(), 1024u);
  EXPECT_EQ(tok.decode_raw(ids), text);
}

TEST(TextTokenizer, DecodeCleanupAndInvalidBytes) {
  const auto& tok = gpt2_tokenizer();
  EXPECT_EQ(tok.decode(tok.encode("Hello , world . It is n't , is it ? I 'm sure !")),
            "Hello, world. It isn't, is it? I'm sure!");
  EXPECT_EQ(tok.decode_raw(tok.encode("Hello , world .")), "Hello , world .");
  // A lone byte-level token of a multi-byte character (the parrot emoji is not one GPT-2 token)
  // decodes to U+FFFD.
  const auto dash = tok.encode("\xF0\x9F\xA6\x9C");
  ASSERT_GT(dash.size(), 1u);
  EXPECT_EQ(tok.decode({dash[0]}), "\xEF\xBF\xBD");
  EXPECT_THROW(tok.decode({50257}), Error);
  EXPECT_THROW(tok.decode({-1}), Error);
}

TEST(TextTokenizer, GoldenCaptionTextsDecode) {
  const auto& tok = gpt2_tokenizer();
  for (const auto& c : manifest()["captions"]) {
    for (const char* run : {"beam5", "beam1", "prompt_beam5"}) {
      if (!c.contains(run) || c[run].is_null()) continue;
      for (const auto& b : c[run]["beams"]) {
        const auto ids = b["token_ids"].get<std::vector<int64_t>>();
        const auto len = b["length"].get<size_t>();
        const std::vector<int64_t> used(ids.begin(), ids.begin() + static_cast<long>(std::min(len, ids.size())));
        EXPECT_EQ(tok.decode(used), b["text"].get<std::string>()) << c["clip"] << " " << run;
        EXPECT_EQ(tok.decode_raw(used), b["text_no_cleanup"].get<std::string>()) << c["clip"] << " " << run;
      }
    }
  }
}

TEST(TextTokenizer, PythonCapitalize) {
  EXPECT_EQ(python_capitalize("hello World"), "Hello world");
  EXPECT_EQ(python_capitalize(" browsing BROWSING"), " browsing browsing");
  EXPECT_EQ(python_capitalize("éCOLE"), "École");
  EXPECT_EQ(python_capitalize(""), "");
  for (const auto& c : manifest()["captions"]) {
    const auto& p = c["prompt_beam5"];
    const std::string best = p["beams"].front()["text"];
    EXPECT_EQ(python_capitalize(p["prompt"].get<std::string>() + best), p["caption_with_prompt"].get<std::string>());
    const std::string b5 = c["beam5"]["beams"].front()["text"];
    EXPECT_EQ(python_capitalize(b5), c["beam5"]["caption"].get<std::string>());
  }
}
