// LAION-CLAP's audio path against the original laion_clap code's intermediates
// (../shared/golden-laion), stage by stage, for its six clips (exactly 10 s, cropped, repeat-padded):
// the int16 round trip and the 10-s window exactly, then every stage at the tolerances its README
// gives, each stage fed the reference output of the one before, and the whole path from the file.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>

#include "asdcap/audio.hpp"
#include "asdcap/convert.hpp"
#include "asdcap/error.hpp"
#include "laion_golden.hpp"
#include "modelio/gguf.hpp"

using namespace asdcap;
using namespace laiontest;

namespace {

struct Clip {
  std::string id;
  int64_t frames = 0;
  int64_t crop_offset = -1;  // -1: not cropped
};

const std::vector<Clip>& clips() {
  static const std::vector<Clip> list = [] {
    std::ifstream in(golden_dir() + "manifest.json");
    const nlohmann::json m = nlohmann::json::parse(in);
    std::vector<Clip> out;
    for (const auto& c : m["clips"]) {
      Clip x;
      x.id = c["id"].get<std::string>();
      x.frames = c["frames"].get<int64_t>();
      if (!c["crop_offset"].is_null()) x.crop_offset = c["crop_offset"].get<int64_t>();
      out.push_back(x);
    }
    return out;
  }();
  return list;
}

std::vector<float> input_samples(const Clip& c) {
  DecodedAudio a = decode_audio(golden_dir() + "inputs/" + c.id + ".wav");
  EXPECT_EQ(a.info.sample_rate, 48000);
  EXPECT_EQ(a.info.channels, 1);
  EXPECT_EQ(static_cast<int64_t>(a.interleaved.size()), c.frames);
  return a.interleaved;
}

CropPolicy crop_of(const Clip& c) {
  return c.crop_offset >= 0 ? CropPolicy::parse("offset:" + std::to_string(c.crop_offset)) : CropPolicy{};
}

// Worst deviations over all clips, printed at the end (docs/laion.md quotes them).
struct Worst {
  std::map<std::string, double> v;
  void note(const std::string& k, double x) { v[k] = std::max(v[k], x); }
  ~Worst() {
    for (const auto& [k, x] : v) std::printf("worst %-18s %.3g\n", k.c_str(), x);
  }
};

const LaionModel& model() {
  static const auto m = LaionModel::open(converted(golden_checkpoint()), 2);
  return *m;
}

}  // namespace

TEST(LaionGolden, ClipsCoverEveryLengthRule) {
  ASSERT_EQ(clips().size(), 6u);
  int cropped = 0, padded = 0, exact = 0;
  for (const Clip& c : clips()) (c.frames > 480000 ? cropped : c.frames < 480000 ? padded : exact)++;
  EXPECT_GE(cropped, 1);
  EXPECT_GE(padded, 1);
  EXPECT_GE(exact, 1);
}

TEST(LaionGolden, QuantisationAndWindowAreExact) {
  for (const Clip& c : clips()) {
    SCOPED_TRACE(c.id);
    const std::vector<int16_t> q = laion_quantize(input_samples(c));
    EXPECT_EQ(q, npy_int16(c.id, "quantized_int16"));
    const auto windows = laion_windows(q, crop_of(c), 480000);
    ASSERT_EQ(windows.size(), 1u);
    EXPECT_EQ(windows[0], npy_int16(c.id, "waveform_int16"));
  }
}

TEST(LaionGolden, DequantisationIsNumpysDivision) {
  // NumPy: q / 32767.0 in float64, rounded once to float32 -- the same as a float32 division.
  for (int q = -32768; q <= 32767; ++q)
    ASSERT_EQ(laion_dequantize(static_cast<int16_t>(q)), static_cast<float>(q) / 32767.0f) << q;
}

