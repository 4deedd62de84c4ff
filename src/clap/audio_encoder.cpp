// HTSAT (msclap 2023 audio encoder) forward pass: bn0, HTSAT image, patch embedding, Swin stages,
// final LayerNorm, token-semantic head and the CLAP projection. See docs/clap.md, "HTSAT, layer by layer".
#include <algorithm>
#include <cmath>
#include <functional>
#include <string>

#include "asdcap/audio.hpp"
#include "asdcap/clap.hpp"
#include "asdcap/error.hpp"
#include "asdcap/nn.hpp"
#include "core/parallel.hpp"

namespace asdcap {

namespace {
constexpr float kEps = 1e-5f;
// Rows per chunk of the large maps: LN1 -> qkv, and LN2 -> fc1 + GELU -> fc2, stay in cache for one
// chunk. (The packed GEMMs give the same bits for any row split, so the chunk size does not change
// results.)
constexpr int64_t kChunkRows = 256;
// Maps of at least this many rows per thread are split by rows (below, the GEMMs split their weights).
constexpr int64_t kMinSplitRows = 128;

// Row chunks for the row-wise parts of a block (LN1 -> qkv, proj, LN2 -> MLP) on a map of m rows: a
// multiple of the thread count of them, each at most kChunkRows rows (a multiple of 8), or 0 when
// the map is too small to split by rows.
int64_t row_grain(int threads, int64_t m) {
  const int64_t t = resolve_threads(threads);
  if (m < 2 * kChunkRows * t && (t == 1 || m < kMinSplitRows * t)) return 0;
  const int64_t chunks = (m + t * kChunkRows - 1) / (t * kChunkRows) * t;
  return ((m + chunks - 1) / chunks + 7) / 8 * 8;
}
// Stages from this one on run on all images of a group at once (see encode_group).
constexpr int kFirstBatchedStage = 2;
}  // namespace

struct AudioEncoder::Impl {
  struct Block {
    const float *n1_g, *n1_b, *n2_g, *n2_b;
    nn::PackedLinear qkv, proj, fc1, fc2;
    nn::WindowAttention attn;  // the odd blocks' shifted
  };
  struct Stage {
    nn::WindowGeometry geom;  // shift = the odd blocks' shift
    std::vector<Block> blocks;
    const float *down_g = nullptr, *down_b = nullptr;  // PatchMerging (not last stage)
    nn::PackedLinear down;
  };

  std::shared_ptr<const ModelFile> model;
  std::string prefix;
  int threads = 0;  // AudioEncoderParams::threads
  HtsatConfig cfg;
  int64_t proj_dim = 0;
  int64_t grid0 = 0;                     // patch grid side
  std::vector<float> bn_alpha, bn_beta;  // bn0 as x * alpha + beta (PyTorch's inference form)
  const float* melW = nullptr;
  nn::PackedLinear pe;  // patch embedding Conv2d as a Linear over p x p patches
  const float *pe_g = nullptr, *pe_beta = nullptr;
  std::vector<Stage> stages;
  const float *norm_g = nullptr, *norm_b = nullptr;
  nn::PackedLinear tscam;         // the tscam Conv2d applied to time-averaged taps (see head)
  nn::PackedLinear proj1, proj2;  // CLAP projection (no biases)
  const float *proj_g = nullptr, *proj_b = nullptr;

  std::string name(const std::string& rest) const { return prefix + rest; }
  // The full name of a tensor the encoder needs; ModelError naming it if the file lacks it.
  std::string require(const std::string& rest) const {
    std::string full = name(rest);
    if (!model->has(full))
      throw ModelError("model file " + model->path() + " lacks tensor " + full + " (needed by the " +
                       (prefix == "audio." ? "CLAP" : "captioner") + " audio encoder)");
    return full;
  }
  const float* get(const std::string& rest, std::initializer_list<int64_t> shape) const {
    return model->f32(require(rest), shape);
  }
  // A Linear layer packed for asdcap's GEMM from weight [out, in] (any trailing shape flattened) and an
  // optional bias; the weights are read as a temporary copy, so only the packed form stays in memory.
  nn::PackedLinear packed(const std::string& weight, std::initializer_list<int64_t> shape,
                          const std::string& bias) const {
    const std::vector<float> w = model->f32_copy(require(weight), shape);
    const int64_t out = *shape.begin(), in = static_cast<int64_t>(w.size()) / out;
    return nn::PackedLinear(w.data(), out, in, bias.empty() ? nullptr : get(bias, {out}));
  }

