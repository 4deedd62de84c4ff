// Swin window attention with the cyclic shift and window partition done by index arithmetic.
#include <algorithm>
#include <cmath>
#include <vector>

#include "asdcap/error.hpp"
#include "asdcap/nn.hpp"
#include "fastmath.hpp"

namespace asdcap::nn {

std::vector<float> relative_position_bias(const float* table, int64_t window, int64_t heads) {
  const int64_t t = window * window, span = 2 * window - 1;
  std::vector<float> bias(static_cast<size_t>(heads * t * t));
  for (int64_t i = 0; i < t; ++i) {
    for (int64_t j = 0; j < t; ++j) {
      const int64_t dr = i / window - j / window + window - 1;
      const int64_t dc = i % window - j % window + window - 1;
      const float* entry = table + (dr * span + dc) * heads;
      for (int64_t h = 0; h < heads; ++h) bias[static_cast<size_t>((h * t + i) * t + j)] = entry[h];
    }
  }
  return bias;
}

std::vector<float> shifted_window_mask(int64_t height, int64_t width, int64_t window, int64_t shift) {
  // Regions of the rolled map: [0, L - window), [L - window, L - shift), [L - shift, L) per axis.
  auto region = [window, shift](int64_t pos, int64_t len) {
    return pos < len - window ? 0 : (pos < len - shift ? 1 : 2);
  };
  const int64_t t = window * window, wins_w = width / window;
  const int64_t n_windows = (height / window) * wins_w;
  std::vector<float> mask(static_cast<size_t>(n_windows * t * t));
  std::vector<int> id(static_cast<size_t>(t));
  for (int64_t w = 0; w < n_windows; ++w) {
    const int64_t r0 = (w / wins_w) * window, c0 = (w % wins_w) * window;
    for (int64_t i = 0; i < t; ++i)
      id[static_cast<size_t>(i)] =
          static_cast<int>(region(r0 + i / window, height) * 3 + region(c0 + i % window, width));
    float* m = mask.data() + w * t * t;
    for (int64_t i = 0; i < t; ++i)
      for (int64_t j = 0; j < t; ++j) m[i * t + j] = id[static_cast<size_t>(i)] == id[static_cast<size_t>(j)] ? 0.f : -100.f;
  }
  return mask;
}

namespace {

struct WindowJob {
  const float* qkv;
  const int64_t* rows;  // T token rows of this window (original order)
  const float* bias;    // [heads][T][T]
  const float* mask;    // [T][T] or null
  float* out;
  int64_t channels, heads, head_dim;
  float scale;
};

// Scores more than this far below their row's maximum get probability 0 instead of exp(-64) ~ 1e-28
// or less: far below float resolution against the maximum's 1, and they would otherwise become
// subnormal probabilities (every masked score does: -100) and products, each a microcode assist
// costing ~100 cycles on Intel CPUs.
constexpr float kNegligible = 64.f;

// One row of scores -> probabilities: s = (s + bias) + mask; softmax (max-subtracted).
inline void softmax_scores(float* s, const float* b, const float* m, int64_t t) {
  if (m) {
#pragma omp simd
    for (int64_t j = 0; j < t; ++j) s[j] = (s[j] + b[j]) + m[j];
  } else {
#pragma omp simd
    for (int64_t j = 0; j < t; ++j) s[j] = s[j] + b[j];
  }
  float mx = s[0];
  for (int64_t j = 1; j < t; ++j) mx = s[j] > mx ? s[j] : mx;
  float sum = 0;
#pragma omp simd reduction(+ : sum)
  for (int64_t j = 0; j < t; ++j) {
    const float d = s[j] - mx;
    s[j] = d < -kNegligible ? 0.f : fast::exp(d);
    sum += s[j];
  }
  const float inv = 1.0f / sum;
#pragma omp simd
  for (int64_t j = 0; j < t; ++j) s[j] *= inv;
}

// Gathers head h of the window's q (scaled), k (transposed to [hd][T]) and v from qkv.
inline void gather_head(const WindowJob& job, int64_t h, int64_t t, int64_t hd, float* q, float* kt, float* v) {
  const int64_t c = job.channels, ld = 3 * c;
  for (int64_t i = 0; i < t; ++i) {
    const float* src = job.qkv + job.rows[i] * ld + h * hd;
    for (int64_t d = 0; d < hd; ++d) {
      q[i * hd + d] = src[d] * job.scale;
      kt[d * t + i] = src[c + d];
      v[i * hd + d] = src[2 * c + d];
    }
  }
}

// Any window / head size: plain loops.
void attend_window_generic(const WindowJob& job, int64_t t, std::vector<float>& scratch) {
  const int64_t hd = job.head_dim, c = job.channels;
  scratch.resize(static_cast<size_t>(3 * t * hd + t + hd));
  float* q = scratch.data();
  float* kt = q + t * hd;
  float* v = kt + t * hd;
  float* s = v + t * hd;
  float* o = s + t;
  for (int64_t h = 0; h < job.heads; ++h) {
    gather_head(job, h, t, hd, q, kt, v);
    for (int64_t i = 0; i < t; ++i) {
      for (int64_t j = 0; j < t; ++j) s[j] = 0.f;
      for (int64_t d = 0; d < hd; ++d)
        for (int64_t j = 0; j < t; ++j) s[j] += q[i * hd + d] * kt[d * t + j];
      softmax_scores(s, job.bias + (h * t + i) * t, job.mask ? job.mask + i * t : nullptr, t);
      for (int64_t d = 0; d < hd; ++d) o[d] = 0.f;
      for (int64_t j = 0; j < t; ++j)
        for (int64_t d = 0; d < hd; ++d) o[d] += s[j] * v[j * hd + d];
      std::copy(o, o + hd, job.out + job.rows[i] * c + h * hd);
    }
  }
}

// 8 x 8 windows (T = 64) and head sizes that are multiples of 8, with register blocking
// (GCC vector extensions; AVX2 with -march=native, SSE otherwise).
using fast::load8;
using fast::store8;
using fast::v8f;

// One row of 64 scores -> probabilities, 8-wide (same arithmetic as softmax_scores).
inline void softmax_scores_64(float* s, const float* b, const float* m) {
  v8f x[8];
  for (int k = 0; k < 8; ++k) {
    x[k] = load8(s + 8 * k) + load8(b + 8 * k);
    if (m) x[k] = x[k] + load8(m + 8 * k);
  }
  // Row maximum: element-wise over the 8 vectors, then across lanes (a scalar chain of 64 dependent
  // compares cost more than the rest of the row).
  v8f vmx = x[0];
  for (int k = 1; k < 8; ++k) vmx = x[k] > vmx ? x[k] : vmx;
  float mx = vmx[0];
  for (int e = 1; e < 8; ++e) mx = vmx[e] > mx ? vmx[e] : mx;
  v8f sum{};
  for (int k = 0; k < 8; ++k) {
    const v8f d = x[k] - mx;
    x[k] = d < -kNegligible ? v8f{} : fast::exp8(d);
    sum += x[k];
  }
  float total = 0;
  for (int e = 0; e < 8; ++e) total += sum[e];
  const float inv = 1.0f / total;
  for (int k = 0; k < 8; ++k) store8(s + 8 * k, x[k] * inv);
}

template <int kHd>
void attend_window_64_avx(const WindowJob& job, std::vector<float>& scratch) {
  constexpr int kT = 64, kHv = kHd / 8;
  const int64_t c = job.channels;
  scratch.resize(static_cast<size_t>(kT * kHd + kT * kT));
  float* kt = scratch.data();  // K of the head transposed, [hd][T]
  float* s = kt + kT * kHd;    // [T][T] scores, then probabilities
  // q and v are read in place from the window's qkv rows (q scaled as it is read: the same float
  // PyTorch's q * scale gives); only K is copied, transposed, with contiguous stores.
  const float* row[kT];
  for (int i = 0; i < kT; ++i) row[i] = job.qkv + job.rows[i] * 3 * c;
  for (int64_t h = 0; h < job.heads; ++h) {
    const int64_t qo = h * kHd, ko = c + h * kHd, vo = 2 * c + h * kHd;
    for (int d = 0; d < kHd; ++d)
      for (int i = 0; i < kT; ++i) kt[d * kT + i] = row[i][ko + d];
    // S = Q K^T, two rows by 32 columns at a time: 8 accumulators, each K load used twice. (Two rows
    // by all 64 columns would need 16 accumulators plus operands: more than the 16 AVX registers.)
    for (int i = 0; i < kT; i += 2) {
      for (int half = 0; half < 2; ++half) {
        v8f a0[4], a1[4];
        for (int jj = 0; jj < 4; ++jj) a0[jj] = a1[jj] = v8f{};
        for (int d = 0; d < kHd; ++d) {
          const float q0 = row[i][qo + d] * job.scale, q1 = row[i + 1][qo + d] * job.scale;
          const float* kd = kt + d * kT + 32 * half;
          for (int jj = 0; jj < 4; ++jj) {
            const v8f kv = load8(kd + 8 * jj);
            a0[jj] += q0 * kv;
            a1[jj] += q1 * kv;
          }
        }
        for (int jj = 0; jj < 4; ++jj) {
          store8(s + i * kT + 32 * half + 8 * jj, a0[jj]);
          store8(s + (i + 1) * kT + 32 * half + 8 * jj, a1[jj]);
        }
      }
    }
    const float* bias_h = job.bias + h * kT * kT;
    for (int i = 0; i < kT; ++i)
      softmax_scores_64(s + i * kT, bias_h + i * kT, job.mask ? job.mask + i * kT : nullptr);
    // O = P V, kRows rows at a time: at most 8 accumulators (kRows * kHv), each V row load used kRows
    // times, so that accumulators and operands fit the 16 AVX registers.
    constexpr int kRows = kHv <= 2 ? 4 : 2;
    for (int i = 0; i < kT; i += kRows) {
      v8f acc[kRows][kHv];
      for (int r = 0; r < kRows; ++r)
        for (int e = 0; e < kHv; ++e) acc[r][e] = v8f{};
      for (int j = 0; j < kT; ++j) {
        v8f vj[kHv];
        for (int e = 0; e < kHv; ++e) vj[e] = load8(row[j] + vo + 8 * e);
        for (int r = 0; r < kRows; ++r) {
          const float p = s[(i + r) * kT + j];
          for (int e = 0; e < kHv; ++e) acc[r][e] += p * vj[e];
        }
      }
      for (int r = 0; r < kRows; ++r) {
        float* dst = job.out + job.rows[i + r] * c + h * kHd;
        for (int e = 0; e < kHv; ++e) store8(dst + 8 * e, acc[r][e]);
      }
    }
  }
}

#if defined(__AVX512F__)
// The same window on AVX-512's 32 registers: scores four rows by all 64 columns at a time (16
// accumulators) with the softmax done on them in registers, then O = P V eight rows at a time.
using fast::load16;
using fast::store16;
using fast::v16f;

// Four rows of 64 scores in registers -> probabilities stored at p: s = (s + bias) + mask, softmax.
inline void softmax_rows4_64(v16f (&x)[4][4], const float* b, const float* m, float* p) {
  for (int r = 0; r < 4; ++r) {
    for (int c = 0; c < 4; ++c) {
      x[r][c] = x[r][c] + load16(b + r * 64 + 16 * c);
      if (m) x[r][c] = x[r][c] + load16(m + r * 64 + 16 * c);
    }
    const v16f m01 = x[r][0] > x[r][1] ? x[r][0] : x[r][1], m23 = x[r][2] > x[r][3] ? x[r][2] : x[r][3];
    const float mx = fast::hmax16(m01 > m23 ? m01 : m23);
    v16f e[4];
    for (int c = 0; c < 4; ++c) e[c] = fast::exp16_nonpositive(x[r][c] - mx, kNegligible);
    const float total = fast::hsum16((e[0] + e[1]) + (e[2] + e[3]));
    const float inv = 1.0f / total;
    for (int c = 0; c < 4; ++c) store16(p + r * 64 + 16 * c, e[c] * inv);
  }
}

template <int kHd>
void attend_window_64(const WindowJob& job, std::vector<float>& scratch) {
  constexpr int kT = 64, kV16 = kHd / 16, kV8 = (kHd % 16) / 8;  // a head row: kV16 x 16 + kV8 x 8 floats
  static_assert(kHd % 8 == 0);
  const int64_t c = job.channels;
  // Per head, the window's K transposed ([hd][T]), q * scale (the float PyTorch's q * scale gives)
  // and v ([T][hd]) are copied from its scattered qkv rows: 18 KB for msclap, all in L1 from then on.
  scratch.resize(static_cast<size_t>(3 * kT * kHd + kT * kT));
  float* k = scratch.data();
  float* q = k + kT * kHd;
  float* v = q + kT * kHd;
  float* p = v + kT * kHd;  // [T][T] probabilities
  const float* row[kT];
  for (int i = 0; i < kT; ++i) row[i] = job.qkv + job.rows[i] * 3 * c;
  __m512i offsets[kT / 16];  // element offsets of the window's rows in qkv, 16 at a time (for gathers)
  for (int g = 0; g < kT / 16; ++g) {
    alignas(64) int32_t o[16];
    for (int e = 0; e < 16; ++e) o[e] = static_cast<int32_t>(job.rows[16 * g + e] * 3 * c);
    offsets[g] = _mm512_load_si512(o);
  }
  for (int64_t h = 0; h < job.heads; ++h) {
    for (int i = 0; i < kT; ++i) {
      const float* src = row[i] + h * kHd;
      for (int d = 0; d < kHd; ++d) q[i * kHd + d] = src[d] * job.scale;
      for (int d = 0; d < kHd; ++d) v[i * kHd + d] = src[2 * c + d];
    }
    for (int d = 0; d < kHd; ++d)
      for (int g = 0; g < kT / 16; ++g)
        store16(k + d * kT + 16 * g, _mm512_i32gather_ps(offsets[g], job.qkv + c + h * kHd + d, 4));
    const float* bias_h = job.bias + h * kT * kT;
    for (int i = 0; i < kT; i += 4) {
      v16f acc[4][4];
      for (int r = 0; r < 4; ++r)
        for (int cc = 0; cc < 4; ++cc) acc[r][cc] = v16f{};
      for (int d = 0; d < kHd; ++d) {
        v16f kv[4];
        for (int cc = 0; cc < 4; ++cc) kv[cc] = load16(k + d * kT + 16 * cc);
        for (int r = 0; r < 4; ++r) {
          const float qv = q[(i + r) * kHd + d];
          for (int cc = 0; cc < 4; ++cc) acc[r][cc] += qv * kv[cc];
        }
      }
      softmax_rows4_64(acc, bias_h + i * kT, job.mask ? job.mask + i * kT : nullptr, p + i * kT);
    }
    for (int i = 0; i < kT; i += 8) {
      v16f o16[8][kV16 > 0 ? kV16 : 1];
      v8f o8[8][kV8 > 0 ? kV8 : 1];
      for (int r = 0; r < 8; ++r) {
        for (int e = 0; e < kV16; ++e) o16[r][e] = v16f{};
        for (int e = 0; e < kV8; ++e) o8[r][e] = v8f{};
      }
      for (int j = 0; j < kT; ++j) {
        const float* vj = v + j * kHd;
        v16f w16[kV16 > 0 ? kV16 : 1];
        v8f w8[kV8 > 0 ? kV8 : 1];
        for (int e = 0; e < kV16; ++e) w16[e] = load16(vj + 16 * e);
        for (int e = 0; e < kV8; ++e) w8[e] = load8(vj + 16 * kV16 + 8 * e);
        for (int r = 0; r < 8; ++r) {
          const v16f pr = _mm512_set1_ps(p[(i + r) * kT + j]);
          const v8f pr8 = __builtin_shufflevector(pr, pr, 0, 1, 2, 3, 4, 5, 6, 7);
          for (int e = 0; e < kV16; ++e) o16[r][e] += pr * w16[e];
          for (int e = 0; e < kV8; ++e) o8[r][e] += pr8 * w8[e];
        }
      }
      for (int r = 0; r < 8; ++r) {
        float* dst = job.out + job.rows[i + r] * c + h * kHd;
        for (int e = 0; e < kV16; ++e) store16(dst + 16 * e, o16[r][e]);
        for (int e = 0; e < kV8; ++e) store8(dst + 16 * kV16 + 8 * e, o8[r][e]);
      }
    }
  }
}
#else
template <int kHd>
void attend_window_64(const WindowJob& job, std::vector<float>& scratch) {
  attend_window_64_avx<kHd>(job, scratch);
}
#endif

}  // namespace

void window_attention(const float* qkv, int64_t batch, const WindowGeometry& g, const float* bias,
                      const float* mask, float* out) {
  const int64_t ws = g.window, t = g.tokens();
  if (ws <= 0 || g.height % ws || g.width % ws || g.heads <= 0 || g.channels % g.heads)
    throw ModelError("window attention: grid " + std::to_string(g.height) + "x" + std::to_string(g.width) +
                     " does not fit window " + std::to_string(ws) + " / heads " + std::to_string(g.heads));
  const int64_t hd = g.channels / g.heads;
  if (hd > 256) throw ModelError("window attention: head size " + std::to_string(hd) + " > 256 is not supported");
  const int64_t wins_w = g.width / ws, per_clip = g.num_windows(), hw = g.height * g.width;
  // As PyTorch: head_dim ** -0.5 computed in double, applied as a float multiplier.
  const float scale = static_cast<float>(std::pow(static_cast<double>(hd), -0.5));
  parallel_chunks(batch * per_clip, 1, [&](int64_t begin, int64_t end) {
    thread_local std::vector<float> scratch;
    thread_local std::vector<int64_t> rows;
    rows.resize(static_cast<size_t>(t));
    for (int64_t job_id = begin; job_id < end; ++job_id) {
      const int64_t b = job_id / per_clip, w = job_id % per_clip;
      const int64_t r0 = (w / wins_w) * ws, c0 = (w % wins_w) * ws;
      // Token i of window w on the map rolled by -shift is token (r + shift, c + shift) of the original.
      for (int64_t i = 0; i < t; ++i) {
        const int64_t r = (r0 + i / ws + g.shift) % g.height, col = (c0 + i % ws + g.shift) % g.width;
        rows[static_cast<size_t>(i)] = b * hw + r * g.width + col;
      }
      WindowJob job{qkv, rows.data(), bias, mask ? mask + w * t * t : nullptr, out, g.channels, g.heads, hd, scale};
      if (t == 64 && hd == 16)
        attend_window_64<16>(job, scratch);
      else if (t == 64 && hd == 24)
        attend_window_64<24>(job, scratch);
      else if (t == 64 && hd == 32)
        attend_window_64<32>(job, scratch);
      else
        attend_window_generic(job, t, scratch);
    }
  });
}

void patch_merge_norm(const float* x, int64_t batch, int64_t height, int64_t width, int64_t channels,
                      const float* gamma, const float* beta, float eps, float* out) {
  const int64_t h2 = height / 2, w2 = width / 2, c = channels;
  parallel_chunks(batch * h2, 1, [&](int64_t begin, int64_t end) {
    for (int64_t br = begin; br < end; ++br) {
      const int64_t b = br / h2, r = br % h2;
      for (int64_t col = 0; col < w2; ++col) {
        float* dst = out + ((b * h2 + r) * w2 + col) * 4 * c;
        // Order of torch.cat([x0, x1, x2, x3]): (2r, 2c), (2r+1, 2c), (2r, 2c+1), (2r+1, 2c+1).
        const int64_t base = b * height * width;
        const float* src[4] = {x + (base + (2 * r) * width + 2 * col) * c, x + (base + (2 * r + 1) * width + 2 * col) * c,
                               x + (base + (2 * r) * width + 2 * col + 1) * c,
                               x + (base + (2 * r + 1) * width + 2 * col + 1) * c};
        for (int k = 0; k < 4; ++k) std::copy(src[k], src[k] + c, dst + k * c);
        layer_norm(dst, 1, 4 * c, gamma, beta, eps, dst);
      }
    }
  });
}

}  // namespace asdcap::nn
