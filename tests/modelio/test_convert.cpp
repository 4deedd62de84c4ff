// Converting the golden msclap checkpoints and reading every tensor back, checked against the raw
// storages of the .pth files (read with the independent helpers of zip_tools.hpp, not asdcap's reader).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <stdexcept>
#include <thread>

#include "asdcap/convert.hpp"
#include "asdcap/error.hpp"
#include "asdcap/model_file.hpp"
#include "core/files.hpp"
#include "support/golden_model.hpp"
#include "support/random_model.hpp"
#include "zip_tools.hpp"

namespace fs = std::filesystem;
using namespace asdcap;
using asdcap::test::write_random_model;

namespace {

const std::string kShared = ASDCAP_SHARED_DIR;
const std::string kClap = kShared + "/golden/clap_2023_tiny.pth";
const std::string kClapcap = kShared + "/golden/clapcap_2023_tiny.pth";
const std::string kVocab = kShared + "/assets/gpt2/vocab.json";
const std::string kMerges = kShared + "/assets/gpt2/merges.txt";

// The .pth key of an asdcap tensor name, by the mapping documented in model_file.hpp.
std::pair<std::string, std::string> source_key(const std::string& name) {
  static const std::vector<std::tuple<std::string, std::string, std::string>> rules = {
      {"audio.htsat.", "clap", "audio_encoder.base.htsat."}, {"audio.proj.", "clap", "audio_encoder.projection."},
      {"text.gpt2.", "clap", "caption_encoder.base."},       {"text.proj.", "clap", "caption_encoder.projection."},
      {"cap.audio.htsat.", "clapcap", "clap.base.htsat."},   {"cap.audio.proj.", "clapcap", "clap.projection."},
      {"cap.mapper.", "clapcap", "clap_project."},           {"cap.gpt2.", "clapcap", "gpt.transformer."}};
  if (name == "logit_scale") return {"clap", "logit_scale"};
  for (const auto& [to, file, from] : rules)
    if (name.rfind(to, 0) == 0) return {file, from + name.substr(to.size())};
  return {"", ""};
}

// A state-dict entry located in the raw pickle: the key string, then the first all-digit string
// after it (the storage key of the persistent id), then BINPERSID and the offset, size and stride
// arguments of _rebuild_tensor_v2 (small ints and int tuples, as torch.save writes them).
struct RawTensor {
  const std::string* storage = nullptr;
  int64_t offset = 0;
  std::vector<int64_t> size, stride;
};

struct RawCheckpoint {
  std::map<std::string, std::string> members;
  std::string pickle, archive;
  explicit RawCheckpoint(const std::string& path) {
    for (auto& [name, bytes] : ziptest::unzip_all(ziptest::slurp(path))) {
      if (name.size() > 9 && name.compare(name.size() - 9, 9, "/data.pkl") == 0) {
        pickle = bytes;
        archive = name.substr(0, name.size() - 8);
      }
      members[name] = std::move(bytes);
    }
  }
  int64_t read_int(size_t& p) const {
    const auto u = [&](size_t k) { return static_cast<int64_t>(static_cast<uint8_t>(pickle[p + k])); };
    int64_t v;
    switch (pickle[p]) {
      case 'K':
        v = u(1);
        p += 2;
        break;
      case 'M':
        v = u(1) | u(2) << 8;
        p += 3;
        break;
      case 'J':
        v = static_cast<int32_t>(ziptest::rd32(pickle, p + 1));
        p += 5;
        break;
      default: throw std::runtime_error("unexpected opcode in tensor arguments at " + std::to_string(p));
    }
    skip_memo(p);
    return v;
  }
  void skip_memo(size_t& p) const {
    if (pickle[p] == 'q')
      p += 2;
    else if (pickle[p] == 'r')
      p += 5;
  }
  std::vector<int64_t> read_tuple(size_t& p) const {
    std::vector<int64_t> v;
    if (pickle[p] == ')') {
      ++p;
      skip_memo(p);
      return v;
    }
    bool marked = pickle[p] == '(';
    if (marked) ++p;
    while (pickle[p] != 't' &&
           (marked || (static_cast<uint8_t>(pickle[p]) < 0x85 || static_cast<uint8_t>(pickle[p]) > 0x87)))
      v.push_back(read_int(p));
    ++p;
    skip_memo(p);
    return v;
  }
  RawTensor find(const std::string& key) const {
    RawTensor r;
    std::string needle = "X";
    for (int i = 0; i < 4; ++i) needle.push_back(static_cast<char>((key.size() >> (8 * i)) & 255));
    needle += key;
    size_t p = pickle.find(needle);
    if (p == std::string::npos) return r;
    for (p += needle.size(); p + 5 < pickle.size(); ++p) {
      if (pickle[p] != 'X') continue;
      uint32_t len = ziptest::rd32(pickle, p + 1);
      if (len == 0 || len > 8 || p + 5 + len > pickle.size()) continue;
      std::string s = pickle.substr(p + 5, len);
      if (s.find_first_not_of("0123456789") != std::string::npos) continue;
      auto it = members.find(archive + "data/" + s);
      if (it == members.end()) return r;
      r.storage = &it->second;
      // ... key, location ('cpu' or its memo), numel) BINPERSID
      p += 5 + len;
      skip_memo(p);
      if (pickle[p] == 'h')
        p += 2;
      else if (pickle[p] == 'j')
        p += 5;
      else if (pickle[p] == 'X')
        p += 5 + ziptest::rd32(pickle, p + 1);
      skip_memo(p);
      read_int(p);
      if (pickle[p++] != 't') throw std::runtime_error("unexpected persistent id layout for " + key);
      skip_memo(p);
      if (pickle[p++] != 'Q') throw std::runtime_error("BINPERSID expected for " + key);
      skip_memo(p);
      r.offset = read_int(p);
      r.size = read_tuple(p);
      r.stride = read_tuple(p);
      return r;
    }
    return r;
  }
};

// The C-order bytes of a strided view (element size es).
std::string gather(const RawTensor& t, size_t es) {
  int64_t n = 1;
  for (int64_t d : t.size) n *= d;
  std::string out;
  std::vector<int64_t> idx(t.size.size(), 0);
  for (int64_t k = 0; k < n; ++k) {
    int64_t e = t.offset;
    for (size_t d = 0; d < idx.size(); ++d) e += idx[d] * t.stride[d];
    out += t.storage->substr(static_cast<size_t>(e) * es, es);
    for (size_t d = idx.size(); d-- > 0;) {
      if (++idx[d] < t.size[d]) break;
      idx[d] = 0;
    }
  }
  return out;
}

void expect_bit_exact(const ModelFile& m) {
  RawCheckpoint clap(kClap), clapcap(kClapcap);
  size_t checked = 0, non_contiguous = 0, packed = 0;
  for (const TensorInfo& t : m.tensors()) {
    auto [file, key] = source_key(t.name);
    ASSERT_FALSE(file.empty()) << t.name;
    RawTensor raw = (file == "clap" ? clap : clapcap).find(key);
    ASSERT_NE(raw.storage, nullptr) << key;
    std::vector<int64_t> shape = raw.size.empty() ? std::vector<int64_t>{1} : raw.size;  // scalars are stored as [1]
    EXPECT_EQ(t.shape, shape) << key;
    const std::string expect = gather(raw, dtype_size(t.dtype));
    if (t.packed_out_dim >= 0) {  // stored in the panel layout: its values back in PyTorch order
      ASSERT_EQ(t.dtype, DType::F32) << key;
      const std::vector<float> values = m.f32_copy(t.name);
      ASSERT_EQ(expect.size(), values.size() * sizeof(float)) << key;
      EXPECT_EQ(std::memcmp(expect.data(), values.data(), expect.size()), 0) << key;
      // The stored bytes themselves (docs/model-files.md): element (j, p) of the out x in matrix at
      // panel j / 48, row p, column j % 48; the last panel's columns past `out` zero.
      const int64_t out = t.shape[static_cast<size_t>(t.packed_out_dim)], in = t.numel() / out;
      const int64_t panels = (out + 47) / 48;
      ASSERT_EQ(t.nbytes, static_cast<size_t>(panels * in * 48 * 4)) << key;
      const auto* stored = static_cast<const char*>(t.data);
      for (int64_t j = 0; j < panels * 48; ++j)
        for (int64_t p = 0; p < in; ++p) {
          const char* at = stored + ((j / 48) * in * 48 + p * 48 + j % 48) * 4;
          if (j >= out) {
            ASSERT_EQ(std::memcmp(at, "\0\0\0\0", 4), 0) << key << " padding";
            continue;
          }
          const int64_t logical = t.packed_out_dim == 0 ? j * in + p : p * out + j;
          ASSERT_EQ(std::memcmp(at, expect.data() + logical * 4, 4), 0) << key << " (" << j << ", " << p << ")";
        }
      ++packed;
    } else {
      ASSERT_EQ(expect.size(), t.nbytes) << key;
      EXPECT_EQ(std::memcmp(expect.data(), t.data, t.nbytes), 0) << key;
    }
    bool contiguous = true;
    for (size_t d = 0, step = 1; d < raw.size.size(); ++d) {
      size_t k = raw.size.size() - 1 - d;
      contiguous &= raw.size[k] == 1 || raw.stride[k] == static_cast<int64_t>(step);
      step *= static_cast<size_t>(raw.size[k]);
    }
    non_contiguous += !contiguous;
    ++checked;
  }
  // 179 + 202 state-dict entries, less the documented drops: 2 x 2 STFT matrices, 2 num_batches_tracked, lm_head.
  EXPECT_EQ(checked, 179u + 202u - 7u);
  EXPECT_EQ(non_contiguous, 2u);  // the two melW are stored transposed (stride (1, 513))
  // Format version 2: the Linear weights of both audio encoders (HTSAT, projection) and of both GPT-2s.
  EXPECT_EQ(m.format_version(), 2);
  EXPECT_GT(packed, 40u);
}

std::string temp_dir(const std::string& name) {
  fs::path d = fs::temp_directory_path() / ("asdcap_test_modelio_" + name);
  fs::remove_all(d);
  fs::create_directories(d);
  return d.string();
}

}  // namespace

