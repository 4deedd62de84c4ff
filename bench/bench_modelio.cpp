// Opening + validating a full-size f16 model file (random weights of msclap 2023's sizes) versus
// reading the same bytes with read(2). Both run on a warm page cache, so the ratio is machine-independent:
// it shows that open() maps and checks the file without touching the tensor data.
//
//   build/bench/bench_modelio --benchmark_counters_tabular=true
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <vector>

#include "asdcap/convert.hpp"
#include "asdcap/model_file.hpp"
#include "support/random_model.hpp"

namespace {

const std::string& model_path() {
  static const std::string path = [] {
    namespace fs = std::filesystem;
    fs::path p = fs::temp_directory_path() / ("asdcap_bench_msclap2023_f16_" + std::to_string(::getpid()) + ".gguf");
    const std::string assets = std::string(ASDCAP_SHARED_DIR) + "/assets/gpt2";
    asdcap::test::write_random_model(p.string(), asdcap::msclap_2023_config(), asdcap::DType::F16, 1,
                                     assets + "/vocab.json", assets + "/merges.txt");
    std::atexit([] { std::filesystem::remove(model_path()); });
    return p.string();
  }();
  return path;
}

size_t read_all(const std::string& path, std::vector<char>& buf) {
  int fd = ::open(path.c_str(), O_RDONLY);
  size_t total = 0;
  for (;;) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n <= 0) break;
    total += static_cast<size_t>(n);
  }
  ::close(fd);
  return total;
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

void BM_OpenValidateVsRead(benchmark::State& state) {
  const std::string& path = model_path();
  std::vector<char> buf(8 << 20);
  read_all(path, buf);  // warm the page cache
  double open_s = 0, read_s = 0;
  size_t bytes = 0;
  for (auto _ : state) {
    auto t0 = std::chrono::steady_clock::now();
    auto m = asdcap::ModelFile::open(path);
    benchmark::DoNotOptimize(m->tensors().size());
    m.reset();
    open_s += seconds_since(t0);
    auto t1 = std::chrono::steady_clock::now();
    bytes = read_all(path, buf);
    benchmark::DoNotOptimize(buf.data());
    read_s += seconds_since(t1);
  }
  const double n = static_cast<double>(state.iterations());
  state.counters["file_MB"] = static_cast<double>(bytes) / 1e6;
  state.counters["open_validate_ms"] = 1e3 * open_s / n;
  state.counters["read_ms"] = 1e3 * read_s / n;
  state.counters["open_over_read"] = open_s / read_s;
}
BENCHMARK(BM_OpenValidateVsRead)->Unit(benchmark::kMillisecond)->Iterations(10);

// First use of an f16 weight: conversion to f32 (once per tensor), the cost open() defers.
void BM_F16ToF32FirstUse(benchmark::State& state) {
  const std::string& path = model_path();
  for (auto _ : state) {
    auto m = asdcap::ModelFile::open(path);
    benchmark::DoNotOptimize(m->f32("text.gpt2.wte.weight"));
  }
  state.SetBytesProcessed(state.iterations() * 50257LL * 768 * 2);
}
BENCHMARK(BM_F16ToF32FirstUse)->Unit(benchmark::kMillisecond)->Iterations(5);

}  // namespace
