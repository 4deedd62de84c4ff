// LAION-CLAP's audio path (laion_clap's get_audio_embedding_from_filelist): int16 round trip,
// repeatpad / crop to 10 s, torchlibrosa's log-mel at 48 kHz, bn0, the HTSAT image and tower
// (clap/htsat.hpp), the audio projection and L2 normalisation. docs/laion.md.
#include <fftw3.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <mutex>
#include <set>

#include "asdcap/clap.hpp"
#include "asdcap/error.hpp"
#include "asdcap/laion.hpp"
#include "asdcap/nn.hpp"
#include "audio/audio_internal.hpp"
#include "clap/htsat.hpp"
#include "core/files.hpp"
#include "core/parallel.hpp"
#include "modelio/gguf.hpp"
#include "modelio/half.hpp"
#include "modelio/mapped_file.hpp"
#include "modelio/packed_layout.hpp"
#include "modelio/schema.hpp"
#include "nn/weight_view.hpp"

namespace asdcap {

namespace {
constexpr float kEps = 1e-5f;
constexpr double kQuantScale = 32767.0;
constexpr int kBatch = 8;  // windows whose images are held at once
}  // namespace

std::vector<int16_t> laion_quantize(const std::vector<float>& signal) {
  std::vector<int16_t> q(signal.size());
  for (size_t i = 0; i < signal.size(); ++i)  // np.clip, * 32767. in float32, astype('int16') truncates
    q[i] = static_cast<int16_t>(std::clamp(signal[i], -1.0f, 1.0f) * static_cast<float>(kQuantScale));
  return q;
}

float laion_dequantize(int16_t q) { return static_cast<float>(static_cast<double>(q) / kQuantScale); }

std::vector<std::vector<int16_t>> laion_windows(const std::vector<int16_t>& quantized, const CropPolicy& crop,
                                                int64_t window) {
  require_windowed_crop(crop, "LAION-CLAP's audio encoder");
  const auto n = static_cast<int64_t>(quantized.size());
  if (n == 0) throw InvalidArgument("LAION-CLAP: empty clip");
  if (n < window) {  // repeatpad: whole copies, then zeros
    std::vector<int16_t> w(static_cast<size_t>(window), 0);
    for (int64_t copy = 0; copy < window / n; ++copy)
      std::copy(quantized.begin(), quantized.end(), w.begin() + copy * n);
    return {std::move(w)};
  }
  std::vector<std::vector<int16_t>> out;
  for (int64_t start : window_starts(n, crop, window))
    out.emplace_back(quantized.begin() + start, quantized.begin() + start + window);
  return out;
}

struct LaionModel::Impl final : clap::HtsatWeights {
  std::string path, identity;
  LaionConfig config;
  int threads = 0;
  std::unique_ptr<modelio::MappedFile> mapped;
  std::map<std::string, GgufTensor> tensors;  // shapes as in PyTorch (a packed tensor's logical one)
  int64_t format_version = 1;
  std::set<std::string> stored_packed;         // tensors stored in the packed panel layout
  std::map<std::string, const float*> scales;  // int8 ones: their per-output scales in the mapping
  mutable std::once_flag hinted;
  mutable std::mutex widened_mu;
  mutable std::map<std::string, std::vector<float>> widened;  // f16 tensors as f32, and unaligned f32 ones
  std::vector<float> bn_alpha, bn_beta;
  const float* melW = nullptr;
  std::vector<int> mel_lo, mel_hi;  // per band, the bins [lo, hi) outside which its weights are zero
  std::unique_ptr<clap::Htsat> htsat;
  nn::PackedLinear proj0, proj2;