TEST(Convert, GoldenEveryTensorBitExact) {
  auto m = ModelFile::open(golden_model_path(true));
  expect_bit_exact(*m);
  // Config inferred from shapes equals golden/config.json's.
  const ModelConfig& c = m->config();
  EXPECT_TRUE(c.has_clap && c.has_captioner);
  EXPECT_EQ(c.audio.embed_dim, 16);
  EXPECT_EQ(c.audio.depths, (std::vector<int>{2, 2, 2, 2}));
  EXPECT_EQ(c.audio.heads, (std::vector<int>{1, 2, 4, 8}));
  EXPECT_EQ(c.audio.window, 8);
  EXPECT_EQ(c.audio.spec_size, 256);
  EXPECT_EQ(c.audio.num_features, 128);
  EXPECT_EQ(c.audio.num_classes, 527);
  EXPECT_EQ(c.proj_dim, 64);
  EXPECT_EQ(c.text.n_embd, 64);
  EXPECT_EQ(c.text.n_layer, 2);
  EXPECT_EQ(c.text.n_head, 4);
  EXPECT_EQ(c.text.vocab, 50257);
  EXPECT_EQ(c.text.n_ctx, 1024);
  EXPECT_EQ(c.decoder.n_embd, 64);
  EXPECT_EQ(c.mapper.prefix_length, 40);
  EXPECT_EQ(c.mapper.clip_length, 40);
  EXPECT_EQ(c.mapper.layers, 2);
  EXPECT_EQ(c.mapper.heads, 8);
  EXPECT_EQ(c.mapper.mlp_hidden, 128);
  EXPECT_EQ(c.front_end.n_fft, 1024);
  EXPECT_EQ(c.front_end.mel_bins, 64);
  EXPECT_FLOAT_EQ(c.logit_scale, 2.9375f);
  EXPECT_EQ(c.pad_id, 0);
  EXPECT_EQ(c.eos_id, 50256);
  EXPECT_EQ(c.stop_id, 220);
  EXPECT_EQ(m->get_string_array("tokenizer.ggml.tokens").size(), 50257u);
  EXPECT_EQ(m->get_string_array("tokenizer.ggml.tokens")[220], "\xC4\xA0");
  EXPECT_EQ(m->get_string_array("tokenizer.ggml.merges")[0], "\xC4\xA0 t");
  EXPECT_EQ(m->get_string("asdcap-msclap.source.clap.sha256"), sha256_file(kClap));
  EXPECT_FALSE(m->has("cap.gpt2.lm_head.weight"));
  EXPECT_FALSE(m->has("audio.htsat.spectrogram_extractor.stft.conv_real.weight"));
  EXPECT_EQ(m->identity().size(), 64u);
  // The mel filter bank equals golden/frontend/melW.npy (the same matrix msclap used).
  std::string npy = ziptest::slurp(kShared + "/golden/frontend/melW.npy");
  size_t header = 10 + ziptest::rd16(npy, 8);
  ASSERT_EQ(npy.size() - header, 513u * 64 * 4);
  EXPECT_EQ(std::memcmp(npy.data() + header, m->f32("audio.htsat.logmel_extractor.melW", {513, 64}), 513 * 64 * 4), 0);
  EXPECT_THROW(m->f32("audio.htsat.logmel_extractor.melW", {64, 513}), ModelError);
  EXPECT_THROW(m->tensor("nope"), ModelError);
  EXPECT_THROW(m->get_int("tokenizer.ggml.model"), ModelError);
}

