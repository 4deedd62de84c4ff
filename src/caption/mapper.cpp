// clapcap's TransformerMapper (msclap clap_project): Linear -> [n_lin tokens] ++ prefix_const ->
// pre-norm transformer layers (8 heads, no mask, ReLU MLP) -> the last prefix_const-many tokens.
#include <cmath>
#include <cstring>
#include <functional>
#include <string>

#include "asdcap/caption.hpp"
#include "asdcap/error.hpp"
#include "asdcap/nn.hpp"
#include "core/parallel.hpp"
#include "nn/weight_view.hpp"

namespace asdcap {

CaptionMapper::CaptionMapper(std::shared_ptr<const ModelFile> model, int threads)
    : model_(std::move(model)), threads_(threads) {
  cfg_ = model_->config().mapper;
  const std::string p = "cap.mapper.";
  const auto& lin = model_->tensor(p + "linear.weight");
  const auto& pc = model_->tensor(p + "prefix_const");
  if (lin.shape.size() != 2 || pc.shape.size() != 2)
    throw ModelError(model_->path() + ": cap.mapper.linear.weight / prefix_const must be matrices");
  const int64_t dim = pc.shape[1];
  if (dim <= 0 || lin.shape[0] % dim != 0)
    throw ModelError(model_->path() + ": cap.mapper.linear.weight rows are not a multiple of the mapper width");
  cfg_.dim = static_cast<int>(dim);
  cfg_.clip_length = static_cast<int>(pc.shape[0]);           // learned constants = output tokens
  cfg_.prefix_length = static_cast<int>(lin.shape[0] / dim);  // tokens made by the Linear
  in_dim_ = lin.shape[1];
  lin_w_ = &model_->float_weights(p + "linear.weight", {lin.shape[0], in_dim_});
  lin_b_ = model_->f32(p + "linear.bias", {lin.shape[0]});
  prefix_const_ = model_->f32(p + "prefix_const", {pc.shape[0], dim});
  if (cfg_.heads <= 0 || dim % cfg_.heads != 0)
    throw ModelError(model_->path() + ": mapper width " + std::to_string(dim) + " not divisible by its " +
                     std::to_string(cfg_.heads) + " heads");
  for (int l = 0;; ++l) {
    const std::string q = p + "transformer.layers." + std::to_string(l) + ".";
    if (!model_->has(q + "norm1.weight")) {
      if (l != cfg_.layers)
        throw ModelError(model_->path() + ": the mapper has " + std::to_string(l) + " layers, the config says " +
                         std::to_string(cfg_.layers));
      break;
    }
    const int64_t hidden = model_->tensor(q + "mlp.fc1.weight").shape.at(0);
    cfg_.mlp_hidden = static_cast<int>(hidden);
    Layer L{};
    L.n1_g = model_->f32(q + "norm1.weight", {dim});
    L.n1_b = model_->f32(q + "norm1.bias", {dim});
    L.q_w = &model_->float_weights(q + "attn.to_queries.weight", {dim, dim});
    L.kv_w = &model_->float_weights(q + "attn.to_keys_values.weight", {2 * dim, dim});
    L.proj_w = &model_->float_weights(q + "attn.project.weight", {dim, dim});
    L.proj_b = model_->f32(q + "attn.project.bias", {dim});
    L.n2_g = model_->f32(q + "norm2.weight", {dim});
    L.n2_b = model_->f32(q + "norm2.bias", {dim});
    L.fc1_w = &model_->float_weights(q + "mlp.fc1.weight", {hidden, dim});
    L.fc1_b = model_->f32(q + "mlp.fc1.bias", {hidden});
    L.fc2_w = &model_->float_weights(q + "mlp.fc2.weight", {dim, hidden});
    L.fc2_b = model_->f32(q + "mlp.fc2.bias", {dim});
    layers_.push_back(L);
  }
}

std::vector<float> CaptionMapper::map(const float* prefix) const { return map_batch({prefix}).front(); }

std::vector<std::vector<float>> CaptionMapper::map_batch(const std::vector<const float*>& prefixes) const {
  const int64_t dim = cfg_.dim, n_lin = cfg_.prefix_length, n_const = cfg_.clip_length, n = n_lin + n_const;
  const int64_t heads = cfg_.heads, hd = dim / heads, hidden = cfg_.mlp_hidden;
  const auto clips = static_cast<int64_t>(prefixes.size());
  // The clips' activations stacked, clip after clip ([clips * n] rows): every product with a weight
  // matrix is one product over all clips' rows (the matrix widened once if stored in 16 bits, the
  // rows split over the threads), and every row is the same dot products as when mapping its clip
  // alone (nn::linear's rows do not depend on how they are split or stacked).
  const int64_t rows = clips * n;
  std::vector<float> x(static_cast<size_t>(rows * dim)), a(x.size()), q(x.size()), kv(2 * x.size()), ctx(x.size()),
      tmp(x.size()), mlp(static_cast<size_t>(rows * hidden));
  // A weight matrix's rows [r0, r1) as float32: the mapping itself, or widened into `buffer`.
  auto rows_into = [](std::vector<float>& buffer, const TensorInfo& t, int64_t r0, int64_t r1) -> const float* {
    const int64_t cols = t.numel() / t.shape[0];
    if (t.dtype == DType::F32 && t.packed_out_dim < 0) return static_cast<const float*>(t.data) + r0 * cols;
    buffer.resize(static_cast<size_t>((r1 - r0) * cols));
    nn::widen(nn::weight_view(t), r0 * cols, (r1 - r0) * cols, buffer.data());
    return buffer.data();
  };
  std::vector<float> scratch;
  auto all = [&](const TensorInfo* t) { return rows_into(scratch, *t, 0, t->shape[0]); };
  // The Linear of the clips' embeddings (one row each, stacked): its output features in blocks
  // (each output is the same dot product whatever the block), so that a widened block stays small;
  // the blocks on the threads, each widened and read once for all clips.
  std::vector<float> embeddings(static_cast<size_t>(clips * in_dim_));
  for (int64_t i = 0; i < clips; ++i)
    std::copy(prefixes[static_cast<size_t>(i)], prefixes[static_cast<size_t>(i)] + in_dim_,
              embeddings.begin() + i * in_dim_);
  constexpr int64_t kBlockRows = 4096;
  const int64_t blocks = (n_lin * dim + kBlockRows - 1) / kBlockRows;
  parallel_for(threads_, blocks, [&](int64_t block) {
    const int64_t r0 = block * kBlockRows, r1 = std::min(n_lin * dim, r0 + kBlockRows);
    std::vector<float> buffer, out(static_cast<size_t>(clips * (r1 - r0)));
    const float* w = rows_into(buffer, *lin_w_, r0, r1);
    nn::linear(threads_, embeddings.data(), clips, in_dim_, w, r1 - r0, lin_b_ + r0, out.data());
    for (int64_t i = 0; i < clips; ++i)
      std::copy(out.begin() + i * (r1 - r0), out.begin() + (i + 1) * (r1 - r0), x.begin() + i * n * dim + r0);
  });
  for (int64_t i = 0; i < clips; ++i)
    std::memcpy(x.data() + (i * n + n_lin) * dim, prefix_const_, static_cast<size_t>(n_const * dim) * sizeof(float));
  const float scale = static_cast<float>(std::pow(static_cast<double>(hd), -0.5));
  for (const Layer& L : layers_) {
    nn::layer_norm(threads_, x.data(), rows, dim, L.n1_g, L.n1_b, 1e-5f, a.data());
    nn::linear(threads_, a.data(), rows, dim, all(L.q_w), dim, nullptr, q.data());
    nn::linear(threads_, a.data(), rows, dim, all(L.kv_w), 2 * dim, nullptr, kv.data());
    // Attention within each clip, its heads on the threads.
    parallel_for(threads_, clips * heads, [&](int64_t task) {
      const int64_t c0 = task / heads * n, h = task % heads;  // the clip's first row, the head
      std::vector<float> scores(static_cast<size_t>(n)), keys(static_cast<size_t>(hd * n));
      for (int64_t j = 0; j < n; ++j)  // the head's keys transposed: [hd][n]
        for (int64_t e = 0; e < hd; ++e)
          keys[static_cast<size_t>(e * n + j)] = kv[static_cast<size_t>((c0 + j) * 2 * dim + h * hd + e)];
      for (int64_t i = 0; i < n; ++i) {
        const float* qi = q.data() + (c0 + i) * dim + h * hd;
        nn::query_key_dots(qi, keys.data(), n, hd, scores.data());
        float mx = -INFINITY;
        for (int64_t j = 0; j < n; ++j) {
          scores[static_cast<size_t>(j)] *= scale;
          mx = std::max(mx, scores[static_cast<size_t>(j)]);
        }
        float sum = 0.f;
        for (int64_t j = 0; j < n; ++j)
          sum += scores[static_cast<size_t>(j)] = std::exp(scores[static_cast<size_t>(j)] - mx);
        const float inv = 1.f / sum;
        float* out = ctx.data() + (c0 + i) * dim + h * hd;
        std::fill(out, out + hd, 0.f);
        for (int64_t j = 0; j < n; ++j) {
          const float p = scores[static_cast<size_t>(j)] * inv;
          const float* vj = kv.data() + (c0 + j) * 2 * dim + dim + h * hd;  // values: last `dim` columns
          for (int64_t e = 0; e < hd; ++e) out[e] += p * vj[e];
        }
      }
    });
    nn::linear(threads_, ctx.data(), rows, dim, all(L.proj_w), dim, L.proj_b, tmp.data());
    nn::add(x.data(), tmp.data(), rows * dim);
    nn::layer_norm(threads_, x.data(), rows, dim, L.n2_g, L.n2_b, 1e-5f, a.data());
    nn::linear(threads_, a.data(), rows, dim, all(L.fc1_w), hidden, L.fc1_b, mlp.data());
    nn::relu(mlp.data(), rows * hidden);
    nn::linear(threads_, mlp.data(), rows, hidden, all(L.fc2_w), dim, L.fc2_b, tmp.data());
    nn::add(x.data(), tmp.data(), rows * dim);
  }
  std::vector<std::vector<float>> out;
  for (int64_t i = 0; i < clips; ++i)
    out.emplace_back(x.begin() + (i * n + n_lin) * dim, x.begin() + (i + 1) * n * dim);
  return out;
}

}  // namespace asdcap
