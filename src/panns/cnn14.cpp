#include "cnn14.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <new>

#include "asdcap/error.hpp"
#include "core/parallel.hpp"

namespace asdcap::panns {
namespace {

// Rows of output positions per task, for im2col chunks of k values: the block (rows x k floats)
// stays within ~1 MB (L2), and a task has at least 48 rows.
int64_t rows_per_task(int64_t k) { return std::clamp<int64_t>((int64_t{1} << 18) / k / 16 * 16, 48, 512); }

// Per-thread working memory, kept from call to call and grown as needed: memory fresh from the
// system costs a page fault and the kernel's zeroing per page, more than the work that fills it
// (one 10-s clip needs ~2 x 16 MB of feature maps and ~1 MB of im2col rows per task).
enum Slot { kIm2col, kGemmOut, kFrames, kSpectrum, kPower, kMapA, kMapB, kSlots };
float* scratch(Slot slot, int64_t n) {
  thread_local std::vector<float> buffers[kSlots];
  std::vector<float>& v = buffers[slot];
  if (v.size() < static_cast<size_t>(n)) v.resize(static_cast<size_t>(n));
  return v.data();
}

}  // namespace

Conv3x3::Conv3x3(const std::vector<nn::WeightView>& panels, const float* bias, int64_t cout, int64_t cin,
                 const std::shared_ptr<const void>& keep)
    : cin_(cin), cout_(cout), split_(modelio::panns_conv_split(cin)) {
  using Split = modelio::PannsConvSplit;
  if (static_cast<int64_t>(panels.size()) != Split::groups(cout) * split_.chunks)
    throw ModelError("a convolution of " + std::to_string(cin) + " -> " + std::to_string(cout) + " channels has " +
                     std::to_string(panels.size()) + " packed matrices");
  for (int64_t g = 0; g < Split::groups(cout); ++g)
    for (int64_t chunk = 0; chunk < split_.chunks; ++chunk)
      groups_.push_back(nn::PackedLinear::over_panels(panels[static_cast<size_t>(g * split_.chunks + chunk)],
                                                      Split::group_size(cout, g), split_.taps(chunk) * cin,
                                                      chunk == 0 ? bias + g * Split::kGroup : nullptr, keep));
}

void Conv3x3::forward(const float* in, int64_t t, int64_t f, float* out, int threads) const {
  using Split = modelio::PannsConvSplit;
  const int64_t positions = t * f, k = split_.taps_per_chunk * cin_, chunks = split_.chunks;
  const int64_t rows = rows_per_task(k);
  const int64_t row_tasks = (positions + rows - 1) / rows, groups = Split::groups(cout_);
  // A task: a block of output positions times a group of output channels (the deep blocks have few
  // positions and many channels; the groups then give every thread work).
  parallel_chunks(threads, row_tasks * groups, 1, [&](int64_t task0, int64_t task1) {
    float* col = scratch(kIm2col, rows * k);
    float* y = scratch(kGemmOut, rows * Split::kGroup);
    for (int64_t task = task0; task < task1; ++task) {
      const int64_t p0 = task / groups * rows, p1 = std::min(positions, p0 + rows), g = task % groups;
      const int64_t c0 = g * Split::kGroup, nc = Split::group_size(cout_, g);
      for (int64_t chunk = 0; chunk < chunks; ++chunk) {
        const nn::PackedLinear& pl = groups_[static_cast<size_t>(g * chunks + chunk)];
        const int64_t tap0 = split_.first_tap(chunk), kc = pl.in_features(), taps = kc / cin_;
        // im2col: row p = (tt, ff) holds in[tt + dt - 1][ff + df - 1][:] for the chunk's taps
        // dt * 3 + df (zeros outside the map).
        for (int64_t p = p0; p < p1; ++p) {
          const int64_t tt = p / f, ff = p % f;
          float* row = col + (p - p0) * kc;
          for (int64_t tap = tap0; tap < tap0 + taps; ++tap) {
            float* dst = row + (tap - tap0) * cin_;
            const int64_t st = tt + tap / 3 - 1, sf = ff + tap % 3 - 1;
            if (st < 0 || st >= t || sf < 0 || sf >= f)
              std::memset(dst, 0, static_cast<size_t>(cin_) * sizeof(float));
            else
              std::memcpy(dst, in + (st * f + sf) * cin_, static_cast<size_t>(cin_) * sizeof(float));
          }
        }
        pl.forward_serial(col, p1 - p0, y,  // chunk 0 adds the bias
                          chunk == 0 ? nn::PackedLinear::Epilogue::kNone : nn::PackedLinear::Epilogue::kAccumulate);
      }
      for (int64_t p = p0; p < p1; ++p) {
        const float* src = y + (p - p0) * nc;
        float* dst = out + p * cout_ + c0;
        for (int64_t j = 0; j < nc; ++j) dst[j] = std::max(src[j], 0.0f);
      }
    }
  });
}

Network::Network(const PannsConfig& cfg, const Tensors& t) : cfg_(cfg) {
  const int64_t bins = cfg.freq_bins();
  dft_real_ = nn::PackedLinear::over_panels(t.stft_real, bins, cfg.n_fft, nullptr, t.keep);
  dft_imag_ = nn::PackedLinear::over_panels(t.stft_imag, bins, cfg.n_fft, nullptr, t.keep);
  melw_ = nn::PackedLinear::over_panels(t.melw, cfg.mel_bins, bins, nullptr, t.keep);
  bn0_ = modelio::make_batchnorm(t.bn0[0], t.bn0[1], t.bn0[2], t.bn0[3], cfg.mel_bins, cfg.bn_eps);
  for (int i = 0; i < 6; ++i)
    for (int j = 0; j < 2; ++j) {
      const int64_t w = cfg.widths[i], in = j == 1 ? w : i == 0 ? 1 : cfg.widths[i - 1];
      conv_[i][j] = Conv3x3(t.conv[i][j], t.conv_bias[i][j], w, in, t.keep);
    }
  fc1_ = nn::PackedLinear::over_panels(t.fc1_w, cfg.embedding_dim, cfg.widths[5], t.fc1_b, t.keep);
  fc_ = nn::PackedLinear::over_panels(t.fc_w, cfg.classes, cfg.embedding_dim, t.fc_b, t.keep);
}

double Network::flops(int64_t n) const {
  const int64_t bins = cfg_.freq_bins();
  int64_t t = n / cfg_.hop + 1, f = cfg_.mel_bins;
  double total = 2.0 * t * cfg_.n_fft * 2 * bins + 2.0 * t * bins * cfg_.mel_bins;
  for (int i = 0; i < 6; ++i) {
    total += conv_[i][0].flops(t, f) + conv_[i][1].flops(t, f);
    if (i < 5) t /= 2, f /= 2;
  }
  return total + 2.0 * cfg_.embedding_dim * cfg_.widths[5] + 2.0 * cfg_.classes * cfg_.embedding_dim;
}

// torchlibrosa's Spectrogram + LogmelFilterBank, then bn0: reflect-padded centred frames, the DFT
// as a GEMM with the stored kernels, power, mel GEMM, 10 log10(max(x, 1e-10)), BatchNorm per mel bin.
void Network::front_end(const float* x, int64_t n, int64_t frames, float* out, int threads, Trace* trace) const {
  const int64_t n_fft = cfg_.n_fft, half = n_fft / 2, hop = cfg_.hop, bins = cfg_.freq_bins(), mel = cfg_.mel_bins;
  if (trace) {
    trace->spectrogram.resize(static_cast<size_t>(frames * bins));
    trace->logmel.resize(static_cast<size_t>(frames * mel));
  }
  constexpr int64_t kFramesPerTask = 64;
  parallel_chunks(threads, frames, kFramesPerTask, [&](int64_t t0, int64_t t1) {
    const int64_t rows = t1 - t0;
    float* buf = scratch(kFrames, rows * n_fft);
    float* spec = scratch(kSpectrum, rows * 2 * bins);  // [rows][bins] real parts, then imaginary
    for (int64_t r = 0; r < rows; ++r) {
      float* dst = buf + r * n_fft;
      const int64_t start = (t0 + r) * hop - half;  // in the unpadded signal
      for (int64_t i = 0; i < n_fft; ++i) {
        int64_t s = start + i;
        if (s < 0) s = -s;                // reflect: x[-i] = x[i]
        if (s >= n) s = 2 * (n - 1) - s;  //          x[n-1+i] = x[n-1-i]
        dst[i] = x[s];
      }
    }
    dft_real_.forward_serial(buf, rows, spec);
    dft_imag_.forward_serial(buf, rows, spec + rows * bins);
    float* power = scratch(kPower, rows * bins);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t k = 0; k < bins; ++k) {
        const float re = spec[r * bins + k], im = spec[(rows + r) * bins + k];
        power[r * bins + k] = re * re + im * im;
      }
    float* y = out + t0 * mel;
    melw_.forward_serial(power, rows, y);
    for (int64_t i = 0; i < rows * mel; ++i) y[i] = 10.0f * std::log10(std::max(y[i], 1e-10f));
    if (trace) {
      std::copy(power, power + rows * bins, trace->spectrogram.begin() + t0 * bins);
      std::copy(y, y + rows * mel, trace->logmel.begin() + t0 * mel);
    }
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t m = 0; m < mel; ++m) {
        float& v = y[r * mel + m];
        v = (v - bn0_.mean[m]) * bn0_.scale[m] + bn0_.shift[m];
      }
  });
  if (trace) trace->bn0.assign(out, out + frames * mel);
}

