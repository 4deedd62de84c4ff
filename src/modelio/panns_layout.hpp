// PANNs CNN14 model files of format version 2 (docs/panns.md, "The model file"; internal to modelio
// and panns): each convolution folded with its BatchNorm and stored in the packed panel layout by
// groups of output channels and chunks of taps, the STFT kernels, the mel bank and the fc weights
// packed, so that the network computes straight from the mapping. The fold lives here because both
// the file writers (convert --panns, convert --relayout) and the reader of a version-1 file (folded
// in memory at open) use it.
#pragma once
#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "asdcap/checkpoint.hpp"
#include "asdcap/panns.hpp"
#include "modelio/gguf.hpp"

namespace asdcap::modelio {

// BatchNorm (eval) as y = (x - mean) * scale + shift, scale = weight / sqrt(var + eps) (in double).
struct BatchNorm {
  std::vector<float> mean, scale, shift;
};
// ModelError when a running variance is negative or NaN.
BatchNorm make_batchnorm(const float* weight, const float* bias, const float* mean, const float* var, int64_t n,
                         float eps);

// How a 3x3 convolution with `cin` input channels is stored and computed: output channels in groups
// of up to kGroup; the tap-major im2col row ((dt * 3 + df) * cin + ci) in chunks of whole taps of at
// most kChunk values (a chunk's weight panel then stays in L2 while the rows pass over it), summed
// in chunk order.
struct PannsConvSplit {
  static constexpr int64_t kGroup = 288, kChunk = 2048;
  int64_t chunks = 1, taps_per_chunk = 9;
  int64_t first_tap(int64_t chunk) const { return chunk * taps_per_chunk; }
  int64_t taps(int64_t chunk) const { return std::min<int64_t>(taps_per_chunk, 9 - first_tap(chunk)); }
  static int64_t groups(int64_t cout) { return (cout + kGroup - 1) / kGroup; }
  static int64_t group_size(int64_t cout, int64_t group) { return std::min(kGroup, cout - group * kGroup); }
};
PannsConvSplit panns_conv_split(int64_t cin);

// The tensors of a version-2 file, in file order: name, logical (PyTorch-order) shape, and for a
// packed tensor the dimension that is its output (-1: stored in PyTorch order). `weights`: stored in
// the file's weight dtype (f32, f16 or bf16); every other tensor is f32.
struct PannsTensorSpec {
  std::string name;
  std::vector<int64_t> shape;
  int out_dim = -1;
  bool weights = false;
};
std::vector<PannsTensorSpec> panns_v2_tensors(const PannsConfig& c);
// Names: "conv_block<b>.conv<k>.folded.<group>.<chunk>" ([group size, taps * cin]) and
// "conv_block<b>.conv<k>.folded.bias" ([cout]); block and conv from 0 here, from 1 in the name.
std::string panns_folded_name(int block, int conv, int64_t group, int64_t chunk);
std::string panns_folded_bias_name(int block, int conv);

// A tensor of a version-2 file in memory: its stored bytes (packed panels when out_dim >= 0),
// 64-byte aligned.
struct PannsStoredTensor {
  PannsTensorSpec spec;
  DType dtype = DType::F32;
  std::shared_ptr<unsigned char> bytes;
  size_t nbytes = 0;
};

// A tensor of a version-1 set where it lies (a checkpoint tensor's data, a mapped file), C order.
struct PannsSourceTensor {
  DType dtype = DType::F32;  // f32, f64, f16 or bf16
  const void* data = nullptr;
  size_t nbytes = 0;
};
using PannsSource = std::map<std::string, PannsSourceTensor>;

// The version-2 tensors from a version-1 set (the state dict's tensors named as in
// panns_required_tensors, any float dtype; shapes checked by the caller): every convolution folded
// with its BatchNorm in float32 and stored, like the fc weights, as `weights_dtype` (f32, f16 or
// bf16: a 16-bit fold rounds the folded float32 value once). With float32 weights the fold is the
// one version 1 did at every open, bit for bit. Convolutions on up to `threads` threads.
std::vector<PannsStoredTensor> fold_panns_tensors(const PannsConfig& c, const PannsSource& v1, DType weights_dtype,
                                                  int threads);

// The version-2 tensors of a version-1 file mapped at `data` (fold_panns_tensors), its tensors
// checked first (present, shapes, dtypes); ModelError naming the file and tensor.
std::vector<PannsStoredTensor> fold_panns_file(const GgufView& g, const uint8_t* data, const PannsConfig& c,
                                               const std::string& path, int threads);

// Adds the tensors to `w`, packed ones with their asdcap.packed.* key (the caller sets the format version).
void add_panns_v2_tensors(GgufWriter& w, const std::vector<PannsStoredTensor>& tensors);

// The dtype of the weights of a version-1 set (f32 unless a convolution or fc weight is f16 / bf16).
DType panns_weights_dtype(const PannsSource& v1);

// Writes an asdcap-panns file atomically from a state dict's tensors (named as in
// panns_required_tensors, shapes checked by the caller): format version 2 (fold_panns_tensors), or
// with packed_layout false version 1, the tensors in PyTorch order with the convolution and fc
// weights stored as `weights_dtype` (what asdcap wrote before version 2; kept for tests of old files).
void write_panns_model(const std::string& path, const PannsConfig& c, const std::vector<CheckpointTensor>& tensors,
                       DType weights_dtype, const std::string& source, const std::string& source_sha256,
                       bool packed_layout, int threads);

}  // namespace asdcap::modelio
