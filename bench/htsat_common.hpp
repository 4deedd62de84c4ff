// What the HTSAT benchmarks share (bench_htsat: msclap's encoder, bench_laion: LAION-CLAP's audio
// branch): the FLOPs of one window as asdcap computes them and the sgemm reference of the ratio.
#pragma once
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <vector>

#include "asdcap/model_file.hpp"
#include "asdcap/nn.hpp"

namespace asdcap::bench {

// FLOPs of one window through HTSAT + projection as asdcap computes it.
inline double htsat_flops(const HtsatConfig& c, int64_t proj_dim) {
  double flops = 0;
  int64_t side = c.spec_size / c.patch, dim = c.embed_dim;
  flops += 2.0 * side * side * c.patch * c.patch * dim;  // patch embedding
  for (size_t s = 0; s < c.depths.size(); ++s) {
    const double n = static_cast<double>(side * side), d = static_cast<double>(dim);
    const int64_t window = std::min<int64_t>(side, c.window);
    const double per_block = 2.0 * n * (3 * d * d + d * d + 2.0 * c.mlp_ratio * d * d)  // qkv, proj, fc1, fc2
                             + 2.0 * 2.0 * n * window * window * d;                     // q.k and p.v
    flops += per_block * c.depths[s];
    if (s + 1 < c.depths.size()) {
      flops += 2.0 * (n / 4) * (4 * d) * (2 * d);  // PatchMerging reduction
      side /= 2;
      dim *= 2;
    }
  }
  const int64_t sf = side / c.freq_ratio;
  flops += 2.0 * c.num_classes * dim * sf * 3;                            // tscam on averaged taps
  flops += 2.0 * (double(dim) * proj_dim + double(proj_dim) * proj_dim);  // projection
  return flops;
}

inline double wall_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// The sgemm reference: OpenBLAS (cblas_sgemm through nn::linear, its split over threads) on the
// fc1 shapes of the stages (M = tokens x batch), same thread count. The fastest of them is chosen
// once (best of 3 rounds each); the benchmark then times one round of it after every encoder
// iteration, so that both sides of the ratio are best-of over the same stretch of time (this
// machine's host is shared and its speed drifts by +-10 % within minutes).
struct SgemmReference {
  int64_t m = 0, k = 0, n = 0;
  int threads = 0;
  std::vector<float> x, w, y;
  // GFLOP/s of one round of >= 50 ms.
  double round() {
    int reps = 0;
    const double t0 = wall_seconds();
    do {
      nn::linear(threads, x.data(), m, k, w.data(), n, nullptr, y.data());
      ++reps;
    } while (wall_seconds() - t0 < 0.05);
    return 2.0 * m * n * k * reps / (wall_seconds() - t0) / 1e9;
  }
};

inline SgemmReference sgemm_reference(const HtsatConfig& c, int batch, int threads) {
  int64_t side = c.spec_size / c.patch, dim = c.embed_dim;
  SgemmReference best;
  double best_rate = 0;
  for (size_t s = 0; s < c.depths.size(); ++s) {
    SgemmReference r;
    r.m = side * side * batch, r.k = dim, r.n = dim * c.mlp_ratio, r.threads = threads;
    r.x.assign(static_cast<size_t>(r.m * r.k), 0.5f);
    r.w.assign(static_cast<size_t>(r.n * r.k), 0.25f);
    r.y.resize(static_cast<size_t>(r.m * r.n));
    double rate = 0;
    for (int round = 0; round < 3; ++round) rate = std::max(rate, r.round());
    if (rate > best_rate) best_rate = rate, best = std::move(r);
    if (s + 1 < c.depths.size()) {
      side /= 2;
      dim *= 2;
    }
  }
  return best;
}

// Times `encode` (one batch per iteration). Counters: clips_per_s (mean, wall clock), GFLOP_per_clip,
// GFLOPs (best iteration), sgemm_GFLOPs (best round, one after each iteration, same threads) and
// vs_sgemm = their ratio.
template <typename Encode>
void run_encoder(benchmark::State& state, const HtsatConfig& htsat, int64_t proj_dim, const Encode& encode) {
  const int batch = static_cast<int>(state.range(0)), threads = static_cast<int>(state.range(1));
  SgemmReference sgemm = sgemm_reference(htsat, batch, threads);
  double best = 1e30, sgemm_best = 0, total = 0;
  for (auto _ : state) {
    const double t0 = wall_seconds();
    benchmark::DoNotOptimize(encode());
    const double t = wall_seconds() - t0;
    best = std::min(best, t);
    total += t;
    state.PauseTiming();
    sgemm_best = std::max(sgemm_best, sgemm.round());
    state.ResumeTiming();
  }
  const double flops = htsat_flops(htsat, proj_dim), clips = static_cast<double>(state.iterations()) * batch;
  const double gflops = batch * flops / best / 1e9;
  state.counters["clips_per_s"] = clips / total;
  state.counters["GFLOP_per_clip"] = flops / 1e9;
  state.counters["GFLOPs"] = gflops;
  state.counters["sgemm_GFLOPs"] = sgemm_best;
  state.counters["vs_sgemm"] = gflops / sgemm_best;
}

}  // namespace asdcap::bench
