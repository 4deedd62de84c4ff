#include "asdcap/text_encoder.hpp"

#include <string>

#include "asdcap/error.hpp"
#include "asdcap/nn.hpp"

namespace asdcap {

namespace {
std::string excerpt(const std::string& text) { return text.size() <= 40 ? text : text.substr(0, 40) + "..."; }

int64_t pooled_index_of(const std::vector<int64_t>& ids) {
  int64_t n = 0;
  for (int64_t id : ids) n += id != 0;
  return n - 1;  // >= 1: every CLAP text ends with 220, 50256
}

std::shared_ptr<const ModelFile> require_text(std::shared_ptr<const ModelFile> model) {
  if (!model) throw ModelError("text encoder: no model file");
  if (!model->config().has_clap)
    throw ModelError(model->path() + ": no CLAP text encoder in this model file (text.gpt2.*, text.proj.*)");
  return model;
}
}  // namespace

TextEncoder::TextEncoder(std::shared_ptr<const ModelFile> model, TextEncoderParams params)
    : model_(require_text(std::move(model))),
      params_(params),
      tokenizer_(Tokenizer::from_model(*model_)),
      gpt2_(model_, "text.gpt2.", params.threads),
      proj_dim_(model_->config().proj_dim) {
  const int64_t d = gpt2_.n_embd();
  model_->f32("text.proj.linear1.weight", {proj_dim_, d});
  model_->f32("text.proj.linear2.weight", {proj_dim_, proj_dim_});
  model_->f32("text.proj.layer_norm.weight", {proj_dim_});
  model_->f32("text.proj.layer_norm.bias", {proj_dim_});
}

std::vector<float> TextEncoder::embed(const std::vector<std::string>& texts) const {
  std::vector<std::vector<int64_t>> ids;
  ids.reserve(texts.size());
  for (const auto& t : texts) ids.push_back(tokenizer_.encode_clap_text(t));
  const int64_t d = gpt2_.n_embd();
  std::vector<int64_t> lengths;
  int64_t rows = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (static_cast<int64_t>(ids[i].size()) > gpt2_.n_ctx())
      throw InvalidArgument("text \"" + excerpt(texts[i]) + "\" has " + std::to_string(ids[i].size()) +
                            " tokens; the text encoder takes at most " + std::to_string(gpt2_.n_ctx()));
    lengths.push_back(pooled_index_of(ids[i]) + 1);
    rows += lengths.back();
  }
  std::vector<float> out(static_cast<size_t>(static_cast<int64_t>(texts.size()) * proj_dim_));
  if (texts.empty()) return out;
  std::vector<float> x(static_cast<size_t>(rows * d)), hidden(x.size());
  int64_t r = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    gpt2_.token_embeddings(ids[i].data(), lengths[i], x.data() + r * d);
    r += lengths[i];
  }
  gpt2_.forward_ragged(x.data(), lengths, hidden.data());
  std::vector<float> pooled(texts.size() * static_cast<size_t>(d));
  r = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    r += lengths[i];
    std::copy(hidden.begin() + (r - 1) * d, hidden.begin() + r * d, pooled.begin() + static_cast<int64_t>(i) * d);
  }
  nn::clap_projection(params_.threads, pooled.data(), static_cast<int64_t>(texts.size()), d,
                      model_->f32("text.proj.linear1.weight"), model_->f32("text.proj.linear2.weight"), proj_dim_,
                      model_->f32("text.proj.layer_norm.weight"), model_->f32("text.proj.layer_norm.bias"), out.data());
  return out;
}

TextEncoder::Trace TextEncoder::trace(const std::string& text) const {
  return trace_ids(tokenizer_.encode_clap_text(text));
}

TextEncoder::Trace TextEncoder::trace_ids(const std::vector<int64_t>& ids) const {
  const int64_t d = gpt2_.n_embd();
  if (static_cast<int64_t>(ids.size()) > gpt2_.n_ctx())
    throw InvalidArgument("text has " + std::to_string(ids.size()) + " tokens; the text encoder takes at most " +
                          std::to_string(gpt2_.n_ctx()));
  Trace tr;
  tr.ids = ids;
  tr.pooled_index = pooled_index_of(ids);
  if (tr.pooled_index < 0) throw InvalidArgument("text encoder: token ids contain no non-zero id");
  const int64_t n = tr.pooled_index + 1;
  std::vector<float> x(static_cast<size_t>(n * d));
  gpt2_.token_embeddings(ids.data(), n, x.data());
  tr.hidden.resize(x.size());
  gpt2_.forward_ragged(x.data(), {n}, tr.hidden.data());
  tr.pooled.assign(tr.hidden.end() - d, tr.hidden.end());
  tr.embedding.resize(static_cast<size_t>(proj_dim_));
  nn::clap_projection(params_.threads, tr.pooled.data(), 1, d, model_->f32("text.proj.linear1.weight"),
                      model_->f32("text.proj.linear2.weight"), proj_dim_, model_->f32("text.proj.layer_norm.weight"),
                      model_->f32("text.proj.layer_norm.bias"), tr.embedding.data());
  return tr;
}

}  // namespace asdcap
