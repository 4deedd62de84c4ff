// GGUF v3 (https://github.com/ggerganov/ggml/blob/master/docs/gguf.md): a little-endian header,
// typed key/value metadata, a tensor table (dims innermost first, ggml type, offset), then the
// tensor data, each tensor aligned to `general.alignment` bytes from the start of the data section.
// GgufView parses a file image without copying tensor data and validates every count, length,
// offset and size against the image; GgufWriter produces one.
#pragma once
#include <cstdint>
#include <cstdio>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include "asdcap/model_file.hpp"

namespace asdcap {

// ggml type numbers used by asdcap (others are rejected by the reader).
enum class GgmlType : uint32_t { F32 = 0, F16 = 1, I8 = 24, I32 = 26, I64 = 27, F64 = 28, BF16 = 30 };
GgmlType ggml_type_of(DType t);

// A metadata value. Integers of every GGUF width are held as int64 (uint64 above INT64_MAX is
// rejected), floats as double. Arrays hold one element kind; nested arrays are rejected.
struct GgufValue {
  enum class Kind { Int, Float, Bool, String, IntArray, FloatArray, BoolArray, StringArray };
  Kind kind = Kind::Int;
  uint32_t gguf_type = 0;  // the stored GGUF type (element type for arrays)
  int64_t i = 0;
  double f = 0;
  bool b = false;
  std::string s;
  std::vector<int64_t> ints;
  std::vector<double> floats;
  std::vector<std::string> strings;
};

struct GgufTensor {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;  // PyTorch order (outermost first): the file's dims reversed
  uint64_t offset = 0;         // absolute offset of the data in the image
  uint64_t nbytes = 0;
};

class GgufView {
 public:
  // Throws FormatError("<name>: ...") on anything malformed or out of bounds.
  static GgufView parse(const void* data, size_t size, const std::string& name);
  // The string value of `general.architecture`, read from the metadata up to that key only (asdcap
  // writes it first), or "" when the file has none. Validates what it reads as parse() does; the
  // rest of the file is not looked at (opening the model checks it).
  static std::string architecture(const void* data, size_t size, const std::string& name);

  uint32_t version = 3;
  uint64_t alignment = 32;
  uint64_t data_offset = 0;  // start of the tensor data section
  std::map<std::string, GgufValue> kv;
  std::vector<std::string> kv_order;
  std::vector<GgufTensor> tensors;  // file order
};

class GgufWriter {
 public:
  explicit GgufWriter(uint64_t alignment = 64);
  void set_int(const std::string& key, int64_t v);  // stored as INT64 unless it fits UINT32/INT32
  void set_uint32(const std::string& key, uint32_t v);
  void set_float(const std::string& key, float v);  // FLOAT32
  void set_bool(const std::string& key, bool v);
  void set_string(const std::string& key, std::string v);
  void set_int_array(const std::string& key, std::vector<int64_t> v);  // INT32 elements if all fit, else INT64
  void set_string_array(const std::string& key, std::vector<std::string> v);
  void set(const std::string& key, GgufValue v);  // any value as read by GgufView (floats stored as FLOAT32)
  // `data` must stay valid until write(); nbytes must equal numel * dtype_size(dtype).
  void add_tensor(const std::string& name, DType dtype, std::vector<int64_t> shape, const void* data, size_t nbytes);
  // Writes the whole file through f (throws IoError on a short write).
  void write(std::FILE* f, const std::string& path_for_errors) const;
  // Atomic write to `path` (see write_file_atomic).
  void write_file(const std::string& path) const;

 private:
  struct Tensor {
    std::string name;
    DType dtype;
    std::vector<int64_t> shape;
    const void* data;
    size_t nbytes;
  };
  uint64_t alignment_;
  std::vector<std::pair<std::string, GgufValue>> kv_;
  std::vector<Tensor> tensors_;
};

}  // namespace asdcap
