// Every float through the vector restatements of src/nn/libm_vector.cpp against the scalar loops
// they replace, compared bit for bit (NaN against NaN): nn::gelu_tanh_serial against GPT-2's GELU
// with std::tanh, nn::exp_shifted_serial (shift 0) against std::exp. Built and run by
// scripts/dev/libm_exhaustive.sh; prints the first mismatches and the counts, exits 1 on any.
#include <omp.h>

#include <atomic>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <vector>

#include "nn/libm_vector.hpp"

namespace {

bool same(float got, float want) {
  return std::isnan(want) ? std::isnan(got) : std::bit_cast<uint32_t>(got) == std::bit_cast<uint32_t>(want);
}

}  // namespace

int main() {
  constexpr uint64_t kTotal = uint64_t{1} << 32, kChunk = uint64_t{1} << 16;
  std::atomic<uint64_t> bad_gelu{0}, bad_exp{0};
#pragma omp parallel for schedule(dynamic)
  for (int64_t c = 0; c < static_cast<int64_t>(kTotal / kChunk); ++c) {
    std::vector<float> x(kChunk);
    for (uint64_t i = 0; i < kChunk; ++i) x[i] = std::bit_cast<float>(static_cast<uint32_t>(c * kChunk + i));
    std::vector<float> g = x, e = x;
    asdcap::nn::gelu_tanh_serial(g.data(), static_cast<int64_t>(kChunk));
    asdcap::nn::exp_shifted_serial(e.data(), static_cast<int64_t>(kChunk), 0.f);
    for (uint64_t i = 0; i < kChunk; ++i) {
      const float v = x[i];
      // The scalar loops as the library's optimised build computed them: v + 0.044715 v^3 fused into
      // fma(v, 0.044715 v v, v), every other operation rounded separately.
      const float want_gelu = 0.5f * v * (1.0f + std::tanh(0.79788456080286536f * std::fma(v, 0.044715f * v * v, v)));
      const float want_exp = std::exp(v - 0.f);
      if (!same(g[i], want_gelu) && bad_gelu.fetch_add(1) < 10)
        std::printf("gelu x = %a: %a, want %a\n", v, g[i], want_gelu);
      if (!same(e[i], want_exp) && bad_exp.fetch_add(1) < 10)
        std::printf("exp x = %a: %a, want %a\n", v, e[i], want_exp);
    }
  }
  std::printf("over all %llu floats: %llu GELU mismatches, %llu exp mismatches\n",
              static_cast<unsigned long long>(kTotal), static_cast<unsigned long long>(bad_gelu.load()),
              static_cast<unsigned long long>(bad_exp.load()));
  return bad_gelu.load() + bad_exp.load() == 0 ? 0 : 1;
}
