// The DCASE 2020 Task 2 autoencoder baseline (Koizumi et al.), trained on a user's own normal clips.
//
// Features (librosa 0.6 defaults as the baseline uses them): the clip at its own sample rate, mono;
// STFT with n_fft 1024, hop 512, periodic Hann, centred frames with reflect padding, power spectrum;
// 128 Slaney mel filters (area-normalised) from 0 Hz to sr/2; 10 log10(mel + 2.220446049250313e-16);
// five consecutive frames concatenated frame-major into 640-dim vectors at every frame position
// (a 10-s clip at 16 kHz: 313 frames, 309 vectors).
//
// Network: 640 -> [Dense 128 -> BatchNorm -> ReLU] x 4 -> Dense 8 -> BatchNorm -> ReLU ->
// [Dense 128 -> BatchNorm -> ReLU] x 4 -> Dense 640, trained with Keras 2.1.6's defaults (Glorot-uniform
// kernels, BatchNorm momentum 0.99 / epsilon 1e-3, MSE loss, Adam 1e-3 / 0.9 / 0.999 / 1e-7, batch 512,
// 100 epochs, reshuffled every epoch, the last 10 % of the vectors held out for the validation loss).
// A clip's anomaly score is the mean over its vectors of the per-vector mean squared reconstruction
// error. docs/ae.md describes every step and its tests.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "asdcap/audio.hpp"
#include "asdcap/error.hpp"

namespace asdcap {

// ---- Features ---------------------------------------------------------------------------------

struct AeFeatureSettings {
  int n_fft = 1024;
  int hop = 512;
  int n_mels = 128;
  int frames = 5;  // frames per vector
  int dim() const { return n_mels * frames; }
};
inline constexpr int kAeVectorDim = 640;

// Log-mel spectrogram of a mono signal at `sample_rate`: (n / hop + 1) frames x 128, row-major.
// Throws FormatError for an empty signal or a sample rate below 1 Hz.
std::vector<float> ae_log_mel(const float* mono, int64_t n, int sample_rate);

// The 640-dim vectors of a log-mel spectrogram of `frames` rows: frames - 4 rows (none when
// frames < 5), row t = log-mel rows t .. t+4 one after the other.
std::vector<float> ae_vectors(const std::vector<float>& log_mel, int64_t frames);

struct AeClipFeatures {
  int sample_rate = 0;
  int64_t rows = 0;         // vectors
  std::vector<float> data;  // rows x 640
};
// Decodes `path` (channels averaged), then ae_log_mel and ae_vectors. Throws IoError / FormatError
// naming the file, also when the clip is shorter than five frames (it would give no vector).
AeClipFeatures ae_clip_features(const std::string& path);
// The same from audio already decoded (decode_audio); messages name audio.info.path.
AeClipFeatures ae_clip_features(const DecodedAudio& audio);

// The librosa 0.6 mel filter bank (float32 weights, as librosa returns them): [n_mels x (n_fft/2 + 1)].
std::vector<float> ae_mel_filters(int sample_rate);

// ---- Model ------------------------------------------------------------------------------------

// Bumped whenever the arithmetic of features, training or scoring changes: caches key on it.
inline constexpr int kAeBackendVersion = 1;

// Raised by training when its `cancelled` callback answers true (nothing is saved).
class AeCancelled : public Error {
 public:
  using Error::Error;
};

struct AeEpochReport {
  int epoch = 0;  // 1-based
  int epochs = 0;
  double loss = 0;      // mean training loss of the epoch's batches, weighted by batch size (as Keras logs it)
  double val_loss = 0;  // validation loss after the epoch (inference mode); NaN without validation vectors
};

struct AeTrainOptions {
  int epochs = 100;
  int batch_size = 512;
  double learning_rate = 1e-3;
  uint64_t seed = 0;                                          // initial weights and the shuffles
  double validation_split = 0.1;                              // the last fraction of the vectors, before shuffling
  int threads = 0;                                            // 0: all cores; results do not depend on it
  std::function<bool()> cancelled;                            // polled before every batch; true stops training
  std::function<void(const AeEpochReport&)> on_epoch;         // after every epoch
  std::function<void(int64_t done, int64_t total)> on_batch;  // batches of the current epoch
};

// What a trained model records about itself (model-file metadata).
struct AeModelInfo {
  std::string machine_type;  // given by the caller
  int64_t clips = 0;         // training clips, given by the caller
  int64_t vectors = 0;       // all vectors (training + validation)
  int64_t train_vectors = 0;
  int64_t val_vectors = 0;
  int sample_rate = 0;  // of the training clips (given by the caller; 0 if unknown)
  AeFeatureSettings features;
  int epochs = 0;  // epochs completed
  int batch_size = 0;
  double learning_rate = 0;
  uint64_t seed = 0;
  double validation_split = 0;
  double final_loss = 0;
  double final_val_loss = 0;    // NaN without validation vectors
  std::string training_sha256;  // sha256 of the training matrix (float32 little-endian, rows x 640)
  std::string training_key;     // caller's identity of the training set (e.g. a hash of clip files); may be empty
  int backend_version = kAeBackendVersion;
};

class AeModel {
 public:
  // Trains on `vectors` (rows x 640, row-major). `info` supplies machine_type, clips, sample_rate and
  // training_key; the rest is filled in. Throws AeCancelled when options.cancelled answers true,
  // InvalidArgument on bad options, Error when fewer vectors than one batch row remain for training.
  static AeModel train(const float* vectors, int64_t rows, const AeTrainOptions& options, AeModelInfo info = {});

  // Reads a model file written by save(). Throws IoError / FormatError / ModelError naming the file.
  static AeModel load(const std::string& path);
  // Writes the model atomically (a temporary file renamed into place).
  void save(const std::string& path) const;

  // Mean over the rows of the per-row mean squared reconstruction error (inference mode).
  double score(const float* vectors, int64_t rows, int threads = 0) const;
  // Per-row mean squared reconstruction errors.
  std::vector<double> errors(const float* vectors, int64_t rows, int threads = 0) const;
  // The clip embedding for neighbour retrieval: the mean over the rows of the 8-dim bottleneck code
  // (after its BatchNorm and ReLU). docs/ae.md says why this one.
  std::vector<float> embed(const float* vectors, int64_t rows, int threads = 0) const;
  static constexpr int kEmbeddingDim = 8;

  const AeModelInfo& info() const;

  AeModel(AeModel&&) noexcept;
  AeModel& operator=(AeModel&&) noexcept;
  ~AeModel();

  struct Impl;

 private:
  friend struct AeModelInternals;  // src/ae/model.hpp: the network, for the library's tests and dev tools
  explicit AeModel(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Whether `path` is a GGUF file of architecture "asdcap-ae" (reads the header only; false for any
// other or unreadable file).
bool is_ae_model_file(const std::string& path);

// The identity of a training run, for caches of trained models: the sha256 (hex) of a text that
// lists kAeBackendVersion, the feature settings, the options that change the trained weights
// (epochs, batch size, learning rate, seed, validation split; not threads or callbacks) and the
// training clips as (name, sha256 of the file's content) pairs sorted by name, the order their
// vectors are trained on. Names are the caller's (e.g. paths relative to the dataset root).
std::string ae_training_key(std::vector<std::pair<std::string, std::string>> clips, const AeTrainOptions& options);

// Lines describing a model, as `asdcap info` prints them ("key: value").
std::vector<std::string> describe(const AeModelInfo& info);

}  // namespace asdcap
