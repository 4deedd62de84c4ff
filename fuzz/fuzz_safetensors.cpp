// libFuzzer target: the safetensors reader (JSON header, dtypes, shapes, data offsets) on arbitrary bytes.
#include <cstddef>
#include <cstdint>

#include "asdcap/error.hpp"
#include "modelio/safetensors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    asdcap::read_safetensors_bytes(data, size, "fuzz.safetensors");
  } catch (const asdcap::Error&) {
  }
  return 0;
}
