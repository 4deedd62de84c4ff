// Detection's interface to backends that learn a model per machine type from its normal training
// clips and score clips with it instead of by k-NN (EmbeddingBackend::machine_scorer): the DCASE
// 2020 autoencoder ("ae", src/detect/ae_backend.cpp).
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "asdcap/audio.hpp"
#include "asdcap/backend.hpp"
#include "asdcap/dataset.hpp"
#include "detect/clip_reader.hpp"

namespace asdcap {

// One machine type's clips.
struct MachineClips {
  std::string machine;
  std::vector<const Clip*> train;  // normal training clips of all its IDs, sorted by path (the model's)
  std::vector<const Clip*> clips;  // the clips to score and embed (training and test clips)
};

// What the scorer gives for a machine type's clips. Every clip of MachineClips::clips is in
// `failures` or in both `scores` and `embeddings`.
struct MachineScores {
  std::map<const Clip*, double> scores;                  // higher: more anomalous
  std::map<const Clip*, std::vector<float>> embeddings;  // for the neighbour search (EmbeddingBackend::dim)
  std::map<const Clip*, std::string> failures;           // clip -> why it has no score
  bool trained = false;                                  // a model was trained (not loaded from the cache)
  bool cached = false;                                   // a model was loaded from the cache
};

struct MachineScorerContext {
  std::string cache_dir;  // the run's folder: models are kept under it
  ChannelMode channels = ChannelMode::Mean;
  int threads = 0;
  bool quiet = false;  // no lines on stderr (the progress bar follows Progress::enabled)
  // How the scorer reads its clips' audio: detection's reader, which decodes each clip once for
  // every system of the run.
  ClipReadFn read;
};

class MachineScorer {
 public:
  virtual ~MachineScorer() = default;
  // A clip that cannot be used is a failure; a model that cannot be trained makes every clip of the
  // machine type a failure. Throws for what stops the run (cancellation, an unwritable cache).
  virtual MachineScores score_machine(const MachineClips& clips, const MachineScorerContext& context) = 0;
};

// The "ae" backend (src/detect/ae_backend.cpp).
std::unique_ptr<EmbeddingBackend> make_ae_backend(const BackendOptions& options);

}  // namespace asdcap
