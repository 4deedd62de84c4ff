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

constexpr int kGroups4 = kMelBins / 4;   // 16 groups of 4 bands: temporal statistics
constexpr int kGroups8 = kMelBins / 8;   // 8 groups of 8 bands: modulation spectra
constexpr double kFloorBelowLevel = 70;  // dB under the clip level where the spectrogram is floored
constexpr double kFrameRate = static_cast<double>(kSampleRate) / kHop;  // 137.8 frames/s
// Modulation-frequency bands (Hz): slow swells, rhythm, rattles/knock rates, rotation rates.
constexpr double kModEdges[] = {0.5, 2, 6, 16, 40, kFrameRate / 2};
constexpr int kModBands = 5;

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

// Power of the mean-removed sequence in each modulation band, and the peak-to-median ratio of its
// spectrum above 1 Hz (a strong periodic modulation - rotation, rattle - shows as a peak).
void modulation(const std::vector<double>& x, double* band_power, double* peak_ratio) {
  const size_t n = x.size();
  double m = 0;
  for (double v : x) m += v;
  m /= static_cast<double>(n);
  size_t nfft = 1;
  while (nfft < n) nfft <<= 1;
  // Real DFT by a radix-2 FFT on the zero-padded sequence (small: 1024 points).
  std::vector<std::complex<double>> a(nfft);
  for (size_t i = 0; i < n; ++i) a[i] = x[i] - m;
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
  std::vector<double> spectrum;
  for (int b = 0; b < kModBands; ++b) band_power[b] = 0;
  for (size_t i = 1; i <= nfft / 2; ++i) {
    double f = static_cast<double>(i) * kFrameRate / static_cast<double>(nfft);
    double p = std::norm(a[i]) / (static_cast<double>(n) * static_cast<double>(n));
    for (int b = 0; b < kModBands; ++b)
      if (f >= kModEdges[b] && f < kModEdges[b + 1] + 1e-9) band_power[b] += p;
    if (f >= 1.0) spectrum.push_back(p);
  }
  double peak = *std::max_element(spectrum.begin(), spectrum.end());
  double median = percentile(spectrum, 0.5);
  *peak_ratio = db(peak) - db(median);
}

}  // namespace

const std::vector<AcousticFeatureInfo>& acoustic_feature_info() {
  static const std::vector<AcousticFeatureInfo> info = [] {
    std::vector<AcousticFeatureInfo> v;
    v.push_back({"level", "dB"});
    for (int b = 0; b < kMelBins; ++b) v.push_back({"band_mean_" + std::to_string(b), "dB"});
    for (int g = 0; g < kGroups4; ++g) v.push_back({"band_std_" + std::to_string(g), "dB"});
    for (int g = 0; g < kGroups4; ++g) v.push_back({"band_peak_" + std::to_string(g), "dB"});
    for (const char* k : {"loudness_std", "loudness_p99", "loudness_p95", "loudness_p5", "loudness_p1"})
      v.push_back({k, "dB"});
    for (const char* k : {"flux_mean", "flux_p50", "flux_p99"}) v.push_back({k, "dB"});
    for (int g = 0; g < kGroups8; ++g)
      for (int b = 0; b < kModBands; ++b) v.push_back({"mod_" + std::to_string(g) + "_" + std::to_string(b), "dB"});
    for (int g = 0; g < kGroups8; ++g) v.push_back({"mod_peak_" + std::to_string(g), "dB"});
    for (const char* k : {"centroid_mean", "centroid_std"}) v.push_back({k, "band"});
    for (const char* k : {"flatness_mean", "flatness_std", "crest_mean", "crest_std"}) v.push_back({k, "dB"});
    return v;
  }();
  return info;
}

int acoustic_dim() { return static_cast<int>(acoustic_feature_info().size()); }

std::vector<float> acoustic_features(const float* log_mel, int64_t frames) {
  const int64_t T = std::max<int64_t>(frames, 1);
  const int B = kMelBins;
  // Clip level (energy based, so it follows the loud bands), then floor the spectrogram 70 dB below
  // it: bands the recording cannot contain (above its Nyquist) then read as constant.
  double total = 0;
  for (int64_t i = 0; i < frames * B; ++i) total += std::pow(10.0, log_mel[i] / 10);
  const double level = db(total / static_cast<double>(T * B));
  const double floor_db = level - kFloorBelowLevel;
  std::vector<double> L(static_cast<size_t>(T * B), floor_db), P(static_cast<size_t>(T * B));
  for (int64_t i = 0; i < frames * B; ++i) L[i] = std::max<double>(log_mel[i], floor_db) - level;
  for (size_t i = 0; i < L.size(); ++i) P[i] = std::pow(10.0, L[i] / 10);

  std::vector<float> out;
  out.reserve(acoustic_feature_info().size());
  auto push = [&](double v) { out.push_back(static_cast<float>(v)); };
  push(level);

  // Spectral envelope: mean dB per band (relative to the level).
  for (int b = 0; b < B; ++b) {
    double s = 0;
    for (int64_t t = 0; t < T; ++t) s += L[t * B + b];
    push(s / static_cast<double>(T));
  }
  // Temporal variability and transients per group of 4 bands.
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
    push(sd);
  }
  for (int g = 0; g < kGroups4; ++g) push(percentile(g4[g], 0.99) - percentile(g4[g], 0.5));

  // Frame loudness: its spread, its peaks (impacts) and its dips (drop-outs).
  std::vector<double> loud(static_cast<size_t>(T));
  for (int64_t t = 0; t < T; ++t) {
    double s = 0;
    for (int b = 0; b < B; ++b) s += P[t * B + b];
    loud[t] = db(s / B);
  }
  {
    double m, sd;
    mean_std(loud, &m, &sd);
    double med = percentile(loud, 0.5);
    push(sd);
    push(percentile(loud, 0.99) - med);
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
    push(percentile(flux, 0.99));
  }
  // Modulation spectrum of each 8-band group's dB envelope.
  {
    std::vector<double> peaks;
    for (int g = 0; g < kGroups8; ++g) {
      std::vector<double> env(static_cast<size_t>(T));
      for (int64_t t = 0; t < T; ++t) {
        double s = 0;
        for (int b = 8 * g; b < 8 * g + 8; ++b) s += P[t * B + b];
        env[t] = db(s / 8);
      }
      double band_power[kModBands], peak = 0;
      if (T >= 4)
        modulation(env, band_power, &peak);
      else
        std::fill(band_power, band_power + kModBands, 0.0);
      for (int b = 0; b < kModBands; ++b) push(db(band_power[b] + 1e-6));
      peaks.push_back(peak);
    }
    for (double p : peaks) push(p);
  }
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
