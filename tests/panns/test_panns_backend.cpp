// PANNs CNN14 as an embedding backend: the crop rule, make_backend from the model file's
// architecture, a detection run on synthetic clips (cached, rerun from the cache, any thread count),
// and explain's acoustic method on that run.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "asdcap/backend.hpp"
#include "asdcap/detect.hpp"
#include "asdcap/error.hpp"
#include "asdcap/explain.hpp"
#include "asdcap/run.hpp"
#include "asdcap/synth.hpp"
#include "panns_golden.hpp"

using namespace asdcap;
using pannstest::converted;
using pannstest::golden_dir;
namespace fs = std::filesystem;

namespace {

std::string cnn14() { return converted(golden_dir() + "Cnn14_tiny.pth"); }
std::string cnn14_16k() { return converted(golden_dir() + "Cnn14_16k_tiny.pth"); }

std::string text_of(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Two machine types, one ID, 4-s clips at 16 kHz (resampled to 32 kHz for Cnn14).
const fs::path& dataset() {
  static const fs::path data = [] {
    const fs::path d = pannstest::temp_dir() / "data";
    synthesize_dataset({.out_dir = d.string(),
                        .seed = 5,
                        .machines = {"fan", "slider"},
                        .ids = {"id_00"},
                        .n_train = 6,
                        .n_test_normal = 3,
                        .n_test_anomaly = 3,
                        .seconds = 4.0});
    return d;
  }();
  return data;
}

DetectSummary detect_panns(const fs::path& out, int threads) {
  DetectOptions o;
  o.data_root = dataset().string();
  o.out_dir = out.string();
  o.model_path = cnn14();  // no backend: chosen from the file
  o.threads = threads;
  o.quiet = true;
  return run_detect(o);
}

// Backend options for a model file, one thread.
BackendOptions options(const std::string& model) {
  BackendOptions o;
  o.model_path = model;
  o.threads = 1;
  return o;
}

}  // namespace

TEST(PannsBackend, FromTheModelFile) {
  EXPECT_EQ(backend_for_model_file(cnn14()), "panns");
  const auto& names = backend_names();
  EXPECT_NE(std::find(names.begin(), names.end(), "panns"), names.end());
  auto b = make_backend("panns", options(cnn14()));
  const auto model = PannsModel::open(cnn14(), 1);
  EXPECT_EQ(b->name(), "panns");
  EXPECT_EQ(b->dim(), 256);
  EXPECT_EQ(b->sample_rate(), 32000);
  EXPECT_EQ(b->default_crop().kind, CropPolicy::Kind::Whole);
  EXPECT_EQ(b->identity(), std::string("panns/") + panns_maths_version() + "/" + model->identity());
  EXPECT_EQ(make_backend("panns", options(cnn14_16k()))->sample_rate(), 16000);
  // The two variants are different models: different identities.
  EXPECT_NE(make_backend("panns", options(cnn14_16k()))->identity(), b->identity());
  EXPECT_THROW(make_backend("panns", options("")), InvalidArgument);
}

TEST(PannsBackend, WrongArchitectureNamesTheFile) {
  // A PANNs file for the msclap backend: one line naming the file and the backend it is for.
  try {
    make_backend("msclap", options(cnn14()));
    FAIL() << "msclap accepted a PANNs model file";
  } catch (const ModelError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find(cnn14() + ": a panns model file, not one for the msclap backend"), std::string::npos) << m;
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
  }
  // A GGUF file of an architecture no backend runs; a file that is not GGUF at all.
  const std::string other = (pannstest::temp_dir() / "other.gguf").string();
  {
    std::string bytes = text_of(cnn14());
    const auto at = bytes.find("asdcap-panns");
    ASSERT_NE(at, std::string::npos);
    bytes.replace(at, 12, "asdcap-xxxxx");
    std::ofstream(other, std::ios::binary) << bytes;
  }
  try {
    backend_for_model_file(other);
    FAIL() << "an unknown architecture was accepted";
  } catch (const ModelError& e) {
    EXPECT_NE(std::string(e.what()).find(other + ": no embedding backend runs GGUF architecture 'asdcap-xxxxx'"),
              std::string::npos)
        << e.what();
  }
  EXPECT_THROW(make_backend("panns", options(other)), ModelError);
  const std::string wav = golden_dir() + "inputs/32000/c01_hum.wav";
  EXPECT_THROW(backend_for_model_file(wav), FormatError);
}

