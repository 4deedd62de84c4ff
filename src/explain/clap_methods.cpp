#include "clap_methods.hpp"

#include <cmath>
#include <map>

#include "asdcap/backend.hpp"
#include "asdcap/caption.hpp"
#include "asdcap/clap.hpp"
#include "asdcap/error.hpp"
#include "asdcap/model_file.hpp"
#include "asdcap/text_encoder.hpp"
#include "core/files.hpp"
#include "detect/embedding_cache.hpp"

namespace asdcap::explain_detail {

struct ClapMethods::Impl {
  std::shared_ptr<const ModelFile> model;
  CropPolicy crop;
  ChannelMode channels = ChannelMode::Mean;
  std::unique_ptr<Captioner> captioner;
  std::unique_ptr<EmbeddingBackend> audio;
  std::unique_ptr<TextEncoder> text;
  std::unique_ptr<EmbeddingCache> cache;
  std::map<std::string, std::vector<float>> text_embeddings;  // as the text encoder gives them
};

ClapMethods::ClapMethods(const std::string& model_path, const CropPolicy& crop, ChannelMode channels,
                         const std::string& cache_path, int threads)
    : impl_(std::make_unique<Impl>()) {
  impl_->model = ModelFile::open(model_path);
  impl_->crop = crop;
  impl_->channels = channels;
  const ModelConfig& cfg = impl_->model->config();
  if (cfg.has_captioner) impl_->captioner = std::make_unique<Captioner>(impl_->model, CaptionerParams{threads});
  if (cfg.has_clap) {
    BackendOptions bo;
    bo.model_path = model_path;
    bo.threads = threads;
    impl_->audio = make_msclap_backend(bo);
    impl_->text = std::make_unique<TextEncoder>(impl_->model, TextEncoderParams{threads});
  }
  if (!cache_path.empty()) impl_->cache = std::make_unique<EmbeddingCache>(cache_path);
}

ClapMethods::~ClapMethods() = default;

std::string ClapMethods::caption_missing() const {
  return impl_->captioner ? "" : impl_->model->path() + " has no captioner (clapcap) part";
}

std::string ClapMethods::similarity_missing() const {
  return impl_->audio ? "" : impl_->model->path() + " has no CLAP audio/text encoder part";
}

std::vector<std::pair<std::string, std::string>> ClapMethods::captions(const std::vector<std::string>& audio_paths,
                                                                       const std::string& prompt) {
  if (!impl_->captioner) throw ModelError(caption_missing());
  std::vector<std::pair<std::string, std::string>> out(audio_paths.size());
  std::vector<std::vector<float>> embeddings;
  std::vector<size_t> which;  // index in audio_paths of each embedding
  for (size_t i = 0; i < audio_paths.size(); ++i) {
    try {
      const ClipCrop crop = resolve_clip_crop(impl_->crop, sha256_file(audio_paths[i]));
      embeddings.push_back(
          impl_->captioner->audio_embedding(load_audio_44k(audio_paths[i], impl_->channels), crop.policy));
      which.push_back(i);
    } catch (const std::exception& e) {
      out[i].second = audio_paths[i] + ": " + e.what();
    }
  }
  if (embeddings.empty()) return out;
  std::vector<const float*> ptrs;
  for (const auto& e : embeddings) ptrs.push_back(e.data());
  CaptionOptions options;
  options.prompt = prompt;
  std::vector<CaptionResult> results = impl_->captioner->caption_embeddings(ptrs, options);
  for (size_t j = 0; j < which.size(); ++j) out[which[j]].first = std::move(results[j].caption);
  return out;
}

std::vector<float> ClapMethods::audio_embedding(const std::string& audio_path) {
  if (!impl_->audio) throw ModelError(similarity_missing());
  const std::string sha = sha256_file(audio_path);
  // The crop and cache key detection uses, so a cached embedding is the one detection computed.
  const ClipCrop crop = resolve_clip_crop(impl_->crop, sha);
  if (impl_->cache)
    if (auto hit = impl_->cache->get(sha, impl_->audio->identity(), crop.cache_key)) return *hit;
  const std::vector<float> signal = load_audio_44k(audio_path, impl_->channels);
  std::vector<float> embedding = impl_->audio->embed(signal, crop.policy);
  if (impl_->cache) impl_->cache->put(sha, impl_->audio->identity(), crop.cache_key, embedding);
  return embedding;
}

std::vector<std::vector<double>> ClapMethods::similarities(const std::vector<std::vector<float>>& audio,
                                                           const std::vector<std::string>& texts) {
  if (!impl_->text) throw ModelError(similarity_missing());
  std::vector<std::string> missing;
  for (const auto& t : texts)
    if (!impl_->text_embeddings.count(t)) missing.push_back(t);
  if (!missing.empty()) {
    const std::vector<float> rows = impl_->text->embed(missing);
    const size_t dim = rows.size() / missing.size();
    for (size_t i = 0; i < missing.size(); ++i)
      impl_->text_embeddings[missing[i]].assign(rows.begin() + i * dim, rows.begin() + (i + 1) * dim);
  }
  std::vector<std::vector<double>> out;
  for (const auto& a : audio) {
    std::vector<double> row;
    for (const auto& t : texts) {
      const auto& e = impl_->text_embeddings.at(t);
      if (e.size() != a.size())
        throw ModelError("audio embedding size " + std::to_string(a.size()) + " differs from text embedding size " +
                         std::to_string(e.size()));
      row.push_back(cosine_matrix_f64(a.data(), 1, e.data(), 1, static_cast<int64_t>(a.size()))[0]);
    }
    out.push_back(std::move(row));
  }
  return out;
}

}  // namespace asdcap::explain_detail
