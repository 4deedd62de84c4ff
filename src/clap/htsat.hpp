// The HTSAT audio tower shared by msclap's AudioEncoder and LAION-CLAP's audio branch: the image made
// from a log-mel after bn0 (bicubic time stretch + reshape_wav2img), the patch embedding, the Swin
// stages, the final LayerNorm, the latent (token mean) and the token-semantic head's tag scores. The
// two models differ only in hyper-parameters (HtsatConfig), in their front ends and in what follows
// the latent; docs/clap.md, "HTSAT, layer by layer".
#pragma once
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "asdcap/model_file.hpp"
#include "asdcap/nn.hpp"

namespace asdcap::clap {

// HTSAT's image from a log-mel after bn0 ([frames x 64], frames <= 1024): bicubic time
// interpolation frames -> 1024 (PyTorch, align_corners=True, a = -0.75, float32 scale) and
// reshape_wav2img's 4 chunks of 256 frames stacked along frequency. [256 x 256] row-major.
std::vector<float> spectrogram_to_image(const float* bn0_frames_by_mel, int frames);

// Where the tower reads its weights. Names are relative to the HTSAT module
// ("patch_embed.proj.weight", "layers.0.blocks.1.attn.qkv.weight", "norm.weight", "tscam_conv.bias").
class HtsatWeights {
 public:
  virtual ~HtsatWeights() = default;
  // A float32 view that lives as long as the model; ModelError naming file and tensor when the
  // tensor is missing or has another shape.
  virtual const float* get(const std::string& name, std::initializer_list<int64_t> shape) const = 0;
  // The Linear layer of weight `name` [out, in...] (trailing dimensions flattened) in the precision
  // it is stored in, with an optional bias ([out]); ModelError as get().
  virtual nn::PackedLinear linear(const std::string& name, std::initializer_list<int64_t> shape,
                                  const float* bias) const = 0;
  virtual const std::string& file() const = 0;  // for messages
};

class Htsat {
 public:
  // Throws ModelError naming the file when the configuration does not fit the tensors or asdcap's
  // kernels (256 x 256 single-channel image, freq_ratio 4). `threads`: of every compute call.
  Htsat(const HtsatConfig& cfg, const HtsatWeights& weights, int threads);
  Htsat(Htsat&&) noexcept;
  Htsat& operator=(Htsat&&) noexcept;
  ~Htsat();

  // images [256 x 256] each -> latent [count x latent_dim()] and tag scores [count x num_classes()]
  // (sigmoid). Thread-safe; the same bits for a clip whatever the group it is in.
  void encode_group(const float* const* images, int64_t count, float* latent, float* clipwise) const;

  // The stages one by one, on `batch` inputs laid end to end.
  std::vector<float> patch_embed(const float* images, int64_t batch) const;
  std::vector<float> stage(int index, const float* tokens, int64_t batch) const;
  std::vector<float> final_norm(const float* tokens, int64_t batch) const;
  void head(const float* final_tokens, int64_t batch, float* latent, float* clipwise) const;

  int num_stages() const;
  int64_t latent_dim() const;
  int64_t num_classes() const;
  int threads() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace asdcap::clap