// --dtype bf16: the f16-eligible tensors become bfloat16, each value the float32 value rounded to the
// nearest bfloat16 (ties to the even one), worked out here from the format: a bfloat16 is a float32
// whose lower 16 bits are zero, so the candidates are the truncation and the next value up in
// magnitude.
TEST(Convert, ClapOnlyAndBf16) {
  const std::string dir = temp_dir("bf16");
  ConvertOptions o;
  o.clap = kClap;
  o.vocab = kVocab;
  o.merges = kMerges;
  o.text_heads = 4;
  o.dtype = DType::BF16;
  o.out = dir + "/clap_bf16.gguf";
  convert_model(o);
  auto brain = ModelFile::open(o.out);
  auto full = ModelFile::open(golden_model_path(false));
  EXPECT_EQ(brain->get_int("general.file_type"), 32);
  size_t n_bf16 = 0;
  for (const TensorInfo& t : full->tensors()) {
    const TensorInfo& b = brain->tensor(t.name);
    if (b.dtype != DType::BF16) {
      EXPECT_FALSE(f16_eligible(t.name, t.shape)) << t.name;
      continue;
    }
    ++n_bf16;
    const float* a = static_cast<const float*>(t.data);
    const auto* bits = static_cast<const uint16_t*>(b.data);
    for (int64_t i = 0; i < t.numel(); ++i) {
      uint32_t x;
      std::memcpy(&x, &a[i], 4);
      const uint32_t down_bits = x & 0xffff0000u, up_bits = down_bits + 0x10000u;
      float down, up;
      std::memcpy(&down, &down_bits, 4);
      std::memcpy(&up, &up_bits, 4);
      const double dd = std::fabs(double(a[i]) - down), du = std::fabs(double(up) - a[i]);
      const uint32_t want = dd < du ? down_bits : du < dd ? up_bits : ((down_bits >> 16) & 1 ? up_bits : down_bits);
      ASSERT_EQ(uint32_t{bits[i]} << 16, want) << t.name << "[" << i << "] = " << a[i];
    }
  }
  EXPECT_GT(n_bf16, 10u);
  fs::remove_all(dir);
}

