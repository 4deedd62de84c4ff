// The baseline's features: librosa 0.6's melspectrogram (power 2) and 10 log10(mel + eps), then
// five frames per vector.
//
// librosa computes the FFT of the windowed frames in float64 and then stores it as complex64; its
// mel filter bank is float32 and the mel product a float32 matrix product. Here the FFT, the power,
// the mel sums and the logarithm are all double and the result is rounded once to float32; the
// filter weights are librosa's float32 values. The differences to librosa's float32 steps are a few
// 1e-7 relative in the mel power (about 1e-6 dB); tests/ae compares with an independent numpy
// implementation of the definition.
#include <fftw3.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <mutex>
#include <new>

#include "asdcap/ae.hpp"
#include "asdcap/audio.hpp"
#include "asdcap/error.hpp"
#include "audio/audio_internal.hpp"

namespace asdcap {
namespace {

constexpr int kAeNfft = 1024;
constexpr int kAeHop = 512;
constexpr int kMels = 128;
constexpr int kFrames = 5;
constexpr int kBins = kAeNfft / 2 + 1;
constexpr double kLogEps = 2.220446049250313e-16;  // sys.float_info.epsilon
static_assert(kMels * kFrames == kAeVectorDim);

// librosa's Slaney mel scale (htk=False), on float64.
double hz_to_mel(double hz) {
  const double f_sp = 200.0 / 3, min_log_hz = 1000.0, min_log_mel = min_log_hz / f_sp;
  const double logstep = std::log(6.4) / 27.0;
  if (hz >= min_log_hz) return min_log_mel + std::log(hz / min_log_hz) / logstep;
  return hz / f_sp;
}

double mel_to_hz(double mel) {
  const double f_sp = 200.0 / 3, min_log_hz = 1000.0, min_log_mel = min_log_hz / f_sp;
  const double logstep = std::log(6.4) / 27.0;
  if (mel >= min_log_mel) return min_log_hz * std::exp(logstep * (mel - min_log_mel));
  return f_sp * mel;
}

// numpy.linspace(start, stop, num)[i]: i * step + start, the last point exactly stop.
double linspace_at(double start, double stop, int num, int i) {
  if (i == num - 1) return stop;
  return i * ((stop - start) / (num - 1)) + start;
}

std::vector<float> make_filters(int sample_rate) {
  const double fmax = sample_rate / 2.0;
  constexpr int n_points = kMels + 2;
  const double min_mel = hz_to_mel(0.0), max_mel = hz_to_mel(fmax);
  std::vector<double> mel_f(n_points);
  for (int i = 0; i < n_points; ++i)
    mel_f[static_cast<size_t>(i)] = mel_to_hz(linspace_at(min_mel, max_mel, n_points, i));
  std::vector<float> w(static_cast<size_t>(kMels) * kBins);
  for (int m = 0; m < kMels; ++m) {
    const double fdiff_lo = mel_f[m + 1] - mel_f[m], fdiff_hi = mel_f[m + 2] - mel_f[m + 1];
    const double enorm = 2.0 / (mel_f[m + 2] - mel_f[m]);
    for (int k = 0; k < kBins; ++k) {
      const double f = linspace_at(0.0, fmax, kBins, k);
      const double lower = -(mel_f[m] - f) / fdiff_lo;
      const double upper = (mel_f[m + 2] - f) / fdiff_hi;
      // librosa stores the triangle in a float32 array, then multiplies it in place by the norm.
      const auto weight = static_cast<float>(std::max(0.0, std::min(lower, upper)));
      w[static_cast<size_t>(m) * kBins + k] = static_cast<float>(static_cast<double>(weight) * enorm);
    }
  }
  return w;
}

// A filter bank kept per band as its non-zero bin range, in double.
struct MelBank {
  std::vector<double> w;
  int lo[kMels], hi[kMels], offset[kMels];
  explicit MelBank(const std::vector<float>& f) {
    for (int m = 0; m < kMels; ++m) {
      const float* row = f.data() + static_cast<size_t>(m) * kBins;
      int a = 0, b = kBins;
      while (a < b && row[a] == 0.0f) ++a;
      while (b > a && row[b - 1] == 0.0f) --b;
      lo[m] = a, hi[m] = b, offset[m] = static_cast<int>(w.size());
      for (int k = a; k < b; ++k) w.push_back(row[k]);
    }
  }
};

// One bank per sample rate, built once and kept (a process sees a handful of rates).
const MelBank& mel_bank(int sample_rate) {
  static std::mutex mu;
  static std::map<int, std::unique_ptr<MelBank>> banks;
  std::lock_guard<std::mutex> lock(mu);
  auto& b = banks[sample_rate];
  if (!b) b = std::make_unique<MelBank>(make_filters(sample_rate));
  return *b;
}

struct FftwFree {
  void operator()(void* p) const { fftw_free(p); }
};

}  // namespace

std::vector<float> ae_mel_filters(int sample_rate) {
  if (sample_rate < 1) throw FormatError("ae_mel_filters: sample rate " + std::to_string(sample_rate) + " Hz");
  return make_filters(sample_rate);
}

std::vector<float> ae_log_mel(const float* mono, int64_t n, int sample_rate) {
  if (n <= 0) throw FormatError("ae_log_mel: empty signal");
  if (sample_rate < 1) throw FormatError("ae_log_mel: sample rate " + std::to_string(sample_rate) + " Hz");
  const MelBank& bank = mel_bank(sample_rate);
  static_assert(kAeNfft == 1024, "the baseline's STFT is 1024 points");
  const std::vector<double>& window = periodic_hann_1024();  // as librosa 0.6 takes it
  constexpr int64_t pad = kAeNfft / 2;
  const std::vector<float> padded = reflect_pad(mono, n, pad);
  const int64_t frames = n / kAeHop + 1;
  std::vector<float> out(static_cast<size_t>(frames * kMels));
  const fftw_plan plan = stft_fft_plan();
  // Serial: a clip is one job of a caller's loop over clips.
  std::unique_ptr<double, FftwFree> in(fftw_alloc_real(kAeNfft));
  std::unique_ptr<fftw_complex, FftwFree> spec(fftw_alloc_complex(kBins));
  if (!in || !spec) throw std::bad_alloc();
  std::vector<double> power(kBins);
  for (int64_t t = 0; t < frames; ++t) {
    const float* frame = padded.data() + t * kAeHop;
    for (int i = 0; i < kAeNfft; ++i) in.get()[i] = static_cast<double>(frame[i]) * window[static_cast<size_t>(i)];
    fftw_execute_dft_r2c(plan, in.get(), spec.get());
    for (int k = 0; k < kBins; ++k) {
      const double re = spec.get()[k][0], im = spec.get()[k][1];
      power[static_cast<size_t>(k)] = re * re + im * im;
    }
    float* row = out.data() + t * kMels;
    for (int m = 0; m < kMels; ++m) {
      const double* wm = bank.w.data() + bank.offset[m];
      double s = 0;
      for (int k = bank.lo[m]; k < bank.hi[m]; ++k) s += wm[k - bank.lo[m]] * power[static_cast<size_t>(k)];
      row[m] = static_cast<float>(10.0 * std::log10(s + kLogEps));
    }
  }
  return out;
}

std::vector<float> ae_vectors(const std::vector<float>& log_mel, int64_t frames) {
  if (static_cast<int64_t>(log_mel.size()) != frames * kMels)
    throw FormatError("ae_vectors: " + std::to_string(log_mel.size()) + " values are not " + std::to_string(frames) +
                      " frames of " + std::to_string(kMels) + " mel bands");
  const int64_t rows = std::max<int64_t>(0, frames - kFrames + 1);
  std::vector<float> v(static_cast<size_t>(rows * kAeVectorDim));
  for (int64_t t = 0; t < rows; ++t)
    std::copy(log_mel.begin() + t * kMels, log_mel.begin() + (t + kFrames) * kMels, v.begin() + t * kAeVectorDim);
  return v;
}

AeClipFeatures ae_clip_features(const std::string& path) { return ae_clip_features(decode_audio(path)); }

AeClipFeatures ae_clip_features(const DecodedAudio& audio) {
  const std::string& path = audio.info.path;
  const int ch = audio.info.channels;
  const int64_t n = audio.info.frames;
  std::vector<float> mono(static_cast<size_t>(n));
  // librosa's to_mono: numpy's float32 mean over the channels (summed in order, divided by the count).
  for (int64_t i = 0; i < n; ++i) {
    const float* s = audio.interleaved.data() + i * ch;
    float sum = s[0];
    for (int c = 1; c < ch; ++c) sum += s[c];
    mono[static_cast<size_t>(i)] = ch == 1 ? sum : sum / static_cast<float>(ch);
  }
  const int64_t frames = n / kAeHop + 1;
  if (frames < kFrames)
    throw FormatError(path + ": " + std::to_string(n) + " samples give " + std::to_string(frames) +
                      " frames, fewer than the " + std::to_string(kFrames) + " of one feature vector");
  AeClipFeatures f;
  f.sample_rate = audio.info.sample_rate;
  f.data = ae_vectors(ae_log_mel(mono.data(), n, f.sample_rate), frames);
  f.rows = frames - kFrames + 1;
  return f;
}

}  // namespace asdcap
