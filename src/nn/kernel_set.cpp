// Run-time choice of the CPU kernel set (see asdcap/nn.hpp).
#include <cstdlib>
#include <string>

#include "asdcap/error.hpp"
#include "asdcap/nn.hpp"

namespace asdcap::nn {

namespace {

bool cpu_has_avx512() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
}

KernelSet choose_kernel_set() {
  const bool avx512 = cpu_has_avx512();
  const char* forced = std::getenv("ASDCAP_KERNELS");
  if (!forced || !*forced) return avx512 ? KernelSet::kAvx512 : KernelSet::kAvx2;
  const std::string f = forced;
  if (f == "avx2") return KernelSet::kAvx2;
  if (f == "avx512") {
    if (!avx512) throw InvalidArgument("ASDCAP_KERNELS=avx512: this CPU has no AVX-512 (F, BW, DQ and VL)");
    return KernelSet::kAvx512;
  }
  throw InvalidArgument("ASDCAP_KERNELS=" + f + ": expected avx2 or avx512");
}

}  // namespace

bool cpu_has_avx2() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
}

KernelSet kernel_set() {
  // A fact of the process (the CPU it runs on and its environment), fixed at first use.
  static const KernelSet set = choose_kernel_set();
  return set;
}

const char* kernel_set_name(KernelSet set) { return set == KernelSet::kAvx512 ? "avx512" : "avx2"; }

}  // namespace asdcap::nn
