// nn::PackedLinear's kernel for the avx2 kernel set (AVX2 + FMA: 6 x 16 register tiles).
#include "packed_kernel.inc"

namespace asdcap::nn::packed {

const Kernel& avx2_kernel() { return kThisKernel; }

}  // namespace asdcap::nn::packed
