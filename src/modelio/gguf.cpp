#include "modelio/gguf.hpp"

#include <cerrno>
#include <cstring>
#include <limits>

#include "asdcap/error.hpp"
#include "core/files.hpp"

namespace asdcap {
namespace {

enum : uint32_t {
  kU8 = 0,
  kI8 = 1,
  kU16 = 2,
  kI16 = 3,
  kU32 = 4,
  kI32 = 5,
  kF32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kU64 = 10,
  kI64 = 11,
  kF64 = 12
};
constexpr uint32_t kMagic = 0x46554747;  // "GGUF" little-endian
constexpr uint32_t kMaxDims = 4;

class Cursor {
 public:
  Cursor(const uint8_t* d, size_t n, const std::string& name) : d_(d), n_(n), name_(name) {}
  [[noreturn]] void fail(const std::string& what) const {
    throw FormatError(name_ + ": not a valid GGUF file: " + what + " (at byte " + std::to_string(pos_) + ")");
  }
  const uint8_t* take(uint64_t k) {
    if (k > n_ - pos_) fail("truncated");
    const uint8_t* p = d_ + pos_;
    pos_ += static_cast<size_t>(k);
    return p;
  }
  template <class T>
  T get() {
    T v;
    std::memcpy(&v, take(sizeof(T)), sizeof(T));
    return v;
  }
  std::string str() {
    uint64_t len = get<uint64_t>();
    if (len > remaining()) fail("string longer than the file");
    const uint8_t* p = take(len);
    return std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(len));
  }
  size_t remaining() const { return n_ - pos_; }
  size_t pos() const { return pos_; }

 private:
  const uint8_t* d_;
  size_t n_;
  size_t pos_ = 0;
  const std::string& name_;
};

size_t scalar_size(uint32_t t) {
  switch (t) {
    case kU8:
    case kI8:
    case kBool: return 1;
    case kU16:
    case kI16: return 2;
    case kU32:
    case kI32:
    case kF32: return 4;
    case kU64:
    case kI64:
    case kF64: return 8;
    default: return 0;
  }
}

// Reads one scalar of type t into v (as Int, Float or Bool).
void read_scalar(Cursor& c, uint32_t t, GgufValue& v) {
  switch (t) {
    case kU8:
      v.kind = GgufValue::Kind::Int;
      v.i = c.get<uint8_t>();
      break;
    case kI8:
      v.kind = GgufValue::Kind::Int;
      v.i = c.get<int8_t>();
      break;
    case kU16:
      v.kind = GgufValue::Kind::Int;
      v.i = c.get<uint16_t>();
      break;
    case kI16:
      v.kind = GgufValue::Kind::Int;
      v.i = c.get<int16_t>();
      break;
    case kU32:
      v.kind = GgufValue::Kind::Int;
      v.i = c.get<uint32_t>();
      break;
    case kI32:
      v.kind = GgufValue::Kind::Int;
      v.i = c.get<int32_t>();
      break;
    case kI64:
      v.kind = GgufValue::Kind::Int;
      v.i = c.get<int64_t>();
      break;
    case kU64: {
      uint64_t u = c.get<uint64_t>();
      if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) c.fail("uint64 value too large");
      v.kind = GgufValue::Kind::Int;
      v.i = static_cast<int64_t>(u);
      break;
    }
    case kF32:
      v.kind = GgufValue::Kind::Float;
      v.f = c.get<float>();
      break;
    case kF64:
      v.kind = GgufValue::Kind::Float;
      v.f = c.get<double>();
      break;
    case kBool: {
      uint8_t b = c.get<uint8_t>();
      if (b > 1) c.fail("bad bool");
      v.kind = GgufValue::Kind::Bool;
      v.b = b;
      break;
    }
    default: c.fail("unknown value type " + std::to_string(t));
  }
}

GgufValue read_value(Cursor& c, uint32_t t) {
  GgufValue v;
  v.gguf_type = t;
  if (t == kString) {
    v.kind = GgufValue::Kind::String;
    v.s = c.str();
  } else if (t == kArray) {
    uint32_t et = c.get<uint32_t>();
    uint64_t n = c.get<uint64_t>();
    v.gguf_type = et;
    if (et == kString) {
      if (n > c.remaining() / 8) c.fail("array longer than the file");
      v.kind = GgufValue::Kind::StringArray;
      v.strings.reserve(static_cast<size_t>(n));
      for (uint64_t k = 0; k < n; ++k) v.strings.push_back(c.str());
    } else {
      size_t es = scalar_size(et);
      if (es == 0) c.fail("unsupported array element type " + std::to_string(et));
      if (n > c.remaining() / es) c.fail("array longer than the file");
      GgufValue e;
      for (uint64_t k = 0; k < n; ++k) {
        read_scalar(c, et, e);
        if (e.kind == GgufValue::Kind::Int)
          v.ints.push_back(e.i);
        else if (e.kind == GgufValue::Kind::Float)
          v.floats.push_back(e.f);
        else
          v.ints.push_back(e.b);
      }
      v.kind = et == kF32 || et == kF64 ? GgufValue::Kind::FloatArray
               : et == kBool            ? GgufValue::Kind::BoolArray
                                        : GgufValue::Kind::IntArray;
    }
  } else {
    read_scalar(c, t, v);
  }
  return v;
}

