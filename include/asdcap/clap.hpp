// CLAP (msclap 2023) audio side: the HTSAT audio encoder with its projection, similarities between
// audio and text embeddings, and the "msclap" embedding backend.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "asdcap/backend.hpp"
#include "asdcap/model_file.hpp"

namespace asdcap {

// Version of asdcap's HTSAT arithmetic; part of the msclap and laion backend identities (embedding
// caches). The AVX-512 and the AVX2 kernels round differently (within float tolerance of msclap
// both), so the kernel set in use (nn::kernel_set()) is part of it: "htsat-4-avx512" or "htsat-4".
// 4: kernels chosen at run time; 3: the softmax's division moved to the attention outputs,
// LayerNorm's double sums in vector order, the dB conversion's log10 in double.
std::string htsat_maths_version();

constexpr int kImageSize = 256;  // HTSAT's input image is kImageSize x kImageSize

// How an AudioEncoder computes. Results are the same bits for any thread count.
struct AudioEncoderParams {
  int threads = 0;  // threads of every compute call (0: all cores; inside a parallel region: serial)
};

// bicubic time interpolation 965 -> 1024 (PyTorch, align_corners=True, a = -0.75) followed by
// reshape_wav2img: 4 chunks of 256 frames stacked along frequency. Input is a window's log-mel
// [965 x 64] after bn0; output [256 x 256] row-major: HTSAT's input image.
std::vector<float> wav_to_image(const float* bn0_frames_by_mel);

// HTSAT: a 7-s window -> log-mel (audio's front end, log_mel) -> bn0 -> image (wav_to_image) ->
// patch embedding -> Swin stages -> final LayerNorm -> tags, latent and the CLAP projection.
class AudioEncoder {
 public:
  // prefix "audio." (CLAP) or "cap.audio." (the captioner's copy). Throws ModelError naming what
  // the file lacks.
  explicit AudioEncoder(std::shared_ptr<const ModelFile> model, std::string prefix = "audio.",
                        AudioEncoderParams params = {});
  ~AudioEncoder();
  AudioEncoder(const AudioEncoder&) = delete;
  AudioEncoder& operator=(const AudioEncoder&) = delete;

  struct Output {
    std::vector<float> embedding;  // [dim()]: projection output (LayerNorm'd, not L2-normalised), as msclap
    std::vector<float> latent;     // [latent_dim()]: HTSAT latent_output, before the projection
    std::vector<float> clipwise;   // [num_classes()]: AudioSet tag scores (sigmoid)
  };
  // One output per 7-s window (kWindowSamples samples at 44.1 kHz each); windows are batched.
  std::vector<Output> encode(const std::vector<const float*>& windows) const;
  // From HTSAT images ([256 x 256] each, after bn0 and wav_to_image).
  std::vector<Output> encode_images(const std::vector<const float*>& images) const;

  // Every stage of one window, for golden tests and diagnostics.
  struct Trace {
    std::vector<float> logmel, bn0;          // [965 x 64]
    std::vector<float> image;                // [256 x 256]
    std::vector<float> patch_embed;          // [N0 x C0]
    std::vector<std::vector<float>> stages;  // output of each Swin stage (after its PatchMerging)
    std::vector<float> final_norm;           // [N_last x C_last]
    Output output;
  };
  Trace trace(const float* window) const;

  // The stages one by one, on `batch` inputs laid end to end (tests feed each stage its reference input).
  std::vector<float> bn0(const float* logmel, int64_t frames) const;  // [frames x 64] -> same
  std::vector<float> patch_embed(const float* images, int64_t batch) const;
  std::vector<float> stage(int index, const float* tokens, int64_t batch) const;
  std::vector<float> final_norm(const float* tokens, int64_t batch) const;
  std::vector<Output> head(const float* final_tokens, int64_t batch) const;  // latent, tags, projection

  int num_stages() const;
  int64_t dim() const;         // projection size
  int64_t latent_dim() const;  // HTSAT num_features
  int64_t num_classes() const;
  const std::string& prefix() const;

  static constexpr int kMaxBatch = 8;  // windows whose images are held at once (bounds memory)

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// cos(a_i, b_j) as a row-major [na x nb] matrix (rows L2-normalised in double; a zero vector gives 0).
std::vector<float> cosine_matrix(const float* a, int64_t na, const float* b, int64_t nb, int64_t dim);
// The same in double precision (what the explanations' similarity inputs use).
std::vector<double> cosine_matrix_f64(const float* a, int64_t na, const float* b, int64_t nb, int64_t dim);
// msclap's similarity logits: exp(logit_scale) * cosine, [na x nb].
std::vector<float> scaled_logits(const float* a, int64_t na, const float* b, int64_t nb, int64_t dim,
                                 float logit_scale);
// Zero-shot classification: softmax of each row of logits [rows x cols] (msclap: over the texts).
std::vector<float> softmax_rows_copy(const std::vector<float>& logits, int64_t rows, int64_t cols);

// One clip's outputs from its 44.1 kHz signal: the windows `crop` takes (crop_windows; an unseeded
// random crop is resolved with resolve_clip_crop first), one batched encoder pass, and each output
// (embedding, latent, tags) averaged over the windows by WindowMean. The one rule for embedding a
// clip: the msclap backend, the captioner and encode_files all give these bits.
AudioEncoder::Output encode_clip(const AudioEncoder& encoder, const std::vector<float>& signal44k,
                                 const CropPolicy& crop);

// Encodes audio files: load (44.1 kHz, channels per `channels`), then encode_clip's rule with the
// crop resolved per file by resolve_clip_crop, the windows of several files batched together (the
// same bits as encode_clip on each file). `on_file_done` (optional) is called once per finished
// file. Throws the front end's IoError/FormatError naming the file.
std::vector<AudioEncoder::Output> encode_files(const AudioEncoder& encoder, const std::vector<std::string>& paths,
                                               const CropPolicy& crop, ChannelMode channels,
                                               const std::function<void()>& on_file_done = {});

// The "msclap" embedding backend: CLAP's audio embedding (projection output) of each window of the
// crop policy; with several windows ("cover") the embeddings are averaged (encode_clip). The
// encoder runs on options.threads threads. Throws ModelError.
std::unique_ptr<EmbeddingBackend> make_msclap_backend(const BackendOptions& options);

}  // namespace asdcap
