#include "asdcap/evidence.hpp"

#include <fftw3.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <limits>
#include <mutex>
#include <numeric>
#include <utility>

#include "asdcap/error.hpp"

namespace asdcap {

namespace {

constexpr double kTiny = 1e-20;

double db(double power_ratio) { return 10.0 * std::log10(power_ratio + kTiny); }

double median_of(std::vector<double> v) {
  if (v.empty()) return 0.0;
  const size_t mid = v.size() / 2;
  std::nth_element(v.begin(), v.begin() + mid, v.end());
  return v[mid];
}

// Linear-interpolated quantile q (0-1) of v.
double quantile_of(std::vector<double> v, double q) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  const double pos = q * static_cast<double>(v.size() - 1);
  const auto lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (pos - static_cast<double>(lo)) * (v[hi] - v[lo]);
}

// Mean power per non-overlapping frame of `len` samples.
std::vector<double> frame_energy(const std::vector<double>& x, int64_t len) {
  std::vector<double> e;
  for (int64_t start = 0; start + len <= static_cast<int64_t>(x.size()); start += len) {
    double acc = 0;
    for (int64_t i = start; i < start + len; ++i) acc += x[i] * x[i];
    e.push_back(acc / len);
  }
  return e;
}

// Running median over +-half frames (clamped at the edges): the element at position size / 2 of
// each sorted window, as median_of. The window is kept sorted as it slides (one value leaves, one
// enters per frame), so each frame costs a binary search and a short move instead of a selection.
std::vector<double> running_median(const std::vector<double>& v, int half) {
  const int n = static_cast<int>(v.size());
  std::vector<double> out(n), window;
  int a = 0, b = 0;  // the window holds v[a, b), sorted
  for (int i = 0; i < n; ++i) {
    const int na = std::max(0, i - half), nb = std::min(n, i + half + 1);
    for (; b < nb; ++b) window.insert(std::upper_bound(window.begin(), window.end(), v[b]), v[b]);
    for (; a < na; ++a) {
      auto it = std::lower_bound(window.begin(), window.end(), v[a]);
      if (it == window.end()) --it;  // only without a strict order (a NaN): never past the end
      window.erase(it);
    }
    out[i] = window[window.size() / 2];
  }
  return out;
}

// Time-averaged power spectrum (Hann window, 50 % overlap).
struct Spectrum {
  std::vector<double> power;
  double bin_hz = 0;
  std::vector<double> frame_low, frame_total;  // per frame: power up to 200 Hz, and all (DC excluded)
};

std::mutex fftw_plan_mutex;  // FFTW's planner is not thread-safe

Spectrum mean_spectrum(const std::vector<double>& x, int sample_rate, int nfft) {
  const int hop = nfft / 2;
  const int bins = nfft / 2 + 1;
  float* in = fftwf_alloc_real(nfft);
  fftwf_complex* out = fftwf_alloc_complex(bins);
  fftwf_plan plan;
  {
    std::lock_guard<std::mutex> lock(fftw_plan_mutex);
    plan = fftwf_plan_dft_r2c_1d(nfft, in, out, FFTW_ESTIMATE);
  }
  std::vector<double> window(nfft);
  for (int i = 0; i < nfft; ++i) window[i] = 0.5 - 0.5 * std::cos(2 * M_PI * i / nfft);
  Spectrum s;
  s.power.assign(bins, 0.0);
  s.bin_hz = static_cast<double>(sample_rate) / nfft;
  int frames = 0;
  for (size_t start = 0; start + nfft <= x.size(); start += hop) {
    for (int i = 0; i < nfft; ++i) in[i] = static_cast<float>(x[start + i] * window[i]);
    fftwf_execute(plan);
    double low = 0, all = 0;
    for (int k = 0; k < bins; ++k) {
      const double p = double(out[k][0]) * out[k][0] + double(out[k][1]) * out[k][1];
      s.power[k] += p;
      if (k > 0) all += p;
      if (k > 0 && k * s.bin_hz <= 200.0) low += p;
    }
    s.frame_low.push_back(low);
    s.frame_total.push_back(all);
    ++frames;
  }
  {
    std::lock_guard<std::mutex> lock(fftw_plan_mutex);
    fftwf_destroy_plan(plan);
  }
  fftwf_free(in);
  fftwf_free(out);
  // One-sided, scaled so that the bins sum to the signal's mean square (Parseval, Hann window).
  const double scale = 2.0 / (static_cast<double>(nfft) * 0.375 * nfft * std::max(frames, 1));
  for (double& p : s.power) p *= scale;
  return s;
}

double band_sum(const Spectrum& s, double lo_hz, double hi_hz) {
  double acc = 0;
  for (size_t k = 0; k < s.power.size(); ++k) {
    const double f = k * s.bin_hz;
    if (f >= lo_hz && f <= hi_hz) acc += s.power[k];
  }
  return acc;
}

struct Tone {
  double prominence_db = 0, hz = 0;
};

// The spectrum with tonal peaks removed: the median over +-300 Hz around each bin.
std::vector<double> noise_floor(const Spectrum& s) {
  return running_median(s.power, std::max(5, static_cast<int>(std::lround(300.0 / s.bin_hz))));
}

// Largest peak-to-local-median ratio of the spectrum between lo and hi.
Tone tonal_peak(const Spectrum& s, const std::vector<double>& floor, double lo_hz, double hi_hz) {
  Tone best;
  bool found = false;
  for (size_t k = 0; k < s.power.size(); ++k) {
    const double f = k * s.bin_hz;
    if (f < lo_hz || f > hi_hz) continue;
    const double prominence = db(s.power[k]) - db(floor[k]);
    if (!found || prominence > best.prominence_db) best = {prominence, f};
    found = true;
  }
  return best;
}

struct Modulation {
  double depth = 0, hz = 0;
  FeatureProfile profile;  // depth (%) over frequency, lo_hz to hi_hz
};

// Amplitude modulation of the 2.5-ms RMS envelope between 5 and 60 Hz (rotation rates): the
// largest Fourier component relative to the mean amplitude, as a depth (0.3 = +-30 %).
// Hann-windowed, zero-padded 4x so that a component between bins is not missed.
Modulation envelope_modulation(const std::vector<double>& x, int sample_rate, double lo_hz, double hi_hz) {
  const int64_t len = std::max<int64_t>(1, std::lround(0.0025 * sample_rate));
  std::vector<double> amp = frame_energy(x, len);
  for (double& a : amp) a = std::sqrt(a);
  const size_t n = amp.size();
  Modulation best;
  if (n < 200) return best;
  const double mean = std::accumulate(amp.begin(), amp.end(), 0.0) / n;
  if (mean <= 0) return best;
  size_t nfft = 1;
  while (nfft < 4 * n) nfft *= 2;
  float* in = fftwf_alloc_real(nfft);
  fftwf_complex* out = fftwf_alloc_complex(nfft / 2 + 1);
  fftwf_plan plan;
  {
    std::lock_guard<std::mutex> lock(fftw_plan_mutex);
    plan = fftwf_plan_dft_r2c_1d(static_cast<int>(nfft), in, out, FFTW_ESTIMATE);
  }
  double window_sum = 0;
  for (size_t m = 0; m < nfft; ++m) {
    const double w = m < n ? 0.5 - 0.5 * std::cos(2 * M_PI * m / n) : 0.0;
    in[m] = static_cast<float>(m < n ? (amp[m] - mean) * w : 0.0);
    window_sum += w;
  }
  fftwf_execute(plan);
  const double frame_rate = static_cast<double>(sample_rate) / len;
  best.profile.step = frame_rate / nfft;
  for (size_t k = 1; k <= nfft / 2; ++k) {
    const double f = k * frame_rate / nfft;
    if (f < lo_hz || f > hi_hz) continue;
    const double mag = std::sqrt(double(out[k][0]) * out[k][0] + double(out[k][1]) * out[k][1]);
    const double depth = 2 * mag / (window_sum * mean);
    if (best.profile.values.empty()) best.profile.first = f;
    best.profile.values.push_back(100.0 * depth);
    if (depth > best.depth) {
      best.depth = depth;
      best.hz = f;
    }
  }
  best.profile.at = best.hz;
  best.profile.tolerance = 0.1;
  {
    std::lock_guard<std::mutex> lock(fftw_plan_mutex);
    fftwf_destroy_plan(plan);
  }
  fftwf_free(in);
  fftwf_free(out);
  return best;
}

// A biquad run over x in place (x[i] is read before y[i] overwrites it).
std::vector<double> biquad(std::vector<double> x, double b0, double b1, double b2, double a1, double a2) {
  double x1 = 0, x2 = 0, y1 = 0, y2 = 0;
  for (double& v : x) {
    const double in = v;
    v = b0 * in + b1 * x1 + b2 * x2 - a1 * y1 - a2 * y2;
    x2 = x1;
    x1 = in;
    y2 = y1;
    y1 = v;
  }
  return x;
}

// 2nd-order Butterworth high- and low-pass filters (RBJ biquads). They filter their argument in
// place: a chain of them on a temporary allocates one signal.
std::vector<double> highpass(std::vector<double> x, double cutoff, int sample_rate) {
  const double w = 2 * M_PI * cutoff / sample_rate, alpha = std::sin(w) / (2 * M_SQRT1_2), c = std::cos(w);
  const double a0 = 1 + alpha;
  return biquad(std::move(x), (1 + c) / 2 / a0, -(1 + c) / a0, (1 + c) / 2 / a0, -2 * c / a0, (1 - alpha) / a0);
}

std::vector<double> lowpass(std::vector<double> x, double cutoff, int sample_rate) {
  const double w = 2 * M_PI * cutoff / sample_rate, alpha = std::sin(w) / (2 * M_SQRT1_2), c = std::cos(w);
  const double a0 = 1 + alpha;
  return biquad(std::move(x), (1 - c) / 2 / a0, (1 - c) / a0, (1 - c) / 2 / a0, -2 * c / a0, (1 - alpha) / a0);
}

struct Transients {
  int count = 0;
  double peak_db = 0;          // strongest 5-ms frame over the mean frame
  std::vector<double> spikes;  // 1 at each detected transient's frame
};

// Transients: 5-ms frames at least 8 dB above their running median (+-200 ms), local maxima
// within +-10 ms, at least 20 ms apart.
Transients find_transients(const std::vector<double>& e5) {
  Transients t;
  const int n = static_cast<int>(e5.size());
  t.spikes.assign(n, 0.0);
  if (n == 0) return t;
  const std::vector<double> background = running_median(e5, 40);
  const double threshold = std::pow(10.0, 0.8);
  int last = -1000;
  for (int m = 0; m < n; ++m) {
    if (e5[m] <= threshold * (background[m] + kTiny)) continue;
    bool local_max = true;
    for (int d = -2; d <= 2 && local_max; ++d)
      if (d && m + d >= 0 && m + d < n && e5[m + d] > e5[m]) local_max = false;
    if (local_max && m - last >= 4) {
      ++t.count;
      t.spikes[m] = 1.0;
      last = m;
    }
  }
  const double mean = std::accumulate(e5.begin(), e5.end(), 0.0) / n;
  t.peak_db = db(*std::max_element(e5.begin(), e5.end()) / (mean + kTiny));
  return t;
}

struct Periodicity {
  double strength = 0, rate_hz = 0;
  FeatureProfile profile;  // the autocorrelation over the period (s), from the 20-ms lag searched from
};

// Autocorrelation of the onset-strength envelope (frames of `frame_s` seconds) between periods
// of 20 ms and 500 ms. The rate is that of the shortest lag within 85 % of the best correlation,
// so that a multiple of the true period is not reported.
Periodicity envelope_periodicity(const std::vector<double>& onset, double frame_s) {
  const int n = static_cast<int>(onset.size());
  const int lo = std::max(2, static_cast<int>(std::ceil(0.020 / frame_s)));
  const int hi = std::min(n / 3, static_cast<int>(std::floor(0.500 / frame_s)));
  Periodicity p;
  if (hi <= lo) return p;
  const double mean = std::accumulate(onset.begin(), onset.end(), 0.0) / n;
  std::vector<double> o(n);
  for (int i = 0; i < n; ++i) o[i] = onset[i] - mean;
  std::vector<double> r(hi + 2, 0.0);
  for (int lag = lo - 1; lag <= hi + 1; ++lag) {
    double xy = 0, xx = 0, yy = 0;
    for (int i = 0; i + lag < n; ++i) {
      xy += o[i] * o[i + lag];
      xx += o[i] * o[i];
      yy += o[i + lag] * o[i + lag];
    }
    r[lag] = (xx > 0 && yy > 0) ? xy / std::sqrt(xx * yy) : 0.0;
  }
  int best = lo;
  for (int lag = lo; lag <= hi; ++lag)
    if (r[lag] > r[best]) best = lag;
  p.profile = {lo * frame_s, frame_s, std::vector<double>(r.begin() + lo, r.begin() + hi + 1), 0.0, 0.1};
  if (r[best] <= 0) return p;
  int chosen = best;
  for (int lag = lo; lag < best; ++lag) {
    if (r[lag] >= 0.85 * r[best] && r[lag] >= r[lag - 1] && r[lag] >= r[lag + 1]) {
      chosen = lag;
      break;
    }
  }
  // Parabolic refinement of the lag.
  double lag = chosen;
  const double a = r[chosen - 1], b = r[chosen], c = r[chosen + 1];
  const double denom = a - 2 * b + c;
  if (denom < 0) lag += std::clamp(0.5 * (a - c) / denom, -0.5, 0.5);
  p.strength = r[best];
  p.rate_hz = 1.0 / (lag * frame_s);
  p.profile.at = lag * frame_s;
  return p;
}

// Frames of `len` samples every `hop`: their energy's excess over its running median (+-250 ms,
// the local background), in dB.
std::vector<double> excess_db(const std::vector<double>& band, int64_t len, int64_t hop, int sample_rate) {
  std::vector<double> e;
  for (int64_t start = 0; start + len <= static_cast<int64_t>(band.size()); start += hop) {
    double acc = 0;
    for (int64_t i = start; i < start + len; ++i) acc += band[i] * band[i];
    e.push_back(acc / len);
  }
  const int half = static_cast<int>(std::lround(0.25 * sample_rate / hop));
  const std::vector<double> background = running_median(e, half);
  std::vector<double> out(e.size());
  for (size_t m = 0; m < e.size(); ++m) out[m] = background[m] > 0 ? db(e[m] / background[m]) : 0.0;
  return out;
}

struct Event {
  double time, level_db;
  double start, end;  // seconds: the event's first and last frame (start of one, end of the other)
};

// Runs of frames whose excess reaches max(floor_db, 5 robust standard deviations of the clip's own
// excess in this band): what stands out from the band's own frame-to-frame fluctuation. Frames one
// frame apart join; an event is timed and levelled at its strongest frame.
std::vector<Event> excess_events(const std::vector<double>& excess, double frame_s, double hop_s, double floor_db) {
  std::vector<Event> out;
  if (excess.size() < 20) return out;
  const double centre = median_of(excess);
  std::vector<double> deviation;
  for (double v : excess) deviation.push_back(std::fabs(v - centre));
  const double threshold = std::max(floor_db, centre + 5 * 1.4826 * median_of(deviation));
  const size_t n = excess.size();
  for (size_t m = 0; m < n;) {
    if (excess[m] < threshold) {
      ++m;
      continue;
    }
    size_t end = m, peak = m;
    for (size_t j = m; j < n && j <= end + 2; ++j)
      if (excess[j] >= threshold) {
        end = j;
        if (excess[j] > excess[peak]) peak = j;
      }
    out.push_back({peak * hop_s + frame_s / 2, excess[peak], m * hop_s, end * hop_s + frame_s});
    m = end + 1;
  }
  return out;
}

// Short events in one band: bursts (20-ms frames every 10 ms, at least 2 dB over the background),
// fainter 50-ms bursts that do not overlap those (50-ms frames every 10 ms, at least 1 dB) and, in
// bands from 1.4 kHz up where 5 ms average enough noise, impacts (5-ms frames, at least 3 dB over
// it) that do not fall within 10 ms of a burst.
struct BandEvents {
  double centre_hz = 0;
  size_t band = 0;                 // index of the band among the searched ones
  std::vector<double> all_counts;  // events in every searched band (set on the busiest one)
  std::vector<double> times, levels_db;
  std::vector<double> spikes;  // per 5-ms frame: 1 at each event
};

BandEvents band_events(const std::vector<double>& band, int sample_rate, bool impacts) {
  BandEvents out;
  const int64_t len5 = std::max<int64_t>(1, std::lround(0.005 * sample_rate));
  const double s5 = static_cast<double>(len5) / sample_rate;
  out.spikes.assign(band.size() / static_cast<size_t>(len5), 0.0);
  std::vector<Event> events = excess_events(excess_db(band, 4 * len5, 2 * len5, sample_rate), 4 * s5, 2 * s5, 2.0);
  // Longer, fainter bursts (50-ms frames every 10 ms, at least 1 dB over the background): a 50-ms
  // burst a dB or two over the noise that 20-ms frames do not average enough to see.
  {
    const std::vector<Event> shorter = events;
    for (const Event& e : excess_events(excess_db(band, 10 * len5, 2 * len5, sample_rate), 10 * s5, 2 * s5, 1.0)) {
      bool inside = false;
      for (const Event& b : shorter) inside = inside || (e.end >= b.start && e.start <= b.end);
      if (!inside) events.push_back(e);
    }
    std::sort(events.begin(), events.end(), [](const Event& a, const Event& b) { return a.start < b.start; });
  }
  // A burst is timed at its strongest 5-ms frame.
  const std::vector<double> e5 = frame_energy(band, len5);
  for (Event& b : events) {
    const auto first = static_cast<size_t>(b.start / s5), last = std::min(e5.size(), static_cast<size_t>(b.end / s5));
    size_t peak = first;
    for (size_t m = first; m < last; ++m)
      if (e5[m] > e5[peak]) peak = m;
    if (peak < e5.size()) b.time = (static_cast<double>(peak) + 0.5) * s5;
  }
  if (impacts) {
    const std::vector<Event> bursts = events;
    for (const Event& e : excess_events(excess_db(band, len5, len5, sample_rate), s5, s5, 3.0)) {
      bool inside = false;
      for (const Event& b : bursts) inside = inside || (e.time >= b.start - 0.01 && e.time <= b.end + 0.01);
      if (!inside) events.push_back(e);
    }
    std::sort(events.begin(), events.end(), [](const Event& a, const Event& b) { return a.time < b.time; });
  }
  for (const Event& e : events) {
    out.times.push_back(e.time);
    out.levels_db.push_back(e.level_db);
    const auto frame = static_cast<size_t>(e.time / s5);
    if (frame < out.spikes.size()) out.spikes[frame] = 1.0;
  }
  return out;
}

// The octave band (from 354 Hz up to 0.95 x Nyquist) with the most short events; ties go to the
// band whose events stand higher.
BandEvents busiest_band(const std::vector<double>& x, int sample_rate) {
  BandEvents best;
  bool found = false;
  std::vector<double> counts;
  const double top = 0.95 * sample_rate / 2;
  // Bands of at least a third of an octave: the last one may end at the top before a full octave.
  for (double lo = 1000.0 / std::sqrt(8.0); lo * std::cbrt(2.0) <= top; lo *= 2) {
    const double hi = std::min(2 * lo, top);
    const std::vector<double> band =
        lowpass(lowpass(highpass(highpass(x, lo, sample_rate), lo, sample_rate), hi, sample_rate), hi, sample_rate);
    BandEvents ev = band_events(band, sample_rate, lo >= 1400.0);
    ev.centre_hz = std::sqrt(lo * hi);
    ev.band = counts.size();
    counts.push_back(static_cast<double>(ev.times.size()));
    const auto better = [&] {
      if (ev.times.size() != best.times.size()) return ev.times.size() > best.times.size();
      return median_of(ev.levels_db) > median_of(best.levels_db);
    };
    if (!found || better()) best = std::move(ev);
    found = true;
  }
  best.all_counts = std::move(counts);
  return best;
}

// Power of bins k-half..k+half (clamped to the spectrum).
double bins_power(const Spectrum& s, long k, long half) {
  double acc = 0;
  for (long j = k - half; j <= k + half; ++j)
    if (j >= 0 && j < static_cast<long>(s.power.size())) acc += s.power[static_cast<size_t>(j)];
  return acc;
}

// Median of the bins within +-half_hz of bin k.
double local_median(const Spectrum& s, long k, double half_hz) {
  const long half = std::max(3L, std::lround(half_hz / s.bin_hz));
  std::vector<double> window;
  for (long j = k - half; j <= k + half; ++j)
    if (j >= 0 && j < static_cast<long>(s.power.size())) window.push_back(s.power[static_cast<size_t>(j)]);
  return median_of(window);
}

struct Sidebands {
  double dbc = 0, spacing_hz = 0, carrier_hz = 0;
};

// A spectral line at bin k (its power over +-1 bin, where a Hann-windowed line falls) over the
// local floor there (the median of +-50 Hz, which the few lines nearby do not move): the line's
// power above the noise, 0 when it does not stand out.
double line_excess(const Spectrum& s, long k) {
  const double line = bins_power(s, k, 1), floor = 3.0 * local_median(s, k, 50.0);
  return line >= 2.0 * floor ? line - floor : 0.0;
}

// Sidebands of the dominant tone (the strongest bin from 150 Hz to `top` standing 10 dB over its
// +-50 Hz median). For every spacing d of a plausible shaft rate (10-60 Hz) the sidebands' power is
// the weaker line of the pair at +-d plus the weaker of the pair at +-2d, each line counted by its
// power above the local floor (line_excess), so that neither the noise between the lines nor a
// single stray tone beside the carrier counts. The spacing with the most sideband power wins; the
// measure is the power of both pairs above the floor relative to the tone's (dBc), -60 dBc when
// nothing stands out or there is no dominant tone.
Sidebands sidebands(const Spectrum& s, double top) {
  Sidebands out{-60.0, 0.0, 0.0};
  long carrier = -1;
  for (long k = 0; k < static_cast<long>(s.power.size()); ++k) {
    const double f = k * s.bin_hz;
    if (f < 150.0 || f > top) continue;
    if (s.power[k] < 10.0 * local_median(s, k, 50.0)) continue;
    if (carrier < 0 || s.power[k] > s.power[carrier]) carrier = k;
  }
  if (carrier < 0) return out;
  const long size = static_cast<long>(s.power.size());
  const long lo = std::max(2L, static_cast<long>(std::ceil(10.0 / s.bin_hz)));
  const long hi = static_cast<long>(std::floor(60.0 / s.bin_hz));
  double best = 0;
  long spacing = 0;
  for (long d = lo; d <= hi && carrier - 2 * d - 1 >= 0 && carrier + 2 * d + 1 < size; ++d) {
    const double first = std::min(line_excess(s, carrier - d), line_excess(s, carrier + d));
    const double second = std::min(line_excess(s, carrier - 2 * d), line_excess(s, carrier + 2 * d));
    if (first > 0 && first + second > best) {  // the first pair is always there
      best = first + second;
      spacing = d;
    }
  }
  out.carrier_hz = carrier * s.bin_hz;
  if (spacing == 0) return out;
  const double pairs = line_excess(s, carrier - spacing) + line_excess(s, carrier + spacing) +
                       line_excess(s, carrier - 2 * spacing) + line_excess(s, carrier + 2 * spacing);
  out.dbc = std::max(-60.0, db(pairs / (line_excess(s, carrier) + kTiny)));
  out.spacing_hz = spacing * s.bin_hz;
  return out;
}

// The bin k in [1, end) from lo to hi Hz with the highest score(k) (the first of equals); -1 when
// there is none or none scores above minus infinity.
template <class Score>
long strongest_bin(const Spectrum& s, double lo, double hi, long end, Score score) {
  long best = -1;
  double best_score = -std::numeric_limits<double>::infinity();
  for (long k = 1; k < end; ++k) {
    const double f = k * s.bin_hz;
    if (f < lo || f > hi) continue;
    const double v = score(k);
    if (v > best_score) {
      best = k;
      best_score = v;
    }
  }
  return best;
}

struct ShaftTone {
  double db = 0, hz = 0;
  FeatureProfile profile;  // the measure at every bin from 10 to 60 Hz
};

// The mean power of the line at bin k and its 2nd and 3rd harmonics (each +-1 bin) over the same
// bins of the local (+-10 Hz) medians, in dB. Each harmonic's ratio is capped at the
// fundamental's: a harmonic much stronger than the fundamental is another source's line (e.g. a
// blade-pass tone at 3x a chance low peak).
double shaft_measure(const Spectrum& s, long k) {
  double sum = 0, fundamental = 0;
  int count = 0;
  for (long h = 1; h <= 3; ++h) {
    if (h * k + 1 >= static_cast<long>(s.power.size())) break;
    const double ratio = bins_power(s, h * k, 1) / (3 * local_median(s, h * k, 10.0) + kTiny);
    if (h == 1) fundamental = ratio;
    sum += std::min(ratio, fundamental);
    ++count;
  }
  return db(sum / std::max(count, 1));
}

// The bin from 10 to 60 Hz that stands highest over its +-10 Hz median, and its shaft_measure.
ShaftTone shaft_tone(const Spectrum& s) {
  ShaftTone out;
  const long best = strongest_bin(s, 10.0, 60.0, static_cast<long>(s.power.size()),
                                  [&](long k) { return s.power[k] / (local_median(s, k, 10.0) + kTiny); });
  if (best < 0) return out;
  out.db = shaft_measure(s, best);
  out.hz = best * s.bin_hz;
  out.profile = {0.0, s.bin_hz, {}, out.hz, 0.1};
  for (long k = 1; k < static_cast<long>(s.power.size()) && k * s.bin_hz <= 60.0; ++k) {
    if (k * s.bin_hz < 10.0) continue;
    if (out.profile.values.empty()) out.profile.first = k * s.bin_hz;
    out.profile.values.push_back(shaft_measure(s, k));
  }
  return out;
}

struct MotorHum {
  double power = 0, hz = 0;
};

// A motor's hum: the line from 80 to 200 Hz (twice the mains frequency and thereabouts; a line is
// a bin at least 6 dB over its +-50 Hz median) with the most power above its local floor, plus its 2nd harmonic, each
// counted by its power above the local floor (line_excess). Compared with the broadband noise above 1 kHz, which is the
// flow's and free of the hum, its harmonics and low-frequency rumble, it measures the hum relative to the flow noise
// within the clip: independent of the overall gain, it rises when the flow noise collapses or the hum grows.
MotorHum motor_hum(const Spectrum& s) {
  MotorHum out;
  // Bins whose 2nd harmonic is inside the spectrum; a line stands at least 6 dB over its local floor.
  const long best = strongest_bin(s, 80.0, 200.0, static_cast<long>(s.power.size()) / 2, [&](long k) {
    const double excess = line_excess(s, k);
    const bool line = s.power[k] >= 4.0 * local_median(s, k, 50.0);
    return line && excess > 0 ? excess : -std::numeric_limits<double>::infinity();
  });
  if (best < 0) return out;
  out.power = line_excess(s, best) + line_excess(s, 2 * best);
  out.hz = best * s.bin_hz;
  return out;
}

// Periodicity of a train of events (1 at each event's 5-ms frame), smoothed over +-5 ms so that
// timing jitter does not hide the period.
Periodicity spike_periodicity(const std::vector<double>& spikes, double frame_s) {
  std::vector<double> train(spikes.size(), 0.0);
  for (size_t m = 0; m < train.size(); ++m)
    if (spikes[m] > 0)
      for (int d = -1; d <= 1; ++d)
        if (m + d < train.size()) train[m + d] += d == 0 ? 1.0 : 0.5;
  return envelope_periodicity(train, frame_s);
}

// --- Periodic impacts: lines in the envelope spectrum of a band -------------------------------

// An FFTW single-precision plan with its own buffers, planned under the planner's lock and freed
// with it: `real` time samples (n) and `spectrum` coefficients (n / 2 + 1 for a real-to-complex
// plan, n for a complex one).
struct FftPlan {
  float* real = nullptr;
  fftwf_complex* spectrum = nullptr;
  fftwf_complex* complex_time = nullptr;
  fftwf_plan plan = nullptr;
  // Real-to-complex transform of length n.
  explicit FftPlan(size_t n) : real(fftwf_alloc_real(n)), spectrum(fftwf_alloc_complex(n / 2 + 1)) {
    std::lock_guard<std::mutex> lock(fftw_plan_mutex);
    plan = fftwf_plan_dft_r2c_1d(static_cast<int>(n), real, spectrum, FFTW_ESTIMATE);
  }
  // Complex inverse transform of length n, from `spectrum` to `complex_time`.
  FftPlan(size_t n, bool /*inverse_complex*/) : spectrum(fftwf_alloc_complex(n)), complex_time(fftwf_alloc_complex(n)) {
    std::lock_guard<std::mutex> lock(fftw_plan_mutex);
    plan = fftwf_plan_dft_1d(static_cast<int>(n), spectrum, complex_time, FFTW_BACKWARD, FFTW_ESTIMATE);
  }
  FftPlan(const FftPlan&) = delete;
  FftPlan& operator=(const FftPlan&) = delete;
  ~FftPlan() {
    {
      std::lock_guard<std::mutex> lock(fftw_plan_mutex);
      fftwf_destroy_plan(plan);
    }
    fftwf_free(real);
    fftwf_free(spectrum);
    fftwf_free(complex_time);
  }
  void run() { fftwf_execute(plan); }
};

double power_of(const fftwf_complex& c) { return double(c[0]) * c[0] + double(c[1]) * c[1]; }

// Power spectrum of a power envelope averaged over frames of `frame_s` seconds (mean removed,
// Hann window, zero-padded to at least twice its length), and its frequency step.
std::vector<double> envelope_power_spectrum(const std::vector<double>& envelope, int sample_rate, double frame_s,
                                            double& step_hz) {
  const int64_t len = std::max<int64_t>(1, std::lround(frame_s * sample_rate));
  std::vector<double> amp;
  for (int64_t start = 0; start + len <= static_cast<int64_t>(envelope.size()); start += len)
    amp.push_back(std::accumulate(envelope.begin() + start, envelope.begin() + start + len, 0.0) / len);
  const size_t n = amp.size();
  step_hz = 0;
  if (n < 200) return {};
  const double mean = std::accumulate(amp.begin(), amp.end(), 0.0) / n;
  size_t nfft = 1;
  while (nfft < 2 * n) nfft *= 2;
  FftPlan fft(nfft);
  for (size_t m = 0; m < nfft; ++m)
    fft.real[m] = static_cast<float>(m < n ? (amp[m] - mean) * (0.5 - 0.5 * std::cos(2 * M_PI * m / n)) : 0.0);
  fft.run();
  std::vector<double> power(nfft / 2 + 1);
  for (size_t k = 0; k < power.size(); ++k) power[k] = power_of(fft.spectrum[k]);
  step_hz = static_cast<double>(sample_rate) / len / nfft;
  return power;
}

// Power envelopes |z|^2 of the clip's analytic signal z band-limited to each of `bands` (lo, hi),
// by keeping only the Fourier coefficients inside the band. The power envelope of a sum of tones
// holds only their difference frequencies: a tone with sideband pairs at +-f and +-2f gives lines
// at f to 4f, never beyond. With `whiten`, every coefficient is first scaled to magnitude 1 (phase
// kept), so that steady tones (a gear mesh and its sidebands, a motor's harmonics) weigh no more
// than the noise beside them, while short impacts whose timing varies a little, and whose energy
// therefore spreads over many bins, keep their shape.
// `use(b, envelope)` is called for each band b in order with its envelope (one buffer, reused).
template <class Use>
void band_envelopes(const std::vector<double>& x, int sample_rate, const std::vector<std::pair<double, double>>& bands,
                    bool whiten, Use use) {
  const size_t n = x.size();
  const size_t bins = n / 2 + 1;
  FftPlan forward(n);
  FftPlan inverse(n, true);
  for (size_t i = 0; i < n; ++i) forward.real[i] = static_cast<float>(x[i]);
  forward.run();
  if (whiten)
    for (size_t k = 0; k < bins; ++k) {
      const double mag = std::sqrt(power_of(forward.spectrum[k]));
      for (int part = 0; part < 2; ++part)
        forward.spectrum[k][part] = mag > 0 ? static_cast<float>(forward.spectrum[k][part] / mag) : 0.0f;
    }
  const double bin_hz = static_cast<double>(sample_rate) / n;
  std::vector<double> envelope(n);
  for (size_t b = 0; b < bands.size(); ++b) {
    const auto [lo, hi] = bands[b];
    for (size_t k = 0; k < n; ++k) {
      const bool inside = k < bins && k * bin_hz >= lo && k * bin_hz < hi;
      for (int part = 0; part < 2; ++part) inverse.spectrum[k][part] = inside ? forward.spectrum[k][part] : 0.0f;
    }
    inverse.run();
    for (size_t i = 0; i < n; ++i) envelope[i] = power_of(inverse.complex_time[i]);
    use(b, envelope);
  }
}

// The rates a line train is searched over, and the grid its profile is kept on.
constexpr double kTrainLowHz = 10.0, kTrainHighHz = 60.0, kTrainGridHz = 0.25;
constexpr auto kTrainGridSize = static_cast<size_t>((kTrainHighHz - kTrainLowHz) / kTrainGridHz + 0.5) + 1;

struct LineTrain {
  double db = 0, rate_hz = 0;
  // The train's value on the grid kTrainLowHz, + kTrainGridHz, ... kTrainHighHz: at each grid rate
  // the largest value of the rates searched within half a step (of the grid or of the spectrum,
  // whichever is coarser).
  std::vector<double> over_rate;
};

// Lines at a rate f from 10 to 60 Hz and its multiples 2f ... harmonics x f in an envelope power
// spectrum: each multiple's power is the largest bin within +-1.5 bins of the clip's frequency
// resolution (a Hann main lobe and a slightly drifting rate), over the spectrum's local floor (its
// median within +-5 Hz), in dB; the mean of them without the `drop` strongest (so that a few
// strong lines alone do not count), at the f where that is highest; and that value over the rate.
LineTrain line_train(const std::vector<double>& power, double step, int harmonics, int drop) {
  LineTrain best;
  if (power.empty() || step <= 0) return best;
  const long reach = 3;
  const long last = std::min(static_cast<long>(power.size()) - 1, std::lround((harmonics * 60.0 + 6.0) / step));
  // The local floor, evaluated every `stride` bins and held in between.
  const long half = std::max(4L, std::lround(5.0 / step)), stride = std::max(1L, half / 8);
  std::vector<double> floor(static_cast<size_t>(last + 1), 0.0), window;
  for (long k = 0; k <= last; k += stride) {
    window.assign(power.begin() + std::max(0L, k - half), power.begin() + std::min(last, k + half) + 1);
    const double m = median_of(window);
    for (long j = k; j < std::min(last + 1, k + stride); ++j) floor[static_cast<size_t>(j)] = m;
  }
  const auto line = [&](double f) {
    const long k = std::lround(f / step);
    double m = 0;
    for (long j = std::max(0L, k - reach); j <= std::min(last, k + reach); ++j)
      m = std::max(m, power[static_cast<size_t>(j)]);
    const double fl = floor[static_cast<size_t>(std::clamp(k, 0L, last))];
    return fl > 0 ? m / fl : 0.0;
  };
  std::vector<double> h(harmonics);
  const auto train = [&](double f) {
    for (int i = 0; i < harmonics; ++i) h[i] = db(line((i + 1) * f));
    std::sort(h.begin(), h.end(), std::greater<>());
    return std::accumulate(h.begin() + drop, h.end(), 0.0) / (harmonics - drop);
  };
  bool found = false;
  const size_t grid = kTrainGridSize;
  best.over_rate.assign(grid, -std::numeric_limits<double>::infinity());
  const double cell_half = 0.5 * std::max(step, kTrainGridHz);
  for (long k = std::lround(kTrainLowHz / step); k * step <= kTrainHighHz; ++k) {
    const double f = k * step;
    if (std::lround(harmonics * f / step) + reach > last) break;
    const double value = train(f);
    if (!found || value > best.db) {
      best.db = value;
      best.rate_hz = f;
    }
    found = true;
    const double from = std::max(0.0, std::ceil((f - cell_half - kTrainLowHz) / kTrainGridHz));
    const double to = std::min(static_cast<double>(grid) - 1, std::floor((f + cell_half - kTrainLowHz) / kTrainGridHz));
    for (double g = from; g <= to; g += 1) {
      double& cell = best.over_rate[static_cast<size_t>(g)];
      cell = std::max(cell, value);
    }
  }
  // Grid rates no searched rate reached (past the spectrum's end) hold the nearest value below.
  if (!found) best.over_rate.clear();
  for (size_t g = 0; g < best.over_rate.size(); ++g)
    if (!std::isfinite(best.over_rate[g])) best.over_rate[g] = g ? best.over_rate[g - 1] : best.db;
  // A train at f also has lines at 2f, 3f, ...: a third or half of the best rate whose lines stand
  // nearly as high (within 1 dB) is the train's own rate.
  for (const int d : {3, 2}) {
    const double f = best.rate_hz / d;
    if (found && f >= 10.0) {
      const double value = train(f);
      if (value >= best.db - 1.0) {
        best.db = value;
        best.rate_hz = f;
        break;
      }
    }
  }
  return best;
}

struct PeriodicImpacts {
  double db = 0, rate_hz = 0, band_hz = 0;
  // The line train's value over the rate (kTrainLowHz ... kTrainHighHz by kTrainGridHz), one row
  // per view and band (the whitened view's bands first), its row and rate where it is highest.
  FeatureProfile profile;
};

// A train of short impacts at rate f modulates its band's envelope with lines at f, 2f, 3f, ...
// of similar strength, up to about the inverse of an impact's duration; a smooth swell (an
// unbalanced rotor) gives a line at f only, a tone with sidebands at +-f and +-2f (gear wear) lines
// at f to 4f, and random events no lines. Two views of each half-octave band from 1 kHz to
// 0.95 x Nyquist: (a) the pre-whitened band, 2.5-ms envelope frames, the two weaker of the lines
// at f, 2f, 3f (impacts whose timing varies a little; tones are flattened away); (b) the band as
// it is, 1-ms frames, the four weakest of the lines at f ... 8f (a strictly periodic train, whose
// lines whitening would flatten; a tone with two sideband pairs has at most four). The band, view
// and rate where the line train stands highest over the envelope spectrum's floor, and the train
// over the rate in each view and band.
PeriodicImpacts periodic_impacts(const std::vector<double>& x, int sample_rate) {
  PeriodicImpacts best;
  best.profile = {kTrainLowHz, kTrainGridHz, {}, 0.0, 0.1, 0, 0};
  bool found = false;
  size_t rows = 0;
  const double top = 0.95 * sample_rate / 2;
  std::vector<std::pair<double, double>> edges;
  for (double lo = 1000.0; lo * std::pow(2.0, 0.25) <= top; lo *= M_SQRT2)
    edges.emplace_back(lo, std::min(lo * M_SQRT2, top));
  for (const bool whiten : {true, false}) {
    band_envelopes(x, sample_rate, edges, whiten, [&](size_t b, const std::vector<double>& envelope) {
      double step = 0;
      const std::vector<double> power = envelope_power_spectrum(envelope, sample_rate, whiten ? 0.0025 : 0.001, step);
      const LineTrain train = whiten ? line_train(power, step, 3, 1) : line_train(power, step, 8, 4);
      if (!found || train.db > best.db) {
        best.db = train.db;
        best.rate_hz = train.rate_hz;
        best.band_hz = std::sqrt(edges[b].first * edges[b].second);
        best.profile.row = rows;
      }
      found = true;
      // A band too short for a spectrum keeps its row, at zero.
      best.profile.columns = kTrainGridSize;
      if (train.over_rate.size() == kTrainGridSize)
        best.profile.values.insert(best.profile.values.end(), train.over_rate.begin(), train.over_rate.end());
      else
        best.profile.values.resize(best.profile.values.size() + kTrainGridSize, 0.0);
      ++rows;
    });
  }
  best.profile.at = best.rate_hz;
  return best;
}

// --- Octave bands from 1 kHz in half-octave steps -------------------------------------------------

// Octave bands (lo, 2 lo) from 1 kHz, a half octave apart, up to 0.95 x Nyquist (the last one cut
// there, kept while at least 1.5 wide): a resonance rung by impacts or a crackle lies within one.
std::vector<std::pair<double, double>> octave_bands(int sample_rate) {
  const double top = 0.95 * sample_rate / 2;
  std::vector<std::pair<double, double>> edges;
  for (double lo = 1000.0; lo * 1.5 <= top; lo *= M_SQRT2) edges.emplace_back(lo, std::min(2 * lo, top));
  return edges;
}

// Crackle: how far repeated short bursts of a band stand over its usual level, and when they are.
// The band's power envelope in 50-ms frames every 10 ms; the loudest frame, then the loudest at
// least 100 ms from it, and so on: the sixth of these separate moments over the band's median
// level, in dB (the median of the frames within 6 dB of the median of all, so that drop-outs do not
// lower it). A crackle of many bursts raises it even when no single burst stands out; one or two
// louder events in the background (a door, a passing forklift) do not. Steady noise gives about 1 dB
// (5 s at 16 kHz; less in wider bands).
constexpr size_t kCrackleMoments = 6;
struct Crackle {
  double db = 0;
  std::vector<double> times;  // the centres of the moments (s), loudest first; -1 for each missing
};
Crackle band_crackle(const std::vector<double>& envelope, int sample_rate) {
  Crackle out;
  out.times.assign(kCrackleMoments, -1.0);
  const auto len = static_cast<size_t>(std::max<long>(1, std::lround(0.050 * sample_rate)));
  const auto hop = static_cast<size_t>(std::max<long>(1, std::lround(0.010 * sample_rate)));
  if (envelope.size() < len + 10 * hop) return out;
  std::vector<double> sum(envelope.size() + 1, 0.0);
  for (size_t i = 0; i < envelope.size(); ++i) sum[i + 1] = sum[i] + envelope[i];
  std::vector<double> level;
  for (size_t start = 0; start + len <= envelope.size(); start += hop)
    level.push_back(db((sum[start + len] - sum[start]) / static_cast<double>(len)));
  const double all = median_of(level);
  std::vector<double> usual;
  for (double v : level)
    if (v >= all - 6.0) usual.push_back(v);
  const double median = median_of(usual);
  std::vector<size_t> order(level.size()), moments;
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return level[a] > level[b]; });
  constexpr size_t kSeparate = 10;  // frames: 100 ms
  for (size_t i : order) {
    if (std::none_of(moments.begin(), moments.end(), [&](size_t m) { return (i > m ? i - m : m - i) < kSeparate; }))
      moments.push_back(i);
    if (moments.size() == kCrackleMoments) break;
  }
  for (size_t m = 0; m < moments.size(); ++m)
    out.times[m] = (static_cast<double>(moments[m] * hop) + 0.5 * static_cast<double>(len)) / sample_rate;
  out.db = level[moments.back()] - median;
  return out;
}

