// CLAP text encoder speed on a full-size random model (GPT-2 768 x 12 layers, projection 768 -> 1024).
//   build-e/bench/bench_text
// BM_TextEmbed/<batch>: texts/s, achieved GFLOP/s (the matrix products of the computed positions
// + projection) and that rate divided by the same run's OpenBLAS sgemm GFLOP/s on the encoder's
// largest product shape for the same token count ([tokens x 768] . [768 x 3072], mlp.c_fc).
// BM_TextVsTorch: the papers' 8 texts, a whole asdcap process against msclap's computation in
// PyTorch (ASDCAP_MSCLAP_TORCH_DIR; skipped without it).
#include <benchmark/benchmark.h>

#include <chrono>
#include <cmath>
#include <filesystem>

#include "asdcap/nn.hpp"
#include "asdcap/npy.hpp"
#include "asdcap/prompts.hpp"
#include "asdcap/text_encoder.hpp"
#include "support/random_model.hpp"
#include "torch_reference.hpp"

using namespace asdcap;

namespace {

// The papers' 8 reference texts, then further machine-sound sentences up to a batch of 16.
const std::vector<std::string>& texts() {
  static const std::vector<std::string> t = [] {
    std::vector<std::string> v = default_reference_texts();
    v.insert(v.end(), {"Sounds like a fan running", "a pump with water flowing", "A bearing whines at a high pitch",
                       "The valve hisses and clicks", "A slide rail rattles", "A toy car motor buzzes",
                       "Metal scraping against metal", "A steady mechanical hum"});
    return v;
  }();
  return t;
}

struct Setup {
  std::shared_ptr<const ModelFile> model;
  std::unique_ptr<TextEncoder> enc;
  Setup() {
    model = ModelFile::open(test::random_full_model_path(true, false));
    enc = std::make_unique<TextEncoder>(model);
    enc->embed({"warm-up: converts the f16 weights to f32 once"});
  }
};
Setup& setup() {
  static Setup s;
  return s;
}

void BM_TextEmbed(benchmark::State& state) {
  auto& s = setup();
  const auto n = static_cast<size_t>(state.range(0));
  std::vector<std::string> batch(texts().begin(), texts().begin() + static_cast<long>(n));
  const double d = 768, p = 1024;
  double flops = 0, tokens = 0;
  for (const auto& t : batch) {
    double len = 0;
    for (auto id : s.enc->tokenizer().encode_clap_text(t)) len += id != 0;
    tokens += len;
    // 12 layers x (c_attn 3d^2 + c_proj d^2 + fc 4d^2 + proj 4d^2) x 2 flops, attention 4 n^2 d / 2 per layer.
    flops += 12 * (24 * d * d * len + 2 * len * len * d) + 2 * (d * p + p * p);
  }
  const auto start = std::chrono::steady_clock::now();
  for (auto _ : state) benchmark::DoNotOptimize(s.enc->embed(batch));
  const double loop_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double gflops = flops * double(state.iterations()) / loop_s / 1e9;
  // sgemm reference of the same run.
  const int64_t m = static_cast<int64_t>(tokens);
  std::vector<float> x(static_cast<size_t>(m * 768), 0.5f), w(768 * 3072, 0.01f), y(static_cast<size_t>(m * 3072));
  nn::linear_kn(0, x.data(), m, 768, w.data(), 3072, nullptr, y.data());
  int reps = 0;
  const auto t0 = std::chrono::steady_clock::now();
  double el = 0;
  while (el < 0.5) {
    nn::linear_kn(0, x.data(), m, 768, w.data(), 3072, nullptr, y.data());
    ++reps;
    el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  const double sgemm_gflops = 2.0 * m * 768 * 3072 * reps / el / 1e9;
  state.counters["texts_per_s"] = benchmark::Counter(double(state.iterations() * n), benchmark::Counter::kIsRate);
  state.counters["GFLOPs"] = gflops;
  state.counters["sgemm_GFLOPs"] = sgemm_gflops;
  state.counters["vs_sgemm"] = gflops / sgemm_gflops;
  state.counters["tokens"] = tokens;
}
BENCHMARK(BM_TextEmbed)->Arg(1)->Arg(16)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);

// The papers' 8 reference texts against msclap's text embedding in PyTorch
// (scripts/dev/msclap_torch_reference.py, float32 model file, run first on the same machine):
// `process_s` is a whole `asdcap embed --text ... --threads 2` process (start, open, tokenise,
// embed, write the .npy), best of 5; `torch_s` the script's model time for the same texts (GPT-2
// over 77 padded positions per text and the projection, best of its runs); `vs_torch` their ratio.
// `min_cos` is the lowest cosine between asdcap's embeddings (in this process) and PyTorch's.
void BM_TextVsTorch(benchmark::State& state) {
  const auto dir = benchsupport::msclap_torch_dir(state);
  if (!dir) return;
  const nlohmann::json info = benchsupport::read_json(*dir + "torch.json");
  const std::vector<std::string> batch = benchsupport::read_json(*dir + "texts.json").get<std::vector<std::string>>();
  const std::string model = info["clap"].get<std::string>();
  const std::vector<float> reference = read_npy(*dir + "text_embeddings.npy").as_float();
  const std::string out = (std::filesystem::temp_directory_path() / "asdcap-bench-text-vs-torch.npy").string();
  std::string args = "embed --model " + model + " --threads 2 --out " + out;
  for (const auto& t : batch) args += " --text '" + t + "'";
  double process = 0, min_cos = 1;
  for (auto _ : state) {
    process = benchsupport::best_process_seconds(args, 5);
    TextEncoder enc(ModelFile::open(model), TextEncoderParams{2});
    const std::vector<float> e = enc.embed(batch);
    const int64_t d = enc.dim();
    for (size_t i = 0; i < batch.size(); ++i) {
      double ab = 0, aa = 0, bb = 0;
      for (int64_t j = 0; j < d; ++j) {
        const double a = e[i * d + j], b = reference[i * d + j];
        ab += a * b, aa += a * a, bb += b * b;
      }
      min_cos = std::min(min_cos, ab / std::sqrt(aa * bb));
    }
  }
  const double torch_s = info["text_s"].get<double>();
  state.counters["process_s"] = process;
  state.counters["torch_s"] = torch_s;
  state.counters["vs_torch"] = torch_s / process;
  state.counters["min_cos"] = min_cos;
  state.counters["torch_threads"] = info["threads"].get<double>();
}
BENCHMARK(BM_TextVsTorch)->Unit(benchmark::kSecond)->Iterations(1)->UseRealTime();

}  // namespace
