// libFuzzer target: the torch.save zip checkpoint reader (zip container, CRC checks, the restricted
// unpickler, the storages and the tensor views over them), on arbitrary bytes.
#include <cstddef>
#include <cstdint>

#include "asdcap/checkpoint.hpp"
#include "asdcap/error.hpp"
#include "asdcap/model_file.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    for (const auto& t : asdcap::read_torch_checkpoint_bytes(data, size, "fuzz.pth")) {
      int64_t numel = 1;
      for (int64_t d : t.shape) numel *= d;
      // Every tensor read holds exactly its declared elements.
      if (t.data.size() != static_cast<size_t>(numel) * asdcap::dtype_size(t.dtype)) __builtin_trap();
    }
  } catch (const asdcap::Error&) {
  }
  return 0;
}
