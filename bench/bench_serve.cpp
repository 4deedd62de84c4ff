// asdcap serve under load: 10-s synthetic clips submitted over HTTP on loopback by two client
// threads to a server on 2 threads (20 references, no explanations), against `asdcap detect`'s
// throughput on the same clips with the same backend, measured in the same run (run_detect, 2
// threads, a fresh folder, so every clip is embedded). Counters: clips_per_s, p50_ms / p99_ms
// (request latency), and "ratio_vs_detect" = serve's clips/s over detect's (machine independent;
// 1.0: serving costs no more than batch detection); detect_1t_clips_per_s: detect on one thread,
// for machines where two threads per clip do not pay.
//   BM_ServeSubmit10sClips/msclap:0  the acoustic backend (no model)
//   BM_ServeSubmit10sClips/msclap:1  msclap's CLAP audio encoder at full size (msclap 2023 sizes,
//                                    deterministic random f16 weights from the test-support writer:
//                                    the same work per clip as the real weights)
#include <benchmark/benchmark.h>
#include <httplib.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>
#include <vector>

#include "asdcap/detect.hpp"
#include "asdcap/serve.hpp"
#include "asdcap/synth.hpp"
#include "support/random_model.hpp"

namespace {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr int kRefs = 20, kClips = 16, kThreads = 2;

std::string read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

struct Fixture {
  fs::path root = fs::temp_directory_path() / ("asdcap_bench_serve_" + std::to_string(::getpid()));
  std::string data_root;
  std::vector<std::string> clips;  // test clips' bytes

  Fixture() {
    fs::remove_all(root);
    asdcap::SynthOptions so;
    so.out_dir = data_root = (root / "synth").string();
    so.machines = {"fan"};
    so.ids = {"id_00"};
    so.n_train = kRefs;
    so.n_test_normal = kClips / 2;
    so.n_test_anomaly = kClips / 2;
    so.threads = kThreads;
    asdcap::synthesize_dataset(so);
    for (const auto& f : fs::directory_iterator(root / "synth/fan/test")) clips.push_back(read_bytes(f.path()));
  }
  ~Fixture() { fs::remove_all(root); }

  // `asdcap detect`'s clips/s on the same clips with the model's backend (acoustic without one).
  double detect_clips_per_s(const std::string& model, int threads = kThreads) const {
    asdcap::DetectOptions d;
    d.data_root = data_root;
    d.model_path = model;
    d.out_dir = (root / ("run-" + std::to_string(detect_runs_++))).string();
    d.threads = threads;
    d.quiet = true;
    const auto t0 = Clock::now();
    const auto summary = asdcap::run_detect(d);
    return summary.n_embedded / std::chrono::duration<double>(Clock::now() - t0).count();
  }
  mutable int detect_runs_ = 0;
};

void BM_ServeSubmit10sClips(benchmark::State& state) {
  static Fixture fx;
  const std::string model = state.range(0) ? asdcap::test::random_full_model_path(true, false) : "";
  const double detect_clips_per_s = fx.detect_clips_per_s(model);
  const double detect_1_thread = fx.detect_clips_per_s(model, 1);
  asdcap::ServeOptions o;
  o.model_path = model;
  o.listen = "127.0.0.1:0";
  o.data_dir = (fx.root / ("serve-data-" + std::to_string(state.iterations()))).string();
  fs::remove_all(o.data_dir);
  o.threads = kThreads;
  o.explain = "none";  // the request path only
  asdcap::Server server(o);
  server.start();
  const std::string token = read_bytes(fs::path(o.data_dir) / "token").substr(0, 64);
  httplib::Client c("127.0.0.1", server.port());
  const httplib::Headers auth = {{"Authorization", "Bearer " + token}};
  auto folder = c.Post("/v1/machines/fan/id_00/references/folder", auth,
                       "{\"path\": \"" + (fx.root / "synth/fan/train").string() + "\"}", "application/json");
  if (!folder || folder->status != 200) {
    state.SkipWithError("enrolment failed");
    return;
  }
  std::vector<double> latencies;
  std::mutex mu;
  double total_s = 0;
  int64_t submitted = 0;
  for (auto _ : state) {
    std::atomic<int> next{0};
    const auto t0 = Clock::now();
    std::vector<std::thread> clients;
    for (int t = 0; t < kThreads; ++t)
      clients.emplace_back([&] {
        httplib::Client cc("127.0.0.1", server.port());
        for (int i; (i = next++) < kClips;) {
          const auto r0 = Clock::now();
          auto r = cc.Post("/v1/machines/fan/id_00/clips", auth, fx.clips[static_cast<size_t>(i)], "audio/wav");
          const double ms = std::chrono::duration<double, std::milli>(Clock::now() - r0).count();
          if (!r || r->status != 201) continue;
          std::lock_guard lock(mu);
          latencies.push_back(ms);
        }
      });
    for (auto& t : clients) t.join();
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    state.SetIterationTime(s);
    total_s += s;
    submitted += kClips;
  }
  server.stop();
  if (latencies.size() != static_cast<size_t>(submitted)) {
    state.SkipWithError("some submissions failed");
    return;
  }
  std::sort(latencies.begin(), latencies.end());
  auto pct = [&](double p) { return latencies[static_cast<size_t>(p * static_cast<double>(latencies.size() - 1))]; };
  const double clips_per_s = static_cast<double>(submitted) / total_s;
  state.counters["clips_per_s"] = clips_per_s;
  state.counters["p50_ms"] = pct(0.5);
  state.counters["p99_ms"] = pct(0.99);
  state.counters["detect_clips_per_s"] = detect_clips_per_s;
  state.counters["ratio_vs_detect"] = clips_per_s / detect_clips_per_s;
  state.counters["detect_1t_clips_per_s"] = detect_1_thread;  // the same detection on one thread
}
BENCHMARK(BM_ServeSubmit10sClips)
    ->ArgName("msclap")
    ->Arg(0)
    ->Arg(1)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond)
    ->Iterations(3);

}  // namespace
