// A model file's float tensor as the packed GEMM's weight view (f32, f16 or bf16 as stored).
#pragma once
#include "asdcap/error.hpp"
#include "asdcap/model_file.hpp"
#include "asdcap/nn.hpp"

namespace asdcap::nn {

inline WeightView weight_view(const TensorInfo& t) {
  switch (t.dtype) {
    case DType::F32: return {t.data, WeightType::kF32};
    case DType::F16: return {t.data, WeightType::kF16};
    case DType::BF16: return {t.data, WeightType::kBF16};
    default: throw ModelError("tensor " + t.name + " is " + dtype_name(t.dtype) + ", not a float tensor");
  }
}

}  // namespace asdcap::nn
