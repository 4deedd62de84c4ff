// The HTSAT tower (patch embedding, Swin stages, final LayerNorm, latent and tscam head) for any
// HtsatConfig. See docs/clap.md, "HTSAT, layer by layer".
#include "clap/htsat.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>

#include "asdcap/clap.hpp"
#include "asdcap/error.hpp"
#include "asdcap/nn.hpp"
#include "core/parallel.hpp"

namespace asdcap::clap {

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

struct Htsat::Impl {
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

  int threads = 0;
  HtsatConfig cfg;
  int64_t grid0 = 0;    // patch grid side
  nn::PackedLinear pe;  // patch embedding Conv2d as a Linear over p x p patches
  const float *pe_g = nullptr, *pe_beta = nullptr;
  std::vector<Stage> stages;
  const float *norm_g = nullptr, *norm_b = nullptr;
  nn::PackedLinear tscam;  // the tscam Conv2d applied to time-averaged taps (see head)

  int64_t tokens_of_stage_input(int i) const { return stages[i].geom.height * stages[i].geom.width; }
  int64_t last_tokens() const { return stages.back().geom.height * stages.back().geom.width; }
  int64_t last_channels() const { return stages.back().geom.channels; }

  void load(const HtsatWeights& w);
  // Scratch of a block: `normed` holds LayerNorm outputs and attention outputs ([rows, C]), `wide`
  // the qkv rows and the MLP's hidden rows ([rows, 3C] and [rows, 4C]).
  void run_block(const Stage& st, const Block& bl, float* tokens, int64_t batch, float* normed, float* wide) const;
  // tokens [batch*N, C] -> tokens [batch*N/4, 2C] (after PatchMerging) or unchanged (last stage).
  void run_stage(int i, float* tokens, int64_t batch, float* normed, float* wide) const;
  void patch_embed(const float* images, int64_t batch, float* out, float* scratch) const;
  void head(const float* fin, int64_t batch, float* latent, float* clipwise) const;
  void encode_group(const float* const* images, int64_t count, float* latent, float* clipwise) const;
};

void Htsat::Impl::load(const HtsatWeights& w) {
  const std::string& file = w.file();
  if (cfg.spec_size != kImageSize || cfg.in_chans != 1 || cfg.freq_ratio != 4 || cfg.patch <= 0 ||
      cfg.spec_size % cfg.patch || cfg.depths.empty() || cfg.depths.size() != cfg.heads.size())
    throw ModelError("model file " + file + ": unsupported HTSAT configuration (spec_size " +
                     std::to_string(cfg.spec_size) + ", patch " + std::to_string(cfg.patch) + ", freq_ratio " +
                     std::to_string(cfg.freq_ratio) + ")");
  // A Linear layer packed for asdcap's GEMM from weight [out, in] (any trailing shape flattened), in the
  // precision it is stored in, and an optional bias.
  auto packed = [&w](const std::string& weight, std::initializer_list<int64_t> shape, const std::string& bias) {
    return w.linear(weight, shape, bias.empty() ? nullptr : w.get(bias, {*shape.begin()}));
  };

  const int64_t c0 = cfg.embed_dim, p = cfg.patch;
  grid0 = cfg.spec_size / p;
  pe = packed("patch_embed.proj.weight", {c0, 1, p, p}, "patch_embed.proj.bias");
  pe_g = w.get("patch_embed.norm.weight", {c0});
  pe_beta = w.get("patch_embed.norm.bias", {c0});

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
      throw ModelError("model file " + file + ": stage " + std::to_string(i) + " grid " + std::to_string(side) +
                       " / window " + std::to_string(window) + " / heads " + std::to_string(heads) + " do not fit");
    st.geom = {side, side, c, heads, window, shift};
    const int64_t span = 2 * window - 1;
    for (int j = 0; j < cfg.depths[i]; ++j) {
      const std::string b = "layers." + std::to_string(i) + ".blocks." + std::to_string(j) + ".";
      const int64_t hid = c * cfg.mlp_ratio;
      Block bl;
      bl.n1_g = w.get(b + "norm1.weight", {c});
      bl.n1_b = w.get(b + "norm1.bias", {c});
      bl.qkv = packed(b + "attn.qkv.weight", {3 * c, c}, b + "attn.qkv.bias");
      bl.proj = packed(b + "attn.proj.weight", {c, c}, b + "attn.proj.bias");
      bl.n2_g = w.get(b + "norm2.weight", {c});
      bl.n2_b = w.get(b + "norm2.bias", {c});
      bl.fc1 = packed(b + "mlp.fc1.weight", {hid, c}, b + "mlp.fc1.bias");
      bl.fc2 = packed(b + "mlp.fc2.weight", {c, hid}, b + "mlp.fc2.bias");
      nn::WindowGeometry g = st.geom;
      if (j % 2 == 0) g.shift = 0;
      bl.attn = nn::WindowAttention(g, w.get(b + "attn.relative_position_bias_table", {span * span, heads}));
      st.blocks.push_back(std::move(bl));
    }
    if (i + 1 < n_stages) {
      const std::string d = "layers." + std::to_string(i) + ".downsample.";
      st.down_g = w.get(d + "norm.weight", {4 * c});
      st.down_b = w.get(d + "norm.bias", {4 * c});
      st.down = packed(d + "reduction.weight", {2 * c, 4 * c}, "");
      if (side % 2) throw ModelError("model file " + file + ": odd grid before PatchMerging");
      side /= 2;
      c *= 2;
    }
    stages.push_back(std::move(st));
  }
  if (c != cfg.num_features)
    throw ModelError("model file " + file + ": HTSAT num_features " + std::to_string(cfg.num_features) +
                     " does not match the stages (" + std::to_string(c) + ")");
  const int64_t sf = side / cfg.freq_ratio;  // tscam kernel height (2 for msclap)
  if (sf <= 0 || side % cfg.freq_ratio)
    throw ModelError("model file " + file + ": final grid " + std::to_string(side) +
                     " does not split into freq_ratio " + std::to_string(cfg.freq_ratio));
  norm_g = w.get("norm.weight", {c});
  norm_b = w.get("norm.bias", {c});
  tscam = packed("tscam_conv.weight", {cfg.num_classes, c, sf, 3}, "tscam_conv.bias");
}

