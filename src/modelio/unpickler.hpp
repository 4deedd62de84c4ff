// The restricted unpickler for torch.save state dicts (internal to modelio).
//
// It interprets pickle opcodes (protocols 2-5 as torch.save writes them) into plain data and
// allows exactly these globals: collections.OrderedDict, torch._utils._rebuild_tensor_v2,
// torch._utils._rebuild_parameter and the torch.<Type>Storage classes of f32/f16/bf16/f64/i64/i32.
// Training state saved next to the weights may hold numpy arrays (numpy.* globals and
// _codecs.encode): those globals are never resolved; what they would build becomes an opaque
// placeholder, so such a part can be skipped, and a placeholder where a tensor is needed is an error.
// Any other global is refused before it could be called: nothing is ever executed.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "asdcap/model_file.hpp"

namespace asdcap::modelio {

struct PickledTensor {
  std::string key;  // state-dict key
  DType dtype = DType::F32;
  std::string storage_key;    // zip member <archive>/data/<storage_key>
  int64_t storage_numel = 0;  // elements in the storage
  int64_t offset = 0;         // storage offset, in elements
  std::vector<int64_t> shape, stride;
};

// A storage a persistent id referred to (torch.save's ('storage', <Type>Storage, key, location,
// numel[, view_metadata])), wherever in the object it was.
struct PickledStorage {
  std::string key;
  DType dtype = DType::F32;
  int64_t numel = 0;
};

struct UnpickledCheckpoint {
  std::vector<PickledTensor> state_dict;  // see unpickle_state_dict
  std::vector<PickledStorage> storages;   // every storage referred to, first reference first, once per key
  size_t end = 0;                         // bytes up to and including the STOP opcode
};

// The state dict: the dict under 'model' (or 'state_dict') when the pickled object is a dict
// holding one, else the pickled dict itself. Throws FormatError("<file>: ...").
std::vector<PickledTensor> unpickle_state_dict(const uint8_t* data, size_t size, const std::string& file);
// The same, with the storages and where the pickle ended (bytes may follow it).
UnpickledCheckpoint unpickle_checkpoint(const uint8_t* data, size_t size, const std::string& file);

// The three pickles that open a legacy (pre-zip) torch.save file: the magic number
// 0x1950a86a20f9469cfc6c, the protocol version 1001 and the sys_info dict (little_endian must be
// true). Returns the offset of the object pickle that follows. Throws FormatError naming the file.
size_t read_legacy_header(const uint8_t* data, size_t size, const std::string& file);
// A pickled list of strings (a legacy file's storage keys); *end is set to the bytes it took.
std::vector<std::string> unpickle_string_list(const uint8_t* data, size_t size, const std::string& file, size_t* end);

}  // namespace asdcap::modelio
