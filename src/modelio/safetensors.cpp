#include "modelio/safetensors.hpp"

#include <nlohmann/json.hpp>

#include <cstring>

#include "asdcap/error.hpp"
#include "mapped_file.hpp"

namespace asdcap {

std::vector<CheckpointTensor> read_safetensors_bytes(const void* data, size_t size, const std::string& name) {
  auto bad = [&](const std::string& what) { return FormatError(name + ": not a valid safetensors file: " + what); };
  const auto* bytes = static_cast<const uint8_t*>(data);
  if (size < 8) throw bad("file too short");
  uint64_t header_len = 0;
  for (int i = 0; i < 8; ++i) header_len |= static_cast<uint64_t>(bytes[i]) << (8 * i);
  if (header_len > size - 8 || header_len > (uint64_t{100} << 20))
    throw bad("header length out of bounds (truncated?)");
  const uint8_t* body = bytes + 8 + header_len;
  const uint64_t body_size = size - 8 - header_len;
  nlohmann::ordered_json header;
  try {
    header = nlohmann::ordered_json::parse(bytes + 8, bytes + 8 + header_len);
  } catch (const nlohmann::json::exception& e) {
    throw bad(std::string("header is not JSON: ") + e.what());
  }
  if (!header.is_object()) throw bad("header is not a JSON object");
  std::vector<CheckpointTensor> out;
  for (const auto& [key, v] : header.items()) {
    if (key == "__metadata__") continue;
    const std::string where = "tensor " + key;
    if (!v.is_object() || !v.contains("dtype") || !v.contains("shape") || !v.contains("data_offsets") ||
        !v["dtype"].is_string() || !v["shape"].is_array() || !v["data_offsets"].is_array() ||
        v["data_offsets"].size() != 2)
      throw bad(where + ": malformed entry");
    CheckpointTensor t;
    t.name = key.rfind("module.", 0) == 0 ? key.substr(7) : key;
    const std::string dt = v["dtype"].get<std::string>();
    if (dt == "F32")
      t.dtype = DType::F32;
    else if (dt == "F16")
      t.dtype = DType::F16;
    else if (dt == "BF16")
      t.dtype = DType::BF16;
    else if (dt == "F64")
      t.dtype = DType::F64;
    else if (dt == "I64")
      t.dtype = DType::I64;
    else if (dt == "I32")
      t.dtype = DType::I32;
    else
      throw bad(where + ": unsupported dtype " + dt);
    uint64_t numel = 1;
    for (const auto& d : v["shape"]) {
      if (!d.is_number_unsigned()) throw bad(where + ": bad shape");
      uint64_t x = d.get<uint64_t>();
      if (x > (uint64_t{1} << 40) || (x && numel > (uint64_t{1} << 48) / x)) throw bad(where + ": shape too large");
      numel *= x;
      t.shape.push_back(static_cast<int64_t>(x));
    }
    const auto& off = v["data_offsets"];
    if (!off[0].is_number_unsigned() || !off[1].is_number_unsigned()) throw bad(where + ": bad data_offsets");
    uint64_t begin = off[0].get<uint64_t>(), end = off[1].get<uint64_t>();
    if (begin > end || end > body_size) throw bad(where + ": data out of bounds (truncated?)");
    if (end - begin != numel * dtype_size(t.dtype)) throw bad(where + ": data size does not match its shape");
    t.data.assign(reinterpret_cast<const char*>(body + begin), reinterpret_cast<const char*>(body + end));
    out.push_back(std::move(t));
  }
  return out;
}

std::vector<CheckpointTensor> read_safetensors(const std::string& path) {
  modelio::MappedFile f(path);
  return read_safetensors_bytes(f.data(), f.size(), path);
}

}  // namespace asdcap
