#include "asdcap/gpt2.hpp"

#include <immintrin.h>

#include <cmath>
#include <cstring>
#include <string>

#include "asdcap/error.hpp"
#include "asdcap/nn.hpp"
#include "core/panels.hpp"
#include "core/parallel.hpp"
#include "nn/weight_view.hpp"

namespace asdcap {

namespace {

// Keys/values of one head: n rows, `stride` floats apart.
struct KeySpan {
  const float* k;
  const float* v;
  int64_t n;
  int64_t stride;
};

// 8 x 8 transpose: r[l] becomes lane l of the eight inputs (r[l][i] = input i's lane l).
void transpose8(__m256 r[8]) {
  const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xee);
  const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xee);
  const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xee);
  const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xee);
  r[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
  r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
  r[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
  r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
  r[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
  r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
  r[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
  r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

// q . k_j / root for the span's keys, head size a multiple of 8, with the bits of the plain loop
// (`acc += q[i] * k[i]` under `omp simd reduction`, as GCC vectorises it for x86-64-v3): eight lane
// sums of fused multiply-adds over the 8-float chunks in order, then 0 + lane 0 + ... + lane 7 in
// order. Eight keys at a time, their sums transposed so that the lane additions run across keys.
void span_scores8(const float* q, int64_t hd, float root, const KeySpan& sp, float* out) {
  const int64_t chunks = hd / 8;
  const __m256 rv = _mm256_set1_ps(root);
  int64_t j = 0;
  for (; j + 8 <= sp.n; j += 8) {
    __m256 acc[8];
    for (auto& a : acc) a = _mm256_setzero_ps();
    for (int64_t c = 0; c < chunks; ++c) {
      const __m256 qc = _mm256_loadu_ps(q + 8 * c);
      for (int r = 0; r < 8; ++r)
        acc[r] = _mm256_fmadd_ps(qc, _mm256_loadu_ps(sp.k + (j + r) * sp.stride + 8 * c), acc[r]);
    }
    transpose8(acc);
    __m256 sum = _mm256_add_ps(_mm256_setzero_ps(), acc[0]);
    for (int l = 1; l < 8; ++l) sum = _mm256_add_ps(sum, acc[l]);
    _mm256_storeu_ps(out + j, _mm256_div_ps(sum, rv));
  }
  for (; j < sp.n; ++j) {
    __m256 acc = _mm256_setzero_ps();
    for (int64_t c = 0; c < chunks; ++c)
      acc = _mm256_fmadd_ps(_mm256_loadu_ps(q + 8 * c), _mm256_loadu_ps(sp.k + j * sp.stride + 8 * c), acc);
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, acc);
    float sum = 0.f;
    for (const float l : lanes) sum += l;
    out[j] = sum / root;
  }
}

// The order in which a query-key dot product is summed. Both are the bits GPT-2's attention has
// always had at its two call sites: the plain loop (`acc += q[i] * k[i]` under `omp simd
// reduction`) was vectorised by GCC for x86-64-v3 as eight lane sums in the decoding pass and as one
// sequential chain in the ragged pass.
enum class DotOrder {
  kLanes8,     // eight lane sums of fused multiply-adds over the 8-float chunks, then 0 + lane 0 + ... + lane 7
  kSequential  // one chain of fused multiply-adds over the elements in order, then 0 + the chain
};

// softmax(q . k_j / sqrt(hd)) . v over the keys of up to two spans (HF GPT-2 order: dot product,
// then division by sqrt(head_dim), float32 softmax; p_j v_j accumulated into the output by fused
// multiply-adds, key after key).
void attend(DotOrder order, const float* q, int64_t hd, float root_hd, const KeySpan* spans, int nspans, float* scores,
            float* out) {
  const bool vector_head = hd % 8 == 0 && hd <= 128;  // whole 8-float chunks, at most 16 registers
  const bool lanes8 = order == DotOrder::kLanes8 && vector_head;
  int64_t total = 0;
  for (int s = 0; s < nspans; ++s) {
    const KeySpan& sp = spans[s];
    if (lanes8) {
      span_scores8(q, hd, root_hd, sp, scores + total);
    } else if (order == DotOrder::kSequential) {
      for (int64_t j = 0; j < sp.n; ++j) {
        const float* k = sp.k + j * sp.stride;
        float acc = 0.f;
        for (int64_t i = 0; i < hd; ++i) acc = std::fma(q[i], k[i], acc);
        scores[total + j] = (0.f + acc) / root_hd;
      }
    } else {  // eight lanes with a head size that is not a multiple of 8: the plain loop
      for (int64_t j = 0; j < sp.n; ++j) {
        const float* k = sp.k + j * sp.stride;
        float acc = 0.f;
#pragma omp simd reduction(+ : acc)
        for (int64_t i = 0; i < hd; ++i) acc += q[i] * k[i];
        scores[total + j] = acc / root_hd;
      }
    }
    total += sp.n;
  }
  float mx = -INFINITY;
  for (int64_t j = 0; j < total; ++j) mx = scores[j] > mx ? scores[j] : mx;
  nn::exp_shifted(scores, total, mx);
  float sum = 0.f;
  for (int64_t j = 0; j < total; ++j) sum += scores[j];
  const float inv = 1.f / sum;
  if (vector_head) {  // the head's output in registers
    const int64_t chunks = hd / 8;
    __m256 acc[16];
    for (int64_t c = 0; c < chunks; ++c) acc[c] = _mm256_setzero_ps();
    int64_t idx = 0;
    for (int s = 0; s < nspans; ++s) {
      const KeySpan& sp = spans[s];
      for (int64_t j = 0; j < sp.n; ++j) {
        const __m256 p = _mm256_set1_ps(scores[idx++] * inv);
        const float* v = sp.v + j * sp.stride;
        for (int64_t c = 0; c < chunks; ++c) acc[c] = _mm256_fmadd_ps(p, _mm256_loadu_ps(v + 8 * c), acc[c]);
      }
    }
    for (int64_t c = 0; c < chunks; ++c) _mm256_storeu_ps(out + 8 * c, acc[c]);
    return;
  }
  for (int64_t i = 0; i < hd; ++i) out[i] = 0.f;
  int64_t idx = 0;
  for (int s = 0; s < nspans; ++s) {
    const KeySpan& sp = spans[s];
    for (int64_t j = 0; j < sp.n; ++j) {
      const float p = scores[idx++] * inv;
      const float* v = sp.v + j * sp.stride;
      for (int64_t i = 0; i < hd; ++i) out[i] = std::fma(p, v[i], out[i]);
    }
  }
}

}  // namespace

struct Gpt2::Attention {
  virtual ~Attention() = default;
  // qkv [rows, 3d] of layer `layer` -> ctx [rows, d] (heads concatenated).
  virtual void run(int layer, const float* qkv, float* ctx) const = 0;
};

Gpt2::Gpt2(std::shared_ptr<const ModelFile> model, const std::string& prefix, int threads)
    : model_(std::move(model)), threads_(threads) {
  if (!model_) throw ModelError("GPT-2: no model file");
  const ModelConfig& mc = model_->config();
  cfg_ = prefix.rfind("cap.", 0) == 0 ? mc.decoder : mc.text;
  if (cfg_.n_embd <= 0 || cfg_.n_head <= 0 || cfg_.n_embd % cfg_.n_head != 0)
    throw ModelError(model_->path() + ": GPT-2 " + prefix + " has n_embd " + std::to_string(cfg_.n_embd) +
                     " not divisible by n_head " + std::to_string(cfg_.n_head));
  const int64_t d = cfg_.n_embd;
  auto t = [&](const std::string& name, std::initializer_list<int64_t> shape) {
    return model_->f32(prefix + name, shape);
  };
  // Conv1D weights [in, out] for asdcap's GEMM in the precision they are stored in (f16 and bf16
  // weights stay 16-bit: half the bytes held and streamed per step), used in place when the file
  // stores them packed.
  auto packed = [&](const std::string& name, int64_t in, int64_t out) {
    return nn::linear_from(model_, prefix + name + ".weight", {in, out}, t(name + ".bias", {out}),
                           nn::PackedLinear::Layout::kInOut);
  };
  wte_name_ = prefix + "wte.weight";
  // Rows are checked for NaN as they are read (token_embeddings), the whole table only where it is
  // the lm_head: a text encoder reads and keeps resident only the rows of its texts.
  const TensorInfo& wte = model_->float_table(wte_name_, {cfg_.vocab, d});
  wte_ = nn::weight_view(wte);
  wte_packed_ = wte.packed_out_dim >= 0;
  if (wte_packed_ && wte.packed_out_dim != 0)
    throw ModelError(model_->path() + ": " + wte_name_ + " is stored packed with its columns as the output");
  wpe_ = t("wpe.weight", {cfg_.n_ctx, d});
  lnf_g_ = t("ln_f.weight", {d});
  lnf_b_ = t("ln_f.bias", {d});
  // The layers are packed on the threads (a failing layer's error, the lowest first, is thrown).
  layers_.resize(static_cast<size_t>(cfg_.n_layer));
  parallel_for(threads_, cfg_.n_layer, [&](int64_t l) {
    const std::string h = "h." + std::to_string(l) + ".";
    Layer& L = layers_[static_cast<size_t>(l)];
    L.ln1_g = t(h + "ln_1.weight", {d});
    L.ln1_b = t(h + "ln_1.bias", {d});
    L.attn = packed(h + "attn.c_attn", d, 3 * d);
    L.proj = packed(h + "attn.c_proj", d, d);
    L.ln2_g = t(h + "ln_2.weight", {d});
    L.ln2_b = t(h + "ln_2.bias", {d});
    L.fc = packed(h + "mlp.c_fc", d, 4 * d);
    L.fc2 = packed(h + "mlp.c_proj", 4 * d, d);
  });
}

Gpt2::~Gpt2() = default;

void Gpt2::token_embeddings(const int64_t* ids, int64_t n, float* out) const {
  const int64_t d = cfg_.n_embd;
  for (int64_t i = 0; i < n; ++i) {
    if (ids[i] < 0 || ids[i] >= cfg_.vocab)
      throw Error("GPT-2: token id " + std::to_string(ids[i]) + " outside the vocabulary of " +
                  std::to_string(cfg_.vocab));
    float* row = out + i * d;
    if (!wte_packed_) {
      nn::widen(wte_, ids[i] * d, d, row);
    } else {  // stored packed (docs/model-files.md): element p of row j at panel j / 48, row p, column j % 48
      const bool int8 = wte_.type == nn::WeightType::kI8;
      for (int64_t p = 0; p < d; ++p)
        nn::widen(wte_, int8 ? panels::stored_index_int8(ids[i], p, d) : panels::stored_index(ids[i], p, d), 1,
                  row + p);
      if (const float s = nn::output_scale(wte_, ids[i]); s != 1.f)  // int8: the row's scale
        for (int64_t p = 0; p < d; ++p) row[p] *= s;
    }
    for (int64_t p = 0; p < d; ++p)
      if (std::isnan(row[p]))
        throw ModelError(model_->path() + ": tensor " + wte_name_ + " holds NaN (in row " + std::to_string(ids[i]) +
                         "): the model file is damaged");
  }
}

void Gpt2::run_blocks(float* h, int64_t rows, const Attention& attention) const {
  using Ep = nn::PackedLinear::Epilogue;
  const int64_t d = cfg_.n_embd;
  std::vector<float> a(static_cast<size_t>(rows * d)), qkv(static_cast<size_t>(rows * 3 * d)),
      ctx(static_cast<size_t>(rows * d)), mlp(static_cast<size_t>(rows * 4 * d));
  for (int l = 0; l < cfg_.n_layer; ++l) {
    const Layer& L = layers_[static_cast<size_t>(l)];
    nn::layer_norm(threads_, h, rows, d, L.ln1_g, L.ln1_b, 1e-5f, a.data());
    L.attn.forward(threads_, a.data(), rows, qkv.data());
    attention.run(l, qkv.data(), ctx.data());
    L.proj.forward(threads_, ctx.data(), rows, h, Ep::kAccumulate);  // h += ctx . W + b
    nn::layer_norm(threads_, h, rows, d, L.ln2_g, L.ln2_b, 1e-5f, a.data());
    L.fc.forward(threads_, a.data(), rows, mlp.data());
    nn::gelu_tanh(threads_, mlp.data(), rows * 4 * d);
    L.fc2.forward(threads_, mlp.data(), rows, h, Ep::kAccumulate);
  }
}

namespace {
void check_positions(int64_t positions, int64_t n_ctx) {
  if (positions > n_ctx)
    throw Error("GPT-2: " + std::to_string(positions) + " positions exceed the model's " + std::to_string(n_ctx));
}
}  // namespace

void Gpt2::forward_ragged(const float* x, const std::vector<int64_t>& lengths, float* hidden) const {
  const int64_t d = cfg_.n_embd, hd = d / cfg_.n_head;
  std::vector<int64_t> offsets;
  int64_t rows = 0, longest = 0;
  for (int64_t len : lengths) {
    if (len <= 0) throw Error("GPT-2: empty sequence");
    check_positions(len, cfg_.n_ctx);
    offsets.push_back(rows);
    rows += len;
    longest = std::max(longest, len);
  }
  if (rows == 0) return;
  std::vector<float> h(x, x + rows * d);
  for (size_t s = 0; s < lengths.size(); ++s)
    for (int64_t p = 0; p < lengths[s]; ++p) nn::add(h.data() + (offsets[s] + p) * d, wpe_ + p * d, d);

  struct Ragged : Attention {
    const std::vector<int64_t>& lengths;
    const std::vector<int64_t>& offsets;
    int64_t d, hd, heads, longest;
    int threads;
    Ragged(const std::vector<int64_t>& l, const std::vector<int64_t>& o, int64_t d_, int64_t hd_, int64_t heads_,
           int64_t longest_, int threads_)
        : lengths(l), offsets(o), d(d_), hd(hd_), heads(heads_), longest(longest_), threads(threads_) {}
    void run(int, const float* qkv, float* ctx) const override {
      const float root = std::sqrt(static_cast<float>(hd));
      const int64_t nseq = static_cast<int64_t>(lengths.size());
      int64_t work = 0;  // multiply-adds of the attention, to decide whether threads pay
      for (int64_t len : lengths) work += len * len * d;
      // One job per (sequence, head); heads are independent, so the split changes no value.
      parallel_chunks(work > (int64_t{1} << 22) ? threads : 1, nseq * heads, 1, [&](int64_t begin, int64_t end) {
        std::vector<float> scores(static_cast<size_t>(longest));
        for (int64_t job = begin; job < end; ++job) {
          const int64_t s = job / heads, hh = job % heads;
          const int64_t base = offsets[static_cast<size_t>(s)];
          for (int64_t t = 0; t < lengths[static_cast<size_t>(s)]; ++t) {
            const float* q = qkv + (base + t) * 3 * d + hh * hd;
            KeySpan span{qkv + base * 3 * d + d + hh * hd, qkv + base * 3 * d + 2 * d + hh * hd, t + 1, 3 * d};
            attend(DotOrder::kSequential, q, hd, root, &span, 1, scores.data(), ctx + (base + t) * d + hh * hd);
          }
        }
      });
    }
  } attention(lengths, offsets, d, hd, cfg_.n_head, longest, threads_);
  run_blocks(h.data(), rows, attention);
  nn::layer_norm(threads_, h.data(), rows, d, lnf_g_, lnf_b_, 1e-5f, hidden);
}

void Gpt2::forward_nocache(const float* x, int64_t batch, int64_t n, float* hidden) const {
  forward_ragged(x, std::vector<int64_t>(static_cast<size_t>(batch), n), hidden);
}

Gpt2::Cache Gpt2::make_cache(int64_t batch, int64_t capacity) const {
  if (batch <= 0) throw Error("GPT-2: cache batch must be positive");
  check_positions(capacity, cfg_.n_ctx);
  Cache c;
  c.batch = batch;
  c.capacity = capacity;
  const size_t per_layer = static_cast<size_t>(batch * capacity * cfg_.n_embd);
  c.k.assign(static_cast<size_t>(cfg_.n_layer), std::vector<float>(per_layer));
  c.v = c.k;
  c.shared_k.assign(static_cast<size_t>(cfg_.n_layer), {});
  c.shared_v = c.shared_k;
  return c;
}

void Gpt2::share(Cache& c, int64_t per_sequence) const {
  if (c.shared != 0 || c.groups != 1) throw Error("GPT-2: only a fresh cache can be shared");
  if (per_sequence <= 0) throw Error("GPT-2: cache batch must be positive");
  const int64_t d = cfg_.n_embd, g = c.batch, slot = c.capacity * d;
  for (size_t l = 0; l < c.k.size(); ++l) {
    for (auto [store, shared] : {std::pair{&c.k, &c.shared_k}, std::pair{&c.v, &c.shared_v}}) {
      auto& layer = (*store)[l];
      auto& sh = (*shared)[l];
      sh.resize(static_cast<size_t>(g * c.length * d));
      for (int64_t s = 0; s < g; ++s)
        std::memcpy(sh.data() + s * c.length * d, layer.data() + s * slot,
                    static_cast<size_t>(c.length * d) * sizeof(float));
      layer.assign(static_cast<size_t>(g * per_sequence * (c.capacity - c.length) * d), 0.f);
    }
  }
  c.shared = c.length;
  c.groups = g;
  c.batch = g * per_sequence;
}

void Gpt2::reorder(Cache& c, const std::vector<int64_t>& src) const {
  if (static_cast<int64_t>(src.size()) != c.batch) throw Error("GPT-2: reorder needs one source per sequence");
  const int64_t per_group = c.batch / c.groups;
  bool identity = true;
  for (int64_t b = 0; b < c.batch; ++b) {
    if (src[static_cast<size_t>(b)] < 0 || src[static_cast<size_t>(b)] >= c.batch ||
        src[static_cast<size_t>(b)] / per_group != b / per_group)
      throw Error("GPT-2: reorder source out of range");
    identity = identity && src[static_cast<size_t>(b)] == b;
  }
  if (identity) return;
  const int64_t d = cfg_.n_embd, own = c.length - c.shared, slot = (c.capacity - c.shared) * d;
  // Only the sequences that change are written; the old rows they copy are saved first (a source may
  // itself be overwritten), each once.
  std::vector<int64_t> saved(static_cast<size_t>(c.batch), -1);  // sequence -> its row in tmp
  int64_t n_saved = 0;
  for (int64_t b = 0; b < c.batch; ++b) {
    const int64_t from = src[static_cast<size_t>(b)];
    if (from != b && saved[static_cast<size_t>(from)] < 0) saved[static_cast<size_t>(from)] = n_saved++;
  }
  const auto row = static_cast<size_t>(own * d) * sizeof(float);
  std::vector<float> tmp(static_cast<size_t>(n_saved * own * d));
  for (auto* store : {&c.k, &c.v})
    for (auto& layer : *store) {
      for (int64_t b = 0; b < c.batch; ++b)
        if (saved[static_cast<size_t>(b)] >= 0)
          std::memcpy(tmp.data() + saved[static_cast<size_t>(b)] * own * d, layer.data() + b * slot, row);
      for (int64_t b = 0; b < c.batch; ++b) {
        const int64_t from = src[static_cast<size_t>(b)];
        if (from != b)
          std::memcpy(layer.data() + b * slot, tmp.data() + saved[static_cast<size_t>(from)] * own * d, row);
      }
    }
}

void Gpt2::keep_groups(Cache& c, const std::vector<int64_t>& groups) const {
  const int64_t per_group = c.batch / c.groups, d = cfg_.n_embd;
  const int64_t slot = (c.capacity - c.shared) * d, own = c.length - c.shared;
  for (size_t i = 0; i < groups.size(); ++i)
    if (groups[i] < 0 || groups[i] >= c.groups || (i > 0 && groups[i] <= groups[i - 1]))
      throw Error("GPT-2: kept groups must be increasing cache groups");
  // Moving group groups[i] down to position i never overwrites a group still to be moved.
  for (size_t l = 0; l < c.k.size(); ++l)
    for (auto [store, shared] : {std::pair{&c.k, &c.shared_k}, std::pair{&c.v, &c.shared_v}}) {
      auto& layer = (*store)[l];
      auto& sh = (*shared)[l];
      for (size_t i = 0; i < groups.size(); ++i) {
        const auto to = static_cast<int64_t>(i), from = groups[i];
        if (to == from) continue;
        std::memmove(sh.data() + to * c.shared * d, sh.data() + from * c.shared * d,
                     static_cast<size_t>(c.shared * d) * sizeof(float));
        for (int64_t b = 0; b < per_group; ++b)
          std::memmove(layer.data() + (to * per_group + b) * slot, layer.data() + (from * per_group + b) * slot,
                       static_cast<size_t>(own * d) * sizeof(float));
      }
    }
  c.groups = static_cast<int64_t>(groups.size());
  c.batch = c.groups * per_group;
}

void Gpt2::forward(const float* x, int64_t n_new, Cache& c, float* hidden) const {
  const int64_t d = cfg_.n_embd, hd = d / cfg_.n_head, past = c.length;
  if (n_new <= 0) throw Error("GPT-2: forward needs at least one new position");
  if (past + n_new > c.capacity)
    throw Error("GPT-2: " + std::to_string(past + n_new) + " positions exceed the cache capacity " +
                std::to_string(c.capacity));
  const int64_t rows = c.batch * n_new;
  std::vector<float> h(x, x + rows * d);
  for (int64_t b = 0; b < c.batch; ++b)
    for (int64_t t = 0; t < n_new; ++t) nn::add(h.data() + (b * n_new + t) * d, wpe_ + (past + t) * d, d);

  struct Cached : Attention {
    Cache& c;
    int64_t n_new, d, hd, heads;
    int threads;
    Cached(Cache& c_, int64_t n, int64_t d_, int64_t hd_, int64_t heads_, int threads_)
        : c(c_), n_new(n), d(d_), hd(hd_), heads(heads_), threads(threads_) {}
    void run(int layer, const float* qkv, float* ctx) const override {
      const int64_t past = c.length, slot = (c.capacity - c.shared) * d, own0 = past - c.shared;
      float* K = c.k[static_cast<size_t>(layer)].data();
      float* V = c.v[static_cast<size_t>(layer)].data();
      for (int64_t b = 0; b < c.batch; ++b)
        for (int64_t t = 0; t < n_new; ++t) {
          const float* row = qkv + (b * n_new + t) * 3 * d;
          std::memcpy(K + b * slot + (own0 + t) * d, row + d, static_cast<size_t>(d) * sizeof(float));
          std::memcpy(V + b * slot + (own0 + t) * d, row + 2 * d, static_cast<size_t>(d) * sizeof(float));
        }
      const float root = std::sqrt(static_cast<float>(hd));
      const float* SK = c.shared_k[static_cast<size_t>(layer)].data();
      const float* SV = c.shared_v[static_cast<size_t>(layer)].data();
      const int64_t per_group = c.batch / c.groups;
      const int64_t work = c.batch * n_new * (past + n_new) * d;
      // One job per (sequence, head), thread i the i-th contiguous share; heads are independent, so the
      // split never changes a bit (from 2^16 multiply-adds: every decoding step at beam 5).
      const int t_threads = work > (int64_t{1} << 16) ? resolve_threads(threads) : 1;
      const int64_t jobs = c.batch * heads;
      parallel_chunks(
          t_threads, jobs, (jobs + t_threads - 1) / t_threads,
          [&](int64_t begin, int64_t end) {
            std::vector<float> scores(static_cast<size_t>(past + n_new));
            for (int64_t job = begin; job < end; ++job) {
              const int64_t b = job / heads, hh = job % heads;
              for (int64_t t = 0; t < n_new; ++t) {
                const int64_t group_base = (b / per_group) * c.shared * d;
                KeySpan spans[2] = {{SK + group_base + hh * hd, SV + group_base + hh * hd, c.shared, d},
                                    {K + b * slot + hh * hd, V + b * slot + hh * hd, own0 + t + 1, d}};
                attend(DotOrder::kLanes8, qkv + (b * n_new + t) * 3 * d + hh * hd, hd, root, spans, 2, scores.data(),
                       ctx + (b * n_new + t) * d + hh * hd);
              }
            }
          },
          Schedule::kStatic);
    }
  } attention(c, n_new, d, hd, cfg_.n_head, threads_);
  run_blocks(h.data(), rows, attention);
  c.length += n_new;
  nn::layer_norm(threads_, h.data(), rows, d, lnf_g_, lnf_b_, 1e-5f, hidden);
}

void Gpt2::logits(const float* hidden, int64_t rows, float* out) const {
  // The tied lm_head, made on first use (the text encoder never needs it): from the mapping when the
  // file stores wte packed, else packed in memory.
  std::call_once(lm_head_once_, [this] {
    lm_head_ = std::make_unique<nn::PackedLinear>(
        nn::linear_from(model_, wte_name_, {cfg_.vocab, cfg_.n_embd}, nullptr, nn::PackedLinear::Layout::kOutIn));
  });
  lm_head_->forward(threads_, hidden, rows, out);
}

}  // namespace asdcap
