// What an asdcap-msclap model file holds: the metadata keys, reading/writing ModelConfig, and the
// list of tensors a configuration requires (internal to modelio; required_tensors is public in convert.hpp).
#pragma once
#include <string>
#include <vector>

#include "asdcap/convert.hpp"
#include "asdcap/laion.hpp"
#include "asdcap/model_file.hpp"
#include "asdcap/panns.hpp"
#include "modelio/gguf.hpp"

namespace asdcap::modelio {

inline constexpr const char* kArchitecture = "asdcap-msclap";
inline constexpr const char* kPrefix = "asdcap-msclap.";  // every architecture key starts with this

// Writes every ModelConfig field (tokenizer ids included) as metadata.
void write_config(GgufWriter& w, const ModelConfig& c);
// Reads it back; throws ModelError("<file>: ...") naming a missing or mistyped key.
ModelConfig read_config(const GgufView& g, const std::string& file);

// Consistency of the sizes (positive, divisible where the architecture needs it). Throws ModelError.
void check_config(const ModelConfig& c, const std::string& file);

// PANNs CNN14 files: architecture "asdcap-panns", keys under kPannsPrefix, the checkpoint's tensors
// under their state-dict names (num_batches_tracked left out).
inline constexpr const char* kPannsArchitecture = "asdcap-panns";
inline constexpr const char* kPannsPrefix = "asdcap-panns.";
void write_panns_config(GgufWriter& w, const PannsConfig& c);
PannsConfig read_panns_config(const GgufView& g, const std::string& file);  // checks it too
void check_panns_config(const PannsConfig& c, const std::string& file);     // throws ModelError
std::vector<TensorSpec> panns_required_tensors(const PannsConfig& c);
// Stored as f16 by `convert --panns --dtype f16`: the convolution and fc weights.
bool panns_f16_eligible(const std::string& name);

// LAION-CLAP files: architecture "asdcap-laion", keys under kLaionPrefix, the state dict's tensors
// under their names without "module." (audio_branch.*, audio_projection.*, the text branch...).
inline constexpr const char* kLaionArchitecture = "asdcap-laion";
inline constexpr const char* kLaionPrefix = "asdcap-laion.";
void write_laion_config(GgufWriter& w, const LaionConfig& c);
LaionConfig read_laion_config(const GgufView& g, const std::string& file);  // checks it too
void check_laion_config(const LaionConfig& c, const std::string& file);     // throws ModelError
// The tensors the audio embedding needs (audio_branch.* HTSAT with melW and bn0, audio_projection.*).
std::vector<TensorSpec> laion_audio_tensors(const LaionConfig& c);

// The tensors of an HTSAT module (melW, bn0, patch embedding, Swin stages with their index and mask
// buffers, norm, tscam) under the prefix `p`, as msclap and LAION-CLAP store them.
void htsat_module_tensors(std::vector<TensorSpec>& out, const std::string& p, const HtsatConfig& h, int n_fft,
                          int mel_bins);

// torchlibrosa's fixed STFT kernel (real: cos(2πkn/N)·w[n], imag: −sin(2πkn/N)·w[n], periodic Hann w),
// which asdcap replaces by an FFT: ModelError naming the file when `t` is not it (to 1e-6).
void check_stft(const CheckpointTensor& t, bool imag, int n_fft, const std::string& file);

// Tensors of HTSAT / GPT-2 that msclap files carry but inference does not need: kept when present.
bool optional_tensor(const std::string& name);

}  // namespace asdcap::modelio
