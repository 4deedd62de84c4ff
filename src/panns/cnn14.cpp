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

BatchNorm make_batchnorm(const float* weight, const float* bias, const float* mean, const float* var, int64_t n,
                         float eps) {
  BatchNorm b;
  b.mean.assign(mean, mean + n);
  b.scale.resize(static_cast<size_t>(n));
  b.shift.assign(bias, bias + n);
  for (int64_t i = 0; i < n; ++i) {
    if (!(var[i] >= 0)) throw ModelError("BatchNorm running_var is negative or NaN");
    b.scale[i] = static_cast<float>(weight[i] / std::sqrt(static_cast<double>(var[i]) + eps));
  }
  return b;
}

Conv3x3::Conv3x3(nn::WeightView w, int64_t cout, int64_t cin, const BatchNorm& bn) : cin_(cin), cout_(cout) {
  chunks_ = std::min<int64_t>(9, (9 * cin + kChunk - 1) / kChunk);
  taps_per_chunk_ = (9 + chunks_ - 1) / chunks_;
  chunks_ = (9 + taps_per_chunk_ - 1) / taps_per_chunk_;
  // One buffer for every group and chunk: fresh pages cost more than the copying itself.
  std::vector<float> wg(static_cast<size_t>(std::min(kGroup, cout) * taps_per_chunk_ * cin)), bias;
  // The panels of every group and chunk in one allocation, each 64-byte aligned: a large block is
  // rounded up to whole huge pages once for the convolution, not once per group.
  const auto span = [](int64_t nc, int64_t kc) {
    return (nn::PackedLinear::panel_bytes(nc, kc, nn::WeightType::kF32) + 63) / 64 * 64;
  };
  size_t total = 0;
  for (int64_t c0 = 0; c0 < cout; c0 += kGroup)
    for (int64_t chunk = 0; chunk < chunks_; ++chunk)
      total += span(std::min(kGroup, cout - c0), std::min(taps_per_chunk_, 9 - chunk * taps_per_chunk_) * cin);
  size_t offset = 0;
  const std::shared_ptr<unsigned char> arena(static_cast<unsigned char*>(nn::allocate_lines(total)),
                                             [total](unsigned char* p) { nn::free_lines(p, total); });
  // The group's weights as float32, each output channel's row widened once for all its chunks.
  std::vector<float> rows(static_cast<size_t>(std::min(kGroup, cout) * 9 * cin));
  for (int64_t c0 = 0; c0 < cout; c0 += kGroup) {
    const int64_t nc = std::min(kGroup, cout - c0);
    bias.assign(static_cast<size_t>(nc), 0.f);
    nn::widen(w, c0 * cin * 9, nc * cin * 9, rows.data());
    for (int64_t j = 0; j < nc; ++j) {
      const int64_t co = c0 + j;
      bias[j] = bn.shift[co] - bn.mean[co] * bn.scale[co];
    }
    for (int64_t chunk = 0; chunk < chunks_; ++chunk) {
      const int64_t tap0 = chunk * taps_per_chunk_, taps = std::min(taps_per_chunk_, 9 - tap0), kc = taps * cin;
      for (int64_t j = 0; j < nc; ++j) {
        const float s = bn.scale[c0 + j];
        const float* row = rows.data() + j * 9 * cin;
        for (int64_t k = 0; k < taps; ++k)
          for (int64_t ci = 0; ci < cin; ++ci)
            wg[static_cast<size_t>(j * kc + k * cin + ci)] = row[ci * 9 + tap0 + k] * s;  // [nc][kc]
      }
      unsigned char* panels = arena.get() + offset;
      offset += span(nc, kc);
      nn::PackedLinear::pack({wg.data(), nn::WeightType::kF32}, nc, kc, nn::PackedLinear::Layout::kOutIn, panels);
      groups_.push_back(nn::PackedLinear::over_panels({panels, nn::WeightType::kF32}, nc, kc,
                                                      chunk == 0 ? bias.data() : nullptr, arena));
    }
  }
}

void Conv3x3::forward(const float* in, int64_t t, int64_t f, float* out, int threads) const {
  const int64_t positions = t * f, k = taps_per_chunk_ * cin_;
  const int64_t rows = rows_per_task(k);
  const int64_t row_tasks = (positions + rows - 1) / rows, groups = static_cast<int64_t>(groups_.size()) / chunks_;
  // A task: a block of output positions times a group of output channels (the deep blocks have few
  // positions and many channels; the groups then give every thread work).
  parallel_chunks(threads, row_tasks * groups, 1, [&](int64_t task0, int64_t task1) {
    float* col = scratch(kIm2col, rows * k);
    float* y = scratch(kGemmOut, rows * kGroup);
    for (int64_t task = task0; task < task1; ++task) {
      const int64_t p0 = task / groups * rows, p1 = std::min(positions, p0 + rows), g = task % groups;
      const int64_t c0 = g * kGroup, nc = groups_[static_cast<size_t>(g * chunks_)].out_features();
      for (int64_t chunk = 0; chunk < chunks_; ++chunk) {
        const nn::PackedLinear& pl = groups_[static_cast<size_t>(g * chunks_ + chunk)];
        const int64_t tap0 = chunk * taps_per_chunk_, kc = pl.in_features(), taps = kc / cin_;
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

Network::Network(const PannsConfig& cfg, const Tensors& t, int threads) : cfg_(cfg) {
  const int64_t bins = cfg.freq_bins(), n_fft = cfg.n_fft;
  // The 12 convolutions (largest first) and the front end / head, packed on the threads.
  parallel_for(threads, 13, [&](int64_t job) {
    if (job == 12) {
      std::vector<float> dft(static_cast<size_t>(2 * bins * n_fft));
      std::memcpy(dft.data(), t.stft_real, static_cast<size_t>(bins * n_fft) * sizeof(float));
      std::memcpy(dft.data() + bins * n_fft, t.stft_imag, static_cast<size_t>(bins * n_fft) * sizeof(float));
      dft_ = nn::PackedLinear(dft.data(), 2 * bins, n_fft, nullptr);
      melw_ = nn::PackedLinear(t.melw, cfg.mel_bins, bins, nullptr, nn::PackedLinear::Layout::kInOut);
      bn0_ = make_batchnorm(t.bn0[0], t.bn0[1], t.bn0[2], t.bn0[3], cfg.mel_bins, cfg.bn_eps);
      fc1_ = nn::PackedLinear(t.fc1_w, cfg.embedding_dim, cfg.widths[5], t.fc1_b);
      fc_ = nn::PackedLinear(t.fc_w, cfg.classes, cfg.embedding_dim, t.fc_b);
      return;
    }
    const int i = 5 - static_cast<int>(job / 2), j = 1 - static_cast<int>(job % 2);
    const int64_t w = cfg.widths[i], in = j == 1 ? w : i == 0 ? 1 : cfg.widths[i - 1];
    const float* const* b = t.bn[i][j];
    conv_[i][j] = Conv3x3(t.conv[i][j], w, in, make_batchnorm(b[0], b[1], b[2], b[3], w, cfg.bn_eps));
  });
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
    float* spec = scratch(kSpectrum, rows * 2 * bins);
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
    dft_.forward_serial(buf, rows, spec);
    float* power = scratch(kPower, rows * bins);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t k = 0; k < bins; ++k) {
        const float re = spec[r * 2 * bins + k], im = spec[r * 2 * bins + bins + k];
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
