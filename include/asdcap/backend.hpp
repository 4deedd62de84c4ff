// Embedding backends: what turns a clip into the vector that k-NN detection works on.
// "acoustic" needs no weights; "msclap" runs CLAP's audio encoder from a model file.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "asdcap/audio.hpp"

namespace asdcap {

class EmbeddingBackend {
 public:
  virtual ~EmbeddingBackend() = default;
  virtual std::string name() const = 0;
  // Backend name, version of its maths and the model's content hash: cached embeddings are
  // reused only under the same identity.
  virtual std::string identity() const = 0;
  virtual int dim() const = 0;
  // Embeds one clip from its 44.1 kHz mono signal. With several windows (crop "cover") the
  // window embeddings are averaged.
  virtual std::vector<float> embed(const std::vector<float>& signal44k, const CropPolicy& crop) = 0;
};

struct BackendOptions {
  std::string model_path;  // model file for "msclap"
  int threads = 0;         // 0: all cores
};

// "acoustic" or "msclap". Throws UsageError for an unknown name, ModelError for a bad model.
std::unique_ptr<EmbeddingBackend> make_backend(const std::string& name, const BackendOptions& options);

}  // namespace asdcap
