// The "msclap" embedding backend for asdcap detect: CLAP audio embeddings from a model file.
#include "asdcap/clap.hpp"
#include "asdcap/error.hpp"
#include "asdcap/nn.hpp"

namespace asdcap {

namespace {

class MsclapBackend final : public EmbeddingBackend {
 public:
  explicit MsclapBackend(const BackendOptions& options) {
    if (options.model_path.empty())
      throw InvalidArgument("the msclap backend needs a model file (no model path given)");
    model_ = ModelFile::open(options.model_path);
    encoder_ = std::make_unique<AudioEncoder>(model_, "audio.", AudioEncoderParams{options.threads});
  }

  std::string name() const override { return "msclap"; }
  std::string identity() const override {
    return std::string("msclap/") + htsat_maths_version() + "/" + model_->identity();
  }
  int dim() const override { return static_cast<int>(encoder_->dim()); }

  // The clip's embedding by encode_clip: the projected window embeddings averaged (msclap's own
  // embedding space, not L2-normalised), so that one window gives exactly msclap's vector.
  std::vector<float> embed(const std::vector<float>& signal44k, const CropPolicy& crop) override {
    if (signal44k.empty()) throw FormatError("msclap backend: empty signal");
    return encode_clip(*encoder_, signal44k, crop).embedding;
  }

 private:
  std::shared_ptr<const ModelFile> model_;
  std::unique_ptr<AudioEncoder> encoder_;
};

}  // namespace

std::unique_ptr<EmbeddingBackend> make_msclap_backend(const BackendOptions& options) {
  return std::make_unique<MsclapBackend>(options);
}

std::string htsat_maths_version() { return nn::kernel_set() == nn::KernelSet::kAvx512 ? "htsat-4-avx512" : "htsat-4"; }

}  // namespace asdcap
