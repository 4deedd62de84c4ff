// Per-dimension z-scoring of embeddings against a machine's normal references, for backends whose
// dimensions have their own units (EmbeddingBackend::standardise_per_group). Shared by batch
// detection and the monitoring service so that both score a clip the same way.
#pragma once
#include <cstddef>
#include <vector>

namespace asdcap {

// The references' mean and standard deviation per dimension. A dimension that barely varies among
// the references gets its deviation floored at a tenth of the median one (and at least 1e-3), so it
// cannot dominate the distance; with no varying dimension at all the floor is 1.
class Standardisation {
 public:
  // refs: nr x dim, row-major; nr >= 1.
  static Standardisation fit(const std::vector<float>& refs, size_t nr, size_t dim);
  // Z-scores the n rows of m (n x dim) in place.
  void apply(std::vector<float>& m, size_t n) const;
  size_t dim() const { return mean_.size(); }

 private:
  std::vector<double> mean_, sd_;
};

// Fits on the references and applies the fit to the references and the test clips.
void standardise(std::vector<float>& refs, size_t nr, std::vector<float>& tests, size_t nt, size_t dim);

}  // namespace asdcap
