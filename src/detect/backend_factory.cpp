#include <algorithm>

#include "asdcap/audio.hpp"
#include "asdcap/backend.hpp"
#include "asdcap/clap.hpp"
#include "asdcap/error.hpp"
#include "detect/acoustic.hpp"

namespace asdcap {
namespace {

// Descriptor of each 7-s window the crop policy selects (see acoustic_features), averaged
// (WindowMean); a clip no longer than a window is described whole, not tiled (a seam and repeated
// seconds would show as modulation and bursts). `threads`: the log-mel's (serial when detection
// embeds clips in parallel).
class AcousticBackend final : public EmbeddingBackend {
 public:
  explicit AcousticBackend(int threads) : threads_(threads) {}
  std::string name() const override { return "acoustic"; }
  // Bump the version whenever the features' maths change: cached embeddings follow it.
  std::string identity() const override { return "acoustic/v2 logmel64+env dim=" + std::to_string(acoustic_dim()); }
  int dim() const override { return acoustic_dim(); }
  bool standardise_per_group() const override { return true; }  // levels in dB, rates, percentages...
  bool thread_safe_embed() const override { return true; }      // no state: clips embed in parallel
  std::vector<float> embed(const std::vector<float>& signal44k, const CropPolicy& crop) override {
    if (signal44k.empty()) throw FormatError("acoustic backend: empty signal");
    WindowMean mean;
    const auto windows = static_cast<int64_t>(signal44k.size()) <= kWindowSamples
                             ? std::vector<std::vector<float>>{signal44k}
                             : crop_windows(signal44k, crop);
    for (const auto& window : windows) {
      mean.add(acoustic_features(window.data(), static_cast<int64_t>(window.size()), threads_));
    }
    return mean.mean();
  }

 private:
  int threads_ = 0;
};

}  // namespace

const std::vector<std::string>& backend_names() {
  static const std::vector<std::string> names = {"acoustic", "msclap"};
  return names;
}

std::unique_ptr<EmbeddingBackend> make_backend(const std::string& name, const BackendOptions& options) {
  if (name == "acoustic") return std::make_unique<AcousticBackend>(options.threads);
  if (name == "msclap") return make_msclap_backend(options);
  throw InvalidArgument("unknown embedding backend '" + name + "' (expected acoustic or msclap)");
}

}  // namespace asdcap
