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
    nn::set_threads(options.threads);
    model_ = ModelFile::open(options.model_path);
    encoder_ = std::make_unique<AudioEncoder>(model_, "audio.");
  }

  std::string name() const override { return "msclap"; }
  std::string identity() const override {
    return std::string("msclap/") + kHtsatMathsVersion + "/" + model_->identity();
  }
  int dim() const override { return static_cast<int>(encoder_->dim()); }

  // Averages the projected window embeddings (msclap's own embedding space: what k-NN sees for a
  // single window), not L2-normalised ones, so that one window gives exactly msclap's vector.
  std::vector<float> embed(const std::vector<float>& signal44k, const CropPolicy& crop) override {
    if (signal44k.empty()) throw FormatError("msclap backend: empty signal");
    const auto starts = window_starts(static_cast<int64_t>(signal44k.size()), crop);
    std::vector<std::vector<float>> windows;
    windows.reserve(starts.size());
    for (int64_t s : starts) windows.push_back(window_at(signal44k, s));
    std::vector<const float*> ptrs;
    for (auto& w : windows) ptrs.push_back(w.data());
    const auto outs = encoder_->encode(ptrs);
    std::vector<double> sum(static_cast<size_t>(encoder_->dim()), 0.0);
    for (const auto& o : outs)
      for (size_t d = 0; d < sum.size(); ++d) sum[d] += o.embedding[d];
    std::vector<float> mean(sum.size());
    for (size_t d = 0; d < sum.size(); ++d) mean[d] = static_cast<float>(sum[d] / static_cast<double>(outs.size()));
    return mean;
  }

 private:
  std::shared_ptr<const ModelFile> model_;
  std::unique_ptr<AudioEncoder> encoder_;
};

}  // namespace

std::unique_ptr<EmbeddingBackend> make_msclap_backend(const BackendOptions& options) {
  return std::make_unique<MsclapBackend>(options);
}

}  // namespace asdcap