  const GgufTensor& tensor(const std::string& name, std::initializer_list<int64_t> shape) const {
    auto it = tensors.find(name);
    if (it == tensors.end()) throw ModelError(path + ": model file lacks tensor " + name);
    if (shape.size() && !std::equal(shape.begin(), shape.end(), it->second.shape.begin(), it->second.shape.end()))
      throw ModelError(path + ": tensor " + name + " has shape " + format_shape(it->second.shape) + ", expected " +
                       format_shape(std::vector<int64_t>(shape)));
    const DType t = it->second.dtype;
    if (!modelio::float_weights_dtype(t, scales.count(name)))
      throw ModelError(path + ": tensor " + name + " is " + dtype_name(t) + ", not a float tensor");
    return it->second;
  }
  const float* scale_of(const GgufTensor& t) const {
    auto it = scales.find(t.name);
    return it == scales.end() ? nullptr : it->second;
  }
  std::vector<float> widen(const GgufTensor& t) const {
    const uint8_t* src = mapped->data() + t.offset;
    if (stored_packed.count(t.name))  // PyTorch order
      return modelio::unpack_panels(src, t.dtype, t.shape, 0, scale_of(t));
    std::vector<float> v(t.nbytes / dtype_size(t.dtype));
    if (t.dtype == DType::F32) {
      std::memcpy(v.data(), src, t.nbytes);
      return v;
    }
    for (size_t i = 0; i < v.size(); ++i) {
      const auto h = static_cast<uint16_t>(src[2 * i] | (src[2 * i + 1] << 8));
      v[i] = t.dtype == DType::F16 ? modelio::half_to_float(h) : modelio::bf16_to_float(h);
    }
    return v;
  }
  const float* full(const std::string& name, std::initializer_list<int64_t> shape) const {
    const GgufTensor& t = tensor(name, shape);
    const uint8_t* src = mapped->data() + t.offset;
    if (t.dtype == DType::F32 && !stored_packed.count(t.name) && reinterpret_cast<uintptr_t>(src) % alignof(float) == 0)
      return reinterpret_cast<const float*>(src);
    std::lock_guard<std::mutex> lock(widened_mu);
    auto it = widened.find(name);
    if (it == widened.end()) it = widened.emplace(name, widen(t)).first;
    return it->second.data();
  }
  // HtsatWeights: the HTSAT module is audio_branch.
  const float* get(const std::string& name, std::initializer_list<int64_t> shape) const override {
    return full("audio_branch." + name, shape);
  }
  nn::PackedLinear linear(const std::string& name, std::initializer_list<int64_t> shape,
                          const float* bias) const override {
    const int64_t out = *shape.begin();
    int64_t in = 1;
    for (auto it = shape.begin() + 1; it != shape.end(); ++it) in *= *it;
    return layer(tensor("audio_branch." + name, shape), out, in, bias);
  }
  // A Linear layer: from the mapping when the file stores it packed (the mapping lives as long as the
  // model and its layers), else packed in memory (a format-1 file says once how to re-lay it).
  nn::PackedLinear layer(const GgufTensor& t, int64_t out, int64_t in, const float* bias) const {
    if (stored_packed.count(t.name)) return nn::PackedLinear::over_panels(view(t), out, in, bias, nullptr);
    if (format_version < modelio::kFormatVersion)
      std::call_once(hinted, [&] { modelio::print_relayout_hint(path, format_version); });
    return nn::PackedLinear(view(t), out, in, bias);
  }
  const std::string& file() const override { return path; }
  // A float tensor as stored in the mapping (f32, f16 or bf16), for the packed GEMM.
  nn::WeightView view(const GgufTensor& t) const {
    return {mapped->data() + t.offset, nn::weight_type(t.dtype, t.name), scale_of(t)};
  }
  nn::PackedLinear packed(const std::string& weight, int64_t out, int64_t in, const std::string& bias) const {
    return layer(tensor(weight, {out, in}), out, in, full(bias, {out}));
  }

