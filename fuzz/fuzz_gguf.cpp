// libFuzzer target: the GGUF reader and the model-file validation that follows it (format version
// and packed-layout keys, metadata -> ModelConfig -> required tensors; a PANNs file's configuration
// and a version-1 PANNs file's fold), on arbitrary bytes.
#include <cstddef>
#include <cstdint>
#include <string>

#include "asdcap/convert.hpp"
#include "asdcap/error.hpp"
#include "core/panels.hpp"
#include "modelio/gguf.hpp"
#include "modelio/packed_layout.hpp"
#include "modelio/panns_layout.hpp"
#include "modelio/schema.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // The model-kind probe reads the metadata up to general.architecture only: on any input it
  // answers or throws Error, and on a file the full parse accepts it finds the same value.
  std::string arch;
  bool probed = false;
  try {
    arch = asdcap::GgufView::architecture(data, size, "fuzz.gguf");
    probed = true;
  } catch (const asdcap::Error&) {
  }
  try {
    asdcap::GgufView g = asdcap::GgufView::parse(data, size, "fuzz.gguf");
    try {  // the packed-layout keys: every accepted packed tensor holds exactly its panels
      asdcap::modelio::format_version(g, "fuzz.gguf");
      const auto markers = asdcap::modelio::read_packed_markers(g, "fuzz.gguf");
      for (size_t i = 0; i < markers.size(); ++i) {
        if (markers[i].out_dim < 0) continue;
        const auto s = asdcap::modelio::packed_shape(markers[i].logical, markers[i].out_dim, "fuzz");
        const bool int8 = g.tensors[i].dtype == asdcap::DType::I8;
        const int64_t in = int8 ? asdcap::panels::int8_inputs(s.in) : s.in;
        if (g.tensors[i].nbytes != asdcap::panels::bytes(s.out, in, asdcap::dtype_size(g.tensors[i].dtype)))
          __builtin_trap();
        // An int8 tensor has its f32 scales, one per output; a float tensor has none.
        if (int8 != (markers[i].scale_tensor >= 0)) __builtin_trap();
        if (int8) {
          const auto& sc = g.tensors[static_cast<size_t>(markers[i].scale_tensor)];
          if (sc.dtype != asdcap::DType::F32 || sc.nbytes != static_cast<uint64_t>(s.out) * 4 || sc.offset % 4)
            __builtin_trap();
        }
      }
    } catch (const asdcap::Error&) {
    }
    if (!probed) __builtin_trap();  // the probe refused what the full parse accepts
    const auto it = g.kv.find("general.architecture");
    const std::string full =
        it != g.kv.end() && it->second.kind == asdcap::GgufValue::Kind::String ? it->second.s : std::string();
    if (full != arch) __builtin_trap();
    if (full == asdcap::modelio::kPannsArchitecture) {
      // A PANNs file: its configuration, and a version-1 file's fold (what opening it computes):
      // every folded tensor holds exactly its values or panels.
      const asdcap::PannsConfig pc = asdcap::modelio::read_panns_config(g, "fuzz.gguf");
      if (asdcap::modelio::format_version(g, "fuzz.gguf") == 1)
        for (const auto& t : asdcap::modelio::fold_panns_file(g, data, pc, "fuzz.gguf", 1)) {
          int64_t n = 1;
          for (int64_t d : t.spec.shape) n *= d;
          const size_t want = t.spec.out_dim < 0
                                  ? static_cast<size_t>(n) * asdcap::dtype_size(t.dtype)
                                  : asdcap::panels::bytes(t.spec.shape[static_cast<size_t>(t.spec.out_dim)],
                                                          n / t.spec.shape[static_cast<size_t>(t.spec.out_dim)],
                                                          asdcap::dtype_size(t.dtype));
          if (t.nbytes != want || !t.bytes) __builtin_trap();
        }
      return 0;
    }
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
