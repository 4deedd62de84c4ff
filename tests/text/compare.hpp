// Tolerance checks of the text/caption golden tests.
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <string>

namespace asdcap::testing_text {

struct VecDiff {
  double cosine = 0, max_abs = 0, norm = 0;
};

inline VecDiff diff(const float* got, const float* want, int64_t n) {
  double dot = 0, ng = 0, nw = 0, mx = 0;
  for (int64_t i = 0; i < n; ++i) {
    dot += double(got[i]) * want[i];
    ng += double(got[i]) * got[i];
    nw += double(want[i]) * want[i];
    mx = std::max(mx, std::fabs(double(got[i]) - want[i]));
  }
  return {dot / std::sqrt(ng * nw + 1e-300), mx, std::sqrt(nw)};
}

// The project-wide criterion for embeddings: cosine >= 0.99999 and max abs error <= 1e-4 * ||want||.
inline ::testing::AssertionResult close_vector(const float* got, const float* want, int64_t n, double rel = 1e-4,
                                               double min_cos = 0.99999) {
  const VecDiff d = diff(got, want, n);
  if (d.cosine >= min_cos && d.max_abs <= rel * d.norm) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "cosine " << d.cosine << ", max abs err " << d.max_abs << " vs norm "
                                       << d.norm << " (allowed " << rel * d.norm << ")";
}

}  // namespace asdcap::testing_text
