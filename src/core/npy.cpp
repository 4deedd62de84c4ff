#include "asdcap/npy.hpp"

#include <cerrno>
#include <cstring>
#include <sstream>
#include <string_view>

#include "asdcap/error.hpp"
#include "core/files.hpp"

namespace asdcap {

int64_t NpyArray::size() const {
  int64_t n = 1;
  for (auto d : shape) n *= d;
  return n;
}

namespace {

template <typename Out>
std::vector<Out> convert(const NpyArray& a) {
  const int64_t n = a.size();
  std::vector<Out> out(static_cast<size_t>(n));
  auto copy = [&](auto tag) {
    using In = decltype(tag);
    for (int64_t i = 0; i < n; ++i) {
      In v;
      std::memcpy(&v, a.bytes.data() + i * static_cast<int64_t>(sizeof(In)), sizeof(In));
      out[static_cast<size_t>(i)] = static_cast<Out>(v);
    }
  };
  if (a.dtype == "f4")
    copy(float{});
  else if (a.dtype == "f8")
    copy(double{});
  else if (a.dtype == "i8")
    copy(int64_t{});
  else
    throw FormatError("npy: unsupported dtype " + a.dtype);
  return out;
}

std::string header_for(const char* descr, const std::vector<int64_t>& shape) {
  std::ostringstream h;
  h << "{'descr': '" << descr << "', 'fortran_order': False, 'shape': (";
  for (size_t i = 0; i < shape.size(); ++i) h << shape[i] << (shape.size() == 1 || i + 1 < shape.size() ? "," : "");
  h << "), }";
  std::string s = h.str();
  // Total header (magic 6 + version 2 + len 2 + dict + '\n') padded to a multiple of 64.
  size_t total = 10 + s.size() + 1;
  s.append((64 - total % 64) % 64, ' ');
  s.push_back('\n');
  std::string out("\x93NUMPY\x01\x00", 8);
  out.push_back(static_cast<char>(s.size() & 0xff));
  out.push_back(static_cast<char>(s.size() >> 8));
  return out + s;
}

void write_any(const std::string& path, const char* descr, const void* data, size_t elem,
               const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (auto d : shape) {
    if (d < 0) throw Error(path + ": negative dimension in npy shape");
    n *= d;
  }
  std::string header = header_for(descr, shape);
  write_file_atomic(path, [&](std::FILE* f) {
    if (std::fwrite(header.data(), 1, header.size(), f) != header.size())
      throw IoError(path + ": write failed: " + std::strerror(errno));
    size_t bytes = static_cast<size_t>(n) * elem;
    if (bytes && std::fwrite(data, 1, bytes, f) != bytes)
      throw IoError(path + ": write failed: " + std::strerror(errno));
  });
}

}  // namespace

std::vector<float> NpyArray::as_float() const { return convert<float>(*this); }
std::vector<double> NpyArray::as_double() const { return convert<double>(*this); }
std::vector<int64_t> NpyArray::as_int64() const { return convert<int64_t>(*this); }

NpyArray read_npy(const std::string& path) {
  const std::vector<char> bytes = read_file(path);
  return read_npy_bytes(bytes.data(), bytes.size(), path);
}

NpyArray read_npy_bytes(const void* data, size_t size, const std::string& path) {
  const std::string_view b(static_cast<const char*>(data), size);
  if (b.size() < 10 || std::memcmp(b.data(), "\x93NUMPY", 6) != 0) throw FormatError(path + ": not a .npy file");
  const int major = static_cast<unsigned char>(b[6]);
  size_t hlen, off;
  if (major == 1) {
    hlen = static_cast<unsigned char>(b[8]) | (static_cast<size_t>(static_cast<unsigned char>(b[9])) << 8);
    off = 10;
  } else if (major == 2 || major == 3) {
    if (b.size() < 12) throw FormatError(path + ": truncated .npy header");
    hlen = 0;
    for (int i = 0; i < 4; ++i) hlen |= static_cast<size_t>(static_cast<unsigned char>(b[8 + i])) << (8 * i);
    off = 12;
  } else {
    throw FormatError(path + ": unsupported .npy version " + std::to_string(major));
  }
  if (off + hlen > b.size()) throw FormatError(path + ": truncated .npy header");
  std::string header(b.data() + off, hlen);
  // The header is a Python dict literal: find the three keys by hand.
  auto value_after = [&](const std::string& key) -> std::string {
    size_t k = header.find("'" + key + "'");
    if (k == std::string::npos) throw FormatError(path + ": .npy header without " + key);
    size_t colon = header.find(':', k);
    if (colon == std::string::npos) throw FormatError(path + ": malformed .npy header");
    size_t v = header.find_first_not_of(" ", colon + 1);
    return v == std::string::npos ? std::string() : header.substr(v);
  };
  std::string descr = value_after("descr");
  if (descr.size() < 3 || descr[0] != '\'') throw FormatError(path + ": malformed .npy descr");
  descr = descr.substr(1, descr.find('\'', 1) - 1);
  if (!descr.empty() && descr[0] == '>') throw FormatError(path + ": big-endian .npy is not supported");
  if (!descr.empty() && (descr[0] == '<' || descr[0] == '|' || descr[0] == '=')) descr.erase(0, 1);
  NpyArray a;
  a.dtype = descr;
  if (a.dtype != "f4" && a.dtype != "f8" && a.dtype != "i8")
    throw FormatError(path + ": unsupported .npy dtype " + a.dtype);
  if (value_after("fortran_order").rfind("True", 0) == 0)
    throw FormatError(path + ": Fortran-order .npy is not supported");
  std::string dims = value_after("shape");
  if (dims.empty() || dims[0] != '(') throw FormatError(path + ": malformed .npy shape");
  dims = dims.substr(1, dims.find(')') - 1);
  int64_t cur = -1;
  for (char c : dims) {
    if (c >= '0' && c <= '9') {
      cur = (cur < 0 ? 0 : cur) * 10 + (c - '0');
      if (cur > (int64_t{1} << 40)) throw FormatError(path + ": .npy dimension too large");
    } else if (cur >= 0) {
      a.shape.push_back(cur);
      cur = -1;
    }
  }
  if (cur >= 0) a.shape.push_back(cur);
  int64_t elements = 1;
  for (int64_t d : a.shape) {
    if (d != 0 && elements > static_cast<int64_t>(b.size()) / d) throw FormatError(path + ": truncated .npy data");
    elements *= d;
  }
  size_t elem = a.dtype == "f4" ? 4 : 8;
  size_t need = static_cast<size_t>(a.size()) * elem;
  size_t data_off = off + hlen;
  if (b.size() - data_off < need) throw FormatError(path + ": truncated .npy data");
  a.bytes.assign(b.begin() + static_cast<std::ptrdiff_t>(data_off),
                 b.begin() + static_cast<std::ptrdiff_t>(data_off + need));
  return a;
}

void write_npy(const std::string& path, const float* data, const std::vector<int64_t>& shape) {
  write_any(path, "<f4", data, 4, shape);
}
void write_npy(const std::string& path, const int64_t* data, const std::vector<int64_t>& shape) {
  write_any(path, "<i8", data, 8, shape);
}

}  // namespace asdcap
