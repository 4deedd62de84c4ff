// asdcap's model file: GGUF v3, memory-mapped, validated on open.
//
// Tensor names are msclap's with the prefix mapped (shapes in PyTorch order, outermost first):
//   CLAP file     audio_encoder.base.htsat.*   -> audio.htsat.*      (HTSAT, incl. bn0.*, logmel_extractor.melW)
//                 audio_encoder.projection.*   -> audio.proj.*
//                 caption_encoder.base.*       -> text.gpt2.*        (wte, wpe, h.<i>.*, ln_f.*)
//                 caption_encoder.projection.* -> text.proj.*
//                 logit_scale                  -> logit_scale
//   clapcap file  clap.base.htsat.*            -> cap.audio.htsat.*
//                 clap.projection.*            -> cap.audio.proj.*
//                 clap_project.*               -> cap.mapper.*
//                 gpt.transformer.*            -> cap.gpt2.*         (gpt.lm_head.weight is tied to wte: not stored)
// The STFT DFT matrices are not stored (asdcap computes the STFT with an FFT; the converter checks them).
// bn0.num_batches_tracked (a training counter) is not stored; logit_scale is stored with shape [1].
// relative_position_index is i64; with `convert --dtype f16` the large weight matrices are f16
// (f16_eligible in convert.hpp), everything else f32. Metadata keys: docs/model-files.md.
// Since format version 2 the Linear weights are stored packed for the GEMM (TensorInfo::packed_out_dim).
#pragma once
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "asdcap/front_end.hpp"

namespace asdcap {

enum class DType { F32, F16, BF16, F64, I64, I32, I8 };
const char* dtype_name(DType t);
size_t dtype_size(DType t);  // bytes per element

struct HtsatConfig {
  int spec_size = 256;
  int patch = 4;
  int in_chans = 1;
  int embed_dim = 96;
  std::vector<int> depths{2, 2, 6, 2};
  std::vector<int> heads{4, 8, 16, 32};
  int window = 8;
  int mlp_ratio = 4;
  int num_features = 768;  // embed_dim * 2^(stages-1): the latent size
  int num_classes = 527;
  int freq_ratio = 4;
};

struct Gpt2Config {
  int vocab = 50257;
  int n_ctx = 1024;
  int n_embd = 768;
  int n_head = 12;
  int n_layer = 12;
};

struct MapperConfig {
  int prefix_length = 40;  // tokens made by the Linear from the embedding
  int clip_length = 40;    // learned constant tokens (prefix_const)
  int layers = 8;
  int heads = 8;
  int dim = 768;  // = decoder n_embd
  int mlp_hidden = 1536;
};

struct FrontEndConfig {
  int sample_rate = kSampleRate;
  int64_t window_samples = kWindowSamples;
  int n_fft = kFftSize;
  int hop = kHop;
  int mel_bins = kMelBins;
  int mel_sample_rate = kMelSampleRate;  // msclap's quirk: filters built for 32 kHz
  float fmin = static_cast<float>(kMelFmin);
  float fmax = static_cast<float>(kMelFmax);
};

struct ModelConfig {
  bool has_clap = false;       // audio.* + text.* + logit_scale
  bool has_captioner = false;  // cap.*
  FrontEndConfig front_end;
  HtsatConfig audio;    // CLAP's audio encoder
  int proj_dim = 1024;  // joint embedding size (audio.proj / text.proj / cap.audio.proj output)
  Gpt2Config text;      // CLAP's text encoder
  int text_len = 77;
  float logit_scale = 0.f;  // log of the similarity scale
  HtsatConfig cap_audio;    // the captioner's audio encoder
  MapperConfig mapper;
  Gpt2Config decoder;
  int64_t pad_id = 0;      // "!"
  int64_t eos_id = 50256;  // <|endoftext|>
  int64_t stop_id = 220;   // first id of encode(" <|endoftext|>"), msclap's caption stop token
};

// A tensor of the mapped file. `data` points into the mapping (valid while the ModelFile lives).
struct TensorInfo {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  const void* data = nullptr;
  size_t nbytes = 0;
  // >= 0: stored in nn::PackedLinear's panel layout ([ceil(out / 48)][in][48], docs/model-files.md),
  // `data` the panels, and this dimension of `shape` (the logical, PyTorch shape) the output features.
  int packed_out_dim = -1;
  // dtype I8 (packed only, `asdcap convert --dtype int8`): the per-output scales, value (j, p) =
  // stored (j, p) * scale[j]; null otherwise.
  const float* scale = nullptr;
  int64_t numel() const;  // of the logical shape
};

// A tensor shape as text, "[2, 3]", for messages and `asdcap info`.
std::string format_shape(const std::vector<int64_t>& shape);

class ModelFile {
 public:
  // Maps the file and validates it: GGUF v3, architecture "asdcap-msclap", every tensor the
  // config requires present with the right shape and dtype, data inside the file.
  // Throws IoError / FormatError / ModelError naming the file.
  static std::shared_ptr<const ModelFile> open(const std::string& path);
  ~ModelFile();
  ModelFile(const ModelFile&) = delete;
  ModelFile& operator=(const ModelFile&) = delete;

  const std::string& path() const;
  const ModelConfig& config() const;
  // Content identity for caches: sha256 over the GGUF header + metadata + tensor table (not the data,
  // which the source hashes in the metadata already identify).
  const std::string& identity() const;

  bool has(std::string_view name) const;
  const TensorInfo& tensor(std::string_view name) const;  // throws ModelError naming file and tensor
  const std::vector<TensorInfo>& tensors() const;

  // Float32 view of a tensor: the mapping itself for f32 tensors; f16/bf16 are converted once on first
  // use and kept (thread-safe). `shape` (optional) is checked; mismatch -> ModelError. A tensor
  // holding NaN is refused (ModelError naming file and tensor) the first time it is used.
  const float* f32(std::string_view name, std::initializer_list<int64_t> shape = {}) const;
  // A float32 copy that is not kept: for weights a caller repacks (nn::PackedLinear), so that an
  // f16 file does not hold a converted copy beside the packed one.
  std::vector<float> f32_copy(std::string_view name, std::initializer_list<int64_t> shape = {}) const;
  // A float tensor (f32, f16 or bf16) as stored, checked like f32() (shape, no NaN), not converted:
  // for weights packed in their own precision (nn::PackedLinear keeps f16/bf16 weights 16-bit).
  const TensorInfo& float_weights(std::string_view name, std::initializer_list<int64_t> shape = {}) const;
  // The same without the NaN scan: for tables read a row at a time (token embeddings), whose caller
  // refuses a NaN in the rows it reads; the rest of the table is then never read (nor resident).
  const TensorInfo& float_table(std::string_view name, std::initializer_list<int64_t> shape = {}) const;

  // The file's format version (docs/model-files.md): 1 before weights were stored packed, 2 since.
  int64_t format_version() const;
  // Called when a weight matrix of the file is packed in memory because the file stores it in
  // PyTorch order: a format-1 file then prints, once, a one-line hint on stderr to re-lay it.
  void note_packed_in_memory() const;

  // Metadata (GGUF key/value). Throw ModelError when missing or of another type.
  bool has_key(std::string_view key) const;
  int64_t get_int(std::string_view key) const;
  double get_float(std::string_view key) const;
  std::string get_string(std::string_view key) const;
  std::vector<std::string> get_string_array(std::string_view key) const;
  std::vector<int64_t> get_int_array(std::string_view key) const;

 private:
  ModelFile();
  void check_no_nan(const TensorInfo& t) const;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace asdcap
