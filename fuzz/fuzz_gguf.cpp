// libFuzzer target: the GGUF reader and the model-file validation that follows it (metadata ->
// ModelConfig -> required tensors), on arbitrary bytes.
#include <cstddef>
#include <cstdint>

#include "asdcap/convert.hpp"
#include "asdcap/error.hpp"
#include "modelio/gguf.hpp"
#include "modelio/schema.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    asdcap::GgufView g = asdcap::GgufView::parse(data, size, "fuzz.gguf");
    asdcap::ModelConfig c = asdcap::modelio::read_config(g, "fuzz.gguf");
    size_t found = 0;
    for (const auto& spec : asdcap::required_tensors(c))
      for (const auto& t : g.tensors)
        if (t.name == spec.name && t.shape == spec.shape) ++found;
    if (found > g.tensors.size()) __builtin_trap();
    // Every tensor the parser accepted lies inside the input.
    for (const auto& t : g.tensors)
      if (t.offset > size || t.nbytes > size - t.offset) __builtin_trap();
  } catch (const asdcap::Error&) {
  }
  return 0;
}
