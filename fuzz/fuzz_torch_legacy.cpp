// libFuzzer target: the legacy (pre-zip) torch.save reader. The first byte picks the entry point:
// 0 a whole file (header pickles, object pickle with numpy training state skipped, storage key
// list, raw storages), 1 the object pickle alone through the restricted unpickler (the state dict,
// the storages it refers to and where it ends).
#include <cstddef>
#include <cstdint>

#include "modelio/legacy_checkpoint.hpp"
#include "modelio/unpickler.hpp"
#include "asdcap/checkpoint.hpp"
#include "asdcap/error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t mode = data[0] % 2;
  ++data;
  --size;
  try {
    if (mode == 0) {
      asdcap::modelio::read_legacy_checkpoint(data, size, "fuzz.pth");
    } else {
      asdcap::modelio::unpickle_checkpoint(data, size, "fuzz.pkl");
    }
  } catch (const asdcap::Error&) {
  }
  return 0;
}