bool dtype_of(uint32_t ggml, DType& out) {
  switch (static_cast<GgmlType>(ggml)) {
    case GgmlType::F32: out = DType::F32; return true;
    case GgmlType::F16: out = DType::F16; return true;
    case GgmlType::BF16: out = DType::BF16; return true;
    case GgmlType::F64: out = DType::F64; return true;
    case GgmlType::I64: out = DType::I64; return true;
    case GgmlType::I32: out = DType::I32; return true;
    case GgmlType::I8: out = DType::I8; return true;
  }
  return false;
}

uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

}  // namespace

GgmlType ggml_type_of(DType t) {
  switch (t) {
    case DType::F32: return GgmlType::F32;
    case DType::F16: return GgmlType::F16;
    case DType::BF16: return GgmlType::BF16;
    case DType::F64: return GgmlType::F64;
    case DType::I64: return GgmlType::I64;
    case DType::I32: return GgmlType::I32;
    case DType::I8: return GgmlType::I8;
  }
  return GgmlType::F32;
}

namespace {

struct Header {
  uint32_t version;
  uint64_t n_tensors, n_kv;
};

// The magic, the version and the two counts, checked; leaves `c` at the first metadata key.
Header read_header(Cursor& c, size_t size, const std::string& name) {
  if (size < 24 || c.get<uint32_t>() != kMagic) throw FormatError(name + ": not a GGUF file (bad magic)");
  Header h{};
  h.version = c.get<uint32_t>();
  if (h.version != 3)
    throw FormatError(name + ": GGUF version " + std::to_string(h.version) + " is not supported (need 3)");
  h.n_tensors = c.get<uint64_t>();
  h.n_kv = c.get<uint64_t>();
  if (h.n_kv > c.remaining() / 13) c.fail("metadata count too large");
  return h;
}

}  // namespace

std::string GgufView::architecture(const void* data, size_t size, const std::string& name) {
  Cursor c(static_cast<const uint8_t*>(data), size, name);
  const uint64_t n_kv = read_header(c, size, name).n_kv;
  for (uint64_t k = 0; k < n_kv; ++k) {
    const std::string key = c.str();
    const uint32_t type = c.get<uint32_t>();
    GgufValue v = read_value(c, type);
    if (key == "general.architecture") return v.kind == GgufValue::Kind::String ? v.s : std::string();
  }
  return "";
}

GgufView GgufView::parse(const void* data, size_t size, const std::string& name) {
  Cursor c(static_cast<const uint8_t*>(data), size, name);
  GgufView g;
  const Header header = read_header(c, size, name);
  g.version = header.version;
  const uint64_t n_tensors = header.n_tensors, n_kv = header.n_kv;
  for (uint64_t k = 0; k < n_kv; ++k) {
    std::string key = c.str();
    uint32_t type = c.get<uint32_t>();
    GgufValue v = read_value(c, type);
    if (!g.kv.emplace(key, std::move(v)).second) c.fail("duplicate key " + key);
    g.kv_order.push_back(key);
  }
  if (auto it = g.kv.find("general.alignment"); it != g.kv.end()) {
    if (it->second.kind != GgufValue::Kind::Int || it->second.i <= 0 || it->second.i > 65536 ||
        (it->second.i & (it->second.i - 1)))
      c.fail("general.alignment must be a power of two");
    g.alignment = static_cast<uint64_t>(it->second.i);
  }
  if (n_tensors > c.remaining() / 24) c.fail("tensor count too large");
  struct Raw {
    uint64_t rel;
  };
  std::vector<Raw> raw;
  for (uint64_t k = 0; k < n_tensors; ++k) {
    GgufTensor t;
    t.name = c.str();
    uint32_t nd = c.get<uint32_t>();
    if (nd > kMaxDims) c.fail("tensor " + t.name + " has " + std::to_string(nd) + " dimensions");
    std::vector<int64_t> dims(nd);
    uint64_t numel = 1;
    for (uint32_t d = 0; d < nd; ++d) {
      uint64_t v = c.get<uint64_t>();
      if (v > (uint64_t{1} << 40) || (v && numel > (uint64_t{1} << 48) / v)) c.fail("tensor " + t.name + " too large");
      dims[d] = static_cast<int64_t>(v);
      numel *= v;
    }
    t.shape.assign(dims.rbegin(), dims.rend());
    uint32_t type = c.get<uint32_t>();
    if (!dtype_of(type, t.dtype)) c.fail("tensor " + t.name + " has unsupported ggml type " + std::to_string(type));
    t.nbytes = numel * dtype_size(t.dtype);
    raw.push_back({c.get<uint64_t>()});
    if (raw.back().rel % g.alignment) c.fail("tensor " + t.name + " is not aligned");
    g.tensors.push_back(std::move(t));
  }
  g.data_offset = align_up(c.pos(), g.alignment);
  if (g.data_offset > size) throw FormatError(name + ": GGUF truncated before its tensor data");
  const uint64_t data_size = size - g.data_offset;
  for (size_t k = 0; k < g.tensors.size(); ++k) {
    GgufTensor& t = g.tensors[k];
    if (raw[k].rel > data_size || t.nbytes > data_size - raw[k].rel)
      throw FormatError(name + ": GGUF truncated or corrupt: tensor " + t.name + " (" + std::to_string(t.nbytes) +
                        " bytes at data offset " + std::to_string(raw[k].rel) + ") extends past the end of the file");
    t.offset = g.data_offset + raw[k].rel;
  }
  return g;
}

