#include "modelio/packed_layout.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string_view>
#include <unordered_map>

#include "asdcap/error.hpp"
#include "core/panels.hpp"
#include "half.hpp"
#include "model_writer.hpp"
#include "schema.hpp"

namespace asdcap::modelio {

namespace {

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}
bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

void check_float(DType t, const std::string& what) {
  if (t != DType::F32 && t != DType::F16 && t != DType::BF16)
    throw FormatError(what + " is " + dtype_name(t) + ", not a float tensor");
}

// HTSAT's Linear layers, its patch embedding and tscam convolutions (packed as Linear layers over
// their flattened kernels), by their names inside the HTSAT module.
std::optional<int> htsat_packed_out_dim(std::string_view rest) {
  if (rest == "patch_embed.proj.weight" || rest == "tscam_conv.weight") return 0;
  if (starts_with(rest, "layers."))
    for (std::string_view w : {".attn.qkv.weight", ".attn.proj.weight", ".mlp.fc1.weight", ".mlp.fc2.weight",
                               ".downsample.reduction.weight"})
      if (ends_with(rest, w)) return 0;
  return std::nullopt;
}

// The GGUF shape and bytes of a packed tensor: [ceil(out / 48), in, 48] elements, or for int8
// [ceil(out / 48), ceil(in / 4), 48 * 4] bytes (panels::pack_int8).
std::vector<int64_t> stored_shape(const PackedShape& s, DType t) {
  const int64_t w = panels::kWidth, panels = (s.out + w - 1) / w;
  if (t == DType::I8) return {panels, panels::int8_inputs(s.in) / 4, 4 * w};
  return {panels, s.in, w};
}
size_t stored_bytes(const PackedShape& s, DType t) {
  return t == DType::I8 ? panels::bytes(s.out, panels::int8_inputs(s.in), 1)
                        : panels::bytes(s.out, s.in, dtype_size(t));
}

}  // namespace

std::optional<int> laion_packed_out_dim(const std::string& name) {
  if (name == "audio_projection.0.weight" || name == "audio_projection.2.weight") return 0;
  if (starts_with(name, "audio_branch.")) return htsat_packed_out_dim(std::string_view(name).substr(13));
  return std::nullopt;
}

std::optional<int> packed_out_dim(const std::string& architecture, const std::string& name) {
  if (architecture == kArchitecture) return msclap_packed_out_dim(name);
  if (architecture == kLaionArchitecture) return laion_packed_out_dim(name);
  return std::nullopt;
}

std::optional<int> msclap_packed_out_dim(const std::string& name) {
  // GPT-2 blocks (Conv1D, [in, out]) of the text encoder and the caption decoder.
  for (std::string_view gpt2 : {"text.gpt2.h.", "cap.gpt2.h."})
    if (starts_with(name, gpt2))
      for (std::string_view w :
           {".attn.c_attn.weight", ".attn.c_proj.weight", ".mlp.c_fc.weight", ".mlp.c_proj.weight"})
        if (ends_with(name, w)) return 1;
  // The caption decoder's token table, also its tied lm_head ([vocab, n_embd]: the vocabulary is the
  // output); the text encoder's is only read row by row and stays in PyTorch order.
  if (name == "cap.gpt2.wte.weight") return 0;
  // The audio encoders: HTSAT and the projection.
  for (std::string_view audio : {"audio.", "cap.audio."}) {
    if (!starts_with(name, audio)) continue;
    const std::string_view rest = std::string_view(name).substr(audio.size());
    if (rest == "proj.linear1.weight" || rest == "proj.linear2.weight") return 0;
    if (starts_with(rest, "htsat.")) return htsat_packed_out_dim(rest.substr(6));
  }
  return std::nullopt;
}

void print_relayout_hint(const std::string& path, int64_t version) {
  std::fprintf(stderr,
               "asdcap: %s stores its weights in the layout of format version %lld: they are packed at every open; "
               "`asdcap convert --relayout %s NEW.gguf` writes a file used in place\n",
               path.c_str(), static_cast<long long>(version), path.c_str());
}