TEST(PannsBackend, CropRule) {
  const auto model = PannsModel::open(cnn14(), 1);
  auto b = make_backend("panns", options(cnn14()));
  const auto signal = load_audio(golden_dir() + "inputs/32000/c05_long_10s.wav", 32000);
  ASSERT_EQ(signal.size(), 320000u);
  // whole: the golden embedding of the whole clip.
  const auto whole = b->embed(signal, b->default_crop());
  EXPECT_GE(pannstest::cosine(whole, pannstest::npy("cnn14", "c05_long_10s", "embedding")), 0.99999);
  EXPECT_EQ(whole, model->embed(signal, 1));
  // offset:N: the 7-s window from sample N at 32 kHz.
  const std::vector<float> window(signal.begin() + 32000, signal.begin() + 32000 + 7 * 32000);
  EXPECT_EQ(b->embed(signal, CropPolicy::parse("offset:32000")), model->embed(window, 1));
  // cover: the mean of the two 7-s windows (the last ending at the clip's end).
  const std::vector<float> first(signal.begin(), signal.begin() + 224000), last(signal.end() - 224000, signal.end());
  WindowMean mean;
  mean.add(model->embed(first, 1));
  mean.add(model->embed(last, 1));
  EXPECT_EQ(b->embed(signal, CropPolicy::parse("cover")), mean.mean());
  // A whole clip shorter than CNN14's minimum is refused; other crops tile it to 7 s.
  const std::vector<float> tiny(signal.begin(), signal.begin() + 9000);
  EXPECT_THROW(b->embed(tiny, b->default_crop()), InvalidArgument);
  EXPECT_EQ(b->embed(tiny, CropPolicy::parse("offset:0")).size(), 256u);
}

TEST(PannsBackend, DetectCachesAndRerunsIdentically) {
  const fs::path out = pannstest::temp_dir() / "run";
  const auto first = detect_panns(out, 2);
  EXPECT_EQ(first.n_embedded, 24);
  EXPECT_EQ(first.n_cache_hits, 0);
  EXPECT_EQ(first.n_scored, 12);
  EXPECT_EQ(first.n_skipped, 0);
  const RunSettings s = read_run_settings(out.string());
  EXPECT_EQ(s.backend, "panns");
  EXPECT_EQ(s.backend_identity, make_backend("panns", options(cnn14()))->identity());
  EXPECT_EQ(s.crop, "whole");
  EXPECT_EQ(s.model, cnn14());
  const std::string results = text_of(out / "results.csv"), neighbors = text_of(out / "neighbors.jsonl");

  // A rerun embeds nothing and writes the same results.
  const auto again = detect_panns(out, 2);
  EXPECT_EQ(again.n_cache_hits, 24);
  EXPECT_EQ(text_of(out / "results.csv"), results);
  EXPECT_EQ(text_of(out / "neighbors.jsonl"), neighbors);

  // One thread, a fresh folder: the same bits.
  const fs::path serial = pannstest::temp_dir() / "run1";
  const auto one = detect_panns(serial, 1);
  EXPECT_EQ(one.n_cache_hits, 0);
  EXPECT_EQ(text_of(serial / "results.csv"), results);

  // An explicit crop is applied and recorded; its embeddings are cached under their own key.
  DetectOptions o;
  o.data_root = dataset().string();
  o.out_dir = out.string();
  o.backend = "panns";
  o.model_path = cnn14();
  o.crop = CropPolicy::parse("offset:16000");
  o.quiet = true;
  const auto cropped = run_detect(o);
  EXPECT_EQ(cropped.n_cache_hits, 0);
  EXPECT_EQ(read_run_settings(out.string()).crop, "offset:16000");

  // explain: the acoustic method works on a PANNs run; the CLAP methods ask for an msclap model.
  ExplainOptions e;
  e.out_dir = out.string();
  e.threads = 2;
  const auto ex = run_explain(e);
  EXPECT_GT(ex.n_explained, 0);
  EXPECT_EQ(ex.n_errors, 0);
  e.model_path = cnn14();
  try {
    run_explain(e);
    FAIL() << "explain took a PANNs model for the CLAP methods";
  } catch (const InvalidArgument& err) {
    EXPECT_NE(std::string(err.what())
                  .find(cnn14() + " is a panns model file: captions and similarities need an "
                                  "msclap model"),
              std::string::npos)
        << err.what();
  }
}
