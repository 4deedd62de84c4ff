// LAION-CLAP audio branch throughput on a full-size HTSAT-tiny model (630k-audioset-best.pt's
// sizes) with random weights, from 10-s waveforms at 48 kHz: int16 window -> log-mel (1001 frames)
// -> bn0 -> image -> HTSAT -> projection -> L2 normalisation, as `asdcap embed` runs it.
//
// Counters as bench_htsat's (htsat_common.hpp): clips/s, GFLOP per clip (HTSAT + projection),
// GFLOP/s of the best iteration and vs_sgemm = that over the same run's OpenBLAS sgemm on HTSAT's
// fc1 shapes. The HTSAT work is msclap's (the same kernels, sizes and image), so vs_sgemm should
// be close to bench_htsat's BM_HtsatFromWaveform.
//
//   build/bench/bench_laion --benchmark_counters_tabular=true
// The model (~120 MB) is written once to $TMPDIR/asdcap-bench-laion-htsat-tiny-f32.gguf.
#include <benchmark/benchmark.h>

#include <filesystem>
#include <random>

#include "asdcap/error.hpp"
#include "asdcap/laion.hpp"
#include "htsat_common.hpp"

namespace {

using namespace asdcap;
using namespace asdcap::bench;

std::shared_ptr<const LaionModel> bench_model(int threads) {
  namespace fs = std::filesystem;
  const fs::path path = fs::temp_directory_path() / "asdcap-bench-laion-htsat-tiny-f32.gguf";
  if (fs::exists(path)) {
    try {
      return LaionModel::open(path.string(), threads);
    } catch (const Error&) {
    }
  }
  write_random_laion_model(path.string(), LaionConfig{}, DType::F32, 630);
  return LaionModel::open(path.string(), threads);
}

void BM_LaionFromWaveform(benchmark::State& state) {
  const auto model = bench_model(static_cast<int>(state.range(1)));
  std::mt19937 rng(7);
  std::normal_distribution<float> dist(0.f, 3000.f);
  std::vector<std::vector<int16_t>> windows(static_cast<size_t>(state.range(0)),
                                            std::vector<int16_t>(static_cast<size_t>(model->config().clip_samples)));
  std::vector<const int16_t*> ptrs;
  for (auto& w : windows) {
    for (auto& x : w) x = static_cast<int16_t>(std::clamp(dist(rng), -32767.f, 32767.f));
    ptrs.push_back(w.data());
  }
  run_encoder(state, model->config().audio, model->config().joint_dim, [&] { return model->encode(ptrs); });
}

}  // namespace

BENCHMARK(BM_LaionFromWaveform)
    ->ArgNames({"batch", "threads"})
    ->Args({1, 1})
    ->Args({8, 1})
    ->Args({1, 2})
    ->Args({8, 2})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(3.0);
