// A model file's float tensor as the packed GEMM's weight view (f32, f16, bf16 or int8 as stored), and a
// model file's weight matrix as a PackedLinear.
#pragma once
#include <initializer_list>
#include <memory>
#include <string>

#include "asdcap/error.hpp"
#include "asdcap/model_file.hpp"
#include "asdcap/nn.hpp"

namespace asdcap::nn {

// The packed GEMM's weight type of a stored float tensor's dtype (f32, f16, bf16 or int8); ModelError
// naming tensor `name` for any other dtype.
inline WeightType weight_type(DType t, const std::string& name) {
  switch (t) {
    case DType::F32: return WeightType::kF32;
    case DType::F16: return WeightType::kF16;
    case DType::BF16: return WeightType::kBF16;
    case DType::I8: return WeightType::kI8;
    default: throw ModelError("tensor " + name + " is " + dtype_name(t) + ", not a float tensor");
  }
}

inline WeightView weight_view(const TensorInfo& t) {
  if (t.dtype == DType::I8 && !t.scale)
    throw ModelError("tensor " + t.name + " is " + dtype_name(t.dtype) + ", not a float tensor");
  return {t.data, weight_type(t.dtype, t.name), t.scale};
}

// The Linear layer of weight tensor `name` (shape checked: [out, in...], or [in, out] with
// Layout::kInOut) and an optional bias: computed straight from the mapping when the file stores the
// weights packed (nothing copied, the pages shared with other processes), else packed in memory.
inline PackedLinear linear_from(const std::shared_ptr<const ModelFile>& file, const std::string& name,
                                std::initializer_list<int64_t> shape, const float* bias,
                                PackedLinear::Layout layout = PackedLinear::Layout::kOutIn) {
  const TensorInfo& t = file->float_weights(name, shape);
  const int out_dim = layout == PackedLinear::Layout::kOutIn ? 0 : 1;
  if (t.shape.size() < 2 || (out_dim == 1 && t.shape.size() != 2) || t.numel() <= 0)
    throw ModelError(file->path() + ": tensor " + name + " of shape " + format_shape(t.shape) + " is no Linear weight");
  const int64_t out = t.shape[static_cast<size_t>(out_dim)], in = t.numel() / out;
  if (t.packed_out_dim < 0) {
    file->note_packed_in_memory();
    return PackedLinear(weight_view(t), out, in, bias, layout);
  }
  if (t.packed_out_dim != out_dim)
    throw ModelError(file->path() + ": tensor " + name + " is stored packed with dimension " +
                     std::to_string(t.packed_out_dim) + " as its output, not " + std::to_string(out_dim));
  return PackedLinear::over_panels(weight_view(t), out, in, bias, file);
}

}  // namespace asdcap::nn
