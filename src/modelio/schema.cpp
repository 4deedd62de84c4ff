#include "schema.hpp"

#include <algorithm>

#include "asdcap/convert.hpp"
#include "asdcap/error.hpp"

namespace asdcap::modelio {
namespace {

std::string key(const std::string& k, const char* prefix = kPrefix) { return prefix + k; }

// The metadata of a model file, as one list walked by the writer and by the reader (so the two can
// not drift apart): `io` is Write or Read below, `c` a const or a mutable ModelConfig. Keys are
// under kPrefix but for the tokenizer's (io.global); a section is present when its flag says so.
template <class Io, class Htsat>
void visit_htsat(Io& io, const std::string& p, Htsat& h) {
  io.integer(p + "spec_size", h.spec_size);
  io.integer(p + "patch", h.patch);
  io.integer(p + "in_chans", h.in_chans);
  io.integer(p + "embed_dim", h.embed_dim);
  io.integers(p + "depths", h.depths);
  io.integers(p + "heads", h.heads);
  io.integer(p + "window", h.window);
  io.integer(p + "mlp_ratio", h.mlp_ratio);
  io.integer(p + "num_features", h.num_features);
  io.integer(p + "num_classes", h.num_classes);
  io.integer(p + "freq_ratio", h.freq_ratio);
}

template <class Io, class Gpt2>
void visit_gpt2(Io& io, const std::string& p, Gpt2& g) {
  io.integer(p + "vocab", g.vocab);
  io.integer(p + "n_ctx", g.n_ctx);
  io.integer(p + "n_embd", g.n_embd);
  io.integer(p + "n_head", g.n_head);
  io.integer(p + "n_layer", g.n_layer);
}

template <class Io, class Config>
void visit_config(Io& io, Config& c) {
  io.flag("has_clap", c.has_clap);
  io.flag("has_captioner", c.has_captioner);
  auto& fe = c.front_end;
  io.integer("front_end.sample_rate", fe.sample_rate);
  io.integer64("front_end.window_samples", fe.window_samples);
  io.integer("front_end.n_fft", fe.n_fft);
  io.integer("front_end.hop", fe.hop);
  io.integer("front_end.mel_bins", fe.mel_bins);
  io.integer("front_end.mel_sample_rate", fe.mel_sample_rate);
  io.real("front_end.fmin", fe.fmin);
  io.real("front_end.fmax", fe.fmax);
  io.integer("proj_dim", c.proj_dim);
  if (c.has_clap) {
    visit_htsat(io, "audio.", c.audio);
    visit_gpt2(io, "text.", c.text);
    io.integer("text_len", c.text_len);
    io.real("logit_scale", c.logit_scale);
  }
  if (c.has_captioner) {
    visit_htsat(io, "cap_audio.", c.cap_audio);
    auto& m = c.mapper;
    io.integer("mapper.prefix_length", m.prefix_length);
    io.integer("mapper.clip_length", m.clip_length);
    io.integer("mapper.layers", m.layers);
    io.integer("mapper.heads", m.heads);
    io.integer("mapper.dim", m.dim);
    io.integer("mapper.mlp_hidden", m.mlp_hidden);
    visit_gpt2(io, "decoder.", c.decoder);
    io.integer64("caption.stop_token_id", c.stop_id);
  }
  io.global("tokenizer.ggml.padding_token_id", c.pad_id);
  io.global("tokenizer.ggml.eos_token_id", c.eos_id);
}

struct Write {
  GgufWriter& w;
  const char* prefix = kPrefix;
  void flag(const std::string& k, bool v) { w.set_bool(key(k, prefix), v); }
  void integer(const std::string& k, int v) { w.set_int(key(k, prefix), v); }
  void integer64(const std::string& k, int64_t v) { w.set_int(key(k, prefix), v); }
  void real(const std::string& k, float v) { w.set_float(key(k, prefix), v); }
  void integers(const std::string& k, const std::vector<int>& v) {
    w.set_int_array(key(k, prefix), {v.begin(), v.end()});
  }
  void text(const std::string& k, const std::string& v) { w.set_string(key(k, prefix), v); }
  void global(const std::string& k, int64_t v) { w.set_int(k, v); }
};

class Read {
 public:
  Read(const GgufView& g, const std::string& file, const char* prefix = kPrefix)
      : g_(g), file_(file), prefix_(prefix) {}
  void flag(const std::string& k, bool& v) const { v = get(key(k, prefix_), GgufValue::Kind::Bool).b; }
  void integer(const std::string& k, int& v) const {
    const int64_t x = get(key(k, prefix_), GgufValue::Kind::Int).i;
    if (x < -(int64_t{1} << 31) || x > (int64_t{1} << 31) - 1) throw bad(k, "out of range");
    v = static_cast<int>(x);
  }
  void integer64(const std::string& k, int64_t& v) const { v = get(key(k, prefix_), GgufValue::Kind::Int).i; }
  void real(const std::string& k, float& v) const {
    v = static_cast<float>(get(key(k, prefix_), GgufValue::Kind::Float).f);
  }
  void integers(const std::string& k, std::vector<int>& v) const {
    const auto& xs = get(key(k, prefix_), GgufValue::Kind::IntArray).ints;
    if (xs.size() > 16) throw bad(k, "too long");
    v.clear();
    for (int64_t x : xs) {
      if (x < 0 || x > (1 << 20)) throw bad(k, "out of range");
      v.push_back(static_cast<int>(x));
    }
  }
  void text(const std::string& k, std::string& v) const { v = get(key(k, prefix_), GgufValue::Kind::String).s; }
  void global(const std::string& k, int64_t& v) const { v = get(k, GgufValue::Kind::Int).i; }

