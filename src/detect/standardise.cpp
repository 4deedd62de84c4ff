#include "detect/standardise.hpp"

#include <algorithm>
#include <cmath>

namespace asdcap {

Standardisation Standardisation::fit(const std::vector<float>& refs, size_t nr, size_t dim) {
  Standardisation s;
  s.mean_.assign(dim, 0.0);
  s.sd_.assign(dim, 0.0);
  for (size_t i = 0; i < nr; ++i)
    for (size_t d = 0; d < dim; ++d) s.mean_[d] += refs[i * dim + d];
  for (auto& m : s.mean_) m /= static_cast<double>(nr);
  for (size_t i = 0; i < nr; ++i)
    for (size_t d = 0; d < dim; ++d) s.sd_[d] += std::pow(refs[i * dim + d] - s.mean_[d], 2);
  std::vector<double> positive;
  for (auto& sd : s.sd_) {
    sd = std::sqrt(sd / static_cast<double>(nr));
    if (sd > 0) positive.push_back(sd);
  }
  double floor = 1.0;
  if (!positive.empty()) {
    std::nth_element(positive.begin(), positive.begin() + positive.size() / 2, positive.end());
    floor = std::max(1e-3, 0.1 * positive[positive.size() / 2]);
  }
  for (auto& sd : s.sd_) sd = std::max(sd, floor);
  return s;
}

void Standardisation::apply(std::vector<float>& m, size_t n) const {
  const size_t dim = mean_.size();
  for (size_t i = 0; i < n; ++i)
    for (size_t d = 0; d < dim; ++d) m[i * dim + d] = static_cast<float>((m[i * dim + d] - mean_[d]) / sd_[d]);
}

void standardise(std::vector<float>& refs, size_t nr, std::vector<float>& tests, size_t nt, size_t dim) {
  const Standardisation s = Standardisation::fit(refs, nr, dim);
  s.apply(refs, nr);
  s.apply(tests, nt);
}

}  // namespace asdcap
