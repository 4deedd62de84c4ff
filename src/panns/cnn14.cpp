#include "cnn14.hpp"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "asdcap/error.hpp"
#include "core/parallel.hpp"

namespace asdcap::panns {
namespace {

// OpenBLAS runs on the calling thread: the threads are ours (parallel_chunks), and a GEMM issued
// from inside a parallel region must not start threads of its own.
void blas_on_calling_thread() {
  static const bool done = [] {
    openblas_set_num_threads(1);
    return true;
  }();
  (void)done;
}

// Rows of output positions per GEMM: the im2col block (rows x 9 cin floats) stays within ~1 MB
// (L2), and a GEMM has at least 48 rows. Depends on the shape only, so that results do not depend
// on the thread count.
int64_t rows_per_task(int64_t k) { return std::clamp<int64_t>((int64_t{1} << 18) / k / 16 * 16, 48, 512); }

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

Conv3x3::Conv3x3(const float* w, int64_t cout, int64_t cin, const BatchNorm& bn) : cin_(cin), cout_(cout) {
  w_.resize(static_cast<size_t>(9 * cin * cout));
  bias_.resize(static_cast<size_t>(cout));
  for (int64_t co = 0; co < cout; ++co) {
    const float s = bn.scale[co];
    bias_[co] = bn.shift[co] - bn.mean[co] * s;
    for (int64_t ci = 0; ci < cin; ++ci)
      for (int64_t k = 0; k < 9; ++k) w_[static_cast<size_t>((k * cin + ci) * cout + co)] = w[(co * cin + ci) * 9 + k] * s;
  }
}

void Conv3x3::forward(const float* in, int64_t t, int64_t f, float* out, int threads) const {
  blas_on_calling_thread();
  const int64_t positions = t * f, k = 9 * cin_;
  const int64_t rows = rows_per_task(k);
  const int64_t row_tasks = (positions + rows - 1) / rows;
  // Few positions (the deep blocks): split the output channels too, so that every thread has work.
  const int64_t cols = row_tasks >= 8 ? cout_ : std::min<int64_t>(cout_, std::max<int64_t>(64, cout_ / 8));
  const int64_t col_tasks = (cout_ + cols - 1) / cols;
  parallel_chunks(threads, row_tasks * col_tasks, 1, [&](int64_t task0, int64_t task1) {
    std::vector<float> col(static_cast<size_t>(rows * k));
    for (int64_t task = task0; task < task1; ++task) {
      const int64_t p0 = task / col_tasks * rows, p1 = std::min(positions, p0 + rows);
      const int64_t c0 = task % col_tasks * cols, nc = std::min(cols, cout_ - c0);
      // im2col: row p = (tt, ff) holds in[tt + dt - 1][ff + df - 1][:] for dt, df in 0..2 (zeros outside).
      for (int64_t p = p0; p < p1; ++p) {
        const int64_t tt = p / f, ff = p % f;
        float* row = col.data() + (p - p0) * k;
        for (int64_t dt = 0; dt < 3; ++dt)
          for (int64_t df = 0; df < 3; ++df) {
            float* dst = row + (dt * 3 + df) * cin_;
            const int64_t st = tt + dt - 1, sf = ff + df - 1;
            if (st < 0 || st >= t || sf < 0 || sf >= f)
              std::memset(dst, 0, static_cast<size_t>(cin_) * sizeof(float));
            else
              std::memcpy(dst, in + (st * f + sf) * cin_, static_cast<size_t>(cin_) * sizeof(float));
          }
      }
      float* y = out + p0 * cout_ + c0;
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(p1 - p0), static_cast<int>(nc),
                  static_cast<int>(k), 1.0f, col.data(), static_cast<int>(k), w_.data() + c0, static_cast<int>(cout_),
                  0.0f, y, static_cast<int>(cout_));
      const float* b = bias_.data() + c0;
      for (int64_t p = p0; p < p1; ++p) {
        float* r = y + (p - p0) * cout_;
        for (int64_t j = 0; j < nc; ++j) r[j] = std::max(r[j] + b[j], 0.0f);
      }
    }
  });
}

Network::Network(const PannsConfig& cfg, const Tensors& t) : cfg_(cfg) {
  const int64_t bins = cfg.freq_bins(), n_fft = cfg.n_fft;
  dft_.resize(static_cast<size_t>(2 * bins * n_fft));
  std::memcpy(dft_.data(), t.stft_real, static_cast<size_t>(bins * n_fft) * sizeof(float));
  std::memcpy(dft_.data() + bins * n_fft, t.stft_imag, static_cast<size_t>(bins * n_fft) * sizeof(float));
  melw_.assign(t.melw, t.melw + bins * cfg.mel_bins);
  bn0_ = make_batchnorm(t.bn0[0], t.bn0[1], t.bn0[2], t.bn0[3], cfg.mel_bins, cfg.bn_eps);
  int64_t in = 1;
  for (int i = 0; i < 6; ++i) {
    const int64_t w = cfg.widths[i];
    for (int j = 0; j < 2; ++j) {
      const float* const* b = t.bn[i][j];
      conv_[i][j] = Conv3x3(t.conv[i][j], w, j == 0 ? in : w, make_batchnorm(b[0], b[1], b[2], b[3], w, cfg.bn_eps));
    }
    in = w;
  }
  fc1_w_.assign(t.fc1_w, t.fc1_w + cfg.embedding_dim * in);
  fc1_b_.assign(t.fc1_b, t.fc1_b + cfg.embedding_dim);
  fc_w_.assign(t.fc_w, t.fc_w + int64_t{cfg.classes} * cfg.embedding_dim);
  fc_b_.assign(t.fc_b, t.fc_b + cfg.classes);
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
  blas_on_calling_thread();
  const int64_t n_fft = cfg_.n_fft, half = n_fft / 2, hop = cfg_.hop, bins = cfg_.freq_bins(), mel = cfg_.mel_bins;
  if (trace) {
    trace->spectrogram.resize(static_cast<size_t>(frames * bins));
    trace->logmel.resize(static_cast<size_t>(frames * mel));
  }
  constexpr int64_t kFrames = 64;  // frames per GEMM
  parallel_chunks(threads, frames, kFrames, [&](int64_t t0, int64_t t1) {
    const int64_t rows = t1 - t0;
    std::vector<float> buf(static_cast<size_t>(rows * n_fft)), spec(static_cast<size_t>(rows * 2 * bins));
    for (int64_t r = 0; r < rows; ++r) {
      float* dst = buf.data() + r * n_fft;
      const int64_t start = (t0 + r) * hop - half;  // in the unpadded signal
      for (int64_t i = 0; i < n_fft; ++i) {
        int64_t s = start + i;
        if (s < 0) s = -s;                          // reflect: x[-i] = x[i]
        if (s >= n) s = 2 * (n - 1) - s;            //          x[n-1+i] = x[n-1-i]
        dst[i] = x[s];
      }
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(rows), static_cast<int>(2 * bins),
                static_cast<int>(n_fft), 1.0f, buf.data(), static_cast<int>(n_fft), dft_.data(), static_cast<int>(n_fft),
                0.0f, spec.data(), static_cast<int>(2 * bins));
    std::vector<float> power(static_cast<size_t>(rows * bins));
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t k = 0; k < bins; ++k) {
        const float re = spec[r * 2 * bins + k], im = spec[r * 2 * bins + bins + k];
        power[r * bins + k] = re * re + im * im;
      }
    float* y = out + t0 * mel;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(rows), static_cast<int>(mel),
                static_cast<int>(bins), 1.0f, power.data(), static_cast<int>(bins), melw_.data(), static_cast<int>(mel),
                0.0f, y, static_cast<int>(mel));
    for (int64_t i = 0; i < rows * mel; ++i) y[i] = 10.0f * std::log10(std::max(y[i], 1e-10f));
    if (trace) {
      std::copy(power.begin(), power.end(), trace->spectrogram.begin() + t0 * bins);
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
    throw UsageError("PANNs " + cfg_.variant + " needs at least " + std::to_string(cfg_.min_samples()) + " samples (" +
                     std::to_string(cfg_.min_samples() / static_cast<double>(cfg_.sample_rate)) + " s at " +
                     std::to_string(cfg_.sample_rate) + " Hz); the clip has " + std::to_string(n));
  int64_t t = n / cfg_.hop + 1, f = cfg_.mel_bins, c = 1;
  int64_t most = t * f;
  for (int i = 0, tt = static_cast<int>(t), ff = static_cast<int>(f); i < 6; ++i) {
    most = std::max<int64_t>(most, int64_t{tt} * ff * cfg_.widths[i]);
    if (i < 5) tt /= 2, ff /= 2;
  }
  std::vector<float> a(static_cast<size_t>(most)), b(static_cast<size_t>(most));
  front_end(x, n, t, a.data(), threads, trace);
  for (int i = 0; i < 6; ++i) {
    conv_[i][0].forward(a.data(), t, f, b.data(), threads);
    c = conv_[i][1].cout();
    conv_[i][1].forward(b.data(), t, f, a.data(), threads);
    if (i < 5) {
      avg_pool_2x2(a.data(), t, f, c, b.data());
      t /= 2, f /= 2;
      std::swap(a, b);
    }
    if (trace) trace->blocks.push_back({t, f, c, std::vector<float>(a.begin(), a.begin() + t * f * c)});
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
  std::vector<float> fc1(fc1_b_);
  cblas_sgemv(CblasRowMajor, CblasNoTrans, static_cast<int>(h), static_cast<int>(c), 1.0f, fc1_w_.data(),
              static_cast<int>(c), pooled.data(), 1, 1.0f, fc1.data(), 1);
  o.embedding.resize(static_cast<size_t>(h));
  for (int64_t i = 0; i < h; ++i) o.embedding[i] = std::max(fc1[i], 0.0f);
  std::vector<float> logits(fc_b_);
  cblas_sgemv(CblasRowMajor, CblasNoTrans, cfg_.classes, static_cast<int>(h), 1.0f, fc_w_.data(), static_cast<int>(h),
              o.embedding.data(), 1, 1.0f, logits.data(), 1);
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
