// LAION-CLAP audio embeddings (laion_clap, CLAP_Module(enable_fusion=False), e.g. 630k-audioset-best.pt):
// converting the training checkpoint into an asdcap model file, and the audio path of
// get_audio_embedding_from_filelist: 48 kHz mono, the int16 round trip, 10-s windows (repeat-then-
// zero-pad for short clips, crops for long ones), torchlibrosa's log-mel, bn0, HTSAT (clap/htsat.hpp),
// the audio projection and L2 normalisation. docs/laion.md.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "asdcap/audio.hpp"
#include "asdcap/backend.hpp"
#include "asdcap/checkpoint.hpp"
#include "asdcap/model_file.hpp"

namespace asdcap {

struct LaionConfig {
  HtsatConfig audio{256, 4, 1, 96, {2, 2, 6, 2}, {4, 8, 16, 32}, 8, 4, 768, 527, 4};  // HTSAT-tiny
  int joint_dim = 512;  // audio_projection output: the embedding size
  // audio_cfg of the HTSAT-tiny model (fixed by laion_clap, not in the checkpoint)
  int sample_rate = 48000;
  int64_t clip_samples = 480000;
  int n_fft = 1024;
  int hop = 480;
  int mel_bins = 64;
  float fmin = 50.f, fmax = 14000.f;
  // The text branch kept in the file (RoBERTa; not run by asdcap): its sizes, 0 when absent.
  int text_vocab = 0, text_hidden = 0, text_layers = 0, text_intermediate = 0, text_positions = 0;
  float logit_scale_a = 0.f, logit_scale_t = 0.f;  // logs of the similarity scales

  int64_t frames() const { return clip_samples / hop + 1; }  // 1001
};

// ---- Conversion (asdcap convert --laion-clap) ---------------------------------------------------

struct LaionConvertOptions {
  std::string checkpoint;  // torch.save zip: {'epoch', 'name', 'state_dict' (keys "module."...), 'optimizer'}
  std::string out;         // .gguf, written atomically
  // F16 / BF16: the large weight matrices (f16_eligible) so; I8: the packed ones int8 with per-output
  // scales, the other large ones f16 (docs/model-files.md, "int8 weights").
  DType dtype = DType::F32;
};

struct LaionConvertReport {
  LaionConfig config;
  size_t audio_tensors = 0, text_tensors = 0;  // stored
  std::vector<std::string> skipped;            // state-dict tensors not stored (derivable or counters)
};

// The architecture a LAION-CLAP state dict (keys without "module.") implies, from the tensor shapes.
// Throws ModelError naming the file and the tensor that does not fit.
LaionConfig infer_laion_config(const std::vector<CheckpointTensor>& tensors, const std::string& file);

// Reads (the optimiser state is skipped without reading its storages), checks and writes.
// Throws InvalidArgument, IoError, FormatError, ModelError.
LaionConvertReport convert_laion(const LaionConvertOptions& opts);

// A model file of any HTSAT size with deterministic random weights (benchmarks): Swin weights with
// std 1/sqrt(fan_in), the real front end's tensors. No text branch.
void write_random_laion_model(const std::string& path, const LaionConfig& cfg, DType dtype, uint64_t seed);

// Whether `path` is an asdcap model file of the LAION-CLAP architecture ("asdcap-laion").
bool is_laion_model_file(const std::string& path);

// ---- The audio path -----------------------------------------------------------------------------

// laion_clap's int16 round trip: clip(x, -1, 1) * 32767 in float32, truncated toward zero.
std::vector<int16_t> laion_quantize(const std::vector<float>& signal);
// q / 32767 as NumPy divides (float64, rounded once to float32).
float laion_dequantize(int16_t q);

// The 10-s windows (of `window` samples) laion_clap's get_audio_features makes from a quantised
// clip: a clip shorter than the window repeated whole floor(window / n) times, then zero-padded
// ("repeatpad"); a longer one cropped by `crop` (crop_windows; "cover" gives several windows); one
// of exactly the window's length unchanged. Throws InvalidArgument for crop "whole" and an empty clip.
std::vector<std::vector<int16_t>> laion_windows(const std::vector<int16_t>& quantized, const CropPolicy& crop,
                                                int64_t window = 480000);

class LaionModel {
 public:
  // Maps and validates an asdcap-laion file; weights are packed for `threads` threads (0 = all cores).
  static std::shared_ptr<const LaionModel> open(const std::string& path, int threads = 0);
  ~LaionModel();
  LaionModel(const LaionModel&) = delete;
  LaionModel& operator=(const LaionModel&) = delete;

