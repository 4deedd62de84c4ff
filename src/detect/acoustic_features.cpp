// The acoustic descriptor. Every feature is computed relative to the clip's own level, so a gain
// change moves only "level"; all values are decibels or log ratios, or mel-band indices.
#include <algorithm>
#include <cmath>
#include <complex>
#include <vector>

#include "asdcap/audio.hpp"
#include "detect/acoustic.hpp"

namespace asdcap {
namespace {

constexpr int kGroups4 = kMelBins / 4;   // 16 groups of 4 bands: spectral envelope
constexpr int kGroups8 = kMelBins / 8;   // 8 groups of 8 bands: modulation, bursts, variability
constexpr double kFloorBelowLevel = 70;  // dB under the clip level where the spectrogram is floored
constexpr double kFrameRate = static_cast<double>(kSampleRate) / kHop;  // 137.8 frames/s
// Modulation-frequency bands (Hz): octaves from 1 Hz to the frame rate's Nyquist (68.9 Hz), so a
// shaft rate, its double and the slow swells of a load change each fall in their own band.
const std::vector<double> kModEdges = {1, 2, 4, 8, 16, 32, kFrameRate / 2};
constexpr int kModBands = 6;
// Envelope analysis of the waveform: power in octave bands from a short STFT (256-point periodic Hann,
// hop 64: 5.8-ms frames, 689 per second), fine enough in time to resolve ticks and impacts that repeat
// at a shaft rate; their modulation depth over rotation rates (10-100 Hz, 600-6000 rpm) and the
// prominence of the strongest line in the envelope spectrum from 4 Hz up.
constexpr int kEnvFft = 256;
constexpr int kEnvHop = 64;
constexpr double kEnvFrameRate = static_cast<double>(kSampleRate) / kEnvHop;
const std::vector<double> kEnvBandEdges = {500, 1000, 2000, 4000, 8000, 16000};  // Hz
const std::vector<double> kEnvModEdges = {10, 100};                              // Hz
constexpr double kEnvPeakFrom = 4;                                               // Hz
constexpr double kBurstHalfWindow = 0.5;  // s each side: the local background of the burst statistics

double db(double p) { return 10 * std::log10(std::max(p, 1e-30)); }

double percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  double pos = q * static_cast<double>(v.size() - 1);
  size_t lo = static_cast<size_t>(pos);
  std::nth_element(v.begin(), v.begin() + lo, v.end());
  double a = v[lo];
  if (lo + 1 >= v.size()) return a;
  double b = *std::min_element(v.begin() + lo + 1, v.end());
  return a + (b - a) * (pos - static_cast<double>(lo));
}

void mean_std(const std::vector<double>& v, double* mean, double* stdev) {
  double m = 0;
  for (double x : v) m += x;
  m /= static_cast<double>(std::max<size_t>(1, v.size()));
  double s = 0;
  for (double x : v) s += (x - m) * (x - m);
  *mean = m;
  *stdev = std::sqrt(s / static_cast<double>(std::max<size_t>(1, v.size())));
}

// In-place radix-2 DFT (a.size() a power of two), X_k = sum_t x_t exp(-2 pi i k t / N).
void fft(std::vector<std::complex<double>>& a) {
  const size_t nfft = a.size();
  for (size_t i = 1, j = 0; i < nfft; ++i) {
    size_t bit = nfft >> 1;
    for (; j & bit; bit >>= 1) j ^= bit;
    j ^= bit;
    if (i < j) std::swap(a[i], a[j]);
  }
  for (size_t len = 2; len <= nfft; len <<= 1) {
    double ang = -2 * M_PI / static_cast<double>(len);
    std::complex<double> wl(std::cos(ang), std::sin(ang));
    for (size_t i = 0; i < nfft; i += len) {
      std::complex<double> w(1);
      for (size_t j = 0; j < len / 2; ++j) {
        auto u = a[i + j], v = a[i + j + len / 2] * w;
        a[i + j] = u + v;
        a[i + j + len / 2] = u - v;
        w *= wl;
      }
    }
  }
}

// Modulation spectrum of a band's power envelope p(t) (linear, one value per frame). The envelope is
// taken relative to its mean, r(t) = p(t) / mean(p) - 1, so the result does not depend on gain, and
// `depth[b]` is the modulation depth in modulation band b: the amplitude m of the sinusoid
// r(t) = m cos(2 pi f t) that carries the same variance, as 20 log10(m) dB (twice the one-sided
// power of r in the band; Parseval on the zero-padded DFT). `peak_ratio`: the strongest DFT bin at
// or above 1 Hz over the median bin, in dB (a periodic modulation - rotation, ticks - is a peak).
// `frame_rate`: of the envelope (Hz); modulation band b spans [edges[b], edges[b + 1]) Hz; the peak is
// sought from `peak_from` Hz up.
void modulation(const std::vector<double>& p, double frame_rate, const std::vector<double>& edges, double peak_from,
                double* depth, double* peak_ratio) {
  const size_t n = p.size();
  double m = 0;
  for (double v : p) m += v;
  m /= static_cast<double>(n);
  size_t nfft = 1;
  while (nfft < n) nfft <<= 1;
  std::vector<std::complex<double>> a(nfft);
  for (size_t i = 0; i < n; ++i) a[i] = m > 0 ? p[i] / m - 1 : 0;
  fft(a);
  // sum_k |A_k|^2 = nfft * sum_t r_t^2: |A_k|^2 / (nfft n) over the bins 1..nfft/2 adds up to half the
  // variance of r, and a sinusoid of amplitude m has variance m^2 / 2.
  const size_t bands = edges.size() - 1;
  std::vector<double> spectrum, power(bands, 0.0);
  const double scale = 1.0 / (static_cast<double>(nfft) * static_cast<double>(n));
  for (size_t i = 1; i <= nfft / 2; ++i) {
    double f = static_cast<double>(i) * frame_rate / static_cast<double>(nfft);
    double q = std::norm(a[i]) * scale;
    for (size_t b = 0; b < bands; ++b)
      if (f >= edges[b] && f < edges[b + 1] + 1e-9) power[b] += q;
    if (f >= peak_from) spectrum.push_back(q);
  }
  for (size_t b = 0; b < bands; ++b) depth[b] = db(4 * power[b] + 1e-8);  // m^2 = 2 variance = 4 power
  double peak = *std::max_element(spectrum.begin(), spectrum.end());
  double median = percentile(spectrum, 0.5);
  *peak_ratio = db(peak) - db(median);
}

// Short bursts over the local background, in a sequence of dB values x(t): the mean over t of the
// positive excess of x(t) over the median of x within +-`half` frames (dB).
double burst_excess(const std::vector<double>& x, int64_t half) {
  const auto n = static_cast<int64_t>(x.size());
  std::vector<double> win;
  double sum = 0;
  for (int64_t t = 0; t < n; ++t) {
    win.assign(x.begin() + std::max<int64_t>(0, t - half), x.begin() + std::min(n, t + half + 1));
    sum += std::max(0.0, x[t] - percentile(win, 0.5));
  }
  return sum / static_cast<double>(std::max<int64_t>(1, n));
}

// Envelope analysis of the waveform (see kEnvFft): per octave band, the modulation depth over
// rotation rates (dB) and the envelope spectrum's line prominence (dB).
void envelope_features(const float* x, int64_t n, std::vector<float>& out) {
  const size_t bands = kEnvBandEdges.size() - 1;
  std::vector<std::vector<double>> env(bands);
  std::vector<double> window(kEnvFft);
  for (int i = 0; i < kEnvFft; ++i) window[i] = 0.5 - 0.5 * std::cos(2 * M_PI * i / kEnvFft);
  std::vector<std::complex<double>> a(kEnvFft);
  double total = 0;
  int64_t frames = 0;
  for (int64_t start = 0; start + kEnvFft <= n; start += kEnvHop, ++frames) {
    for (int i = 0; i < kEnvFft; ++i) a[i] = window[i] * x[start + i];
    fft(a);
    std::vector<double> band(bands, 0.0);
    for (int k = 1; k <= kEnvFft / 2; ++k) {
      const double f = static_cast<double>(k) * kSampleRate / kEnvFft, q = std::norm(a[k]);
      total += q;
      for (size_t b = 0; b < bands; ++b)
        if (f >= kEnvBandEdges[b] && f < kEnvBandEdges[b + 1]) band[b] += q;
    }
    for (size_t b = 0; b < bands; ++b) env[b].push_back(band[b]);
  }
  // Floor 70 dB under the mean power per frame, as the spectrogram: a band the recording cannot
  // contain (above its Nyquist) reads as unmodulated.
  const double floor_power =
      std::pow(10.0, -kFloorBelowLevel / 10) * total / static_cast<double>(std::max<int64_t>(1, frames));
  for (size_t b = 0; b < bands; ++b) {
    double depth = db(1e-8), peak = 0;
    if (frames >= 4) {
      for (double& v : env[b]) v += floor_power;
      modulation(env[b], kEnvFrameRate, kEnvModEdges, kEnvPeakFrom, &depth, &peak);
    }
    out.push_back(static_cast<float>(depth));
    out.push_back(static_cast<float>(peak));
  }
}

}  // namespace

