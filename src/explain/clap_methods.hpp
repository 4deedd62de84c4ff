// The CLAP-based inputs of the papers' methods: "Sounds like ..." captions (clapcap) and cosine
// similarities between audio embeddings and reference-text embeddings.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "asdcap/audio.hpp"

namespace asdcap::explain_detail {

class ClapMethods {
 public:
  // Opens the model. Throws ModelError / IoError naming the file. `cache_path` (may be empty):
  // the run's cache.sqlite, shared with detection, for audio embeddings. The encoders and the
  // captioner run on `threads` threads (0: all cores).
  ClapMethods(const std::string& model_path, const CropPolicy& crop, ChannelMode channels,
              const std::string& cache_path, int threads);
  ~ClapMethods();

  // Why captions / similarities are unavailable with this model ("" when available).
  std::string caption_missing() const;
  std::string similarity_missing() const;

  // Thread-compatible (one caller at a time). Throw asdcap::Error naming the file.
  // The captions of many files, their beam searches run as one decoder batch (the same captions as
  // caption() on each): (caption, "") or ("", why it failed, naming the file) per path, in order.
  std::vector<std::pair<std::string, std::string>> captions(const std::vector<std::string>& audio_paths,
                                                            const std::string& prompt);
  std::vector<float> audio_embedding(const std::string& audio_path);
  // Cosine similarity of each audio embedding to each text: rows = audio, columns = texts.
  std::vector<std::vector<double>> similarities(const std::vector<std::vector<float>>& audio,
                                                const std::vector<std::string>& texts);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace asdcap::explain_detail
