// clapcap's TransformerMapper (msclap clap_project): Linear -> [n_lin tokens] ++ prefix_const ->
// pre-norm transformer layers (8 heads, no mask, ReLU MLP) -> the last prefix_const-many tokens.
#include <cmath>
#include <cstring>
#include <string>

#include "asdcap/caption.hpp"
#include "asdcap/error.hpp"
#include "asdcap/nn.hpp"
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

std::vector<float> CaptionMapper::map(const float* prefix) const {
  const int64_t dim = cfg_.dim, n_lin = cfg_.prefix_length, n_const = cfg_.clip_length, n = n_lin + n_const;
  const int64_t heads = cfg_.heads, hd = dim / heads, hidden = cfg_.mlp_hidden;
  std::vector<float> x(static_cast<size_t>(n * dim));
  // A weight matrix's rows [r0, r1) as float32: the mapping itself, or widened into `scratch`.
  std::vector<float> scratch;
  auto rows = [&scratch](const TensorInfo& t, int64_t r0, int64_t r1) -> const float* {
    const int64_t cols = t.numel() / t.shape[0];
    if (t.dtype == DType::F32 && t.packed_out_dim < 0) return static_cast<const float*>(t.data) + r0 * cols;
    scratch.resize(static_cast<size_t>((r1 - r0) * cols));
    nn::widen(nn::weight_view(t), r0 * cols, (r1 - r0) * cols, scratch.data());
    return scratch.data();
  };
  auto all = [&rows](const TensorInfo* t) { return rows(*t, 0, t->shape[0]); };
  // The Linear of one row: its output features in blocks (each output is the same dot product
  // whatever the block), so that a widened block stays small.
  constexpr int64_t kBlockRows = 4096;
  for (int64_t r0 = 0; r0 < n_lin * dim; r0 += kBlockRows) {
    const int64_t r1 = std::min(n_lin * dim, r0 + kBlockRows);
    nn::linear(threads_, prefix, 1, in_dim_, rows(*lin_w_, r0, r1), r1 - r0, lin_b_ + r0, x.data() + r0);
  }
  std::memcpy(x.data() + n_lin * dim, prefix_const_, static_cast<size_t>(n_const * dim) * sizeof(float));
  std::vector<float> a(x.size()), q(x.size()), kv(x.size() * 2), ctx(x.size()), tmp(x.size()),
      mlp(static_cast<size_t>(n * hidden)), scores(static_cast<size_t>(n));
  const float scale = static_cast<float>(std::pow(static_cast<double>(hd), -0.5));
  for (const Layer& L : layers_) {
    nn::layer_norm(threads_, x.data(), n, dim, L.n1_g, L.n1_b, 1e-5f, a.data());
    nn::linear(threads_, a.data(), n, dim, all(L.q_w), dim, nullptr, q.data());
    nn::linear(threads_, a.data(), n, dim, all(L.kv_w), 2 * dim, nullptr, kv.data());
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t i = 0; i < n; ++i) {
        const float* qi = q.data() + i * dim + h * hd;
        float mx = -INFINITY;
        for (int64_t j = 0; j < n; ++j) {
          const float* kj = kv.data() + j * 2 * dim + h * hd;  // keys: first `dim` columns
          float acc = 0.f;
          for (int64_t e = 0; e < hd; ++e) acc += qi[e] * kj[e];
          scores[static_cast<size_t>(j)] = acc * scale;
          mx = std::max(mx, scores[static_cast<size_t>(j)]);
        }
        float sum = 0.f;
        for (int64_t j = 0; j < n; ++j)
          sum += scores[static_cast<size_t>(j)] = std::exp(scores[static_cast<size_t>(j)] - mx);
        const float inv = 1.f / sum;
        float* out = ctx.data() + i * dim + h * hd;
        std::fill(out, out + hd, 0.f);
        for (int64_t j = 0; j < n; ++j) {
          const float p = scores[static_cast<size_t>(j)] * inv;
          const float* vj = kv.data() + j * 2 * dim + dim + h * hd;  // values: last `dim` columns
          for (int64_t e = 0; e < hd; ++e) out[e] += p * vj[e];
        }
      }
    nn::linear(threads_, ctx.data(), n, dim, all(L.proj_w), dim, L.proj_b, tmp.data());
    nn::add(x.data(), tmp.data(), n * dim);
    nn::layer_norm(threads_, x.data(), n, dim, L.n2_g, L.n2_b, 1e-5f, a.data());
    nn::linear(threads_, a.data(), n, dim, all(L.fc1_w), hidden, L.fc1_b, mlp.data());
    nn::relu(mlp.data(), n * hidden);
    nn::linear(threads_, mlp.data(), n, hidden, all(L.fc2_w), dim, L.fc2_b, tmp.data());
    nn::add(x.data(), tmp.data(), n * dim);
  }
  return std::vector<float>(x.begin() + n_lin * dim, x.end());
}

}  // namespace asdcap
