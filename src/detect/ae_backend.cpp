// The "ae" backend: the DCASE 2020 autoencoder baseline (include/asdcap/ae.hpp) as a detector. Per
// machine type it trains one model on the normal training clips of all its IDs pooled (or loads it
// from the run's model cache), scores every clip by its mean reconstruction error, and embeds it
// by its mean bottleneck code for the neighbour search. docs/ae.md, "In asdcap detect".
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <new>
#include <optional>

#include "asdcap/ae.hpp"
#include "asdcap/error.hpp"
#include "core/files.hpp"
#include "core/parallel.hpp"
#include "core/progress.hpp"
#include "detect/machine_scorer.hpp"

namespace asdcap {
namespace fs = std::filesystem;

namespace {

constexpr double kValidationSplit = 0.1;  // Keras's validation_split of the baseline

// The shortest decimal that reads back as `v`.
std::string shortest(double v) {
  char buf[40];
  for (int digits = 1; digits <= 17; ++digits) {
    std::snprintf(buf, sizeof buf, "%.*g", digits, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

// A clip's feature vectors, or why it has none.
struct ClipVectors {
  AeClipFeatures features;
  const float* data = nullptr;  // its rows: in `features`, or in the training matrix once moved there
  std::string sha256, error;
};

class AeBackend final : public EmbeddingBackend, public MachineScorer {
 public:
  explicit AeBackend(const BackendOptions& options) : options_(options) {
    const TrainingOptions& t = options.training;
    if (t.epochs < 1) throw InvalidArgument("ae backend: epochs must be at least 1");
    if (t.batch_size < 1) throw InvalidArgument("ae backend: the batch size must be at least 1");
    if (!(t.learning_rate > 0) || !std::isfinite(t.learning_rate))
      throw InvalidArgument("ae backend: the learning rate must be a positive number");
  }
  std::string name() const override { return "ae"; }
  // The backend version and every training setting: run.json records them.
  std::string identity() const override {
    const TrainingOptions& t = options_.training;
    return "ae/v" + std::to_string(kAeBackendVersion) + " epochs=" + std::to_string(t.epochs) +
           " batch=" + std::to_string(t.batch_size) + " lr=" + shortest(t.learning_rate) +
           " seed=" + std::to_string(t.seed) + " validation=" + shortest(kValidationSplit);
  }
  int dim() const override { return AeModel::kEmbeddingDim; }
  int sample_rate() const override { return 0; }  // the clip's own rate, as the baseline
  std::vector<float> embed(const std::vector<float>&, const CropPolicy&) override {
    throw InvalidArgument(
        "ae backend: clips are embedded by the model of their machine type; detection trains it (machine_scorer)");
  }
  MachineScorer* machine_scorer() override { return this; }
  MachineScores score_machine(const MachineClips& clips, const MachineScorerContext& context) override;

 private:
  bool cancelled() const { return options_.cancelled && options_.cancelled(); }
  AeTrainOptions train_options(int threads) const {
    AeTrainOptions o;
    o.epochs = options_.training.epochs;
    o.batch_size = options_.training.batch_size;
    o.learning_rate = options_.training.learning_rate;
    o.seed = options_.training.seed;
    o.validation_split = kValidationSplit;
    o.threads = threads;
    o.cancelled = options_.cancelled;
    return o;
  }
  // Decodes the clips and computes their feature vectors in parallel (a clip that fails gets its
  // error); then every clip at another sample rate than `rate` (0: the first good clip's) fails.
  std::vector<ClipVectors> read_clips(const std::vector<const Clip*>& clips, const std::string& label, bool hash,
                                      int& rate, const MachineScorerContext& context) const;
  // The model for these training clips: from the cache when a usable one is there, else trained
  // and saved there. `trained` says which.
  // Training moves the clips' vectors into `matrix`.
  AeModel model_for(const std::string& machine, const std::vector<const Clip*>& train, std::vector<ClipVectors>& vec,
                    std::vector<float>& matrix, int rate, const MachineScorerContext& context, bool& trained) const;

  BackendOptions options_;
};

std::vector<ClipVectors> AeBackend::read_clips(const std::vector<const Clip*>& clips, const std::string& label,
                                               bool hash, int& rate, const MachineScorerContext& context) const {
  std::vector<ClipVectors> out(clips.size());
  std::vector<std::string> errors;
  context.read(
      clips, label,
      [&](size_t i, const DecodedAudio& audio) {
        ClipVectors& v = out[i];
        if (hash) v.sha256 = sha256_file(clips[i]->path);
        v.features = ae_clip_features(audio);
        v.data = v.features.data.data();
      },
      errors);
  for (size_t i = 0; i < out.size(); ++i)
    if (!errors[i].empty()) {
      out[i] = ClipVectors{};
      out[i].error = std::move(errors[i]);
    }
  if (cancelled()) throw AeCancelled("detection cancelled while reading the clips");
  for (size_t i = 0; i < out.size(); ++i) {
    if (!out[i].error.empty()) continue;
    if (rate == 0) rate = out[i].features.sample_rate;
    if (out[i].features.sample_rate != rate) {
      out[i].error = clips[i]->path + ": sampled at " + std::to_string(out[i].features.sample_rate) +
                     " Hz, the model of " + clips[i]->machine + " at " + std::to_string(rate) +
                     " Hz (the ae backend takes one sample rate per machine type)";
      out[i].features = {};
      out[i].data = nullptr;
    }
  }
  return out;
}

AeModel AeBackend::model_for(const std::string& machine, const std::vector<const Clip*>& train,
                             std::vector<ClipVectors>& vec, std::vector<float>& matrix, int rate,
                             const MachineScorerContext& context, bool& trained) const {
  std::vector<std::pair<std::string, std::string>> named;
  int64_t rows = 0;
  for (size_t i = 0; i < train.size(); ++i)
    if (vec[i].error.empty()) {
      named.emplace_back(train[i]->rel, vec[i].sha256);
      rows += vec[i].features.rows;
    }
  AeTrainOptions o = train_options(context.threads);
  const std::string key = ae_training_key(named, o);
  const fs::path file = fs::path(context.cache_dir) / "ae-models" / (machine + "." + key.substr(0, 16) + ".gguf");
  std::error_code ec;
  if (fs::exists(file, ec)) {
    std::string problem;
    try {
      AeModel cached = AeModel::load(file.string());
      if (cached.info().training_key == key) {
        trained = false;
        if (!context.quiet)
          std::fprintf(stderr, "asdcap detect: ae model of %s from %s\n", machine.c_str(), file.c_str());
        return cached;
      }
      problem = "it was trained on another training set";
    } catch (const Error& e) {
      problem = e.what();
    }
    if (!context.quiet)
      std::fprintf(stderr, "asdcap detect: cached ae model %s is not usable (%s); training it again\n", file.c_str(),
                   problem.c_str());
  }

  // The training clips' vectors one after the other, in the clips' order (by path): the baseline's
  // validation split holds out the last 10 % of them.
  matrix.assign(static_cast<size_t>(rows) * kAeVectorDim, 0.0f);
  size_t at = 0;
  for (auto& v : vec)
    if (v.error.empty()) {
      std::copy(v.features.data.begin(), v.features.data.end(), matrix.begin() + static_cast<std::ptrdiff_t>(at));
      v.data = matrix.data() + at;
      at += v.features.data.size();
      std::vector<float>().swap(v.features.data);
    }
  const auto n_train = static_cast<int64_t>(static_cast<double>(rows) * (1.0 - o.validation_split));
  const int64_t batches = (n_train + o.batch_size - 1) / std::max(o.batch_size, 1);
  if (!context.quiet)
    std::fprintf(stderr, "asdcap detect: training the ae model of %s: %zu clips, %lld vectors, %d epochs\n",
                 machine.c_str(), named.size(), static_cast<long long>(rows), o.epochs);
  AeEpochReport last;
  AeModelInfo info;
  info.machine_type = machine;
  info.clips = static_cast<int64_t>(named.size());
  info.sample_rate = rate;
  info.training_key = key;
  AeModel model = [&] {
    Progress progress("ae " + machine, std::max<int64_t>(batches, 1) * o.epochs);
    o.on_batch = [&](int64_t, int64_t) { progress.tick(); };
    o.on_epoch = [&](const AeEpochReport& r) {
      last = r;
      char label[64];
      std::snprintf(label, sizeof label, "%d/%d loss %.4g", r.epoch, r.epochs, r.loss);
      progress.set_label(label);
    };
    return AeModel::train(matrix.data(), rows, o, info);
  }();  // the bar's line is finished here
  fs::create_directories(file.parent_path(), ec);
  model.save(file.string());
  trained = true;
  if (!context.quiet)
    std::fprintf(stderr, "asdcap detect: ae model of %s trained (loss %.6g, validation loss %.6g) -> %s\n",
                 machine.c_str(), last.loss, last.val_loss, file.c_str());
  return model;
}

MachineScores AeBackend::score_machine(const MachineClips& mc, const MachineScorerContext& context) {
  if (context.channels != ChannelMode::Mean)
    throw InvalidArgument("the ae backend averages a clip's channels (--channels mean), as the baseline");
  MachineScores out;
  int rate = 0;
  std::vector<ClipVectors> train = read_clips(mc.train, "ae read " + mc.machine, /*hash=*/true, rate, context);
  std::map<const Clip*, size_t> train_index;
  for (size_t i = 0; i < mc.train.size(); ++i) train_index[mc.train[i]] = i;
  const bool any = std::any_of(train.begin(), train.end(), [](const ClipVectors& v) { return v.error.empty(); });

  std::vector<float> matrix;
  std::optional<AeModel> model;
  std::string no_model = "no usable normal training clips for " + mc.machine;
  if (any) {
    try {
      bool trained = false;
      model.emplace(model_for(mc.machine, mc.train, train, matrix, rate, context, trained));
      (trained ? out.trained : out.cached) = true;
    } catch (const AeCancelled&) {
      throw;
    } catch (const IoError&) {
      throw;  // the model cache cannot be written
    } catch (const Error& e) {
      no_model = "no ae model for " + mc.machine + ": " + e.what();
    }
  }

  std::vector<const Clip*> others;
  std::map<const Clip*, size_t> other_index;
  for (const Clip* c : mc.clips)
    if (!train_index.count(c)) {
      other_index[c] = others.size();
      others.push_back(c);
    }
  std::vector<ClipVectors> test;
  if (model) test = read_clips(others, "ae test " + mc.machine, /*hash=*/false, rate, context);

  // Scores and embeddings; a clip's depend on its own vectors only.
  std::vector<std::pair<const Clip*, ClipVectors*>> todo;
  for (const Clip* c : mc.clips) {
    auto it = train_index.find(c);
    ClipVectors* v = nullptr;
    if (it != train_index.end()) {
      v = &train[it->second];
    } else if (model) {
      v = &test[other_index.at(c)];
    }
    if (!model) {
      out.failures[c] = v && !v->error.empty() ? v->error : no_model;
    } else if (!v->error.empty()) {
      out.failures[c] = v->error;
    } else {
      todo.emplace_back(c, v);
    }
  }
  std::vector<double> scores(todo.size());
  std::vector<std::vector<float>> embeddings(todo.size());
  parallel_for(context.threads, static_cast<int64_t>(todo.size()), [&](int64_t item) {
    const auto i = static_cast<size_t>(item);
    const ClipVectors& v = *todo[i].second;
    scores[i] = model->score(v.data, v.features.rows, 1);
    embeddings[i] = model->embed(v.data, v.features.rows, 1);
  });
  for (size_t i = 0; i < todo.size(); ++i) {
    out.scores[todo[i].first] = scores[i];
    out.embeddings[todo[i].first] = std::move(embeddings[i]);
  }
  return out;
}

}  // namespace

std::unique_ptr<EmbeddingBackend> make_ae_backend(const BackendOptions& options) {
  return std::make_unique<AeBackend>(options);
}

}  // namespace asdcap
