#include "modelio/panns_layout.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <new>

#include "asdcap/error.hpp"
#include "core/panels.hpp"
#include "core/parallel.hpp"
#include "model_writer.hpp"
#include "modelio/packed_layout.hpp"
#include "schema.hpp"

namespace asdcap::modelio {
namespace {

std::string conv_name(int block, int conv) {
  return "conv_block" + std::to_string(block + 1) + ".conv" + std::to_string(conv + 1);
}

std::shared_ptr<unsigned char> aligned_bytes(size_t n) {
  const size_t rounded = std::max<size_t>((n + 63) / 64 * 64, 64);
  return {static_cast<unsigned char*>(::operator new(rounded, std::align_val_t(64))),
          [](unsigned char* p) { ::operator delete(p, std::align_val_t(64)); }};
}

// A tensor's values as float32 (f64 rounded, f16 / bf16 widened exactly; any alignment).
std::vector<float> values_of(const std::string& name, const PannsSourceTensor& t) {
  std::vector<float> v(t.nbytes / dtype_size(t.dtype));
  convert_floats(t.data, t.dtype, v.size(), v.data(), DType::F32, name);
  return v;
}

// `v` (C order of spec.shape) stored as `dtype`, packed when the spec says so.
PannsStoredTensor store(const PannsTensorSpec& spec, const std::vector<float>& v, DType dtype) {
  PannsStoredTensor t;
  t.spec = spec;
  t.dtype = dtype;
  const size_t size = dtype_size(dtype);
  std::vector<char> narrow;
  const void* src = v.data();
  if (dtype != DType::F32) {
    narrow.resize(v.size() * size);
    convert_floats(v.data(), DType::F32, v.size(), narrow.data(), dtype, spec.name);
    src = narrow.data();
  }
  if (spec.out_dim >= 0) {
    const PackedShape s = packed_shape(spec.shape, spec.out_dim, "tensor " + spec.name);
    t.nbytes = panels::bytes(s.out, s.in, size);
    t.bytes = aligned_bytes(t.nbytes);
    panels::pack(src, s.out, s.in, spec.out_dim == 1, size, t.bytes.get());
  } else {
    t.nbytes = v.size() * size;
    t.bytes = aligned_bytes(t.nbytes);
    std::memcpy(t.bytes.get(), src, t.nbytes);
  }
  return t;
}

}  // namespace

BatchNorm make_batchnorm(const float* weight, const float* bias, const float* mean, const float* var, int64_t n,
                         float eps) {
  BatchNorm b;
  b.mean.assign(mean, mean + n);
  b.scale.resize(static_cast<size_t>(n));
  b.shift.assign(bias, bias + n);
  for (int64_t i = 0; i < n; ++i) {
    if (!(var[i] >= 0)) throw ModelError("BatchNorm running_var is negative or NaN");
    b.scale[i] = static_cast<float>(weight[i] / std::sqrt(static_cast<double>(var[i]) + eps));
  }
  return b;
}

PannsConvSplit panns_conv_split(int64_t cin) {
  PannsConvSplit s;
  s.chunks = std::min<int64_t>(9, (9 * cin + PannsConvSplit::kChunk - 1) / PannsConvSplit::kChunk);
  s.taps_per_chunk = (9 + s.chunks - 1) / s.chunks;
  s.chunks = (9 + s.taps_per_chunk - 1) / s.taps_per_chunk;
  return s;
}

std::string panns_folded_name(int block, int conv, int64_t group, int64_t chunk) {
  return conv_name(block, conv) + ".folded." + std::to_string(group) + "." + std::to_string(chunk);
}
std::string panns_folded_bias_name(int block, int conv) { return conv_name(block, conv) + ".folded.bias"; }

std::vector<PannsTensorSpec> panns_v2_tensors(const PannsConfig& c) {
  std::vector<PannsTensorSpec> out;
  const int64_t bins = c.freq_bins();
  out.push_back({"spectrogram_extractor.stft.conv_real.weight", {bins, 1, c.n_fft}, 0, false});
  out.push_back({"spectrogram_extractor.stft.conv_imag.weight", {bins, 1, c.n_fft}, 0, false});
  out.push_back({"logmel_extractor.melW", {bins, c.mel_bins}, 1, false});
  for (const char* s : {"weight", "bias", "running_mean", "running_var"})
    out.push_back({std::string("bn0.") + s, {c.mel_bins}, -1, false});
  int64_t in = 1;
  for (int b = 0; b < 6; ++b) {
    const int64_t w = c.widths[static_cast<size_t>(b)];
    for (int k = 0; k < 2; ++k) {
      const int64_t cin = k == 0 ? in : w;
      const PannsConvSplit split = panns_conv_split(cin);
      for (int64_t g = 0; g < PannsConvSplit::groups(w); ++g)
        for (int64_t ch = 0; ch < split.chunks; ++ch)
          out.push_back(
              {panns_folded_name(b, k, g, ch), {PannsConvSplit::group_size(w, g), split.taps(ch) * cin}, 0, true});
      out.push_back({panns_folded_bias_name(b, k), {w}, -1, false});
    }
    in = w;
  }
  out.push_back({"fc1.weight", {c.embedding_dim, in}, 0, true});
  out.push_back({"fc1.bias", {c.embedding_dim}, -1, false});
  out.push_back({"fc_audioset.weight", {c.classes, c.embedding_dim}, 0, true});
  out.push_back({"fc_audioset.bias", {c.classes}, -1, false});
  return out;
}

DType panns_weights_dtype(const PannsSource& v1) {
  DType d = DType::F32;
  for (const auto& [name, t] : v1)
    if (panns_f16_eligible(name) && (t.dtype == DType::BF16 || (t.dtype == DType::F16 && d == DType::F32))) d = t.dtype;
  return d;
}

std::vector<PannsStoredTensor> fold_panns_tensors(const PannsConfig& c, const PannsSource& v1, DType weights_dtype,
                                                  int threads) {
  if (weights_dtype != DType::F32 && weights_dtype != DType::F16 && weights_dtype != DType::BF16)
    throw InvalidArgument(std::string("PANNs weights cannot be stored as ") + dtype_name(weights_dtype));
  const auto values = [&](const std::string& name) {
    auto it = v1.find(name);
    if (it == v1.end()) throw ModelError("tensor " + name + " missing");
    return values_of(name, it->second);
  };
  const std::vector<PannsTensorSpec> specs = panns_v2_tensors(c);
  std::vector<PannsStoredTensor> out(specs.size());
  // The 12 convolutions (one job each, largest first), then everything else.
  std::vector<std::pair<int, int>> convs;
  for (int b = 5; b >= 0; --b)
    for (int k = 1; k >= 0; --k) convs.emplace_back(b, k);
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < specs.size(); ++i) index[specs[i].name] = i;
  parallel_for(threads, static_cast<int64_t>(convs.size()) + 1, [&](int64_t job) {
    if (job == static_cast<int64_t>(convs.size())) {
      for (size_t i = 0; i < specs.size(); ++i)
        if (specs[i].name.rfind("conv_block", 0) != 0)
          out[i] = store(specs[i], values(specs[i].name), specs[i].weights ? weights_dtype : DType::F32);
      return;
    }
    const auto [b, k] = convs[static_cast<size_t>(job)];
    const std::string base = conv_name(b, k), bn = "conv_block" + std::to_string(b + 1) + ".bn" + std::to_string(k + 1);
    const int64_t cout = c.widths[static_cast<size_t>(b)], cin = k == 1 ? cout : b == 0 ? 1 : c.widths[b - 1];
    const std::vector<float> w = values(base + ".weight");  // [cout][cin][3][3]
    std::vector<float> parts[4];
    const char* names[4] = {".weight", ".bias", ".running_mean", ".running_var"};
    for (int p = 0; p < 4; ++p) parts[p] = values(bn + names[p]);
    BatchNorm norm;
    try {
      norm = make_batchnorm(parts[0].data(), parts[1].data(), parts[2].data(), parts[3].data(), cout, c.bn_eps);
    } catch (const ModelError& e) {
      throw ModelError(bn + ": " + e.what());
    }
    std::vector<float> bias(static_cast<size_t>(cout));
    for (int64_t co = 0; co < cout; ++co) bias[co] = norm.shift[co] - norm.mean[co] * norm.scale[co];
    const size_t bias_at = index.at(panns_folded_bias_name(b, k));
    out[bias_at] = store(specs[bias_at], bias, DType::F32);
    const PannsConvSplit split = panns_conv_split(cin);
    std::vector<float> folded;
    for (int64_t g = 0; g < PannsConvSplit::groups(cout); ++g)
      for (int64_t ch = 0; ch < split.chunks; ++ch) {
        const int64_t c0 = g * PannsConvSplit::kGroup, nc = PannsConvSplit::group_size(cout, g);
        const int64_t tap0 = split.first_tap(ch), taps = split.taps(ch), kc = taps * cin;
        folded.resize(static_cast<size_t>(nc * kc));
        for (int64_t j = 0; j < nc; ++j) {  // [nc][kc]: BatchNorm's scale times the weight
          const float s = norm.scale[c0 + j];
          const float* row = w.data() + (c0 + j) * 9 * cin;
          for (int64_t t = 0; t < taps; ++t)
            for (int64_t ci = 0; ci < cin; ++ci) folded[j * kc + t * cin + ci] = row[ci * 9 + tap0 + t] * s;
        }
        const size_t at = index.at(panns_folded_name(b, k, g, ch));
        out[at] = store(specs[at], folded, weights_dtype);
      }
  });
  return out;
}

