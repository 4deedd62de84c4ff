#include "asdcap/convert.hpp"

#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>

#include "asdcap/checkpoint.hpp"
#include "asdcap/error.hpp"
#include "core/files.hpp"
#include "model_writer.hpp"
#include "modelio/packed_layout.hpp"
#include "modelio/safetensors.hpp"
#include "schema.hpp"

namespace asdcap {

namespace modelio {

void check_stft(const CheckpointTensor& t, bool imag, int n_fft, const std::string& file) {
  const int64_t bins = n_fft / 2 + 1;
  if (t.dtype != DType::F32 || t.shape != std::vector<int64_t>{bins, 1, n_fft})
    throw ModelError(file + ": " + t.name + " is " + dtype_name(t.dtype) + " " + format_shape(t.shape) +
                     ", expected f32 " + format_shape({bins, 1, n_fft}));
  const float* v = reinterpret_cast<const float*>(t.data.data());
  double worst = 0;
  for (int64_t k = 0; k < bins; ++k)
    for (int64_t n = 0; n < n_fft; ++n) {
      const double w = 0.5 - 0.5 * std::cos(2 * M_PI * static_cast<double>(n) / n_fft);
      const double a = 2 * M_PI * static_cast<double>((k * n) % n_fft) / n_fft;
      const double expect = imag ? -std::sin(a) * w : std::cos(a) * w;
      worst = std::max(worst, std::abs(v[k * n_fft + n] - expect));
    }
  if (worst > 1e-6)
    throw ModelError(file + ": " + t.name + " is not the periodic-Hann DFT asdcap computes (max deviation " +
                     std::to_string(worst) + ")");
}

}  // namespace modelio

namespace {

using modelio::ModelContents;

// One tensor on its way into the model file: asdcap name -> data + where it came from.
struct Mapped {
  CheckpointTensor t;
  std::string origin;  // role:original key
};
using TensorMap = std::map<std::string, Mapped>;

struct PrefixRule {
  const char* from;
  const char* to;
};
constexpr PrefixRule kClapRules[] = {{"audio_encoder.base.htsat.", "audio.htsat."},
                                     {"audio_encoder.projection.", "audio.proj."},
                                     {"caption_encoder.base.", "text.gpt2."},
                                     {"caption_encoder.projection.", "text.proj."}};
constexpr PrefixRule kClapcapRules[] = {{"clap.base.htsat.", "cap.audio.htsat."},
                                        {"clap.projection.", "cap.audio.proj."},
                                        {"clap_project.", "cap.mapper."},
                                        {"gpt.transformer.", "cap.gpt2."}};

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string name_list(const std::vector<std::string>& v, size_t max = 8) {
  std::string r;
  for (size_t i = 0; i < v.size() && i < max; ++i) r += (i ? ", " : "") + v[i];
  if (v.size() > max) r += ", ... (" + std::to_string(v.size()) + " in all)";
  return r;
}

const CheckpointTensor& need(const TensorMap& m, const std::string& name, size_t ndim, const std::string& why) {
  auto it = m.find(name);
  if (it == m.end()) throw ModelError("cannot determine " + why + ": tensor " + name + " missing");
  if (it->second.t.shape.size() != ndim)
    throw ModelError("tensor " + name + " has shape " + format_shape(it->second.t.shape) + ", expected " +
                     std::to_string(ndim) + " dimensions");
  return it->second.t;
}

int count_indexed(const TensorMap& m, const std::string& before, const std::string& after) {
  int n = 0;
  while (m.count(before + std::to_string(n) + after)) ++n;
  return n;
}

int to_int(int64_t v, const std::string& what) {
  if (v <= 0 || v > (int64_t{1} << 30)) throw ModelError("implausible " + what + " " + std::to_string(v));
  return static_cast<int>(v);
}

HtsatConfig infer_htsat(const TensorMap& m, const std::string& pre, FrontEndConfig& fe) {
  const std::string p = pre + "htsat.";
  HtsatConfig h;
  const auto& melw = need(m, p + "logmel_extractor.melW", 2, "the mel filter bank");
  fe.n_fft = to_int((melw.shape[0] - 1) * 2, "n_fft");
  fe.mel_bins = to_int(melw.shape[1], "mel bins");
  const auto& pe = need(m, p + "patch_embed.proj.weight", 4, "HTSAT's embed_dim");
  h.embed_dim = to_int(pe.shape[0], "embed_dim");
  h.in_chans = to_int(pe.shape[1], "in_chans");
  h.patch = to_int(pe.shape[2], "patch size");
  const int stages = count_indexed(m, p + "layers.", ".blocks.0.norm1.weight");
  if (stages == 0)
    throw ModelError("cannot determine HTSAT's depths: tensor " + p + "layers.0.blocks.0.norm1.weight missing");
  h.depths.clear();
  h.heads.clear();
  for (int i = 0; i < stages; ++i) {
    const std::string l = p + "layers." + std::to_string(i) + ".blocks.";
    h.depths.push_back(count_indexed(m, l, ".norm1.weight"));
    const auto& table = need(m, l + "0.attn.relative_position_bias_table", 2, "HTSAT's heads");
    h.heads.push_back(to_int(table.shape[1], "heads"));
    if (i == 0) {  // (2w - 1)^2 rows
      const int64_t side = std::llround(std::sqrt(static_cast<double>(table.shape[0])));
      if (side * side != table.shape[0] || side % 2 == 0)
        throw ModelError("tensor " + l + "0.attn.relative_position_bias_table has " + std::to_string(table.shape[0]) +
                         " rows, not (2w-1)^2");
      h.window = static_cast<int>((side + 1) / 2);
    }
  }
  h.mlp_ratio =
      to_int(need(m, p + "layers.0.blocks.0.mlp.fc1.weight", 2, "mlp_ratio").shape[0] / h.embed_dim, "mlp_ratio");
  h.num_features = to_int(need(m, p + "norm.weight", 1, "num_features").shape[0], "num_features");
  const auto& tscam = need(m, p + "tscam_conv.weight", 4, "num_classes");
  h.num_classes = to_int(tscam.shape[0], "num_classes");
  h.freq_ratio = 4;  // HTSAT's fixed value
  // tscam kernel height = final resolution / freq_ratio; the resolution halves at each stage but the last.
  h.spec_size = to_int(tscam.shape[2] * h.freq_ratio * (int64_t{1} << (stages - 1)) * h.patch, "spec_size");
  return h;
}

Gpt2Config infer_gpt2(const TensorMap& m, const std::string& p, int heads_option) {
  Gpt2Config g;
  const auto& wte = need(m, p + "wte.weight", 2, "GPT-2's vocabulary size");
  g.vocab = to_int(wte.shape[0], "vocabulary size");
  g.n_embd = to_int(wte.shape[1], "n_embd");
  g.n_ctx = to_int(need(m, p + "wpe.weight", 2, "GPT-2's n_ctx").shape[0], "n_ctx");
  g.n_layer = count_indexed(m, p + "h.", ".ln_1.weight");
  if (g.n_layer == 0) throw ModelError("cannot determine GPT-2's n_layer: tensor " + p + "h.0.ln_1.weight missing");
  g.n_head = heads_option > 0 ? heads_option : std::max(1, g.n_embd / 64);
  if (g.n_embd % g.n_head)
    throw InvalidArgument("GPT-2 n_embd " + std::to_string(g.n_embd) + " is not divisible by " +
                          std::to_string(g.n_head) + " heads (set the text encoder's / caption decoder's head count)");
  return g;
}

MapperConfig infer_mapper(const TensorMap& m) {
  MapperConfig c;
  const auto& pc = need(m, "cap.mapper.prefix_const", 2, "the mapper's clip_length");
  c.clip_length = to_int(pc.shape[0], "clip_length");
  c.dim = to_int(pc.shape[1], "mapper dim");
  const auto& lin = need(m, "cap.mapper.linear.weight", 2, "the mapper's prefix_length");
  if (lin.shape[0] % c.dim) throw ModelError("cap.mapper.linear.weight rows are not a multiple of the mapper dim");
  c.prefix_length = to_int(lin.shape[0] / c.dim, "prefix_length");
  c.layers = count_indexed(m, "cap.mapper.transformer.layers.", ".norm1.weight");
  if (c.layers == 0)
    throw ModelError("cannot determine the mapper's layers: cap.mapper.transformer.layers.0.* missing");
  c.mlp_hidden =
      to_int(need(m, "cap.mapper.transformer.layers.0.mlp.fc1.weight", 2, "mlp_hidden").shape[0], "mlp_hidden");
  c.heads = 8;  // msclap's TransformerMapper uses 8 heads (not stored in the checkpoint)
  return c;
}

class Converter {
 public:
  explicit Converter(const ConvertOptions& o) : o_(o) {}
  ConvertReport run();

