// Training, inference and the model file of the autoencoder.
//
// Model file: GGUF v3 with general.architecture "asdcap-ae"; metadata under "asdcap-ae." (docs/ae.md
// lists the keys); tensors dense.<l>.kernel [in, out], dense.<l>.bias [out], and for the BatchNorm
// after Dense layer l: bn.<l>.gamma, bn.<l>.beta, bn.<l>.moving_mean, bn.<l>.moving_variance, all f32.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <map>
#include <stdexcept>

#include "ae/model.hpp"
#include "core/files.hpp"
#include "core/parallel.hpp"
#include "modelio/gguf.hpp"
#include "modelio/mapped_file.hpp"

namespace asdcap {
namespace ae {

int64_t training_rows(int64_t rows, double validation_split) {
  return static_cast<int64_t>(static_cast<double>(rows) * (1.0 - validation_split));
}

template <class T>
std::vector<AeEpochReport> train_network(Network<T>& net, const T* data, int64_t rows, const AeTrainOptions& o,
                                         const OrderFn& order) {
  const int dim = net.widths[0];
  const int64_t n_train = training_rows(rows, o.validation_split), n_val = rows - n_train;
  const int64_t batch = o.batch_size;
  Trainer<T> trainer(net, std::min<int64_t>(batch, n_train), o.learning_rate, o.threads);
  std::vector<T> x(static_cast<size_t>(std::min<int64_t>(batch, n_train) * dim));
  std::vector<AeEpochReport> history;
  const int64_t batches = (n_train + batch - 1) / batch;
  std::vector<double> errors(static_cast<size_t>(n_val));
  for (int epoch = 1; epoch <= o.epochs; ++epoch) {
    const std::vector<int64_t> idx = order(epoch, n_train);
    if (static_cast<int64_t>(idx.size()) != n_train) throw Error("autoencoder training: batch order of wrong length");
    double loss_sum = 0;
    for (int64_t b = 0; b < batches; ++b) {
      if (o.cancelled && o.cancelled())
        throw AeCancelled("autoencoder training cancelled in epoch " + std::to_string(epoch) + " of " +
                          std::to_string(o.epochs));
      const int64_t b0 = b * batch, nb = std::min(batch, n_train - b0);
      parallel_chunks(o.threads, nb, kRowChunk, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) {
          const T* src = data + idx[static_cast<size_t>(b0 + r)] * dim;
          std::copy(src, src + dim, x.begin() + r * dim);
        }
      });
      loss_sum += trainer.step(x.data(), nb) * static_cast<double>(nb);
      if (o.on_batch) o.on_batch(b + 1, batches);
    }
    AeEpochReport rep;
    rep.epoch = epoch;
    rep.epochs = o.epochs;
    rep.loss = loss_sum / static_cast<double>(n_train);
    rep.val_loss = std::numeric_limits<double>::quiet_NaN();
    if (n_val > 0) {
      infer(net, data + n_train * dim, n_val, o.threads, errors.data(), -1, nullptr);
      double s = 0;
      for (double e : errors) s += e;
      rep.val_loss = s / static_cast<double>(n_val);
    }
    history.push_back(rep);
    if (o.on_epoch) o.on_epoch(rep);
  }
  return history;
}

template std::vector<AeEpochReport> train_network<float>(Network<float>&, const float*, int64_t, const AeTrainOptions&,
                                                         const OrderFn&);
template std::vector<AeEpochReport> train_network<double>(Network<double>&, const double*, int64_t,
                                                          const AeTrainOptions&, const OrderFn&);

}  // namespace ae

