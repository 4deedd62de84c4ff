// PANNs CNN14 (Kong et al., "PANNs: Large-Scale Pretrained Audio Neural Networks", audioset_tagging_cnn):
// converting the published checkpoints (Cnn14_mAP=0.431.pth at 32 kHz, Cnn14_16k_mAP=0.438.pth at
// 16 kHz) into an asdcap model file, and running the network on a waveform: the 2048-d embedding
// (fc1 + ReLU) and the 527 AudioSet tag probabilities (fc_audioset + sigmoid). docs/panns.md.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "asdcap/audio.hpp"
#include "asdcap/backend.hpp"
#include "asdcap/checkpoint.hpp"
#include "asdcap/model_file.hpp"

namespace asdcap {

// Version of asdcap's CNN14 arithmetic; part of the panns backend identity (embedding caches). The
// AVX-512 and the AVX2 GEMM kernels round differently, so the kernel set in use (nn::kernel_set())
// is part of it: "cnn14-2-avx512" or "cnn14-2" (2: kernels chosen at run time).
std::string panns_maths_version();

struct PannsConfig {
  std::string variant = "Cnn14";  // Cnn14 (32 kHz), Cnn14_16k, Cnn14_8k
  int sample_rate = 32000;
  int n_fft = 1024;  // = window length
  int hop = 320;
  int mel_bins = 64;
  float fmin = 50.f;
  float fmax = 14000.f;
  std::vector<int> widths{64, 128, 256, 512, 1024, 2048};  // output channels of conv blocks 1..6
  int embedding_dim = 2048;                                // fc1 outputs
  int classes = 527;
  float bn_eps = 1e-5f;

  int freq_bins() const { return n_fft / 2 + 1; }
  // The shortest input: 32 frames (5 poolings leave one), and more than n_fft/2 samples for the
  // reflect padding.
  int64_t min_samples() const;
};

// ---- Conversion (asdcap convert --panns) -------------------------------------------------------

struct PannsConvertOptions {
  std::string checkpoint;    // torch.save file, legacy or zip ({'model': state_dict, ...} or a state dict)
  std::string out;           // .gguf, written atomically
  DType dtype = DType::F32;  // F16 / BF16: the folded convolutions and fc weights; everything else stays f32
};

struct PannsConvertReport {
  PannsConfig config;
  std::vector<std::string> skipped;  // checkpoint tensors not stored (num_batches_tracked counters)
};

// The architecture and front end a CNN14 state dict implies: sizes from the tensor shapes; sample
// rate, hop and fmax from n_fft (1024: 32 kHz / 320 / 14 kHz; 512: 16 kHz / 160 / 8 kHz; 256: 8 kHz /
// 80 / 4 kHz), checked against the stored mel filter bank (Slaney, 50 Hz to fmax) and STFT kernels
// (periodic Hann DFT). Throws ModelError naming the file and the tensor that does not fit.
PannsConfig infer_panns_config(const std::vector<CheckpointTensor>& tensors, const std::string& file);

// Reads, checks and writes. Throws InvalidArgument, IoError, FormatError, ModelError.
PannsConvertReport convert_panns(const PannsConvertOptions& opts);

// A full-size (or any size) CNN14 model file with deterministic random weights, for benchmarks and
// tests: He-normal convolutions, BatchNorm near identity, the real STFT kernels and Slaney mel bank.
void write_random_panns_model(const std::string& path, const PannsConfig& cfg, DType dtype, uint64_t seed);

// ---- The model ----------------------------------------------------------------------------------

// Whether `path` is an asdcap model file of the PANNs architecture (GGUF general.architecture
// "asdcap-panns"); false for other GGUF files. Throws IoError / FormatError when it cannot be read.
bool is_panns_model_file(const std::string& path);

class PannsModel {
 public:
  // Maps and validates an asdcap-panns file. A version-2 file's weights (BatchNorm folded, packed) are
  // used where they lie in the mapping; a version-1 file's are folded and packed in memory on up to
  // `threads` threads (0 = all cores), with a one-line hint on stderr to re-lay it (docs/panns.md).
  // Throws IoError / FormatError / ModelError naming the file.
  static std::shared_ptr<const PannsModel> open(const std::string& path, int threads = 0);
  ~PannsModel();
  PannsModel(const PannsModel&) = delete;
  PannsModel& operator=(const PannsModel&) = delete;

  const PannsConfig& config() const;
  const std::string& path() const;
  // Content identity for caches (sha256 of the GGUF header, metadata and tensor table).
  const std::string& identity() const;

  struct Output {
    std::vector<float> embedding;  // [embedding_dim], after ReLU
    std::vector<float> clipwise;   // [classes], sigmoid probabilities
  };
  // One whole clip at config().sample_rate (resample other rates first: asdcap::resample), of at
  // least config().min_samples() samples (shorter: InvalidArgument). `threads` 0 = all cores.
  Output run(std::span<const float> samples, int threads) const;
  std::vector<float> embed(std::span<const float> samples, int threads) const;
  // Several clips (any lengths): spread over the threads, one clip per thread at a time.
  std::vector<Output> run_batch(const std::vector<std::span<const float>>& clips, int threads) const;

  struct Impl;
  const Impl& impl() const { return *impl_; }  // for asdcap's own tests and benchmarks (src/panns/cnn14.hpp)

 private:
  PannsModel();
  std::unique_ptr<Impl> impl_;
};

// ---- Clips and files (embed, tags, detect) ------------------------------------------------------

// The window of every crop policy but "whole": 7 s at the model's rate (offset:N counts samples at
// that rate). CNN14 takes any length, so PANNs' default crop is "whole".
inline constexpr int kPannsWindowSeconds = 7;
CropPolicy panns_default_crop();

// One clip's outputs from its mono signal at config().sample_rate: the windows `crop` takes
// (crop_windows with windows of kPannsWindowSeconds; "whole": the signal itself; an unseeded random
// crop must be resolved with resolve_clip_crop first), each run through the network, the embeddings
// and tag scores averaged over the windows by WindowMean. The one rule for a clip: the panns backend,
// panns_files (`asdcap embed`, `asdcap tags`) give these bits. A window shorter than
// config().min_samples() is an InvalidArgument naming the minimum.
PannsModel::Output panns_clip(const PannsModel& model, const std::vector<float>& signal, const CropPolicy& crop,
                              int threads);

// Audio files: each loaded at the model's rate (load_audio: decoded, resampled with asdcap's
// resampler, channels per `channels`), its crop resolved by resolve_clip_crop, then panns_clip. The
// files are spread over the threads, one file per thread at a time (the same bits as panns_clip on
// each file). `on_file_done` (optional) is called once per finished file, from any thread. Throws
// IoError / FormatError naming the file (also for a clip too short for CNN14); InvalidArgument for a
// crop offset beyond a clip.
std::vector<PannsModel::Output> panns_files(const PannsModel& model, const std::vector<std::string>& paths,
                                            const CropPolicy& crop, ChannelMode channels, int threads,
                                            const std::function<void()>& on_file_done = {});

// The "panns" embedding backend: CNN14's 2048-d embedding (fc1 + ReLU) of panns_clip, from the
// model file options.model_path at its own sample rate; default crop "whole"; clips embedded in
// parallel (one clip per thread). Throws InvalidArgument without a model path, ModelError naming the
// file for a model file that is not a PANNs one.
std::unique_ptr<EmbeddingBackend> make_panns_backend(const BackendOptions& options);

}  // namespace asdcap
