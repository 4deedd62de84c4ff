// PANNs CNN14 checkpoints -> asdcap-panns model files; the front-end tensors a CNN14 must carry.
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <random>
#include <set>

#include "asdcap/error.hpp"
#include "asdcap/panns.hpp"
#include "core/files.hpp"
#include "half.hpp"
#include "mapped_file.hpp"
#include "model_writer.hpp"
#include "modelio/gguf.hpp"
#include "modelio/packed_layout.hpp"
#include "modelio/panns_layout.hpp"
#include "schema.hpp"

namespace asdcap {
namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The front ends of the published CNN14 models, by FFT size (audioset_tagging_cnn's inference
// settings: Cnn14 32 kHz, Cnn14_16k, Cnn14_8k).
struct Variant {
  const char* name;
  int n_fft, sample_rate, hop;
  float fmax;
};
constexpr Variant kVariants[] = {
    {"Cnn14", 1024, 32000, 320, 14000.f}, {"Cnn14_16k", 512, 16000, 160, 8000.f}, {"Cnn14_8k", 256, 8000, 80, 4000.f}};

// Slaney mel scale (librosa's default, htk=False).
double hz_to_mel(double f) {
  const double f_sp = 200.0 / 3, min_log_hz = 1000.0, min_log_mel = min_log_hz / f_sp, logstep = std::log(6.4) / 27.0;
  return f >= min_log_hz ? min_log_mel + std::log(f / min_log_hz) / logstep : f / f_sp;
}
double mel_to_hz(double m) {
  const double f_sp = 200.0 / 3, min_log_hz = 1000.0, min_log_mel = min_log_hz / f_sp, logstep = std::log(6.4) / 27.0;
  return m >= min_log_mel ? min_log_hz * std::exp(logstep * (m - min_log_mel)) : f_sp * m;
}

// librosa.filters.mel(sr, n_fft, n_mels, fmin, fmax) with Slaney area normalisation, in float64,
// transposed as torchlibrosa stores it: [n_fft/2 + 1, n_mels].
std::vector<double> slaney_mel_bank(int sr, int n_fft, int n_mels, double fmin, double fmax) {
  const int bins = n_fft / 2 + 1;
  std::vector<double> fft_f(static_cast<size_t>(bins)), mel_f(static_cast<size_t>(n_mels + 2));
  for (int k = 0; k < bins; ++k) fft_f[k] = k * (sr / 2.0 / (bins - 1));
  const double lo = hz_to_mel(fmin), hi = hz_to_mel(fmax);
  for (int i = 0; i < n_mels + 2; ++i) mel_f[i] = mel_to_hz(i == n_mels + 1 ? hi : lo + i * ((hi - lo) / (n_mels + 1)));
  std::vector<double> w(static_cast<size_t>(bins) * n_mels);
  for (int i = 0; i < n_mels; ++i) {
    const double enorm = 2.0 / (mel_f[i + 2] - mel_f[i]);
    for (int k = 0; k < bins; ++k) {
      const double lower = (fft_f[k] - mel_f[i]) / (mel_f[i + 1] - mel_f[i]);
      const double upper = (mel_f[i + 2] - fft_f[k]) / (mel_f[i + 2] - mel_f[i + 1]);
      w[static_cast<size_t>(k) * n_mels + i] = std::max(0.0, std::min(lower, upper)) * enorm;
    }
  }
  return w;
}

// torchlibrosa's STFT kernels: Re / Im of exp(-2 pi i k n / N) times the periodic Hann window, [bins][N].
std::vector<double> dft_kernel(int n_fft, bool imag) {
  const int bins = n_fft / 2 + 1;
  std::vector<double> v(static_cast<size_t>(bins) * n_fft);
  for (int k = 0; k < bins; ++k)
    for (int n = 0; n < n_fft; ++n) {
      const double w = 0.5 - 0.5 * std::cos(2 * M_PI * n / n_fft);
      const double a = 2 * M_PI * static_cast<double>((static_cast<int64_t>(k) * n) % n_fft) / n_fft;
      v[static_cast<size_t>(k) * n_fft + n] = (imag ? -std::sin(a) : std::cos(a)) * w;
    }
  return v;
}

const CheckpointTensor* find(const std::map<std::string, const CheckpointTensor*>& m, const std::string& name) {
  auto it = m.find(name);
  return it == m.end() ? nullptr : it->second;
}

const CheckpointTensor& need(const std::map<std::string, const CheckpointTensor*>& m, const std::string& name,
                             size_t ndim, const std::string& file) {
  const CheckpointTensor* t = find(m, name);
  if (!t) throw ModelError(file + ": not a PANNs CNN14 checkpoint: tensor " + name + " missing");
  if (t->shape.size() != ndim)
    throw ModelError(file + ": tensor " + name + " has shape " + format_shape(t->shape) + ", expected " +
                     std::to_string(ndim) + " dimensions");
  return *t;
}

int dim(int64_t v, const std::string& what, const std::string& file) {
  if (v <= 0 || v > (1 << 20)) throw ModelError(file + ": implausible " + what + " " + std::to_string(v));
  return static_cast<int>(v);
}

std::vector<float> as_f32(const CheckpointTensor& t) {
  CheckpointTensor c = t;
  modelio::convert_float_dtype(c, DType::F32);
  std::vector<float> v(c.data.size() / 4);
  std::memcpy(v.data(), c.data.data(), c.data.size());
  return v;
}

// Largest |stored - expected|, relative to the largest |expected|.
double deviation(const std::vector<float>& stored, const std::vector<double>& expected) {
  double worst = 0, scale = 0;
  for (size_t i = 0; i < expected.size(); ++i) {
    worst = std::max(worst, std::abs(stored[i] - expected[i]));
    scale = std::max(scale, std::abs(expected[i]));
  }
  return worst / std::max(scale, 1e-30);
}

}  // namespace

PannsConfig infer_panns_config(const std::vector<CheckpointTensor>& tensors, const std::string& file) {
  std::map<std::string, const CheckpointTensor*> m;
  for (const auto& t : tensors) m[t.name] = &t;
  PannsConfig c;
  const CheckpointTensor& real = need(m, "spectrogram_extractor.stft.conv_real.weight", 3, file);
  c.n_fft = dim(real.shape[2], "STFT size", file);
  const Variant* v = nullptr;
  for (const Variant& x : kVariants)
    if (x.n_fft == c.n_fft) v = &x;
  if (!v)
    throw ModelError(file + ": STFT size " + std::to_string(c.n_fft) +
                     " is none of the published CNN14 front ends (1024 at 32 kHz, 512 at 16 kHz, 256 at 8 kHz)");
  c.variant = v->name;
  c.sample_rate = v->sample_rate;
  c.hop = v->hop;
  c.fmin = 50.f;
  c.fmax = v->fmax;
  const CheckpointTensor& melw = need(m, "logmel_extractor.melW", 2, file);
  c.mel_bins = dim(melw.shape[1], "mel bins", file);
  for (size_t i = 0; i < c.widths.size(); ++i)
    c.widths[i] =
        dim(need(m, "conv_block" + std::to_string(i + 1) + ".conv1.weight", 4, file).shape[0], "conv width", file);
  c.embedding_dim = dim(need(m, "fc1.weight", 2, file).shape[0], "embedding size", file);
  c.classes = dim(need(m, "fc_audioset.weight", 2, file).shape[0], "class count", file);
  modelio::check_panns_config(c, file);

  for (const TensorSpec& s : modelio::panns_required_tensors(c)) {
    const CheckpointTensor& t = need(m, s.name, s.shape.size(), file);
    if (t.shape != s.shape)
      throw ModelError(file + ": tensor " + s.name + " has shape " + format_shape(t.shape) + ", expected " +
                       format_shape(s.shape) + " for " + c.variant + " with widths of the tensors above");
    if (t.dtype != DType::F32 && t.dtype != DType::F16 && t.dtype != DType::BF16 && t.dtype != DType::F64)
      throw ModelError(file + ": tensor " + s.name + " is " + dtype_name(t.dtype) + ", not a float tensor");
  }
  // The front end is part of the checkpoint; it must be the one the variant implies.
  const double mel_dev = deviation(as_f32(melw), slaney_mel_bank(c.sample_rate, c.n_fft, c.mel_bins, c.fmin, c.fmax));
  if (mel_dev > 1e-5)
    throw ModelError(file + ": logmel_extractor.melW is not the Slaney mel bank of " + c.variant + " (" +
                     std::to_string(c.sample_rate) + " Hz, n_fft " + std::to_string(c.n_fft) + ", " +
                     std::to_string(c.mel_bins) + " bins, 50-" + std::to_string(static_cast<int>(c.fmax)) +
                     " Hz): relative deviation " + std::to_string(mel_dev));
  for (bool imag : {false, true}) {
    const std::string name = imag ? "spectrogram_extractor.stft.conv_imag.weight" : real.name;
    const double d = deviation(as_f32(*m.at(name)), dft_kernel(c.n_fft, imag));
    if (d > 1e-5)
      throw ModelError(file + ": " + name + " is not the periodic-Hann DFT of size " + std::to_string(c.n_fft) +
                       " (relative deviation " + std::to_string(d) + ")");
  }
  return c;
}

namespace modelio {

void write_panns_model(const std::string& path, const PannsConfig& c, const std::vector<CheckpointTensor>& tensors,
                       DType weights_dtype, const std::string& source, const std::string& source_sha256,
                       bool packed_layout, int threads) {
  GgufWriter w(64);
  w.set_string("general.architecture", kPannsArchitecture);
  w.set_string("general.name", c.variant);
  w.set_uint32("general.file_type", gguf_file_type(weights_dtype == DType::F16, weights_dtype == DType::BF16));
  write_panns_config(w, c);
  w.set_string(std::string(kPannsPrefix) + "converter", std::string("asdcap ") +
#ifdef ASDCAP_VERSION
                                                            ASDCAP_VERSION
#else
                                                            "0.1"
#endif
  );
  w.set_string(std::string(kPannsPrefix) + "source.checkpoint.file", source);
  w.set_string(std::string(kPannsPrefix) + "source.checkpoint.sha256", source_sha256);
  PannsSource state_dict;
  std::map<std::string, const CheckpointTensor*> by_name;
  for (const auto& t : tensors) {
    state_dict[t.name] = {t.dtype, t.data.data(), t.data.size()};
    by_name[t.name] = &t;
  }
  std::vector<PannsStoredTensor> folded;
  std::vector<CheckpointTensor> plain;  // version 1: the state dict's tensors in their storage type
  if (packed_layout) {
    w.set_int(kFormatVersionKey, kFormatVersion);
    folded = fold_panns_tensors(c, state_dict, weights_dtype, threads);
    add_panns_v2_tensors(w, folded);
  } else {
    for (const TensorSpec& s : panns_required_tensors(c)) {
      CheckpointTensor& t = plain.emplace_back(*by_name.at(s.name));
      convert_float_dtype(t, weights_dtype != DType::F32 && panns_f16_eligible(t.name) ? weights_dtype : DType::F32);
      w.add_tensor(t.name, t.dtype, t.shape, t.data.data(), t.data.size());
    }
  }
  w.write_file(path);
}

}  // namespace modelio

PannsConvertReport convert_panns(const PannsConvertOptions& opts) {
  if (opts.checkpoint.empty()) throw InvalidArgument("PANNs conversion: no checkpoint given");
  if (opts.out.empty()) throw InvalidArgument("PANNs conversion: no output file given");
  if (opts.dtype != DType::F32 && opts.dtype != DType::F16 && opts.dtype != DType::BF16)
    throw InvalidArgument("PANNs conversion: the storage type must be f32, f16 or bf16");
  std::vector<CheckpointTensor> all = read_torch_checkpoint(opts.checkpoint);
  PannsConvertReport r;
  r.config = infer_panns_config(all, opts.checkpoint);
  std::set<std::string> wanted;
  for (const TensorSpec& s : modelio::panns_required_tensors(r.config)) wanted.insert(s.name);
  std::vector<CheckpointTensor> keep;
  std::vector<std::string> unexpected;
  for (CheckpointTensor& t : all) {
    if (ends_with(t.name, ".num_batches_tracked")) {
      r.skipped.push_back(t.name);
    } else if (!wanted.count(t.name)) {
      unexpected.push_back(t.name);
    } else {
      keep.push_back(std::move(t));
    }
  }
  if (!unexpected.empty()) {
    std::string list;
    for (size_t i = 0; i < unexpected.size() && i < 8; ++i) list += (i ? ", " : "") + unexpected[i];
    throw ModelError(opts.checkpoint + ": not a CNN14 state dict: unexpected tensors " + list +
                     (unexpected.size() > 8 ? ", ... (" + std::to_string(unexpected.size()) + " in all)" : ""));
  }
  modelio::write_panns_model(opts.out, r.config, keep, opts.dtype,
                             std::filesystem::path(opts.checkpoint).filename().string(), sha256_file(opts.checkpoint),
                             true, 0);
  return r;
}

void write_random_panns_model(const std::string& path, const PannsConfig& cfg, DType dtype, uint64_t seed) {
  modelio::check_panns_config(cfg, path);
  std::mt19937_64 rng(seed);
  std::vector<CheckpointTensor> tensors;
  for (const TensorSpec& s : modelio::panns_required_tensors(cfg)) {
    CheckpointTensor t;
    t.name = s.name;
    t.dtype = DType::F32;
    t.shape = s.shape;
    int64_t n = 1;
    for (int64_t d : s.shape) n *= d;
    std::vector<float> v(static_cast<size_t>(n));
    if (s.name == "logmel_extractor.melW") {
      auto w = slaney_mel_bank(cfg.sample_rate, cfg.n_fft, cfg.mel_bins, cfg.fmin, cfg.fmax);
      for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(w[i]);
    } else if (s.name.rfind("spectrogram_extractor.", 0) == 0) {
      auto w = dft_kernel(cfg.n_fft, s.name.find("imag") != std::string::npos);
      for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(w[i]);
    } else if (ends_with(s.name, "running_var")) {
      std::uniform_real_distribution<float> d(s.name.rfind("bn0.", 0) == 0 ? 100.f : 0.5f,
                                              s.name.rfind("bn0.", 0) == 0 ? 900.f : 2.f);
      for (auto& x : v) x = d(rng);
    } else if (ends_with(s.name, "running_mean") && s.name.rfind("bn0.", 0) == 0) {
      std::uniform_real_distribution<float> d(-60.f, -20.f);
      for (auto& x : v) x = d(rng);
    } else if (s.shape.size() == 1) {  // BatchNorm weight (near 1) and biases (near 0)
      const bool scale =
          ends_with(s.name, "bn0.weight") || ends_with(s.name, "bn1.weight") || ends_with(s.name, "bn2.weight");
      std::normal_distribution<float> d(scale ? 1.f : 0.f, 0.1f);
      for (auto& x : v) x = d(rng);
    } else {  // He-normal convolutions, Xavier-scaled fc
      int64_t fan_in = 1;
      for (size_t k = 1; k < s.shape.size(); ++k) fan_in *= s.shape[k];
      std::normal_distribution<float> d(0.f, std::sqrt(2.f / static_cast<float>(fan_in)));
      for (auto& x : v) x = d(rng);
    }
    t.data.resize(v.size() * 4);
    std::memcpy(t.data.data(), v.data(), t.data.size());
    tensors.push_back(std::move(t));
  }
  modelio::write_panns_model(path, cfg, tensors, dtype == DType::F32 ? DType::F32 : dtype,
                             "random (seed " + std::to_string(seed) + ")", "", true, 0);
}

bool is_panns_model_file(const std::string& path) {
  modelio::MappedFile f(path);
  return GgufView::architecture(f.data(), f.size(), path) == modelio::kPannsArchitecture;
}

}  // namespace asdcap