// --- Periodic impacts by synchronous averaging ---------------------------------------------------

struct SyncImpacts {
  double sigma = 0, rate_hz = 0, band_hz = 0;
  // The peak over the rate (kTrainLowHz ... kTrainHighHz by kTrainGridHz), one row per octave band,
  // its row and rate where it is highest.
  FeatureProfile profile;
};

// Envelope frames of 1 ms: the fold resolves impacts ringing for a few milliseconds.
constexpr double kSyncFrameS = 0.001;
// Harmonics of the rate kept in the fold: from the 4th (a smooth swell of the whole sound at the
// rate, an unbalanced rotor, lies in the 1st to 3rd) up to 480 Hz (the 1-ms frames' band), at most
// 31 (the fold's 64 phases).
constexpr int kSyncFirstHarmonic = 4, kSyncLastHarmonic = 31, kSyncPhases = 64;
constexpr double kSyncTopHz = 480.0;
constexpr double kSyncCap = 10.0;

// A train of impacts at a steady rate f adds, in its band's power envelope, the same shape once
// per period. Folding the envelope at f (averaging it over the phase of f across the whole clip)
// keeps that shape and averages the noise away by the square root of the number of periods, the
// synchronous average of vibration analysis: impacts a few tenths of a decibel above the band's
// noise, too faint for any single one to be seen, stand out over 100 periods. The fold is computed
// from the envelope's Fourier coefficients at the multiples of f (a zero-padded transform, bins
// 0.06 / duration apart or finer), harmonics 4 to 31 up to 480 Hz, at 64 phases; its peak is given in standard
// deviations of the fold under noise (from the envelope spectrum's median level near each harmonic). Rates 10-60 Hz,
// every octave band from 1 kHz in half-octave steps (an impact rings in one resonance). `each_band(b, envelope)` is
// called with every band's power envelope, for other measures of the same bands.
SyncImpacts synchronous_impacts(const std::vector<double>& x, int sample_rate,
                                const std::vector<std::pair<double, double>>& edges,
                                const std::function<void(size_t, const std::vector<double>&)>& each_band) {
  SyncImpacts best;
  best.profile = {kTrainLowHz, kTrainGridHz, {}, 0.0, 0.1, kTrainGridSize, 0};
  const int64_t frame = std::max<int64_t>(1, std::lround(kSyncFrameS * sample_rate));
  const double frame_rate = static_cast<double>(sample_rate) / frame;
  const size_t frames = x.size() / static_cast<size_t>(frame);
  const double top_hz = std::min(kSyncTopHz, 0.48 * frame_rate);
  const bool foldable = frames >= 200 && top_hz >= kSyncFirstHarmonic * kTrainHighHz / 4;
  // Rates 0.06 / duration apart or closer: a rate half a step off drifts by at most 0.03 of a period
  // over the clip (0.0076 Hz for 5 s; for clips up to 2 hours, beyond which the steps stay at 2^22
  // bins).
  const double finest = 0.06 * frame_rate / static_cast<double>(std::max<size_t>(frames, 1));
  size_t nfft = 1;
  while (nfft < 2 * frames || (frame_rate / static_cast<double>(nfft) > finest && nfft < (size_t{1} << 22))) nfft *= 2;
  const double step = frame_rate / static_cast<double>(nfft);
  FftPlan transform(nfft);
  FftPlan fold(kSyncPhases, true);
  // The noise level of a coefficient: the median power within blocks of 5 Hz over ln 2 (the median
  // of an exponential distribution), up to the highest harmonic used.
  const auto block = static_cast<size_t>(std::max(8.0, std::round(5.0 / step)));
  const size_t used = std::min(nfft / 2, static_cast<size_t>(std::ceil(top_hz / step)) + block);
  std::vector<double> floor_of_block((used + block - 1) / block), power(used), window;
  std::vector<double> envelope_frames(frames);
  bool found = false;
  size_t rows = 0;
  band_envelopes(x, sample_rate, edges, false, [&](size_t b, const std::vector<double>& envelope) {
    each_band(b, envelope);
    if (!foldable) return;
    for (size_t m = 0; m < frames; ++m)
      envelope_frames[m] = std::accumulate(envelope.begin() + static_cast<int64_t>(m) * frame,
                                           envelope.begin() + static_cast<int64_t>(m + 1) * frame, 0.0);
    // Frames over 10 times the median (the 99.9th percentile of a band of noise) are held there:
    // a few strong knocks at random times, which would dominate a fold at any rate that happens to
    // align two or three of them, count like any frame of the clip's loudest noise.
    const double cap = kSyncCap * median_of(envelope_frames);
    for (double& v : envelope_frames) v = std::min(v, cap);
    const double mean = std::accumulate(envelope_frames.begin(), envelope_frames.end(), 0.0) / frames;
    std::vector<double> over_rate(kTrainGridSize, 0.0);
    if (mean > 0) {
      for (size_t m = 0; m < nfft; ++m)
        transform.real[m] = static_cast<float>(m < frames ? envelope_frames[m] / mean - 1.0 : 0.0);
      transform.run();
      const double scale = 1.0 / static_cast<double>(frames);
      for (size_t k = 0; k < used; ++k) power[k] = power_of(transform.spectrum[k]) * scale * scale;
      for (size_t i = 0; i < floor_of_block.size(); ++i) {
        window.assign(power.begin() + static_cast<int64_t>(i * block),
                      power.begin() + static_cast<int64_t>(std::min(used, (i + 1) * block)));
        floor_of_block[i] = median_of(window) / M_LN2;
      }
      // The fold's peak at the rate of bin k in standard deviations, over the harmonics that are not
      // multiples of `skip` (0: all of them), without the one that stands highest over its noise (so
      // that one strong line alone, a swell's or a beat's, does not count: impacts have many); 0
      // when the rate has too few harmonics below top_hz.
      const auto sigma_at = [&](size_t k, int skip) {
        const int last = std::min(kSyncLastHarmonic, static_cast<int>(top_hz / (static_cast<double>(k) * step)));
        if (last < kSyncFirstHarmonic + 2) return 0.0;
        int strongest = 0;
        double top_ratio = -1;
        for (int h = kSyncFirstHarmonic; h <= last; ++h) {
          const size_t bin = static_cast<size_t>(h) * k;
          const double ratio = power[bin] / (floor_of_block[bin / block] + kTiny);
          if (ratio > top_ratio) {
            top_ratio = ratio;
            strongest = h;
          }
        }
        double variance = 0;
        for (int p = 0; p < kSyncPhases; ++p) fold.spectrum[p][0] = fold.spectrum[p][1] = 0.0f;
        for (int h = kSyncFirstHarmonic; h <= last; ++h) {
          if ((skip > 1 && h % skip == 0) || h == strongest) continue;
          const size_t bin = static_cast<size_t>(h) * k;
          // Coefficient h of the fold is the clip's at h x f, twice over (it and its conjugate).
          fold.spectrum[h][0] = static_cast<float>(transform.spectrum[bin][0] * scale);
          fold.spectrum[h][1] = static_cast<float>(transform.spectrum[bin][1] * scale);
          fold.spectrum[kSyncPhases - h][0] = fold.spectrum[h][0];
          fold.spectrum[kSyncPhases - h][1] = -fold.spectrum[h][1];
          variance += 2.0 * floor_of_block[bin / block];
        }
        fold.run();
        double peak = 0;
        for (int p = 0; p < kSyncPhases; ++p) peak = std::max(peak, static_cast<double>(fold.complex_time[p][0]));
        return variance > 0 ? peak / std::sqrt(variance) : 0.0;
      };
      size_t band_k = 0;
      double band_sigma = 0;
      for (auto k = static_cast<size_t>(std::ceil(kTrainLowHz / step)); k * step <= kTrainHighHz; ++k) {
        const double sigma = sigma_at(k, 0);
        if (sigma > band_sigma) {
          band_sigma = sigma;
          band_k = k;
        }
        const auto cell = static_cast<size_t>(std::lround((k * step - kTrainLowHz) / kTrainGridHz));
        if (cell < kTrainGridSize) over_rate[cell] = std::max(over_rate[cell], sigma);
      }
      // A train at rate f folds as well at f / 2 or f / 3, where its lines are every 2nd or 3rd
      // harmonic of the fold; there the other harmonics hold only noise (their own fold stays under
      // 4 sigma and 0.4 of the whole, where a train at f keeps about 0.7). The train's rate is then
      // the multiple.
      for (bool moved = band_k > 0; moved;) {
        moved = false;
        for (const int d : {2, 3}) {
          if (static_cast<double>(d * band_k) * step > kTrainHighHz) continue;
          if (sigma_at(band_k, d) < std::max(4.0, 0.4 * band_sigma)) {
            band_k *= d;
            band_sigma = sigma_at(band_k, 0);
            moved = true;
            break;
          }
        }
      }
      if (band_k > 0 && (!found || band_sigma > best.sigma)) {
        best.sigma = band_sigma;
        best.rate_hz = static_cast<double>(band_k) * step;
        best.band_hz = std::sqrt(edges[b].first * edges[b].second);
        best.profile.row = rows;
        found = true;
      }
    }
    best.profile.values.insert(best.profile.values.end(), over_rate.begin(), over_rate.end());
    ++rows;
  });
  best.profile.at = best.rate_hz;
  return best;
}

