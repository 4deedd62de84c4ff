// Reading PyTorch torch.save checkpoints without executing anything: a restricted unpickler that
// knows only what state-dict files contain, over either container -- zip (STORED or DEFLATE
// members, every offset validated against the file) or the legacy pre-zip format (pickles followed
// by raw storages, every declared size checked against the bytes left before allocating).
// Training state beside the weights (e.g. numpy arrays in a sampler's state) is skipped without
// resolving its globals.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "asdcap/model_file.hpp"

namespace asdcap {

struct CheckpointTensor {
  std::string name;  // state-dict key (a leading `module.` stripped)
  DType dtype = DType::F32;
  std::vector<int64_t> shape;  // PyTorch order, outermost first; {} for a scalar
  std::vector<char> data;      // contiguous C order, little-endian
};

// The state dict of a torch.save file: the dict under 'model' if the top-level object is a dict
// holding one, else the top-level dict. Tensors in pickle order. Throws IoError (cannot read),
// FormatError (not a checkpoint, corrupt, a forbidden pickle global, out-of-bounds storage...),
// each naming the file.
std::vector<CheckpointTensor> read_torch_checkpoint(const std::string& path);

// Same, on bytes already in memory (`name` is used in error messages). For fuzzing and tests.
std::vector<CheckpointTensor> read_torch_checkpoint_bytes(const void* data, size_t size, const std::string& name);

}  // namespace asdcap
