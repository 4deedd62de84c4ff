// asdcap's own GEMM for Linear layers whose weights are known in advance: the weights are packed
// once into panels of 48 output features ([panel][k][48]), the same for every CPU, and a register-blocked
// kernel (8 x 48 with AVX-512, 6 x 16 on a third of a panel otherwise) runs the whole K dimension per tile, then
// applies the bias, GELU or the residual add while the tile is still in registers. Every output element is the same
// chain of fused multiply-adds over p = 0..K-1 whatever the tile, thread or batch it falls in, so results do not depend
// on the thread count or on the batch size, bit for bit.
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "asdcap/error.hpp"
#include "asdcap/nn.hpp"
#include "core/parallel.hpp"
#include "packed_kernel.hpp"

namespace asdcap::nn {

namespace {

// Task shape: a block of rows against a block of panels. The row block (up to kRowBlockBytes of x)
// stays in L2 across the panels; each panel (K x nr) stays in L1/L2 across the row tiles of the
// block. Tall blocks make small maps stream each weight panel from memory once.
constexpr int64_t kRowBlockBytes = int64_t{1} << 20;
inline int64_t row_block(int64_t k, int64_t mr) { return std::max<int64_t>(mr, kRowBlockBytes / (4 * k) / mr * mr); }
// Below this many multiply-adds a product runs on one thread.
constexpr int64_t kParallelMacs = int64_t{1} << 18;

}  // namespace

namespace {

// Element j, p of an n x k layer's weights into its panel slot (T: float or the 16-bit pattern). The
// source is read bytewise: a model file's tensor need not be aligned to its element size.
template <typename T>
void pack(const void* source, int64_t n, int64_t k, int64_t nr, PackedLinear::Layout layout, T* panels) {
  const auto* w = static_cast<const unsigned char*>(source);
  auto put = [&](int64_t j, int64_t p, int64_t at) {
    std::memcpy(panels + (j / nr) * k * nr + p * nr + j % nr, w + at * static_cast<int64_t>(sizeof(T)), sizeof(T));
  };
  // The source is read in its own order (w[n, k] row by row, w[k, n] row by row).
  if (layout == PackedLinear::Layout::kOutIn) {
    for (int64_t j = 0; j < n; ++j)
      for (int64_t p = 0; p < k; ++p) put(j, p, j * k + p);
  } else {
    for (int64_t p = 0; p < k; ++p)
      for (int64_t j = 0; j < n; ++j) put(j, p, p * n + j);
  }
}

}  // namespace

void widen(WeightView w, int64_t first, int64_t count, float* out) {
  const auto* src = static_cast<const unsigned char*>(w.data);
  if (w.type == WeightType::kF32) {
    std::memcpy(out, src + first * 4, static_cast<size_t>(count) * 4);
    return;
  }
  for (int64_t i = 0; i < count; ++i) {
    uint16_t h;
    std::memcpy(&h, src + (first + i) * 2, 2);
    if (w.type == WeightType::kF16) {
      out[i] = _cvtsh_ss(h);  // F16C: exact
    } else {
      const uint32_t bits = uint32_t{h} << 16;
      std::memcpy(out + i, &bits, 4);
    }
  }
}

PackedLinear::PackedLinear(WeightView w, int64_t out_features, int64_t in_features, const float* bias, Layout layout)
    : n_(out_features), k_(in_features), set_(kernel_set()), type_(w.type) {
  if (n_ <= 0 || k_ <= 0)
    throw ModelError("linear layer of " + std::to_string(out_features) + " x " + std::to_string(in_features));
  if (!w.data)
    throw ModelError("linear layer of " + std::to_string(out_features) + " x " + std::to_string(in_features) +
                     " without weights");
  const int64_t kNr = packed::kPanelWidth;
  const int64_t panels = (n_ + kNr - 1) / kNr;
  const size_t elements = static_cast<size_t>(panels * k_ * kNr);
  // Every byte is written below (the padding of a partial last panel zeroed), so the buffer is not
  // cleared first.
  packed_.resize(elements * (type_ == WeightType::kF32 ? sizeof(float) : sizeof(uint16_t)));
  if (const int64_t pad = panels * kNr - n_; pad > 0)
    for (int64_t p = 0; p < k_; ++p) {
      const size_t es = type_ == WeightType::kF32 ? sizeof(float) : sizeof(uint16_t);
      std::memset(packed_.data() + ((panels - 1) * k_ * kNr + p * kNr + (kNr - pad)) * es, 0, pad * es);
    }
  if (type_ == WeightType::kF32) {
    pack(w.data, n_, k_, kNr, layout, reinterpret_cast<float*>(packed_.data()));
  } else {
    pack(w.data, n_, k_, kNr, layout, reinterpret_cast<uint16_t*>(packed_.data()));
  }
  bias_.assign(static_cast<size_t>(panels * kNr), 0.f);
  if (bias)
    for (int64_t j = 0; j < n_; ++j) bias_[static_cast<size_t>(j)] = bias[j];
}

void PackedLinear::forward_block(const float* x, int64_t r0, int64_t r1, int64_t panel0, int64_t panel1, float* y,
                                 Epilogue ep) const {
  packed::kernel(set_).forward_block[static_cast<int>(type_)](packed_.data(), bias_.data(), n_, k_, x, r0, r1, panel0,
                                                              panel1, y, ep);
}

void PackedLinear::forward_serial(const float* x, int64_t m, float* y, Epilogue ep) const {
  const packed::Kernel& kern = packed::kernel(set_);
  const int64_t panels = (n_ + packed::kPanelWidth - 1) / packed::kPanelWidth;
  const int64_t rb = row_block(k_, kern.mr);
  for (int64_t r0 = 0; r0 < m; r0 += rb) forward_block(x, r0, std::min(m, r0 + rb), 0, panels, y, ep);
}

void PackedLinear::forward(int threads, const float* x, int64_t m, float* y, Epilogue ep) const {
  const int t = resolve_threads(threads);
  if (t <= 1 || in_parallel_region() || m * n_ * k_ < kParallelMacs) {
    forward_serial(x, m, y, ep);
    return;
  }
  const packed::Kernel& kern = packed::kernel(set_);
  const int64_t kNr = packed::kPanelWidth, kMr = kern.mr;
  const int64_t panels = (n_ + kNr - 1) / kNr, rows = row_block(k_, kMr);
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