// --- Ranking against the reference set ---

// True when the references (the k neighbours and the reference set) share one line, at least
// three quarters of them within 3 % of their median frequency, and the clip's line is within 3 %
// of it too. References without a common line (each finds another, e.g. in noise) have no line to
// compare with.
bool same_line_as_references(double hz, const std::vector<double>& neighbors, const std::vector<ClipEvidence>& pool,
                             size_t feature) {
  std::vector<double> lines(neighbors);
  for (const auto& p : pool) lines.push_back(p.values[feature]);
  const double centre = median_of(lines);
  if (hz <= 0 || centre <= 0) return false;
  const auto near = [&](double v) { return std::fabs(v - centre) <= 0.03 * centre; };
  const auto agreeing = std::count_if(lines.begin(), lines.end(), near);
  return near(hz) && 4 * agreeing >= 3 * static_cast<long>(lines.size());
}

// True when the clip's dominant tone lies within the frequencies of its references' dominant tones
// (the k neighbours and the reference set), widened by 3 %: a machine's tone moves with its speed
// from clip to clip, and a tone outside that range is another tone, whose sidebands do not compare.
bool same_tone_as_references(double hz, const std::vector<double>& neighbors, const std::vector<ClipEvidence>& pool,
                             size_t feature) {
  std::vector<double> tones;
  for (double v : neighbors)
    if (v > 0) tones.push_back(v);
  for (const auto& p : pool)
    if (p.values[feature] > 0) tones.push_back(p.values[feature]);
  if (hz <= 0 || tones.empty()) return false;
  // Without a reference set the neighbours' median stands for the tone.
  if (pool.empty()) return std::fabs(hz - median_of(tones)) <= 0.03 * median_of(tones);
  const auto [lo, hi] = std::minmax_element(tones.begin(), tones.end());
  return hz >= 0.97 * *lo && hz <= 1.03 * *hi;
}

