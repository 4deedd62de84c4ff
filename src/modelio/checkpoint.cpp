#include "asdcap/checkpoint.hpp"

#include <cstring>
#include <map>

#include "asdcap/error.hpp"
#include "legacy_checkpoint.hpp"
#include "mapped_file.hpp"
#include "unpickler.hpp"
#include "zip_reader.hpp"

namespace asdcap {
namespace {

using modelio::PickledTensor;
using modelio::ZipArchive;
using modelio::ZipMember;

bool checked_mul(int64_t a, int64_t b, int64_t& out) { return !__builtin_mul_overflow(a, b, &out); }
bool checked_add(int64_t a, int64_t b, int64_t& out) { return !__builtin_add_overflow(a, b, &out); }

}  // namespace

namespace modelio {

std::string tensor_name(const std::string& key) { return key.rfind("module.", 0) == 0 ? key.substr(7) : key; }

std::vector<char> gather_tensor(const PickledTensor& t, const uint8_t* storage, const std::string& where) {
  const int64_t es = static_cast<int64_t>(dtype_size(t.dtype));
  int64_t numel = 1;
  for (int64_t d : t.shape) {
    if (d < 0 || !checked_mul(numel, d, numel)) throw FormatError(where + ": bad tensor size");
  }
  int64_t bytes = 0;
  if (!checked_mul(numel, es, bytes) || bytes > (int64_t{1} << 40)) throw FormatError(where + ": tensor too large");
  if (numel == 0) return {};
  if (t.offset < 0) throw FormatError(where + ": negative storage offset");
  int64_t last = t.offset;  // highest element index addressed
  for (size_t k = 0; k < t.shape.size(); ++k) {
    int64_t span = 0;
    if (t.stride[k] < 0 || !checked_mul(t.shape[k] - 1, t.stride[k], span) || !checked_add(last, span, last))
      throw FormatError(where + ": bad tensor stride");
  }
  if (last >= t.storage_numel)
    throw FormatError(where + ": tensor addresses element " + std::to_string(last) + " of a storage of " +
                      std::to_string(t.storage_numel));
  // Overlapping strides (0, or smaller than the extent of the inner dimensions) could make a tiny
  // storage declare a huge tensor; state dicts never hold such views.
  if (numel > t.storage_numel)
    throw FormatError(where + ": tensor of " + std::to_string(numel) + " elements over a storage of " +
                      std::to_string(t.storage_numel));
  std::vector<char> out(static_cast<size_t>(bytes));
  const size_t nd = t.shape.size();
  bool contiguous = true;
  for (int64_t k = static_cast<int64_t>(nd) - 1, expect = 1; k >= 0; --k) {
    if (t.shape[k] != 1 && t.stride[k] != expect) contiguous = false;
    expect *= t.shape[k];
  }
  const uint8_t* src = storage + t.offset * es;
  if (contiguous) {
    std::memcpy(out.data(), src, out.size());
    return out;
  }
  std::vector<int64_t> idx(nd, 0);
  for (int64_t n = 0; n < numel; ++n) {
    int64_t e = 0;
    for (size_t k = 0; k < nd; ++k) e += idx[k] * t.stride[k];
    std::memcpy(out.data() + n * es, src + e * es, static_cast<size_t>(es));
    for (size_t k = nd; k-- > 0;) {
      if (++idx[k] < t.shape[k]) break;
      idx[k] = 0;
    }
  }
  return out;
}

}  // namespace modelio

std::vector<CheckpointTensor> read_torch_checkpoint_bytes(const void* data, size_t size, const std::string& name) {
  const auto* bytes = static_cast<const uint8_t*>(data);
  if (modelio::looks_like_legacy_checkpoint(bytes, size)) return modelio::read_legacy_checkpoint(bytes, size, name);
  ZipArchive zip(bytes, size, name);
  // torch.save: <archive>/data.pkl, <archive>/data/<storage key>, <archive>/version ...
  const modelio::ZipEntry* pkl = nullptr;
  std::string prefix;
  for (const auto& e : zip.entries()) {
    auto slash = e.name.find('/');
    if (slash != std::string::npos && e.name.compare(slash, std::string::npos, "/data.pkl") == 0) {
      pkl = &e;
      prefix = e.name.substr(0, slash + 1);
      break;
    }
  }
  if (!pkl) throw FormatError(name + ": not a PyTorch checkpoint (no <archive>/data.pkl in the zip)");
  ZipMember pickle = zip.read(*pkl);
  std::vector<PickledTensor> entries = modelio::unpickle_state_dict(pickle.data, pickle.size, name);

  std::map<std::string, ZipMember> storages;
  std::vector<CheckpointTensor> out;
  out.reserve(entries.size());
  for (const PickledTensor& t : entries) {
    const std::string where = name + ": tensor " + t.key;
    auto it = storages.find(t.storage_key);
    if (it == storages.end()) {
      const std::string member = prefix + "data/" + t.storage_key;
      const modelio::ZipEntry* e = zip.find(member);
      if (!e) throw FormatError(where + ": storage " + member + " missing from the zip");
      ZipMember m = zip.read(*e);
      int64_t need = 0;
      if (!checked_mul(t.storage_numel, static_cast<int64_t>(dtype_size(t.dtype)), need) ||
          static_cast<uint64_t>(need) > m.size)
        throw FormatError(where + ": storage " + member + " holds " + std::to_string(m.size) +
                          " bytes, fewer than its " + std::to_string(t.storage_numel) + " " + dtype_name(t.dtype) +
                          " elements");
      it = storages.emplace(t.storage_key, std::move(m)).first;
    } else if (t.storage_numel > 0 && static_cast<uint64_t>(t.storage_numel) * dtype_size(t.dtype) > it->second.size) {
      throw FormatError(where + ": storage " + t.storage_key + " is used with a larger size than it has");
    }
    CheckpointTensor c;
    c.name = modelio::tensor_name(t.key);
    c.dtype = t.dtype;
    c.shape = t.shape;
    c.data = modelio::gather_tensor(t, it->second.data, where);
    out.push_back(std::move(c));
  }
  return out;
}

std::vector<CheckpointTensor> read_torch_checkpoint(const std::string& path) {
  modelio::MappedFile f(path);
  return read_torch_checkpoint_bytes(f.data(), f.size(), path);
}

}  // namespace asdcap
