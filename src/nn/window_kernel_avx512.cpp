// Window attention for 8 x 8 windows on AVX-512, on transposed scores: S^T = K Q^T puts the 16
// queries of a vector in its lanes, so the softmax over keys is element-wise across rows (no
// horizontal reductions) and O^T = V^T P^T runs at full vector width for any head size that is a
// multiple of 8 (msclap's is 24). Per head: Q^T (scaled) is gathered from the window's scattered
// qkv rows, K and V are read in place, and O^T is transposed back in registers.
// This file is compiled for x86-64-v4 (src/nn/CMakeLists.txt) and runs only on AVX-512 CPUs
// (nn::kernel_set()); it uses nothing from the standard library that the linker could share with
// the AVX2 files.
#include <immintrin.h>

#include <limits>

#include "fastmath.hpp"
#include "window_kernels.hpp"

namespace asdcap::nn::window {

namespace {

constexpr int kT = 64;
// All lanes: the maskz forms of the shuffles (the plain ones trip GCC 12's -Wmaybe-uninitialized in
// its own headers).
constexpr __mmask16 kAll = 0xffff;
using fast::load16;
using fast::store16;
using fast::v16f;

// 8 vectors a[r] (r: head dimension d0 + r, lanes: 16 queries) -> for each query q, its 8 values
// stored at dst[q] (8 consecutive floats). 32 shuffles instead of 128 scalar stores.
inline void transpose_store_8x16(const v16f (&a)[8], float* const* dst) {
  __m512 t[8], u[8];
  for (int k = 0; k < 4; ++k) {
    t[2 * k] = _mm512_maskz_unpacklo_ps(kAll, a[2 * k], a[2 * k + 1]);  // lane l: a0[4l] a1[4l] a0[4l+1] a1[4l+1]
    t[2 * k + 1] =
        _mm512_maskz_unpackhi_ps(kAll, a[2 * k], a[2 * k + 1]);  //         a0[4l+2] a1[4l+2] a0[4l+3] a1[4l+3]
  }
  for (int h = 0; h < 2; ++h) {  // h = 0: d0..3 from t[0..3], h = 1: d4..7 from t[4..7]
    const __m512* x = t + 4 * h;
    u[4 * h + 0] = _mm512_maskz_shuffle_ps(kAll, x[0], x[2], 0x44);  // lane l: query 4l + 0, 4 dims
    u[4 * h + 1] = _mm512_maskz_shuffle_ps(kAll, x[0], x[2], 0xee);  // query 4l + 1
    u[4 * h + 2] = _mm512_maskz_shuffle_ps(kAll, x[1], x[3], 0x44);  // query 4l + 2
    u[4 * h + 3] = _mm512_maskz_shuffle_ps(kAll, x[1], x[3], 0xee);  // query 4l + 3
  }
  for (int m = 0; m < 4; ++m) {
    // [u_m.l0 u_m.l1 | u_m+4.l0 u_m+4.l1] -> [u_m.l0 u_m+4.l0 | u_m.l1 u_m+4.l1]: queries m, 4 + m.
    const __m512 lo2 = _mm512_maskz_shuffle_f32x4(kAll, u[m], u[m + 4], 0x44);
    const __m512 hi2 = _mm512_maskz_shuffle_f32x4(kAll, u[m], u[m + 4], 0xee);
    const __m512 q0 = _mm512_maskz_shuffle_f32x4(kAll, lo2, lo2, 0xd8);  // queries m (low 8), 4 + m (high 8)
    const __m512 q1 = _mm512_maskz_shuffle_f32x4(kAll, hi2, hi2, 0xd8);  // queries 8 + m, 12 + m
    _mm512_mask_storeu_ps(dst[m], 0x00ff, q0);
    _mm512_mask_storeu_ps(dst[4 + m] - 8, 0xff00, q0);
    _mm512_mask_storeu_ps(dst[8 + m], 0x00ff, q1);
    _mm512_mask_storeu_ps(dst[12 + m] - 8, 0xff00, q1);
  }
}

// Requests the lines of the next job's qkv rows into L2, one per step() call, row after row.
// (Addresses as integers: the last line of a row may reach past the end of the buffer.)
class RowPrefetch {
 public:
  RowPrefetch(const float* qkv, const int64_t* rows, int64_t row_floats) : qkv_(qkv), rows_(rows), floats_(row_floats) {
    if (rows_) start_row();
  }
  void step() {
    if (!line_) return;
    __builtin_prefetch(reinterpret_cast<const void*>(line_), 0, 2);
    line_ += 64;
    if (line_ >= end_) {
      if (++r_ < kT)
        start_row();
      else
        line_ = 0;
    }
  }

