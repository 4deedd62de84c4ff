#include "core/panels.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "asdcap/error.hpp"

namespace asdcap::panels {

size_t bytes(int64_t out, int64_t in, size_t element_size) {
  constexpr int64_t kMaxSide = int64_t{1} << 31, kMaxElements = int64_t{1} << 40;
  if (out <= 0 || in <= 0 || out > kMaxSide || in > kMaxSide || out * in > kMaxElements)
    throw ModelError("linear layer of " + std::to_string(out) + " x " + std::to_string(in));
  return static_cast<size_t>((out + kWidth - 1) / kWidth * in * kWidth) * element_size;
}

namespace {

// T: float or the 16-bit pattern. The source is read bytewise: a model file's tensor need not be
// aligned to its element size.
template <typename T>
void pack_as(const unsigned char* w, int64_t n, int64_t k, bool in_out, T* dst) {
  auto put = [&](int64_t j, int64_t p, int64_t at) {
    std::memcpy(dst + (j / kWidth) * k * kWidth + p * kWidth + j % kWidth, w + at * static_cast<int64_t>(sizeof(T)),
                sizeof(T));
  };
  // The source is read in its own order (w[n, k] row by row, w[k, n] row by row).
  if (!in_out) {
    for (int64_t j = 0; j < n; ++j)
      for (int64_t p = 0; p < k; ++p) put(j, p, j * k + p);
  } else {
    for (int64_t p = 0; p < k; ++p)
      for (int64_t j = 0; j < n; ++j) put(j, p, p * n + j);
  }
}

}  // namespace

void pack(const void* src, int64_t out, int64_t in, bool in_out, size_t element_size, void* dst) {
  const int64_t panels = (out + kWidth - 1) / kWidth;
  auto* d = static_cast<unsigned char*>(dst);
  if (const int64_t pad = panels * kWidth - out; pad > 0)
    for (int64_t p = 0; p < in; ++p)
      std::memset(d + ((panels - 1) * in * kWidth + p * kWidth + (kWidth - pad)) * element_size, 0,
                  static_cast<size_t>(pad) * element_size);
  const auto* s = static_cast<const unsigned char*>(src);
  if (element_size == 4)
    pack_as(s, out, in, in_out, reinterpret_cast<uint32_t*>(d));
  else
    pack_as(s, out, in, in_out, reinterpret_cast<uint16_t*>(d));
}

void pack_int8(const int8_t* src, int64_t out, int64_t in, bool in_out, int8_t* dst) {
  std::memset(dst, 0, bytes(out, int8_inputs(in), 1));
  for (int64_t j = 0; j < out; ++j)
    for (int64_t p = 0; p < in; ++p) dst[stored_index_int8(j, p, in)] = src[in_out ? p * out + j : j * in + p];
}

void quantize_int8(const float* w, int64_t out, int64_t in, bool in_out, int8_t* q, float* scale) {
  // Element (j, p) of w and q.
  const auto at = [&](int64_t j, int64_t p) { return in_out ? p * out + j : j * in + p; };
  for (int64_t j = 0; j < out; ++j) {
    float top = 0.f;
    for (int64_t p = 0; p < in; ++p) top = std::max(top, std::fabs(w[at(j, p)]));
    const float s = top > 0.f ? top / 127.f : 1.f;
    scale[j] = s;
    for (int64_t p = 0; p < in; ++p)
      q[at(j, p)] = static_cast<int8_t>(std::clamp(std::nearbyint(w[at(j, p)] / s), -127.f, 127.f));
  }
}

}  // namespace asdcap::panels
