// nn::PackedLinear's kernel for the avx512 kernel set (AVX-512: 8 x 48 register tiles; this file is compiled for
// x86-64-v4 (src/nn/CMakeLists.txt)).
#include "packed_kernel.inc"

namespace asdcap::nn::packed {

const Kernel& avx512_kernel() { return kThisKernel; }

}  // namespace asdcap::nn::packed
