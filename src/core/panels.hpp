// The packed panel layout of weight matrices (internal): what nn::PackedLinear's kernels read and
// what model files of format version 2 store (docs/model-files.md). An out x in matrix becomes
// ceil(out / 48) panels of in rows of 48 elements: element (j, p) at panel j / 48, row p, column
// j % 48; the columns past `out` in the last panel are zero. Elements are 4 (f32) or 2 (f16, bf16)
// bytes, copied as they are.
#pragma once
#include <cstddef>
#include <cstdint>

namespace asdcap::panels {

inline constexpr int64_t kWidth = 48;

// Bytes of an out x in matrix's panels; ModelError when a side is not positive or the matrix too large
// (sides up to 2^31, up to 2^40 elements).
size_t bytes(int64_t out, int64_t in, size_t element_size);

// Where element (j, p) of a matrix with `in` inputs sits in its panels, in elements.
inline int64_t stored_index(int64_t j, int64_t p, int64_t in) {
  return (j / kWidth) * in * kWidth + p * kWidth + j % kWidth;
}

// Packs `src` (C order: [out, in], or [in, out] when in_out) into `dst` (bytes(...) bytes). Neither
// needs any alignment.
void pack(const void* src, int64_t out, int64_t in, bool in_out, size_t element_size, void* dst);

}  // namespace asdcap::panels
