#include <algorithm>
#include <cstring>
#include <map>

#include "asdcap/error.hpp"
#include "asdcap/panns.hpp"
#include "cnn14.hpp"
#include "core/files.hpp"
#include "core/parallel.hpp"
#include "modelio/gguf.hpp"
#include "modelio/half.hpp"
#include "modelio/mapped_file.hpp"
#include "modelio/packed_layout.hpp"
#include "modelio/panns_layout.hpp"
#include "modelio/schema.hpp"
#include "nn/weight_view.hpp"

namespace asdcap {

int64_t PannsConfig::min_samples() const {
  // 32 frames = n / hop + 1 (five 2x poolings leave one), and the reflect padding of n_fft / 2.
  return std::max<int64_t>(int64_t{31} * hop, n_fft / 2 + 1);
}

PannsModel::PannsModel() : impl_(std::make_unique<Impl>()) {}
PannsModel::~PannsModel() = default;

std::shared_ptr<const PannsModel> PannsModel::open(const std::string& path, int threads) {
  std::shared_ptr<PannsModel> m(new PannsModel());
  Impl& d = *m->impl_;
  d.path = path;
  auto file = std::make_shared<const modelio::MappedFile>(path);
  GgufView g = GgufView::parse(file->data(), file->size(), path);
  auto arch = g.kv.find("general.architecture");
  if (arch == g.kv.end() || arch->second.kind != GgufValue::Kind::String ||
      arch->second.s != modelio::kPannsArchitecture)
    throw ModelError(path + ": not a PANNs model file (GGUF architecture is not " +
                     std::string(modelio::kPannsArchitecture) +
                     "; convert a CNN14 checkpoint with `asdcap convert --panns`)");
  d.config = modelio::read_panns_config(g, path);
  d.identity = sha256_hex(file->data(), static_cast<size_t>(g.data_offset));
  std::map<std::string, size_t> index;  // tensor name -> its place in the file
  for (size_t i = 0; i < g.tensors.size(); ++i)
    if (!index.emplace(g.tensors[i].name, i).second)
      throw FormatError(path + ": duplicate tensor " + g.tensors[i].name);

  // Each tensor of the version-2 layout: where its bytes lie (the mapping, or a version-1 file's
  // fold in memory) and its storage type.
  std::map<std::string, std::pair<const uint8_t*, DType>> where;
  panns::Network::Tensors t;
  const std::vector<modelio::PannsTensorSpec> specs = modelio::panns_v2_tensors(d.config);
  const int64_t version = modelio::format_version(g, path);
  std::shared_ptr<std::vector<modelio::PannsStoredTensor>> folded;
  if (version == 1) {
    folded = std::make_shared<std::vector<modelio::PannsStoredTensor>>(
        modelio::fold_panns_file(g, file->data(), d.config, path, threads));
    for (const auto& f : *folded) where[f.spec.name] = {f.bytes.get(), f.dtype};
    t.keep = folded;
    modelio::print_relayout_hint(path, version);
  } else {
    const std::vector<modelio::PackedMarker> markers = modelio::read_packed_markers(g, path);
    for (const modelio::PannsTensorSpec& s : specs) {
      auto it = index.find(s.name);
      if (it == index.end())
        throw ModelError(path + ": model file lacks tensor " + s.name + " (format version " + std::to_string(version) +
                         ")");
      const GgufTensor& gt = g.tensors[it->second];
      const modelio::PackedMarker& mk = markers[it->second];
      const bool half_ok = s.weights && (gt.dtype == DType::F16 || gt.dtype == DType::BF16);
      if (gt.dtype != DType::F32 && !half_ok)
        throw ModelError(path + ": tensor " + s.name + " is " + dtype_name(gt.dtype) + ", expected f32" +
                         (s.weights ? ", f16 or bf16" : ""));
      if (s.out_dim >= 0 && (mk.out_dim != s.out_dim || mk.logical != s.shape))
        throw ModelError(path + ": tensor " + s.name + " is not stored packed as " + format_shape(s.shape) +
                         " with dimension " + std::to_string(s.out_dim) + " as its output");
      if (s.out_dim < 0 && (mk.out_dim >= 0 || gt.shape != s.shape))
        throw ModelError(path + ": tensor " + s.name + " has shape " + format_shape(gt.shape) + ", expected " +
                         format_shape(s.shape) + " in PyTorch order");
      if (s.out_dim < 0 && gt.offset % alignof(float))
        throw FormatError(path + ": tensor " + s.name + " is not 4-byte aligned");
      where[s.name] = {file->data() + gt.offset, gt.dtype};
    }
    t.keep = file;
  }
  const auto view = [&](const std::string& name) {
    const auto& [p, dtype] = where.at(name);
    return nn::WeightView{p, nn::weight_type(dtype, name)};
  };
  const auto f32 = [&](const std::string& name) { return reinterpret_cast<const float*>(where.at(name).first); };
  t.stft_real = view("spectrogram_extractor.stft.conv_real.weight");
  t.stft_imag = view("spectrogram_extractor.stft.conv_imag.weight");
  t.melw = view("logmel_extractor.melW");
  const char* bn_parts[4] = {"weight", "bias", "running_mean", "running_var"};
  for (int k = 0; k < 4; ++k) t.bn0[k] = f32(std::string("bn0.") + bn_parts[k]);
  for (int i = 0; i < 6; ++i)
    for (int j = 0; j < 2; ++j) {
      const int64_t w = d.config.widths[i], cin = j == 1 ? w : i == 0 ? 1 : d.config.widths[i - 1];
      const modelio::PannsConvSplit split = modelio::panns_conv_split(cin);
      for (int64_t grp = 0; grp < modelio::PannsConvSplit::groups(w); ++grp)
        for (int64_t ch = 0; ch < split.chunks; ++ch)
          t.conv[i][j].push_back(view(modelio::panns_folded_name(i, j, grp, ch)));
      t.conv_bias[i][j] = f32(modelio::panns_folded_bias_name(i, j));
    }
  t.fc1_w = view("fc1.weight");
  t.fc1_b = f32("fc1.bias");
  t.fc_w = view("fc_audioset.weight");
  t.fc_b = f32("fc_audioset.bias");
  try {
    d.net = std::make_unique<panns::Network>(d.config, t);
  } catch (const ModelError& e) {
    throw ModelError(path + ": " + e.what());
  }
  return m;
}

const PannsConfig& PannsModel::config() const { return impl_->config; }
const std::string& PannsModel::path() const { return impl_->path; }
const std::string& PannsModel::identity() const { return impl_->identity; }

PannsModel::Output PannsModel::run(std::span<const float> samples, int threads) const {
  return impl_->net->forward(samples.data(), static_cast<int64_t>(samples.size()), threads);
}

std::vector<float> PannsModel::embed(std::span<const float> samples, int threads) const {
  return run(samples, threads).embedding;
}

std::vector<PannsModel::Output> PannsModel::run_batch(const std::vector<std::span<const float>>& clips,
                                                      int threads) const {
  std::vector<Output> out(clips.size());
  if (clips.size() == 1) {
    out[0] = run(clips[0], threads);
    return out;
  }
  // One clip per thread (the kernels inside a clip then run serially: no oversubscription).
  parallel_for(threads, static_cast<int64_t>(clips.size()), [&](int64_t i) { out[i] = run(clips[i], 1); });
  return out;
}

}  // namespace asdcap
