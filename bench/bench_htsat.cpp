// HTSAT audio encoder throughput on a full-size (msclap 2023) model with random weights.
//
// Reported per benchmark: clips/s (7-s windows, mean wall clock), GFLOP per clip counted
// analytically from the model's shapes (the arithmetic asdcap performs: GEMMs, window attention q.k
// and p.v, patch embedding, merges, projection; the tscam head's conv is evaluated as one GEMV on
// time-averaged taps, which is what is counted), GFLOP/s of the best iteration, and `vs_sgemm` =
// that divided by OpenBLAS sgemm GFLOP/s measured in the same process, with the same thread count,
// on the fastest of HTSAT's largest GEMM shapes (the MLP fc1 of every stage, M = tokens x batch),
// one round after every encoder iteration -- a machine-independent efficiency ratio. Best-of on both
// sides, interleaved, because the machine these figures come from is shared.
//
//   build/bench/bench_htsat --benchmark_counters_tabular=true
// The model (~640 MB; its mel filter bank is the real one) is written once to
// $TMPDIR/asdcap-bench-msclap2023-f32-v2.gguf.
#include <benchmark/benchmark.h>
#include <cblas.h>

#include <chrono>
#include <filesystem>
#include <random>

#include "asdcap/audio.hpp"
#include "asdcap/clap.hpp"
#include "asdcap/convert.hpp"
#include "asdcap/error.hpp"
#include "asdcap/nn.hpp"
#include "htsat_common.hpp"
#include "support/random_model.hpp"

namespace {

using namespace asdcap;
using namespace asdcap::bench;

std::shared_ptr<const ModelFile> bench_model() {
  static const std::shared_ptr<const ModelFile> model = [] {
    namespace fs = std::filesystem;
    const fs::path path = fs::temp_directory_path() / "asdcap-bench-msclap2023-f32-v2.gguf";
    if (fs::exists(path)) {
      try {
        return ModelFile::open(path.string());
      } catch (const Error&) {
      }
    }
    ModelConfig cfg = msclap_2023_config();
    cfg.has_captioner = false;  // CLAP only: the audio encoder is what is measured
    const std::string gpt2 = std::string(ASDCAP_SHARED_DIR) + "/assets/gpt2/";
    test::write_random_model(path.string(), cfg, DType::F32, 2023, gpt2 + "vocab.json", gpt2 + "merges.txt");
    return ModelFile::open(path.string());
  }();
  return model;
}

std::vector<std::vector<float>> noise_windows(int n) {
  std::mt19937 rng(7);
  std::normal_distribution<float> dist(0.f, 0.1f);
  std::vector<std::vector<float>> w(static_cast<size_t>(n), std::vector<float>(static_cast<size_t>(kWindowSamples)));
  for (auto& v : w)
    for (auto& x : v) x = dist(rng);
  return w;
}

// From 7-s waveforms: front end (log-mel, bn0, image) + HTSAT + projection, as `asdcap embed` runs it.
void BM_HtsatFromWaveform(benchmark::State& state) {
  const AudioEncoder encoder(bench_model(), "audio.", {static_cast<int>(state.range(1))});
  const auto windows = noise_windows(static_cast<int>(state.range(0)));
  std::vector<const float*> ptrs;
  for (const auto& w : windows) ptrs.push_back(w.data());
  run_encoder(state, bench_model()->config().audio, bench_model()->config().proj_dim,
              [&] { return encoder.encode(ptrs); });
}

// From HTSAT images: the encoder alone (patch embedding .. projection).
void BM_HtsatFromImage(benchmark::State& state) {
  const AudioEncoder encoder(bench_model(), "audio.", {static_cast<int>(state.range(1))});
  std::mt19937 rng(3);
  std::normal_distribution<float> dist(0.f, 1.f);
  std::vector<std::vector<float>> images(static_cast<size_t>(state.range(0)),
                                         std::vector<float>(kImageSize * kImageSize));
  std::vector<const float*> ptrs;
  for (auto& im : images) {
    for (auto& x : im) x = dist(rng);
    ptrs.push_back(im.data());
  }
  run_encoder(state, bench_model()->config().audio, bench_model()->config().proj_dim,
              [&] { return encoder.encode_images(ptrs); });
}

// Batches of 1 and 8 windows on 1 and 2 threads, timed by the wall clock.
void batch_and_threads(benchmark::internal::Benchmark* b) {
  b->ArgNames({"batch", "threads"})->Args({1, 1})->Args({8, 1})->Args({1, 2})->Args({8, 2});
  b->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(3.0);
}

}  // namespace

BENCHMARK(BM_HtsatFromImage)->Apply(batch_and_threads);
BENCHMARK(BM_HtsatFromWaveform)->Apply(batch_and_threads);
