// CNN14 and CNN14_16k against the original PyTorch code's intermediates (../shared/golden-panns),
// stage by stage, for six clips per model; the same weights read from the other checkpoint
// container; the minimum length; f16 storage; thread-count independence.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <fstream>
#include <iterator>

#include "asdcap/audio.hpp"
#include "asdcap/error.hpp"
#include "modelio/gguf.hpp"
#include "modelio/half.hpp"
#include "panns/cnn14.hpp"
#include "panns_golden.hpp"
#include "torch_files.hpp"

using namespace asdcap;
using namespace pannstest;

namespace {

struct ModelCase {
  const char* dir;         // golden folder
  const char* checkpoint;  // golden file
  int rate;
};
const ModelCase kModels[] = {{"cnn14", "Cnn14_tiny.pth", 32000}, {"cnn14_16k", "Cnn14_16k_tiny.pth", 16000}};
const char* const kClips[] = {"c01_hum", "c02_clicks", "c03_gap", "c04_short_3s", "c05_long_10s", "c06_burst_0p5s"};

std::vector<float> clip_samples(const ModelCase& m, const std::string& clip) {
  DecodedAudio a = decode_audio(golden_dir() + "inputs/" + std::to_string(m.rate) + "/" + clip + ".wav");
  EXPECT_EQ(a.info.sample_rate, m.rate);
  EXPECT_EQ(a.info.channels, 1);
  return a.interleaved;
}

// [t][f][c] -> [c][t][f], the reference's layout.
std::vector<float> to_ctf(const panns::Trace::Map& m) {
  std::vector<float> out(m.v.size());
  for (int64_t t = 0; t < m.t; ++t)
    for (int64_t f = 0; f < m.f; ++f)
      for (int64_t c = 0; c < m.c; ++c) out[(c * m.t + t) * m.f + f] = m.v[(t * m.f + f) * m.c + c];
  return out;
}

std::vector<float> transpose(const std::vector<float>& v, int64_t rows, int64_t cols) {
  std::vector<float> out(v.size());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) out[c * rows + r] = v[r * cols + c];
  return out;
}

// Worst differences seen over all clips of one model, printed at the end (docs/panns.md quotes them).
struct Worst {
  std::map<std::string, double> v;
  void note(const std::string& k, double x) { v[k] = std::max(v[k], x); }
};

void check_model(const ModelCase& m) {
  SCOPED_TRACE(m.dir);
  auto model = PannsModel::open(converted(golden_dir() + m.checkpoint));
  ASSERT_EQ(model->config().sample_rate, m.rate);
  Worst worst;
  for (const char* clip : kClips) {
    SCOPED_TRACE(clip);
    const std::vector<float> x = clip_samples(m, clip);
    panns::Trace tr;
    const auto out = model->impl().net->forward(x.data(), static_cast<int64_t>(x.size()), 2, &tr);
    const int64_t frames = static_cast<int64_t>(x.size()) / model->config().hop + 1;
    if (std::filesystem::exists(golden_dir() + m.dir + "/" + clip + "/waveform.npy")) {
      EXPECT_EQ(npy(m.dir, clip, "waveform"), x);
      const auto spec = npy(m.dir, clip, "spectrogram");
      ASSERT_EQ(spec.size(), tr.spectrogram.size());
      const double d = rel_to_max(tr.spectrogram, spec);
      worst.note("spectrogram (rel. to max)", d);
      EXPECT_LT(d, 2e-5);
    }
    // Log-mel in dB: tight where the mel energy is above -60 dB, looser near the 1e-10 floor where
    // a float32 sum of a few tiny powers carries its rounding to the log; exact silence is -100 exactly.
    const auto logmel = npy(m.dir, clip, "logmel");
    ASSERT_EQ(static_cast<int64_t>(logmel.size()), frames * 64);
    double db_loud = 0, db_any = 0;
    for (size_t i = 0; i < logmel.size(); ++i) {
      const double d = std::abs(double(tr.logmel[i]) - logmel[i]);
      (logmel[i] > -60 ? db_loud : db_any) = std::max(logmel[i] > -60 ? db_loud : db_any, d);
      if (logmel[i] == -100.f) {
        EXPECT_EQ(tr.logmel[i], -100.f) << i;
      }
    }
    worst.note("logmel dB (ref > -60 dB)", db_loud);
    worst.note("logmel dB (ref <= -60 dB)", db_any);
    EXPECT_LT(db_loud, 1e-3);
    EXPECT_LT(db_any, 5e-2);
    const double bn0 = rel_to_max(tr.bn0, npy(m.dir, clip, "bn0"));
    worst.note("bn0", bn0);
    EXPECT_LT(bn0, 1e-5);
    ASSERT_EQ(tr.blocks.size(), 6u);
    for (int b = 0; b < 6; ++b) {
      const std::string name = "conv_block" + std::to_string(b + 1);
      const auto ref = npy(m.dir, clip, name);
      const auto got = to_ctf(tr.blocks[b]);
      ASSERT_EQ(got.size(), ref.size()) << name;
      const double d = rel_to_max(got, ref);
      worst.note(name, d);
      EXPECT_LT(d, 1e-5) << name;
    }
    const auto& b6 = tr.blocks[5];
    struct Stage {
      const char* name;
      std::vector<float> got;
    };
    for (const Stage& s : {Stage{"block6_freq_mean", transpose(tr.freq_mean, b6.t, b6.c)}, Stage{"pooled", tr.pooled},
                           Stage{"fc1_linear", tr.fc1_linear}, Stage{"embedding", tr.embedding},
                           Stage{"logits", tr.logits}, Stage{"clipwise_output", tr.clipwise}}) {
      const auto ref = npy(m.dir, clip, s.name);
      ASSERT_EQ(s.got.size(), ref.size()) << s.name;
      const double d = rel_to_max(s.got, ref);
      worst.note(s.name, d);
      EXPECT_LT(d, 1e-5) << s.name;
    }
    const double cos = cosine(out.embedding, npy(m.dir, clip, "embedding"));
    worst.note("1 - cos(embedding)", 1 - cos);
    EXPECT_GE(cos, 0.99999);
    EXPECT_EQ(out.embedding, tr.embedding);
    EXPECT_EQ(out.clipwise, tr.clipwise);
  }
  for (const auto& [k, v] : worst.v) std::printf("  %-10s %-28s worst %.3g\n", m.dir, k.c_str(), v);
}

}  // namespace

