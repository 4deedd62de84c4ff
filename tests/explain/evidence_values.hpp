// Evidence built by hand for the comparison and explainer tests.
#pragma once
#include <cstddef>

#include "asdcap/evidence.hpp"

namespace asdcap::test {

// A clip whose n feature values all equal v (no burst times, no profiles).
inline ClipEvidence with_values(size_t n, double v) {
  ClipEvidence e;
  e.values.assign(n, v);
  return e;
}

}  // namespace asdcap::test
