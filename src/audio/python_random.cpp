// CPython's random.Random(seed).randrange(n), bit for bit: MT19937 seeded with init_by_array over
// the seed's 32-bit words (least significant first), _randbelow via getrandbits with rejection.
#include <array>
#include <bit>
#include <vector>

#include "asdcap/audio.hpp"
#include "asdcap/error.hpp"

namespace asdcap {
namespace {

class Mt19937 {
 public:
  explicit Mt19937(const std::vector<uint32_t>& key) { init_by_array(key); }

  uint32_t next() {
    static constexpr uint32_t kMag01[2] = {0x0u, 0x9908b0dfu};
    if (index_ >= kN) {
      int kk = 0;
      for (; kk < kN - kM; ++kk) {
        const uint32_t y = (mt_[kk] & kUpper) | (mt_[kk + 1] & kLower);
        mt_[kk] = mt_[kk + kM] ^ (y >> 1) ^ kMag01[y & 1u];
      }
      for (; kk < kN - 1; ++kk) {
        const uint32_t y = (mt_[kk] & kUpper) | (mt_[kk + 1] & kLower);
        mt_[kk] = mt_[kk + (kM - kN)] ^ (y >> 1) ^ kMag01[y & 1u];
      }
      const uint32_t y = (mt_[kN - 1] & kUpper) | (mt_[0] & kLower);
      mt_[kN - 1] = mt_[kM - 1] ^ (y >> 1) ^ kMag01[y & 1u];
      index_ = 0;
    }
    uint32_t y = mt_[index_++];
    y ^= (y >> 11);
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= (y >> 18);
    return y;
  }

  // random.getrandbits(k) for 1 <= k <= 64.
  uint64_t getrandbits(int k) {
    if (k <= 32) return next() >> (32 - k);
    uint64_t result = 0;
    for (int word = 0; k > 0; ++word, k -= 32) {
      uint32_t r = next();
      if (k < 32) r >>= (32 - k);
      result |= static_cast<uint64_t>(r) << (32 * word);
    }
    return result;
  }

 private:
  static constexpr int kN = 624, kM = 397;
  static constexpr uint32_t kUpper = 0x80000000u, kLower = 0x7fffffffu;

  void init_genrand(uint32_t s) {
    mt_[0] = s;
    for (int i = 1; i < kN; ++i) mt_[i] = 1812433253u * (mt_[i - 1] ^ (mt_[i - 1] >> 30)) + static_cast<uint32_t>(i);
    index_ = kN;
  }

  void init_by_array(const std::vector<uint32_t>& key) {
    init_genrand(19650218u);
    int i = 1;
    size_t j = 0;
    const int len = static_cast<int>(key.size());
    for (int k = (kN > len ? kN : len); k; --k) {
      mt_[i] = (mt_[i] ^ ((mt_[i - 1] ^ (mt_[i - 1] >> 30)) * 1664525u)) + key[j] + static_cast<uint32_t>(j);
      ++i;
      ++j;
      if (i >= kN) {
        mt_[0] = mt_[kN - 1];
        i = 1;
      }
      if (j >= key.size()) j = 0;
    }
    for (int k = kN - 1; k; --k) {
      mt_[i] = (mt_[i] ^ ((mt_[i - 1] ^ (mt_[i - 1] >> 30)) * 1566083941u)) - static_cast<uint32_t>(i);
      ++i;
      if (i >= kN) {
        mt_[0] = mt_[kN - 1];
        i = 1;
      }
    }
    mt_[0] = 0x80000000u;
    index_ = kN;
  }

  std::array<uint32_t, kN> mt_{};
  int index_ = kN;
};

}  // namespace

int64_t python_randrange(uint64_t seed, int64_t n) {
  if (n < 1) throw Error("randrange: empty range (n = " + std::to_string(n) + ")");
  std::vector<uint32_t> key{static_cast<uint32_t>(seed)};
  if (seed >> 32) key.push_back(static_cast<uint32_t>(seed >> 32));
  Mt19937 mt(key);
  const auto limit = static_cast<uint64_t>(n);
  const int k = std::bit_width(limit);
  uint64_t r = mt.getrandbits(k);
  while (r >= limit) r = mt.getrandbits(k);
  return static_cast<int64_t>(r);
}

}  // namespace asdcap