TEST(PannsGolden, Cnn14EveryStage) { check_model(kModels[0]); }
TEST(PannsGolden, Cnn14_16kEveryStage) { check_model(kModels[1]); }

TEST(PannsGolden, ConfigRecognisedFromTheTensors) {
  auto a = PannsModel::open(converted(golden_dir() + "Cnn14_tiny.pth"))->config();
  EXPECT_EQ(a.variant, "Cnn14");
  EXPECT_EQ(a.sample_rate, 32000);
  EXPECT_EQ(a.n_fft, 1024);
  EXPECT_EQ(a.hop, 320);
  EXPECT_EQ(a.fmax, 14000.f);
  EXPECT_EQ(a.widths, (std::vector<int>{8, 16, 32, 64, 128, 256}));
  EXPECT_EQ(a.embedding_dim, 256);
  EXPECT_EQ(a.classes, 527);
  auto b = PannsModel::open(converted(golden_dir() + "Cnn14_16k_tiny.pth"))->config();
  EXPECT_EQ(b.variant, "Cnn14_16k");
  EXPECT_EQ(b.sample_rate, 16000);
  EXPECT_EQ(b.n_fft, 512);
  EXPECT_EQ(b.hop, 160);
  EXPECT_EQ(b.fmin, 50.f);
  EXPECT_EQ(b.fmax, 8000.f);
}

TEST(PannsGolden, BothCheckpointContainersGiveTheSameModel) {
  // Each golden checkpoint re-packed into the other container gives bit-identical outputs.
  const std::string legacy = ziptest::slurp(golden_dir() + "Cnn14_tiny.pth");
  const std::string zip = ziptest::slurp(golden_dir() + "Cnn14_16k_tiny.pth");
  const auto dir = temp_dir();
  ziptest::spit((dir / "Cnn14_tiny_zip.pth").string(), torchtest::legacy_to_zip(legacy, "Cnn14_tiny_zip"));
  ziptest::spit((dir / "Cnn14_16k_tiny_legacy.pth").string(), torchtest::zip_to_legacy(zip));
  for (const auto& [orig, other, m] : {std::tuple{"Cnn14_tiny.pth", "Cnn14_tiny_zip.pth", kModels[0]},
                                       std::tuple{"Cnn14_16k_tiny.pth", "Cnn14_16k_tiny_legacy.pth", kModels[1]}}) {
    auto a = PannsModel::open(converted(golden_dir() + orig));
    auto b = PannsModel::open(converted((dir / other).string()));
    const std::vector<float> x = clip_samples(m, "c02_clicks");
    const auto ra = a->run(x, 1), rb = b->run(x, 1);
    EXPECT_EQ(ra.embedding, rb.embedding) << other;
    EXPECT_EQ(ra.clipwise, rb.clipwise) << other;
    EXPECT_GE(cosine(rb.embedding, npy(m.dir, "c02_clicks", "embedding")), 0.99999);
  }
}

