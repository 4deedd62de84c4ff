// asdcap convert --relayout: an existing model file into the current format version.
#include <deque>
#include <optional>

#include "asdcap/convert.hpp"
#include "asdcap/error.hpp"
#include "mapped_file.hpp"
#include "modelio/gguf.hpp"
#include "modelio/packed_layout.hpp"
#include "modelio/panns_layout.hpp"
#include "schema.hpp"

namespace asdcap {

RelayoutReport relayout_model(const std::string& in, const std::string& out, bool int8) {
  modelio::MappedFile file(in);
  const GgufView g = GgufView::parse(file.data(), file.size(), in);
  auto arch = g.kv.find("general.architecture");
  const std::string architecture =
      arch != g.kv.end() && arch->second.kind == GgufValue::Kind::String ? arch->second.s : "";
  std::optional<PannsConfig> panns;  // a PANNs file's configuration, checked before anything is written
  if (architecture == modelio::kArchitecture)
    ModelFile::open(in);  // the whole validation of the input
  else if (architecture == modelio::kLaionArchitecture)
    modelio::read_laion_config(g, in);
  else if (architecture == modelio::kPannsArchitecture && int8)
    throw InvalidArgument(in + ": PANNs model files are f32, f16 or bf16 (--dtype int8 is for msclap and LAION-CLAP)");
  else if (architecture == modelio::kPannsArchitecture)
    panns = modelio::read_panns_config(g, in);
  else
    throw InvalidArgument(in +
                          ": --relayout re-lays msclap, LAION-CLAP and PANNs model files; autoencoder files keep "
                          "PyTorch order and need none");
  RelayoutReport report;
  report.from_version = modelio::format_version(g, in);
  report.to_version = modelio::kFormatVersion;
  const std::vector<modelio::PackedMarker> markers = modelio::read_packed_markers(g, in);

  GgufWriter w(64);
  const std::string packed_prefix = modelio::kPackedKeyPrefix;
  for (const std::string& key : g.kv_order) {
    if (key == "general.alignment" || key == modelio::kFormatVersionKey || key.rfind(packed_prefix, 0) == 0) continue;
    w.set(key, g.kv.at(key));
  }
  w.set_int(modelio::kFormatVersionKey, modelio::kFormatVersion);
  std::deque<std::vector<char>> store;
  if (panns && report.from_version == 1) {
    // Folded with their BatchNorm and packed (the file's weight dtype kept).
    const std::vector<modelio::PannsStoredTensor> folded = modelio::fold_panns_file(g, file.data(), *panns, in, 0);
    for (const auto& t : folded) report.packed += t.spec.out_dim >= 0;
    modelio::add_panns_v2_tensors(w, folded);
    w.write_file(out);
    return report;
  }
  std::vector<bool> scales(g.tensors.size());  // the scales of int8 tensors: written with their tensor
  for (const auto& m : markers)
    if (m.scale_tensor >= 0) scales[static_cast<size_t>(m.scale_tensor)] = true;
  for (size_t i = 0; i < g.tensors.size(); ++i) {
    const GgufTensor& t = g.tensors[i];
    const void* data = file.data() + t.offset;
    const auto nbytes = static_cast<size_t>(t.nbytes);
    if (scales[i]) continue;
    if (markers[i].out_dim >= 0 && int8 && t.dtype != DType::I8) {  // unpacked, then stored as int8
      const std::vector<float> v = modelio::unpack_panels(data, t.dtype, markers[i].logical, markers[i].out_dim);
      modelio::add_packed_tensor(w, t.name, DType::F32, markers[i].logical, v.data(), v.size() * sizeof(float),
                                 markers[i].out_dim, store, true);
      ++report.already, ++report.quantized;
    } else if (markers[i].out_dim >= 0) {  // as it is, with its key (and an int8 tensor's scales)
      w.add_tensor(t.name, t.dtype, t.shape, data, nbytes);
      std::vector<int64_t> key{markers[i].out_dim};
      key.insert(key.end(), markers[i].logical.begin(), markers[i].logical.end());
      w.set_int_array(packed_prefix + t.name, std::move(key));
      if (markers[i].scale_tensor >= 0) {
        const GgufTensor& s = g.tensors[static_cast<size_t>(markers[i].scale_tensor)];
        w.add_tensor(s.name, s.dtype, s.shape, file.data() + s.offset, static_cast<size_t>(s.nbytes));
      }
      ++report.already;
    } else if (const auto out_dim = modelio::packed_out_dim(architecture, t.name)) {
      modelio::add_packed_tensor(w, t.name, t.dtype, t.shape, data, nbytes, *out_dim, store, int8);
      ++report.packed;
      report.quantized += int8;
    } else {
      w.add_tensor(t.name, t.dtype, t.shape, data, nbytes);
    }
  }
  w.write_file(out);
  if (architecture == modelio::kArchitecture) ModelFile::open(out);  // what was written reads back
  return report;
}

}  // namespace asdcap
