// libFuzzer target: the .npy reader (magic, versions 1-3, the header dict, dtype, shape, data size).
#include <cstddef>
#include <cstdint>

#include "asdcap/error.hpp"
#include "asdcap/npy.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const asdcap::NpyArray a = asdcap::read_npy_bytes(data, size, "fuzz.npy");
    const size_t elem = a.dtype == "f4" ? 4 : 8;
    // The data read is exactly the declared shape, and lies inside the input.
    if (a.bytes.size() != static_cast<size_t>(a.size()) * elem || a.bytes.size() > size) __builtin_trap();
    if (a.as_float().size() != static_cast<size_t>(a.size())) __builtin_trap();
  } catch (const asdcap::Error&) {
  }
  return 0;
}
