// The restricted unpickler for torch.save state dicts (internal to modelio).
//
// It interprets pickle opcodes (protocols 2-5 as torch.save writes them) into plain data and
// allows exactly these globals: collections.OrderedDict, torch._utils._rebuild_tensor_v2,
// torch._utils._rebuild_parameter and the torch.<Type>Storage classes of f32/f16/bf16/f64/i64/i32.
// Calling anything else is refused before it could happen: nothing is ever executed.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "asdcap/model_file.hpp"

namespace asdcap::modelio {

struct PickledTensor {
  std::string key;              // state-dict key
  DType dtype = DType::F32;
  std::string storage_key;      // zip member <archive>/data/<storage_key>
  int64_t storage_numel = 0;    // elements in the storage
  int64_t offset = 0;           // storage offset, in elements
  std::vector<int64_t> shape, stride;
};

// The state dict: the dict under 'model' (or 'state_dict') when the pickled object is a dict
// holding one, else the pickled dict itself. Throws FormatError("<file>: ...").
std::vector<PickledTensor> unpickle_state_dict(const uint8_t* data, size_t size, const std::string& file);

}  // namespace asdcap::modelio