 private:
  const GgufValue& get(const std::string& k, GgufValue::Kind kind) const {
    auto it = g_.kv.find(k);
    if (it == g_.kv.end()) throw ModelError(file_ + ": metadata key " + k + " missing");
    if (it->second.kind != kind) throw ModelError(file_ + ": metadata key " + k + " has the wrong type");
    return it->second;
  }
  ModelError bad(const std::string& k, const std::string& what) const {
    return ModelError(file_ + ": metadata key " + key(k, prefix_) + " " + what);
  }
  const GgufView& g_;
  const std::string& file_;
  const char* prefix_;
};

// The metadata of a PANNs CNN14 file (keys under kPannsPrefix).
template <class Io, class Config>
void visit_panns(Io& io, Config& c) {
  io.text("variant", c.variant);
  io.integer("sample_rate", c.sample_rate);
  io.integer("n_fft", c.n_fft);
  io.integer("hop", c.hop);
  io.integer("mel_bins", c.mel_bins);
  io.real("fmin", c.fmin);
  io.real("fmax", c.fmax);
  io.integers("conv_widths", c.widths);
  io.integer("embedding_dim", c.embedding_dim);
  io.integer("classes", c.classes);
  io.real("bn_eps", c.bn_eps);
}

void check_htsat(const HtsatConfig& h, const std::string& what, const std::string& file) {
  auto bad = [&](const std::string& m) { return ModelError(file + ": " + what + ": " + m); };
  if (h.embed_dim <= 0 || h.patch <= 0 || h.in_chans <= 0 || h.window <= 0 || h.mlp_ratio <= 0 || h.num_classes <= 0 ||
      h.freq_ratio <= 0 || h.spec_size <= 0)
    throw bad("non-positive size");
  if (h.depths.empty() || h.depths.size() > 8 || h.depths.size() != h.heads.size()) throw bad("bad depths/heads");
  if (h.embed_dim > (1 << 16) || h.patch > 64 || h.window > 64 || h.spec_size > (1 << 14) || h.mlp_ratio > 64 ||
      h.num_classes > (1 << 20) || h.in_chans > 64)
    throw bad("implausible sizes");
  int res = h.spec_size / h.patch;
  int dim = h.embed_dim;
  for (size_t i = 0; i < h.depths.size(); ++i) {
    if (h.depths[i] <= 0 || h.depths[i] > 64 || h.heads[i] <= 0 || dim % h.heads[i])
      throw bad("bad depth/heads at stage " + std::to_string(i));
    int w = std::min(h.window, res);
    if (w <= 0 || res % w) throw bad("resolution not divisible by the window at stage " + std::to_string(i));
    if (i + 1 < h.depths.size()) {
      if (res % 2) throw bad("odd resolution at stage " + std::to_string(i));
      res /= 2;
      dim *= 2;
    }
  }
  if (dim != h.num_features) throw bad("num_features " + std::to_string(h.num_features) + " != " + std::to_string(dim));
  if (res % h.freq_ratio) throw bad("final resolution not divisible by freq_ratio");
}

void check_gpt2(const Gpt2Config& g, const std::string& what, const std::string& file) {
  if (g.vocab <= 0 || g.n_ctx <= 0 || g.n_embd <= 0 || g.n_layer <= 0 || g.n_head <= 0 || g.n_embd % g.n_head ||
      g.vocab > (1 << 22) || g.n_ctx > (1 << 20) || g.n_embd > (1 << 16) || g.n_layer > 256)
    throw ModelError(file + ": " + what + ": bad sizes (n_embd " + std::to_string(g.n_embd) + ", n_head " +
                     std::to_string(g.n_head) + ")");
}

}  // namespace

void write_config(GgufWriter& w, const ModelConfig& c) {
  Write io{w};
  visit_config(io, c);
  w.set_int("tokenizer.ggml.bos_token_id", c.eos_id);  // for GGUF readers; GPT-2's BOS is its EOS
}

ModelConfig read_config(const GgufView& g, const std::string& file) {
  const Read io(g, file);
  ModelConfig c;
  visit_config(io, c);
  check_config(c, file);
  return c;
}

void check_config(const ModelConfig& c, const std::string& file) {
  if (!c.has_clap && !c.has_captioner) throw ModelError(file + ": the model holds neither CLAP nor the captioner");
  const FrontEndConfig& fe = c.front_end;
  if (fe.n_fft <= 0 || fe.n_fft > (1 << 16) || fe.mel_bins <= 0 || fe.mel_bins > 4096 || fe.hop <= 0 ||
      fe.sample_rate <= 0 || fe.window_samples <= 0)
    throw ModelError(file + ": bad front-end parameters");
  if (c.proj_dim <= 0 || c.proj_dim > (1 << 16)) throw ModelError(file + ": bad proj_dim");
  if (c.has_clap) {
    check_htsat(c.audio, "audio encoder", file);
    check_gpt2(c.text, "text encoder", file);
    if (c.text_len <= 0) throw ModelError(file + ": bad text_len");
  }
  if (c.has_captioner) {
    check_htsat(c.cap_audio, "captioner audio encoder", file);
    check_gpt2(c.decoder, "caption decoder", file);
    const MapperConfig& m = c.mapper;
    if (m.prefix_length <= 0 || m.clip_length < 0 || m.layers <= 0 || m.heads <= 0 || m.dim <= 0 || m.dim % m.heads ||
        m.prefix_length > 4096 || m.clip_length > 4096 || m.layers > 256 || m.mlp_hidden > (1 << 20) ||
        m.mlp_hidden <= 0 || m.dim != c.decoder.n_embd)
      throw ModelError(file + ": bad mapper sizes");
  }
  if (c.has_clap && c.has_captioner && c.text.vocab != c.decoder.vocab)
    throw ModelError(file + ": the text encoder and the decoder have different vocabularies");
  for (int64_t id : {c.pad_id, c.eos_id, c.has_captioner ? c.stop_id : c.eos_id}) {
    int vocab = c.has_clap ? c.text.vocab : c.decoder.vocab;
    if (id < 0 || id >= vocab) throw ModelError(file + ": token id " + std::to_string(id) + " outside the vocabulary");
  }
}

namespace {
// A configuration section of its own architecture's keys (under `prefix`), read then checked.
template <class Config, class Visit, class Check>
Config read_section(const GgufView& g, const std::string& file, const char* prefix, Visit visit, Check check) {
  const Read io(g, file, prefix);
  Config c;
  visit(io, c);
  check(c, file);
  return c;
}
}  // namespace

void write_panns_config(GgufWriter& w, const PannsConfig& c) {
  Write io{w, kPannsPrefix};
  visit_panns(io, c);
}

PannsConfig read_panns_config(const GgufView& g, const std::string& file) {
  return read_section<PannsConfig>(
      g, file, kPannsPrefix, [](const Read& io, PannsConfig& c) { visit_panns(io, c); }, check_panns_config);
}

void check_panns_config(const PannsConfig& c, const std::string& file) {
  auto bad = [&](const std::string& m) { return ModelError(file + ": PANNs model: " + m); };
  if (c.sample_rate < 1000 || c.sample_rate > 384000 || c.n_fft < 16 || c.n_fft > (1 << 16) || c.n_fft % 2 ||
      c.hop <= 0 || c.hop > c.n_fft || c.mel_bins <= 0 || c.mel_bins > 1024 || !(c.fmin >= 0) || !(c.fmax > c.fmin) ||
      c.fmax > c.sample_rate / 2.f)
    throw bad("bad front-end parameters");
  if (c.widths.size() != 6) throw bad("CNN14 has 6 conv blocks, the file lists " + std::to_string(c.widths.size()));
  for (int w : c.widths)
    if (w <= 0 || w > (1 << 14)) throw bad("bad conv width " + std::to_string(w));
  if (c.embedding_dim <= 0 || c.embedding_dim > (1 << 16) || c.classes <= 0 || c.classes > (1 << 16))
    throw bad("bad embedding or class count");
  if (!(c.bn_eps > 0) || c.bn_eps > 1) throw bad("bad BatchNorm eps");
}

std::vector<TensorSpec> panns_required_tensors(const PannsConfig& c) {
  std::vector<TensorSpec> out;
  auto add = [&](std::string n, std::vector<int64_t> s) { out.push_back({std::move(n), std::move(s), DType::F32}); };
  const int64_t bins = c.freq_bins();
  add("spectrogram_extractor.stft.conv_real.weight", {bins, 1, c.n_fft});
  add("spectrogram_extractor.stft.conv_imag.weight", {bins, 1, c.n_fft});
  add("logmel_extractor.melW", {bins, c.mel_bins});
  auto bn = [&](const std::string& p, int64_t n) {
    for (const char* s : {"weight", "bias", "running_mean", "running_var"}) add(p + s, {n});
  };
  bn("bn0.", c.mel_bins);
  int64_t in = 1;
  for (size_t i = 0; i < c.widths.size(); ++i) {
    const std::string b = "conv_block" + std::to_string(i + 1) + ".";
    const int64_t w = c.widths[i];
    add(b + "conv1.weight", {w, in, 3, 3});
    add(b + "conv2.weight", {w, w, 3, 3});
    bn(b + "bn1.", w);
    bn(b + "bn2.", w);
    in = w;
  }
  add("fc1.weight", {c.embedding_dim, in});
  add("fc1.bias", {c.embedding_dim});
  add("fc_audioset.weight", {c.classes, c.embedding_dim});
  add("fc_audioset.bias", {c.classes});
  return out;
}

bool panns_f16_eligible(const std::string& name) {
  return name.rfind("conv_block", 0) == 0 ? name.find(".conv") != std::string::npos
                                          : name == "fc1.weight" || name == "fc_audioset.weight";
}

// The metadata of a LAION-CLAP file (keys under kLaionPrefix).
template <class Io, class Config>
void visit_laion(Io& io, Config& c) {
  visit_htsat(io, "audio.", c.audio);
  io.integer("joint_dim", c.joint_dim);
  io.integer("sample_rate", c.sample_rate);
  io.integer64("clip_samples", c.clip_samples);
  io.integer("n_fft", c.n_fft);
  io.integer("hop", c.hop);
  io.integer("mel_bins", c.mel_bins);
  io.real("fmin", c.fmin);
  io.real("fmax", c.fmax);
  io.integer("text.vocab", c.text_vocab);
  io.integer("text.hidden", c.text_hidden);
  io.integer("text.layers", c.text_layers);
  io.integer("text.intermediate", c.text_intermediate);
  io.integer("text.max_positions", c.text_positions);
  io.real("logit_scale_a", c.logit_scale_a);
  io.real("logit_scale_t", c.logit_scale_t);
}

void write_laion_config(GgufWriter& w, const LaionConfig& c) {
  Write io{w, kLaionPrefix};
  visit_laion(io, c);
}

LaionConfig read_laion_config(const GgufView& g, const std::string& file) {
  return read_section<LaionConfig>(
      g, file, kLaionPrefix, [](const Read& io, LaionConfig& c) { visit_laion(io, c); }, check_laion_config);
}

void check_laion_config(const LaionConfig& c, const std::string& file) {
  check_htsat(c.audio, "LAION-CLAP audio branch", file);
  auto bad = [&](const std::string& m) { return ModelError(file + ": LAION-CLAP model: " + m); };
  // asdcap's front end: the 1024-point FFT, 64 mel bins and the 256 x 256 image of 1024 frames or fewer.
  if (c.n_fft != 1024 || c.mel_bins != 64 || c.hop <= 0 || c.sample_rate < 1000 || c.sample_rate > 384000 ||
      c.clip_samples <= 0 || c.clip_samples / c.hop + 1 > 4 * c.audio.spec_size || !(c.fmin >= 0) ||
      !(c.fmax > c.fmin) || c.fmax > c.sample_rate / 2.f)
    throw bad("unsupported front end (n_fft " + std::to_string(c.n_fft) + ", hop " + std::to_string(c.hop) + ", " +
              std::to_string(c.mel_bins) + " mel bins, " + std::to_string(c.clip_samples) + " samples)");
  if (c.audio.spec_size != 256 || c.audio.freq_ratio != 4 || c.audio.in_chans != 1)
    throw bad("unsupported HTSAT image (spec_size " + std::to_string(c.audio.spec_size) + ", freq_ratio " +
              std::to_string(c.audio.freq_ratio) + ")");
  if (c.joint_dim <= 0 || c.joint_dim > (1 << 16)) throw bad("bad embedding size " + std::to_string(c.joint_dim));
  for (int v : {c.text_vocab, c.text_hidden, c.text_layers, c.text_intermediate, c.text_positions})
    if (v < 0 || v > (1 << 22)) throw bad("bad text branch sizes");
}

std::vector<TensorSpec> laion_audio_tensors(const LaionConfig& c) {
  std::vector<TensorSpec> out;
  htsat_module_tensors(out, "audio_branch.", c.audio, c.n_fft, c.mel_bins);
  const int64_t j = c.joint_dim, f = c.audio.num_features;
  out.push_back({"audio_projection.0.weight", {j, f}, DType::F32});
  out.push_back({"audio_projection.0.bias", {j}, DType::F32});
  out.push_back({"audio_projection.2.weight", {j, j}, DType::F32});
  out.push_back({"audio_projection.2.bias", {j}, DType::F32});
  return out;
}

bool optional_tensor(const std::string& name) {
  auto ends = [&](const std::string& s) {
    return name.size() >= s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0;
  };
  return ends("htsat.head.weight") || ends("htsat.head.bias");
}

}  // namespace asdcap::modelio