const std::vector<AcousticFeatureInfo>& acoustic_feature_info() {
  static const std::vector<AcousticFeatureInfo> info = [] {
    std::vector<AcousticFeatureInfo> v;
    v.push_back({"level", "dB"});
    for (int g = 0; g < kGroups4; ++g) v.push_back({"band_mean_" + std::to_string(g), "dB"});
    for (const char* k : {"loudness_iqr", "loudness_p95", "loudness_p5", "loudness_p1"}) v.push_back({k, "dB"});
    for (const char* k : {"flux_mean", "flux_p50"}) v.push_back({k, "dB"});
    for (int g = 0; g < kGroups8; ++g)
      for (int b = 0; b < kModBands; ++b) v.push_back({"mod_" + std::to_string(g) + "_" + std::to_string(b), "dB"});
    for (int g = 0; g < kGroups8; ++g) v.push_back({"mod_peak_" + std::to_string(g), "dB"});
    for (int g = 0; g < kGroups8; ++g) v.push_back({"burst_mean_" + std::to_string(g), "dB"});
    for (int g = 0; g < kGroups8; ++g) v.push_back({"band_iqr_" + std::to_string(g), "dB"});
    for (size_t b = 0; b + 1 < kEnvBandEdges.size(); ++b) {
      const std::string band = std::to_string(static_cast<int>(kEnvBandEdges[b])) + "_" +
                               std::to_string(static_cast<int>(kEnvBandEdges[b + 1]));
      v.push_back({"env_depth_" + band, "dB"});
      v.push_back({"env_peak_" + band, "dB"});
    }
    for (const char* k : {"centroid_mean", "centroid_std"}) v.push_back({k, "band"});
    for (const char* k : {"flatness_mean", "flatness_std", "crest_mean", "crest_std"}) v.push_back({k, "dB"});
    return v;
  }();
  return info;
}