 private:
  void map_checkpoint(const std::string& path, const std::string& role, const PrefixRule* rules, size_t n_rules);
  void fill_from_gpt2();
  void check_and_select(ModelContents& out);
  // The dtype a float tensor is written in (modelio::converted_dtype).
  DType stored_dtype(const std::string& name, const std::vector<int64_t>& shape) const {
    return modelio::converted_dtype(o_.dtype, f16_eligible(name, shape),
                                    modelio::msclap_packed_out_dim(name).has_value());
  }

  const ConvertOptions& o_;
  ConvertReport report_;
  TensorMap mapped_;
  std::map<std::string, CheckpointTensor> held_;  // stft matrices / lm_head, checked then dropped
};

void Converter::map_checkpoint(const std::string& path, const std::string& role, const PrefixRule* rules,
                               size_t n_rules) {
  for (CheckpointTensor& t : read_torch_checkpoint(path)) {
    const std::string key = t.name;
    if (ends_with(key, "spectrogram_extractor.stft.conv_real.weight") ||
        ends_with(key, "spectrogram_extractor.stft.conv_imag.weight") || key == "gpt.lm_head.weight") {
      held_[role + ":" + key] = std::move(t);
      continue;
    }
    if (ends_with(key, "bn0.num_batches_tracked")) continue;  // a training counter
    std::string name;
    if (role == "clap" && key == "logit_scale") name = "logit_scale";
    for (size_t r = 0; r < n_rules && name.empty(); ++r)
      if (key.rfind(rules[r].from, 0) == 0) name = rules[r].to + key.substr(std::strlen(rules[r].from));
    if (name.empty()) {
      report_.unexpected.push_back(role + ":" + key);
      continue;
    }
    t.name = name;
    if (!mapped_.emplace(name, Mapped{std::move(t), role + ":" + key}).second)
      throw FormatError(path + ": tensor " + key + " appears twice");
  }
}

// msclap loads its checkpoints with strict=False over Hugging Face's pretrained gpt2: GPT-2 tensors a
// checkpoint lacks come from there.
void Converter::fill_from_gpt2() {
  if (o_.gpt2_safetensors.empty()) return;
  std::vector<std::string> prefixes;
  if (!o_.clap.empty()) prefixes.push_back("text.gpt2.");
  if (!o_.clapcap.empty()) prefixes.push_back("cap.gpt2.");
  for (CheckpointTensor& t : read_safetensors(o_.gpt2_safetensors)) {
    std::string key = t.name.rfind("transformer.", 0) == 0 ? t.name.substr(12) : t.name;
    if (ends_with(key, "attn.bias") && !ends_with(key, "c_attn.bias")) continue;  // causal-mask buffers
    if (ends_with(key, "attn.masked_bias") || key == "lm_head.weight") continue;
    for (const std::string& p : prefixes) {
      if (mapped_.count(p + key)) continue;
      const std::string name = p + key;
      CheckpointTensor copy = t;
      copy.name = name;
      report_.filled_from_gpt2.push_back(name);
      mapped_.emplace(name, Mapped{std::move(copy), "gpt2:" + t.name});
    }
  }
}

void Converter::check_and_select(ModelContents& out) {
  ModelConfig& c = out.config;
  std::vector<TensorSpec> specs = required_tensors(c);
  std::vector<std::string> missing;
  std::set<std::string> wanted;
  for (const TensorSpec& s : specs) {
    wanted.insert(s.name);
    auto it = mapped_.find(s.name);
    if (it == mapped_.end()) {
      missing.push_back(s.name);
      continue;
    }
    CheckpointTensor& t = it->second.t;
    std::vector<int64_t> shape = t.shape.empty() ? std::vector<int64_t>{1} : t.shape;
    if (shape != s.shape)
      throw ModelError("tensor " + it->second.origin + " has shape " + format_shape(t.shape) + ", expected " +
                       format_shape(s.shape) + " for this model's sizes");
    t.shape = shape;
  }
  if (!missing.empty()) {
    std::string hint = o_.gpt2_safetensors.empty() ? " (GPT-2 tensors can come from --gpt2 model.safetensors)" : "";
    throw ModelError("the checkpoints lack " + std::to_string(missing.size()) + " tensors: " + name_list(missing) +
                     hint);
  }
  for (const TensorSpec& s : specs) {
    Mapped& m = mapped_.at(s.name);
    CheckpointTensor& t = m.t;
    if (s.dtype == DType::I64) {
      if (t.dtype == DType::I32) {
        std::vector<char> wide(t.data.size() * 2);
        for (size_t i = 0; i < t.data.size() / 4; ++i) {
          int32_t v;
          std::memcpy(&v, t.data.data() + 4 * i, 4);
          int64_t w = v;
          std::memcpy(wide.data() + 8 * i, &w, 8);
        }
        t.data = std::move(wide);
        t.dtype = DType::I64;
      } else if (t.dtype != DType::I64) {
        throw ModelError("tensor " + m.origin + " is " + dtype_name(t.dtype) + ", expected integers");
      }
    } else {
      if (t.dtype == DType::I64 || t.dtype == DType::I32)
        throw ModelError("tensor " + m.origin + " is " + dtype_name(t.dtype) + ", expected floats");
      modelio::convert_float_dtype(t, stored_dtype(s.name, s.shape));
    }
    out.origins.push_back(s.name + "=" + m.origin);
    out.tensors.push_back(std::move(t));
  }
  for (auto& [name, m] : mapped_) {
    if (wanted.count(name)) continue;
    if (modelio::optional_tensor(name) &&
        (m.t.dtype == DType::F32 || m.t.dtype == DType::F16 || m.t.dtype == DType::BF16)) {
      modelio::convert_float_dtype(m.t, stored_dtype(name, m.t.shape));
      out.origins.push_back(name + "=" + m.origin);
      out.tensors.push_back(std::move(m.t));
    } else {
      report_.unexpected.push_back(m.origin);
    }
  }
}

ConvertReport Converter::run() {
  if (o_.clap.empty() && o_.clapcap.empty())
    throw InvalidArgument("convert: no checkpoint given (a CLAP checkpoint, a captioner checkpoint or both)");
  if (o_.vocab.empty() || o_.merges.empty())
    throw InvalidArgument("convert: the GPT-2 tokenizer files (vocab.json, merges.txt) are not given");
  if (o_.out.empty()) throw InvalidArgument("convert: no output file given");
  if (o_.dtype != DType::F32 && o_.dtype != DType::F16 && o_.dtype != DType::BF16 && o_.dtype != DType::I8)
    throw InvalidArgument("convert: the weight dtype must be f32, f16, bf16 or int8");
  // Fail before the slow part when the output cannot be written.
  std::filesystem::path out(o_.out);
  std::string dir = out.has_parent_path() ? out.parent_path().string() : ".";
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec))
    throw IoError(o_.out + ": cannot write: folder " + dir + " does not exist");
  if (::access(dir.c_str(), W_OK) != 0) throw IoError(o_.out + ": cannot write: folder " + dir + " is not writable");
  if (std::filesystem::is_directory(out, ec)) throw IoError(o_.out + ": cannot write: is a directory");