namespace {

// avg_pool2d(kernel 2, stride 2, floor) over [t][f][c].
void avg_pool_2x2(const float* in, int64_t t, int64_t f, int64_t c, float* out) {
  const int64_t t2 = t / 2, f2 = f / 2;
  for (int64_t i = 0; i < t2; ++i)
    for (int64_t j = 0; j < f2; ++j) {
      const float* a = in + ((2 * i) * f + 2 * j) * c;
      const float* b = a + c;
      const float* d = a + f * c;
      const float* e = d + c;
      float* o = out + (i * f2 + j) * c;
      for (int64_t k = 0; k < c; ++k) o[k] = (((a[k] + b[k]) + d[k]) + e[k]) / 4.0f;
    }
}

}  // namespace

PannsModel::Output Network::forward(const float* x, int64_t n, int threads, Trace* trace) const {
  if (n < cfg_.min_samples())
    throw InvalidArgument("PANNs " + cfg_.variant + " needs at least " + std::to_string(cfg_.min_samples()) +
                          " samples (" + std::to_string(cfg_.min_samples() / static_cast<double>(cfg_.sample_rate)) +
                          " s at " + std::to_string(cfg_.sample_rate) + " Hz); the clip has " + std::to_string(n));
  int64_t t = n / cfg_.hop + 1, f = cfg_.mel_bins, c = 1;
  int64_t most = t * f;
  for (int i = 0, tt = static_cast<int>(t), ff = static_cast<int>(f); i < 6; ++i) {
    most = std::max<int64_t>(most, int64_t{tt} * ff * cfg_.widths[i]);
    if (i < 5) tt /= 2, ff /= 2;
  }
  // Feature maps up to ~20 s of audio stay with the thread for the next clip; longer clips get
  // their own (a thread does not keep gigabytes after one long clip).
  constexpr int64_t kKeptMapFloats = int64_t{1} << 23;
  std::vector<float> own;
  float *a, *b;
  if (most <= kKeptMapFloats) {
    a = scratch(kMapA, most);
    b = scratch(kMapB, most);
  } else {
    try {
      own.resize(static_cast<size_t>(2 * most));
    } catch (const std::bad_alloc&) {
      throw Error("PANNs: a clip of " + std::to_string(n) + " samples needs " + std::to_string(2 * most * 4 >> 20) +
                  " MB of feature maps, more than this machine can allocate");
    }
    a = own.data();
    b = a + most;
  }
  front_end(x, n, t, a, threads, trace);
  for (int i = 0; i < 6; ++i) {
    conv_[i][0].forward(a, t, f, b, threads);
    c = conv_[i][1].cout();
    conv_[i][1].forward(b, t, f, a, threads);
    if (i < 5) {
      avg_pool_2x2(a, t, f, c, b);
      t /= 2, f /= 2;
      std::swap(a, b);
    }
    if (trace) trace->blocks.push_back({t, f, c, std::vector<float>(a, a + t * f * c)});
  }
  // Head: mean over mel, then max + mean over time; fc1 + ReLU; fc_audioset + sigmoid.
  std::vector<float> fm(static_cast<size_t>(t * c), 0.f), pooled(static_cast<size_t>(c));
  for (int64_t i = 0; i < t; ++i)
    for (int64_t k = 0; k < c; ++k) {
      float s = 0;
      for (int64_t j = 0; j < f; ++j) s += a[(i * f + j) * c + k];
      fm[i * c + k] = s / static_cast<float>(f);
    }
  for (int64_t k = 0; k < c; ++k) {
    float mx = fm[k], s = 0;
    for (int64_t i = 0; i < t; ++i) mx = std::max(mx, fm[i * c + k]), s += fm[i * c + k];
    pooled[k] = mx + s / static_cast<float>(t);
  }
  PannsModel::Output o;
  const int64_t h = cfg_.embedding_dim;
  std::vector<float> fc1(static_cast<size_t>(h));
  fc1_.forward_serial(pooled.data(), 1, fc1.data());
  o.embedding.resize(static_cast<size_t>(h));
  for (int64_t i = 0; i < h; ++i) o.embedding[i] = std::max(fc1[i], 0.0f);
  std::vector<float> logits(static_cast<size_t>(cfg_.classes));
  fc_.forward_serial(o.embedding.data(), 1, logits.data());
  o.clipwise.resize(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) o.clipwise[i] = 1.0f / (1.0f + std::exp(-logits[i]));
  if (trace) {
    trace->freq_mean = fm;
    trace->pooled = pooled;
    trace->fc1_linear = fc1;
    trace->embedding = o.embedding;
    trace->logits = logits;
    trace->clipwise = o.clipwise;
  }
  return o;
}

}  // namespace asdcap::panns