GgufWriter::GgufWriter(uint64_t alignment) : alignment_(alignment) {
  set_uint32("general.alignment", static_cast<uint32_t>(alignment));
}

void GgufWriter::set(const std::string& key, GgufValue v) {
  for (auto& kv : kv_)
    if (kv.first == key) {
      kv.second = std::move(v);
      return;
    }
  kv_.emplace_back(key, std::move(v));
}

void GgufWriter::set_int(const std::string& key, int64_t v) {
  GgufValue g;
  g.kind = GgufValue::Kind::Int;
  g.i = v;
  g.gguf_type = v >= 0 && v <= std::numeric_limits<uint32_t>::max()                                    ? kU32
                : v >= std::numeric_limits<int32_t>::min() && v <= std::numeric_limits<int32_t>::max() ? kI32
                                                                                                       : kI64;
  set(key, std::move(g));
}
void GgufWriter::set_uint32(const std::string& key, uint32_t v) {
  GgufValue g;
  g.kind = GgufValue::Kind::Int;
  g.i = v;
  g.gguf_type = kU32;
  set(key, std::move(g));
}
void GgufWriter::set_float(const std::string& key, float v) {
  GgufValue g;
  g.kind = GgufValue::Kind::Float;
  g.f = v;
  g.gguf_type = kF32;
  set(key, std::move(g));
}
void GgufWriter::set_bool(const std::string& key, bool v) {
  GgufValue g;
  g.kind = GgufValue::Kind::Bool;
  g.b = v;
  g.gguf_type = kBool;
  set(key, std::move(g));
}
void GgufWriter::set_string(const std::string& key, std::string v) {
  GgufValue g;
  g.kind = GgufValue::Kind::String;
  g.s = std::move(v);
  g.gguf_type = kString;
  set(key, std::move(g));
}
void GgufWriter::set_int_array(const std::string& key, std::vector<int64_t> v) {
  GgufValue g;
  g.kind = GgufValue::Kind::IntArray;
  g.gguf_type = kI32;
  for (int64_t x : v)
    if (x < std::numeric_limits<int32_t>::min() || x > std::numeric_limits<int32_t>::max()) g.gguf_type = kI64;
  g.ints = std::move(v);
  set(key, std::move(g));
}
void GgufWriter::set_string_array(const std::string& key, std::vector<std::string> v) {
  GgufValue g;
  g.kind = GgufValue::Kind::StringArray;
  g.gguf_type = kString;
  g.strings = std::move(v);
  set(key, std::move(g));
}

void GgufWriter::add_tensor(const std::string& name, DType dtype, std::vector<int64_t> shape, const void* data,
                            size_t nbytes) {
  uint64_t numel = 1;
  for (int64_t d : shape) {
    if (d < 0) throw Error("GGUF writer: negative dimension in " + name);
    numel *= static_cast<uint64_t>(d);
  }
  if (shape.size() > kMaxDims) throw Error("GGUF writer: tensor " + name + " has more than 4 dimensions");
  if (numel * dtype_size(dtype) != nbytes) throw Error("GGUF writer: size mismatch for " + name);
  for (const auto& t : tensors_)
    if (t.name == name) throw Error("GGUF writer: duplicate tensor " + name);
  tensors_.push_back({name, dtype, std::move(shape), data, nbytes});
}