  modelio::TokenizerFiles tok = modelio::read_tokenizer_files(o_.vocab, o_.merges);
  ModelContents mc;
  mc.int8 = o_.dtype == DType::I8;
  if (!o_.clap.empty()) map_checkpoint(o_.clap, "clap", kClapRules, std::size(kClapRules));
  if (!o_.clapcap.empty()) map_checkpoint(o_.clapcap, "clapcap", kClapcapRules, std::size(kClapcapRules));
  fill_from_gpt2();

  ModelConfig& c = mc.config;
  c.has_clap = !o_.clap.empty();
  c.has_captioner = !o_.clapcap.empty();
  try {
    if (c.has_clap) {
      c.audio = infer_htsat(mapped_, "audio.", c.front_end);
      c.proj_dim = to_int(need(mapped_, "audio.proj.linear1.weight", 2, "proj_dim").shape[0], "proj_dim");
      c.text = infer_gpt2(mapped_, "text.gpt2.", o_.text_heads);
      const auto& ls = mapped_.find("logit_scale");
      if (ls == mapped_.end() || ls->second.t.data.size() != 4 || ls->second.t.dtype != DType::F32)
        throw ModelError("tensor logit_scale missing or not one f32 value");
      std::memcpy(&c.logit_scale, ls->second.t.data.data(), 4);
    }
    if (c.has_captioner) {
      FrontEndConfig fe = c.front_end;
      c.cap_audio = infer_htsat(mapped_, "cap.audio.", fe);
      if (c.has_clap && (fe.n_fft != c.front_end.n_fft || fe.mel_bins != c.front_end.mel_bins))
        throw ModelError("CLAP and the captioner use different mel front ends");
      c.front_end = fe;
      int cap_proj = to_int(need(mapped_, "cap.audio.proj.linear1.weight", 2, "proj_dim").shape[0], "proj_dim");
      if (c.has_clap && cap_proj != c.proj_dim)
        throw ModelError("CLAP and the captioner project to different sizes (" + std::to_string(c.proj_dim) + " vs " +
                         std::to_string(cap_proj) + ")");
      c.proj_dim = cap_proj;
      c.mapper = infer_mapper(mapped_);
      c.decoder = infer_gpt2(mapped_, "cap.gpt2.", o_.decoder_heads);
    }
  } catch (const InvalidArgument&) {
    throw;
  } catch (const ModelError& e) {
    throw ModelError(std::string(o_.clapcap.empty() ? o_.clap : o_.clap + " + " + o_.clapcap) + ": " + e.what());
  }
  modelio::set_token_ids(c, tok, o_.vocab);
  modelio::check_config(c, o_.clap.empty() ? o_.clapcap : o_.clap);