// The reference set's spread on the side of a difference: the larger of the robust standard
// deviation (1.4826 x MAD) and the distance from the median to the 90th (or, below, 10th)
// percentile over 1.2816 (equal to the standard deviation for normally distributed values), and
// the feature's spread floors. A background sound present at varying level in some of the normal
// clips (a heavy tail on one side) thereby widens the spread on that side only.
double reference_set_spread(const FeatureSpec& spec, const std::vector<double>& all, double median, double difference,
                            double robust_sd) {
  const double tail = std::fabs(quantile_of(all, difference >= 0 ? 0.9 : 0.1) - median) / 1.2816;
  const double floor = std::max({spec.spread_floor, spec.relative_floor * std::fabs(median), 1e-9});
  return std::max({robust_sd, tail, floor});
}

// True when two or more clips of the reference set lie at or beyond the anomalous value on the
// side of the difference: the normal clips already reach it, so it is not a clear difference.
bool reached_by_reference_set(const std::vector<double>& set, double anomalous, double direction) {
  int reached = 0;
  for (double v : set)
    if (direction > 0 ? v >= anomalous : v <= anomalous) ++reached;
  return reached >= 2;
}

// The largest value of a profile in row `row` over the parameters within at x (1 +- tolerance), at
// least +-half a step; none when the profile has no such row or no step there.
std::optional<double> profile_value(const FeatureProfile& p, size_t row, double at, double tolerance) {
  const size_t width = p.columns ? p.columns : p.values.size();
  if (!(p.step > 0) || width == 0 || (row + 1) * width > p.values.size()) return std::nullopt;
  const double half = std::max(std::fabs(at) * tolerance, 0.5 * p.step);
  const double from = std::max(0.0, std::ceil((at - half - p.first) / p.step));
  const double to = std::min(static_cast<double>(width) - 1, std::floor((at + half - p.first) / p.step));
  if (!(from <= to)) return std::nullopt;
  double best = -std::numeric_limits<double>::infinity();
  for (double i = from; i <= to; i += 1) best = std::max(best, p.values[row * width + static_cast<size_t>(i)]);
  return best;
}

