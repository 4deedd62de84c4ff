// The audio front end per 10-s clip (16 kHz input already in memory: resample to 44.1 kHz, 7-s
// window(s), log-mel, HTSAT image), and in the same run the FFTs alone (965 1024-point FFTs per
// window through the same FFTW plan). Counter ratio_vs_fft = front end time / FFT-only time, both
// in thread CPU time, on one thread (asdcap runs the frames of a window on all threads; the ratio is
// the work); fft_ms_per_clip is the FFT-only CPU time.
#include <benchmark/benchmark.h>

#include <time.h>

#include <cmath>
#include <memory>
#include <random>

#include "asdcap/audio.hpp"
#include "asdcap/clap.hpp"
#include "audio/audio_internal.hpp"

namespace {

// Thread CPU time: the machine may be shared, and both sides of the ratio should count only
// the work of this thread.
double cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

std::vector<float> ten_seconds_16k() {
  std::mt19937 rng(7);
  std::normal_distribution<float> noise(0.0f, 0.02f);
  std::vector<float> x(160000);
  for (size_t i = 0; i < x.size(); ++i) {
    const double t = double(i) / 16000.0;
    x[i] = float(0.3 * std::sin(2 * M_PI * 64.5 * t) + 0.1 * std::sin(2 * M_PI * 2100.0 * t)) + noise(rng);
  }
  return x;
}

struct FftwFree {
  void operator()(void* p) const { fftw_free(p); }
};

// What the FFTs alone cost for `windows` 7-s windows: 965 r2c transforms each (input copy only).
double fft_only_seconds(int64_t windows, int64_t repeats, const std::vector<float>& signal) {
  const fftw_plan plan = asdcap::stft_fft_plan();
  std::unique_ptr<double, FftwFree> in(fftw_alloc_real(asdcap::kFftSize));
  std::unique_ptr<fftw_complex, FftwFree> out(fftw_alloc_complex(asdcap::kFftSize / 2 + 1));
  double sink = 0;
  const double t0 = cpu_seconds();
  for (int64_t r = 0; r < repeats; ++r)
    for (int64_t w = 0; w < windows; ++w)
      for (int f = 0; f < asdcap::kWindowFrames; ++f) {
        const float* frame = signal.data() + (f * asdcap::kHop) % (signal.size() - asdcap::kFftSize);
        for (int i = 0; i < asdcap::kFftSize; ++i) in.get()[i] = frame[i];
        fftw_execute_dft_r2c(plan, in.get(), out.get());
        sink += out.get()[1][0];
      }
  benchmark::DoNotOptimize(sink);
  return cpu_seconds() - t0;
}

void front_end(benchmark::State& state, const char* policy) {
  const std::vector<float> clip = ten_seconds_16k();
  const asdcap::CropPolicy crop = asdcap::CropPolicy::parse(policy);
  int64_t windows = 0;
  const double t0 = cpu_seconds();
  for (auto _ : state) {
    const std::vector<float> at44 = asdcap::resample(clip, 16000, asdcap::kSampleRate);
    const auto starts = asdcap::window_starts(static_cast<int64_t>(at44.size()), crop);
    for (int64_t s : starts) {
      const std::vector<float> w = asdcap::window_at(at44, s);
      const std::vector<float> mel = asdcap::log_mel(1, w.data(), asdcap::kWindowSamples);
      benchmark::DoNotOptimize(asdcap::wav_to_image(mel.data()));  // bn0 omitted (64 affine maps)
    }
    windows = static_cast<int64_t>(starts.size());
  }
  const double front_seconds = cpu_seconds() - t0;
  const double fft_seconds = fft_only_seconds(windows, static_cast<int64_t>(state.iterations()),
                                              asdcap::resample(clip, 16000, asdcap::kSampleRate));
  state.counters["windows"] = double(windows);
  state.counters["ratio_vs_fft"] = front_seconds / fft_seconds;
  state.counters["fft_ms_per_clip"] = 1e3 * fft_seconds / double(state.iterations());
}

void BM_FrontEndOneWindow(benchmark::State& state) { front_end(state, "random:1"); }
void BM_FrontEndCover(benchmark::State& state) { front_end(state, "cover"); }

// Resampling 10 s at 16 kHz to 44.1 kHz alone, as a ratio to the FFTs of one window.
void BM_Resample16kTo44k(benchmark::State& state) {
  const std::vector<float> clip = ten_seconds_16k();
  const double t0 = cpu_seconds();
  for (auto _ : state) benchmark::DoNotOptimize(asdcap::resample(clip, 16000, asdcap::kSampleRate));
  const double seconds = cpu_seconds() - t0;
  const double fft_seconds =
      fft_only_seconds(1, static_cast<int64_t>(state.iterations()), asdcap::resample(clip, 16000, asdcap::kSampleRate));
  state.counters["ratio_vs_fft_of_one_window"] = seconds / fft_seconds;
}

BENCHMARK(BM_FrontEndOneWindow)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_FrontEndCover)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Resample16kTo44k)->Unit(benchmark::kMillisecond);

}  // namespace
