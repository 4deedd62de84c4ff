// Embedding backends: what turns a clip into the vector that k-NN detection works on.
// "acoustic" needs no weights; "msclap" runs CLAP's audio encoder, "panns" PANNs CNN14 and "laion"
// LAION-CLAP's audio branch from a model file; "ae" (the DCASE 2020 autoencoder) learns a model per
// machine type and scores clips itself.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "asdcap/audio.hpp"

namespace asdcap {

class MachineScorer;  // detection's interface to backends that train per machine type (internal)

class EmbeddingBackend {
 public:
  virtual ~EmbeddingBackend() = default;
  virtual std::string name() const = 0;
  // Backend name, version of its maths and the model's content hash: cached embeddings are
  // reused only under the same identity.
  virtual std::string identity() const = 0;
  virtual int dim() const = 0;
  // The sample rate embed() takes its signal at: detection decodes each clip, mixes it to mono and
  // resamples it to this rate (asdcap::load_audio). 0: the clip's own rate, unresampled.
  virtual int sample_rate() const { return 44100; }
  // The crop detection applies when the user chooses none: a random 7-s window seeded by the
  // clip's content unless the backend takes whole clips (panns).
  virtual CropPolicy default_crop() const { return CropPolicy{}; }
  // Embeds one clip from its mono signal at sample_rate(). With several windows (crop "cover") the
  // window embeddings are averaged.
  virtual std::vector<float> embed(const std::vector<float>& signal, const CropPolicy& crop) = 0;

  // True when the embedding's dimensions have their own units and scales (hand-made features):
  // detection then z-scores each dimension against a machine ID's normal references before the
  // k-NN search. False for learned embeddings, compared as they are.
  virtual bool standardise_per_group() const { return false; }
  // The order p of the Minkowski distance of the k-NN search (knn_search's `order`): 2, Euclidean,
  // for learned embeddings as in the papers. A higher order weighs a few strongly deviating
  // dimensions more than many slightly deviating ones.
  virtual int distance_order() const { return 2; }
  // True when embed() may run on several threads at once: detection then embeds clips in parallel.
  // False: one clip at a time (a backend that parallelises inside embed()).
  virtual bool thread_safe_embed() const { return false; }
  // Backends that learn a model from each machine type's normal training clips and score clips with
  // it ("ae") return their scorer: detection then hands it each machine type's clips instead of
  // calling embed(), takes the scores from it instead of the k-NN distance, and retrieves the
  // neighbours by k-NN over the clip embeddings it gives. nullptr (the others): k-NN over embed().
  virtual MachineScorer* machine_scorer() { return nullptr; }
};

// Training of the backends that learn from the normal training clips ("ae"); the others ignore it.
struct TrainingOptions {
  int epochs = 100;
  int batch_size = 512;
  double learning_rate = 1e-3;
  uint64_t seed = 1;  // initial weights and the shuffles: the same data and seed give the same model
};

struct BackendOptions {
  std::string model_path;  // model file for "msclap", "panns" and "laion"
  int threads = 0;         // 0: all cores
  TrainingOptions training;
  std::function<bool()> cancelled;  // polled during training: true stops it (nothing is saved)
};

// The names make_backend knows: "acoustic", "ae", "msclap", "panns", "laion".
const std::vector<std::string>& backend_names();

// The backend that runs a model file, from its GGUF architecture ("asdcap-msclap": msclap,
// "asdcap-panns": panns, "asdcap-laion": laion). Throws IoError / FormatError when the file cannot be read, ModelError
// naming the file when no backend runs its architecture.
std::string backend_for_model_file(const std::string& path);

// Throws InvalidArgument for an unknown name, ModelError for a bad model or a model file of another
// backend's architecture (naming the file).
std::unique_ptr<EmbeddingBackend> make_backend(const std::string& name, const BackendOptions& options);

}  // namespace asdcap