PackedShape packed_shape(const std::vector<int64_t>& logical, int out_dim, const std::string& what) {
  if (logical.size() < 2 || (out_dim != 0 && out_dim != 1) || (out_dim == 1 && logical.size() != 2))
    throw ModelError(what + ": a packed tensor is [out, in...] or [in, out], not " + format_shape(logical));
  PackedShape s;
  s.out = logical[static_cast<size_t>(out_dim)];
  s.in = 1;
  for (size_t i = 0; i < logical.size(); ++i) {
    if (logical[i] <= 0 || logical[i] > (int64_t{1} << 31))
      throw ModelError(what + ": packed tensor of shape " + format_shape(logical));
    if (static_cast<int>(i) != out_dim) s.in *= logical[i];
    if (s.in > (int64_t{1} << 31)) throw ModelError(what + ": packed tensor of shape " + format_shape(logical));
  }
  return s;
}

int64_t format_version(const GgufView& g, const std::string& file) {
  auto it = g.kv.find(kFormatVersionKey);
  if (it == g.kv.end()) return 1;
  if (it->second.kind != GgufValue::Kind::Int)
    throw FormatError(file + ": " + kFormatVersionKey + " is not an integer");
  const int64_t v = it->second.i;
  if (v < 1 || v > kFormatVersion)
    throw FormatError(file + ": model file format version " + std::to_string(v) + " (this asdcap reads 1 to " +
                      std::to_string(kFormatVersion) + "; a newer asdcap wrote it)");
  return v;
}

std::vector<PackedMarker> read_packed_markers(const GgufView& g, const std::string& file) {
  std::vector<PackedMarker> markers(g.tensors.size());
  const std::string_view prefix = kPackedKeyPrefix;
  std::unordered_map<std::string_view, size_t> by_name;  // (a duplicate name: its last tensor)
  for (size_t i = 0; i < g.tensors.size(); ++i) by_name[g.tensors[i].name] = i;
  for (auto it = g.kv.lower_bound(std::string(prefix)); it != g.kv.end() && starts_with(it->first, prefix); ++it) {
    const std::string name = it->first.substr(prefix.size());
    const std::string what = file + ": packed tensor " + name;
    const auto found = by_name.find(name);
    if (found == by_name.end()) throw FormatError(file + ": key " + it->first + " names no tensor");
    const size_t index = found->second;
    const GgufValue& v = it->second;
    if (v.kind != GgufValue::Kind::IntArray || v.ints.size() < 3)
      throw FormatError(what + ": its key is not [out_dim, shape...]");
    PackedMarker m;
    m.out_dim = static_cast<int>(std::clamp<int64_t>(v.ints[0], -1, 2));
    m.logical.assign(v.ints.begin() + 1, v.ints.end());
    PackedShape s;
    try {
      s = packed_shape(m.logical, m.out_dim, what);
    } catch (const ModelError& e) {
      throw FormatError(e.what());
    }
    const GgufTensor& t = g.tensors[index];
    if (t.dtype == DType::I8) {
      const auto sc = by_name.find(name + kScaleSuffix);
      if (sc == by_name.end()) throw FormatError(what + " is int8 without its scales (" + name + kScaleSuffix + ")");
      const GgufTensor& s_t = g.tensors[sc->second];
      if (s_t.dtype != DType::F32 || s_t.shape != std::vector<int64_t>{s.out} ||
          s_t.nbytes != static_cast<uint64_t>(s.out) * sizeof(float))
        throw FormatError(what + ": its scales " + s_t.name + " are " + dtype_name(s_t.dtype) + " " +
                          format_shape(s_t.shape) + ", expected f32 [" + std::to_string(s.out) + "]");
      if (s_t.offset % alignof(float)) throw FormatError(what + ": its scales are not 4-byte aligned");
      m.scale_tensor = static_cast<int64_t>(sc->second);
    } else {
      check_float(t.dtype, what);
    }
    const std::vector<int64_t> stored = stored_shape(s, t.dtype);
    if (t.shape != stored)
      throw FormatError(what + " is stored as " + format_shape(t.shape) + ", expected " + format_shape(stored) +
                        " for " + format_shape(m.logical));
    if (t.nbytes != stored_bytes(s, t.dtype))
      throw FormatError(what + " has " + std::to_string(t.nbytes) + " bytes, not its panels' size");
    if (t.offset % 64) throw FormatError(what + " is not 64-byte aligned");
    markers[index] = std::move(m);
  }
  return markers;
}

