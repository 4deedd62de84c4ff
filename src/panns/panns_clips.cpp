// CNN14 on clips and audio files: the crop rule, `asdcap embed` / `asdcap tags` on files, and the
// "panns" embedding backend of `asdcap detect`.
#include "asdcap/audio.hpp"
#include "asdcap/backend.hpp"
#include "asdcap/error.hpp"
#include "asdcap/nn.hpp"
#include "asdcap/panns.hpp"
#include "core/files.hpp"
#include "core/parallel.hpp"

namespace asdcap {

namespace {

int64_t window_samples(const PannsConfig& c) { return int64_t{kPannsWindowSeconds} * c.sample_rate; }

// An empty file, or a whole clip shorter than CNN14's minimum, as an error naming the file. (The
// other policies take windows of 7 s, tiling shorter clips, so only "whole" can be too short.)
void check_signal(const PannsConfig& c, const std::vector<float>& signal, const CropPolicy& crop,
                  const std::string& path) {
  const auto n = static_cast<int64_t>(signal.size());
  if (n == 0) throw FormatError(path + ": no audio samples");
  if (crop.kind != CropPolicy::Kind::Whole || n >= c.min_samples()) return;
  throw FormatError(path + ": too short for PANNs " + c.variant + ": " + std::to_string(n) + " samples at " +
                    std::to_string(c.sample_rate) + " Hz, at least " + std::to_string(c.min_samples()) +
                    " needed with crop whole (the other crops tile a short clip to 7 s)");
}

class PannsBackend final : public EmbeddingBackend {
 public:
  explicit PannsBackend(const BackendOptions& options) : threads_(options.threads) {
    if (options.model_path.empty()) throw InvalidArgument("the panns backend needs a model file (no model path given)");
    model_ = PannsModel::open(options.model_path, options.threads);
  }

  std::string name() const override { return "panns"; }
  std::string identity() const override {
    return std::string("panns/") + panns_maths_version() + "/" + model_->identity();
  }
  int dim() const override { return model_->config().embedding_dim; }
  int sample_rate() const override { return model_->config().sample_rate; }
  CropPolicy default_crop() const override { return panns_default_crop(); }
  // One clip per thread beats CNN14's own parallelism over a dataset (docs/panns.md, "Detection").
  bool thread_safe_embed() const override { return true; }

  std::vector<float> embed(const std::vector<float>& signal, const CropPolicy& crop) override {
    if (signal.empty()) throw FormatError("panns backend: empty signal");
    return panns_clip(*model_, signal, crop, threads_).embedding;
  }

 private:
  std::shared_ptr<const PannsModel> model_;
  int threads_ = 0;
};

}  // namespace

CropPolicy panns_default_crop() {
  CropPolicy whole;
  whole.kind = CropPolicy::Kind::Whole;
  return whole;
}

PannsModel::Output panns_clip(const PannsModel& model, const std::vector<float>& signal, const CropPolicy& crop,
                              int threads) {
  WindowMean embedding, clipwise;
  for (const auto& window : crop_windows(signal, crop, window_samples(model.config()))) {
    const auto out = model.run(window, threads);
    embedding.add(out.embedding);
    clipwise.add(out.clipwise);
  }
  return {embedding.mean(), clipwise.mean()};
}

std::vector<PannsModel::Output> panns_files(const PannsModel& model, const std::vector<std::string>& paths,
                                            const CropPolicy& crop, ChannelMode channels, int threads,
                                            const std::function<void()>& on_file_done) {
  std::vector<PannsModel::Output> results(paths.size());
  // One file per thread (CNN14 then runs serially inside each); a single file gets every thread.
  parallel_for(threads, static_cast<int64_t>(paths.size()), [&](int64_t i) {
    const std::string& path = paths[static_cast<size_t>(i)];
    const auto signal = load_audio(path, model.config().sample_rate, channels);
    const std::string sha = crop.seeded_from_content() ? sha256_file(path) : "";
    const CropPolicy policy = resolve_clip_crop(crop, sha).policy;
    check_signal(model.config(), signal, policy, path);
    results[static_cast<size_t>(i)] = panns_clip(model, signal, policy, threads);
    if (on_file_done) on_file_done();
  });
  return results;
}

std::unique_ptr<EmbeddingBackend> make_panns_backend(const BackendOptions& options) {
  return std::make_unique<PannsBackend>(options);
}

std::string panns_maths_version() { return nn::kernel_set() == nn::KernelSet::kAvx512 ? "cnn14-2-avx512" : "cnn14-2"; }

}  // namespace asdcap
