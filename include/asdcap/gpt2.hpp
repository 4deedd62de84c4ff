// GPT-2 forward pass (Hugging Face semantics: Conv1D weights [in, out], gelu_new, LayerNorm eps 1e-5,
// learned positions, causal attention), shared by CLAP's text encoder ("text.gpt2.") and the
// caption decoder ("cap.gpt2."), with a key/value cache.
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "asdcap/model_file.hpp"
#include "asdcap/nn.hpp"

namespace asdcap {

class Gpt2 {
 public:
  // prefix: "text.gpt2." or "cap.gpt2.". Every compute call runs on `threads` threads (0: all
  // cores; serial inside a parallel region); results do not depend on it. Throws ModelError naming
  // the missing tensor.
  Gpt2(std::shared_ptr<const ModelFile> model, const std::string& prefix, int threads);
  ~Gpt2();
  Gpt2(const Gpt2&) = delete;
  Gpt2& operator=(const Gpt2&) = delete;

  const Gpt2Config& config() const { return cfg_; }
  int64_t n_embd() const { return cfg_.n_embd; }
  int64_t vocab() const { return cfg_.vocab; }
  int64_t n_ctx() const { return cfg_.n_ctx; }
  int threads() const { return threads_; }  // as passed to the constructor

  // wte rows of `ids` (no position embedding): out [n, n_embd]. Throws Error on an id out of range.
  void token_embeddings(const int64_t* ids, int64_t n, float* out) const;

  // Key/value cache of `batch` sequences that share one length, in `groups` equal groups of
  // consecutive sequences. The first `shared` positions (the prefix every beam of a group starts
  // from) are stored once per group; later positions per sequence.
  struct Cache {
    int64_t batch = 0;
    int64_t length = 0;                                  // positions cached so far (same for every sequence)
    int64_t capacity = 0;                                // positions each sequence may reach
    int64_t shared = 0;                                  // leading positions common to a group's sequences
    int64_t groups = 1;                                  // sequence b is in group b / (batch / groups)
    std::vector<std::vector<float>> shared_k, shared_v;  // per layer: [groups, shared, n_embd]
    std::vector<std::vector<float>> k, v;                // per layer: [batch, capacity - shared, n_embd]
  };
  Cache make_cache(int64_t batch, int64_t capacity) const;
  // Turns a fresh cache of G sequences into G groups of `per_sequence` sequences each, every group's
  // sequences continuing from that old sequence's current content (stored once, as the group's
  // shared part). batch becomes G * per_sequence.
  void share(Cache& cache, int64_t per_sequence) const;
  // Beam re-selection: sequence b becomes a copy of old sequence src[b] (of the same group).
  void reorder(Cache& cache, const std::vector<int64_t>& src) const;
  // Keeps only the listed groups (increasing indices), in that order; the others leave the batch.
  void keep_groups(Cache& cache, const std::vector<int64_t>& groups) const;

  // Runs `n_new` new positions of each of the cache's sequences: x [batch, n_new, n_embd] input
  // embeddings (the position embedding is added here, from position cache.length on). Appends to
  // the cache and writes the final hidden states (after ln_f) to hidden [batch, n_new, n_embd].
  // Throws Error when the positions would exceed n_ctx or the cache capacity.
  void forward(const float* x, int64_t n_new, Cache& cache, float* hidden) const;

  // Full recomputation without a cache of sequences of different lengths stored one after the
  // other: x [sum(lengths), n_embd] -> hidden [sum(lengths), n_embd], positions 0..length-1 each.
  void forward_ragged(const float* x, const std::vector<int64_t>& lengths, float* hidden) const;
  // The same for `batch` sequences of n positions (msclap's way; the test oracle).
  void forward_nocache(const float* x, int64_t batch, int64_t n, float* hidden) const;

  // lm_head tied to wte: logits[r, vocab] = hidden[r] . wte^T.
  void logits(const float* hidden, int64_t rows, float* out) const;

 private:
  struct Layer {
    const float *ln1_g = nullptr, *ln1_b = nullptr, *ln2_g = nullptr, *ln2_b = nullptr;
    nn::PackedLinear attn, proj, fc, fc2;  // weights packed once (asdcap's GEMM)
  };
  std::shared_ptr<const ModelFile> model_;
  int threads_ = 0;
  Gpt2Config cfg_;
  // [vocab, n_embd] as stored: rows widened on lookup, and the lm_head's weights (used in place when
  // the file stores the table packed, wte_packed_; else packed on first use)
  nn::WeightView wte_;
  bool wte_packed_ = false;
  std::string wte_name_;
  const float* wpe_ = nullptr;
  const float* lnf_g_ = nullptr;
  const float* lnf_b_ = nullptr;
  std::vector<Layer> layers_;
  mutable std::once_flag lm_head_once_;
  mutable std::unique_ptr<nn::PackedLinear> lm_head_;

  struct Attention;
  void run_blocks(float* h, int64_t rows, const Attention& attention) const;
};

}  // namespace asdcap
