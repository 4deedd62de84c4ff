// torchaudio.functional.resample with its defaults (sinc_interp_hann, lowpass_filter_width 6,
// rolloff 0.99). The kernel is built exactly as torchaudio builds it (float64, with the float32
// "-j/n" term, cast to float32); it is then applied as a polyphase filter that only visits the
// taps that are non-zero in float32 (about 13 per phase instead of 2*width+o). Each output is
// a chain of fused multiply-adds in tap order, which is how torch's conv1d sums them: the result
// is bit-identical to msclap's waveforms (golden waveform.npy), since the skipped taps are exact
// zeros and fma(x, 0, acc) == acc.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "asdcap/audio.hpp"
#include "asdcap/error.hpp"

namespace asdcap {
namespace {

constexpr int kLowpassWidth = 6;
constexpr double kRolloff = 0.99;

struct PolyphaseKernel {
  int64_t o = 0, n = 0, width = 0;
  int64_t taps = 0;            // row stride of `weights` (longest phase)
  std::vector<int64_t> first;  // [n] index (into the padded input frame) of the first tap
  std::vector<int64_t> count;  // [n] number of non-zero taps
  std::vector<float> weights;  // [n x taps]
};

// One entry k[j, i] of torchaudio's _get_sinc_resample_kernel.
float kernel_value(int64_t j, int64_t i, const PolyphaseKernel& k, double base) {
  const double minus_j_over_n = static_cast<double>(static_cast<float>(-j) / static_cast<float>(k.n));  // float32 quirk
  const double idx = static_cast<double>(i - k.width) / static_cast<double>(k.o);
  double t = (minus_j_over_n + idx) * base;
  t = std::clamp(t, -static_cast<double>(kLowpassWidth), static_cast<double>(kLowpassWidth));
  double window = std::cos(t * M_PI / kLowpassWidth / 2);
  window = window * window;
  t *= M_PI;
  const double scale = base / static_cast<double>(k.o);
  double value = (t == 0.0) ? 1.0 : std::sin(t) / t;
  value *= window * scale;
  return static_cast<float>(value);
}

PolyphaseKernel make_kernel(int64_t o, int64_t n) {
  PolyphaseKernel k;
  k.o = o;
  k.n = n;
  const double base = static_cast<double>(std::min(o, n)) * kRolloff;
  k.width = static_cast<int64_t>(std::ceil(static_cast<double>(kLowpassWidth * o) / base));
  const int64_t full = 2 * k.width + o;  // torchaudio's kernel length per phase
  // Non-zero taps satisfy |t| < 6; search a slightly wider index range, then trim exact zeros.
  std::vector<std::vector<float>> phase(static_cast<size_t>(n));
  k.first.assign(static_cast<size_t>(n), 0);
  k.count.assign(static_cast<size_t>(n), 0);
  int64_t longest = 1;
  const double reach = kLowpassWidth / base * static_cast<double>(o);
  for (int64_t j = 0; j < n; ++j) {
    const double centre = static_cast<double>(j) / static_cast<double>(n) * static_cast<double>(o);
    int64_t lo = static_cast<int64_t>(std::floor(centre - reach)) + k.width - 2;
    int64_t hi = static_cast<int64_t>(std::ceil(centre + reach)) + k.width + 3;
    lo = std::max<int64_t>(lo, 0);
    hi = std::min<int64_t>(hi, full);
    std::vector<float> w;
    for (int64_t i = lo; i < hi; ++i) w.push_back(kernel_value(j, i, k, base));
    size_t a = 0, b = w.size();
    while (a < b && w[a] == 0.0f) ++a;
    while (b > a && w[b - 1] == 0.0f) --b;
    if (a == b) a = b = 0;  // cannot happen for valid rates; keep one zero tap
    k.first[static_cast<size_t>(j)] = lo + static_cast<int64_t>(a);
    k.count[static_cast<size_t>(j)] = static_cast<int64_t>(b - a);
    phase[static_cast<size_t>(j)].assign(w.begin() + static_cast<ptrdiff_t>(a), w.begin() + static_cast<ptrdiff_t>(b));
    longest = std::max<int64_t>(longest, static_cast<int64_t>(b - a));
  }
  k.taps = longest;
  k.weights.assign(static_cast<size_t>(n * k.taps), 0.0f);
  for (int64_t j = 0; j < n; ++j)
    std::copy(phase[static_cast<size_t>(j)].begin(), phase[static_cast<size_t>(j)].end(),
              k.weights.begin() + j * k.taps);
  return k;
}

// Output m = j + n*f is the dot product of phase j's taps with the padded input from f*o +
// first[j]. To vectorise over frames while keeping each output's own tap order (so the fma chain
// is the same as torch's), a block of frames is first transposed: column c of frame f is
// padded[f*o + c]. Then for each phase and tap, one fma runs over all frames of the block.
void apply(const PolyphaseKernel& k, const float* padded, int64_t frames, int64_t total, float* out) {
  constexpr int64_t kBlock = 256;
  int64_t columns = 0;  // input span one frame needs: max over phases of first + taps
  for (int64_t j = 0; j < k.n; ++j)
    columns = std::max(columns, k.first[static_cast<size_t>(j)] + k.count[static_cast<size_t>(j)]);
  std::vector<float> block(static_cast<size_t>(columns * kBlock));
  float acc[kBlock];
  for (int64_t f0 = 0; f0 < frames; f0 += kBlock) {
    const int64_t nf = std::min(kBlock, frames - f0);
    for (int64_t f = 0; f < nf; ++f) {
      const float* src = padded + (f0 + f) * k.o;
      for (int64_t c = 0; c < columns; ++c) block[static_cast<size_t>(c * kBlock + f)] = src[c];
    }
    for (int64_t j = 0; j < k.n; ++j) {
      std::fill(acc, acc + kBlock, 0.0f);
      const float* w = k.weights.data() + j * k.taps;
      const int64_t first = k.first[static_cast<size_t>(j)];
      for (int64_t i = 0; i < k.count[static_cast<size_t>(j)]; ++i) {
        const float* x = block.data() + (first + i) * kBlock;
        const float wi = w[i];
        for (int64_t f = 0; f < kBlock; ++f) acc[f] = std::fma(x[f], wi, acc[f]);
      }
      for (int64_t f = 0; f < nf; ++f) {
        const int64_t m = j + k.n * (f0 + f);
        if (m < total) out[m] = acc[f];
      }
    }
  }
}

}  // namespace

std::vector<float> resample(const std::vector<float>& x, int from_rate, int to_rate) {
  if (from_rate <= 0 || to_rate <= 0)
    throw FormatError("resample: invalid sample rates " + std::to_string(from_rate) + " -> " + std::to_string(to_rate));
  if (from_rate == to_rate || x.empty()) return x;
  const int64_t g = std::gcd(static_cast<int64_t>(from_rate), static_cast<int64_t>(to_rate));
  const int64_t o = from_rate / g, n = to_rate / g;
  const PolyphaseKernel k = make_kernel(o, n);
  const auto length = static_cast<int64_t>(x.size());
  // conv1d over x zero-padded by width (left) and width + o (right), stride o.
  const int64_t frames = length / o + 1;
  const int64_t total = (n * length + o - 1) / o;  // ceil(n * N / o)
  std::vector<float> padded(static_cast<size_t>(k.width + length + k.width + o + k.taps), 0.0f);
  std::copy(x.begin(), x.end(), padded.begin() + k.width);
  std::vector<float> out(static_cast<size_t>(total));
  apply(k, padded.data(), frames, total, out.data());
  return out;
}

}  // namespace asdcap