namespace {

constexpr const char* kArchitecture = "asdcap-ae";
constexpr const char* kPrefix = "asdcap-ae.";
constexpr int kCodeLayer = 4;  // the Dense 8 layer: its BatchNorm + ReLU output is the bottleneck code

std::string exact(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

double parse_double(const std::string& s, const std::string& what) {
  if (s == "nan") return std::numeric_limits<double>::quiet_NaN();
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(s, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != s.size() || s.empty()) throw ModelError(what + " is not a number: '" + s + "'");
  return v;
}

}  // namespace

AeModel::AeModel(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
AeModel::AeModel(AeModel&&) noexcept = default;
AeModel& AeModel::operator=(AeModel&&) noexcept = default;
AeModel::~AeModel() = default;

const AeModelInfo& AeModel::info() const { return impl_->info; }

AeModel AeModel::train(const float* vectors, int64_t rows, const AeTrainOptions& o, AeModelInfo info) {
  if (o.epochs < 1) throw InvalidArgument("autoencoder training: epochs must be at least 1");
  if (o.batch_size < 1) throw InvalidArgument("autoencoder training: batch size must be at least 1");
  if (!(o.learning_rate > 0) || !std::isfinite(o.learning_rate))
    throw InvalidArgument("autoencoder training: the learning rate must be a positive number");
  if (!(o.validation_split >= 0 && o.validation_split < 1))
    throw InvalidArgument("autoencoder training: validation split must be in [0, 1)");
  const int64_t n_train = ae::training_rows(rows, o.validation_split);
  if (n_train < 2)
    throw Error("autoencoder training: " + std::to_string(rows) + " vectors leave " + std::to_string(n_train) +
                " for training; at least 2 are needed");
  auto impl = std::make_unique<Impl>();
  impl->net.init_glorot(o.seed);
  const std::vector<AeEpochReport> history = ae::train_network(
      impl->net, vectors, rows, o, [&](int epoch, int64_t n) { return ae::epoch_order(o.seed, epoch, n); });
  AeModelInfo& i = info;
  i.vectors = rows;
  i.train_vectors = n_train;
  i.val_vectors = rows - n_train;
  i.features = AeFeatureSettings{};
  i.epochs = static_cast<int>(history.size());
  i.batch_size = o.batch_size;
  i.learning_rate = o.learning_rate;
  i.seed = o.seed;
  i.validation_split = o.validation_split;
  i.final_loss = history.back().loss;
  i.final_val_loss = history.back().val_loss;
  i.training_sha256 = sha256_hex(vectors, static_cast<size_t>(rows) * kAeVectorDim * sizeof(float));
  i.backend_version = kAeBackendVersion;
  impl->info = std::move(i);
  return AeModel(std::move(impl));
}

std::vector<double> AeModel::errors(const float* vectors, int64_t rows, int threads) const {
  std::vector<double> e(static_cast<size_t>(std::max<int64_t>(rows, 0)));
  if (rows > 0) ae::infer(impl_->net, vectors, rows, threads, e.data(), -1, nullptr);
  return e;
}

double AeModel::score(const float* vectors, int64_t rows, int threads) const {
  if (rows < 1) throw Error("autoencoder score: no feature vectors");
  const std::vector<double> e = errors(vectors, rows, threads);
  double s = 0;
  for (double v : e) s += v;
  return s / static_cast<double>(rows);
}

std::vector<float> AeModel::embed(const float* vectors, int64_t rows, int threads) const {
  if (rows < 1) throw Error("autoencoder embedding: no feature vectors");
  std::vector<double> code;
  ae::infer(impl_->net, vectors, rows, threads, nullptr, kCodeLayer, &code);
  return std::vector<float>(code.begin(), code.end());
}

void AeModel::save(const std::string& path) const {
  const ae::Network<float>& net = impl_->net;
  const AeModelInfo& i = impl_->info;
  GgufWriter w;
  const std::string p = kPrefix;
  w.set_string("general.architecture", kArchitecture);
  w.set_string("general.name", "asdcap autoencoder" + (i.machine_type.empty() ? "" : " (" + i.machine_type + ")"));
  w.set_int(p + "backend_version", i.backend_version);
  w.set_int_array(p + "widths", std::vector<int64_t>(net.widths.begin(), net.widths.end()));
  w.set_string(p + "machine_type", i.machine_type);
  w.set_int(p + "clips", i.clips);
  w.set_int(p + "vectors", i.vectors);
  w.set_int(p + "train_vectors", i.train_vectors);
  w.set_int(p + "val_vectors", i.val_vectors);
  w.set_int(p + "sample_rate", i.sample_rate);
  w.set_int(p + "features.n_fft", i.features.n_fft);
  w.set_int(p + "features.hop", i.features.hop);
  w.set_int(p + "features.n_mels", i.features.n_mels);
  w.set_int(p + "features.frames", i.features.frames);
  w.set_int(p + "train.epochs", i.epochs);
  w.set_int(p + "train.batch_size", i.batch_size);
  // Doubles and the 64-bit seed as decimal strings: they round-trip exactly.
  w.set_string(p + "train.learning_rate", exact(i.learning_rate));
  w.set_string(p + "train.seed", std::to_string(i.seed));
  w.set_string(p + "train.validation_split", exact(i.validation_split));
  w.set_string(p + "train.loss", exact(i.final_loss));
  w.set_string(p + "train.val_loss", std::isnan(i.final_val_loss) ? "nan" : exact(i.final_val_loss));
  w.set_string(p + "training.sha256", i.training_sha256);
  w.set_string(p + "training.key", i.training_key);
  for (int l = 0; l < net.layers(); ++l) {
    const size_t u = static_cast<size_t>(l);
    const int64_t in = net.widths[u], out = net.widths[u + 1];
    const std::string d = "dense." + std::to_string(l) + ".", b = "bn." + std::to_string(l) + ".";
    const size_t vb = static_cast<size_t>(out) * sizeof(float);
    w.add_tensor(d + "kernel", DType::F32, {in, out}, net.kernel(l), static_cast<size_t>(in) * vb);
    w.add_tensor(d + "bias", DType::F32, {out}, net.bias(l), vb);
    if (net.has_bn(l)) {
      const size_t at = static_cast<size_t>(net.stat_at[u]);
      w.add_tensor(b + "gamma", DType::F32, {out}, net.gamma(l), vb);
      w.add_tensor(b + "beta", DType::F32, {out}, net.beta(l), vb);
      w.add_tensor(b + "moving_mean", DType::F32, {out}, net.moving_mean.data() + at, vb);
      w.add_tensor(b + "moving_variance", DType::F32, {out}, net.moving_var.data() + at, vb);
    }
  }
  w.write_file(path);
}

AeModel AeModel::load(const std::string& path) {
  const modelio::MappedFile file(path);
  const GgufView g = GgufView::parse(file.data(), file.size(), path);
  auto value = [&](const std::string& key, GgufValue::Kind kind) -> const GgufValue& {
    auto it = g.kv.find(key);
    if (it == g.kv.end()) throw ModelError(path + ": autoencoder model file without " + key);
    if (it->second.kind != kind) throw ModelError(path + ": " + key + " has the wrong type");
    return it->second;
  };
  const std::string arch = value("general.architecture", GgufValue::Kind::String).s;
  if (arch != kArchitecture) throw ModelError(path + ": GGUF architecture '" + arch + "' is not " + kArchitecture);
  const std::string p = kPrefix;
  auto integer = [&](const std::string& k) { return value(p + k, GgufValue::Kind::Int).i; };
  auto text = [&](const std::string& k) { return value(p + k, GgufValue::Kind::String).s; };
  auto real = [&](const std::string& k) { return parse_double(text(k), path + ": " + p + k); };

  auto impl_ptr = std::make_unique<Impl>();
  Impl& impl = *impl_ptr;
  AeModelInfo& i = impl.info;
  i.backend_version = static_cast<int>(integer("backend_version"));
  if (i.backend_version != kAeBackendVersion)
    throw ModelError(path + ": autoencoder backend version " + std::to_string(i.backend_version) +
                     ", this asdcap reads version " + std::to_string(kAeBackendVersion));
  const std::vector<int64_t> widths = value(p + "widths", GgufValue::Kind::IntArray).ints;
  if (widths != std::vector<int64_t>{kAeVectorDim, 128, 128, 128, 128, 8, 128, 128, 128, 128, kAeVectorDim})
    throw ModelError(path + ": autoencoder layer widths are not the baseline's 640-128x4-8-128x4-640");
  i.machine_type = text("machine_type");
  i.clips = integer("clips");
  i.vectors = integer("vectors");
  i.train_vectors = integer("train_vectors");
  i.val_vectors = integer("val_vectors");
  i.sample_rate = static_cast<int>(integer("sample_rate"));
  i.features.n_fft = static_cast<int>(integer("features.n_fft"));
  i.features.hop = static_cast<int>(integer("features.hop"));
  i.features.n_mels = static_cast<int>(integer("features.n_mels"));
  i.features.frames = static_cast<int>(integer("features.frames"));
  const AeFeatureSettings def;
  if (i.features.n_fft != def.n_fft || i.features.hop != def.hop || i.features.n_mels != def.n_mels ||
      i.features.frames != def.frames)
    throw ModelError(
        path + ": autoencoder feature settings differ from the baseline's (n_fft 1024, hop 512, 128 mels, 5 frames)");
  i.epochs = static_cast<int>(integer("train.epochs"));
  i.batch_size = static_cast<int>(integer("train.batch_size"));
  i.learning_rate = real("train.learning_rate");
  const std::string seed = text("train.seed");
  try {
    size_t used = 0;
    i.seed = std::stoull(seed, &used);
    if (used != seed.size()) throw std::invalid_argument(seed);
  } catch (const std::exception&) {
    throw ModelError(path + ": " + p + "train.seed is not an unsigned integer: '" + seed + "'");
  }
  i.validation_split = real("train.validation_split");
  i.final_loss = real("train.loss");
  i.final_val_loss = real("train.val_loss");
  i.training_sha256 = text("training.sha256");
  i.training_key = text("training.key");

  ae::Network<float>& net = impl.net;
  std::map<std::string, const GgufTensor*> by_name;
  for (const auto& t : g.tensors) by_name[t.name] = &t;
  auto copy = [&](const std::string& name, std::vector<int64_t> shape, float* dst) {
    auto it = by_name.find(name);
    if (it == by_name.end()) throw ModelError(path + ": autoencoder model file without tensor " + name);
    const GgufTensor& t = *it->second;
    if (t.dtype != DType::F32 || t.shape != shape)
      throw ModelError(path + ": tensor " + name + " is not f32 of the expected shape");
    std::memcpy(dst, file.data() + t.offset, t.nbytes);
  };
  for (int l = 0; l < net.layers(); ++l) {
    const size_t u = static_cast<size_t>(l);
    const int64_t in = net.widths[u], out = net.widths[u + 1];
    const std::string d = "dense." + std::to_string(l) + ".", b = "bn." + std::to_string(l) + ".";
    copy(d + "kernel", {in, out}, net.kernel(l));
    copy(d + "bias", {out}, net.bias(l));
    if (net.has_bn(l)) {
      const size_t at = static_cast<size_t>(net.stat_at[u]);
      copy(b + "gamma", {out}, net.gamma(l));
      copy(b + "beta", {out}, net.beta(l));
      copy(b + "moving_mean", {out}, net.moving_mean.data() + at);
      copy(b + "moving_variance", {out}, net.moving_var.data() + at);
    }
  }
  for (float v : net.params)
    if (!std::isfinite(v)) throw ModelError(path + ": autoencoder weights contain NaN or infinity");
  return AeModel(std::move(impl_ptr));
}

bool is_ae_model_file(const std::string& path) {
  try {
    const modelio::MappedFile file(path);
    const GgufView g = GgufView::parse(file.data(), file.size(), path);
    auto it = g.kv.find("general.architecture");
    return it != g.kv.end() && it->second.kind == GgufValue::Kind::String && it->second.s == kArchitecture;
  } catch (const Error&) {
    return false;
  }
}

std::string ae_training_key(std::vector<std::pair<std::string, std::string>> clips, const AeTrainOptions& o) {
  std::sort(clips.begin(), clips.end());
  const AeFeatureSettings f;
  std::string text = "asdcap-ae training\nbackend_version " + std::to_string(kAeBackendVersion) + "\nfeatures " +
                     std::to_string(f.n_fft) + " " + std::to_string(f.hop) + " " + std::to_string(f.n_mels) + " " +
                     std::to_string(f.frames) + "\nepochs " + std::to_string(o.epochs) + "\nbatch_size " +
                     std::to_string(o.batch_size) + "\nlearning_rate " + exact(o.learning_rate) + "\nseed " +
                     std::to_string(o.seed) + "\nvalidation_split " + exact(o.validation_split) + "\nclips " +
                     std::to_string(clips.size()) + "\n";
  // Lengths first: names may hold any character, and the text must not be ambiguous.
  for (const auto& [name, sha] : clips)
    text += std::to_string(name.size()) + ":" + name + " " + std::to_string(sha.size()) + ":" + sha + "\n";
  return sha256_hex(text.data(), text.size());
}

std::vector<std::string> describe(const AeModelInfo& i) {
  auto num = [](double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.6g", v);
    return std::string(buf);
  };
  std::vector<std::string> lines;
  lines.push_back("architecture: asdcap-ae (DCASE 2020 autoencoder baseline, backend version " +
                  std::to_string(i.backend_version) + ")");
  lines.push_back("network: 640-128x4-8-128x4-640, BatchNorm + ReLU after every hidden Dense layer");
  lines.push_back("machine type: " + (i.machine_type.empty() ? std::string("(not given)") : i.machine_type));
  lines.push_back("training set: " + std::to_string(i.clips) + " clips, " + std::to_string(i.vectors) + " vectors (" +
                  std::to_string(i.train_vectors) + " trained on, " + std::to_string(i.val_vectors) +
                  " validation), sha256 " + i.training_sha256);
  if (!i.training_key.empty()) lines.push_back("training key: " + i.training_key);
  lines.push_back("features: " + (i.sample_rate > 0 ? std::to_string(i.sample_rate) + " Hz, " : std::string()) +
                  "n_fft " + std::to_string(i.features.n_fft) + ", hop " + std::to_string(i.features.hop) + ", " +
                  std::to_string(i.features.n_mels) + " mels, " + std::to_string(i.features.frames) +
                  " frames per vector");
  lines.push_back("training: " + std::to_string(i.epochs) + " epochs, batch " + std::to_string(i.batch_size) +
                  ", learning rate " + num(i.learning_rate) + ", seed " + std::to_string(i.seed) +
                  ", validation split " + num(i.validation_split));
  lines.push_back("final loss: " + num(i.final_loss) + " (validation " +
                  (std::isnan(i.final_val_loss) ? std::string("none") : num(i.final_val_loss)) + ")");
  return lines;
}

}  // namespace asdcap
