#include "support/random_model.hpp"

#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>

#include "asdcap/audio.hpp"
#include "asdcap/convert.hpp"
#include "asdcap/error.hpp"
#include "core/files.hpp"
#include "modelio/half.hpp"
#include "modelio/model_writer.hpp"

namespace asdcap::test {
namespace {

struct SplitMix64 {
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  float uniform() { return static_cast<float>(next() >> 40) * (1.f / 16777216.f); }  // [0, 1)
};

bool ends_with(const std::string& s, const char* suffix) {
  size_t n = std::strlen(suffix);
  return s.size() >= n && s.compare(s.size() - n, n, suffix) == 0;
}

// Swin's relative_position_index for a w x w window.
void fill_relative_index(int64_t* out, int64_t w) {
  for (int64_t a = 0; a < w * w; ++a)
    for (int64_t b = 0; b < w * w; ++b) {
      int64_t dy = a / w - b / w + w - 1, dx = a % w - b % w + w - 1;
      out[a * w * w + b] = dy * (2 * w - 1) + dx;
    }
}

}  // namespace

void write_random_model(const std::string& path, const ModelConfig& cfg_in, DType dtype, uint64_t seed,
                        const std::string& vocab, const std::string& merges) {
  if (dtype != DType::F32 && dtype != DType::F16) throw InvalidArgument("random model dtype must be f32 or f16");
  modelio::TokenizerFiles tok = modelio::read_tokenizer_files(vocab, merges);
  modelio::ModelContents mc;
  mc.config = cfg_in;
  modelio::set_token_ids(mc.config, tok, vocab);
  mc.name = "random msclap-architecture model (seed " + std::to_string(seed) + ")";
  SplitMix64 rng{seed};
  for (const TensorSpec& s : required_tensors(mc.config)) {
    CheckpointTensor t;
    t.name = s.name;
    t.shape = s.shape;
    int64_t n = 1;
    for (int64_t d : s.shape) n *= d;
    const bool half = dtype == DType::F16 && f16_eligible(s.name, s.shape);
    t.dtype = s.dtype == DType::I64 ? DType::I64 : half ? DType::F16 : DType::F32;
    t.data.resize(static_cast<size_t>(n) * dtype_size(t.dtype));
    if (t.dtype == DType::I64) {
      fill_relative_index(reinterpret_cast<int64_t*>(t.data.data()),
                          std::llround(std::sqrt(static_cast<double>(s.shape[0]))));
    } else {
      // Weights ~ U(-1, 1) / sqrt(fan_in); norm weights ~1; biases small; variances positive; masks 0.
      const int64_t fan_in = s.shape.size() >= 2 ? n / s.shape[0] : 1;
      float scale = 1.f / std::sqrt(static_cast<float>(fan_in)), offset = 0.f;
      if (ends_with(s.name, "attn_mask"))
        scale = 0.f;
      else if (s.name == "logit_scale")
        scale = 0.f, offset = mc.config.logit_scale;
      else if (ends_with(s.name, "running_var"))
        scale = 0.5f, offset = 1.f;
      else if (s.shape.size() == 1 && (ends_with(s.name, "norm1.weight") || ends_with(s.name, "norm2.weight") ||
                                       ends_with(s.name, "norm.weight") || ends_with(s.name, "ln_1.weight") ||
                                       ends_with(s.name, "ln_2.weight") || ends_with(s.name, "ln_f.weight") ||
                                       ends_with(s.name, "bn0.weight")))
        scale = 0.1f, offset = 1.f;
      else if (s.shape.size() == 1)
        scale = 0.02f;
      // The mel filter bank is not learned: msclap's is librosa's, asdcap's built-in one.
      const std::vector<float>& bank = builtin_mel_filters();
      const float* mel = ends_with(s.name, "melW") && n == static_cast<int64_t>(bank.size()) ? bank.data() : nullptr;
      for (int64_t i = 0; i < n; ++i) {
        float v = mel ? mel[i] : offset + scale * (2.f * rng.uniform() - 1.f);
        if (half) {
          uint16_t h = modelio::float_to_half(v);
          std::memcpy(t.data.data() + 2 * i, &h, 2);
        } else {
          std::memcpy(t.data.data() + 4 * i, &v, 4);
        }
      }
    }
    mc.origins.push_back(s.name + "=random:" + std::to_string(seed));
    mc.tensors.push_back(std::move(t));
  }
  mc.sources.push_back({"vocab", vocab, sha256_file(vocab)});
  mc.sources.push_back({"merges", merges, sha256_file(merges)});
  modelio::write_model_file(path, mc, tok);
}

std::string random_full_model_path(bool clap, bool captioner, DType dtype) {
  if (dtype != DType::F16 && dtype != DType::F32 && dtype != DType::I8)
    throw InvalidArgument("random models are f16, f32 or int8");
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("asdcap-random-models-v3-" + std::to_string(::getuid()));
  fs::create_directories(dir);
  const fs::path out = dir / (std::string("msclap2023") + (clap ? "_clap" : "") + (captioner ? "_cap" : "") + "_" +
                              dtype_name(dtype) + ".gguf");
  if (fs::exists(out)) {
    try {
      ModelFile::open(out.string());
      return out.string();
    } catch (const Error&) {
      // stale or damaged: written again below
    }
  }
  if (dtype == DType::I8) {  // the f16 model's matrices quantized (convert --relayout --dtype int8)
    relayout_model(random_full_model_path(clap, captioner, DType::F16), out.string(), true);
    return out.string();
  }
  ModelConfig cfg = msclap_2023_config();
  cfg.has_clap = clap;
  cfg.has_captioner = captioner;
  const std::string gpt2 = std::string(ASDCAP_SHARED_DIR) + "/assets/gpt2/";
  write_random_model(out.string(), cfg, dtype, 7, gpt2 + "vocab.json", gpt2 + "merges.txt");
  return out.string();
}

}  // namespace asdcap::test
