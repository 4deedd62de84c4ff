#include "modelio/packed_layout.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string_view>
#include <unordered_map>

#include "asdcap/error.hpp"
#include "core/panels.hpp"
#include "half.hpp"
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
    check_float(t.dtype, what);
    const int64_t w = panels::kWidth;
    const std::vector<int64_t> stored{(s.out + w - 1) / w, s.in, w};
    if (t.shape != stored)
      throw FormatError(what + " is stored as " + format_shape(t.shape) + ", expected " + format_shape(stored) +
                        " for " + format_shape(m.logical));
    if (t.nbytes != panels::bytes(s.out, s.in, dtype_size(t.dtype)))
      throw FormatError(what + " has " + std::to_string(t.nbytes) + " bytes, not its panels' size");
    if (t.offset % 64) throw FormatError(what + " is not 64-byte aligned");
    markers[index] = std::move(m);
  }
  return markers;
}

void add_packed_tensor(GgufWriter& w, const std::string& name, DType dtype, const std::vector<int64_t>& shape,
                       const void* data, size_t nbytes, int out_dim, std::deque<std::vector<char>>& store) {
  const PackedShape s = packed_shape(shape, out_dim, "tensor " + name);
  check_float(dtype, "tensor " + name);
  if (nbytes != static_cast<size_t>(s.out * s.in) * dtype_size(dtype))
    throw Error("internal: tensor " + name + " holds " + std::to_string(nbytes) + " bytes");
  std::vector<char>& packed = store.emplace_back(panels::bytes(s.out, s.in, dtype_size(dtype)));
  panels::pack(data, s.out, s.in, out_dim == 1, dtype_size(dtype), packed.data());
  const int64_t width = panels::kWidth;
  w.add_tensor(name, dtype, {(s.out + width - 1) / width, s.in, width}, packed.data(), packed.size());
  std::vector<int64_t> key{out_dim};
  key.insert(key.end(), shape.begin(), shape.end());
  w.set_int_array(kPackedKeyPrefix + name, std::move(key));
}

std::vector<float> unpack_panels(const void* data, DType dtype, const std::vector<int64_t>& logical, int out_dim) {
  const auto* src = static_cast<const uint8_t*>(data);
  // Stored element i as float32.
  const auto element = [&](int64_t i) {
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
      v[static_cast<size_t>(out_dim == 0 ? j * in + p : p * out + j)] = element(panels::stored_index(j, p, in));
  return v;
}

}  // namespace asdcap::modelio
