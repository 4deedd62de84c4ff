// Test helpers for torch.save files in both containers: building a legacy (pre-zip) file from its
// parts, and re-packing a checkpoint of one container into the other (the object pickle and the raw
// storages carried over unchanged), so that each golden model can be read from both formats.
#pragma once
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "modelio/unpickler.hpp"
#include "modelio/zip_tools.hpp"

namespace torchtest {

// The three pickles that open a legacy file: magic number, protocol version 1001, sys_info.
inline std::string legacy_header(bool little_endian = true) {
  std::string magic("\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.", 15);
  std::string version("\x80\x02M\xe9\x03.", 6);
  ziptest::Pickle info;
  info.op('}').op('(').str("protocol_version").integer(1001).str("little_endian").op(little_endian ? '\x88' : '\x89');
  info.str("type_sizes").op('}').op('(').str("short").integer(2).str("int").integer(4).str("long").integer(4).op('u');
  info.op('u').op('.');
  return magic + version + info.b;
}

inline std::string key_list_pickle(const std::vector<std::string>& keys) {
  ziptest::Pickle p;
  p.op(']').op('(');
  for (const auto& k : keys) p.str(k);
  return p.op('e').op('.').b;
}

inline std::string le64(uint64_t v) {
  std::string s;
  for (int i = 0; i < 8; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 255));
  return s;
}

// A legacy file: header, object pickle, key list, then per key its element count and bytes.
inline std::string legacy_file(const std::string& object_pickle,
                               const std::vector<std::pair<std::string, std::pair<uint64_t, std::string>>>& storages) {
  std::vector<std::string> keys;
  for (const auto& s : storages) keys.push_back(s.first);
  std::string out = legacy_header() + object_pickle + key_list_pickle(keys);
  for (const auto& [key, rec] : storages) out += le64(rec.first) + rec.second;
  return out;
}

// _rebuild_tensor_v2 with a legacy persistent id ('storage', <type>, key, 'cpu', numel, None).
inline ziptest::Pickle& legacy_tensor(ziptest::Pickle& p, const std::string& storage_type, const std::string& key,
                                      int32_t numel, const std::vector<int32_t>& size,
                                      const std::vector<int32_t>& stride) {
  p.global("torch._utils", "_rebuild_tensor_v2");
  p.op('(');
  p.op('(').str("storage").global("torch", storage_type).str(key).str("cpu").integer(numel).op('N').op('t').op('Q');
  p.integer(0).ints(size).ints(stride).op('\x89');
  p.global("collections", "OrderedDict").op(')').op('R');
  return p.op('t').op('R');
}

// A legacy file cut into its parts (asdcap's own parsers locate the boundaries).
struct LegacyParts {
  std::string header, object, key_list;
  std::vector<std::pair<std::string, std::string>> storages;  // key -> raw bytes (after the count)
};

inline LegacyParts split_legacy(const std::string& file) {
  using namespace asdcap::modelio;
  const auto* d = reinterpret_cast<const uint8_t*>(file.data());
  LegacyParts parts;
  size_t pos = read_legacy_header(d, file.size(), "split");
  parts.header = file.substr(0, pos);
  UnpickledCheckpoint obj = unpickle_checkpoint(d + pos, file.size() - pos, "split");
  parts.object = file.substr(pos, obj.end);
  pos += obj.end;
  size_t used = 0;
  std::vector<std::string> keys = unpickle_string_list(d + pos, file.size() - pos, "split", &used);
  parts.key_list = file.substr(pos, used);
  pos += used;
  std::map<std::string, size_t> es;
  for (const auto& s : obj.storages) es[s.key] = asdcap::dtype_size(s.dtype);
  for (const auto& k : keys) {
    uint64_t n = 0;
    for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(static_cast<uint8_t>(file[pos + i])) << (8 * i);
    pos += 8;
    parts.storages.emplace_back(k, file.substr(pos, n * es.at(k)));
    pos += n * es.at(k);
  }
  return parts;
}

// The same checkpoint in the zip container (STORED members, as torch.save writes them).
inline std::string legacy_to_zip(const std::string& legacy, const std::string& root) {
  LegacyParts parts = split_legacy(legacy);
  std::vector<std::pair<std::string, std::string>> members{{root + "/data.pkl", parts.object}};
  for (const auto& [k, bytes] : parts.storages) members.emplace_back(root + "/data/" + k, bytes);
  members.emplace_back(root + "/version", "3");
  return ziptest::zip_stored(members);
}

// The same checkpoint in the legacy container.
inline std::string zip_to_legacy(const std::string& zip) {
  using namespace asdcap::modelio;
  std::string pkl;
  std::map<std::string, std::string> data;
  for (auto& [name, bytes] : ziptest::unzip_all(zip)) {
    if (name.size() > 9 && name.compare(name.size() - 9, 9, "/data.pkl") == 0) pkl = bytes;
    auto p = name.find("/data/");
    if (p != std::string::npos) data[name.substr(p + 6)] = bytes;
  }
  UnpickledCheckpoint obj = unpickle_checkpoint(reinterpret_cast<const uint8_t*>(pkl.data()), pkl.size(), "zip");
  std::vector<std::pair<std::string, std::pair<uint64_t, std::string>>> storages;
  for (const auto& s : obj.storages) storages.push_back({s.key, {static_cast<uint64_t>(s.numel), data.at(s.key)}});
  return legacy_file(pkl, storages);
}

}  // namespace torchtest
