// PANNs CNN14 throughput on a full-size model (widths 64..2048, fc 2048, 527 classes) with random
// weights, from 10-s waveforms at 32 kHz (front end + six conv blocks + head, as PannsModel::run).
//
// Reported per benchmark: clips/s (mean wall clock), GFLOP per clip counted from the shapes (the STFT
// and mel GEMMs, every 3x3 convolution as 2 * positions * 9 * cin * cout, the fc layers), GFLOP/s of
// the best iteration, and `vs_sgemm` = that divided by OpenBLAS cblas_sgemm GFLOP/s measured in the
// same process with the same thread count on a GEMM of CNN14's shape (block 4's second convolution
// as one product: M = 1000 positions, K = 9 x 512, N = 512, rows split over the threads), one round
// after every model iteration: both sides best-of over the same stretch of time, because the machine
// these figures come from is shared. The *_cpu counters divide by process CPU time instead of wall
// time (per-core efficiency, less sensitive to other processes on the machine).
//
// BM_Cnn14SixteenClips7s: what embedding a small dataset costs -- opening the model file (packing
// the weights, folding BatchNorm) plus 16 clips of 7 s, 2 threads. With ASDCAP_PANNS_TORCH_DIR set
// to the output folder of scripts/dev/panns_torch_reference.py, it runs that script's model and clips
// and reports the agreement with PyTorch's embeddings (min_cos) and the speed-up over PyTorch's
// forward pass alone (torch_s_per_clip x 16 / this benchmark's time).
//
//   build/bench/bench_panns --benchmark_counters_tabular=true
// The model (~330 MB) is written once to $TMPDIR/asdcap-bench-panns-cnn14-f32-v2.gguf.
#include <benchmark/benchmark.h>
#include <cblas.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <random>

#include <nlohmann/json.hpp>

#include "asdcap/error.hpp"
#include "asdcap/npy.hpp"
#include "asdcap/panns.hpp"
#include "core/files.hpp"
#include "core/parallel.hpp"
#include "panns/cnn14.hpp"

namespace {

using namespace asdcap;

std::string bench_model_path() {
  static const std::string path = [] {
    namespace fs = std::filesystem;
    const fs::path p = fs::temp_directory_path() / "asdcap-bench-panns-cnn14-f32-v2.gguf";
    if (fs::exists(p)) {
      try {
        PannsModel::open(p.string());
        return p.string();
      } catch (const Error&) {
      }
    }
    write_random_panns_model(p.string(), PannsConfig{}, DType::F32, 14);
    return p.string();
  }();
  return path;
}

std::shared_ptr<const PannsModel> bench_model() {
  static const std::shared_ptr<const PannsModel> model = PannsModel::open(bench_model_path());
  return model;
}

double wall_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// CPU time of the whole process (all threads): on a shared machine, GFLOP per CPU-second measures
// the kernels' efficiency when wall-clock rates measure mostly the neighbours.
double cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

struct SgemmReference {
  static constexpr int64_t m = 1000, k = 9 * 512, n = 512;
  int threads = 1;
  std::vector<float> a = std::vector<float>(m * k, 0.5f), b = std::vector<float>(k * n, 0.25f),
                     c = std::vector<float>(m * n);
  double cpu_rate = 0;  // best GFLOP per CPU-second seen
  // GFLOP/s of one round of >= 50 ms.
  double round() {
    int reps = 0;
    const int64_t rows = (m + threads - 1) / threads;
    const double t0 = wall_seconds(), c0 = cpu_seconds();
    do {
      parallel_chunks(threads, m, rows, [&](int64_t r0, int64_t r1) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(r1 - r0), n, k, 1.0f, a.data() + r0 * k,
                    k, b.data(), n, 0.0f, c.data() + r0 * n, n);
      });
      ++reps;
    } while (wall_seconds() - t0 < 0.05);
    cpu_rate = std::max(cpu_rate, 2.0 * m * n * k * reps / (cpu_seconds() - c0) / 1e9);
    return 2.0 * m * n * k * reps / (wall_seconds() - t0) / 1e9;
  }
};

std::vector<std::vector<float>> noise_clips(int n, int64_t samples) {
  std::mt19937 rng(7);
  std::normal_distribution<float> dist(0.f, 0.1f);
  std::vector<std::vector<float>> clips(static_cast<size_t>(n), std::vector<float>(static_cast<size_t>(samples)));
  for (auto& v : clips)
    for (auto& x : v) x = dist(rng);
  return clips;
}

