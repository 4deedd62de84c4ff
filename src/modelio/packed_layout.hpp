// Model files whose Linear weights are stored in nn::PackedLinear's panel layout, used in place from
// the mapping (docs/model-files.md, "Format versions and the packed layout"; internal to modelio).
#pragma once
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "asdcap/model_file.hpp"
#include "modelio/gguf.hpp"

namespace asdcap::modelio {

// Metadata: the format version (absent: 1, every tensor in PyTorch order) and, per packed tensor,
// "asdcap.packed.<tensor name>" = [out_dim, logical shape...].
inline constexpr const char* kFormatVersionKey = "asdcap.format_version";
inline constexpr int64_t kFormatVersion = 2;
inline constexpr const char* kPackedKeyPrefix = "asdcap.packed.";
// An int8 packed tensor's per-output scales: the f32 tensor "<tensor name>.scale", [out].
inline constexpr const char* kScaleSuffix = ".scale";

// Whether an asdcap-msclap file stores tensor `name` packed, and which dimension of its logical
// shape is the output features (0: a Linear's [out, in...]; 1: GPT-2's Conv1D [in, out]).
std::optional<int> msclap_packed_out_dim(const std::string& name);
// The same for an asdcap-laion file (its audio branch's HTSAT and the audio projection).
std::optional<int> laion_packed_out_dim(const std::string& name);
// By the file's architecture (general.architecture); nothing for architectures without packed weights.
std::optional<int> packed_out_dim(const std::string& architecture, const std::string& name);

// The one line on stderr for a file whose weights are packed at every open because it predates
// the packed layout: how to re-lay it.
void print_relayout_hint(const std::string& path, int64_t version);

// A packed tensor's placement: output features, input features (the other dimensions' product).
struct PackedShape {
  int64_t out = 0, in = 0;
};
// The layer of a logical shape whose dimension out_dim is the output; ModelError when it is none.
PackedShape packed_shape(const std::vector<int64_t>& logical, int out_dim, const std::string& what);

// The file's format version (1 when the key is absent); FormatError for an unknown one.
int64_t format_version(const GgufView& g, const std::string& file);

// Validates every packed-tensor key of `g` against its tensor (float or int8 dtype, stored shape
// [ceil(out / 48), in, 48], 64-byte aligned data; int8 with its f32 scales [out]) and returns, per
// tensor in file order, its out_dim or -1, its logical shape and the index of its scales' tensor (int8)
// or -1. FormatError naming the file and tensor otherwise. The scales' values are not read here.
struct PackedMarker {
  int out_dim = -1;
  std::vector<int64_t> logical;
  int64_t scale_tensor = -1;
};
std::vector<PackedMarker> read_packed_markers(const GgufView& g, const std::string& file);

// The dtype a converter writes a float tensor in for the requested --dtype: f32, or the requested
// dtype for the large weight matrices (`eligible`: f16_eligible). With int8 the packed matrices
// (`packed`) stay f32 (add_packed_tensor quantizes them from it) and the other large ones are f16.
inline DType converted_dtype(DType requested, bool eligible, bool packed) {
  if (requested == DType::F32 || !eligible) return DType::F32;
  if (requested != DType::I8) return requested;
  return packed ? DType::F32 : DType::F16;
}

// Whether a tensor of dtype `t` holds float weights: f32, f16, bf16, or int8 with its scales.
inline bool float_weights_dtype(DType t, bool has_scales) {
  return t == DType::F32 || t == DType::F16 || t == DType::BF16 || (t == DType::I8 && has_scales);
}

// The scales of an int8 packed tensor (marker.scale_tensor >= 0) in the file mapped at `data`, each
// checked to be a positive finite number (FormatError naming the file and tensor); null for a float
// tensor.
const float* int8_scales(const GgufView& g, const PackedMarker& marker, const uint8_t* data, const std::string& file);

// A packed tensor's values back in the C order of its logical PyTorch shape, as float32 (exact):
// `data` holds its panels of `dtype` (f32, f16, bf16, or int8 with its per-output `scale`); out_dim as
// in PackedMarker.
std::vector<float> unpack_panels(const void* data, DType dtype, const std::vector<int64_t>& logical, int out_dim,
                                 const float* scale = nullptr);

// Adds a float tensor (`data`: its values in C order of the logical PyTorch `shape`) to `w` in the
// packed layout with its key; the packed bytes are kept in `store` until the file is written. With
// `int8`, stored as int8 with its scales (panels::quantize_int8; ModelError for a value that is not
// finite).
void add_packed_tensor(GgufWriter& w, const std::string& name, DType dtype, const std::vector<int64_t>& shape,
                       const void* data, size_t nbytes, int out_dim, std::deque<std::vector<char>>& store,
                       bool int8 = false);

}  // namespace asdcap::modelio
