// Test helpers, independent of asdcap's readers: a minimal zip reader (to check asdcap's output
// against the raw bytes of a checkpoint) and a zip writer + pickle builder (to make small and
// malicious torch.save files).
#pragma once
#include <zlib.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace ziptest {

inline uint32_t rd32(const std::string& b, size_t p) {
  return static_cast<uint32_t>(static_cast<uint8_t>(b[p])) |
         static_cast<uint32_t>(static_cast<uint8_t>(b[p + 1])) << 8 |
         static_cast<uint32_t>(static_cast<uint8_t>(b[p + 2])) << 16 |
         static_cast<uint32_t>(static_cast<uint8_t>(b[p + 3])) << 24;
}
inline uint16_t rd16(const std::string& b, size_t p) {
  return static_cast<uint16_t>(static_cast<uint8_t>(b[p]) | static_cast<uint8_t>(b[p + 1]) << 8);
}

inline std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}
inline void spit(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// Every member of a (non-zip64) archive, decompressed: name -> bytes, in central-directory order.
inline std::vector<std::pair<std::string, std::string>> unzip_all(const std::string& z) {
  size_t eocd = z.rfind(std::string("PK\x05\x06", 4));
  if (eocd == std::string::npos) throw std::runtime_error("no EOCD");
  size_t n = rd16(z, eocd + 10), p = rd32(z, eocd + 16);
  std::vector<std::pair<std::string, std::string>> out;
  for (size_t i = 0; i < n; ++i) {
    uint16_t method = rd16(z, p + 10);
    uint32_t csize = rd32(z, p + 20), usize = rd32(z, p + 24);
    uint16_t nlen = rd16(z, p + 28), xlen = rd16(z, p + 30), clen = rd16(z, p + 32);
    uint32_t local = rd32(z, p + 42);
    std::string name = z.substr(p + 46, nlen);
    p += 46 + nlen + xlen + clen;
    size_t data = local + 30 + rd16(z, local + 26) + rd16(z, local + 28);
    std::string bytes;
    if (method == 0) {
      bytes = z.substr(data, csize);
    } else {
      bytes.resize(usize);
      z_stream s{};
      inflateInit2(&s, -15);
      s.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(z.data() + data));
      s.avail_in = csize;
      s.next_out = reinterpret_cast<Bytef*>(bytes.data());
      s.avail_out = usize;
      int rc = inflate(&s, Z_FINISH);
      inflateEnd(&s);
      if (rc != Z_STREAM_END) throw std::runtime_error("inflate failed for " + name);
    }
    out.emplace_back(name, bytes);
  }
  return out;
}

// A STORED zip of the given members.
inline std::string zip_stored(const std::vector<std::pair<std::string, std::string>>& members) {
  std::string out, cd;
  auto w16 = [](std::string& s, uint16_t v) {
    s.push_back(static_cast<char>(v & 255));
    s.push_back(static_cast<char>(v >> 8));
  };
  auto w32 = [&](std::string& s, uint32_t v) {
    w16(s, static_cast<uint16_t>(v & 0xffff));
    w16(s, static_cast<uint16_t>(v >> 16));
  };
  for (const auto& [name, data] : members) {
    uint32_t crc =
        static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(data.data()), static_cast<uInt>(data.size())));
    uint32_t off = static_cast<uint32_t>(out.size());
    w32(out, 0x04034b50);
    w16(out, 20);
    w16(out, 0);
    w16(out, 0);
    w16(out, 0);
    w16(out, 0);
    w32(out, crc);
    w32(out, static_cast<uint32_t>(data.size()));
    w32(out, static_cast<uint32_t>(data.size()));
    w16(out, static_cast<uint16_t>(name.size()));
    w16(out, 0);
    out += name;
    out += data;
    w32(cd, 0x02014b50);
    w16(cd, 20);
    w16(cd, 20);
    w16(cd, 0);
    w16(cd, 0);
    w16(cd, 0);
    w16(cd, 0);
    w32(cd, crc);
    w32(cd, static_cast<uint32_t>(data.size()));
    w32(cd, static_cast<uint32_t>(data.size()));
    w16(cd, static_cast<uint16_t>(name.size()));
    w16(cd, 0);
    w16(cd, 0);
    w16(cd, 0);
    w16(cd, 0);
    w32(cd, 0);
    w32(cd, off);
    cd += name;
  }
  uint32_t cd_off = static_cast<uint32_t>(out.size());
  out += cd;
  w32(out, 0x06054b50);
  w16(out, 0);
  w16(out, 0);
  w16(out, static_cast<uint16_t>(members.size()));
  w16(out, static_cast<uint16_t>(members.size()));
  w32(out, static_cast<uint32_t>(cd.size()));
  w32(out, cd_off);
  w16(out, 0);
  return out;
}

// Pickle protocol-2 building blocks (opcodes as torch.save emits them).
struct Pickle {
  std::string b = std::string("\x80\x02", 2);
  Pickle& op(char c) {
    b.push_back(c);
    return *this;
  }
  Pickle& str(const std::string& s) {
    b.push_back('X');
    uint32_t n = static_cast<uint32_t>(s.size());
    for (int i = 0; i < 4; ++i) b.push_back(static_cast<char>((n >> (8 * i)) & 255));
    b += s;
    return *this;
  }
  Pickle& integer(int32_t v) {
    b.push_back('J');
    for (int i = 0; i < 4; ++i) b.push_back(static_cast<char>((static_cast<uint32_t>(v) >> (8 * i)) & 255));
    return *this;
  }
  Pickle& global(const std::string& module, const std::string& name) {
    b += "c" + module + "\n" + name + "\n";
    return *this;
  }
  Pickle& ints(const std::vector<int32_t>& v) {  // a tuple
    op('(');
    for (int32_t x : v) integer(x);
    return op('t');
  }
  // _rebuild_tensor_v2(('storage', <type>, key, 'cpu', numel), offset, size, stride, False, OrderedDict())
  Pickle& tensor(const std::string& storage_type, const std::string& key, int32_t numel, int32_t offset,
                 const std::vector<int32_t>& size, const std::vector<int32_t>& stride) {
    global("torch._utils", "_rebuild_tensor_v2");
    op('(');
    op('(').str("storage").global("torch", storage_type).str(key).str("cpu").integer(numel).op('t').op('Q');
    integer(offset).ints(size).ints(stride).op('\x89');
    global("collections", "OrderedDict").op(')').op('R');
    return op('t').op('R');
  }
};

}  // namespace ziptest