 private:
  void start_row() {
    const auto first = reinterpret_cast<uintptr_t>(qkv_ + rows_[r_] * floats_);
    line_ = first & ~uintptr_t{63};
    end_ = first + static_cast<uintptr_t>(floats_) * sizeof(float);
  }
  const float* qkv_;
  const int64_t* rows_;
  int64_t floats_;
  int r_ = 0;
  uintptr_t line_ = 0, end_ = 0;
};

}  // namespace

void attend_avx512_64(const Job& job, float* scratch) {
  const int64_t c = job.channels, hd = job.head_dim;
  float* qt = scratch;      // Q^T * scale of the head, [hd][T]
  float* s = qt + hd * kT;  // S^T, then exp(S^T - column max): [T keys][T queries]
  const float* row[kT];
  for (int i = 0; i < kT; ++i) row[i] = job.qkv + job.rows[i] * 3 * c;
  // Element offsets of the window's rows from its clip's first row (they fit 32 bits: choose()).
  const float* clip = job.qkv + job.clip_row * 3 * c;
  __m512i offsets[kT / 16];
  for (int g = 0; g < kT / 16; ++g) {
    alignas(64) int32_t o[16];
    for (int e = 0; e < 16; ++e) o[e] = static_cast<int32_t>((job.rows[16 * g + e] - job.clip_row) * 3 * c);
    offsets[g] = _mm512_load_si512(o);
  }
  const __m512 scale = _mm512_set1_ps(job.scale);
  RowPrefetch next(job.qkv, job.prefetch_rows, 3 * c);
  for (int64_t h = job.head_begin; h < job.head_end; ++h) {
    const int64_t qo = h * hd, ko = c + h * hd, vo = 2 * c + h * hd;
    for (int64_t d = 0; d < hd; ++d)
      for (int g = 0; g < kT / 16; ++g)
        store16(
            qt + d * kT + 16 * g,
            _mm512_mul_ps(_mm512_mask_i32gather_ps(_mm512_setzero_ps(), 0xffff, offsets[g], clip + qo + d, 4), scale));
    // S^T = K Q^T + bias^T (+ mask), four keys by all 64 queries at a time; column maxima on the way.
    const float* bias = job.bias + h * kT * kT;
    v16f mx[4];
    for (int q = 0; q < 4; ++q) mx[q] = v16f{} - std::numeric_limits<float>::infinity();
    for (int j = 0; j < kT; j += 4) {
      v16f acc[4][4];
      for (int r = 0; r < 4; ++r)
        for (int q = 0; q < 4; ++q) acc[r][q] = v16f{};
      for (int64_t d = 0; d < hd; ++d) {
        next.step();
        v16f qv[4];
        for (int q = 0; q < 4; ++q) qv[q] = load16(qt + d * kT + 16 * q);
        for (int r = 0; r < 4; ++r) {
          const float kv = row[j + r][ko + d];
          for (int q = 0; q < 4; ++q) acc[r][q] += kv * qv[q];
        }
      }
      for (int r = 0; r < 4; ++r)
        for (int q = 0; q < 4; ++q) {
          v16f a = acc[r][q] + load16(bias + (j + r) * kT + 16 * q);
          if (job.mask) a = a + load16(job.mask + (j + r) * kT + 16 * q);
          mx[q] = a > mx[q] ? a : mx[q];
          store16(s + (j + r) * kT + 16 * q, a);
        }
    }
    // Softmax over keys, per query lane.
    v16f sum[4] = {};
    for (int j = 0; j < kT; ++j)
      for (int q = 0; q < 4; ++q) {
        const v16f e = fast::exp16_nonpositive(load16(s + j * kT + 16 * q) - mx[q], kNegligible);
        sum[q] += e;
        store16(s + j * kT + 16 * q, e);
      }
    v16f inv[4];
    for (int q = 0; q < 4; ++q) inv[q] = 1.0f / sum[q];
    // O^T = V^T E^T / sum (the softmax's division applied once per output instead of once per
    // probability), eight dimensions by 32 queries at a time, then back to token rows.
    for (int64_t d0 = 0; d0 < hd; d0 += 8) {
      for (int half = 0; half < 2; ++half) {
        v16f o[2][8];
        for (int q = 0; q < 2; ++q)
          for (int r = 0; r < 8; ++r) o[q][r] = v16f{};
        for (int j = 0; j < kT; ++j) {
          const v16f p0 = load16(s + j * kT + 32 * half), p1 = load16(s + j * kT + 32 * half + 16);
          const float* vj = row[j] + vo + d0;
          for (int r = 0; r < 8; ++r) {
            o[0][r] += vj[r] * p0;
            o[1][r] += vj[r] * p1;
          }
        }
        for (int q = 0; q < 2; ++q) {
          for (int r = 0; r < 8; ++r) o[q][r] *= inv[2 * half + q];
          float* dst[16];
          for (int e = 0; e < 16; ++e) dst[e] = job.out + job.rows[32 * half + 16 * q + e] * c + h * hd + d0;
          transpose_store_8x16(o[q], dst);
        }
      }
    }
  }
}

}  // namespace asdcap::nn::window