TEST(Convert, ClapOnlyAndF16) {
  const std::string dir = temp_dir("f16");
  ConvertOptions o;
  o.clap = kClap;
  o.vocab = kVocab;
  o.merges = kMerges;
  o.text_heads = 4;
  o.dtype = DType::F16;
  o.out = dir + "/clap_f16.gguf";
  ConvertReport r = convert_model(o);
  EXPECT_TRUE(r.unexpected.empty());
  auto half = ModelFile::open(o.out);
  auto full = ModelFile::open(golden_model_path(false));
  EXPECT_FALSE(half->config().has_captioner);
  EXPECT_EQ(half->tensors().size(), full->tensors().size());
  size_t n_f16 = 0;
  for (const TensorInfo& t : full->tensors()) {
    const TensorInfo& h = half->tensor(t.name);
    if (h.dtype == DType::F16) {
      ++n_f16;
      EXPECT_TRUE(f16_eligible(t.name, t.shape));
      EXPECT_EQ(h.shape, t.shape);
      const float* a = full->f32(t.name);  // (the values in PyTorch order, whether stored packed or not)
      const float* b = half->f32(t.name);
      for (int64_t i = 0; i < t.numel(); ++i)
        ASSERT_NEAR(b[i], a[i], std::abs(a[i]) * (1.0 / 2048) + 6e-8) << t.name << "[" << i << "]";
      // The uncached copy (used for packed weights) holds the same values.
      const std::vector<float> copy = half->f32_copy(t.name, {});
      ASSERT_EQ(copy.size(), static_cast<size_t>(t.numel()));
      EXPECT_EQ(std::memcmp(copy.data(), b, copy.size() * sizeof(float)), 0) << t.name;
    } else {
      EXPECT_FALSE(f16_eligible(t.name, t.shape)) << t.name;
      ASSERT_EQ(h.nbytes, t.nbytes);
      EXPECT_EQ(std::memcmp(h.data, t.data, t.nbytes), 0) << t.name;
      if (h.dtype == DType::F32) {
        const float* mapped = half->f32(t.name);
        EXPECT_EQ(half->f32_copy(t.name, {}), std::vector<float>(mapped, mapped + t.numel())) << t.name;
      }
    }
  }
  EXPECT_GT(n_f16, 10u);  // wte, wpe, the larger HTSAT / GPT-2 matrices
  EXPECT_EQ(half->tensor("text.gpt2.wte.weight").dtype, DType::F16);
  EXPECT_EQ(half->tensor("audio.htsat.bn0.running_var").dtype, DType::F32);
  EXPECT_EQ(half->tensor("audio.htsat.logmel_extractor.melW").dtype, DType::F32);
  // f32() converts once and is thread-safe: every thread sees the same buffer.
  std::vector<const float*> seen(8);
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) threads.emplace_back([&, i] { seen[i] = half->f32("text.gpt2.wte.weight"); });
  for (auto& t : threads) t.join();
  for (auto* p : seen) EXPECT_EQ(p, seen[0]);
  fs::remove_all(dir);
}

