#include <algorithm>

#include "asdcap/acoustic.hpp"
#include "asdcap/audio.hpp"
#include "asdcap/backend.hpp"
#include "asdcap/clap.hpp"
#include "asdcap/error.hpp"

namespace asdcap {
namespace {

// Descriptor of each 7-s window the crop policy selects (see acoustic_features), averaged.
class AcousticBackend final : public EmbeddingBackend {
 public:
  std::string name() const override { return "acoustic"; }
  // Bump the version whenever the features' maths change: cached embeddings follow it.
  std::string identity() const override { return "acoustic/v1 logmel64 dim=" + std::to_string(acoustic_dim()); }
  int dim() const override { return acoustic_dim(); }
  bool standardise_per_group() const override { return true; }  // levels in dB, rates, percentages...
  bool thread_safe_embed() const override { return true; }       // no state: clips embed in parallel
  std::vector<float> embed(const std::vector<float>& signal44k, const CropPolicy& crop) override {
    if (signal44k.empty()) throw FormatError("acoustic backend: empty signal");
    auto starts = window_starts(static_cast<int64_t>(signal44k.size()), crop);
    std::vector<double> sum(static_cast<size_t>(dim()), 0.0);
    for (int64_t start : starts) {
      auto window = window_at(signal44k, start);
      auto mel = log_mel(window.data(), static_cast<int64_t>(window.size()));
      auto f = acoustic_features(mel.data(), static_cast<int64_t>(mel.size() / kMelBins));
      for (size_t i = 0; i < sum.size(); ++i) sum[i] += f[i];
    }
    std::vector<float> out(sum.size());
    for (size_t i = 0; i < sum.size(); ++i) out[i] = static_cast<float>(sum[i] / static_cast<double>(starts.size()));
    return out;
  }
};

}  // namespace

const std::vector<std::string>& backend_names() {
  static const std::vector<std::string> names = {"acoustic", "msclap"};
  return names;
}

std::unique_ptr<EmbeddingBackend> make_backend(const std::string& name, const BackendOptions& options) {
  if (name == "acoustic") return std::make_unique<AcousticBackend>();
  if (name == "msclap") return make_msclap_backend(options);
  throw InvalidArgument("unknown embedding backend '" + name + "' (expected acoustic or msclap)");
}

}  // namespace asdcap
