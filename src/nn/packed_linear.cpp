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
#include <string>

#include "asdcap/error.hpp"
#include "asdcap/nn.hpp"
#include "core/panels.hpp"
#include "core/parallel.hpp"
#include "packed_int8.hpp"
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

void widen(WeightView w, int64_t first, int64_t count, float* out) {
  const auto* src = static_cast<const unsigned char*>(w.data);
  if (w.type == WeightType::kF32) {
    std::memcpy(out, src + first * 4, static_cast<size_t>(count) * 4);
    return;
  }
  if (w.type == WeightType::kI8) {
    for (int64_t i = 0; i < count; ++i) out[i] = static_cast<float>(static_cast<int8_t>(src[first + i]));
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

namespace {

std::string layer_name(int64_t n, int64_t k) {
  return "linear layer of " + std::to_string(n) + " x " + std::to_string(k);
}

size_t element_bytes(WeightType t) {
  return t == WeightType::kF32 ? sizeof(float) : t == WeightType::kI8 ? sizeof(int8_t) : sizeof(uint16_t);
}

int64_t padded_width(int64_t n) {
  return (n + PackedLinear::kPanelWidth - 1) / PackedLinear::kPanelWidth * PackedLinear::kPanelWidth;
}

// The scales of an int8 layer, padded to whole panels with zeros; empty for the float types.
AlignedVector padded_scales(const WeightView& w, int64_t n, int64_t k) {
  if (w.type != WeightType::kI8) return {};
  if (!w.scale) throw ModelError(layer_name(n, k) + ": int8 weights without their scales");
  if (k > int8::kMaxInputs)
    throw ModelError(layer_name(n, k) + ": int8 weights for at most " + std::to_string(int8::kMaxInputs) + " inputs");
  AlignedVector s(static_cast<size_t>(padded_width(n)), 0.f);
  std::copy(w.scale, w.scale + n, s.begin());
  return s;
}

// Each output's sum of its int8 weights (from the panels; the padding is zero).
std::vector<int32_t, LineAligned<int32_t>> column_sums(const unsigned char* panels, int64_t n, int64_t k) {
  const int64_t k4 = panels::int8_inputs(k), width = padded_width(n);
  std::vector<int32_t, LineAligned<int32_t>> sums(static_cast<size_t>(width), 0);
  int8::column_sums(reinterpret_cast<const int8_t*>(panels), width / PackedLinear::kPanelWidth, k4, sums.data());
  return sums;
}

}  // namespace

static_assert(PackedLinear::kPanelWidth == panels::kWidth);

size_t PackedLinear::panel_bytes(int64_t out_features, int64_t in_features, WeightType type) {
  if (type == WeightType::kI8) return panels::bytes(out_features, panels::int8_inputs(in_features), 1);
  return panels::bytes(out_features, in_features, element_bytes(type));
}

void PackedLinear::pack(WeightView w, int64_t out_features, int64_t in_features, Layout layout, void* out) {
  if (w.type == WeightType::kI8) {
    panels::pack_int8(static_cast<const int8_t*>(w.data), out_features, in_features, layout == Layout::kInOut,
                      static_cast<int8_t*>(out));
    return;
  }
  panels::pack(w.data, out_features, in_features, layout == Layout::kInOut, element_bytes(w.type), out);
}

PackedLinear::PackedLinear(WeightView w, int64_t out_features, int64_t in_features, const float* bias, Layout layout)
    : n_(out_features), k_(in_features), set_(kernel_set()), type_(w.type) {
  if (n_ <= 0 || k_ <= 0) throw ModelError(layer_name(out_features, in_features));
  if (!w.data) throw ModelError(layer_name(out_features, in_features) + " without weights");
  // Every byte is written by pack() (the padding of a partial last panel zeroed), so the buffer is
  // not cleared first.
  packed_.resize(panel_bytes(n_, k_, type_));
  pack(w, n_, k_, layout, packed_.data());
  scale_ = padded_scales(w, n_, k_);
  if (type_ == WeightType::kI8 && int8::uses_column_sums(set_)) column_sums_ = column_sums(packed_.data(), n_, k_);
  const int64_t width = padded_width(n_);
  bias_.assign(static_cast<size_t>(width), 0.f);
  if (bias)
    for (int64_t j = 0; j < n_; ++j) bias_[static_cast<size_t>(j)] = bias[j];
}

PackedLinear PackedLinear::over_panels(WeightView panels, int64_t out_features, int64_t in_features, const float* bias,
                                       std::shared_ptr<const void> keep) {
  PackedLinear l;
  l.n_ = out_features;
  l.k_ = in_features;
  l.set_ = kernel_set();
  l.type_ = panels.type;
  const size_t bytes = panel_bytes(out_features, in_features, panels.type);
  if (!panels.data) throw ModelError(layer_name(out_features, in_features) + " without weights");
  l.scale_ = padded_scales(panels, out_features, in_features);
  if (reinterpret_cast<uintptr_t>(panels.data) % 64 == 0) {
    l.view_ = static_cast<const unsigned char*>(panels.data);
    l.keep_ = std::move(keep);
  } else {
    l.packed_.resize(bytes);
    std::memcpy(l.packed_.data(), panels.data, bytes);
  }
  if (l.type_ == WeightType::kI8 && int8::uses_column_sums(l.set_))
    l.column_sums_ = column_sums(l.panels(), out_features, in_features);
  const int64_t width = padded_width(out_features);
  l.bias_.assign(static_cast<size_t>(width), 0.f);
  if (bias)
    for (int64_t j = 0; j < out_features; ++j) l.bias_[static_cast<size_t>(j)] = bias[j];
  return l;
}

// int8 layers: x quantized per row once per call (int8::quantize_rows), read by every block.
struct PackedLinear::Int8Input {
  std::vector<int8_t, LineAligned<int8_t>> q;
  AlignedVector scale;
  int64_t stride = 0;
};

void PackedLinear::forward_block(const float* x, const Int8Input* xq, int64_t r0, int64_t r1, int64_t panel0,
                                 int64_t panel1, float* y, Epilogue ep) const {
  if (type_ == WeightType::kI8) {
    const int8::Layer w{reinterpret_cast<const int8_t*>(panels()),
                        bias_.data(),
                        scale_.data(),
                        column_sums_.data(),
                        n_,
                        panels::int8_inputs(k_)};
    int8::block(set_)(w, {xq->q.data(), xq->scale.data(), xq->stride}, r0, r1, panel0, panel1, y, ep);
    return;
  }
  packed::kernel(set_).forward_block[static_cast<int>(type_)](panels(), bias_.data(), n_, k_, x, r0, r1, panel0, panel1,
                                                              y, ep);
}

std::unique_ptr<PackedLinear::Int8Input> PackedLinear::quantize_input(const float* x, int64_t m) const {
  if (type_ != WeightType::kI8) return nullptr;
  auto in = std::make_unique<Int8Input>();
  in->stride = panels::int8_inputs(k_);
  in->q.resize(static_cast<size_t>(m * in->stride));
  in->scale.resize(static_cast<size_t>(m));
  int8::quantize_rows(x, m, k_, in->stride, in->q.data(), in->scale.data());
  return in;
}

void PackedLinear::forward_serial(const float* x, int64_t m, float* y, Epilogue ep) const {
  const packed::Kernel& kern = packed::kernel(set_);
  const int64_t panels = (n_ + packed::kPanelWidth - 1) / packed::kPanelWidth;
  const int64_t rb = row_block(k_, kern.mr);
  const auto xq = quantize_input(x, m);
  for (int64_t r0 = 0; r0 < m; r0 += rb) forward_block(x, xq.get(), r0, std::min(m, r0 + rb), 0, panels, y, ep);
}

void PackedLinear::forward(int threads, const float* x, int64_t m, float* y, Epilogue ep) const {
  const int t = resolve_threads(threads);
  if (t <= 1 || in_parallel_region() || m * n_ * k_ < kParallelMacs) {
    forward_serial(x, m, y, ep);
    return;
  }
  const auto xq = quantize_input(x, m);
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
            forward_block(x, xq.get(), rb * rows, std::min(m, (rb + 1) * rows), p0, p1, y, ep);
        },
        Schedule::kStatic);
  } else {
    const int64_t quantum = (m + t - 1) / t;
    const int64_t step = (quantum + kMr - 1) / kMr * kMr;
    parallel_chunks(
        t, t, 1,
        [&](int64_t part, int64_t) {
          const int64_t r0 = std::min(m, part * step), r1 = std::min(m, r0 + step);
          for (int64_t r = r0; r < r1; r += rows)
            forward_block(x, xq.get(), r, std::min(r1, r + rows), 0, panels, y, ep);
        },
        Schedule::kStatic);
  }
}

}  // namespace asdcap::nn
