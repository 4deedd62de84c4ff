// Caption decoder speed on a full-size random model (msclap 2023 sizes: GPT-2 768 x 12 layers,
// vocabulary 50257, mapper 8 layers). Beams never stop (stop id -1) so every caption is 67 steps.
//   build-e/bench/bench_caption
// BM_CaptionCached/<beam>: captions/s and tokens/s of asdcap's cached decoder.
// BM_CachedVsNaive/<steps>: the same search run cached and naive (msclap's recomputation) in the
//   same process; counter naive_over_cached.
// BM_CachedVsNaive67: cached at 67 steps against the naive cost at 67 steps, estimated from three
//   measured naive steps (lengths 41, 74, 107; Simpson's rule, exact for the linear + quadratic
//   growth of a step's cost with the sequence length) to keep the benchmark short.
// BM_CaptionVsTorch: whole asdcap processes against msclap's decoding in PyTorch
//   (ASDCAP_MSCLAP_TORCH_DIR; skipped without it).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <tuple>
#include <utility>

#include "asdcap/caption.hpp"
#include "asdcap/npy.hpp"
#include "audio/wav_encode.hpp"
#include "support/random_model.hpp"
#include "torch_reference.hpp"

using namespace asdcap;

namespace {

struct Setup {
  std::shared_ptr<const ModelFile> model;
  std::unique_ptr<Captioner> captioner;
  std::vector<float> prefix;  // [40, 768]
  int64_t n_prefix = 0;
  Setup() {
    model = ModelFile::open(test::random_full_model_path(false, true));
    captioner = std::make_unique<Captioner>(model);
    std::mt19937 rng(5);
    std::normal_distribution<float> nd;
    std::vector<float> emb(static_cast<size_t>(captioner->embedding_dim()));
    for (auto& v : emb) v = nd(rng);
    prefix = captioner->prefix_embeddings(emb.data());
    n_prefix = static_cast<int64_t>(prefix.size()) / captioner->decoder().n_embd();
    beam_search(captioner->decoder(), prefix.data(), n_prefix, 5, 2, 1.f, -1, true);  // warm-up (f16 -> f32)
  }
};
Setup& setup() {
  static Setup s;
  return s;
}

double seconds_of(const std::function<void()>& f) {
  const auto t0 = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// A STREAM-like copy's bandwidth: read + write of a 256 MiB buffer, best of 3, in GB/s.
double copy_gbps() {
  std::vector<float> a(size_t{64} << 20, 1.f), b(a.size());
  double copy = 1e30;
  for (int i = 0; i < 3; ++i) copy = std::min(copy, seconds_of([&] { std::copy(a.begin(), a.end(), b.begin()); }));
  benchmark::DoNotOptimize(b.data());
  return 2.0 * static_cast<double>(a.size() * sizeof(float)) / copy / 1e9;
}

void BM_CaptionCached(benchmark::State& state) {
  auto& s = setup();
  const int beam = static_cast<int>(state.range(0));
  int steps = 0;
  for (auto _ : state) {
    auto r = beam_search(s.captioner->decoder(), s.prefix.data(), s.n_prefix, beam, 67, 1.f, -1, true);
    steps = r.steps;
    benchmark::DoNotOptimize(r);
  }
  state.counters["captions_per_s"] = benchmark::Counter(double(state.iterations()), benchmark::Counter::kIsRate);
  state.counters["tokens_per_s"] = benchmark::Counter(double(state.iterations()) * steps, benchmark::Counter::kIsRate);
  state.counters["steps"] = steps;
}
BENCHMARK(BM_CaptionCached)->Arg(5)->Arg(1)->Unit(benchmark::kSecond)->Iterations(1)->UseRealTime();

void BM_CachedVsNaive(benchmark::State& state) {
  auto& s = setup();
  const int steps = static_cast<int>(state.range(0));
  double cached = 0, naive = 0;
  for (auto _ : state) {
    cached +=
        seconds_of([&] { beam_search(s.captioner->decoder(), s.prefix.data(), s.n_prefix, 5, steps, 1.f, -1, true); });
    naive +=
        seconds_of([&] { beam_search(s.captioner->decoder(), s.prefix.data(), s.n_prefix, 5, steps, 1.f, -1, false); });
  }
  state.counters["cached_s"] = cached / double(state.iterations());
  state.counters["naive_s"] = naive / double(state.iterations());
  state.counters["naive_over_cached"] = naive / cached;
}
BENCHMARK(BM_CachedVsNaive)->Arg(8)->Unit(benchmark::kSecond)->Iterations(1)->UseRealTime();

void BM_CachedVsNaive67(benchmark::State& state) {
  auto& s = setup();
  const Gpt2& g = s.captioner->decoder();
  const int64_t d = g.n_embd(), beam = 5;
  double cached = 0, naive = 0;
  for (auto _ : state) {
    cached += seconds_of([&] { beam_search(g, s.prefix.data(), s.n_prefix, 5, 67, 1.f, -1, true); });
    // One naive step = GPT-2 over the whole [beam, length] sequence + the last position's logits.
    auto naive_step = [&](int64_t len) {
      std::vector<float> x(static_cast<size_t>(beam * len * d), 0.01f), h(x.size()),
          logits(static_cast<size_t>(beam * g.vocab()));
      return seconds_of([&] {
        g.forward_nocache(x.data(), beam, len, h.data());
        for (int64_t b = 0; b < beam; ++b)
          g.logits(h.data() + (b * len + len - 1) * d, 1, logits.data() + b * g.vocab());
      });
    };
    const int64_t first = s.n_prefix + 1, last = s.n_prefix + 66;  // steps 2..67 (step 1 is shared)
    const double f0 = naive_step(first), f1 = naive_step((first + last) / 2), f2 = naive_step(last);
    const double prefix_step = seconds_of([&] {
      std::vector<float> h(s.prefix.size()), logits(static_cast<size_t>(g.vocab()));
      g.forward_nocache(s.prefix.data(), 1, s.n_prefix, h.data());
      g.logits(h.data() + (s.n_prefix - 1) * d, 1, logits.data());
    });
    naive += prefix_step + 66.0 * (f0 + 4 * f1 + f2) / 6.0;
  }
  state.counters["cached_s"] = cached / double(state.iterations());
  state.counters["naive_est_s"] = naive / double(state.iterations());
  state.counters["naive_over_cached"] = naive / cached;
}
BENCHMARK(BM_CachedVsNaive67)->Unit(benchmark::kSecond)->Iterations(1)->UseRealTime();

// 1 caption vs 15 captions batched (beam 5, `steps` decoding steps each, no stop token): captions/s
// of both and their ratio, plus the decoder's streamed weights per step (every GEMM weight and the
// lm_head, float32) over the time of one batched step, against a STREAM-like copy's bandwidth.
void BM_CaptionBatched(benchmark::State& state) {
  auto& s = setup();
  const Gpt2& g = s.captioner->decoder();
  const int steps = static_cast<int>(state.range(0)), batch = 15;
  std::vector<const float*> many(batch, s.prefix.data());
  double one = 0, all = 0, first_step = 0;
  for (auto _ : state) {
    one = seconds_of([&] { beam_search(g, s.prefix.data(), s.n_prefix, 5, steps, 1.f, -1, true); });
    all = seconds_of([&] { beam_search_batch(g, many, s.n_prefix, 5, steps, 1.f, -1, batch); });
    first_step = seconds_of([&] { beam_search_batch(g, many, s.n_prefix, 5, 1, 1.f, -1, batch); });
  }
  const double copy_gbs = copy_gbps();
  const double d = static_cast<double>(g.n_embd());
  // The layers' GEMM weights in their stored precision (f16 here: 2 bytes), the lm_head in float32.
  const double weight_bytes =
      2.0 * 12.0 * d * d * static_cast<double>(g.config().n_layer) + 4.0 * static_cast<double>(g.vocab()) * d;
  const double per_step = (all - first_step) / (steps - 1);
  state.counters["captions_per_s_1"] = 1.0 / one;
  state.counters["captions_per_s_15"] = batch / all;
  state.counters["batched_speedup"] = (batch / all) / (1.0 / one);
  state.counters["step_ms_15"] = per_step * 1e3;
  state.counters["weights_GBps"] = weight_bytes / per_step / 1e9;
  state.counters["weights_GBps_1"] = weight_bytes / (one / steps) / 1e9;  // one caption, per step (approx.)
  state.counters["copy_GBps"] = copy_gbs;
  state.counters["weights_over_copy"] = weight_bytes / per_step / 1e9 / copy_gbs;
}
BENCHMARK(BM_CaptionBatched)->Arg(12)->Unit(benchmark::kSecond)->Iterations(1)->UseRealTime();

// Seconds of one caption (beam 5, `steps` steps) with the f16 model and with `other`, the best of two
// each, interleaved: {f16, other}.
std::pair<double, double> f16_against(const Captioner& other, int steps) {
  auto& s = setup();
  auto caption = [&](const Captioner& c) {
    return seconds_of([&] { beam_search(c.decoder(), s.prefix.data(), s.n_prefix, 5, steps, 1.f, -1, true); });
  };
  beam_search(other.decoder(), s.prefix.data(), s.n_prefix, 5, 2, 1.f, -1, true);  // warm-up
  double t16 = 1e30, t_other = 1e30;
  for (int i = 0; i < 2; ++i) {
    t16 = std::min(t16, caption(*s.captioner));
    t_other = std::min(t_other, caption(other));
  }
  return {t16, t_other};
}

// One caption (beam 5, `steps` steps, no stop token) with the f16 model against the same random
// model stored in f32, in the same run: f16 weights stay 16-bit in the packed panels (half the bytes
// streamed per step) and give the f32 model's captions on the widened weights. Counter f16_over_f32:
// captions/s of the f16 model over the f32 model's.
void BM_CaptionF16VsF32(benchmark::State& state) {
  const Captioner f32(ModelFile::open(test::random_full_model_path(false, true, DType::F32)));
  const int steps = static_cast<int>(state.range(0));
  double t16 = 0, t32 = 0;
  for (auto _ : state) std::tie(t16, t32) = f16_against(f32, steps);
  state.counters["step_ms_f16"] = t16 / steps * 1e3;
  state.counters["step_ms_f32"] = t32 / steps * 1e3;
  state.counters["f16_over_f32"] = t32 / t16;
}
BENCHMARK(BM_CaptionF16VsF32)->Arg(12)->Unit(benchmark::kSecond)->Iterations(1)->UseRealTime();

// One caption (beam 5, `steps` steps, no stop token) with the int8 model (the f16 model's matrices
// quantized, convert --relayout --dtype int8) against the f16 model, in the same run; and the
// decoder's streamed weights per step of the int8 model (GEMM matrices 1 byte, the lm_head's int8
// table) over a STREAM-like copy's bandwidth. Counter int8_over_f16: captions/s ratio.
void BM_CaptionInt8VsF16(benchmark::State& state) {
  const Captioner q8(ModelFile::open(test::random_full_model_path(false, true, DType::I8)));
  const int steps = static_cast<int>(state.range(0));
  double t16 = 0, t8 = 0;
  for (auto _ : state) std::tie(t16, t8) = f16_against(q8, steps);
  const double copy_gbs = copy_gbps();
  const Gpt2& g = q8.decoder();
  const double d = static_cast<double>(g.n_embd());
  const double weight_bytes =
      12.0 * d * d * static_cast<double>(g.config().n_layer) + static_cast<double>(g.vocab()) * d;
  state.counters["step_ms_f16"] = t16 / steps * 1e3;
  state.counters["step_ms_int8"] = t8 / steps * 1e3;
  state.counters["int8_over_f16"] = t16 / t8;
  state.counters["int8_weights_over_copy"] = weight_bytes / (t8 / steps) / 1e9 / copy_gbs;
}
BENCHMARK(BM_CaptionInt8VsF16)->Arg(12)->Unit(benchmark::kSecond)->Iterations(1)->UseRealTime();

// The caption mapper on 15 clips: mapped together (CaptionMapper::map_batch: each weight matrix read,
// and widened from f16, once for all clips, the clips on the threads) against one clip at a time
// (map(), its own blocks and heads on the threads), best of three interleaved rounds each; the
// results are the same bits (test_caption_random). Counters: clips/s of both and their ratio.
void BM_MapperBatched(benchmark::State& state) {
  auto& s = setup();
  const CaptionMapper mapper(s.model);
  std::mt19937 rng(9);
  std::normal_distribution<float> nd;
  std::vector<std::vector<float>> inputs(15, std::vector<float>(static_cast<size_t>(mapper.input_dim())));
  std::vector<const float*> ptrs;
  for (auto& v : inputs) {
    double ss = 0;
    for (auto& x : v) {
      x = nd(rng);
      ss += static_cast<double>(x) * x;
    }
    for (auto& x : v) x = static_cast<float>(x / std::sqrt(ss));
    ptrs.push_back(v.data());
  }
  double batched = 1e30, single = 1e30;
  for (auto _ : state)
    for (int round = 0; round < 3; ++round) {
      batched = std::min(batched, seconds_of([&] { benchmark::DoNotOptimize(mapper.map_batch(ptrs)); }));
      single = std::min(single, seconds_of([&] {
                          for (const float* p : ptrs) benchmark::DoNotOptimize(mapper.map(p));
                        }));
    }
  const auto clips = static_cast<double>(ptrs.size());
  state.counters["clips_per_s_batched"] = clips / batched;
  state.counters["clips_per_s_one_at_a_time"] = clips / single;
  state.counters["batched_speedup"] = single / batched;
}
BENCHMARK(BM_MapperBatched)->Unit(benchmark::kSecond)->Iterations(1)->UseRealTime();

// 7 s of seeded noise at 44.1 kHz as a 16-bit mono WAV file.
void write_noise_wav(const std::string& path, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.f, 0.09f);
  std::vector<float> x(7 * 44100);
  for (float& v : x) v = std::clamp(nd(rng), -0.98f, 0.98f);
  std::ofstream(path, std::ios::binary) << audio::wav_pcm16(x.data(), x.size(), 44100);
}

// Captions (beam 5, the reference's step count, stop token 220) against msclap's decoding in
// PyTorch (scripts/dev/msclap_torch_reference.py, float32 captioner, run first on the same machine;
// its time covers the mapper and the beam search, recomputing GPT-2 over the whole sequence at each
// step as msclap does, not the audio encoder). `process_1_s`: a whole `asdcap caption` process of one
// 7-s clip (start, open, decode, audio encoder, mapper, beam search), best of 3; `process_15_s`: one
// process captioning 15 clips (batched), best of 3 (as the script times PyTorch). `vs_torch_1` = torch_s / process_1_s,
// `vs_torch_15` = 15 torch_s / process_15_s; the same with `_f16` for the float16 file of the same
// weights when there is one (next to a random model's _f32 file). `tokens_equal`: asdcap's best beam from the script's
// embedding (in this process) has the tokens of PyTorch's.
void BM_CaptionVsTorch(benchmark::State& state) {
  const auto dir = benchsupport::msclap_torch_dir(state);
  if (!dir) return;
  const nlohmann::json info = benchsupport::read_json(*dir + "torch.json");
  const std::string model = info["cap"].get<std::string>();
  const int steps = info["steps"].get<int>();
  const std::vector<int64_t> want = benchsupport::read_json(*dir + "caption_tokens.json")["best"];
  namespace fs = std::filesystem;
  const fs::path clips = fs::temp_directory_path() / "asdcap-bench-caption-vs-torch";
  fs::create_directories(clips);
  std::string all;
  for (unsigned i = 0; i < 15; ++i) {
    const std::string wav = (clips / ("clip" + std::to_string(i) + ".wav")).string();
    write_noise_wav(wav, i + 1);
    all += " " + wav;
  }
  // The f16 file of the same weights (the random models' naming: ..._f32.gguf -> ..._f16.gguf), if any.
  std::string half = model;
  if (half.size() > 9 && half.compare(half.size() - 9, 9, "_f32.gguf") == 0)
    half.replace(half.size() - 9, 9, "_f16.gguf");
  if (half == model || !fs::exists(half)) half.clear();
  const auto args = [&](const std::string& m, const std::string& files) {
    return "caption --model " + m + " --threads 2 --beam 5 --max-tokens " + std::to_string(steps) + files;
  };
  const std::string first = " " + (clips / "clip0.wav").string();
  double one = 0, fifteen = 0, one16 = 0, fifteen16 = 0;
  bool equal = false;
  for (auto _ : state) {
    one = benchsupport::best_process_seconds(args(model, first), 3);
    fifteen = benchsupport::best_process_seconds(args(model, all), 3);
    if (!half.empty()) {
      one16 = benchsupport::best_process_seconds(args(half, first), 3);
      fifteen16 = benchsupport::best_process_seconds(args(half, all), 3);
    }
    const auto file = ModelFile::open(model);
    const Captioner c(file);
    const std::vector<float> emb = read_npy(*dir + "caption_embedding.npy").as_float();
    const std::vector<float> prefix = c.prefix_embeddings(emb.data());
    const auto r = beam_search(c.decoder(), prefix.data(), static_cast<int64_t>(prefix.size()) / c.decoder().n_embd(),
                               5, steps, 1.f, file->config().stop_id, true);
    const std::vector<int64_t>& got = r.beams.at(0).tokens;
    equal = got.size() <= want.size() && std::equal(got.begin(), got.end(), want.begin());
  }
  const double torch_s = info["decode_s"].get<double>();
  state.counters["process_1_s"] = one;
  state.counters["process_15_s"] = fifteen;
  state.counters["torch_s"] = torch_s;
  state.counters["vs_torch_1"] = torch_s / one;
  state.counters["vs_torch_15"] = 15 * torch_s / fifteen;
  if (!half.empty()) {
    state.counters["process_1_s_f16"] = one16;
    state.counters["process_15_s_f16"] = fifteen16;
    state.counters["vs_torch_1_f16"] = torch_s / one16;
    state.counters["vs_torch_15_f16"] = 15 * torch_s / fifteen16;
  }
  state.counters["tokens_equal"] = equal ? 1 : 0;
  state.counters["torch_threads"] = info["threads"].get<double>();
}
BENCHMARK(BM_CaptionVsTorch)->Unit(benchmark::kSecond)->Iterations(1)->UseRealTime();

}  // namespace
