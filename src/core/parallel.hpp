// The one threading model of the library: OpenMP worksharing behind two functions, with the thread
// count passed by the caller on every call (no process-wide setting). A parallel region entered
// from inside another one runs on the calling thread, so nested calls never oversubscribe the
// cores: a stage that spreads clips over threads gets serial kernels inside each clip.
#pragma once
#include <cstdint>
#include <functional>

namespace asdcap {

// What a `threads` parameter of 0 means: all cores of this machine.
int resolve_threads(int requested);

// True inside a parallel region started by parallel_for / parallel_chunks (or any OpenMP region).
bool in_parallel_region();

enum class Schedule {
  kDynamic,  // chunks go to whichever thread is free (uneven work: clips of different lengths)
  kStatic    // thread i gets the i-th contiguous share of the chunks (passes over the same rows
             // then find them in the cache of the core that wrote them)
};

// Calls fn(begin, end) for consecutive chunks of [0, count) of `grain` items (the last may be
// shorter) on up to resolve_threads(threads) threads. Chunk boundaries depend only on count and
// grain, never on the thread count. fn must not throw (use parallel_for for work that may).
void parallel_chunks(int threads, int64_t count, int64_t grain, const std::function<void(int64_t, int64_t)>& fn,
                     Schedule schedule = Schedule::kDynamic);

// Calls fn(i) for every i in [0, count) on up to resolve_threads(threads) threads, items handed out
// one at a time. Every item runs even when another throws; the exception of the lowest i is
// rethrown once all items are done.
void parallel_for(int threads, int64_t count, const std::function<void(int64_t)>& fn);

}  // namespace asdcap