  for (const auto& [key, t] : held_) {
    const std::string file = key.rfind("clap:", 0) == 0 ? o_.clap : o_.clapcap;
    if (ends_with(key, "conv_real.weight"))
      modelio::check_stft(t, false, c.front_end.n_fft, file);
    else if (ends_with(key, "conv_imag.weight"))
      modelio::check_stft(t, true, c.front_end.n_fft, file);
    else {  // gpt.lm_head.weight: asdcap ties it to the decoder's wte
      auto wte = mapped_.find("cap.gpt2.wte.weight");
      if (wte == mapped_.end() || wte->second.t.shape != t.shape || wte->second.t.dtype != t.dtype ||
          wte->second.t.data != t.data)
        throw ModelError(o_.clapcap +
                         ": gpt.lm_head.weight differs from gpt.transformer.wte.weight; asdcap needs them tied");
    }
  }
  try {
    check_and_select(mc);
  } catch (const ModelError& e) {
    throw ModelError(std::string(o_.clapcap.empty() ? o_.clap : o_.clap + " + " + o_.clapcap) + ": " + e.what());
  }
  for (const auto& u : report_.unexpected) report_.warnings.push_back("unexpected tensor ignored: " + u);

  mc.filled_from_gpt2 = report_.filled_from_gpt2;
  mc.name =
      c.has_captioner ? (c.has_clap ? "msclap 2023 (CLAP + clapcap)" : "msclap 2023 clapcap") : "msclap 2023 CLAP";
  auto add_source = [&](const std::string& role, const std::string& path) {
    if (!path.empty()) mc.sources.push_back({role, path, sha256_file(path)});
  };
  add_source("clap", o_.clap);
  add_source("clapcap", o_.clapcap);
  add_source("gpt2", o_.gpt2_safetensors);
  add_source("vocab", o_.vocab);
  add_source("merges", o_.merges);
  modelio::write_model_file(o_.out, mc, tok);
  report_.config = c;
  return report_;
}

}  // namespace

ConvertReport convert_model(const ConvertOptions& opts) { return Converter(opts).run(); }

ModelConfig msclap_2023_config() {
  ModelConfig c;
  c.has_clap = true;
  c.has_captioner = true;
  c.audio = HtsatConfig{};  // defaults are the 2023 sizes: embed 96, depths 2-2-6-2, heads 4-8-16-32, window 8
  c.cap_audio = c.audio;
  c.proj_dim = 1024;
  c.text = Gpt2Config{};
  c.decoder = Gpt2Config{};
  c.mapper = MapperConfig{};
  c.logit_scale = std::log(1.f / 0.07f);
  return c;
}

}  // namespace asdcap