int acoustic_dim() { return static_cast<int>(acoustic_feature_info().size()); }

std::vector<float> acoustic_features(const float* samples, int64_t n, int threads) {
  const std::vector<float> mel = log_mel(threads, samples, n);
  const float* lm = mel.data();
  const auto frames = static_cast<int64_t>(mel.size() / kMelBins);
  const int64_t T = std::max<int64_t>(frames, 1);
  const int B = kMelBins;
  // Clip level (energy based, so it follows the loud bands), then floor the spectrogram 70 dB below
  // it: bands the recording cannot contain (above its Nyquist) then read as constant.
  double total = 0;
  for (int64_t i = 0; i < frames * B; ++i) total += std::pow(10.0, lm[i] / 10);
  const double level = db(total / static_cast<double>(T * B));
  const double floor_db = level - kFloorBelowLevel;
  std::vector<double> L(static_cast<size_t>(T * B), floor_db), P(static_cast<size_t>(T * B));
  for (int64_t i = 0; i < frames * B; ++i) L[i] = std::max<double>(lm[i], floor_db) - level;
  for (size_t i = 0; i < L.size(); ++i) P[i] = std::pow(10.0, L[i] / 10);

  std::vector<float> out;
  out.reserve(acoustic_feature_info().size());
  auto push = [&](double v) { out.push_back(static_cast<float>(v)); };
  push(level);

  // Spectral envelope per group of 4 bands: the mean of its dB envelope (relative to the level).
  std::vector<std::vector<double>> g4(kGroups4, std::vector<double>(static_cast<size_t>(T)));
  for (int g = 0; g < kGroups4; ++g)
    for (int64_t t = 0; t < T; ++t) {
      double s = 0;
      for (int b = 4 * g; b < 4 * g + 4; ++b) s += P[t * B + b];
      g4[g][t] = db(s / 4);
    }
  for (int g = 0; g < kGroups4; ++g) {
    double m, sd;
    mean_std(g4[g], &m, &sd);
    push(m);
  }

  // Frame loudness: its spread, its upper tail (impacts) and its dips (drop-outs).
  std::vector<double> loud(static_cast<size_t>(T));
  for (int64_t t = 0; t < T; ++t) {
    double s = 0;
    for (int b = 0; b < B; ++b) s += P[t * B + b];
    loud[t] = db(s / B);
  }
  {
    double med = percentile(loud, 0.5);
    push(percentile(loud, 0.75) - percentile(loud, 0.25));
    push(percentile(loud, 0.95) - med);
    push(med - percentile(loud, 0.05));
    push(med - percentile(loud, 0.01));
  }
  // Spectral flux: mean rise in dB per band from one frame to the next.
  {
    std::vector<double> flux;
    for (int64_t t = 1; t < T; ++t) {
      double s = 0;
      for (int b = 0; b < B; ++b) s += std::max(0.0, L[t * B + b] - L[(t - 1) * B + b]);
      flux.push_back(s / B);
    }
    if (flux.empty()) flux.push_back(0);
    double m, sd;
    mean_std(flux, &m, &sd);
    push(m);
    push(percentile(flux, 0.5));
  }
  // Per group of 8 bands: the modulation spectrum of its power envelope, its short bursts and the
  // interquartile range of its dB envelope (temporal variability; robust: a single loud event in the
  // background does not move it).
  {
    std::vector<double> peaks, burst_mean, iqr;
    const auto half = static_cast<int64_t>(std::lround(kBurstHalfWindow * kFrameRate));
    for (int g = 0; g < kGroups8; ++g) {
      std::vector<double> env(static_cast<size_t>(T)), env_db(static_cast<size_t>(T));
      for (int64_t t = 0; t < T; ++t) {
        double s = 0;
        for (int b = 8 * g; b < 8 * g + 8; ++b) s += P[t * B + b];
        env[t] = s / 8;
        env_db[t] = db(env[t]);
      }
      double depth[kModBands], peak = 0;
      if (T >= 4)
        modulation(env, kFrameRate, kModEdges, 1.0, depth, &peak);
      else
        std::fill(depth, depth + kModBands, db(1e-8));
      for (int b = 0; b < kModBands; ++b) push(depth[b]);
      peaks.push_back(peak);
      burst_mean.push_back(burst_excess(env_db, half));
      iqr.push_back(percentile(env_db, 0.75) - percentile(env_db, 0.25));
    }
    for (auto* v : {&peaks, &burst_mean, &iqr})
      for (double x : *v) push(x);
  }
  envelope_features(samples, n, out);
  // Spectral shape per frame: centroid (band index), flatness and crest (dB).
  {
    std::vector<double> centroid, flatness, crest;
    for (int64_t t = 0; t < T; ++t) {
      double s = 0, sb = 0, slog = 0, mx = 0;
      for (int b = 0; b < B; ++b) {
        double p = P[t * B + b];
        s += p;
        sb += p * b;
        slog += L[t * B + b];
        mx = std::max(mx, p);
      }
      double mean_p = s / B;
      centroid.push_back(sb / s);
      flatness.push_back(slog / B - db(mean_p));
      crest.push_back(db(mx) - db(mean_p));
    }
    for (auto* v : {&centroid, &flatness, &crest}) {
      double m, sd;
      mean_std(*v, &m, &sd);
      push(m);
      push(sd);
    }
  }
  return out;
}

}  // namespace asdcap