namespace {

class Out {
 public:
  Out(std::FILE* f, const std::string& path) : f_(f), path_(path) {}
  void bytes(const void* p, size_t n) {
    if (n && std::fwrite(p, 1, n, f_) != n) throw IoError(path_ + ": write failed: " + std::strerror(errno));
    pos_ += n;
  }
  template <class T>
  void put(T v) {
    bytes(&v, sizeof v);
  }
  void str(const std::string& s) {
    put<uint64_t>(s.size());
    bytes(s.data(), s.size());
  }
  void pad_to(uint64_t a) {
    static const char zeros[256] = {};
    while (pos_ % a) bytes(zeros, std::min<uint64_t>(a - pos_ % a, sizeof zeros));
  }
  uint64_t pos() const { return pos_; }

 private:
  std::FILE* f_;
  const std::string& path_;
  uint64_t pos_ = 0;
};

void write_int_as(Out& o, uint32_t type, int64_t v) {
  switch (type) {
    case kU8: o.put(static_cast<uint8_t>(v)); break;
    case kI8: o.put(static_cast<int8_t>(v)); break;
    case kU16: o.put(static_cast<uint16_t>(v)); break;
    case kI16: o.put(static_cast<int16_t>(v)); break;
    case kU32: o.put(static_cast<uint32_t>(v)); break;
    case kI32: o.put(static_cast<int32_t>(v)); break;
    case kU64: o.put(static_cast<uint64_t>(v)); break;
    default: o.put(static_cast<int64_t>(v)); break;
  }
}

// The integer type to write: the recorded one when it is an integer type, else INT64.
uint32_t int_type(uint32_t t) {
  switch (t) {
    case kU8:
    case kI8:
    case kU16:
    case kI16:
    case kU32:
    case kI32:
    case kU64:
    case kI64: return t;
    default: return kI64;
  }
}

}  // namespace

void GgufWriter::write(std::FILE* f, const std::string& path) const {
  Out o(f, path);
  o.put(kMagic);
  o.put<uint32_t>(3);
  o.put<uint64_t>(tensors_.size());
  o.put<uint64_t>(kv_.size());
  for (const auto& [key, v] : kv_) {
    o.str(key);
    switch (v.kind) {
      case GgufValue::Kind::Int:
        o.put<uint32_t>(int_type(v.gguf_type));
        write_int_as(o, int_type(v.gguf_type), v.i);
        break;
      case GgufValue::Kind::Float:
        o.put<uint32_t>(kF32);
        o.put(static_cast<float>(v.f));
        break;
      case GgufValue::Kind::Bool:
        o.put<uint32_t>(kBool);
        o.put<uint8_t>(v.b);
        break;
      case GgufValue::Kind::String:
        o.put<uint32_t>(kString);
        o.str(v.s);
        break;
      case GgufValue::Kind::IntArray:
        o.put<uint32_t>(kArray);
        o.put<uint32_t>(int_type(v.gguf_type));
        o.put<uint64_t>(v.ints.size());
        for (int64_t x : v.ints) write_int_as(o, int_type(v.gguf_type), x);
        break;
      case GgufValue::Kind::FloatArray:
        o.put<uint32_t>(kArray);
        o.put<uint32_t>(kF32);
        o.put<uint64_t>(v.floats.size());
        for (double x : v.floats) o.put(static_cast<float>(x));
        break;
      case GgufValue::Kind::BoolArray:
        o.put<uint32_t>(kArray);
        o.put<uint32_t>(kBool);
        o.put<uint64_t>(v.ints.size());
        for (int64_t x : v.ints) o.put<uint8_t>(x != 0);
        break;
      case GgufValue::Kind::StringArray:
        o.put<uint32_t>(kArray);
        o.put<uint32_t>(kString);
        o.put<uint64_t>(v.strings.size());
        for (const auto& s : v.strings) o.str(s);
        break;
    }
  }
  uint64_t offset = 0;
  for (const auto& t : tensors_) {
    o.str(t.name);
    o.put<uint32_t>(static_cast<uint32_t>(t.shape.size()));
    for (auto it = t.shape.rbegin(); it != t.shape.rend(); ++it) o.put<uint64_t>(static_cast<uint64_t>(*it));
    o.put<uint32_t>(static_cast<uint32_t>(ggml_type_of(t.dtype)));
    o.put<uint64_t>(offset);
    offset = align_up(offset + t.nbytes, alignment_);
  }
  o.pad_to(alignment_);
  for (const auto& t : tensors_) {
    o.bytes(t.data, t.nbytes);
    o.pad_to(alignment_);
  }
}

void GgufWriter::write_file(const std::string& path) const {
  write_file_atomic(path, [&](std::FILE* f) { write(f, path); });
}

}  // namespace asdcap