  const LaionConfig& config() const;
  const std::string& path() const;
  const std::string& identity() const;  // sha256 of the GGUF header, metadata and tensor table

  struct Output {
    std::vector<float> embedding;  // [joint_dim]: L2-normalised projection (laion_clap's audio embedding)
    std::vector<float> latent;     // [num_features]: HTSAT's output_dict['embedding']
    std::vector<float> clipwise;   // [classes]: tag scores (sigmoid)
  };
  // Windows of config().clip_samples int16 samples each (laion_windows); batched over the threads.
  std::vector<Output> encode(const std::vector<const int16_t*>& windows) const;
  // One clip's outputs from its mono 48 kHz signal: quantised, windowed (laion_windows), each output
  // averaged over the windows (WindowMean). An unseeded random crop must be resolved first
  // (resolve_clip_crop); here it is drawn with seed 0.
  Output encode_clip(const std::vector<float>& signal48k, const CropPolicy& crop) const;

  // Every stage of one window, for golden tests and diagnostics.
  struct Trace {
    std::vector<float> spectrogram;          // [frames x 513] power
    std::vector<float> logmel, bn0;          // [frames x 64]
    std::vector<float> image;                // [256 x 256]
    std::vector<float> patch_embed;          // [N0 x C0]
    std::vector<std::vector<float>> stages;  // after each stage's PatchMerging
    std::vector<float> final_norm;           // [N_last x C_last]
    std::vector<float> projection_hidden;    // ReLU(W0 latent + b0)
    std::vector<float> projection;           // W2 hidden + b2
    Output output;
  };
  Trace trace(const int16_t* window) const;

  // The stages one by one (tests feed each its reference input).
  std::vector<float> log_mel(const float* samples, std::vector<float>* spectrogram = nullptr) const;
  std::vector<float> bn0(const float* logmel) const;  // [frames x 64]
  std::vector<float> image(const float* bn0) const;   // [256 x 256]
  std::vector<float> patch_embed(const float* image) const;
  std::vector<float> stage(int index, const float* tokens) const;
  std::vector<float> final_norm(const float* tokens) const;
  Output head(const float* final_tokens, std::vector<float>* hidden = nullptr,
              std::vector<float>* projection = nullptr) const;
  int num_stages() const;

  struct Impl;

 private:
  LaionModel();
  std::unique_ptr<Impl> impl_;
};

// Audio files -> outputs, in order: each loaded at the model's rate (channels per `channels`), its
// crop resolved by resolve_clip_crop (a random crop seeded by the file's content), encode_clip.
// `on_file_done` (optional) is called once per finished file. Throws the front end's IoError /
// FormatError naming the file.
std::vector<LaionModel::Output> laion_encode_files(const LaionModel& model, const std::vector<std::string>& paths,
                                                   const CropPolicy& crop, ChannelMode channels,
                                                   const std::function<void()>& on_file_done = {});

// The "laion" embedding backend: the L2-normalised audio embedding of each 10-s window at 48 kHz,
// averaged over the windows of the crop policy. Throws ModelError.
std::unique_ptr<EmbeddingBackend> make_laion_backend(const BackendOptions& options);

}  // namespace asdcap
