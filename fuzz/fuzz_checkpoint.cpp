// libFuzzer target: the torch.save reader (zip container + restricted unpickler) and the safetensors
// reader. The first byte picks the entry point: 0 whole checkpoint, 1 the unpickler alone (the zip's
// CRC check would otherwise keep mutations from reaching it), 2 safetensors.
#include <cstddef>
#include <cstdint>

#include "asdcap/checkpoint.hpp"
#include "asdcap/error.hpp"
#include "modelio/safetensors.hpp"
#include "modelio/unpickler.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t mode = data[0] % 3;
  ++data;
  --size;
  try {
    if (mode == 0) {
      asdcap::read_torch_checkpoint_bytes(data, size, "fuzz.pth");
    } else if (mode == 1) {
      asdcap::modelio::unpickle_state_dict(data, size, "fuzz.pkl");
    } else {
      asdcap::read_safetensors_bytes(data, size, "fuzz.safetensors");
    }
  } catch (const asdcap::Error&) {
  }
  return 0;
}
