// asdcap's packed-weight GEMM (nn::PackedLinear) against OpenBLAS cblas_sgemm on the Linear shapes
// of HTSAT (msclap 2023) at batch 1, one thread, in the same run. Counters: GFLOP/s of each and
// `vs_openblas` = PackedLinear GFLOP/s / OpenBLAS GFLOP/s for that shape (OpenBLAS timed with the
// bias copy it needs, as nn::linear calls it). Each side: best of 12 interleaved 50-ms rounds.
//
//   build/bench/bench_packed_linear --benchmark_counters_tabular=true
#include <benchmark/benchmark.h>
#include <cblas.h>

#include <immintrin.h>

#include <chrono>
#include <cstring>
#include <functional>
#include <random>
#include <vector>

#include "asdcap/nn.hpp"
#include "core/panels.hpp"

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

// The decoder's shape at beam 5 (5 rows, GPT-2 768 -> 3072, weights larger than the caches): the same
// layer with its weights stored f32, f16, bf16 and int8 (per-output scales), one thread, interleaved
// rounds. Counters: weight GB/s of each (the bytes of the panels per call) and f16_over_f32 /
// bf16_over_f32 / int8_over_f32 / int8_over_f16 = calls/s ratios.
void BM_WeightPrecision(benchmark::State& state) {
  const int64_t m = state.range(0), k = state.range(1), n = state.range(2), layers = 8;
  std::mt19937 rng(2);
  std::normal_distribution<float> dist(0.f, 0.05f);
  std::vector<float> x(static_cast<size_t>(m * k)), w(static_cast<size_t>(n * k)), b(static_cast<size_t>(n)),
      y(static_cast<size_t>(m * n));
  for (auto* v : {&x, &w, &b})
    for (auto& e : *v) e = dist(rng);
  std::vector<uint16_t> half(w.size()), brain(w.size());
  for (size_t i = 0; i < w.size(); ++i) {
    half[i] = static_cast<uint16_t>(_cvtss_sh(w[i], 0));
    uint32_t bits;
    std::memcpy(&bits, &w[i], 4);
    brain[i] = static_cast<uint16_t>(bits >> 16);
  }
  std::vector<int8_t> q(w.size());
  std::vector<float> scale(static_cast<size_t>(n));
  asdcap::panels::quantize_int8(w.data(), n, k, false, q.data(), scale.data());
  // Several copies of each layer, called in turn, so the weights come from memory, not the caches.
  std::vector<nn::PackedLinear> f32, f16, bf16, i8;
  for (int64_t l = 0; l < layers; ++l) {
    f32.emplace_back(w.data(), n, k, b.data());
    f16.emplace_back(nn::WeightView{half.data(), nn::WeightType::kF16}, n, k, b.data());
    bf16.emplace_back(nn::WeightView{brain.data(), nn::WeightType::kBF16}, n, k, b.data());
    i8.emplace_back(nn::WeightView{q.data(), nn::WeightType::kI8, scale.data()}, n, k, b.data());
  }
  auto run = [&](const std::vector<nn::PackedLinear>& set) {
    for (const auto& layer : set) layer.forward(1, x.data(), m, y.data());
  };
  double r32 = 0, r16 = 0, rb16 = 0, r8 = 0;
  for (auto _ : state)
    for (int round = 0; round < 12; ++round) {
      best_rate([&] { run(f32); }, r32);
      best_rate([&] { run(f16); }, r16);
      best_rate([&] { run(bf16); }, rb16);
      best_rate([&] { run(i8); }, r8);
    }
  const double bytes32 = static_cast<double>(layers * f32[0].packed_bytes());
  const double bytes16 = static_cast<double>(layers * f16[0].packed_bytes());
  state.counters["f32_GBps"] = bytes32 * r32 / 1e9;
  state.counters["f16_GBps"] = bytes16 * r16 / 1e9;
  state.counters["f16_over_f32"] = r16 / r32;
  state.counters["bf16_over_f32"] = rb16 / r32;
  state.counters["int8_GBps"] = static_cast<double>(layers * i8[0].packed_bytes()) * r8 / 1e9;
  state.counters["int8_over_f32"] = r8 / r32;
  state.counters["int8_over_f16"] = r8 / r16;
}

}  // namespace

BENCHMARK(BM_WeightPrecision)
    ->ArgNames({"M", "K", "N"})
    ->Args({5, 768, 3072})
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);

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