TEST(LaionGolden, RepeatPadIsWholeCopiesThenZeros) {
  const std::vector<int16_t> clip = {1, 2, 3};
  const auto w = laion_windows(clip, CropPolicy{}, 8);
  ASSERT_EQ(w.size(), 1u);
  EXPECT_EQ(w[0], (std::vector<int16_t>{1, 2, 3, 1, 2, 3, 0, 0}));  // msclap would tile: 1 2 3 1 2 3 1 2
  EXPECT_EQ(laion_windows({5, 6, 7, 8, 9}, CropPolicy{}, 8)[0], (std::vector<int16_t>{5, 6, 7, 8, 9, 0, 0, 0}));
  EXPECT_EQ(laion_windows({4, 5}, CropPolicy{}, 8)[0], (std::vector<int16_t>{4, 5, 4, 5, 4, 5, 4, 5}));
  EXPECT_EQ(laion_windows({1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, CropPolicy::parse("offset:2"), 8)[0],
            (std::vector<int16_t>{3, 4, 5, 6, 7, 8, 9, 10}));
  EXPECT_EQ(laion_windows({1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, CropPolicy::parse("cover"), 8).size(), 2u);
  EXPECT_THROW(laion_windows(clip, CropPolicy::parse("whole"), 8), InvalidArgument);
  EXPECT_THROW(laion_windows({}, CropPolicy{}, 8), InvalidArgument);
}

TEST(LaionGolden, QuantisationClipsAndTruncates) {
  const std::vector<int16_t> q =
      laion_quantize({2.85f, -1.5f, 1.0f, -1.0f, 0.5f, -0.5f, 1.0f / 32768, -1.0f / 32768, 0.99999f});
  // 0.5 * 32767 = 16383.5 -> 16383 (toward zero); 0.99999 * 32767 = 32766.67 -> 32766
  EXPECT_EQ(q, (std::vector<int16_t>{32767, -32767, 32767, -32767, 16383, -16383, 0, 0, 32766}));
}

TEST(LaionGolden, SpectrogramOfTheTenSecondClip) {
  const Clip& c = clips()[0];
  ASSERT_EQ(c.frames, 480000);
  const auto w = npy_int16(c.id, "waveform_int16");
  std::vector<float> x(w.size());
  for (size_t i = 0; i < w.size(); ++i) x[i] = laion_dequantize(w[i]);
  std::vector<float> spec;
  model().log_mel(x.data(), &spec);
  const std::vector<float> ref = read_npy(golden_dir() + "audio/" + c.id + "/spectrogram.npy").as_float();
  ASSERT_EQ(spec.size(), ref.size());
  ASSERT_EQ(ref.size(), size_t{1001} * 513);
  double worst = 0;
  for (size_t t = 0; t < 1001; ++t) {
    double peak = 0, diff = 0;
    for (size_t k = 0; k < 513; ++k) {
      peak = std::max(peak, static_cast<double>(ref[t * 513 + k]));
      diff = std::max(diff, std::abs(static_cast<double>(spec[t * 513 + k]) - ref[t * 513 + k]));
    }
    worst = std::max(worst, diff / std::max(peak, 1e-30));
  }
  EXPECT_LE(worst, 1e-5);
}

TEST(LaionGolden, EveryStageOfEveryClip) {
  const LaionModel& m = model();
  ASSERT_EQ(m.num_stages(), 4);
  Worst worst;
  auto within = [&](const std::string& what, double x, double limit) {
    worst.note(what, x);
    EXPECT_LE(x, limit) << what;
  };
  for (const Clip& c : clips()) {
    SCOPED_TRACE(c.id);
    const auto w = npy_int16(c.id, "waveform_int16");
    std::vector<float> x(w.size());
    for (size_t i = 0; i < w.size(); ++i) x[i] = laion_dequantize(w[i]);
    // log-mel: 1e-3 dB where the reference is above -90 dB; exactly -100 where the power clamps.
    const std::vector<float> logmel = m.log_mel(x.data()), ref_logmel = npy(c.id, "logmel");
    ASSERT_EQ(logmel.size(), ref_logmel.size());
    double worst_db = 0;
    for (size_t i = 0; i < logmel.size(); ++i) {
      if (ref_logmel[i] == -100.0f)
        EXPECT_EQ(logmel[i], -100.0f) << i;
      else if (ref_logmel[i] > -90.0f)
        worst_db = std::max(worst_db, std::abs(static_cast<double>(logmel[i]) - ref_logmel[i]));
    }
    within("logmel dB", worst_db, 1e-3);
    // bn0 and the image: 2e-4 absolute, each from the reference input.
    within("bn0 abs", max_abs_diff(m.bn0(ref_logmel.data()), npy(c.id, "bn0")), 2e-4);
    const std::vector<float> ref_bn0 = npy(c.id, "bn0");
    within("image abs", max_abs_diff(m.image(ref_bn0.data()), npy(c.id, "image")), 2e-4);
    // The Swin tower: 1e-5 relative with PyTorch's float32 bicubic scale.
    const std::vector<float> ref_image = npy(c.id, "image");
    within("patch_embed rel", rel_to_max(m.patch_embed(ref_image.data()), npy(c.id, "patch_embed")), 1e-5);
    std::vector<float> in = npy(c.id, "patch_embed");
    for (int s = 0; s < 4; ++s) {
      const std::vector<float> ref = npy(c.id, "stage" + std::to_string(s));
      within("stage" + std::to_string(s) + " rel", rel_to_max(m.stage(s, in.data()), ref), 1e-5);
      in = ref;
    }
    within("final_norm rel", rel_to_max(m.final_norm(in.data()), npy(c.id, "final_norm")), 1e-5);
    // Head, projection and embedding.
    const std::vector<float> ref_final = npy(c.id, "final_norm");
    std::vector<float> hidden, projection;
    const LaionModel::Output o = m.head(ref_final.data(), &hidden, &projection);
    within("latent rel", rel_to_max(o.latent, npy(c.id, "latent")), 1e-5);
    within("clipwise rel", rel_to_max(o.clipwise, npy(c.id, "clipwise")), 1e-5);
    within("proj_hidden rel", rel_to_max(hidden, npy(c.id, "projection_hidden")), 1e-5);
    within("projection rel", rel_to_max(projection, npy(c.id, "projection")), 1e-5);
    const std::vector<float> ref_embedding = npy(c.id, "embedding");
    within("1 - cosine", 1 - cosine(o.embedding, ref_embedding), 1e-5);
    within("embedding abs", max_abs_diff(o.embedding, ref_embedding), 1e-5);
  }
}

TEST(LaionGolden, WholePathFromTheFile) {
  // From the WAV file: quantisation, window, log-mel ... embedding in one pass, for all clips at
  // once (batched) and each alone; both equal to laion_clap's embedding.
  const LaionModel& m = model();
  const std::vector<float> all = read_npy(golden_dir() + "audio_embeddings.npy").as_float();
  ASSERT_EQ(all.size(), clips().size() * 64);
  std::vector<std::vector<int16_t>> windows;
  for (size_t i = 0; i < clips().size(); ++i) {
    const Clip& c = clips()[i];
    SCOPED_TRACE(c.id);
    const LaionModel::Output o = m.encode_clip(input_samples(c), crop_of(c));
    const std::vector<float> ref(all.begin() + static_cast<int64_t>(i) * 64,
                                 all.begin() + static_cast<int64_t>(i + 1) * 64);
    EXPECT_GE(cosine(o.embedding, ref), 0.99999);
    EXPECT_LE(max_abs_diff(o.embedding, ref), 1e-5);
    EXPECT_LE(rel_to_max(o.latent, npy(c.id, "latent")), 1e-5);
    EXPECT_LE(rel_to_max(o.clipwise, npy(c.id, "clipwise")), 1e-5);
    windows.push_back(laion_windows(laion_quantize(input_samples(c)), crop_of(c), 480000)[0]);
    // The trace's stages are the same computation.
    const LaionModel::Trace tr = m.trace(windows.back().data());
    EXPECT_EQ(tr.output.embedding, o.embedding);
    EXPECT_LE(max_abs_diff(tr.image, npy(c.id, "image")), 2e-4);
    EXPECT_LE(rel_to_max(tr.stages.back(), npy(c.id, "stage3")), 1e-4);
  }
  std::vector<const int16_t*> ptrs;
  for (const auto& w : windows) ptrs.push_back(w.data());
  const auto batched = m.encode(ptrs);
  for (size_t i = 0; i < batched.size(); ++i)
    EXPECT_EQ(batched[i].embedding, m.encode(std::vector<const int16_t*>{ptrs[i]})[0].embedding);
}

TEST(LaionGolden, ThreadCountDoesNotChangeTheBits) {
  const auto one = LaionModel::open(converted(golden_checkpoint()), 1);
  const Clip& c = clips()[1];
  const auto a = one->encode_clip(input_samples(c), crop_of(c));
  const auto b = model().encode_clip(input_samples(c), crop_of(c));
  EXPECT_EQ(a.embedding, b.embedding);
  EXPECT_EQ(a.clipwise, b.clipwise);
}

TEST(LaionGolden, HalfPrecisionFileStaysClose) {
  const auto half = LaionModel::open(converted(golden_checkpoint(), DType::F16), 2);
  const Clip& c = clips()[0];
  const auto o = half->encode_clip(input_samples(c), crop_of(c));
  EXPECT_GE(cosine(o.embedding, npy(c.id, "embedding")), 0.999);
}

// int8 weights (convert --laion-clap --dtype int8, opt-in and approximate): every clip's embedding
// stays within the cosine docs/model-files.md states; `convert --relayout --dtype int8` of the f32
// file stores the same int8 tensors and scales.
TEST(LaionGolden, Int8FileStaysCloseAndRelayoutMakesTheSame) {
  const std::string q8 = (temp_dir() / "int8.gguf").string();
  convert_laion({golden_checkpoint(), q8, DType::I8});
  const auto m = LaionModel::open(q8, 2);
  const std::vector<float> all = read_npy(golden_dir() + "audio_embeddings.npy").as_float();
  double worst = 1;
  for (size_t i = 0; i < clips().size(); ++i) {
    const Clip& c = clips()[i];
    const auto o = m->encode_clip(input_samples(c), crop_of(c));
    const std::vector<float> ref(all.begin() + static_cast<int64_t>(i) * 64,
                                 all.begin() + static_cast<int64_t>(i + 1) * 64);
    worst = std::min(worst, cosine(o.embedding, ref));
  }
  std::printf("int8 LAION-CLAP embeddings: lowest cosine to laion_clap's %.6f\n", worst);
  EXPECT_GE(worst, 0.999);

  const std::string relaid = (temp_dir() / "relaid-int8.gguf").string();
  const RelayoutReport r = relayout_model(converted(golden_checkpoint()), relaid, true);
  EXPECT_GT(r.quantized, 10u);
  auto slurp = [](const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  };
  const std::string a = slurp(q8), b = slurp(relaid);
  const GgufView ga = GgufView::parse(a.data(), a.size(), q8), gb = GgufView::parse(b.data(), b.size(), relaid);
  size_t int8 = 0;
  for (const auto& t : ga.tensors) {
    if (t.dtype != DType::I8 && t.name.find(".scale") == std::string::npos) continue;
    int8 += t.dtype == DType::I8;
    const auto u = std::find_if(gb.tensors.begin(), gb.tensors.end(), [&](const auto& x) { return x.name == t.name; });
    ASSERT_NE(u, gb.tensors.end()) << t.name;
    EXPECT_EQ(u->dtype, t.dtype) << t.name;
    EXPECT_EQ(b.substr(u->offset, u->nbytes), a.substr(t.offset, t.nbytes)) << t.name;
  }
  EXPECT_EQ(int8, r.quantized);
}

// A file of format version 1 (every tensor in PyTorch order, as asdcap wrote before the packed
// layout) computes the same bits as the version-2 file it came from, and `convert --relayout` turns
// it back into that file's tensors. The unpacking is written out here from the layout's definition
// (docs/model-files.md): element (j, p) of an out x in matrix at panel j / 48, row p, column j % 48.
TEST(LaionGolden, OldLayoutFileGivesTheSameBitsAndRelaysToTheNewOne) {
  const std::string fresh = converted(golden_checkpoint());
  std::ifstream in(fresh, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const GgufView g = GgufView::parse(bytes.data(), bytes.size(), fresh);
  GgufWriter w;
  for (const auto& k : g.kv_order)
    if (k.rfind("asdcap.", 0) != 0) w.set(k, g.kv.at(k));
  std::vector<std::string> unpacked;
  unpacked.reserve(g.tensors.size());
  size_t packed = 0;
  for (const auto& t : g.tensors) {
    auto key = g.kv.find("asdcap.packed." + t.name);
    if (key == g.kv.end()) {
      w.add_tensor(t.name, t.dtype, t.shape, bytes.data() + t.offset, t.nbytes);
      continue;
    }
    const std::vector<int64_t> shape(key->second.ints.begin() + 1, key->second.ints.end());
    ASSERT_EQ(key->second.ints[0], 0) << t.name;
    int64_t in_features = 1;
    for (size_t i = 1; i < shape.size(); ++i) in_features *= shape[i];
    const size_t es = dtype_size(t.dtype);
    std::string& v = unpacked.emplace_back(static_cast<size_t>(shape[0] * in_features) * es, '\0');
    for (int64_t j = 0; j < shape[0]; ++j)
      for (int64_t p = 0; p < in_features; ++p)
        std::memcpy(v.data() + (j * in_features + p) * es,
                    bytes.data() + t.offset + ((j / 48) * in_features * 48 + p * 48 + j % 48) * es, es);
    w.add_tensor(t.name, t.dtype, shape, v.data(), v.size());
    ++packed;
  }
  EXPECT_GT(packed, 10u);
  const std::string old = fresh + ".v1.gguf", relaid = fresh + ".relaid.gguf";
  w.write_file(old);
  const auto a = LaionModel::open(old, 2);
  for (int i : {0, 1}) {
    const Clip& c = clips()[static_cast<size_t>(i)];
    const auto x = a->encode_clip(input_samples(c), crop_of(c));
    const auto y = model().encode_clip(input_samples(c), crop_of(c));
    EXPECT_EQ(x.embedding, y.embedding);
    EXPECT_EQ(x.clipwise, y.clipwise);
  }
  const RelayoutReport r = relayout_model(old, relaid);
  EXPECT_EQ(r.from_version, 1);
  EXPECT_EQ(r.packed, packed);
  std::ifstream in2(relaid, std::ios::binary);
  const std::string bytes2((std::istreambuf_iterator<char>(in2)), std::istreambuf_iterator<char>());
  const GgufView g2 = GgufView::parse(bytes2.data(), bytes2.size(), relaid);
  ASSERT_EQ(g2.tensors.size(), g.tensors.size());
  for (size_t i = 0; i < g.tensors.size(); ++i) {
    EXPECT_EQ(g2.tensors[i].shape, g.tensors[i].shape) << g.tensors[i].name;
    ASSERT_EQ(g2.tensors[i].nbytes, g.tensors[i].nbytes) << g.tensors[i].name;
    EXPECT_EQ(
        std::memcmp(bytes2.data() + g2.tensors[i].offset, bytes.data() + g.tensors[i].offset, g.tensors[i].nbytes), 0)
        << g.tensors[i].name;
  }
  std::remove(old.c_str());
  std::remove(relaid.c_str());
}