TEST(PannsGolden, MinimumLength) {
  for (const ModelCase& m : kModels) {
    auto model = PannsModel::open(converted(golden_dir() + m.checkpoint));
    const int64_t hop = model->config().hop;
    EXPECT_EQ(model->config().min_samples(), 31 * hop);
    std::vector<float> x = clip_samples(m, "c01_hum");
    std::vector<float> shortest(x.begin(), x.begin() + 31 * hop);
    EXPECT_EQ(model->embed(shortest, 1).size(), 256u);
    std::vector<float> too_short(x.begin(), x.begin() + 31 * hop - 1);
    try {
      model->embed(too_short, 1);
      ADD_FAILURE() << "no error for " << too_short.size() << " samples";
    } catch (const InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find("at least " + std::to_string(31 * hop) + " samples"), std::string::npos)
          << e.what();
    }
  }
}

TEST(PannsGolden, ResultsDoNotDependOnThreadsOrBatching) {
  auto model = PannsModel::open(converted(golden_dir() + "Cnn14_tiny.pth"));
  const auto a = clip_samples(kModels[0], "c04_short_3s"), b = clip_samples(kModels[0], "c06_burst_0p5s");
  const auto one = model->run(a, 1), two = model->run(a, 2);
  EXPECT_EQ(one.embedding, two.embedding);
  EXPECT_EQ(one.clipwise, two.clipwise);
  const auto batch = model->run_batch({a, b}, 2);
  ASSERT_EQ(batch.size(), 2u);
  EXPECT_EQ(batch[0].embedding, one.embedding);
  EXPECT_EQ(batch[1].embedding, model->run(b, 2).embedding);
  // A clip longer than the feature maps a thread keeps (25 s): the same on any thread count.
  std::vector<float> longer;
  const auto ten = clip_samples(kModels[0], "c05_long_10s");
  for (int k = 0; k < 5; ++k)
    longer.insert(longer.end(), ten.begin(), ten.begin() + static_cast<int64_t>(ten.size()) / 2);
  const auto l1 = model->run(longer, 1), l2 = model->run(longer, 2);
  EXPECT_EQ(l1.embedding, l2.embedding);
  EXPECT_GT(*std::max_element(l1.embedding.begin(), l1.embedding.end()), 0.f);
}