std::vector<PannsStoredTensor> fold_panns_file(const GgufView& g, const uint8_t* data, const PannsConfig& c,
                                               const std::string& path, int threads) {
  std::map<std::string, const GgufTensor*> index;
  for (const GgufTensor& t : g.tensors) index.emplace(t.name, &t);
  PannsSource source;
  for (const TensorSpec& s : panns_required_tensors(c)) {
    auto it = index.find(s.name);
    if (it == index.end()) throw ModelError(path + ": model file lacks tensor " + s.name);
    const GgufTensor& t = *it->second;
    if (t.shape != s.shape)
      throw ModelError(path + ": tensor " + s.name + " has shape " + format_shape(t.shape) + ", expected " +
                       format_shape(s.shape));
    const bool half_ok = panns_f16_eligible(s.name);
    if (t.dtype != DType::F32 && !(half_ok && (t.dtype == DType::F16 || t.dtype == DType::BF16)))
      throw ModelError(path + ": tensor " + s.name + " is " + dtype_name(t.dtype) + ", expected f32");
    source[s.name] = {t.dtype, data + t.offset, static_cast<size_t>(t.nbytes)};
  }
  try {
    return fold_panns_tensors(c, source, panns_weights_dtype(source), threads);
  } catch (const ModelError& e) {
    throw ModelError(path + ": " + e.what());
  }
}

void add_panns_v2_tensors(GgufWriter& w, const std::vector<PannsStoredTensor>& tensors) {
  for (const PannsStoredTensor& t : tensors) {
    const PannsTensorSpec& s = t.spec;
    if (s.out_dim < 0) {
      w.add_tensor(s.name, t.dtype, s.shape, t.bytes.get(), t.nbytes);
      continue;
    }
    const PackedShape p = packed_shape(s.shape, s.out_dim, "tensor " + s.name);
    w.add_tensor(s.name, t.dtype, {(p.out + panels::kWidth - 1) / panels::kWidth, p.in, panels::kWidth}, t.bytes.get(),
                 t.nbytes);
    std::vector<int64_t> key{s.out_dim};
    key.insert(key.end(), s.shape.begin(), s.shape.end());
    w.set_int_array(kPackedKeyPrefix + s.name, std::move(key));
  }
}

}  // namespace asdcap::modelio
