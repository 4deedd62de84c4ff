// asdcap convert --relayout: an existing model file into the current format version.
#include <deque>

#include "asdcap/convert.hpp"
#include "asdcap/error.hpp"
#include "mapped_file.hpp"
#include "modelio/gguf.hpp"
#include "modelio/packed_layout.hpp"
#include "schema.hpp"

namespace asdcap {

RelayoutReport relayout_model(const std::string& in, const std::string& out) {
  modelio::MappedFile file(in);
  const GgufView g = GgufView::parse(file.data(), file.size(), in);
  auto arch = g.kv.find("general.architecture");
  const std::string architecture =
      arch != g.kv.end() && arch->second.kind == GgufValue::Kind::String ? arch->second.s : "";
  if (architecture == modelio::kArchitecture)
    ModelFile::open(in);  // the whole validation of the input
  else if (architecture == modelio::kLaionArchitecture)
    modelio::read_laion_config(g, in);
  else
    throw InvalidArgument(in +
                          ": --relayout re-lays msclap and LAION-CLAP model files; PANNs and autoencoder "
                          "files keep PyTorch order and need none");
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
  for (size_t i = 0; i < g.tensors.size(); ++i) {
    const GgufTensor& t = g.tensors[i];
    const void* data = file.data() + t.offset;
    const auto nbytes = static_cast<size_t>(t.nbytes);
    if (markers[i].out_dim >= 0) {  // as it is, with its key
      w.add_tensor(t.name, t.dtype, t.shape, data, nbytes);
      std::vector<int64_t> key{markers[i].out_dim};
      key.insert(key.end(), markers[i].logical.begin(), markers[i].logical.end());
      w.set_int_array(packed_prefix + t.name, std::move(key));
      ++report.already;
    } else if (const auto out_dim = modelio::packed_out_dim(architecture, t.name)) {
      modelio::add_packed_tensor(w, t.name, t.dtype, t.shape, data, nbytes, *out_dim, store);
      ++report.packed;
    } else {
      w.add_tensor(t.name, t.dtype, t.shape, data, nbytes);
    }
  }
  w.write_file(out);
  if (architecture == modelio::kArchitecture) ModelFile::open(out);  // what was written reads back
  return report;
}

}  // namespace asdcap
