// msclap's captioner (clapcap): audio embedding -> L2 normalisation -> mapper (40 prefix vectors) ->
// GPT-2 decoder with a key/value cache -> msclap's beam search, token for token.
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "asdcap/audio.hpp"
#include "asdcap/gpt2.hpp"
#include "asdcap/model_file.hpp"
#include "asdcap/tokenizer.hpp"

namespace asdcap {

struct CaptionOptions {
  int beam = 5;         // 1 = greedy
  int max_tokens = 67;  // msclap's entry_length
  float temperature = 1.f;
  std::string prompt;  // e.g. "Sounds like": its tokens follow the prefix; captions continue it
};

struct CaptionBeam {
  std::string text;             // decode(tokens[:length]) (continuation only when prompted)
  std::vector<int64_t> tokens;  // the first `length` tokens (includes the stop token when stopped)
  float score;                  // length-normalised log-probability
};

struct CaptionResult {
  std::string caption;             // capitalize(best text), or capitalize(prompt + best text)
  std::vector<CaptionBeam> beams;  // best first
};

// The mapper (docs/text-and-captions.md, "Caption decoder"): normalised embedding ->
// [prefix_length, n_embd] GPT-2 input embeddings.
class CaptionMapper {
 public:
  // `threads`: of every map() (0: all cores; inside a parallel region: serial).
  explicit CaptionMapper(std::shared_ptr<const ModelFile> model, int threads = 0);
  // prefix: [input_dim()], already L2-normalised. Returns [output_tokens(), dim()].
  std::vector<float> map(const float* prefix) const;
  // map() of each prefix, the clips on the threads and each weight matrix read (and widened) once
  // for all of them; each result is exactly map()'s.
  std::vector<std::vector<float>> map_batch(const std::vector<const float*>& prefixes) const;
  int64_t output_tokens() const { return cfg_.clip_length; }
  int64_t input_dim() const { return in_dim_; }
  int64_t dim() const { return cfg_.dim; }

 private:
  // Weight matrices as stored (the mapping): f32 ones are used in place, f16/bf16 ones widened to
  // float32 into a scratch buffer when used, so that no float32 copy of them is held.
  struct Layer {
    const float *n1_g, *n1_b, *proj_b, *n2_g, *n2_b, *fc1_b, *fc2_b;
    const TensorInfo *q_w, *kv_w, *proj_w, *fc1_w, *fc2_w;
  };
  std::shared_ptr<const ModelFile> model_;
  int threads_ = 0;
  MapperConfig cfg_;  // prefix_length = tokens made by the Linear, clip_length = constants = outputs
  int64_t in_dim_ = 0;
  const TensorInfo* lin_w_ = nullptr;
  const float *lin_b_ = nullptr, *prefix_const_ = nullptr;
  std::vector<Layer> layers_;
};

// Beam search over the decoder, exactly msclap's _generate_beam. `prefix` is [n_prefix, n_embd]
// (mapper output, optionally followed by prompt token embeddings). use_cache=false recomputes the
// whole sequence every step, as msclap does (the test oracle).
struct BeamSearchResult {
  std::vector<CaptionBeam> beams;           // ranked, best first (text left empty)
  std::vector<std::vector<int64_t>> slots;  // msclap's final `tokens` tensor, beam-slot order
  std::vector<int64_t> slot_lengths;
  int steps = 0;
};
BeamSearchResult beam_search(const Gpt2& gpt2, const float* prefix, int64_t n_prefix, int beam, int max_tokens,
                             float temperature, int64_t stop_id, bool use_cache = true);
// The beam searches of many prefixes (each [n_prefix, n_embd]) at once: up to `max_batch` captions
// run as one decoder batch per step (caption count x beam rows, the weights read once per step for
// all of them); a finished caption leaves the batch. Results are identical to beam_search on each
// prefix alone (same tokens, same scores bit for bit), in the order of `prefixes`.
std::vector<BeamSearchResult> beam_search_batch(const Gpt2& gpt2, const std::vector<const float*>& prefixes,
                                                int64_t n_prefix, int beam, int max_tokens, float temperature,
                                                int64_t stop_id, int max_batch = 16);

// How a Captioner computes (its audio encoder, mapper and decoder). Captions are the same for any
// thread count.
struct CaptionerParams {
  int threads = 0;  // threads of every compute call (0: all cores; inside a parallel region: serial)
};

class Captioner {
 public:
  // Needs cap.* in the file; ModelError names the missing part.
  explicit Captioner(std::shared_ptr<const ModelFile> model, CaptionerParams params = {});
  ~Captioner();

  CaptionResult caption_embedding(const float* audio_embedding, const CaptionOptions&) const;
  // Many embeddings, their beam searches batched (beam_search_batch, up to `max_batch` captions per
  // decoder batch): the same results as caption_embedding on each, in order.
  std::vector<CaptionResult> caption_embeddings(const std::vector<const float*>& audio_embeddings,
                                                const CaptionOptions&, int max_batch = 16) const;
  // Uses the captioner's own audio encoder ("cap.audio.") on the windows of `crop` (encode_clip:
  // resolve an unseeded random crop with resolve_clip_crop first). With several windows (crop
  // "cover") the window embeddings are averaged before normalisation.
  CaptionResult caption_signal(const std::vector<float>& signal44k, const CropPolicy&, const CaptionOptions&) const;
  // The embedding caption_signal captions (the captioner's audio encoder on the windows of the
  // crop), for batching many clips through caption_embeddings.
  std::vector<float> audio_embedding(const std::vector<float>& signal44k, const CropPolicy&) const;

  // Stages, for tests: mapper output [prefix_length, n_embd] of an (unnormalised) embedding.
  std::vector<float> prefix_embeddings(const float* audio_embedding) const;
  const Gpt2& decoder() const { return gpt2_; }
  const Tokenizer& tokenizer() const { return tokenizer_; }
  int64_t embedding_dim() const;

 private:
  std::shared_ptr<const ModelFile> model_;
  CaptionerParams params_;
  Tokenizer tokenizer_;
  Gpt2 gpt2_;
  CaptionMapper mapper_;
  struct AudioPart;
  mutable std::once_flag audio_once_;
  mutable std::unique_ptr<AudioPart> audio_;  // the captioner's audio encoder, created on first use
};

}  // namespace asdcap
