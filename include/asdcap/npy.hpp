// NumPy .npy files (format 1.0-3.0, little-endian, C order): float32, float64 and int64.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace asdcap {

struct NpyArray {
  std::string dtype;           // "f4", "f8" or "i8"
  std::vector<int64_t> shape;  // empty for a scalar
  std::vector<char> bytes;     // raw little-endian data, C order

  int64_t size() const;  // number of elements
  // Copies of the data converted to float / double / int64 (any of the three dtypes).
  std::vector<float> as_float() const;
  std::vector<double> as_double() const;
  std::vector<int64_t> as_int64() const;
};

NpyArray read_npy(const std::string& path);
// The same from bytes in memory; `name` stands for the file in messages.
NpyArray read_npy_bytes(const void* data, size_t size, const std::string& name);

// Writes atomically (temporary file + rename): on error no file is left at `path`.
void write_npy(const std::string& path, const float* data, const std::vector<int64_t>& shape);
void write_npy(const std::string& path, const int64_t* data, const std::vector<int64_t>& shape);

}  // namespace asdcap
