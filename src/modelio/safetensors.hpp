// Reading Hugging Face safetensors files (e.g. gpt2 model.safetensors): an 8-byte little-endian
// header length, a JSON header {name: {dtype, shape, data_offsets}}, then the raw tensor bytes.
#pragma once
#include <string>
#include <vector>

#include "asdcap/checkpoint.hpp"

namespace asdcap {

// Every tensor of the file (F32, F16, BF16, F64, I64, I32), in header order (`__metadata__` skipped).
// Throws IoError / FormatError naming the file.
std::vector<CheckpointTensor> read_safetensors(const std::string& path);
std::vector<CheckpointTensor> read_safetensors_bytes(const void* data, size_t size, const std::string& name);

}  // namespace asdcap
