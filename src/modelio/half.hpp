// IEEE binary16 / bfloat16 <-> float conversions (internal to modelio).
#pragma once
#include <bit>
#include <cstdint>

namespace asdcap::modelio {

inline float half_to_float(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff;
  uint32_t bits;
  if (exp == 0) {
    if (man == 0) {
      bits = sign;
    } else {  // subnormal: renormalise
      int e = -1;
      do {
        ++e;
        man <<= 1;
      } while (!(man & 0x400));
      bits = sign | (static_cast<uint32_t>(127 - 15 - e) << 23) | ((man & 0x3ff) << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (man << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
  }
  return std::bit_cast<float>(bits);
}

// Round to nearest even; overflow to infinity; NaN stays NaN.
inline uint16_t float_to_half(float f) {
  uint32_t x = std::bit_cast<uint32_t>(f);
  uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000);
  uint32_t ax = x & 0x7fffffffu;
  if (ax >= 0x7f800000u) return sign | 0x7c00 | (ax > 0x7f800000u ? 0x200 : 0);
  if (ax >= 0x477ff000u) return sign | 0x7c00;  // >= 65520 rounds to infinity
  if (ax < 0x38800000u) {                       // below the smallest normal half: subnormal or zero
    if (ax < 0x33000000u) return sign;          // < 2^-25 rounds to zero
    uint32_t man = (ax & 0x7fffff) | 0x800000;
    int shift = 126 - static_cast<int>(ax >> 23);  // 14 + (-(e - 127)) - 1 ... bits to drop beyond 13
    uint32_t drop = static_cast<uint32_t>(shift);  // in [14, 24]
    uint32_t q = man >> drop;
    uint32_t rem = man & ((1u << drop) - 1), halfway = 1u << (drop - 1);
    if (rem > halfway || (rem == halfway && (q & 1))) ++q;
    return sign | static_cast<uint16_t>(q);
  }
  uint32_t h = ((ax >> 13) - ((127 - 15) << 10));
  uint32_t rem = ax & 0x1fff;
  if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) ++h;
  return sign | static_cast<uint16_t>(h);
}

inline float bf16_to_float(uint16_t b) { return std::bit_cast<float>(static_cast<uint32_t>(b) << 16); }

// The upper 16 bits of a float32, rounded to nearest even (as PyTorch's .to(torch.bfloat16)); a NaN
// stays a (quiet) NaN, a value that rounds past the largest bfloat16 becomes infinity.
inline uint16_t float_to_bf16(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40);
  return static_cast<uint16_t>((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

// GGUF's general.file_type (llama.cpp's numbering): 0 all f32, 1 mostly f16, 32 mostly bf16.
inline uint32_t gguf_file_type(bool any_f16, bool any_bf16) { return any_bf16 ? 32 : any_f16 ? 1 : 0; }

}  // namespace asdcap::modelio
