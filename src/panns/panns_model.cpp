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
  modelio::MappedFile file(path);
  GgufView g = GgufView::parse(file.data(), file.size(), path);
  auto arch = g.kv.find("general.architecture");
  if (arch == g.kv.end() || arch->second.kind != GgufValue::Kind::String ||
      arch->second.s != modelio::kPannsArchitecture)
    throw ModelError(path + ": not a PANNs model file (GGUF architecture is not " +
                     std::string(modelio::kPannsArchitecture) +
                     "; convert a CNN14 checkpoint with `asdcap convert --panns`)");
  d.config = modelio::read_panns_config(g, path);
  d.identity = sha256_hex(file.data(), static_cast<size_t>(g.data_offset));

  // Every required tensor as float32 (f32 ones straight from the mapping, others widened), except the
  // convolutions and fc layers, which the network reads as stored (f16 ones widened as they are
  // packed, without a float32 copy). The network packs what it keeps (nothing refers to the mapping
  // once open() returns).
  std::map<std::string, const GgufTensor*> index;
  for (const GgufTensor& t : g.tensors)
    if (!index.emplace(t.name, &t).second) throw FormatError(path + ": duplicate tensor " + t.name);
  std::map<std::string, const float*> f32;
  std::map<std::string, nn::WeightView> stored;
  std::vector<std::vector<float>> widened;
  for (const TensorSpec& s : modelio::panns_required_tensors(d.config)) {
    auto it = index.find(s.name);
    if (it == index.end()) throw ModelError(path + ": model file lacks tensor " + s.name);
    const GgufTensor& t = *it->second;
    if (t.shape != s.shape)
      throw ModelError(path + ": tensor " + s.name + " has shape " + format_shape(t.shape) + ", expected " +
                       format_shape(s.shape));
    const bool half_ok = modelio::panns_f16_eligible(s.name);
    if (t.dtype != DType::F32 && !(half_ok && (t.dtype == DType::F16 || t.dtype == DType::BF16)))
      throw ModelError(path + ": tensor " + s.name + " is " + dtype_name(t.dtype) + ", expected f32");
    const uint8_t* src = file.data() + t.offset;
    if (half_ok) {  // read as stored (nn::widen copies bytes: any alignment)
      stored.emplace(s.name, nn::WeightView{src, nn::weight_type(t.dtype, s.name)});
      continue;
    }
    if (t.dtype == DType::F32 && reinterpret_cast<uintptr_t>(src) % alignof(float) == 0) {
      f32.emplace(s.name, reinterpret_cast<const float*>(src));
      continue;
    }
    std::vector<float> v(t.nbytes / dtype_size(t.dtype));
    if (t.dtype == DType::F32) std::memcpy(v.data(), src, t.nbytes);  // a file with general.alignment < 4
    for (size_t i = 0; t.dtype != DType::F32 && i < v.size(); ++i) {
      const auto h = static_cast<uint16_t>(src[2 * i] | (src[2 * i + 1] << 8));
      v[i] = t.dtype == DType::F16 ? modelio::half_to_float(h) : modelio::bf16_to_float(h);
    }
    widened.push_back(std::move(v));
    f32.emplace(s.name, widened.back().data());
  }
  auto at = [&](const std::string& name) { return f32.at(name); };
  panns::Network::Tensors t;
  t.stft_real = at("spectrogram_extractor.stft.conv_real.weight");
  t.stft_imag = at("spectrogram_extractor.stft.conv_imag.weight");
  t.melw = at("logmel_extractor.melW");
  const char* bn_parts[4] = {"weight", "bias", "running_mean", "running_var"};
  for (int k = 0; k < 4; ++k) t.bn0[k] = at(std::string("bn0.") + bn_parts[k]);
  for (int i = 0; i < 6; ++i) {
    const std::string b = "conv_block" + std::to_string(i + 1) + ".";
    for (int j = 0; j < 2; ++j) {
      t.conv[i][j] = stored.at(b + "conv" + std::to_string(j + 1) + ".weight");
      for (int k = 0; k < 4; ++k) t.bn[i][j][k] = at(b + "bn" + std::to_string(j + 1) + "." + bn_parts[k]);
    }
  }
  t.fc1_w = stored.at("fc1.weight");
  t.fc1_b = at("fc1.bias");
  t.fc_w = stored.at("fc_audioset.weight");
  t.fc_b = at("fc_audioset.bias");
  try {
    d.net = std::make_unique<panns::Network>(d.config, t, threads);
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
