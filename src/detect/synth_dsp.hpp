// Small signal-generation helpers for synth (not a public interface).
#pragma once
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace asdcap::synthdsp {

// splitmix64: small, fast, deterministic on every platform.
class Rng {
 public:
  explicit Rng(uint64_t seed) : s_(seed) {}
  uint64_t next() {
    uint64_t z = (s_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  double uniform(double a, double b) { return a + (b - a) * uniform(); }
  int integer(int a, int b) { return a + static_cast<int>(next() % static_cast<uint64_t>(b - a + 1)); }
  double normal() {
    double u1 = std::max(uniform(), 1e-300), u2 = uniform();
    return std::sqrt(-2 * std::log(u1)) * std::cos(2 * M_PI * u2);
  }

 private:
  uint64_t s_;
};

uint64_t hash_mix(uint64_t seed, const std::string& text);

// RBJ-cookbook biquad, direct form I.
struct Biquad {
  double b0 = 1, b1 = 0, b2 = 0, a1 = 0, a2 = 0, x1 = 0, x2 = 0, y1 = 0, y2 = 0;
  static Biquad lowpass(double f, double q, double fs);
  static Biquad highpass(double f, double q, double fs);
  static Biquad bandpass(double f, double q, double fs);  // 0 dB peak gain
  double operator()(double x) {
    double y = b0 * x + b1 * x1 + b2 * x2 - a1 * y1 - a2 * y2;
    x2 = x1;
    x1 = x;
    y2 = y1;
    y1 = y;
    return y;
  }
};

std::vector<double> white(Rng& rng, size_t n);
std::vector<double> filtered(std::vector<double> x, Biquad f);
std::vector<double> pink(Rng& rng, size_t n);
// Slowly wandering factor around 1 (one-pole low-passed noise), relative deviation ~ depth.
std::vector<double> wander(Rng& rng, size_t n, double fs, double cutoff_hz, double depth);
double rms(const std::vector<double>& x);
void scale_to_rms(std::vector<double>& x, double target);
// Adds a sine of (time-varying) frequency f[t] or constant f with amplitude a.
void add_tone(std::vector<double>& x, double f, double amp, double fs, double phase,
              const std::vector<double>* fm = nullptr);
// Adds a decaying resonance (click / knock / thud) at sample `at`.
void add_ping(std::vector<double>& x, size_t at, double freq, double decay_s, double amp, double fs, double phase = 0);
// Adds a short decaying noise burst through a band-pass.
void add_burst(std::vector<double>& x, Rng& rng, size_t at, double center, double decay_s, double amp, double fs);

}  // namespace asdcap::synthdsp
