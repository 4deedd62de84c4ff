#include "asdcap/model_file.hpp"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <unordered_map>

#include "asdcap/convert.hpp"
#include "asdcap/error.hpp"
#include "core/files.hpp"
#include "half.hpp"
#include "mapped_file.hpp"
#include "modelio/gguf.hpp"
#include "modelio/packed_layout.hpp"
#include "schema.hpp"

namespace asdcap {

int64_t TensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

struct ModelFile::Impl {
  std::unique_ptr<modelio::MappedFile> file;
  GgufView gguf;
  ModelConfig config;
  std::string identity;
  std::vector<TensorInfo> tensors;
  std::unordered_map<std::string, size_t> index;
  mutable std::mutex converted_mu;
  mutable std::unordered_map<std::string, std::unique_ptr<std::vector<float>>> converted;
  // Per tensor: its values were checked for NaN (on first use through f32/f32_copy).
  std::unique_ptr<std::atomic<bool>[]> nan_checked;
  int64_t format_version = 1;
  mutable std::once_flag hinted;

  const GgufValue& value(std::string_view key, GgufValue::Kind kind) const {
    auto it = gguf.kv.find(std::string(key));
    if (it == gguf.kv.end()) throw ModelError(file->path() + ": metadata key " + std::string(key) + " missing");
    if (it->second.kind != kind)
      throw ModelError(file->path() + ": metadata key " + std::string(key) + " has another type");
    return it->second;
  }
};

std::string format_shape(const std::vector<int64_t>& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

ModelFile::ModelFile() : impl_(std::make_unique<Impl>()) {}
ModelFile::~ModelFile() = default;

std::shared_ptr<const ModelFile> ModelFile::open(const std::string& path) {
  std::shared_ptr<ModelFile> m(new ModelFile());
  Impl& d = *m->impl_;
  d.file = std::make_unique<modelio::MappedFile>(path);
  d.gguf = GgufView::parse(d.file->data(), d.file->size(), path);
  auto arch = d.gguf.kv.find("general.architecture");
  if (arch == d.gguf.kv.end() || arch->second.kind != GgufValue::Kind::String)
    throw ModelError(path + ": GGUF file without general.architecture: not an asdcap model");
  if (arch->second.s != modelio::kArchitecture)
    throw ModelError(path + ": GGUF architecture '" + arch->second.s + "' is not " + modelio::kArchitecture +
                     " (convert msclap checkpoints with `asdcap convert`)");
  d.config = modelio::read_config(d.gguf, path);
  {
    const GgufValue& model = d.value("tokenizer.ggml.model", GgufValue::Kind::String);
    if (model.s != "gpt2") throw ModelError(path + ": tokenizer.ggml.model is '" + model.s + "', expected gpt2");
    const auto& tokens = d.value("tokenizer.ggml.tokens", GgufValue::Kind::StringArray).strings;
    d.value("tokenizer.ggml.merges", GgufValue::Kind::StringArray);
    const int vocab = d.config.has_clap ? d.config.text.vocab : d.config.decoder.vocab;
    if (static_cast<int64_t>(tokens.size()) != vocab)
      throw ModelError(path + ": tokenizer has " + std::to_string(tokens.size()) + " tokens, the model " +
                       std::to_string(vocab));
  }
  d.identity = sha256_hex(d.file->data(), static_cast<size_t>(d.gguf.data_offset));
  d.format_version = modelio::format_version(d.gguf, path);
  std::vector<modelio::PackedMarker> packed = modelio::read_packed_markers(d.gguf, path);
  for (size_t i = 0; i < d.gguf.tensors.size(); ++i) {
    const GgufTensor& t = d.gguf.tensors[i];
    TensorInfo info;
    info.name = t.name;
    info.dtype = t.dtype;
    info.shape = t.shape;
    if (packed[i].out_dim >= 0) {
      info.shape = std::move(packed[i].logical);
      info.packed_out_dim = packed[i].out_dim;
    }
    info.scale = modelio::int8_scales(d.gguf, packed[i], d.file->data(), path);
    info.data = d.file->data() + t.offset;
    info.nbytes = static_cast<size_t>(t.nbytes);
    if (!d.index.emplace(t.name, d.tensors.size()).second) throw FormatError(path + ": duplicate tensor " + t.name);
    d.tensors.push_back(std::move(info));
  }
  d.nan_checked = std::make_unique<std::atomic<bool>[]>(d.tensors.size());
  std::vector<std::string> missing;
  for (const TensorSpec& s : required_tensors(d.config)) {
    auto it = d.index.find(s.name);
    if (it == d.index.end()) {
      missing.push_back(s.name);
      continue;
    }
    const TensorInfo& t = d.tensors[it->second];
    if (t.shape != s.shape)
      throw ModelError(path + ": tensor " + s.name + " has shape " + format_shape(t.shape) + ", expected " +
                       format_shape(s.shape));
    bool ok =
        t.dtype == s.dtype ||
        (s.dtype == DType::F32 && (t.dtype == DType::F16 || t.dtype == DType::BF16) && f16_eligible(s.name, s.shape)) ||
        (s.dtype == DType::F32 && t.dtype == DType::I8 && t.scale);
    if (!ok)
      throw ModelError(path + ": tensor " + s.name + " is " + dtype_name(t.dtype) + ", expected " +
                       dtype_name(s.dtype));
  }
  if (!missing.empty()) {
    std::string list;
    for (size_t i = 0; i < missing.size() && i < 10; ++i) list += (i ? ", " : "") + missing[i];
    if (missing.size() > 10) list += ", ... (" + std::to_string(missing.size()) + " in all)";
    throw ModelError(path + ": model file lacks tensors: " + list);
  }
  return m;
}

const std::string& ModelFile::path() const { return impl_->file->path(); }
const ModelConfig& ModelFile::config() const { return impl_->config; }
const std::string& ModelFile::identity() const { return impl_->identity; }
bool ModelFile::has(std::string_view name) const { return impl_->index.count(std::string(name)) > 0; }
const std::vector<TensorInfo>& ModelFile::tensors() const { return impl_->tensors; }

const TensorInfo& ModelFile::tensor(std::string_view name) const {
  auto it = impl_->index.find(std::string(name));
  if (it == impl_->index.end()) throw ModelError(path() + ": no tensor " + std::string(name));
  return impl_->tensors[it->second];
}

namespace {

// Checks the expected shape and that the tensor is f32/f16/bf16.
const TensorInfo& float_tensor(const ModelFile& file, std::string_view name, std::initializer_list<int64_t> shape) {
  const TensorInfo& t = file.tensor(name);
  if (shape.size() && !std::equal(shape.begin(), shape.end(), t.shape.begin(), t.shape.end()))
    throw ModelError(file.path() + ": tensor " + t.name + " has shape " + format_shape(t.shape) + ", expected " +
                     format_shape(std::vector<int64_t>(shape)));
  if (!modelio::float_weights_dtype(t.dtype, t.scale))
    throw ModelError(file.path() + ": tensor " + t.name + " is " + dtype_name(t.dtype) + ", not a float tensor");
  return t;
}

// Position of the first NaN among a float tensor's values, or -1. Half-precision values are NaN
// when their exponent bits are all set and the mantissa is not zero.
int64_t first_nan(const TensorInfo& t) {
  const auto n = static_cast<int64_t>(t.nbytes / dtype_size(t.dtype));  // packed panels: their padding too
  // NaN: with the sign cleared, the bit pattern is above infinity's. Blocks are scanned for their
  // largest pattern without an early exit (a vectorised max); the position is looked up only in a
  // block that holds a NaN. The file is little-endian, as the host.
  constexpr int64_t kBlock = 4096;
  const auto* src = static_cast<const uint8_t*>(t.data);
  auto scan = [&](auto word, auto mask, auto infinity) -> int64_t {
    using W = decltype(word);
    // Each block is copied to an aligned buffer first (the tensor need not be aligned to its element
    // size), where the max runs at vector speed.
    alignas(64) W buf[kBlock];
    for (int64_t b = 0; b < n; b += kBlock) {
      const int64_t e = std::min(n, b + kBlock);
      std::memcpy(buf, src + b * static_cast<int64_t>(sizeof(W)), static_cast<size_t>(e - b) * sizeof(W));
      W top = 0;
      for (int64_t i = 0; i < e - b; ++i) top = std::max(top, static_cast<W>(buf[i] & mask));
      if (top > infinity)
        for (int64_t i = 0; i < e - b; ++i)
          if (static_cast<W>(buf[i] & mask) > infinity) return b + i;
    }
    return -1;
  };
  if (t.dtype == DType::I8) return -1;  // integers (their scales are checked at open)
  if (t.dtype == DType::F32) return scan(uint32_t{0}, uint32_t{0x7fffffff}, uint32_t{0x7f800000});
  return scan(uint16_t{0}, uint16_t{0x7fff}, static_cast<uint16_t>(t.dtype == DType::F16 ? 0x7c00 : 0x7f80));
}

std::vector<float> widen(const TensorInfo& t) {
  if (t.packed_out_dim >= 0) return modelio::unpack_panels(t.data, t.dtype, t.shape, t.packed_out_dim, t.scale);
  std::vector<float> v(static_cast<size_t>(t.numel()));
  if (t.dtype == DType::F32) {
    std::memcpy(v.data(), t.data, v.size() * sizeof(float));
    return v;
  }
  const auto* src = static_cast<const uint8_t*>(t.data);
  for (size_t i = 0; i < v.size(); ++i) {
    const auto h = static_cast<uint16_t>(src[2 * i] | (src[2 * i + 1] << 8));
    v[i] = t.dtype == DType::F16 ? modelio::half_to_float(h) : modelio::bf16_to_float(h);
  }
  return v;
}

}  // namespace

// A NaN weight is refused when its tensor is first used (reading the values then costs what using
// them costs anyway, and opening a model file stays as fast as mapping it).
void ModelFile::check_no_nan(const TensorInfo& t) const {
  std::atomic<bool>& checked = impl_->nan_checked[static_cast<size_t>(&t - impl_->tensors.data())];
  if (checked.load(std::memory_order_acquire)) return;
  impl_->file->prefault(t.data, t.nbytes);  // the scan below reads every page
  if (const int64_t at = first_nan(t); at >= 0)
    throw ModelError(path() + ": tensor " + t.name + " holds NaN (at flat index " + std::to_string(at) +
                     "): the model file is damaged");
  checked.store(true, std::memory_order_release);
}

const float* ModelFile::f32(std::string_view name, std::initializer_list<int64_t> shape) const {
  const TensorInfo& t = float_tensor(*this, name, shape);
  check_no_nan(t);
  if (t.dtype == DType::F32 && t.packed_out_dim < 0) return static_cast<const float*>(t.data);
  std::lock_guard<std::mutex> lock(impl_->converted_mu);
  auto& slot = impl_->converted[t.name];
  if (!slot) slot = std::make_unique<std::vector<float>>(widen(t));
  return slot->data();
}

std::vector<float> ModelFile::f32_copy(std::string_view name, std::initializer_list<int64_t> shape) const {
  const TensorInfo& t = float_tensor(*this, name, shape);
  check_no_nan(t);
  return widen(t);
}

const TensorInfo& ModelFile::float_table(std::string_view name, std::initializer_list<int64_t> shape) const {
  return float_tensor(*this, name, shape);
}

const TensorInfo& ModelFile::float_weights(std::string_view name, std::initializer_list<int64_t> shape) const {
  const TensorInfo& t = float_tensor(*this, name, shape);
  check_no_nan(t);
  return t;
}

int64_t ModelFile::format_version() const { return impl_->format_version; }

void ModelFile::note_packed_in_memory() const {
  if (impl_->format_version >= modelio::kFormatVersion) return;
  std::call_once(impl_->hinted, [&] { modelio::print_relayout_hint(path(), impl_->format_version); });
}

bool ModelFile::has_key(std::string_view key) const { return impl_->gguf.kv.count(std::string(key)) > 0; }
int64_t ModelFile::get_int(std::string_view key) const { return impl_->value(key, GgufValue::Kind::Int).i; }
double ModelFile::get_float(std::string_view key) const { return impl_->value(key, GgufValue::Kind::Float).f; }
std::string ModelFile::get_string(std::string_view key) const { return impl_->value(key, GgufValue::Kind::String).s; }
std::vector<std::string> ModelFile::get_string_array(std::string_view key) const {
  return impl_->value(key, GgufValue::Kind::StringArray).strings;
}
std::vector<int64_t> ModelFile::get_int_array(std::string_view key) const {
  return impl_->value(key, GgufValue::Kind::IntArray).ints;
}

}  // namespace asdcap