// The clip with each feature whose profile is read in the row where the clip stands furthest above
// its references (row_by_references) set to that row: its value there, and for crackle_db the
// band's centre in crackle_hz. The references are the reference set (5 clips or more), else the
// neighbours; the distance is in the reference set's spread as compare_evidence measures it.
ClipEvidence in_rows_against_references(const ClipEvidence& measured, const std::vector<ClipEvidence>& neighbors,
                                        const std::vector<ClipEvidence>& pool) {
  ClipEvidence clip = measured;
  const auto& specs = evidence_features();
  const std::vector<ClipEvidence>& set = pool.size() >= 5 ? pool : neighbors;
  for (auto& [key, profile] : clip.profiles) {
    if (!profile.row_by_references || set.empty()) continue;
    const size_t f = evidence_index(key);
    const size_t width = profile.columns ? profile.columns : profile.values.size();
    if (width == 0) continue;
    const size_t rows = profile.values.size() / width;
    double best = -std::numeric_limits<double>::infinity();
    for (size_t r = 0; r < rows; ++r) {
      const std::optional<double> mine = profile_value(profile, r, profile.at, profile.tolerance);
      if (!mine) continue;
      std::vector<double> theirs, deviation;
      for (const auto& c : set) {
        const auto p = c.profiles.find(key);
        if (p == c.profiles.end()) continue;
        if (const auto v = profile_value(p->second, r, profile.at, profile.tolerance)) theirs.push_back(*v);
      }
      if (theirs.empty()) continue;
      const double median = median_of(theirs);
      for (double v : theirs) deviation.push_back(std::fabs(v - median));
      const double z = (*mine - median) /
                       reference_set_spread(specs[f], theirs, median, *mine - median, 1.4826 * median_of(deviation));
      if (z > best) {
        best = z;
        profile.row = r;
        clip.values[f] = *mine;
      }
    }
    if (key == "crackle_db") {
      const auto centres = clip.profiles.find("crackle_hz");
      if (centres != clip.profiles.end() && profile.row < centres->second.values.size())
        clip.values[evidence_index("crackle_hz")] = centres->second.values[profile.row];
    }
  }
  return clip;
}