TEST(PannsGolden, HalfPrecisionFile) {
  const std::string f32 = converted(golden_dir() + "Cnn14_tiny.pth");
  const std::string f16 = converted(golden_dir() + "Cnn14_tiny.pth", DType::F16);
  // The folded convolution and fc weights (and only those) are stored in 2 bytes instead of 4: each
  // packed matrix of out outputs and in inputs holds ceil(out / 48) * 48 * in elements.
  auto model = PannsModel::open(f16);
  const PannsConfig& c = model->config();
  const auto panels = [](int64_t out, int64_t in) { return (out + 47) / 48 * 48 * in; };
  int64_t halved = panels(c.classes, c.embedding_dim) + panels(c.embedding_dim, c.widths[5]), in = 1;
  for (int w : c.widths) {
    for (int64_t cin : {in, int64_t{w}})  // one chunk when 9 * cin <= 2048, else [5 taps, 4 taps]
      halved += 9 * cin <= 2048 ? panels(w, 9 * cin) : panels(w, 5 * cin) + panels(w, 4 * cin);
    in = w;
  }
  const double saved = static_cast<double>(std::filesystem::file_size(f32)) - std::filesystem::file_size(f16);
  EXPECT_NEAR(saved, 2.0 * halved, 64.0 * 40);  // up to one alignment pad per tensor
  const auto x = clip_samples(kModels[0], "c04_short_3s");
  // Each folded weight (the weight times its BatchNorm scale, in float32) is rounded to f16 once:
  // a relative error up to 2^-11 per weight.
  const std::vector<float> e = model->embed(x, 2), ref = npy("cnn14", "c04_short_3s", "embedding");
  EXPECT_GE(cosine(e, ref), 0.9999);
  EXPECT_LT(rel_to_max(e, ref), 1e-3);
  // The f16 weights are read as stored (widened in the kernels, no float32 copy): the same bits as a
  // float32 file holding the widened values in the same packed layout.
  std::ifstream file(f16, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  const GgufView g = GgufView::parse(bytes.data(), bytes.size(), f16);
  GgufWriter w;
  for (const auto& k : g.kv_order) w.set(k, g.kv.at(k));
  std::deque<std::vector<float>> widened;
  for (const auto& t : g.tensors) {
    if (t.dtype != DType::F16) {
      w.add_tensor(t.name, t.dtype, t.shape, bytes.data() + t.offset, t.nbytes);
      continue;
    }
    std::vector<float>& v = widened.emplace_back(t.nbytes / 2);
    for (size_t i = 0; i < v.size(); ++i) {
      uint16_t h;
      std::memcpy(&h, bytes.data() + t.offset + 2 * i, 2);
      v[i] = modelio::half_to_float(h);
    }
    w.add_tensor(t.name, DType::F32, t.shape, v.data(), v.size() * sizeof(float));
  }
  const std::string wide = (temp_dir() / "widened.gguf").string();
  w.write_file(wide);
  const auto a = model->run(x, 2), b = PannsModel::open(wide)->run(x, 2);
  EXPECT_EQ(a.embedding, b.embedding);
  EXPECT_EQ(a.clipwise, b.clipwise);
}

TEST(PannsGolden, ModelFileChecks) {
  const std::string panns = converted(golden_dir() + "Cnn14_tiny.pth");
  EXPECT_TRUE(is_panns_model_file(panns));
  // A random model of any widths: written, recognised, opened with the configuration it was given.
  PannsConfig cfg;
  cfg.variant = "Cnn14_16k";
  cfg.sample_rate = 16000, cfg.n_fft = 512, cfg.hop = 160, cfg.fmax = 8000.f;
  cfg.widths = {4, 8, 8, 16, 16, 32};
  cfg.embedding_dim = 24;
  cfg.classes = 5;
  const std::string rnd = (temp_dir() / "random16k.gguf").string();
  write_random_panns_model(rnd, cfg, DType::F16, 3);
  auto m = PannsModel::open(rnd);
  EXPECT_EQ(m->config().widths, cfg.widths);
  EXPECT_EQ(m->config().hop, 160);
  const auto out = m->run(clip_samples(kModels[1], "c06_burst_0p5s"), 1);
  EXPECT_EQ(out.embedding.size(), 24u);
  ASSERT_EQ(out.clipwise.size(), 5u);
  for (float p : out.clipwise) EXPECT_TRUE(p > 0.f && p < 1.f) << p;
  // The random model's front end passes the converter's own checks (STFT kernels, Slaney mel bank).
  EXPECT_NE(PannsModel::open(rnd)->identity(), PannsModel::open(panns)->identity());
  // Not a PANNs file: an msclap-style GGUF, a checkpoint.
  const std::string other = (temp_dir() / "other.gguf").string();
  GgufWriter w;
  w.set_string("general.architecture", "asdcap-msclap");
  w.write_file(other);
  EXPECT_FALSE(is_panns_model_file(other));
  try {
    PannsModel::open(other);
    ADD_FAILURE() << "opened " << other;
  } catch (const ModelError& e) {
    EXPECT_NE(std::string(e.what()).find("not a PANNs model file"), std::string::npos) << e.what();
  }
  EXPECT_THROW(is_panns_model_file(golden_dir() + "Cnn14_tiny.pth"), FormatError);
}

TEST(PannsGolden, ConverterRefusesAForeignFrontEnd) {
  // The golden Cnn14 checkpoint with the largest weight of its mel bank 0.1 % higher: not the
  // Slaney bank of the variant any more.
  auto ts = read_torch_checkpoint(golden_dir() + "Cnn14_tiny.pth");
  EXPECT_EQ(infer_panns_config(ts, "t.pth").variant, "Cnn14");
  for (auto& t : ts)
    if (t.name == "logmel_extractor.melW") {
      float* v = reinterpret_cast<float*>(t.data.data());
      *std::max_element(v, v + t.data.size() / 4) *= 1.001f;
    }
  try {
    infer_panns_config(ts, "t.pth");
    ADD_FAILURE() << "accepted";
  } catch (const ModelError& e) {
    EXPECT_NE(std::string(e.what()).find("t.pth: logmel_extractor.melW is not the Slaney mel bank of Cnn14"),
              std::string::npos)
        << e.what();
  }
}
