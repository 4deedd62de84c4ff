#include "legacy_checkpoint.hpp"

#include <cstring>
#include <map>
#include <unordered_map>

#include "asdcap/error.hpp"

namespace asdcap::modelio {

bool looks_like_legacy_checkpoint(const uint8_t* data, size_t size) {
  // PROTO 2, LONG1 of 10 bytes: the magic number's pickle as torch.save writes it.
  return size >= 4 && data[0] == 0x80 && data[1] == 0x02 && data[2] == 0x8a && data[3] == 0x0a;
}

std::vector<CheckpointTensor> read_legacy_checkpoint(const uint8_t* data, size_t size, const std::string& name) {
  size_t pos = read_legacy_header(data, size, name);
  UnpickledCheckpoint obj = unpickle_checkpoint(data + pos, size - pos, name);
  pos += obj.end;
  size_t used = 0;
  const std::vector<std::string> keys = unpickle_string_list(data + pos, size - pos, name, &used);
  pos += used;

  std::unordered_map<std::string, const PickledStorage*> declared;
  for (const PickledStorage& s : obj.storages) declared.emplace(s.key, &s);
  // For messages: the first state-dict tensor on each storage.
  std::unordered_map<std::string, std::string> user;
  for (const PickledTensor& t : obj.state_dict) user.emplace(t.storage_key, t.key);
  auto describe = [&](const std::string& key) {
    auto u = user.find(key);
    return name + ": " + (u != user.end() ? "tensor " + u->second + ": storage " : "storage ") + key;
  };

  // Walk the raw storages, checking each record against its declaration and the bytes left.
  std::map<std::string, const uint8_t*> where;
  for (const std::string& key : keys) {
    auto d = declared.find(key);
    if (d == declared.end())
      throw FormatError(name + ": storage " + key +
                        " is listed but not referred to by the pickle (its type is unknown)");
    if (where.count(key)) throw FormatError(name + ": storage " + key + " is listed twice");
    const PickledStorage& s = *d->second;
    if (size - pos < 8)
      throw FormatError(describe(key) + ": the file ends before the storage's element count (truncated?)");
    uint64_t count = 0;
    for (int k = 0; k < 8; ++k) count |= static_cast<uint64_t>(data[pos + k]) << (8 * k);
    pos += 8;
    if (count != static_cast<uint64_t>(s.numel))
      throw FormatError(describe(key) + ": the file holds " + std::to_string(count) +
                        " elements, the pickle declares " + std::to_string(s.numel));
    const uint64_t es = dtype_size(s.dtype);
    const uint64_t left = size - pos;
    if (count > left / es)
      throw FormatError(describe(key) + " declares " + std::to_string(count) + " " + dtype_name(s.dtype) +
                        " elements (" + std::to_string(count) + " x " + std::to_string(es) +
                        " bytes) but the file has only " + std::to_string(left) + " bytes left (truncated or corrupt)");
    where.emplace(key, data + pos);
    pos += static_cast<size_t>(count * es);
  }

  std::vector<CheckpointTensor> out;
  out.reserve(obj.state_dict.size());
  for (const PickledTensor& t : obj.state_dict) {
    const std::string at = name + ": tensor " + t.key;
    auto w = where.find(t.storage_key);
    if (w == where.end()) throw FormatError(at + ": storage " + t.storage_key + " is not in the file's storage list");
    CheckpointTensor c;
    c.name = tensor_name(t.key);
    c.dtype = t.dtype;
    c.shape = t.shape;
    c.data = gather_tensor(t, w->second, at);
    out.push_back(std::move(c));
  }
  return out;
}

}  // namespace asdcap::modelio