// The times of a clip's crackle moments in octave band `band`, in time order.
std::vector<double> crackle_times(const ClipEvidence& clip, size_t band) {
  const auto moments = clip.profiles.find("crackle_times");
  if (moments == clip.profiles.end()) return {};
  const FeatureProfile& m = moments->second;
  std::vector<double> times;
  for (size_t i = band * m.columns; i < (band + 1) * m.columns && i < m.values.size(); ++i)
    if (m.values[i] >= 0) times.push_back(m.values[i]);
  std::sort(times.begin(), times.end());
  return times;
}

}  // namespace

const std::vector<FeatureSpec>& evidence_features() {
  static const std::vector<FeatureSpec> specs = {
      {"level_db", "Overall level", "dBFS", 1, 1.0, 0.0, true, 0.5},
      {"hum_db", "Steady low-frequency hum below 200 Hz", "dB re total", 1, 1.0, 0.0, true, 0.5},
      {"vibration_pct", "Vibration (amplitude modulation depth at 5-60 Hz)", "%", 1, 2.0, 0.0, true, 1.0},
      {"vibration_hz", "Vibration rate", "Hz", 1, 0.0, 0.0, false, 0.0},
      {"tone_db", "High-frequency tonal peak above 2 kHz", "dB over local floor", 1, 1.5, 0.0, true, 0.5},
      {"tone_hz", "Frequency of that tonal peak", "Hz", 0, 0.0, 0.0, false, 0.0},
      {"impulse_rate", "Impulsive transients (8 dB above the local level)", "per second", 1, 0.5, 0.0, true, 0.25},
      {"impulse_db", "Strongest 5-ms burst over average level", "dB", 1, 1.5, 0.0, true, 0.5},
      {"click_strength", "Periodicity of the transients", "0-1", 2, 0.1, 0.0, true, 0.05},
      {"click_rate", "Rate of periodic transients", "Hz", 1, 0.0, 0.0, false, 0.0},
      {"rattle_pct", "Rattle (modulation depth above 2 kHz at 10-60 Hz beyond the whole sound's)", "%", 1, 1.5, 0.0,
       true, 0.5},
      {"rattle_hz", "Rattle rate", "Hz", 1, 0.0, 0.0, false, 0.0},
      {"noise_db", "Broadband noise floor 200 Hz and up (tones removed)", "dBFS", 1, 1.0, 0.0, true, 0.5},
      {"grind_db", "Broadband noise above 4 kHz", "dB re total", 1, 1.0, 0.0, true, 0.5},
      {"flatness", "Spectral flatness above 2 kHz", "0-1", 3, 0.02, 0.1, true, 0.01},
      {"centroid_hz", "Spectral centroid", "Hz", 0, 40.0, 0.15, true, 20.0},
      {"irregularity", "Variation of level over time (CV of 50-ms frame energy)", "ratio", 2, 0.05, 0.2, true, 0.02},
      {"dropout_pct", "Time in drop-outs (at least 100 ms, 10 dB below the median level)", "%", 1, 1.0, 0.0, true, 0.5},
      {"dropout_count", "Number of drop-outs", "count", 0, 0.5, 0.0, true, 1.0},
      {"burst_rate", "Short events (bursts or impacts over the local background, busiest octave band)", "per second", 1,
       0.3, 0.0, true, 0.2},
      {"burst_db", "Median level of those events over the local background", "dB", 1, 0.0, 0.0, false, 0.0},
      {"burst_hz", "Centre of the octave band of those events", "Hz", 0, 0.0, 0.0, false, 0.0},
      {"burst_regularity", "Periodicity of those events (autocorrelation at 20-500 ms)", "0-1", 2, 0.0, 0.0, false,
       0.0},
      {"burst_period_hz", "Rate of those events when periodic", "Hz", 1, 0.0, 0.0, false, 0.0},
      {"sideband_db", "Sidebands around the dominant tone (1st and 2nd pair, power re the tone)", "dBc", 1, 2.0, 0.0,
       true, 1.0},
      {"sideband_hz", "Spacing of those sidebands", "Hz", 1, 0.0, 0.0, false, 0.0},
      {"carrier_hz", "Frequency of the dominant tone", "Hz", 0, 0.0, 0.0, false, 0.0},
      {"shaft_db", "Low-frequency tone at 10-60 Hz and its 2nd and 3rd harmonics over the local floor", "dB", 1, 0.5,
       0.0, true, 0.5},
      {"shaft_hz", "Frequency of that low-frequency tone", "Hz", 1, 0.0, 0.0, false, 0.0},
      {"impact_db",
       "Periodic impacts (envelope lines at a rate and its 2nd and 3rd multiples, busiest half-octave "
       "band from 1 kHz)",
       "dB over the envelope spectrum's floor", 1, 1.5, 0.0, true, 1.0},
      {"impact_hz", "Rate of those impacts", "Hz", 1, 0.0, 0.0, false, 0.0},
      {"impact_band_hz", "Centre of the half-octave band of those impacts", "Hz", 0, 0.0, 0.0, false, 0.0},
      {"impact_sync",
       "Periodic impacts by synchronous averaging (peak of an octave band's envelope folded at a rate of 10-60 Hz, "
       "4th to 31st harmonics)",
       "sigma over noise", 1, 1.0, 0.0, true, 1.0},
      {"impact_sync_hz", "Rate of that fold", "Hz", 2, 0.0, 0.0, false, 0.0},
      {"impact_sync_band_hz", "Centre of the octave band of that fold", "Hz", 0, 0.0, 0.0, false, 0.0},
      {"crackle_db",
       "Crackle (the sixth-loudest separate 50-ms moment of a band over its median level; the octave band from "
       "1 kHz where the clip stands furthest above its references)",
       "dB", 1, 0.1, 0.0, true, 0.3},
      {"crackle_hz", "Centre of that octave band", "Hz", 0, 0.0, 0.0, false, 0.0},
      {"hum_noise_db", "Motor hum (line at 80-200 Hz and its 2nd harmonic) over the broadband noise above 1 kHz", "dB",
       1, 0.5, 0.0, true, 0.5},
      {"hum_noise_hz", "Frequency of that motor hum", "Hz", 0, 0.0, 0.0, false, 0.0},
  };
  return specs;
}