namespace asdcap {
namespace modelio {

// The HTSAT module's tensors under prefix p (melW, bn0, patch embedding, Swin stages, norm, tscam).
void htsat_module_tensors(std::vector<TensorSpec>& out, const std::string& p, const HtsatConfig& h, int n_fft,
                          int mel_bins) {
  auto add = [&](const std::string& n, std::vector<int64_t> s, DType t = DType::F32) {
    out.push_back({p + n, std::move(s), t});
  };
  const int64_t E = h.embed_dim, bins = n_fft / 2 + 1;
  add("logmel_extractor.melW", {bins, mel_bins});
  for (const char* s : {"weight", "bias", "running_mean", "running_var"}) add(std::string("bn0.") + s, {mel_bins});
  add("patch_embed.proj.weight", {E, h.in_chans, h.patch, h.patch});
  add("patch_embed.proj.bias", {E});
  add("patch_embed.norm.weight", {E});
  add("patch_embed.norm.bias", {E});
  int64_t res = h.spec_size / h.patch, dim = E;
  for (size_t i = 0; i < h.depths.size(); ++i) {
    const int64_t w = std::min<int64_t>(h.window, res), heads = h.heads[i], hidden = dim * h.mlp_ratio;
    const bool can_shift = res > h.window;
    for (int j = 0; j < h.depths[i]; ++j) {
      const std::string b = "layers." + std::to_string(i) + ".blocks." + std::to_string(j) + ".";
      add(b + "norm1.weight", {dim});
      add(b + "norm1.bias", {dim});
      add(b + "attn.relative_position_bias_table", {(2 * w - 1) * (2 * w - 1), heads});
      add(b + "attn.relative_position_index", {w * w, w * w}, DType::I64);
      add(b + "attn.qkv.weight", {3 * dim, dim});
      add(b + "attn.qkv.bias", {3 * dim});
      add(b + "attn.proj.weight", {dim, dim});
      add(b + "attn.proj.bias", {dim});
      add(b + "norm2.weight", {dim});
      add(b + "norm2.bias", {dim});
      add(b + "mlp.fc1.weight", {hidden, dim});
      add(b + "mlp.fc1.bias", {hidden});
      add(b + "mlp.fc2.weight", {dim, hidden});
      add(b + "mlp.fc2.bias", {dim});
      if (can_shift && j % 2 == 1) add(b + "attn_mask", {(res / w) * (res / w), w * w, w * w});
    }
    if (i + 1 < h.depths.size()) {
      const std::string d = "layers." + std::to_string(i) + ".downsample.";
      add(d + "reduction.weight", {2 * dim, 4 * dim});
      add(d + "norm.weight", {4 * dim});
      add(d + "norm.bias", {4 * dim});
      res /= 2;
      dim *= 2;
    }
  }
  add("norm.weight", {h.num_features});
  add("norm.bias", {h.num_features});
  add("tscam_conv.weight", {h.num_classes, h.num_features, res / h.freq_ratio, 3});
  add("tscam_conv.bias", {h.num_classes});
}

}  // namespace modelio

namespace {

void htsat_tensors(std::vector<TensorSpec>& out, const std::string& pre, const HtsatConfig& h, const FrontEndConfig& fe,
                   int proj_dim) {
  modelio::htsat_module_tensors(out, pre + "htsat.", h, fe.n_fft, fe.mel_bins);
  out.push_back({pre + "proj.linear1.weight", {proj_dim, h.num_features}, DType::F32});
  out.push_back({pre + "proj.linear2.weight", {proj_dim, proj_dim}, DType::F32});
  out.push_back({pre + "proj.layer_norm.weight", {proj_dim}, DType::F32});
  out.push_back({pre + "proj.layer_norm.bias", {proj_dim}, DType::F32});
}

void gpt2_tensors(std::vector<TensorSpec>& out, const std::string& p, const Gpt2Config& g) {
  auto add = [&](const std::string& n, std::vector<int64_t> s) { out.push_back({p + n, std::move(s), DType::F32}); };
  const int64_t C = g.n_embd;
  add("wte.weight", {g.vocab, C});
  add("wpe.weight", {g.n_ctx, C});
  for (int i = 0; i < g.n_layer; ++i) {
    const std::string h = "h." + std::to_string(i) + ".";
    add(h + "ln_1.weight", {C});
    add(h + "ln_1.bias", {C});
    add(h + "attn.c_attn.weight", {C, 3 * C});
    add(h + "attn.c_attn.bias", {3 * C});
    add(h + "attn.c_proj.weight", {C, C});
    add(h + "attn.c_proj.bias", {C});
    add(h + "ln_2.weight", {C});
    add(h + "ln_2.bias", {C});
    add(h + "mlp.c_fc.weight", {C, 4 * C});
    add(h + "mlp.c_fc.bias", {4 * C});
    add(h + "mlp.c_proj.weight", {4 * C, C});
    add(h + "mlp.c_proj.bias", {C});
  }
  add("ln_f.weight", {C});
  add("ln_f.bias", {C});
}

}  // namespace

std::vector<TensorSpec> required_tensors(const ModelConfig& c) {
  std::vector<TensorSpec> out;
  if (c.has_clap) {
    out.push_back({"logit_scale", {1}, DType::F32});
    htsat_tensors(out, "audio.", c.audio, c.front_end, c.proj_dim);
    gpt2_tensors(out, "text.gpt2.", c.text);
    out.push_back({"text.proj.linear1.weight", {c.proj_dim, c.text.n_embd}, DType::F32});
    out.push_back({"text.proj.linear2.weight", {c.proj_dim, c.proj_dim}, DType::F32});
    out.push_back({"text.proj.layer_norm.weight", {c.proj_dim}, DType::F32});
    out.push_back({"text.proj.layer_norm.bias", {c.proj_dim}, DType::F32});
  }
  if (c.has_captioner) {
    htsat_tensors(out, "cap.audio.", c.cap_audio, c.front_end, c.proj_dim);
    const MapperConfig& m = c.mapper;
    const int64_t D = m.dim;
    auto add = [&](const std::string& n, std::vector<int64_t> s) {
      out.push_back({"cap.mapper." + n, std::move(s), DType::F32});
    };
    add("linear.weight", {m.prefix_length * D, c.proj_dim});
    add("linear.bias", {m.prefix_length * D});
    add("prefix_const", {m.clip_length, D});
    for (int i = 0; i < m.layers; ++i) {
      const std::string l = "transformer.layers." + std::to_string(i) + ".";
      add(l + "norm1.weight", {D});
      add(l + "norm1.bias", {D});
      add(l + "attn.to_queries.weight", {D, D});
      add(l + "attn.to_keys_values.weight", {2 * D, D});
      add(l + "attn.project.weight", {D, D});
      add(l + "attn.project.bias", {D});
      add(l + "norm2.weight", {D});
      add(l + "norm2.bias", {D});
      add(l + "mlp.fc1.weight", {m.mlp_hidden, D});
      add(l + "mlp.fc1.bias", {m.mlp_hidden});
      add(l + "mlp.fc2.weight", {D, m.mlp_hidden});
      add(l + "mlp.fc2.bias", {D});
    }
    gpt2_tensors(out, "cap.gpt2.", c.decoder);
  }
  return out;
}

bool f16_eligible(const std::string& name, const std::vector<int64_t>& shape) {
  if (shape.size() < 2) return false;
  if (name.size() < 7 || name.compare(name.size() - 7, 7, ".weight") != 0) return false;
  if (name.find("melW") != std::string::npos) return false;
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n >= 16384;
}

}  // namespace asdcap
