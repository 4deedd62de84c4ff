// Log-mel spectrogram as torchlibrosa computes it for HTSAT (n_fft 1024, hop 320, periodic Hann,
// reflect centre padding, power, Slaney mel for sr 32000, 10 log10(max(mel, 1e-10))), with FFTW
// instead of torchlibrosa's 1024 x 513 DFT convolution.
//
// The FFT, power and mel sums are done in double (exact); mel bands far below their frame's loudest
// band, where msclap's own float32 rounding is what differs, are then recomputed with msclap's
// arithmetic (stft_conv.cpp). docs/audio.md has the numbers.
#include <fftw3.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <memory>
#include <mutex>

#include "asdcap/audio.hpp"
#include "asdcap/error.hpp"
#include "audio_internal.hpp"
#include "core/parallel.hpp"

namespace asdcap {
namespace {

constexpr int kBins = kFftBins;  // 513

// librosa's Slaney mel scale (htk=False).
double hz_to_mel(double hz) {
  const double f_sp = 200.0 / 3;
  const double min_log_hz = 1000.0, min_log_mel = min_log_hz / f_sp;
  const double logstep = std::log(6.4) / 27.0;
  if (hz >= min_log_hz) return min_log_mel + std::log(hz / min_log_hz) / logstep;
  return hz / f_sp;
}

double mel_to_hz(double mel) {
  const double f_sp = 200.0 / 3;
  const double min_log_hz = 1000.0, min_log_mel = min_log_hz / f_sp;
  const double logstep = std::log(6.4) / 27.0;
  if (mel >= min_log_mel) return min_log_hz * std::exp(logstep * (mel - min_log_mel));
  return f_sp * mel;
}

// librosa.filters.mel(sr=32000, n_fft=1024, n_mels=64, fmin=50, fmax=14000) with its float32
// output: each weight is rounded to float32, then multiplied (in float64) by the Slaney norm and
// rounded again, as numpy does for `weights *= enorm`.
std::vector<float> make_mel_filters() {
  constexpr double sr = kMelSampleRate, fmin = kMelFmin, fmax = kMelFmax;
  constexpr int n_points = kMelBins + 2;
  const double min_mel = hz_to_mel(fmin), max_mel = hz_to_mel(fmax);
  const double step = (max_mel - min_mel) / (n_points - 1);  // np.linspace
  std::vector<double> mel_f(n_points);
  for (int i = 0; i < n_points; ++i)
    mel_f[static_cast<size_t>(i)] = mel_to_hz(i == n_points - 1 ? max_mel : i * step + min_mel);
  const double bin_hz = 1.0 / (kFftSize * (1.0 / sr));  // np.fft.rfftfreq
  std::vector<float> w(static_cast<size_t>(kBins * kMelBins));
  for (int m = 0; m < kMelBins; ++m) {
    const double fdiff_lo = mel_f[m + 1] - mel_f[m], fdiff_hi = mel_f[m + 2] - mel_f[m + 1];
    const double enorm = 2.0 / (mel_f[m + 2] - mel_f[m]);
    for (int k = 0; k < kBins; ++k) {
      const double f = k * bin_hz;
      const double lower = -(mel_f[m] - f) / fdiff_lo;
      const double upper = (mel_f[m + 2] - f) / fdiff_hi;
      const auto weight = static_cast<float>(std::max(0.0, std::min(lower, upper)));
      w[static_cast<size_t>(k * kMelBins + m)] = static_cast<float>(static_cast<double>(weight) * enorm);
    }
  }
  return w;
}

struct FftwFree {
  void operator()(void* p) const { fftw_free(p); }
};

// A [513 x 64] filter bank in double, kept per band as the weights of its non-zero bin range (a
// model file may carry a dense bank; msclap's has about 1,000 non-zero weights of 33,000).
struct MelBank {
  std::vector<float> source;  // the [bin][band] float weights it was built from
  std::vector<double> w;      // band m's weights for bins lo[m] .. hi[m]-1, at offset[m]
  int lo[kMelBins], hi[kMelBins], offset[kMelBins];
  explicit MelBank(const float* weights) : source(weights, weights + kBins * kMelBins) {
    for (int m = 0; m < kMelBins; ++m) {
      int a = 0, b = kBins;
      while (a < b && weights[a * kMelBins + m] == 0.0f) ++a;
      while (b > a && weights[(b - 1) * kMelBins + m] == 0.0f) --b;
      lo[m] = a;
      hi[m] = b;
      offset[m] = static_cast<int>(w.size());
      for (int k = a; k < b; ++k) w.push_back(weights[k * kMelBins + m]);
    }
  }
};

// The bank of `weights`, built once per thread for the weights last used (the same on every call in
// practice: the built-in filters or one model's melW).
const MelBank& mel_bank(const float* weights) {
  thread_local std::unique_ptr<MelBank> bank;
  if (!bank || !std::equal(bank->source.begin(), bank->source.end(), weights))
    bank = std::make_unique<MelBank>(weights);
  return *bank;
}

// Mel bands more than this far below the frame's loudest band are recomputed from msclap's float32
// convolution STFT: there its rounding noise exceeds 1e-4 dB (docs/audio.md).
constexpr float kConvBelowLoudestDb = 50.0f;
// Frames per parallel job (a 7-s window has 965).
constexpr int64_t kFramesPerChunk = 64;

// log10 of a positive normal float, in double and rounded once to float: the correctly rounded
// float log10 (as a float32 log10 such as torch's, to within its 1 ulp), in a form the compiler
// vectorises. x = 2^e m with m in [sqrt(1/2), sqrt(2)); ln m = 2 atanh(s), s = (m-1)/(m+1), |s| < 0.172,
// by its series to s^15 (relative error below 1e-12).
inline float log10_of_float(float v) {
  double x = v;
  uint64_t bits;
  std::memcpy(&bits, &x, sizeof bits);
  int64_t e = static_cast<int64_t>((bits >> 52) & 0x7ff) - 1023;
  const uint64_t mbits = (bits & 0x000fffffffffffffULL) | 0x3ff0000000000000ULL;
  double m;
  std::memcpy(&m, &mbits, sizeof m);
  const bool high = m > 1.4142135623730951;
  m = high ? 0.5 * m : m;
  e += high ? 1 : 0;
  const double s = (m - 1.0) / (m + 1.0), s2 = s * s;
  double p = 1.0 / 15;
  p = p * s2 + 1.0 / 13;
  p = p * s2 + 1.0 / 11;
  p = p * s2 + 1.0 / 9;
  p = p * s2 + 1.0 / 7;
  p = p * s2 + 1.0 / 5;
  p = p * s2 + 1.0 / 3;
  p = p * s2 + 1.0;
  const double ln = static_cast<double>(e) * 0.6931471805599453 + 2.0 * s * p;
  return static_cast<float>(ln * 0.4342944819032518);
}

// 10 log10(max(power . melW, 1e-10)) for one frame: mel sums in double over each band's non-zero
// bins (the zero weights outside them would add exact zeros), float32 log10 as torchlibrosa's
// power_to_db.
void mel_db_row(const MelBank& bank, const double* power, float* row) {
  float mel[kMelBins];
  for (int m = 0; m < kMelBins; ++m) {
    const double* wm = bank.w.data() + bank.offset[m];
    const double* pm = power + bank.lo[m];
    const int n = bank.hi[m] - bank.lo[m];
    // Four partial sums: four dependency chains instead of one (double: the order does not show
    // in the float result).
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int k = 0;
    for (; k + 4 <= n; k += 4) {
      s0 += pm[k] * wm[k];
      s1 += pm[k + 1] * wm[k + 1];
      s2 += pm[k + 2] * wm[k + 2];
      s3 += pm[k + 3] * wm[k + 3];
    }
    for (; k < n; ++k) s0 += pm[k] * wm[k];
    mel[m] = std::max(static_cast<float>((s0 + s1) + (s2 + s3)), 1e-10f);
  }
#pragma omp simd
  for (int m = 0; m < kMelBins; ++m) row[m] = 10.0f * log10_of_float(mel[m]);
}

}  // namespace

fftw_plan stft_fft_plan() {
  static std::once_flag once;
  static fftw_plan plan = nullptr;
  std::call_once(once, [] {
    std::unique_ptr<double, FftwFree> in(fftw_alloc_real(kFftSize));
    std::unique_ptr<fftw_complex, FftwFree> out(fftw_alloc_complex(kBins));
    plan = fftw_plan_dft_r2c_1d(kFftSize, in.get(), out.get(), FFTW_ESTIMATE);
  });
  if (!plan) throw Error("FFTW could not create a 1024-point plan");
  return plan;
}

const std::vector<float>& builtin_mel_filters() {
  static const std::vector<float> filters = make_mel_filters();
  return filters;
}

std::vector<float> log_mel(int threads, const float* samples, int64_t n, const float* melW) {
  if (n <= 0) throw FormatError("log_mel: empty signal");
  const std::vector<double>& window = periodic_hann_1024();
  const MelBank& bank = mel_bank(melW ? melW : builtin_mel_filters().data());
  const int64_t frames = n / kHop + 1;
  constexpr int64_t pad = kFftSize / 2;
  const std::vector<float> padded = reflect_pad(samples, n, pad);

  const fftw_plan plan = stft_fft_plan();
  constexpr int64_t kStride = kConvGroups * kConvGroupBins;  // bins per frame, padded
  // Buffers kept per calling thread: no page faults on every call (4 MB of power for a 7-s window).
  // (References, so that the parallel jobs below use the caller's, not their own thread's.)
  thread_local std::vector<double> power_buffer;
  thread_local std::vector<uint8_t> redo_buffer;
  std::vector<double>& power = power_buffer;
  std::vector<uint8_t>& redo = redo_buffer;
  // Not cleared: every bin read is written first (the FFT writes bins 0..512 of every frame; the
  // convolution, which also writes the padding up to kStride, only frames it recomputes).
  power.resize(static_cast<size_t>(frames * kStride));
  redo.assign(static_cast<size_t>(frames * kConvGroups), 0);
  std::vector<float> out(static_cast<size_t>(frames * kMelBins));
  std::atomic<bool> any{false};
  // Frames are independent: chunks of them in parallel (one window is then not one core's work).
  const int64_t chunks = (frames + kFramesPerChunk - 1) / kFramesPerChunk;
  parallel_for(threads, chunks, [&](int64_t chunk) {
    const int64_t first = chunk * kFramesPerChunk, last = std::min(frames, first + kFramesPerChunk);
    thread_local std::unique_ptr<double, FftwFree> in(fftw_alloc_real(kFftSize));
    thread_local std::unique_ptr<fftw_complex, FftwFree> spec(fftw_alloc_complex(kBins));
    if (!in || !spec) throw std::bad_alloc();
    bool found = false;
    for (int64_t t = first; t < last; ++t) {
      const float* frame = padded.data() + t * kHop;
      for (int i = 0; i < kFftSize; ++i) in.get()[i] = frame[i] * window[static_cast<size_t>(i)];
      fftw_execute_dft_r2c(plan, in.get(), spec.get());
      double* pw = power.data() + t * kStride;
      for (int k = 0; k < kBins; ++k) {
        const double re = spec.get()[k][0], im = spec.get()[k][1];
        pw[k] = re * re + im * im;
      }
      float* row = out.data() + t * kMelBins;
      mel_db_row(bank, pw, row);
      // Bands far below the frame's loudest one: msclap's own float32 rounding dominates them, so
      // their bins are recomputed msclap's way (stft_conv.cpp).
      const float loudest = *std::max_element(row, row + kMelBins);
      for (int m = 0; m < kMelBins; ++m)
        if (row[m] < loudest - kConvBelowLoudestDb && bank.hi[m] > bank.lo[m]) {
          for (int g = bank.lo[m] / kConvGroupBins; g <= (bank.hi[m] - 1) / kConvGroupBins; ++g)
            redo[static_cast<size_t>(t * kConvGroups + g)] = 1;
          found = true;
        }
    }
    if (found) any.store(true, std::memory_order_relaxed);
  });
  if (!any.load()) return out;
  parallel_for(threads, kConvGroups, [&](int64_t g) {
    std::vector<const float*> group_frames;
    std::vector<double*> group_power;
    for (int64_t t = 0; t < frames; ++t)
      if (redo[static_cast<size_t>(t * kConvGroups + g)]) {
        group_frames.push_back(padded.data() + t * kHop);
        group_power.push_back(power.data() + t * kStride + g * kConvGroupBins);
      }
    conv_stft_power(group_frames.data(), static_cast<int>(group_frames.size()), window.data(), static_cast<int>(g),
                    group_power.data());
  });
  parallel_for(threads, chunks, [&](int64_t chunk) {
    const int64_t first = chunk * kFramesPerChunk, last = std::min(frames, first + kFramesPerChunk);
    for (int64_t t = first; t < last; ++t) {
      const uint8_t* r = redo.data() + t * kConvGroups;
      if (std::any_of(r, r + kConvGroups, [](uint8_t v) { return v != 0; }))
        mel_db_row(bank, power.data() + t * kStride, out.data() + t * kMelBins);
    }
  });
  return out;
}

std::vector<float> reflect_pad(const float* samples, int64_t n, int64_t pad) {
  auto reflect = [n](int64_t i) {
    if (n == 1) return int64_t{0};
    const int64_t period = 2 * (n - 1);
    i %= period;
    if (i < 0) i += period;
    return i < n ? i : period - i;
  };
  std::vector<float> padded(static_cast<size_t>(n + 2 * pad));
  std::copy(samples, samples + n, padded.begin() + pad);
  for (int64_t i = 0; i < pad; ++i) {
    padded[static_cast<size_t>(i)] = samples[reflect(i - pad)];
    padded[static_cast<size_t>(n + pad + i)] = samples[reflect(n + i)];
  }
  return padded;
}

const std::vector<double>& periodic_hann_1024() {
  static const std::vector<double> w = [] {
    std::vector<double> v(kFftSize);
    const double step = 2.0 * M_PI / kFftSize;
    for (int i = 0; i < kFftSize; ++i) v[static_cast<size_t>(i)] = 0.5 + 0.5 * std::cos(i * step - M_PI);
    return v;
  }();
  return w;
}

}  // namespace asdcap