TEST(Convert, RandomModelIsDeterministicAndValid) {
  const std::string dir = temp_dir("random");
  ModelConfig cfg = ModelFile::open(golden_model_path(true))->config();
  write_random_model(dir + "/a.gguf", cfg, DType::F16, 7, kVocab, kMerges);
  write_random_model(dir + "/b.gguf", cfg, DType::F16, 7, kVocab, kMerges);
  write_random_model(dir + "/c.gguf", cfg, DType::F16, 8, kVocab, kMerges);
  EXPECT_EQ(ziptest::slurp(dir + "/a.gguf"), ziptest::slurp(dir + "/b.gguf"));
  EXPECT_NE(ziptest::slurp(dir + "/a.gguf"), ziptest::slurp(dir + "/c.gguf"));
  auto m = ModelFile::open(dir + "/a.gguf");
  EXPECT_EQ(m->config().audio.heads, cfg.audio.heads);
  EXPECT_EQ(m->tensor("text.gpt2.wte.weight").dtype, DType::F16);
  // The full-size tensor list matches ../shared/reference/msclap-2023-tensors.tsv.
  std::string tsv = ziptest::slurp(kShared + "/reference/msclap-2023-tensors.tsv");
  std::map<std::string, std::vector<int64_t>> required;
  for (const TensorSpec& s : required_tensors(msclap_2023_config())) required[s.name] = s.shape;
  size_t matched = 0, pos = tsv.find('\n') + 1;
  while (pos < tsv.size()) {
    size_t nl = tsv.find('\n', pos);
    std::string line = tsv.substr(pos, nl - pos);
    pos = nl == std::string::npos ? tsv.size() : nl + 1;
    std::vector<std::string> f;
    for (size_t a = 0, b; a <= line.size(); a = b + 1) {
      b = line.find('\t', a);
      if (b == std::string::npos) b = line.size();
      f.push_back(line.substr(a, b - a));
    }
    if (f.size() != 4) continue;
    std::string name;
    for (const auto& [to, file, from] : std::vector<std::tuple<std::string, std::string, std::string>>{
             {"audio.htsat.", "CLAP", "audio_encoder.base.htsat."},
             {"audio.proj.", "CLAP", "audio_encoder.projection."},
             {"text.gpt2.", "CLAP", "caption_encoder.base."},
             {"text.proj.", "CLAP", "caption_encoder.projection."},
             {"cap.audio.htsat.", "clapcap", "clap.base.htsat."},
             {"cap.audio.proj.", "clapcap", "clap.projection."},
             {"cap.mapper.", "clapcap", "clap_project."},
             {"cap.gpt2.", "clapcap", "gpt.transformer."}})
      if (f[0].rfind(file, 0) == 0 && f[1].rfind(from, 0) == 0) name = to + f[1].substr(from.size());
    if (f[1] == "logit_scale") name = "logit_scale";
    std::vector<int64_t> shape;
    if (f[2] == "scalar") shape = {1};
    for (size_t a = 0, b; f[2] != "scalar" && a <= f[2].size(); a = b + 1) {
      b = f[2].find('x', a);
      if (b == std::string::npos) b = f[2].size();
      shape.push_back(std::stoll(f[2].substr(a, b - a)));
    }
    auto it = required.find(name);
    if (it == required.end()) continue;  // dropped or optional (STFT, num_batches_tracked, lm_head, head.*)
    EXPECT_EQ(it->second, shape) << f[1];
    ++matched;
  }
  EXPECT_EQ(matched, required.size());
  fs::remove_all(dir);
}
