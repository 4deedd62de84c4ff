// CLAP's text encoder (msclap 2023): tokens of text + " <|endoftext|>", GPT-2, the hidden state at
// index (number of ids != 0) - 1 (msclap's pooling; a "!" in the text moves it back), projection.
// Attention is causal, so only the positions up to the pooled index are computed: the same numbers
// as msclap's run over 77 padded positions.
// Texts longer than 77 tokens keep all their tokens (as msclap); more than n_ctx (1024) tokens is
// an error (InvalidArgument naming the text).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "asdcap/gpt2.hpp"
#include "asdcap/model_file.hpp"
#include "asdcap/tokenizer.hpp"

namespace asdcap {

// How a TextEncoder computes. Results are the same bits for any thread count.
struct TextEncoderParams {
  int threads = 0;  // threads of every compute call (0: all cores; inside a parallel region: serial)
};

class TextEncoder {
 public:
  // Needs text.gpt2.*, text.proj.* and the vocabulary in the file; ModelError names what is missing.
  explicit TextEncoder(std::shared_ptr<const ModelFile> model, TextEncoderParams params = {});

  // Row-major [texts.size(), proj_dim] embeddings (projection output, not L2-normalised).
  std::vector<float> embed(const std::vector<std::string>& texts) const;

  // The stages of one text, for tests and diagnostics.
  struct Trace {
    std::vector<int64_t> ids;      // encode_clap_text(text)
    int64_t pooled_index = 0;      // (count of ids != 0) - 1
    std::vector<float> hidden;     // [pooled_index + 1, n_embd] after ln_f
    std::vector<float> pooled;     // [n_embd]
    std::vector<float> embedding;  // [proj_dim]
  };
  Trace trace(const std::string& text) const;
  Trace trace_ids(const std::vector<int64_t>& ids) const;

  const Tokenizer& tokenizer() const { return tokenizer_; }
  int64_t dim() const { return proj_dim_; }

 private:
  std::shared_ptr<const ModelFile> model_;
  TextEncoderParams params_;
  Tokenizer tokenizer_;
  Gpt2 gpt2_;
  int64_t proj_dim_ = 0;
};

}  // namespace asdcap