  void load();
  std::vector<float> log_mel(const float* samples, std::vector<float>* spectrogram) const;
  void apply_bn0(float* frames_by_mel) const;
  std::vector<float> image_of(const int16_t* window) const;
  // latent [batch x F] -> outputs (projection, ReLU, projection, L2 normalisation).
  void head(const float* latent, const float* clipwise, int64_t batch, Output* out, std::vector<float>* hidden,
            std::vector<float>* projection) const;
};

LaionModel::LaionModel() : impl_(std::make_unique<Impl>()) {}
LaionModel::~LaionModel() = default;

std::shared_ptr<const LaionModel> LaionModel::open(const std::string& path, int threads) {
  std::shared_ptr<LaionModel> m(new LaionModel());
  Impl& d = *m->impl_;
  d.path = path;
  d.threads = threads;
  d.mapped = std::make_unique<modelio::MappedFile>(path);
  GgufView g = GgufView::parse(d.mapped->data(), d.mapped->size(), path);
  auto arch = g.kv.find("general.architecture");
  if (arch == g.kv.end() || arch->second.kind != GgufValue::Kind::String ||
      arch->second.s != modelio::kLaionArchitecture)
    throw ModelError(path + ": not a LAION-CLAP model file (GGUF architecture is not " +
                     std::string(modelio::kLaionArchitecture) +
                     "; convert a LAION-CLAP checkpoint with `asdcap convert --laion-clap`)");
  d.config = modelio::read_laion_config(g, path);
  d.identity = sha256_hex(d.mapped->data(), static_cast<size_t>(g.data_offset));
  d.format_version = modelio::format_version(g, path);
  std::vector<modelio::PackedMarker> markers = modelio::read_packed_markers(g, path);
  for (size_t i = 0; i < g.tensors.size(); ++i) {
    GgufTensor t = g.tensors[i];
    if (markers[i].out_dim >= 0) {  // stored packed: checked against its logical shape below
      if (markers[i].out_dim != 0) throw FormatError(path + ": packed tensor " + t.name + " has its columns as output");
      t.shape = std::move(markers[i].logical);
      d.stored_packed.insert(t.name);
      if (const float* s = modelio::int8_scales(g, markers[i], d.mapped->data(), path)) d.scales.emplace(t.name, s);
    }
    if (!d.tensors.emplace(t.name, t).second) throw FormatError(path + ": duplicate tensor " + t.name);
  }
  for (const TensorSpec& s : modelio::laion_audio_tensors(d.config)) {
    auto it = d.tensors.find(s.name);
    if (it == d.tensors.end()) throw ModelError(path + ": model file lacks tensor " + s.name);
    if (it->second.shape != s.shape)
      throw ModelError(path + ": tensor " + s.name + " has shape " + format_shape(it->second.shape) + ", expected " +
                       format_shape(s.shape));
    const DType t = it->second.dtype;
    const bool ok = t == s.dtype ||
                    (s.dtype == DType::F32 && (t == DType::F16 || t == DType::BF16) && f16_eligible(s.name, s.shape)) ||
                    (s.dtype == DType::F32 && t == DType::I8 && d.scales.count(s.name));
    if (!ok)
      throw ModelError(path + ": tensor " + s.name + " is " + dtype_name(t) + ", expected " + dtype_name(s.dtype));
  }
  d.load();
  return m;
}

void LaionModel::Impl::load() {
  const int64_t mel = config.mel_bins, bins = config.n_fft / 2 + 1, f = config.audio.num_features, j = config.joint_dim;
  const float* bn_w = get("bn0.weight", {mel});
  const float* bn_b = get("bn0.bias", {mel});
  const float* bn_m = get("bn0.running_mean", {mel});
  const float* bn_v = get("bn0.running_var", {mel});
  bn_alpha.resize(static_cast<size_t>(mel));
  bn_beta.resize(static_cast<size_t>(mel));
  for (int64_t m = 0; m < mel; ++m) {  // PyTorch's inference form, as msclap's bn0
    const float inv = 1.0f / std::sqrt(bn_v[m] + kEps);
    bn_alpha[m] = inv * bn_w[m];
    bn_beta[m] = bn_b[m] - bn_m[m] * bn_alpha[m];
  }
  melW = get("logmel_extractor.melW", {bins, mel});
  for (int64_t m = 0; m < mel; ++m) {  // the zero weights outside would add exact zeros
    int64_t lo = 0, hi = bins;
    while (lo < hi && melW[lo * mel + m] == 0.0f) ++lo;
    while (hi > lo && melW[(hi - 1) * mel + m] == 0.0f) --hi;
    mel_lo.push_back(static_cast<int>(lo));
    mel_hi.push_back(static_cast<int>(hi));
  }
  htsat = std::make_unique<clap::Htsat>(config.audio, *this, threads);
  proj0 = packed("audio_projection.0.weight", j, f, "audio_projection.0.bias");
  proj2 = packed("audio_projection.2.weight", j, j, "audio_projection.2.bias");
}

// torchlibrosa's Spectrogram + LogmelFilterBank: reflect padding of n_fft / 2, periodic Hann, power,
// mel = power . melW, 10 log10(max(mel, 1e-10)). The FFT, power and mel sums in double (torchlibrosa's
// float32 convolution differs from them by its rounding only: 4e-4 dB at worst on the golden clips).
std::vector<float> LaionModel::Impl::log_mel(const float* samples, std::vector<float>* spectrogram) const {
  const int64_t n = config.clip_samples, hop = config.hop, frames = config.frames(), mels = config.mel_bins;
  constexpr int kN = kFftSize, kBinsN = kFftBins;
  const std::vector<float> padded = reflect_pad(samples, n, kN / 2);
  const std::vector<double>& window = periodic_hann_1024();
  const fftw_plan plan = stft_fft_plan();
  std::vector<float> out(static_cast<size_t>(frames * mels));
  if (spectrogram) spectrogram->assign(static_cast<size_t>(frames * kBinsN), 0.f);
  constexpr int64_t kChunk = 64;
  parallel_for(threads, (frames + kChunk - 1) / kChunk, [&](int64_t chunk) {
    struct FftwFree {
      void operator()(void* p) const { fftw_free(p); }
    };
    std::unique_ptr<double, FftwFree> in(fftw_alloc_real(kN));
    std::unique_ptr<fftw_complex, FftwFree> spec(fftw_alloc_complex(kBinsN));
    if (!in || !spec) throw std::bad_alloc();
    std::vector<double> power(kBinsN);
    for (int64_t t = chunk * kChunk; t < std::min(frames, (chunk + 1) * kChunk); ++t) {
      const float* frame = padded.data() + t * hop;
      for (int i = 0; i < kN; ++i) in.get()[i] = frame[i] * window[static_cast<size_t>(i)];
      fftw_execute_dft_r2c(plan, in.get(), spec.get());
      for (int k = 0; k < kBinsN; ++k) {
        const double re = spec.get()[k][0], im = spec.get()[k][1];
        power[k] = re * re + im * im;
        if (spectrogram) (*spectrogram)[static_cast<size_t>(t * kBinsN + k)] = static_cast<float>(power[k]);
      }
      for (int64_t m = 0; m < mels; ++m) {
        double s = 0;
        for (int k = mel_lo[m]; k < mel_hi[m]; ++k) s += power[k] * melW[k * mels + m];
        const float v = std::max(static_cast<float>(s), 1e-10f);
        out[static_cast<size_t>(t * mels + m)] = 10.0f * static_cast<float>(std::log10(static_cast<double>(v)));
      }
    }
  });
  return out;
}

void LaionModel::Impl::apply_bn0(float* x) const {
  const int64_t frames = config.frames(), mels = config.mel_bins;
  for (int64_t t = 0; t < frames; ++t)
    for (int64_t m = 0; m < mels; ++m) {
      float& v = x[t * mels + m];
      v = v * bn_alpha[static_cast<size_t>(m)] + bn_beta[static_cast<size_t>(m)];
    }
}

std::vector<float> LaionModel::Impl::image_of(const int16_t* window) const {
  std::vector<float> x(static_cast<size_t>(config.clip_samples));
  for (size_t i = 0; i < x.size(); ++i) x[i] = laion_dequantize(window[i]);
  std::vector<float> mel = log_mel(x.data(), nullptr);
  apply_bn0(mel.data());
  return clap::spectrogram_to_image(mel.data(), static_cast<int>(config.frames()));
}

void LaionModel::Impl::head(const float* latent, const float* clipwise, int64_t batch, Output* out,
                            std::vector<float>* hidden_out, std::vector<float>* projection_out) const {
  const int64_t f = config.audio.num_features, j = config.joint_dim, ncls = config.audio.num_classes;
  std::vector<float> hidden(static_cast<size_t>(batch * j)), proj(static_cast<size_t>(batch * j));
  proj0.forward(threads, latent, batch, hidden.data());
  for (float& v : hidden) v = std::max(v, 0.0f);
  proj2.forward(threads, hidden.data(), batch, proj.data());
  for (int64_t b = 0; b < batch; ++b) {
    Output& o = out[b];
    const float* p = proj.data() + b * j;
    double ss = 0;
    for (int64_t k = 0; k < j; ++k) ss += static_cast<double>(p[k]) * p[k];
    const float norm = std::max(static_cast<float>(std::sqrt(ss)), 1e-12f);  // F.normalize
    o.embedding.resize(static_cast<size_t>(j));
    for (int64_t k = 0; k < j; ++k) o.embedding[k] = p[k] / norm;
    o.latent.assign(latent + b * f, latent + (b + 1) * f);
    o.clipwise.assign(clipwise + b * ncls, clipwise + (b + 1) * ncls);
  }
  if (hidden_out) *hidden_out = std::move(hidden);
  if (projection_out) *projection_out = std::move(proj);
}

const LaionConfig& LaionModel::config() const { return impl_->config; }
const std::string& LaionModel::path() const { return impl_->path; }
const std::string& LaionModel::identity() const { return impl_->identity; }
int LaionModel::num_stages() const { return impl_->htsat->num_stages(); }

std::vector<LaionModel::Output> LaionModel::encode(const std::vector<const int16_t*>& windows) const {
  const Impl& d = *impl_;
  const int64_t f = d.config.audio.num_features, ncls = d.config.audio.num_classes;
  std::vector<Output> out(windows.size());
  for (size_t first = 0; first < windows.size(); first += kBatch) {
    const auto count = static_cast<int64_t>(std::min<size_t>(kBatch, windows.size() - first));
    std::vector<std::vector<float>> images(static_cast<size_t>(count));
    parallel_for(d.threads, count, [&](int64_t i) { images[i] = d.image_of(windows[first + i]); });
    std::vector<const float*> ptrs;
    for (auto& im : images) ptrs.push_back(im.data());
    std::vector<float> latent(static_cast<size_t>(count * f)), clipwise(static_cast<size_t>(count * ncls));
    // One group of windows per thread, each pass single-threaded, as AudioEncoder::encode_images.
    const int64_t groups = std::min<int64_t>(count, resolve_threads(d.threads));
    auto run = [&](int64_t g) {
      const int64_t a = count * g / groups, b = count * (g + 1) / groups;
      d.htsat->encode_group(ptrs.data() + a, b - a, latent.data() + a * f, clipwise.data() + a * ncls);
    };
    if (groups >= 2)
      parallel_for(d.threads, groups, run);
    else
      run(0);
    d.head(latent.data(), clipwise.data(), count, out.data() + first, nullptr, nullptr);
  }
  return out;
}

LaionModel::Output LaionModel::encode_clip(const std::vector<float>& signal48k, const CropPolicy& crop) const {
  const auto windows = laion_windows(laion_quantize(signal48k), crop, impl_->config.clip_samples);
  std::vector<const int16_t*> ptrs;
  for (const auto& w : windows) ptrs.push_back(w.data());
  WindowMean embedding, latent, clipwise;
  for (const Output& o : encode(ptrs)) {
    embedding.add(o.embedding);
    latent.add(o.latent);
    clipwise.add(o.clipwise);
  }
  return {embedding.mean(), latent.mean(), clipwise.mean()};
}

std::vector<LaionModel::Output> laion_encode_files(const LaionModel& model, const std::vector<std::string>& paths,
                                                   const CropPolicy& crop, ChannelMode channels,
                                                   const std::function<void()>& on_file_done) {
  std::vector<LaionModel::Output> out;
  out.reserve(paths.size());
  for (const std::string& path : paths) {
    const std::vector<float> signal = load_audio(path, model.config().sample_rate, channels);
    out.push_back(model.encode_clip(signal, resolve_clip_crop(crop, sha256_file(path)).policy));
    if (on_file_done) on_file_done();
  }
  return out;
}

LaionModel::Trace LaionModel::trace(const int16_t* window) const {
  Trace tr;
  std::vector<float> x(static_cast<size_t>(impl_->config.clip_samples));
  for (size_t i = 0; i < x.size(); ++i) x[i] = laion_dequantize(window[i]);
  tr.logmel = log_mel(x.data(), &tr.spectrogram);
  tr.bn0 = bn0(tr.logmel.data());
  tr.image = image(tr.bn0.data());
  tr.patch_embed = patch_embed(tr.image.data());
  const float* in = tr.patch_embed.data();
  for (int i = 0; i < num_stages(); ++i) {
    tr.stages.push_back(stage(i, in));
    in = tr.stages.back().data();
  }
  tr.final_norm = final_norm(in);
  tr.output = head(tr.final_norm.data(), &tr.projection_hidden, &tr.projection);
  return tr;
}

std::vector<float> LaionModel::log_mel(const float* samples, std::vector<float>* spectrogram) const {
  return impl_->log_mel(samples, spectrogram);
}
std::vector<float> LaionModel::bn0(const float* logmel) const {
  std::vector<float> out(logmel, logmel + impl_->config.frames() * impl_->config.mel_bins);
  impl_->apply_bn0(out.data());
  return out;
}
std::vector<float> LaionModel::image(const float* bn0) const {
  return clap::spectrogram_to_image(bn0, static_cast<int>(impl_->config.frames()));
}
std::vector<float> LaionModel::patch_embed(const float* image) const { return impl_->htsat->patch_embed(image, 1); }
std::vector<float> LaionModel::stage(int index, const float* tokens) const {
  return impl_->htsat->stage(index, tokens, 1);
}
std::vector<float> LaionModel::final_norm(const float* tokens) const { return impl_->htsat->final_norm(tokens, 1); }

LaionModel::Output LaionModel::head(const float* final_tokens, std::vector<float>* hidden,
                                    std::vector<float>* projection) const {
  const Impl& d = *impl_;
  std::vector<float> latent(static_cast<size_t>(d.config.audio.num_features));
  std::vector<float> clipwise(static_cast<size_t>(d.config.audio.num_classes));
  d.htsat->head(final_tokens, 1, latent.data(), clipwise.data());
  Output o;
  d.head(latent.data(), clipwise.data(), 1, &o, hidden, projection);
  return o;
}

}  // namespace asdcap