size_t evidence_index(const std::string& key) {
  const auto& specs = evidence_features();
  for (size_t i = 0; i < specs.size(); ++i)
    if (specs[i].key == key) return i;
  throw Error("evidence: unknown feature \"" + key + "\"");
}

ClipEvidence measure_evidence(const float* samples, int64_t n, int sample_rate) {
  if (sample_rate < 8000)
    throw FormatError("evidence: sample rate " + std::to_string(sample_rate) + " Hz is below 8000 Hz");
  if (n < sample_rate / 2) throw FormatError("evidence: clip shorter than 0.5 s");
  std::vector<double> x(samples, samples + n);
  const double seconds = static_cast<double>(n) / sample_rate;
  const double nyquist = sample_rate / 2.0;
  const double top = std::min(0.9 * nyquist, 16000.0);

  ClipEvidence ev;
  ev.values.assign(evidence_features().size(), 0.0);
  auto set = [&](const char* key, double v) { ev.values[evidence_index(key)] = std::isfinite(v) ? v : 0.0; };

  double power = 0;
  for (double v : x) power += v * v;
  power /= n;
  set("level_db", db(power));

  const Spectrum spec = mean_spectrum(x, sample_rate, sample_rate <= 24000 ? 1024 : 2048);
  const double total = band_sum(spec, spec.bin_hz, nyquist);
  // Medians over frames: a steady hum counts, occasional low thumps (knocks) do not.
  set("hum_db", db(median_of(spec.frame_low) / (median_of(spec.frame_total) + kTiny)));
  const Modulation mod = envelope_modulation(x, sample_rate, 5.0, 60.0);
  set("vibration_pct", 100.0 * mod.depth);
  set("vibration_hz", mod.hz);
  if (mod.hz > 0) ev.profiles["vibration_pct"] = mod.profile;
  const std::vector<double> floor = noise_floor(spec);
  const Tone tone = tonal_peak(spec, floor, 2000.0, top);
  set("tone_db", tone.prominence_db);
  set("tone_hz", tone.hz);
  double noise = 0;
  for (size_t k = 0; k < floor.size(); ++k)
    if (k * spec.bin_hz >= 200.0 && k * spec.bin_hz <= top) noise += floor[k];
  set("noise_db", db(noise));

  std::vector<double> high, upper;
  double weighted = 0, weight = 0, log_sum = 0;
  for (size_t k = 0; k < spec.power.size(); ++k) {
    const double f = k * spec.bin_hz;
    if (f >= 20.0) {
      weighted += f * spec.power[k];
      weight += spec.power[k];
    }
    if (f >= 4000.0 && f <= top) high.push_back(spec.power[k]);
    if (f >= 2000.0 && f <= top) {
      upper.push_back(spec.power[k]);
      log_sum += std::log(spec.power[k] + kTiny);
    }
  }
  set("grind_db", high.empty() ? -120.0 : db(median_of(high) * high.size() / (total + kTiny)));
  if (!upper.empty()) {
    const double arith = std::accumulate(upper.begin(), upper.end(), 0.0) / upper.size();
    set("flatness", std::exp(log_sum / upper.size()) / (arith + kTiny));
  }
  set("centroid_hz", weight > 0 ? weighted / weight : 0.0);

  // Transients, in the full band (thumps) and above 1 kHz (clicks and knocks masked by hum).
  const int64_t short_len = std::max<int64_t>(1, std::lround(0.005 * sample_rate));
  const double short_s = static_cast<double>(short_len) / sample_rate;
  const std::vector<double> above_1k = highpass(x, 1000.0, sample_rate);
  const Transients full_band = find_transients(frame_energy(x, short_len));
  const Transients high_band = find_transients(frame_energy(above_1k, short_len));
  set("impulse_rate", std::max(full_band.count, high_band.count) / seconds);
  set("impulse_db", std::max(full_band.peak_db, high_band.peak_db));
  // Periodicity of the detected transients (spike train smoothed over +-5 ms for jitter).
  const Transients& busier = high_band.count >= full_band.count ? high_band : full_band;
  if (busier.count >= 4) {
    const Periodicity period = spike_periodicity(busier.spikes, short_s);
    set("click_strength", period.strength);
    set("click_rate", period.rate_hz);
    if (period.rate_hz > 0) ev.profiles["click_strength"] = period.profile;
  }
  const Modulation rattle = envelope_modulation(highpass(x, 2000.0, sample_rate), sample_rate, 10.0, 60.0);
  // Only what the high band adds to the whole sound's modulation: an unbalanced rotor modulates
  // every band alike, a loose part clicks in the high band.
  set("rattle_pct", std::max(0.0, 100.0 * (rattle.depth - envelope_modulation(x, sample_rate, 10.0, 60.0).depth)));
  set("rattle_hz", rattle.hz);

  // Level over time: 50-ms frames for irregularity, 20-ms frames for drop-outs.
  const std::vector<double> e50 = frame_energy(x, std::max<int64_t>(1, std::lround(0.050 * sample_rate)));
  if (e50.size() > 1) {
    const double mean = std::accumulate(e50.begin(), e50.end(), 0.0) / e50.size();
    double var = 0;
    for (double e : e50) var += (e - mean) * (e - mean);
    set("irregularity", std::sqrt(var / (e50.size() - 1)) / (mean + kTiny));
  }
  const std::vector<double> e20 = frame_energy(x, std::max<int64_t>(1, std::lround(0.020 * sample_rate)));
  std::vector<double> level20(e20.size());
  for (size_t i = 0; i < e20.size(); ++i) level20[i] = db(e20[i]);
  const double quiet_db = median_of(level20) - 10.0;
  int silent = 0, gaps = 0, run = 0;
  for (size_t i = 0; i <= level20.size(); ++i) {
    const bool quiet = i < level20.size() && level20[i] < quiet_db;
    if (quiet) {
      ++run;
    } else {
      if (run >= 5) {  // a drop-out lasts at least 100 ms
        ++gaps;
        silent += run;
      }
      run = 0;
    }
  }
  set("dropout_pct", level20.empty() ? 0.0 : 100.0 * silent / level20.size());
  set("dropout_count", gaps);

  // Short events in the busiest octave band, their level over the local background, their times
  // and their periodicity.
  const BandEvents events = busiest_band(x, sample_rate);
  set("burst_rate", events.times.size() / seconds);
  set("burst_db", events.levels_db.empty() ? 0.0 : median_of(events.levels_db));
  set("burst_hz", events.centre_hz);
  ev.burst_times = events.times;
  FeatureProfile bands{0.0, 1.0, {}, static_cast<double>(events.band), 0.0};
  for (double c : events.all_counts) bands.values.push_back(c / seconds);
  ev.profiles["burst_rate"] = std::move(bands);
  if (events.times.size() >= 4) {
    const Periodicity period = spike_periodicity(events.spikes, short_s);
    set("burst_regularity", period.strength);
    set("burst_period_hz", period.rate_hz);
  }

  // Tonal structure at about 2-Hz resolution: sidebands of the dominant tone, and a shaft-rate tone.
  int fine_nfft = 1;
  while (fine_nfft * 2 <= std::min<int64_t>(n, sample_rate / 2)) fine_nfft *= 2;
  if (fine_nfft < sample_rate / 2 && fine_nfft * 2 <= n) fine_nfft *= 2;
  const Spectrum fine = mean_spectrum(x, sample_rate, fine_nfft);
  const Sidebands sb = sidebands(fine, top);
  set("sideband_db", sb.dbc);
  set("sideband_hz", sb.spacing_hz);
  set("carrier_hz", sb.carrier_hz);
  const ShaftTone shaft = shaft_tone(fine);
  set("shaft_db", shaft.db);
  set("shaft_hz", shaft.hz);
  if (shaft.hz > 0) ev.profiles["shaft_db"] = shaft.profile;
  double noise_above_1k = 0;
  for (size_t k = 0; k < floor.size(); ++k)
    if (k * spec.bin_hz >= 1000.0 && k * spec.bin_hz <= top) noise_above_1k += floor[k];
  const MotorHum hum = motor_hum(fine);
  set("hum_noise_db", std::max(-60.0, db(hum.power) - db(noise_above_1k)));  // -60: no hum line
  set("hum_noise_hz", hum.hz);

  const PeriodicImpacts impacts = periodic_impacts(x, sample_rate);
  set("impact_db", impacts.db);
  set("impact_hz", impacts.rate_hz);
  set("impact_band_hz", impacts.band_hz);
  if (impacts.rate_hz > 0) ev.profiles["impact_db"] = impacts.profile;
  const std::vector<std::pair<double, double>> octaves = octave_bands(sample_rate);
  FeatureProfile crackle{0.0, 1.0, {}, 0.0, 0.0, 1, 0, true}, centres{0.0, 1.0, {}, 0.0, 0.0, 1, 0},
      moments{0.0, 1.0, {}, 0.0, 0.0, kCrackleMoments, 0};
  const SyncImpacts sync =
      synchronous_impacts(x, sample_rate, octaves, [&](size_t b, const std::vector<double>& envelope) {
        const Crackle c = band_crackle(envelope, sample_rate);
        crackle.values.push_back(c.db);
        centres.values.push_back(std::sqrt(octaves[b].first * octaves[b].second));
        moments.values.insert(moments.values.end(), c.times.begin(), c.times.end());
      });
  if (!crackle.values.empty()) {
    crackle.row =
        static_cast<size_t>(std::max_element(crackle.values.begin(), crackle.values.end()) - crackle.values.begin());
    set("crackle_db", crackle.values[crackle.row]);
    set("crackle_hz", centres.values[crackle.row]);
    ev.profiles["crackle_db"] = std::move(crackle);
    ev.profiles["crackle_hz"] = std::move(centres);
    ev.profiles["crackle_times"] = std::move(moments);
  }
  set("impact_sync", sync.sigma);
  set("impact_sync_hz", sync.rate_hz);
  set("impact_sync_band_hz", sync.band_hz);
  if (sync.rate_hz > 0) ev.profiles["impact_sync"] = sync.profile;
  return ev;
}

