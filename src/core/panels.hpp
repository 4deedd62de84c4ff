// The packed panel layout of weight matrices (internal): what nn::PackedLinear's kernels read and
// what model files of format version 2 store (docs/model-files.md). An out x in matrix becomes
// ceil(out / 48) panels of in rows of 48 elements: element (j, p) at panel j / 48, row p, column
// j % 48; the columns past `out` in the last panel are zero. Elements are 4 (f32) or 2 (f16, bf16)
// bytes, copied as they are. int8 weights have panels of their own (pack_int8).
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

// int8 panels (asdcap convert --dtype int8): ceil(out / 48) panels of ceil(in / 4) groups of 48 x 4
// bytes, four consecutive inputs of a column side by side: element (j, p) at panel j / 48, group p / 4,
// column j % 48, byte p % 4; the padding (columns past `out`, inputs past `in`) zero. The inputs
// rounded up to a multiple of 4:
inline int64_t int8_inputs(int64_t in) { return (in + 3) / 4 * 4; }
inline int64_t stored_index_int8(int64_t j, int64_t p, int64_t in) {
  return (j / kWidth) * int8_inputs(in) * kWidth + (p / 4) * kWidth * 4 + (j % kWidth) * 4 + p % 4;
}
// Packs int8 `src` (C order: [out, in], or [in, out] when in_out) into `dst` (bytes(out,
// int8_inputs(in), 1) bytes).
void pack_int8(const int8_t* src, int64_t out, int64_t in, bool in_out, int8_t* dst);

// The int8 storage of a weight matrix (asdcap convert --dtype int8), symmetric per output feature j:
// scale[j] = max_p |w(j, p)| / 127 (1 for an all-zero output) and q(j, p) = w(j, p) / scale[j] rounded
// to nearest, ties to even, in [-127, 127]. `w` and `q` in the same order ([out, in], or [in, out]
// when in_out); `scale` has `out` elements.
void quantize_int8(const float* w, int64_t out, int64_t in, bool in_out, int8_t* q, float* scale);

}  // namespace asdcap::panels