  int64_t tokens_of_stage_input(int i) const { return stages[i].geom.height * stages[i].geom.width; }
  int64_t last_tokens() const { return stages.back().geom.height * stages.back().geom.width; }
  int64_t last_channels() const { return stages.back().geom.channels; }

  void load();
  // Scratch of a block: `normed` holds LayerNorm outputs and attention outputs ([rows, C]), `wide`
  // the qkv rows and the MLP's hidden rows ([rows, 3C] and [rows, 4C]).
  void run_block(const Stage& st, const Block& bl, float* tokens, int64_t batch, float* normed, float* wide) const;
  // tokens [batch*N, C] -> tokens [batch*N/4, 2C] (after PatchMerging) or unchanged (last stage).
  void run_stage(int i, float* tokens, int64_t batch, float* normed, float* wide) const;
  void patch_embed(const float* images, int64_t batch, float* out, float* scratch) const;
  void head(const float* fin, int64_t batch, std::vector<Output>& out) const;
  // HTSAT images -> outputs (thread-safe).
  void encode_group(const float* const* images, int64_t count, Output* out) const;
  // A window's log-mel (audio's front end) -> bn0 -> the HTSAT image.
  std::vector<float> image_of(const float* window, std::vector<float>* logmel, std::vector<float>* bn0) const;
  void apply_bn0(float* frames_by_mel, int64_t frames) const;
};

void AudioEncoder::Impl::load() {
  const ModelConfig& mc = model->config();
  if (prefix == "audio.") {
    if (!mc.has_clap)
      throw ModelError("model file " + model->path() +
                       " has no CLAP model (audio.*): convert CLAP_weights_2023.pth into it (asdcap convert --clap)");
    cfg = mc.audio;
  } else if (prefix == "cap.audio.") {
    if (!mc.has_captioner)
      throw ModelError(
          "model file " + model->path() +
          " has no captioner (cap.*): convert clapcap_weights_2023.pth into it (asdcap convert --clapcap)");
    cfg = mc.cap_audio;
  } else {
    throw InvalidArgument("audio encoder prefix must be \"audio.\" or \"cap.audio.\", not \"" + prefix + "\"");
  }
  proj_dim = mc.proj_dim;
  const auto& fe = mc.front_end;
  if (cfg.spec_size != kImageSize || fe.mel_bins != kMelBins || cfg.in_chans != 1 || cfg.freq_ratio != 4 ||
      cfg.patch <= 0 || cfg.spec_size % cfg.patch || cfg.depths.empty() || cfg.depths.size() != cfg.heads.size())
    throw ModelError("model file " + model->path() + ": unsupported HTSAT configuration (spec_size " +
                     std::to_string(cfg.spec_size) + ", patch " + std::to_string(cfg.patch) + ", " +
                     std::to_string(fe.mel_bins) + " mel bins, freq_ratio " + std::to_string(cfg.freq_ratio) + ")");
  const int64_t mel = kMelBins;
  const float* bn_w = get("htsat.bn0.weight", {mel});
  const float* bn_b = get("htsat.bn0.bias", {mel});
  const float* bn_m = get("htsat.bn0.running_mean", {mel});
  const float* bn_v = get("htsat.bn0.running_var", {mel});
  bn_alpha.resize(mel);
  bn_beta.resize(mel);
  for (int64_t m = 0; m < mel; ++m) {
    // PyTorch (batch_norm_cpu inference): alpha = w / sqrt(var + eps), beta = b - mean * alpha.
    const float inv = 1.0f / std::sqrt(bn_v[m] + kEps);
    bn_alpha[m] = inv * bn_w[m];
    bn_beta[m] = bn_b[m] - bn_m[m] * bn_alpha[m];
  }
  if (model->has(name("htsat.logmel_extractor.melW"))) melW = get("htsat.logmel_extractor.melW", {513, mel});

  const int64_t c0 = cfg.embed_dim, p = cfg.patch;
  grid0 = cfg.spec_size / p;
  pe = packed("htsat.patch_embed.proj.weight", {c0, 1, p, p}, "htsat.patch_embed.proj.bias");
  pe_g = get("htsat.patch_embed.norm.weight", {c0});
  pe_beta = get("htsat.patch_embed.norm.bias", {c0});

  const int n_stages = static_cast<int>(cfg.depths.size());
  int64_t side = grid0, c = c0;
  for (int i = 0; i < n_stages; ++i) {
    Stage st;
    const int64_t heads = cfg.heads[i];
    int64_t window = cfg.window, shift = cfg.window / 2;
    if (side <= window) {  // Swin: the whole map is one window and nothing is shifted
      window = side;
      shift = 0;
    }
    if (side % window || c % heads)
      throw ModelError("model file " + model->path() + ": stage " + std::to_string(i) + " grid " +
                       std::to_string(side) + " / window " + std::to_string(window) + " / heads " +
                       std::to_string(heads) + " do not fit");
    st.geom = {side, side, c, heads, window, shift};
    const int64_t span = 2 * window - 1;
    for (int j = 0; j < cfg.depths[i]; ++j) {
      const std::string b = "htsat.layers." + std::to_string(i) + ".blocks." + std::to_string(j) + ".";
      const int64_t hid = c * cfg.mlp_ratio;
      Block bl;
      bl.n1_g = get(b + "norm1.weight", {c});
      bl.n1_b = get(b + "norm1.bias", {c});
      bl.qkv = packed(b + "attn.qkv.weight", {3 * c, c}, b + "attn.qkv.bias");
      bl.proj = packed(b + "attn.proj.weight", {c, c}, b + "attn.proj.bias");
      bl.n2_g = get(b + "norm2.weight", {c});
      bl.n2_b = get(b + "norm2.bias", {c});
      bl.fc1 = packed(b + "mlp.fc1.weight", {hid, c}, b + "mlp.fc1.bias");
      bl.fc2 = packed(b + "mlp.fc2.weight", {c, hid}, b + "mlp.fc2.bias");
      nn::WindowGeometry g = st.geom;
      if (j % 2 == 0) g.shift = 0;
      bl.attn = nn::WindowAttention(g, get(b + "attn.relative_position_bias_table", {span * span, heads}));
      st.blocks.push_back(std::move(bl));
    }
    if (i + 1 < n_stages) {
      const std::string d = "htsat.layers." + std::to_string(i) + ".downsample.";
      st.down_g = get(d + "norm.weight", {4 * c});
      st.down_b = get(d + "norm.bias", {4 * c});
      st.down = packed(d + "reduction.weight", {2 * c, 4 * c}, "");
      if (side % 2) throw ModelError("model file " + model->path() + ": odd grid before PatchMerging");
      side /= 2;
      c *= 2;
    }
    stages.push_back(std::move(st));
  }
  if (c != cfg.num_features)
    throw ModelError("model file " + model->path() + ": HTSAT num_features " + std::to_string(cfg.num_features) +
                     " does not match the stages (" + std::to_string(c) + ")");
  const int64_t sf = side / cfg.freq_ratio;  // tscam kernel height (2 for msclap)
  if (sf <= 0 || side % cfg.freq_ratio)
    throw ModelError("model file " + model->path() + ": final grid " + std::to_string(side) +
                     " does not split into freq_ratio " + std::to_string(cfg.freq_ratio));
  norm_g = get("htsat.norm.weight", {c});
  norm_b = get("htsat.norm.bias", {c});
  tscam = packed("htsat.tscam_conv.weight", {cfg.num_classes, c, sf, 3}, "htsat.tscam_conv.bias");
  proj1 = packed("proj.linear1.weight", {proj_dim, c}, "");
  proj2 = packed("proj.linear2.weight", {proj_dim, proj_dim}, "");
  proj_g = get("proj.layer_norm.weight", {proj_dim});
  proj_b = get("proj.layer_norm.bias", {proj_dim});
}

void AudioEncoder::Impl::run_block(const Stage& st, const Block& bl, float* x, int64_t batch, float* normed,
                                   float* wide) const {
  const int64_t c = st.geom.channels, m = batch * st.geom.height * st.geom.width, hid = c * cfg.mlp_ratio;
  using Ep = nn::PackedLinear::Epilogue;
  // fn(r0, r1) on rows [r0, r1): on row chunks over the threads, or on the whole map at once when it
  // is too small to split by rows (its GEMMs and LayerNorms then use the threads themselves; inside
  // parallel_chunks they run on the calling thread). The static schedule gives each thread the same
  // rows in every pass, and the attention the windows of those rows, so that a thread mostly reads
  // what its own core wrote (with two threads, reading the other core's half cost 10 % at batch 1).
  // Row chunks keep LN1 -> qkv and LN2 -> fc1 + GELU -> fc2 in cache.
  const int64_t grain = row_grain(threads, m);
  auto by_rows = [&](const std::function<void(int64_t, int64_t)>& fn) {
    if (grain)
      parallel_chunks(threads, m, grain, fn, Schedule::kStatic);
    else
      fn(0, m);
  };
  // Attention half: x += proj(WindowAttention(LN1(x))), all in the original token order.
  by_rows([&](int64_t r0, int64_t r1) {
    nn::layer_norm(threads, x + r0 * c, r1 - r0, c, bl.n1_g, bl.n1_b, kEps, normed + r0 * c);
    bl.qkv.forward(threads, normed + r0 * c, r1 - r0, wide + r0 * 3 * c);
  });
  bl.attn.forward(threads, wide, batch, normed);
  by_rows(
      [&](int64_t r0, int64_t r1) { bl.proj.forward(threads, normed + r0 * c, r1 - r0, x + r0 * c, Ep::kAccumulate); });
  // MLP half: x += fc2(GELU(fc1(LN2(x)))), GELU and the residual add fused into the GEMMs.
  by_rows([&](int64_t r0, int64_t r1) {
    const int64_t rows = r1 - r0;
    float* ln2 = normed + r0 * c;
    float* hidden = wide + r0 * hid;
    nn::layer_norm(threads, x + r0 * c, rows, c, bl.n2_g, bl.n2_b, kEps, ln2);
    bl.fc1.forward(threads, ln2, rows, hidden, Ep::kGelu);
    bl.fc2.forward(threads, hidden, rows, x + r0 * c, Ep::kAccumulate);
  });
}

void AudioEncoder::Impl::run_stage(int i, float* tokens, int64_t batch, float* normed, float* wide) const {
  const Stage& st = stages[static_cast<size_t>(i)];
  for (const Block& bl : st.blocks) run_block(st, bl, tokens, batch, normed, wide);
  if (st.down_g) {
    const int64_t c = st.geom.channels, h = st.geom.height, w = st.geom.width;
    nn::patch_merge_norm(threads, tokens, batch, h, w, c, st.down_g, st.down_b, kEps, normed);
    st.down.forward(threads, normed, batch * (h / 2) * (w / 2), tokens);
  }
}

void AudioEncoder::Impl::patch_embed(const float* images, int64_t batch, float* out, float* scratch) const {
  // Conv2d(1 -> C0, kernel p, stride p) as im2col + GEMM, then LayerNorm.
  const int64_t p = cfg.patch, side = cfg.spec_size, g = grid0, c0 = cfg.embed_dim, n = g * g;
  for (int64_t b = 0; b < batch; ++b) {
    const float* img = images + b * side * side;
    for (int64_t r = 0; r < g; ++r)
      for (int64_t col = 0; col < g; ++col) {
        float* dst = scratch + ((b * n) + r * g + col) * p * p;
        for (int64_t kh = 0; kh < p; ++kh)
          for (int64_t kw = 0; kw < p; ++kw) dst[kh * p + kw] = img[(r * p + kh) * side + col * p + kw];
      }
  }
  pe.forward(threads, scratch, batch * n, out);
  nn::layer_norm(threads, out, batch * n, c0, pe_g, pe_beta, kEps, out);
}

void AudioEncoder::Impl::head(const float* fin, int64_t batch, std::vector<Output>& out) const {
  // tscam: tokens (f, t) of the final side x side grid become (C, sf, groups * side) with
  // element [c][fi][g * side + t] = token ((g * sf + fi) * side + t).
  const int64_t side = stages.back().geom.height, c = last_channels(), n = side * side;
  const int64_t sf = side / cfg.freq_ratio, groups = side / sf, width = groups * side;
  const int64_t ncls = cfg.num_classes;
  std::vector<float> latent(static_cast<size_t>(batch * c));
  // mean over time of the 3 taps of the conv (zero padding 1): [batch][c][sf][3]
  std::vector<float> tap_means(static_cast<size_t>(batch * c * sf * 3));
  std::vector<float> row(static_cast<size_t>(width));
  for (int64_t b = 0; b < batch; ++b) {
    const float* x = fin + b * n * c;
    for (int64_t ch = 0; ch < c; ++ch) {
      double total = 0;
      for (int64_t fi = 0; fi < sf; ++fi) {
        for (int64_t gi = 0; gi < groups; ++gi)
          for (int64_t t = 0; t < side; ++t) row[gi * side + t] = x[((gi * sf + fi) * side + t) * c + ch];
        double s = 0;
        for (int64_t k = 0; k < width; ++k) s += row[k];
        total += s;
        float* tm = tap_means.data() + ((b * c + ch) * sf + fi) * 3;
        tm[0] = static_cast<float>((s - row[width - 1]) / static_cast<double>(width));  // tap kw=0 sees t-1
        tm[1] = static_cast<float>(s / static_cast<double>(width));
        tm[2] = static_cast<float>((s - row[0]) / static_cast<double>(width));  // tap kw=2 sees t+1
      }
      latent[b * c + ch] = static_cast<float>(total / static_cast<double>(n));
    }
  }
  // mean_t(conv(x)) = bias + W . mean_t(taps): one GEMV per clip instead of the full conv.
  std::vector<float> logits(static_cast<size_t>(batch * ncls));
  tscam.forward(threads, tap_means.data(), batch, logits.data());
  nn::sigmoid(threads, logits.data(), batch * ncls);
  std::vector<float> emb(static_cast<size_t>(batch * proj_dim));
  nn::clap_projection(threads, latent.data(), batch, proj1, proj2, proj_g, proj_b, emb.data());
  for (int64_t b = 0; b < batch; ++b) {
    Output o;
    o.latent.assign(latent.begin() + b * c, latent.begin() + (b + 1) * c);
    o.clipwise.assign(logits.begin() + b * ncls, logits.begin() + (b + 1) * ncls);
    o.embedding.assign(emb.begin() + b * proj_dim, emb.begin() + (b + 1) * proj_dim);
    out.push_back(std::move(o));
  }
}

std::vector<float> AudioEncoder::Impl::image_of(const float* window, std::vector<float>* logmel_out,
                                                std::vector<float>* bn0_out) const {
  std::vector<float> mel = log_mel(threads, window, kWindowSamples, melW);
  const int64_t frames = static_cast<int64_t>(mel.size()) / kMelBins;
  if (frames != kWindowFrames)
    throw Error("log_mel returned " + std::to_string(frames) + " frames, expected " + std::to_string(kWindowFrames));
  if (logmel_out) *logmel_out = mel;
  apply_bn0(mel.data(), frames);
  if (bn0_out) *bn0_out = mel;
  return wav_to_image(mel.data());
}

void AudioEncoder::Impl::apply_bn0(float* frames_by_mel, int64_t frames) const {
  for (int64_t f = 0; f < frames; ++f)
    for (int64_t m = 0; m < kMelBins; ++m) {
      float& v = frames_by_mel[f * kMelBins + m];
      v = v * bn_alpha[static_cast<size_t>(m)] + bn_beta[static_cast<size_t>(m)];
    }
}

// ---------------------------------------------------------------------------------------------

AudioEncoder::AudioEncoder(std::shared_ptr<const ModelFile> model, std::string prefix, AudioEncoderParams params)
    : impl_(std::make_unique<Impl>()) {
  if (!model) throw InvalidArgument("audio encoder: no model file");
  impl_->model = std::move(model);
  impl_->prefix = std::move(prefix);
  impl_->threads = params.threads;
  impl_->load();
}

AudioEncoder::~AudioEncoder() = default;

int AudioEncoder::num_stages() const { return static_cast<int>(impl_->stages.size()); }
int64_t AudioEncoder::dim() const { return impl_->proj_dim; }
int64_t AudioEncoder::latent_dim() const { return impl_->last_channels(); }
int64_t AudioEncoder::num_classes() const { return impl_->cfg.num_classes; }
const std::string& AudioEncoder::prefix() const { return impl_->prefix; }

// Images of a group go one at a time through the first stages, whose activations (about 8 MB for
// msclap) then stay in the L3 cache, and together through the later ones, whose weights (most of the
// encoder's 110 MB) are then streamed from memory once per group instead of once per image. Every
// kernel works row by row or window by window and the packed GEMMs give the same bits for any number
// of rows, so a clip's results are the same bits either way.
void AudioEncoder::Impl::encode_group(const float* const* images, int64_t count, Output* out) const {
  const int64_t n0 = grid0 * grid0, unit = n0 * cfg.embed_dim, p2 = static_cast<int64_t>(cfg.patch) * cfg.patch;
  const int n_stages = static_cast<int>(stages.size());
  const int split = std::min(kFirstBatchedStage, n_stages);
  // Scratch kept per thread across calls (no zero-filling or page faults per window): one image's
  // tokens at stage 0, the largest (with run_stage's `normed` and `wide` buffers; `wide` also holds
  // the patch embedding's patches), and the group's at the first batched stage.
  thread_local nn::AlignedVector tokens, normed, wide, group_tokens, group_normed, group_wide;
  tokens.resize(static_cast<size_t>(unit));
  normed.resize(static_cast<size_t>(unit));
  wide.resize(static_cast<size_t>(std::max(4 * unit, n0 * p2)));
  const int64_t split_unit =
      split < n_stages ? tokens_of_stage_input(split) * stages[split].geom.channels : last_tokens() * last_channels();
  group_tokens.resize(static_cast<size_t>(count * split_unit));
  group_normed.resize(group_tokens.size());
  group_wide.resize(4 * group_tokens.size());
  for (int64_t b = 0; b < count; ++b) {
    patch_embed(images[b], 1, tokens.data(), wide.data());
    for (int i = 0; i < split; ++i) run_stage(i, tokens.data(), 1, normed.data(), wide.data());
    std::copy(tokens.begin(), tokens.begin() + split_unit, group_tokens.begin() + b * split_unit);
  }
  for (int i = split; i < n_stages; ++i)
    run_stage(i, group_tokens.data(), count, group_normed.data(), group_wide.data());
  nn::layer_norm(threads, group_tokens.data(), count * last_tokens(), last_channels(), norm_g, norm_b, kEps,
                 group_tokens.data());
  std::vector<Output> o;
  head(group_tokens.data(), count, o);
  std::move(o.begin(), o.end(), out);
}

std::vector<AudioEncoder::Output> AudioEncoder::encode_images(const std::vector<const float*>& images) const {
  std::vector<Output> out(images.size());
  const int64_t n = static_cast<int64_t>(images.size());
  const int64_t groups = std::min<int64_t>(n, resolve_threads(impl_->threads));
  if (groups >= 2) {
    // One group of windows per thread, each pass single-threaded (the kernels run serially inside a
    // parallel region): no synchronisation per layer.
    parallel_for(impl_->threads, groups, [&](int64_t g) {
      const int64_t first = n * g / groups, last = n * (g + 1) / groups;
      impl_->encode_group(images.data() + first, last - first, out.data() + first);
    });
  } else if (n > 0) {
    impl_->encode_group(images.data(), n, out.data());
  }
  return out;
}

std::vector<AudioEncoder::Output> AudioEncoder::encode(const std::vector<const float*>& windows) const {
  std::vector<Output> out;
  out.reserve(windows.size());
  for (size_t first = 0; first < windows.size(); first += kMaxBatch) {
    const size_t count = std::min<size_t>(kMaxBatch, windows.size() - first);
    std::vector<std::vector<float>> images(count);
    // Front ends in parallel (log_mel is thread-safe).
    parallel_for(impl_->threads, static_cast<int64_t>(count), [&](int64_t i) {
      images[static_cast<size_t>(i)] = impl_->image_of(windows[first + static_cast<size_t>(i)], nullptr, nullptr);
    });
    std::vector<const float*> ptrs;
    for (auto& im : images) ptrs.push_back(im.data());
    auto part = encode_images(ptrs);
    for (auto& o : part) out.push_back(std::move(o));
  }
  return out;
}

AudioEncoder::Trace AudioEncoder::trace(const float* window) const {
  Trace tr;
  tr.image = impl_->image_of(window, &tr.logmel, &tr.bn0);
  tr.patch_embed = patch_embed(tr.image.data(), 1);
  const float* in = tr.patch_embed.data();
  for (int i = 0; i < num_stages(); ++i) {
    tr.stages.push_back(stage(i, in, 1));
    in = tr.stages.back().data();
  }
  tr.final_norm = final_norm(in, 1);
  tr.output = std::move(head(tr.final_norm.data(), 1).front());
  return tr;
}

std::vector<float> AudioEncoder::bn0(const float* logmel, int64_t frames) const {
  std::vector<float> out(logmel, logmel + frames * kMelBins);
  impl_->apply_bn0(out.data(), frames);
  return out;
}

std::vector<float> AudioEncoder::patch_embed(const float* images, int64_t batch) const {
  const Impl& im = *impl_;
  const int64_t n0 = im.grid0 * im.grid0, p2 = static_cast<int64_t>(im.cfg.patch) * im.cfg.patch;
  std::vector<float> out(static_cast<size_t>(batch * n0 * im.cfg.embed_dim));
  std::vector<float> scratch(static_cast<size_t>(batch * n0 * p2));
  im.patch_embed(images, batch, out.data(), scratch.data());
  return out;
}

std::vector<float> AudioEncoder::stage(int index, const float* tokens, int64_t batch) const {
  const Impl& im = *impl_;
  if (index < 0 || index >= num_stages()) throw InvalidArgument("no HTSAT stage " + std::to_string(index));
  const auto& g = im.stages[static_cast<size_t>(index)].geom;
  const int64_t unit = batch * g.height * g.width * g.channels;
  std::vector<float> out(tokens, tokens + unit), normed(static_cast<size_t>(unit)), wide(static_cast<size_t>(4 * unit));
  im.run_stage(index, out.data(), batch, normed.data(), wide.data());
  if (im.stages[static_cast<size_t>(index)].down_g) out.resize(static_cast<size_t>(unit / 2));
  return out;
}

std::vector<float> AudioEncoder::final_norm(const float* tokens, int64_t batch) const {
  const Impl& im = *impl_;
  const int64_t rows = batch * im.last_tokens(), c = im.last_channels();
  std::vector<float> out(static_cast<size_t>(rows * c));
  nn::layer_norm(im.threads, tokens, rows, c, im.norm_g, im.norm_b, kEps, out.data());
  return out;
}

std::vector<AudioEncoder::Output> AudioEncoder::head(const float* final_tokens, int64_t batch) const {
  std::vector<Output> out;
  impl_->head(final_tokens, batch, out);
  return out;
}

}  // namespace asdcap
