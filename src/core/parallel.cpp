#include "core/parallel.hpp"

#include <omp.h>

#include <algorithm>
#include <exception>
#include <vector>

namespace asdcap {

int resolve_threads(int requested) { return requested > 0 ? requested : std::max(1, omp_get_num_procs()); }

bool in_parallel_region() { return omp_in_parallel() != 0; }

void parallel_chunks(int threads, int64_t count, int64_t grain, const std::function<void(int64_t, int64_t)>& fn,
                     Schedule schedule) {
  if (count <= 0) return;
  grain = std::max<int64_t>(1, grain);
  const int64_t chunks = (count + grain - 1) / grain;
  const int t = static_cast<int>(std::min<int64_t>(resolve_threads(threads), chunks));
  if (t <= 1 || omp_in_parallel()) {
    for (int64_t c = 0; c < chunks; ++c) fn(c * grain, std::min(count, (c + 1) * grain));
    return;
  }
  if (schedule == Schedule::kStatic) {
#pragma omp parallel for num_threads(t) schedule(static)
    for (int64_t c = 0; c < chunks; ++c) fn(c * grain, std::min(count, (c + 1) * grain));
  } else {
#pragma omp parallel for num_threads(t) schedule(dynamic, 1)
    for (int64_t c = 0; c < chunks; ++c) fn(c * grain, std::min(count, (c + 1) * grain));
  }
}

void parallel_for(int threads, int64_t count, const std::function<void(int64_t)>& fn) {
  std::vector<std::exception_ptr> errors(static_cast<size_t>(std::max<int64_t>(count, 0)));
  parallel_chunks(threads, count, 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      try {
        fn(i);
      } catch (...) {
        errors[static_cast<size_t>(i)] = std::current_exception();
      }
    }
  });
  for (const auto& e : errors)
    if (e) std::rethrow_exception(e);
}

}  // namespace asdcap
