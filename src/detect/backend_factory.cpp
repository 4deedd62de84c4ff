#include <algorithm>

#include "asdcap/audio.hpp"
#include "asdcap/backend.hpp"
#include "asdcap/clap.hpp"
#include "asdcap/error.hpp"
#include "asdcap/laion.hpp"
#include "asdcap/panns.hpp"
#include "detect/acoustic.hpp"
#include "detect/machine_scorer.hpp"
#include "modelio/gguf.hpp"
#include "modelio/mapped_file.hpp"

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
  // A fault moves a few of the 111 standardised features far (bursts, sidebands, a modulation);
  // under the Euclidean distance the noise of the many others dilutes them (docs/detection.md).
  int distance_order() const override { return 4; }
  bool thread_safe_embed() const override { return true; }  // no state: clips embed in parallel
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

// The backends that run a model file, by the file's GGUF architecture.
struct ModelBackend {
  const char* architecture;
  const char* backend;
  std::unique_ptr<EmbeddingBackend> (*make)(const BackendOptions&);
};
const ModelBackend kModelBackends[] = {
    {"asdcap-msclap", "msclap", make_msclap_backend},
    {"asdcap-panns", "panns", make_panns_backend},
    {"asdcap-laion", "laion", make_laion_backend},
};

std::string model_file_architecture(const std::string& path) {
  const modelio::MappedFile file(path);
  const std::string arch = GgufView::architecture(file.data(), file.size(), path);
  if (arch.empty()) throw ModelError(path + ": GGUF file without general.architecture: not an asdcap model");
  return arch;
}

}  // namespace

const std::vector<std::string>& backend_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> n = {"acoustic", "ae"};
    for (const auto& m : kModelBackends) n.emplace_back(m.backend);
    return n;
  }();
  return names;
}

std::string backend_for_model_file(const std::string& path) {
  const std::string arch = model_file_architecture(path);
  for (const auto& m : kModelBackends)
    if (arch == m.architecture) return m.backend;
  throw ModelError(path + ": no embedding backend runs GGUF architecture '" + arch + "'");
}

std::unique_ptr<EmbeddingBackend> make_backend(const std::string& name, const BackendOptions& options) {
  if (name == "acoustic") return std::make_unique<AcousticBackend>(options.threads);
  if (name == "ae") return make_ae_backend(options);
  for (const auto& m : kModelBackends) {
    if (name != m.backend) continue;
    // A model file made for another backend: one line naming the file and the backend it is for.
    if (!options.model_path.empty()) {
      const std::string runs = backend_for_model_file(options.model_path);
      if (runs != name)
        throw ModelError(options.model_path + ": a " + runs + " model file, not one for the " + name +
                         " backend (use --backend " + runs + ", or leave --backend out)");
    }
    return m.make(options);
  }
  std::string expected;
  for (const auto& n : backend_names()) expected += (expected.empty() ? "" : ", ") + n;
  throw InvalidArgument("unknown embedding backend '" + name + "' (expected " + expected + ")");
}

}  // namespace asdcap
