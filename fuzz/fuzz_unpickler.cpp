// libFuzzer target: the restricted unpickler alone (a zip's CRC check would otherwise keep most
// mutations from reaching it). The first byte picks the entry point: odd, a zip checkpoint's
// data.pkl (state dict of tensors); even, a legacy checkpoint's object pickle.
#include <cstddef>
#include <cstdint>

#include "asdcap/error.hpp"
#include "modelio/unpickler.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const bool state_dict = data[0] % 2 == 1;
  ++data;
  --size;
  try {
    if (state_dict)
      asdcap::modelio::unpickle_state_dict(data, size, "fuzz.pkl");
    else
      asdcap::modelio::unpickle_checkpoint(data, size, "fuzz.pkl");
  } catch (const asdcap::Error&) {
  }
  return 0;
}
