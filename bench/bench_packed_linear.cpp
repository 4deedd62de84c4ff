// asdcap's packed-weight GEMM (nn::PackedLinear) against OpenBLAS cblas_sgemm on the Linear shapes
// of HTSAT (msclap 2023) at batch 1, one thread, in the same run. Counters: GFLOP/s of each and
// `vs_openblas` = PackedLinear GFLOP/s / OpenBLAS GFLOP/s for that shape (OpenBLAS timed with the
// bias copy it needs, as nn::linear calls it). Each side: best of 12 interleaved 50-ms rounds.
//
//   build/bench/bench_packed_linear --benchmark_counters_tabular=true
#include <benchmark/benchmark.h>
#include <cblas.h>

#include <chrono>
#include <functional>
#include <random>
#include <vector>

#include "asdcap/nn.hpp"

namespace {

using namespace asdcap;

// Best rate (calls per second) over short timed rounds: on a shared machine the best round is the one
// least disturbed, and both sides get the same number of rounds, interleaved.
void best_rate(const std::function<void()>& fn, double& best) {
  using clock = std::chrono::steady_clock;
  int reps = 0;
  const auto t0 = clock::now();
  double elapsed = 0;
  do {
    fn();
    ++reps;
    elapsed = std::chrono::duration<double>(clock::now() - t0).count();
  } while (elapsed < 0.05);
  best = std::max(best, reps / elapsed);
}

void BM_LinearShape(benchmark::State& state) {
  const int64_t m = state.range(0), k = state.range(1), n = state.range(2);
  std::mt19937 rng(1);
  std::normal_distribution<float> dist(0.f, 1.f);
  std::vector<float> x(static_cast<size_t>(m * k)), w(static_cast<size_t>(n * k)), b(static_cast<size_t>(n)),
      y(static_cast<size_t>(m * n));
  for (auto* v : {&x, &w, &b})
    for (auto& e : *v) e = dist(rng);
  const nn::PackedLinear packed(w.data(), n, k, b.data());
  double ours = 0, blas = 0;  // best calls per second
  for (auto _ : state) {
    packed.forward(1, x.data(), m, y.data());  // warm-up
    nn::linear_serial(x.data(), m, k, w.data(), n, b.data(), y.data());
    for (int round = 0; round < 12; ++round) {
      best_rate([&] { packed.forward(1, x.data(), m, y.data()); }, ours);
      best_rate([&] { nn::linear_serial(x.data(), m, k, w.data(), n, b.data(), y.data()); }, blas);
    }
  }
  const double flops = 2.0 * static_cast<double>(m * n * k);
  const double g_ours = flops * ours / 1e9;
  const double g_blas = flops * blas / 1e9;
  state.counters["packed_GFLOPs"] = g_ours;
  state.counters["openblas_GFLOPs"] = g_blas;
  state.counters["vs_openblas"] = g_ours / g_blas;
}

}  // namespace

// {M, K, N}: per stage qkv, proj, fc1, fc2 (stage 0: 4096 tokens x 96 channels ... stage 3: 64 x 768).
BENCHMARK(BM_LinearShape)
    ->ArgNames({"M", "K", "N"})
    ->Args({4096, 96, 288})
    ->Args({4096, 96, 96})
    ->Args({4096, 96, 384})
    ->Args({4096, 384, 96})
    ->Args({1024, 192, 576})
    ->Args({1024, 768, 192})
    ->Args({256, 384, 1152})
    ->Args({256, 1536, 384})
    ->Args({64, 768, 2304})
    ->Args({64, 768, 3072})
    ->Args({64, 3072, 768})
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);
