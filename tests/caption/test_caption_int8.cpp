// int8 weights (asdcap convert --dtype int8, opt-in) against msclap's own outputs for the golden tiny
// models (../shared/golden): text embeddings, audio embeddings and the caption decoder's first-step
// logits stay within the cosines stated in docs/model-files.md ("int8 weights"), and the beam search
// runs to the end. The float32 files' exactness is tested by the golden tests; here only the
// approximation of the quantization is bounded.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>

#include "asdcap/caption.hpp"
#include "asdcap/clap.hpp"
#include "asdcap/convert.hpp"
#include "asdcap/model_file.hpp"
#include "asdcap/npy.hpp"
#include "asdcap/text_encoder.hpp"
#include "text/golden_text.hpp"

using namespace asdcap;
using namespace asdcap::testing_text;

namespace {

// The golden tiny models (CLAP + captioner) converted with --dtype int8, once per test process.
std::shared_ptr<const ModelFile> int8_model() {
  static const auto m = [] {
    namespace fs = std::filesystem;
    const std::string shared = ASDCAP_SHARED_DIR;
    const fs::path dir = fs::temp_directory_path() / ("asdcap_test_int8_" + std::to_string(::getpid()));
    fs::create_directories(dir);
    ConvertOptions o;
    o.clap = shared + "/golden/clap_2023_tiny.pth";
    o.clapcap = shared + "/golden/clapcap_2023_tiny.pth";
    o.vocab = shared + "/assets/gpt2/vocab.json";
    o.merges = shared + "/assets/gpt2/merges.txt";
    o.text_heads = 4;
    o.decoder_heads = 4;
    o.dtype = DType::I8;
    o.out = (dir / "int8.gguf").string();
    convert_model(o);
    auto model = ModelFile::open(o.out);
    fs::remove_all(dir);  // the mapping stays valid
    return model;
  }();
  return m;
}

double cosine(const float* a, const float* b, int64_t n) {
  double ab = 0, aa = 0, bb = 0;
  for (int64_t i = 0; i < n; ++i) ab += double(a[i]) * b[i], aa += double(a[i]) * a[i], bb += double(b[i]) * b[i];
  return ab / std::sqrt(aa * bb);
}

std::vector<float> golden(const std::string& relative) { return read_npy(golden_dir() + "/" + relative).as_float(); }

}  // namespace

TEST(Int8Golden, TextEmbeddings) {
  const TextEncoder encoder(int8_model());
  std::vector<std::string> texts;
  for (const auto& t : manifest()["texts"]) texts.push_back(t["text"]);
  const auto want = golden("text/text_embeddings.npy");
  const auto got = encoder.embed(texts);
  const int64_t d = encoder.dim();
  ASSERT_EQ(got.size(), want.size());
  double worst = 1;
  for (size_t t = 0; t < texts.size(); ++t) worst = std::min(worst, cosine(&got[t * d], &want[t * d], d));
  std::printf("int8 text embeddings: lowest cosine to msclap's %.6f\n", worst);
  EXPECT_GE(worst, 0.9999);
}

TEST(Int8Golden, AudioEmbeddings) {
  const AudioEncoder encoder(int8_model(), "audio.");
  double worst = 1;
  for (const auto& c : manifest()["clips"]) {
    const std::string id = c["id"];
    const auto waveform = golden("audio/" + id + "/waveform.npy");
    const auto want = golden("audio/" + id + "/embedding.npy");
    const auto got = encoder.encode({waveform.data()}).at(0).embedding;
    ASSERT_EQ(got.size(), want.size());
    worst = std::min(worst, cosine(got.data(), want.data(), int64_t(want.size())));
  }
  std::printf("int8 audio embeddings: lowest cosine to msclap's %.6f\n", worst);
  EXPECT_GE(worst, 0.999);
}

TEST(Int8Golden, FirstStepLogitsAndBeamSearch) {
  const Captioner captioner(int8_model());
  const Gpt2& gpt2 = captioner.decoder();
  double worst = 1;
  for (const auto& c : manifest()["captions"]) {
    const std::string dir = "caption/" + c["clip"].get<std::string>();
    const auto prefix = golden(dir + "/mapper_out.npy");
    const auto want = golden(dir + "/logits_step0.npy");
    std::vector<float> hidden(prefix.size()), logits(want.size());
    auto cache = gpt2.make_cache(1, 40);
    gpt2.forward(prefix.data(), 40, cache, hidden.data());
    gpt2.logits(hidden.data() + 39 * 64, 1, logits.data());
    worst = std::min(worst, cosine(logits.data(), want.data(), int64_t(want.size())));
    const BeamSearchResult r = beam_search(gpt2, prefix.data(), 40, 5, 67, 1.f, 220, true);
    EXPECT_EQ(r.beams.size(), 5u);
  }
  std::printf("int8 first-step logits: lowest cosine to msclap's %.6f\n", worst);
  EXPECT_GE(worst, 0.9999);
}
