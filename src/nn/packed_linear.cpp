// asdcap's own GEMM for Linear layers whose weights are known in advance: the weights are packed
// once into panels of kNr output features ([panel][k][kNr]), and a register-blocked kernel (8 x 48
// with AVX-512, 6 x 16 otherwise) runs the whole K dimension per tile, then applies the bias, GELU or the
// residual add while the tile is still in registers. Every output element is the same chain of
// fused multiply-adds over p = 0..K-1 whatever the tile, thread or batch it falls in, so results
// do not depend on the thread count or on the batch size, bit for bit.
#include <algorithm>
#include <cstdint>
#include <cstring>

#include "asdcap/error.hpp"
#include "asdcap/nn.hpp"
#include "core/parallel.hpp"
#include "fastmath.hpp"

namespace asdcap::nn {

namespace {

// The register tile: kMr rows x kNr columns, kVecs vectors per row. With AVX-512, 8 x 48 (24 of the
// 32 registers accumulate; 8 and 48 divide every HTSAT shape); otherwise 6 x 16 on AVX's 16 registers.
#if defined(__AVX512F__)
using Vec = fast::v16f;
constexpr int kVecs = 3;
constexpr int64_t kMr = 8;
#else
using Vec = fast::v8f;
constexpr int kVecs = 2;
constexpr int64_t kMr = 6;
#endif
constexpr int64_t kLanes = sizeof(Vec) / sizeof(float);
constexpr int64_t kNr = kLanes * kVecs;  // output features per panel

inline Vec load(const float* p) { return *reinterpret_cast<const Vec*>(p); }
inline void store(float* p, Vec v) { *reinterpret_cast<Vec*>(p) = v; }

// Task shape: a block of rows against a block of panels. The row block (up to kRowBlockBytes of x)
// stays in L2 across the panels; each panel (K x kNr) stays in L1/L2 across the row tiles of the
// block. Tall blocks make small maps stream each weight panel from memory once.
constexpr int64_t kRowBlockBytes = int64_t{1} << 20;
inline int64_t row_block(int64_t k) { return std::max<int64_t>(kMr, kRowBlockBytes / (4 * k) / kMr * kMr); }
// Below this many multiply-adds a product runs on one thread.
constexpr int64_t kParallelMacs = int64_t{1} << 18;

// Software prefetches (2 % and up to 25 % faster on HTSAT's shapes, measured on a Sapphire Rapids
// core). kL1Ahead: the tile's own panel, that many k steps ahead, into L1. Prefetch: the bytes of the
// next panel that a tile requests into L2, one cache line per k step; weights of a pass over HTSAT
// (~110 MB) come from memory, and without this the first tile of every panel waits on DRAM (stage 3
// of HTSAT ran at 60 % of the in-cache speed).
constexpr int64_t kL1Ahead = 32;
constexpr int64_t kL1PanelBytes = 24 * 1024;  // panels up to this size stay in L1 by themselves
// A tile with many lines of the next panel to request (few row tiles per panel: small maps, whose
// weights stream from memory) spreads them over its k steps, one every mask + 1: a burst of them
// runs out of the core's line fill buffers and stalls the multiply-adds.
constexpr int64_t kBurstLines = 32;
struct Prefetch {
  const char* next = nullptr;
  const char* end = nullptr;
  bool own_panel = false;
  int64_t mask = 0;  // kSpread tiles: one line every mask + 1 k steps (a power of two)
};

template <int MR, bool kSpread = false>
inline void tile(const float* x, int64_t ldx, const float* panel, int64_t k, const float* bias, int64_t ncols, float* y,
                 int64_t ldy, PackedLinear::Epilogue ep, Prefetch pf) {
  Vec acc[MR][kVecs];
  for (int r = 0; r < MR; ++r)
    for (int j = 0; j < kVecs; ++j) acc[r][j] = Vec{};
  const float* xr[MR];
  for (int r = 0; r < MR; ++r) xr[r] = x + r * ldx;
  for (int64_t p = 0; p < k; ++p) {
    Vec b[kVecs];
    for (int j = 0; j < kVecs; ++j) b[j] = load(panel + kNr * p + kLanes * j);
    if (pf.next < pf.end && (!kSpread || (p & pf.mask) == 0)) {
      __builtin_prefetch(pf.next, 0, 2);
      pf.next += 64;
    }
    if (pf.own_panel) {  // this panel, kL1Ahead k steps ahead (as an integer: it may run past the end)
      const uintptr_t ahead = reinterpret_cast<uintptr_t>(panel + kNr * p) + kNr * kL1Ahead * sizeof(float);
      for (int j = 0; j < kVecs; ++j)
        __builtin_prefetch(reinterpret_cast<const void*>(ahead + kLanes * j * sizeof(float)), 0, 3);
    }
    for (int r = 0; r < MR; ++r) {
      const float a = xr[r][p];
      for (int j = 0; j < kVecs; ++j) acc[r][j] += a * b[j];
    }
  }
  Vec bv[kVecs];
  for (int j = 0; j < kVecs; ++j) bv[j] = load(bias + kLanes * j);
  for (int r = 0; r < MR; ++r) {
    Vec v[kVecs];
    for (int j = 0; j < kVecs; ++j) {
      v[j] = acc[r][j] + bv[j];
      if (ep == PackedLinear::Epilogue::kGelu) {
#if defined(__AVX512F__)
        v[j] = fast::gelu_erf16(v[j]);
#else
        v[j] = fast::gelu_erfv(v[j]);
#endif
      }
    }
    float* dst = y + r * ldy;
    if (ncols == kNr) {
      for (int j = 0; j < kVecs; ++j) {
        if (ep == PackedLinear::Epilogue::kAccumulate) v[j] = load(dst + kLanes * j) + v[j];
        store(dst + kLanes * j, v[j]);
      }
    } else {  // last, partial panel: through a buffer so that nothing past column ncols is touched
      float buf[kNr];
      for (int j = 0; j < kVecs; ++j) store(buf + kLanes * j, v[j]);
      for (int64_t j = 0; j < ncols; ++j) dst[j] = ep == PackedLinear::Epilogue::kAccumulate ? dst[j] + buf[j] : buf[j];
    }
  }
}

}  // namespace

PackedLinear::PackedLinear(const float* w, int64_t out_features, int64_t in_features, const float* bias, Layout layout)
    : n_(out_features), k_(in_features) {
  if (n_ <= 0 || k_ <= 0)
    throw ModelError("linear layer of " + std::to_string(out_features) + " x " + std::to_string(in_features));
  const int64_t panels = (n_ + kNr - 1) / kNr;
  packed_.assign(static_cast<size_t>(panels * k_ * kNr), 0.f);
  bias_.assign(static_cast<size_t>(panels * kNr), 0.f);
  for (int64_t j = 0; j < n_; ++j) {
    float* dst = packed_.data() + (j / kNr) * k_ * kNr + j % kNr;
    for (int64_t p = 0; p < k_; ++p) dst[p * kNr] = layout == Layout::kOutIn ? w[j * k_ + p] : w[p * n_ + j];
    if (bias) bias_[static_cast<size_t>(j)] = bias[j];
  }
}

void PackedLinear::forward_block(const float* x, int64_t r0, int64_t r1, int64_t panel0, int64_t panel1, float* y,
                                 Epilogue ep) const {
  const int64_t panels = (n_ + kNr - 1) / kNr, panel_bytes = k_ * kNr * static_cast<int64_t>(sizeof(float));
  const int64_t tiles = (r1 - r0 + kMr - 1) / kMr;
  // The next panel's bytes, split evenly over this panel's tiles.
  const int64_t slice = tiles > 0 ? (panel_bytes / tiles + 63) / 64 * 64 : 0;
  const bool own = panel_bytes > kL1PanelBytes;
  const int64_t lines = slice / 64;
  const bool spread = lines > kBurstLines;
  int64_t mask = 0;
  while (spread && 2 * (mask + 1) * lines <= k_) mask = 2 * mask + 1;
  for (int64_t pn = panel0; pn < panel1; ++pn) {
    const float* panel = packed_.data() + pn * k_ * kNr;
    const float* bias = bias_.data() + pn * kNr;
    const int64_t col = pn * kNr, ncols = std::min(kNr, n_ - col);
    const char* next = pn + 1 < panels ? reinterpret_cast<const char*>(panel + k_ * kNr) : nullptr;
    auto prefetch = [&](int64_t t) {
      if (!next) return Prefetch{nullptr, nullptr, own, mask};
      return Prefetch{next + std::min(panel_bytes, t * slice), next + std::min(panel_bytes, (t + 1) * slice), own,
                      mask};
    };
    int64_t r = r0, t = 0;
    for (; r + kMr <= r1; r += kMr, ++t) {
      if (spread)
        tile<kMr, true>(x + r * k_, k_, panel, k_, bias, ncols, y + r * n_ + col, n_, ep, prefetch(t));
      else
        tile<kMr>(x + r * k_, k_, panel, k_, bias, ncols, y + r * n_ + col, n_, ep, prefetch(t));
    }
    const float* xs = x + r * k_;
    float* ys = y + r * n_ + col;
    const Prefetch pf = prefetch(t);
    switch (r1 - r) {
      case 7: tile<7>(xs, k_, panel, k_, bias, ncols, ys, n_, ep, pf); break;
      case 6: tile<6>(xs, k_, panel, k_, bias, ncols, ys, n_, ep, pf); break;
      case 5: tile<5>(xs, k_, panel, k_, bias, ncols, ys, n_, ep, pf); break;
      case 4: tile<4>(xs, k_, panel, k_, bias, ncols, ys, n_, ep, pf); break;
      case 3: tile<3>(xs, k_, panel, k_, bias, ncols, ys, n_, ep, pf); break;
      case 2: tile<2>(xs, k_, panel, k_, bias, ncols, ys, n_, ep, pf); break;
      case 1: tile<1>(xs, k_, panel, k_, bias, ncols, ys, n_, ep, pf); break;
      default: break;
    }
  }
}

void PackedLinear::forward_serial(const float* x, int64_t m, float* y, Epilogue ep) const {
  const int64_t panels = (n_ + kNr - 1) / kNr;
  const int64_t rb = row_block(k_);
  for (int64_t r0 = 0; r0 < m; r0 += rb) forward_block(x, r0, std::min(m, r0 + rb), 0, panels, y, ep);
}

void PackedLinear::forward(int threads, const float* x, int64_t m, float* y, Epilogue ep) const {
  const int t = resolve_threads(threads);
  if (t <= 1 || in_parallel_region() || m * n_ * k_ < kParallelMacs) {
    forward_serial(x, m, y, ep);
    return;
  }
  const int64_t panels = (n_ + kNr - 1) / kNr, rows = row_block(k_);
  const int64_t row_blocks = (m + rows - 1) / rows;
  // Split by panels or by rows, whichever moves less per thread: by panels each thread reads all of
  // x and 1/t of the weights, by rows 1/t of x and all weights.
  if (panels >= t && m < n_) {
    // Each thread a contiguous range of panels (for every row block): it streams only those
    // weights, and the next panel it prefetches is its own.
    parallel_chunks(
        t, t, 1,
        [&](int64_t part, int64_t) {
          const int64_t p0 = panels * part / t, p1 = panels * (part + 1) / t;
          for (int64_t rb = 0; rb < row_blocks; ++rb)
            forward_block(x, rb * rows, std::min(m, (rb + 1) * rows), p0, p1, y, ep);
        },
        Schedule::kStatic);
  } else {
    const int64_t quantum = (m + t - 1) / t;
    const int64_t step = (quantum + kMr - 1) / kMr * kMr;
    parallel_chunks(
        t, t, 1,
        [&](int64_t part, int64_t) {
          const int64_t r0 = std::min(m, part * step), r1 = std::min(m, r0 + step);
          for (int64_t r = r0; r < r1; r += rows) forward_block(x, r, std::min(r1, r + rows), 0, panels, y, ep);
        },
        Schedule::kStatic);
  }
}

}  // namespace asdcap::nn
