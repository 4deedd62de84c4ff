#include "synth_dsp.hpp"

#include <algorithm>

namespace asdcap::synthdsp {

uint64_t hash_mix(uint64_t seed, const std::string& text) {
  uint64_t h = 1469598103934665603ull ^ seed;  // FNV-1a, then a splitmix finish
  for (unsigned char c : text) h = (h ^ c) * 1099511628211ull;
  Rng r(h);
  return r.next();
}

namespace {
Biquad make(double b0, double b1, double b2, double a0, double a1, double a2) {
  Biquad f;
  f.b0 = b0 / a0;
  f.b1 = b1 / a0;
  f.b2 = b2 / a0;
  f.a1 = a1 / a0;
  f.a2 = a2 / a0;
  return f;
}
}  // namespace

Biquad Biquad::lowpass(double f, double q, double fs) {
  double w = 2 * M_PI * f / fs, c = std::cos(w), alpha = std::sin(w) / (2 * q);
  return make((1 - c) / 2, 1 - c, (1 - c) / 2, 1 + alpha, -2 * c, 1 - alpha);
}
Biquad Biquad::highpass(double f, double q, double fs) {
  double w = 2 * M_PI * f / fs, c = std::cos(w), alpha = std::sin(w) / (2 * q);
  return make((1 + c) / 2, -(1 + c), (1 + c) / 2, 1 + alpha, -2 * c, 1 - alpha);
}
Biquad Biquad::bandpass(double f, double q, double fs) {
  double w = 2 * M_PI * f / fs, c = std::cos(w), alpha = std::sin(w) / (2 * q);
  return make(alpha, 0, -alpha, 1 + alpha, -2 * c, 1 - alpha);
}

std::vector<double> white(Rng& rng, size_t n) {
  std::vector<double> x(n);
  for (auto& v : x) v = rng.normal();
  return x;
}

std::vector<double> filtered(std::vector<double> x, Biquad f) {
  for (auto& v : x) v = f(v);
  return x;
}

std::vector<double> pink(Rng& rng, size_t n) {
  std::vector<double> x(n);
  double b0 = 0, b1 = 0, b2 = 0;
  for (auto& v : x) {
    double w = rng.normal();
    b0 = 0.99765 * b0 + w * 0.0990460;
    b1 = 0.96300 * b1 + w * 0.2965164;
    b2 = 0.57000 * b2 + w * 1.0526913;
    v = b0 + b1 + b2 + w * 0.1848;
  }
  return x;
}

std::vector<double> wander(Rng& rng, size_t n, double fs, double cutoff_hz, double depth) {
  std::vector<double> x(n);
  double a = std::exp(-2 * M_PI * cutoff_hz / fs), y = 0;
  // One-pole low-pass of unit white noise has variance (1 - a) / (1 + a).
  double norm = std::sqrt((1 + a) / (1 - a));
  for (auto& v : x) {
    y = a * y + (1 - a) * rng.normal();
    v = 1 + depth * y * norm;
  }
  return x;
}

double rms(const std::vector<double>& x) {
  double s = 0;
  for (double v : x) s += v * v;
  return std::sqrt(s / static_cast<double>(std::max<size_t>(1, x.size())));
}

void scale_to_rms(std::vector<double>& x, double target) {
  double r = rms(x);
  if (r > 0)
    for (auto& v : x) v *= target / r;
}

void add_tone(std::vector<double>& x, double f, double amp, double fs, double phase, const std::vector<double>* fm) {
  double ph = phase;
  for (size_t i = 0; i < x.size(); ++i) {
    x[i] += amp * std::sin(ph);
    ph += 2 * M_PI * f * (fm ? (*fm)[i] : 1.0) / fs;
    if (ph > 2 * M_PI) ph -= 2 * M_PI;
  }
}

void add_ping(std::vector<double>& x, size_t at, double freq, double decay_s, double amp, double fs, double phase) {
  size_t len = static_cast<size_t>(decay_s * fs * 6);
  for (size_t i = 0; i < len && at + i < x.size(); ++i) {
    double t = static_cast<double>(i) / fs;
    x[at + i] += amp * std::exp(-t / decay_s) * std::sin(2 * M_PI * freq * t + phase);
  }
}

void add_burst(std::vector<double>& x, Rng& rng, size_t at, double center, double decay_s, double amp, double fs) {
  Biquad bp = Biquad::bandpass(center, 1.0, fs);
  size_t len = static_cast<size_t>(decay_s * fs * 6);
  for (size_t i = 0; i < len && at + i < x.size(); ++i) {
    double t = static_cast<double>(i) / fs;
    x[at + i] += amp * std::exp(-t / decay_s) * bp(rng.normal()) * 3;
  }
}

}  // namespace asdcap::synthdsp
