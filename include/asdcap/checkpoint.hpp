// Reading PyTorch torch.save checkpoints (zip container + pickled state dict) without executing
// anything: a restricted unpickler that knows only what state-dict files contain, and a zip reader
// that validates every offset against the file. STORED and DEFLATE members are both accepted.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "asdcap/model_file.hpp"

namespace asdcap {

struct CheckpointTensor {
  std::string name;             // state-dict key (a leading `module.` stripped)
  DType dtype = DType::F32;
  std::vector<int64_t> shape;   // PyTorch order, outermost first; {} for a scalar
  std::vector<char> data;       // contiguous C order, little-endian
};

// The state dict of a torch.save file: the dict under 'model' if the top-level object is a dict
// holding one, else the top-level dict. Tensors in file order. Throws IoError (cannot read),
// FormatError (not a checkpoint, corrupt, a forbidden pickle global, out-of-bounds storage...),
// each naming the file.
std::vector<CheckpointTensor> read_torch_checkpoint(const std::string& path);

// Same, on bytes already in memory (`name` is used in error messages). For fuzzing and tests.
std::vector<CheckpointTensor> read_torch_checkpoint_bytes(const void* data, size_t size,
                                                          const std::string& name);

}  // namespace asdcap
