// The portable window-attention kernels: any window and head size (plain loops), and 8 x 8 windows
// with register blocking in 8-wide GCC vectors (AVX2).
#include <algorithm>
#include <climits>

#include "fastmath.hpp"
#include "window_kernels.hpp"

namespace asdcap::nn::window {

namespace {

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
inline void gather_head(const Job& job, int64_t h, int64_t t, int64_t hd, float* q, float* kt, float* v) {
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

}  // namespace

// Any window / head size: plain loops.
void attend_generic(const Job& job, std::vector<float>& scratch) {
  const int64_t t = job.tokens;
  const int64_t hd = job.head_dim, c = job.channels;
  scratch.resize(static_cast<size_t>(3 * t * hd + t + hd));
  float* q = scratch.data();
  float* kt = q + t * hd;
  float* v = kt + t * hd;
  float* s = v + t * hd;
  float* o = s + t;
  for (int64_t h = job.head_begin; h < job.head_end; ++h) {
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

namespace {

// 8 x 8 windows (T = 64) and head sizes that are multiples of 8, with register blocking
// (GCC vector extensions; AVX2).
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
void attend_64(const Job& job, std::vector<float>& scratch) {
  constexpr int kT = 64, kHv = kHd / 8;
  const int64_t c = job.channels;
  scratch.resize(static_cast<size_t>(kT * kHd + kT * kT));
  float* kt = scratch.data();  // K of the head transposed, [hd][T]
  float* s = kt + kT * kHd;    // [T][T] scores, then probabilities
  // q and v are read in place from the window's qkv rows (q scaled as it is read: the same float
  // PyTorch's q * scale gives); only K is copied, transposed, with contiguous stores.
  const float* row[kT];
  for (int i = 0; i < kT; ++i) row[i] = job.qkv + job.rows[i] * 3 * c;
  for (int64_t h = job.head_begin; h < job.head_end; ++h) {
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
    for (int i = 0; i < kT; ++i) softmax_scores_64(s + i * kT, bias_h + i * kT, job.mask ? job.mask + i * kT : nullptr);
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

}  // namespace

void attend_avx_64(const Job& job, std::vector<float>& scratch) {
  switch (job.head_dim) {
    case 16: attend_64<16>(job, scratch); break;
    case 24: attend_64<24>(job, scratch); break;
    case 32: attend_64<32>(job, scratch); break;
    default: attend_generic(job, scratch); break;
  }
}

Kernel choose(int64_t tokens, int64_t head_dim, int64_t map_elements, KernelSet set) {
  if (tokens != 64) return Kernel::kGeneric;
  // (its gathers take 32-bit offsets within a clip's map)
  if (set == KernelSet::kAvx512 && head_dim % 8 == 0 && map_elements <= INT32_MAX) return Kernel::kAvx512_64;
  return head_dim == 16 || head_dim == 24 || head_dim == 32 ? Kernel::kAvx64 : Kernel::kGeneric;
}

}  // namespace asdcap::nn::window