void add_packed_tensor(GgufWriter& w, const std::string& name, DType dtype, const std::vector<int64_t>& shape,
                       const void* data, size_t nbytes, int out_dim, std::deque<std::vector<char>>& store, bool int8) {
  const PackedShape s = packed_shape(shape, out_dim, "tensor " + name);
  check_float(dtype, "tensor " + name);
  if (nbytes != static_cast<size_t>(s.out * s.in) * dtype_size(dtype))
    throw Error("internal: tensor " + name + " holds " + std::to_string(nbytes) + " bytes");
  if (int8) {
    // The values as float32 (in their own order), quantized per output feature.
    CheckpointTensor values;
    values.name = name;
    values.dtype = dtype;
    values.data.assign(static_cast<const char*>(data), static_cast<const char*>(data) + nbytes);
    convert_float_dtype(values, DType::F32);
    const auto* v = reinterpret_cast<const float*>(values.data.data());
    for (int64_t i = 0; i < s.out * s.in; ++i)
      if (!std::isfinite(v[i]))
        throw ModelError("tensor " + name + " holds a value that is not finite (at flat index " + std::to_string(i) +
                         "): it cannot be stored as int8");
    std::vector<int8_t> q(static_cast<size_t>(s.out * s.in));
    std::vector<char>& scale = store.emplace_back(static_cast<size_t>(s.out) * sizeof(float));
    panels::quantize_int8(v, s.out, s.in, out_dim == 1, q.data(), reinterpret_cast<float*>(scale.data()));
    std::vector<char>& packed = store.emplace_back(stored_bytes(s, DType::I8));
    panels::pack_int8(q.data(), s.out, s.in, out_dim == 1, reinterpret_cast<int8_t*>(packed.data()));
    w.add_tensor(name, DType::I8, stored_shape(s, DType::I8), packed.data(), packed.size());
    w.add_tensor(name + kScaleSuffix, DType::F32, {s.out}, scale.data(), scale.size());
  } else {
    std::vector<char>& packed = store.emplace_back(stored_bytes(s, dtype));
    panels::pack(data, s.out, s.in, out_dim == 1, dtype_size(dtype), packed.data());
    w.add_tensor(name, dtype, stored_shape(s, dtype), packed.data(), packed.size());
  }
  std::vector<int64_t> key{out_dim};
  key.insert(key.end(), shape.begin(), shape.end());
  w.set_int_array(kPackedKeyPrefix + name, std::move(key));
}

const float* int8_scales(const GgufView& g, const PackedMarker& marker, const uint8_t* data, const std::string& file) {
  if (marker.scale_tensor < 0) return nullptr;
  const GgufTensor& s = g.tensors[static_cast<size_t>(marker.scale_tensor)];
  const auto* scale = reinterpret_cast<const float*>(data + s.offset);  // f32, 4-byte aligned (read_packed_markers)
  for (int64_t j = 0; j < s.shape[0]; ++j)
    if (!(scale[j] > 0.f) || !std::isfinite(scale[j]))
      throw FormatError(file + ": " + s.name + "[" + std::to_string(j) + "] = " + std::to_string(scale[j]) +
                        " is no scale (a positive finite number)");
  return scale;
}

std::vector<float> unpack_panels(const void* data, DType dtype, const std::vector<int64_t>& logical, int out_dim,
                                 const float* scale) {
  if (dtype == DType::I8 && !scale) throw Error("internal: int8 panels without their scales");
  const auto* src = static_cast<const uint8_t*>(data);
  // Stored element i (of output j) as float32.
  const auto element = [&](int64_t i, int64_t j) {
    if (dtype == DType::I8) return static_cast<float>(static_cast<int8_t>(src[i])) * scale[j];
    if (dtype == DType::F32) {
      float f;
      std::memcpy(&f, src + 4 * i, 4);
      return f;
    }
    const auto h = static_cast<uint16_t>(src[2 * i] | (src[2 * i + 1] << 8));
    return dtype == DType::F16 ? half_to_float(h) : bf16_to_float(h);
  };
  int64_t numel = 1;
  for (int64_t d : logical) numel *= d;
  const int64_t out = logical[static_cast<size_t>(out_dim)], in = numel / out;
  std::vector<float> v(static_cast<size_t>(numel));
  for (int64_t j = 0; j < out; ++j)
    for (int64_t p = 0; p < in; ++p)
      v[static_cast<size_t>(out_dim == 0 ? j * in + p : p * out + j)] =
          element(dtype == DType::I8 ? panels::stored_index_int8(j, p, in) : panels::stored_index(j, p, in), j);
  return v;
}

}  // namespace asdcap::modelio
