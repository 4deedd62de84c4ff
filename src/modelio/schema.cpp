#include "schema.hpp"

#include <algorithm>

#include "asdcap/convert.hpp"
#include "asdcap/error.hpp"

namespace asdcap::modelio {
namespace {

std::string key(const std::string& k) { return kPrefix + k; }

void write_htsat(GgufWriter& w, const std::string& p, const HtsatConfig& h) {
  w.set_int(key(p + "spec_size"), h.spec_size);
  w.set_int(key(p + "patch"), h.patch);
  w.set_int(key(p + "in_chans"), h.in_chans);
  w.set_int(key(p + "embed_dim"), h.embed_dim);
  w.set_int_array(key(p + "depths"), {h.depths.begin(), h.depths.end()});
  w.set_int_array(key(p + "heads"), {h.heads.begin(), h.heads.end()});
  w.set_int(key(p + "window"), h.window);
  w.set_int(key(p + "mlp_ratio"), h.mlp_ratio);
  w.set_int(key(p + "num_features"), h.num_features);
  w.set_int(key(p + "num_classes"), h.num_classes);
  w.set_int(key(p + "freq_ratio"), h.freq_ratio);
}

void write_gpt2(GgufWriter& w, const std::string& p, const Gpt2Config& g) {
  w.set_int(key(p + "vocab"), g.vocab);
  w.set_int(key(p + "n_ctx"), g.n_ctx);
  w.set_int(key(p + "n_embd"), g.n_embd);
  w.set_int(key(p + "n_head"), g.n_head);
  w.set_int(key(p + "n_layer"), g.n_layer);
}

class Reader {
 public:
  Reader(const GgufView& g, const std::string& file) : g_(g), file_(file) {}
  const GgufValue& get(const std::string& k, GgufValue::Kind kind) const {
    auto it = g_.kv.find(k);
    if (it == g_.kv.end()) throw ModelError(file_ + ": metadata key " + k + " missing");
    if (it->second.kind != kind) throw ModelError(file_ + ": metadata key " + k + " has the wrong type");
    return it->second;
  }
  int i(const std::string& k) const {
    int64_t v = get(key(k), GgufValue::Kind::Int).i;
    if (v < -(int64_t{1} << 31) || v > (int64_t{1} << 31) - 1) throw ModelError(file_ + ": metadata key " + key(k) + " out of range");
    return static_cast<int>(v);
  }
  int64_t i64(const std::string& full) const { return get(full, GgufValue::Kind::Int).i; }
  float f(const std::string& k) const { return static_cast<float>(get(key(k), GgufValue::Kind::Float).f); }
  bool b(const std::string& k) const { return get(key(k), GgufValue::Kind::Bool).b; }
  std::vector<int> ints(const std::string& k) const {
    const auto& v = get(key(k), GgufValue::Kind::IntArray).ints;
    if (v.size() > 16) throw ModelError(file_ + ": metadata key " + key(k) + " too long");
    std::vector<int> out;
    for (int64_t x : v) {
      if (x < 0 || x > (1 << 20)) throw ModelError(file_ + ": metadata key " + key(k) + " out of range");
      out.push_back(static_cast<int>(x));
    }
    return out;
  }
  HtsatConfig htsat(const std::string& p) const {
    HtsatConfig h;
    h.spec_size = i(p + "spec_size");
    h.patch = i(p + "patch");
    h.in_chans = i(p + "in_chans");
    h.embed_dim = i(p + "embed_dim");
    h.depths = ints(p + "depths");
    h.heads = ints(p + "heads");
    h.window = i(p + "window");
    h.mlp_ratio = i(p + "mlp_ratio");
    h.num_features = i(p + "num_features");
    h.num_classes = i(p + "num_classes");
    h.freq_ratio = i(p + "freq_ratio");
    return h;
  }
  Gpt2Config gpt2(const std::string& p) const {
    Gpt2Config g;
    g.vocab = i(p + "vocab");
    g.n_ctx = i(p + "n_ctx");
    g.n_embd = i(p + "n_embd");
    g.n_head = i(p + "n_head");
    g.n_layer = i(p + "n_layer");
    return g;
  }

