// The "laion" embedding backend for asdcap detect: LAION-CLAP audio embeddings from a model file.
#include "asdcap/clap.hpp"
#include "asdcap/error.hpp"
#include "asdcap/laion.hpp"

namespace asdcap {

namespace {

class LaionBackend final : public EmbeddingBackend {
 public:
  static constexpr const char* kFrontEndVersion = "1";
  explicit LaionBackend(const BackendOptions& options) {
    if (options.model_path.empty()) throw InvalidArgument("the laion backend needs a model file (no model path given)");
    model_ = LaionModel::open(options.model_path, options.threads);
  }

  std::string name() const override { return "laion"; }
  // Bump kFrontEndVersion whenever the int16 / window / log-mel / projection maths change: cached
  // embeddings follow the identity.
  std::string identity() const override {
    return std::string("laion/") + kFrontEndVersion + "/" + htsat_maths_version() + "/" + model_->identity();
  }
  int dim() const override { return model_->config().joint_dim; }
  int sample_rate() const override { return model_->config().sample_rate; }

  // laion_clap's L2-normalised audio embedding of the clip's 10-s window; with several windows
  // ("cover") their mean.
  std::vector<float> embed(const std::vector<float>& signal48k, const CropPolicy& crop) override {
    if (signal48k.empty()) throw FormatError("laion backend: empty signal");
    return model_->encode_clip(signal48k, crop).embedding;
  }

 private:
  std::shared_ptr<const LaionModel> model_;
};

}  // namespace

std::unique_ptr<EmbeddingBackend> make_laion_backend(const BackendOptions& options) {
  return std::make_unique<LaionBackend>(options);
}

}  // namespace asdcap
