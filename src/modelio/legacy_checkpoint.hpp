// The legacy (pre-zip) torch.save container (internal to modelio; read_torch_checkpoint dispatches
// to it by the file's first bytes).
//
// Layout: five consecutive pickles -- magic number, protocol version (1001), sys_info, the object
// (tensors' storages as persistent ids ('storage', <Type>Storage, key, location, numel, None)), the
// list of storage keys -- then the raw storages in that list's order, each an int64 little-endian
// element count followed by count x element-size bytes.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "asdcap/checkpoint.hpp"
#include "unpickler.hpp"

namespace asdcap::modelio {

// Whether the bytes start like a legacy torch.save file (a protocol-2 pickle of an 80-bit integer).
bool looks_like_legacy_checkpoint(const uint8_t* data, size_t size);

// The state dict of a legacy file, as read_torch_checkpoint_bytes. Every storage's declared size is
// checked against the bytes left in the file before anything is allocated for it.
std::vector<CheckpointTensor> read_legacy_checkpoint(const uint8_t* data, size_t size, const std::string& name);

// Copies the strided view `t` of `storage` (t.storage_numel elements) into contiguous C order, after
// checking that every element it addresses lies inside the storage. Throws FormatError(where + ...).
std::vector<char> gather_tensor(const PickledTensor& t, const uint8_t* storage, const std::string& where);

// A state-dict key as asdcap names it: a leading "module." (DataParallel) removed.
std::string tensor_name(const std::string& key);

}  // namespace asdcap::modelio