void Htsat::Impl::run_block(const Stage& st, const Block& bl, float* x, int64_t batch, float* normed,
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

void Htsat::Impl::run_stage(int i, float* tokens, int64_t batch, float* normed, float* wide) const {
  const Stage& st = stages[static_cast<size_t>(i)];
  for (const Block& bl : st.blocks) run_block(st, bl, tokens, batch, normed, wide);
  if (st.down_g) {
    const int64_t c = st.geom.channels, h = st.geom.height, w = st.geom.width;
    nn::patch_merge_norm(threads, tokens, batch, h, w, c, st.down_g, st.down_b, kEps, normed);
    st.down.forward(threads, normed, batch * (h / 2) * (w / 2), tokens);
  }
}

void Htsat::Impl::patch_embed(const float* images, int64_t batch, float* out, float* scratch) const {
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

void Htsat::Impl::head(const float* fin, int64_t batch, float* latent, float* clipwise) const {
  // tscam: tokens (f, t) of the final side x side grid become (C, sf, groups * side) with
  // element [c][fi][g * side + t] = token ((g * sf + fi) * side + t).
  const int64_t side = stages.back().geom.height, c = last_channels(), n = side * side;
  const int64_t sf = side / cfg.freq_ratio, groups = side / sf, width = groups * side;
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
  tscam.forward(threads, tap_means.data(), batch, clipwise);
  nn::sigmoid(threads, clipwise, batch * cfg.num_classes);
}

// Images of a group go one at a time through the first stages, whose activations (about 8 MB for
// msclap) then stay in the L3 cache, and together through the later ones, whose weights (most of the
// encoder's 110 MB) are then streamed from memory once per group instead of once per image. Every
// kernel works row by row or window by window and the packed GEMMs give the same bits for any number
// of rows, so a clip's results are the same bits either way.
void Htsat::Impl::encode_group(const float* const* images, int64_t count, float* latent, float* clipwise) const {
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
  head(group_tokens.data(), count, latent, clipwise);
}

// ---------------------------------------------------------------------------------------------

Htsat::Htsat(const HtsatConfig& cfg, const HtsatWeights& weights, int threads) : impl_(std::make_unique<Impl>()) {
  impl_->cfg = cfg;
  impl_->threads = threads;
  impl_->load(weights);
}
Htsat::Htsat(Htsat&&) noexcept = default;
Htsat& Htsat::operator=(Htsat&&) noexcept = default;
Htsat::~Htsat() = default;

int Htsat::num_stages() const { return static_cast<int>(impl_->stages.size()); }
int64_t Htsat::latent_dim() const { return impl_->last_channels(); }
int64_t Htsat::num_classes() const { return impl_->cfg.num_classes; }
int Htsat::threads() const { return impl_->threads; }

void Htsat::encode_group(const float* const* images, int64_t count, float* latent, float* clipwise) const {
  impl_->encode_group(images, count, latent, clipwise);
}

std::vector<float> Htsat::patch_embed(const float* images, int64_t batch) const {
  const Impl& im = *impl_;
  const int64_t n0 = im.grid0 * im.grid0, p2 = static_cast<int64_t>(im.cfg.patch) * im.cfg.patch;
  std::vector<float> out(static_cast<size_t>(batch * n0 * im.cfg.embed_dim));
  std::vector<float> scratch(static_cast<size_t>(batch * n0 * p2));
  im.patch_embed(images, batch, out.data(), scratch.data());
  return out;
}

std::vector<float> Htsat::stage(int index, const float* tokens, int64_t batch) const {
  const Impl& im = *impl_;
  if (index < 0 || index >= num_stages()) throw InvalidArgument("no HTSAT stage " + std::to_string(index));
  const auto& g = im.stages[static_cast<size_t>(index)].geom;
  const int64_t unit = batch * g.height * g.width * g.channels;
  std::vector<float> out(tokens, tokens + unit), normed(static_cast<size_t>(unit)), wide(static_cast<size_t>(4 * unit));
  im.run_stage(index, out.data(), batch, normed.data(), wide.data());
  if (im.stages[static_cast<size_t>(index)].down_g) out.resize(static_cast<size_t>(unit / 2));
  return out;
}

std::vector<float> Htsat::final_norm(const float* tokens, int64_t batch) const {
  const Impl& im = *impl_;
  const int64_t rows = batch * im.last_tokens(), c = im.last_channels();
  std::vector<float> out(static_cast<size_t>(rows * c));
  nn::layer_norm(im.threads, tokens, rows, c, im.norm_g, im.norm_b, kEps, out.data());
  return out;
}

void Htsat::head(const float* final_tokens, int64_t batch, float* latent, float* clipwise) const {
  impl_->head(final_tokens, batch, latent, clipwise);
}

}  // namespace asdcap::clap