std::vector<EvidenceRow> compare_evidence(const ClipEvidence& measured, const std::vector<ClipEvidence>& neighbors,
                                          const std::vector<ClipEvidence>& pool) {
  const auto& specs = evidence_features();
  if (measured.values.size() != specs.size()) throw Error("evidence: wrong number of values");
  for (const auto& p : pool)
    if (p.values.size() != specs.size()) throw Error("evidence: wrong number of values");
  const ClipEvidence anomalous = in_rows_against_references(measured, neighbors, pool);
  // A feature with a profile (events per band, a rhythm's or a modulation's strength per rate, a
  // low tone per frequency) is measured on a reference where the anomalous clip's maximum lies.
  const auto value = [&](const ClipEvidence& c, size_t f) {
    if (&c == &anomalous) return c.values[f];
    const auto mine = anomalous.profiles.find(specs[f].key);
    if (mine == anomalous.profiles.end()) return c.values[f];
    const auto theirs = c.profiles.find(specs[f].key);
    if (theirs == c.profiles.end()) return c.values[f];
    const FeatureProfile& p = mine->second;
    return profile_value(theirs->second, p.row, p.at, p.tolerance).value_or(c.values[f]);
  };
  std::vector<EvidenceRow> rows;
  for (size_t f = 0; f < specs.size(); ++f) {
    const FeatureSpec& spec = specs[f];
    EvidenceRow row{&spec, anomalous.values[f], {}, 0.0, std::nullopt, std::nullopt, std::nullopt, 0.0, {}, {}};
    for (const auto& nb : neighbors) {
      if (nb.values.size() != specs.size()) throw Error("evidence: wrong number of values");
      row.neighbors.push_back(value(nb, f));
    }
    const size_t k = row.neighbors.size();
    if (k) row.reference_mean = std::accumulate(row.neighbors.begin(), row.neighbors.end(), 0.0) / k;
    if (spec.scored && k) {
      double var = 0;
      for (double v : row.neighbors) var += (v - row.reference_mean) * (v - row.reference_mean);
      const double sd = k > 1 ? std::sqrt(var / (k - 1)) : 0.0;
      const double floor = std::max(spec.spread_floor, spec.relative_floor * std::fabs(row.reference_mean));
      row.z = (row.anomalous - row.reference_mean) / std::max(sd, floor);
    }
    std::vector<double> all;  // the feature over the whole reference set
    if (spec.scored && pool.size() >= 5) {
      for (const auto& p : pool) all.push_back(value(p, f));
      const double median = median_of(all);
      std::vector<double> deviation;
      double below = 0;
      for (double v : all) {
        deviation.push_back(std::fabs(v - median));
        below += v < row.anomalous ? 1.0 : v == row.anomalous ? 0.5 : 0.0;
      }
      row.z_all = (row.anomalous - median) /
                  reference_set_spread(spec, all, median, row.anomalous - median, 1.4826 * median_of(deviation));
      row.percentile = 100.0 * below / all.size();
    }
    if (row.z && std::fabs(row.anomalous - row.reference_mean) >= spec.resolution) {
      row.strength = *row.z;
      if (row.z_all && (*row.z_all * *row.z <= 0 || reached_by_reference_set(all, row.anomalous, *row.z)))
        row.strength = 0.0;
      else if (row.z_all)
        row.strength =
            pool.size() >= 10 ? *row.z_all : std::copysign(std::min(std::fabs(*row.z), std::fabs(*row.z_all)), *row.z);
    }
    if (spec.key == "crackle_db") {
      if (const auto band = anomalous.profiles.find(spec.key); band != anomalous.profiles.end()) {
        row.times = crackle_times(anomalous, band->second.row);
        for (const auto& nb : neighbors) row.neighbor_times.push_back(crackle_times(nb, band->second.row));
      }
    }
    rows.push_back(std::move(row));
  }
  // Sidebands compare only around the same tone: a clip whose dominant tone is another one than
  // its references' (or that has none) has no sideband difference to name.
  const size_t sideband = evidence_index("sideband_db"), carrier = evidence_index("carrier_hz");
  if (!same_tone_as_references(rows[carrier].anomalous, rows[carrier].neighbors, pool, carrier))
    rows[sideband].strength = 0.0;
  // Likewise the motor hum: only a hum line that the references have too, at the same frequency.
  const size_t hum = evidence_index("hum_noise_db"), hum_hz = evidence_index("hum_noise_hz");
  if (!same_line_as_references(rows[hum_hz].anomalous, rows[hum_hz].neighbors, pool, hum_hz)) rows[hum].strength = 0.0;
  return rows;
}

std::string format_feature(const FeatureSpec& spec, double value) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", spec.decimals, value);
  std::string s = buf;
  if (s.size() > 1 && s[0] == '-' && s.find_first_not_of("-0.") == std::string::npos) s.erase(0, 1);
  return s;
}

std::string feature_header(const FeatureSpec& spec) { return spec.name + " (" + spec.unit + ")"; }

}  // namespace asdcap