void BM_Cnn14FromWaveform(benchmark::State& state) {
  const int batch = static_cast<int>(state.range(0)), threads = static_cast<int>(state.range(1));
  auto model = bench_model();
  const int64_t samples = 10 * int64_t{model->config().sample_rate};
  const auto clips = noise_clips(batch, samples);
  std::vector<std::span<const float>> spans(clips.begin(), clips.end());
  openblas_set_num_threads(1);  // the reference's threads are parallel_chunks', as CNN14's are
  SgemmReference sgemm;
  sgemm.threads = threads;
  sgemm.round();  // OpenBLAS buffers allocated before timing
  double best = 1e30, best_cpu = 1e30, sgemm_best = 0, total = 0;
  for (auto _ : state) {
    const double t0 = wall_seconds(), c0 = cpu_seconds();
    benchmark::DoNotOptimize(model->run_batch(spans, threads));
    const double t = wall_seconds() - t0;
    best = std::min(best, t);
    best_cpu = std::min(best_cpu, cpu_seconds() - c0);
    total += t;
    state.PauseTiming();
    sgemm_best = std::max(sgemm_best, sgemm.round());
    state.ResumeTiming();
  }
  const double flops = model->impl().net->flops(samples), clips_done = static_cast<double>(state.iterations()) * batch;
  const double gflops = batch * flops / best / 1e9;
  state.counters["clips_per_s"] = clips_done / total;
  state.counters["GFLOP_per_clip"] = flops / 1e9;
  state.counters["GFLOPs"] = gflops;
  state.counters["sgemm_GFLOPs"] = sgemm_best;
  state.counters["vs_sgemm"] = gflops / sgemm_best;
  state.counters["GFLOP_per_cpu_s"] = batch * flops / best_cpu / 1e9;
  state.counters["vs_sgemm_cpu"] = batch * flops / best_cpu / 1e9 / sgemm.cpu_rate;
}

double cosine(const float* a, const float* b, int64_t n) {
  double ab = 0, aa = 0, bb = 0;
  for (int64_t i = 0; i < n; ++i) ab += double(a[i]) * b[i], aa += double(a[i]) * a[i], bb += double(b[i]) * b[i];
  return ab / std::sqrt(aa * bb);
}

void BM_Cnn14SixteenClips7s(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  const char* torch_dir = std::getenv("ASDCAP_PANNS_TORCH_DIR");
  std::string model_path = bench_model_path();
  std::vector<std::vector<float>> clips;
  std::vector<float> reference;
  double torch_s_per_clip = 0, torch_cpu_s_per_clip = 0;
  if (torch_dir) {
    const std::string dir = std::string(torch_dir) + "/";
    model_path = dir + "cnn14_random.gguf";
    if (!std::filesystem::exists(model_path)) convert_panns({dir + "cnn14_random.pth", model_path, DType::F32});
    NpyArray x = read_npy(dir + "clips.npy");
    const std::vector<float> all = x.as_float();
    for (int64_t i = 0; i < x.shape[0]; ++i)
      clips.emplace_back(all.begin() + i * x.shape[1], all.begin() + (i + 1) * x.shape[1]);
    reference = read_npy(dir + "embeddings.npy").as_float();
    const auto info = nlohmann::json::parse(read_text_file(dir + "torch.json"));
    torch_s_per_clip = info["seconds_per_clip"].get<double>();
    torch_cpu_s_per_clip = info["cpu_seconds_per_clip"].get<double>();
  } else {
    clips = noise_clips(16, 7 * 32000);
  }
  std::vector<std::span<const float>> spans(clips.begin(), clips.end());
  double best = 1e30, best_open = 0, best_cpu = 0, min_cos = 1;
  for (auto _ : state) {
    const double t0 = wall_seconds(), c0 = cpu_seconds();
    auto model = PannsModel::open(model_path);
    const double opened = wall_seconds();
    auto out = model->run_batch(spans, threads);
    const double t = wall_seconds() - t0;
    if (t < best) best = t, best_open = opened - t0, best_cpu = cpu_seconds() - c0;
    if (!reference.empty()) {
      const int64_t d = model->config().embedding_dim;
      for (size_t i = 0; i < out.size(); ++i)
        min_cos = std::min(min_cos, cosine(out[i].embedding.data(), reference.data() + i * d, d));
    }
  }
  state.counters["seconds"] = best;
  state.counters["open_s"] = best_open;
  state.counters["s_per_clip"] = (best - best_open) / static_cast<double>(clips.size());
  state.counters["cpu_s"] = best_cpu;
  if (torch_dir) {
    state.counters["min_cos"] = min_cos;
    state.counters["1-min_cos"] = 1 - min_cos;
    state.counters["torch_s_per_clip"] = torch_s_per_clip;
    state.counters["vs_torch_forward"] = torch_s_per_clip * static_cast<double>(clips.size()) / best;
    state.counters["vs_torch_forward_cpu"] = torch_cpu_s_per_clip * static_cast<double>(clips.size()) / best_cpu;
  }
}

}  // namespace

BENCHMARK(BM_Cnn14SixteenClips7s)
    ->ArgNames({"threads"})
    ->Arg(2)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(3);
BENCHMARK(BM_Cnn14FromWaveform)
    ->ArgNames({"batch", "threads"})
    ->Args({1, 1})
    ->Args({1, 2})
    ->Args({8, 1})
    ->Args({8, 2})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(3.0);
