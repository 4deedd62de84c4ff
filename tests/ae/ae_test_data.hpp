// Synthetic training vectors that the PyTorch cross-check script (scripts/dev/ae_torch_crosscheck.py)
// generates identically: integer arithmetic only, every value an exact float.
#pragma once
#include <cstdint>
#include <vector>

namespace asdcap::test {

// Chris Wellons' "lowbias32" integer hash.
inline uint32_t lowbias32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352dU;
  x ^= x >> 15;
  x *= 0x846ca68bU;
  x ^= x >> 16;
  return x;
}

// rows x 640: row i of class c = i % 7 is a class pattern plus hash noise, in steps of 1/16.
inline std::vector<float> ae_synthetic_vectors(int64_t rows, uint32_t salt = 0) {
  std::vector<float> v(static_cast<size_t>(rows * 640));
  for (int64_t i = 0; i < rows; ++i) {
    const int64_t c = i % 7;
    for (int64_t j = 0; j < 640; ++j) {
      const int64_t k = ((c + 1) * (j % 128) * 37 + (j / 128) * 11 + c * 101) % 97;
      const int64_t noise = lowbias32(static_cast<uint32_t>(i * 640 + j) ^ salt) % 17;
      v[static_cast<size_t>(i * 640 + j)] = static_cast<float>(k + noise - 56) / 16.0f;
    }
  }
  return v;
}

}  // namespace asdcap::test