 private:
  const GgufView& g_;
  const std::string& file_;
};

void check_htsat(const HtsatConfig& h, const std::string& what, const std::string& file) {
  auto bad = [&](const std::string& m) { return ModelError(file + ": " + what + ": " + m); };
  if (h.embed_dim <= 0 || h.patch <= 0 || h.in_chans <= 0 || h.window <= 0 || h.mlp_ratio <= 0 ||
      h.num_classes <= 0 || h.freq_ratio <= 0 || h.spec_size <= 0)
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
  w.set_bool(key("has_clap"), c.has_clap);
  w.set_bool(key("has_captioner"), c.has_captioner);
  const FrontEndConfig& fe = c.front_end;
  w.set_int(key("front_end.sample_rate"), fe.sample_rate);
  w.set_int(key("front_end.window_samples"), fe.window_samples);
  w.set_int(key("front_end.n_fft"), fe.n_fft);
  w.set_int(key("front_end.hop"), fe.hop);
  w.set_int(key("front_end.mel_bins"), fe.mel_bins);
  w.set_int(key("front_end.mel_sample_rate"), fe.mel_sample_rate);
  w.set_float(key("front_end.fmin"), fe.fmin);
  w.set_float(key("front_end.fmax"), fe.fmax);
  w.set_int(key("proj_dim"), c.proj_dim);
  if (c.has_clap) {
    write_htsat(w, "audio.", c.audio);
    write_gpt2(w, "text.", c.text);
    w.set_int(key("text_len"), c.text_len);
    w.set_float(key("logit_scale"), c.logit_scale);
  }
  if (c.has_captioner) {
    write_htsat(w, "cap_audio.", c.cap_audio);
    const MapperConfig& m = c.mapper;
    w.set_int(key("mapper.prefix_length"), m.prefix_length);
    w.set_int(key("mapper.clip_length"), m.clip_length);
    w.set_int(key("mapper.layers"), m.layers);
    w.set_int(key("mapper.heads"), m.heads);
    w.set_int(key("mapper.dim"), m.dim);
    w.set_int(key("mapper.mlp_hidden"), m.mlp_hidden);
    write_gpt2(w, "decoder.", c.decoder);
    w.set_int(key("caption.stop_token_id"), c.stop_id);
  }
  w.set_int("tokenizer.ggml.padding_token_id", c.pad_id);
  w.set_int("tokenizer.ggml.eos_token_id", c.eos_id);
  w.set_int("tokenizer.ggml.bos_token_id", c.eos_id);
}

ModelConfig read_config(const GgufView& g, const std::string& file) {
  Reader r(g, file);
  ModelConfig c;
  c.has_clap = r.b("has_clap");
  c.has_captioner = r.b("has_captioner");
  FrontEndConfig& fe = c.front_end;
  fe.sample_rate = r.i("front_end.sample_rate");
  fe.window_samples = r.i64(key("front_end.window_samples"));
  fe.n_fft = r.i("front_end.n_fft");
  fe.hop = r.i("front_end.hop");
  fe.mel_bins = r.i("front_end.mel_bins");
  fe.mel_sample_rate = r.i("front_end.mel_sample_rate");
  fe.fmin = r.f("front_end.fmin");
  fe.fmax = r.f("front_end.fmax");
  c.proj_dim = r.i("proj_dim");
  if (c.has_clap) {
    c.audio = r.htsat("audio.");
    c.text = r.gpt2("text.");
    c.text_len = r.i("text_len");
    c.logit_scale = r.f("logit_scale");
  }
  if (c.has_captioner) {
    c.cap_audio = r.htsat("cap_audio.");
    MapperConfig& m = c.mapper;
    m.prefix_length = r.i("mapper.prefix_length");
    m.clip_length = r.i("mapper.clip_length");
    m.layers = r.i("mapper.layers");
    m.heads = r.i("mapper.heads");
    m.dim = r.i("mapper.dim");
    m.mlp_hidden = r.i("mapper.mlp_hidden");
    c.decoder = r.gpt2("decoder.");
    c.stop_id = r.i64(key("caption.stop_token_id"));
  }
  c.pad_id = r.i64("tokenizer.ggml.padding_token_id");
  c.eos_id = r.i64("tokenizer.ggml.eos_token_id");
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

bool optional_tensor(const std::string& name) {
  auto ends = [&](const std::string& s) { return name.size() >= s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0; };
  return ends("htsat.head.weight") || ends("htsat.head.bias");
}

}  // namespace asdcap::modelio

namespace asdcap {
namespace {

void htsat_tensors(std::vector<TensorSpec>& out, const std::string& pre, const HtsatConfig& h, const FrontEndConfig& fe,
                   int proj_dim) {
  const std::string p = pre + "htsat.";
  auto add = [&](const std::string& n, std::vector<int64_t> s, DType t = DType::F32) { out.push_back({p + n, std::move(s), t}); };
  const int64_t E = h.embed_dim, bins = fe.n_fft / 2 + 1;
  add("logmel_extractor.melW", {bins, fe.mel_bins});
  for (const char* s : {"weight", "bias", "running_mean", "running_var"}) add(std::string("bn0.") + s, {fe.mel_bins});
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
    auto add = [&](const std::string& n, std::vector<int64_t> s) { out.push_back({"cap.mapper." + n, std::move(s), DType::F32}); };
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
