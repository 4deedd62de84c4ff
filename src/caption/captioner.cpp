#include <cmath>
#include <string>

#include "asdcap/caption.hpp"
#include "asdcap/clap.hpp"
#include "asdcap/error.hpp"

namespace asdcap {

struct Captioner::AudioPart {
  AudioPart(std::shared_ptr<const ModelFile> m, int threads) : encoder(std::move(m), "cap.audio.", {threads}) {}
  AudioEncoder encoder;
};

namespace {
std::shared_ptr<const ModelFile> require_captioner(std::shared_ptr<const ModelFile> model) {
  if (!model) throw ModelError("captioner: no model file");
  if (!model->config().has_captioner)
    throw ModelError(model->path() +
                     ": this model file has no captioner (cap.mapper.*, cap.gpt2.*, cap.audio.*): convert it "
                     "with the clapcap checkpoint (asdcap convert --clapcap ...)");
  return model;
}
}  // namespace

Captioner::Captioner(std::shared_ptr<const ModelFile> model, CaptionerParams params)
    : model_(require_captioner(std::move(model))),
      params_(params),
      tokenizer_(Tokenizer::from_model(*model_)),
      gpt2_(model_, "cap.gpt2.", params.threads),
      mapper_(model_, params.threads) {
  if (mapper_.dim() != gpt2_.n_embd())
    throw ModelError(model_->path() + ": mapper width " + std::to_string(mapper_.dim()) +
                     " differs from the decoder's n_embd " + std::to_string(gpt2_.n_embd()));
}

Captioner::~Captioner() = default;

int64_t Captioner::embedding_dim() const { return mapper_.input_dim(); }

namespace {

// msclap: prefix / prefix.norm(2, -1)
std::vector<float> normalised(const float* audio_embedding, int64_t n) {
  double ss = 0;
  for (int64_t i = 0; i < n; ++i) ss += static_cast<double>(audio_embedding[i]) * audio_embedding[i];
  const float norm = static_cast<float>(std::sqrt(ss));
  if (!(norm > 0.f) || !std::isfinite(norm)) throw Error("captioner: the audio embedding has zero or non-finite norm");
  std::vector<float> prefix(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) prefix[static_cast<size_t>(i)] = audio_embedding[i] / norm;
  return prefix;
}

}  // namespace

std::vector<float> Captioner::prefix_embeddings(const float* audio_embedding) const {
  return mapper_.map(normalised(audio_embedding, mapper_.input_dim()).data());
}

CaptionResult Captioner::caption_embedding(const float* audio_embedding, const CaptionOptions& opts) const {
  return caption_embeddings({audio_embedding}, opts, 1).front();
}

std::vector<CaptionResult> Captioner::caption_embeddings(const std::vector<const float*>& audio_embeddings,
                                                         const CaptionOptions& opts, int max_batch) const {
  if (!std::isfinite(opts.temperature)) throw InvalidArgument("temperature must be a finite number");
  const int64_t d = gpt2_.n_embd();
  std::vector<int64_t> ids;
  if (!opts.prompt.empty()) ids = tokenizer_.encode(opts.prompt);
  const int64_t n_prefix = mapper_.output_tokens() + static_cast<int64_t>(ids.size());
  // The clips' prefixes, mapped together (each weight read once for all of them).
  std::vector<std::vector<float>> inputs;
  std::vector<const float*> input_ptrs;
  for (const float* e : audio_embeddings) {
    inputs.push_back(normalised(e, mapper_.input_dim()));
    input_ptrs.push_back(inputs.back().data());
  }
  std::vector<std::vector<float>> prefixes = mapper_.map_batch(input_ptrs);
  std::vector<const float*> ptrs;
  for (auto& prefix : prefixes) {
    // A prompt's token embeddings follow the mapper output.
    prefix.resize(static_cast<size_t>(n_prefix * d));
    if (!ids.empty())
      gpt2_.token_embeddings(ids.data(), static_cast<int64_t>(ids.size()), prefix.data() + mapper_.output_tokens() * d);
    ptrs.push_back(prefix.data());
  }
  // msclap: stop_token_index = tokenizer.encode(' <|endoftext|>')[0]  (220, the space)
  const int64_t stop_id = tokenizer_.encode(" <|endoftext|>").at(0);
  std::vector<BeamSearchResult> rs =
      beam_search_batch(gpt2_, ptrs, n_prefix, opts.beam, opts.max_tokens, opts.temperature, stop_id, max_batch);
  std::vector<CaptionResult> outs;
  for (auto& r : rs) {
    CaptionResult out;
    for (auto& beam : r.beams) {
      beam.text = tokenizer_.decode(beam.tokens);
      out.beams.push_back(std::move(beam));
    }
    out.caption = python_capitalize(opts.prompt + out.beams.front().text);
    outs.push_back(std::move(out));
  }
  return outs;
}

std::vector<float> Captioner::audio_embedding(const std::vector<float>& signal44k, const CropPolicy& crop) const {
  if (signal44k.empty()) throw Error("captioner: empty audio signal");
  std::call_once(audio_once_, [this] { audio_ = std::make_unique<AudioPart>(model_, params_.threads); });
  // Crop "cover": the window embeddings are averaged (before the captioner's L2 normalisation).
  std::vector<float> embedding = encode_clip(audio_->encoder, signal44k, crop).embedding;
  if (static_cast<int64_t>(embedding.size()) != mapper_.input_dim())
    throw ModelError(model_->path() + ": the captioner's audio embedding size differs from the mapper input");
  return embedding;
}

CaptionResult Captioner::caption_signal(const std::vector<float>& signal44k, const CropPolicy& crop,
                                        const CaptionOptions& opts) const {
  const std::vector<float> embedding = audio_embedding(signal44k, crop);
  return caption_embedding(embedding.data(), opts);
}

}  // namespace asdcap
