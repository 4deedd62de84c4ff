// k-NN scoring of 1,000 test clips against 10,000 references of dimension 1024 (k = 4), reported
// with the time of one cblas_sgemm of the same shapes measured in the same run: the counter
// "ratio_vs_sgemm" is machine independent (1.0 would mean scoring costs no more than the product).
#include <benchmark/benchmark.h>
#include <cblas.h>

#include <chrono>
#include <random>
#include <vector>

#include "asdcap/knn.hpp"

namespace {

constexpr int64_t kQueries = 1000, kRefs = 10000, kDim = 1024;

struct Data {
  std::vector<float> q, r;
  Data() : q(kQueries * kDim), r(kRefs * kDim) {
    std::mt19937 gen(1);
    std::normal_distribution<float> nd(0, 1);
    // Clustered like embeddings: a shared offset plus per-clip variation.
    std::vector<float> center(kDim);
    for (auto& c : center) c = nd(gen);
    for (int64_t i = 0; i < kQueries * kDim; ++i) q[i] = center[i % kDim] + 0.3f * nd(gen);
    for (int64_t i = 0; i < kRefs * kDim; ++i) r[i] = center[i % kDim] + 0.3f * nd(gen);
  }
};

const Data& data() {
  static Data d;
  return d;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void BM_KnnScore1000x10000x1024(benchmark::State& state) {
  const auto& d = data();
  std::vector<float> c(static_cast<size_t>(kQueries * kRefs));
  double knn_total = 0, gemm_total = 0;
  for (auto _ : state) {
    auto t0 = std::chrono::steady_clock::now();
    auto res = asdcap::knn_search(d.q.data(), kQueries, d.r.data(), kRefs, kDim, 4);
    benchmark::DoNotOptimize(res.mean_distance.data());
    double knn = seconds_since(t0);
    t0 = std::chrono::steady_clock::now();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, kQueries, kRefs, kDim, 1.0f, d.q.data(), kDim, d.r.data(),
                kDim, 0.0f, c.data(), kRefs);
    benchmark::DoNotOptimize(c.data());
    double gemm = seconds_since(t0);
    state.SetIterationTime(knn);
    knn_total += knn;
    gemm_total += gemm;
  }
  state.counters["sgemm_ms"] = 1e3 * gemm_total / static_cast<double>(state.iterations());
  state.counters["ratio_vs_sgemm"] = knn_total / gemm_total;
}
BENCHMARK(BM_KnnScore1000x10000x1024)->UseManualTime()->Unit(benchmark::kMillisecond);

}  // namespace
