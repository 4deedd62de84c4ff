// Training throughput of the DCASE 2020 autoencoder (640-128x4-8-128x4-640, batch 512).
//
// Reported per thread count: vectors/s of training steps (forward, loss, backward, Adam, moving
// statistics); GFLOP/s counting the GEMM work of a step (forward 2 B sum(in out), weight gradients
// the same, input gradients the same without the first layer: 1.40 MFLOP per vector); and `vs_sgemm`,
// that rate divided by OpenBLAS sgemm GFLOP/s measured in the same process with the same thread count
// on the network's largest GEMM (512 x 640 x 128, split by rows over the threads as the training
// splits it). Best-of on both sides, interleaved (the machine is shared).
//
//   build/bench/bench_ae --benchmark_counters_tabular=true
#include <benchmark/benchmark.h>
#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <vector>

#include "ae/network.hpp"
#include "core/parallel.hpp"

namespace {

using namespace asdcap;

double wall_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

constexpr int64_t kBatch = 512;

double step_flops(const ae::Network<float>& net) {
  double f = 0;
  for (int l = 0; l < net.layers(); ++l) {
    const double mn = double(net.widths[static_cast<size_t>(l)]) * net.widths[static_cast<size_t>(l) + 1];
    f += 2.0 * kBatch * mn * (l == 0 ? 2 : 3);  // forward, weight gradient, input gradient (not for layer 0)
  }
  return f;
}

// GFLOP/s of one >= 20 ms round of 512 x 640 x 128 sgemms, rows in chunks of 128 over `threads`.
double sgemm_round(int threads, const std::vector<float>& a, const std::vector<float>& b, std::vector<float>& c) {
  ae::blas_single_threaded();
  int reps = 0;
  const double t0 = wall_seconds();
  do {
    parallel_chunks(
        threads, kBatch, ae::kRowChunk,
        [&](int64_t r0, int64_t r1) {
          cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(r1 - r0), 128, 640, 1.0f,
                      a.data() + r0 * 640, 640, b.data(), 128, 0.0f, c.data() + r0 * 128, 128);
        },
        Schedule::kStatic);
    ++reps;
  } while (wall_seconds() - t0 < 0.02);
  return 2.0 * kBatch * 640 * 128 * reps / (wall_seconds() - t0) / 1e9;
}

void BM_AeTrainingStep(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  ae::Network<float> net;
  net.init_glorot(1);
  ae::Trainer<float> trainer(net, kBatch, 1e-3, threads);
  std::vector<float> x(static_cast<size_t>(kBatch * 640));
  ae::SplitMix64 rng{2};
  for (auto& v : x) v = static_cast<float>(-40.0 + 20.0 * rng.uniform());
  std::vector<float> a(static_cast<size_t>(kBatch * 640), 0.5f), b(640 * 128, 0.25f),
      c(static_cast<size_t>(kBatch * 128));
  trainer.step(x.data(), kBatch);  // warm-up: buffers, Adam state
  double best_step = 1e30, best_sgemm = 0;
  for (auto _ : state) {
    const double t0 = wall_seconds();
    trainer.step(x.data(), kBatch);
    const double dt = wall_seconds() - t0;
    state.SetIterationTime(dt);
    best_step = std::min(best_step, dt);
    best_sgemm = std::max(best_sgemm, sgemm_round(threads, a, b, c));
  }
  const double gflops = step_flops(net) / best_step / 1e9;
  state.counters["vectors_per_s"] = kBatch / best_step;
  state.counters["GFLOPs"] = gflops;
  state.counters["sgemm_GFLOPs"] = best_sgemm;
  state.counters["vs_sgemm"] = gflops / best_sgemm;
}
BENCHMARK(BM_AeTrainingStep)->Arg(1)->Arg(2)->UseManualTime()->Unit(benchmark::kMillisecond)->MinTime(3.0);

}  // namespace
