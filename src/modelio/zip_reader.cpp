#include "zip_reader.hpp"

#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <limits>

#include "asdcap/error.hpp"

namespace asdcap::modelio {
namespace {

constexpr uint32_t kLocalSig = 0x04034b50, kCentralSig = 0x02014b50, kEocdSig = 0x06054b50;
constexpr uint32_t kZip64LocatorSig = 0x07064b50, kZip64EocdSig = 0x06064b50;

uint16_t u16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
uint32_t u32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) | (static_cast<uint32_t>(p[2]) << 16) |
         (static_cast<uint32_t>(p[3]) << 24);
}
uint64_t u64(const uint8_t* p) { return static_cast<uint64_t>(u32(p)) | (static_cast<uint64_t>(u32(p + 4)) << 32); }

// [off, off+len) lies inside an image of `size` bytes (overflow-safe).
bool inside(uint64_t off, uint64_t len, size_t size) { return off <= size && len <= size - off; }

}  // namespace

ZipArchive::ZipArchive(const uint8_t* data, size_t size, std::string file)
    : data_(data), size_(size), file_(std::move(file)) {
  auto bad = [&](const std::string& what) {
    return FormatError(file_ + ": not a valid zip/PyTorch checkpoint: " + what);
  };
  if (size_ < 22) throw bad("file too short (" + std::to_string(size_) + " bytes)");
  // End of central directory: the last signature within the final 22 + 65535 bytes.
  size_t lowest = size_ > 22 + 65535 ? size_ - (22 + 65535) : 0;
  size_t eocd = size_;
  for (size_t p = size_ - 22 + 1; p-- > lowest;) {
    if (u32(data_ + p) == kEocdSig && p + 22 + u16(data_ + p + 20) <= size_) {
      eocd = p;
      break;
    }
  }
  if (eocd == size_) throw bad("no end-of-central-directory record (truncated?)");
  const uint8_t* e = data_ + eocd;
  if (u16(e + 4) != 0 || u16(e + 6) != 0) throw bad("multi-disk archives are not supported");
  uint64_t count = u16(e + 10), cd_size = u32(e + 12), cd_offset = u32(e + 16);
  if (count == 0xFFFF || cd_size == 0xFFFFFFFF || cd_offset == 0xFFFFFFFF) {
    if (eocd < 20 || u32(data_ + eocd - 20) != kZip64LocatorSig) throw bad("zip64 locator missing");
    uint64_t z64 = u64(data_ + eocd - 20 + 8);
    if (!inside(z64, 56, size_) || u32(data_ + z64) != kZip64EocdSig) throw bad("zip64 end record out of bounds");
    count = u64(data_ + z64 + 32);
    cd_size = u64(data_ + z64 + 40);
    cd_offset = u64(data_ + z64 + 48);
  }
  if (!inside(cd_offset, cd_size, size_)) throw bad("central directory out of bounds (truncated?)");
  if (count > cd_size / 46) throw bad("central directory entry count " + std::to_string(count) + " too large");
  entries_.reserve(count);
  uint64_t p = cd_offset, end = cd_offset + cd_size;
  for (uint64_t i = 0; i < count; ++i) {
    if (end - p < 46 || u32(data_ + p) != kCentralSig)
      throw bad("corrupt central directory entry " + std::to_string(i));
    const uint8_t* c = data_ + p;
    ZipEntry z;
    z.flags = u16(c + 8);
    z.method = u16(c + 10);
    z.crc32 = u32(c + 16);
    z.compressed_size = u32(c + 20);
    z.size = u32(c + 24);
    uint64_t name_len = u16(c + 28), extra_len = u16(c + 30), comment_len = u16(c + 32);
    z.local_header_offset = u32(c + 42);
    if (end - p - 46 < name_len + extra_len + comment_len)
      throw bad("central directory entry " + std::to_string(i) + " overruns");
    z.name.assign(reinterpret_cast<const char*>(c + 46), name_len);
    // zip64 extended information: the 64-bit values of the fields saturated at 0xFFFFFFFF, in order.
    const uint8_t* x = c + 46 + name_len;
    const uint8_t* xend = x + extra_len;
    while (xend - x >= 4) {
      uint16_t id = u16(x), len = u16(x + 2);
      if (xend - x - 4 < len) break;
      if (id == 0x0001) {
        const uint8_t* v = x + 4;
        const uint8_t* vend = v + len;
        auto take = [&](uint64_t& field) {
          if (field != 0xFFFFFFFF) return;
          if (vend - v < 8) throw bad("truncated zip64 field in entry " + z.name);
          field = u64(v);
          v += 8;
        };
        take(z.size);
        take(z.compressed_size);
        take(z.local_header_offset);
      }
      x += 4 + len;
    }
    p += 46 + name_len + extra_len + comment_len;
    entries_.push_back(std::move(z));
  }
}

const ZipEntry* ZipArchive::find(std::string_view name) const {
  for (const auto& e : entries_)
    if (e.name == name) return &e;
  return nullptr;
}

ZipMember ZipArchive::read(const ZipEntry& z) const {
  auto bad = [&](const std::string& what) { return FormatError(file_ + ": zip member " + z.name + ": " + what); };
  if (z.flags & 1) throw bad("encrypted members are not supported");
  if (!inside(z.local_header_offset, 30, size_) || u32(data_ + z.local_header_offset) != kLocalSig)
    throw bad("local header out of bounds or corrupt (truncated file?)");
  const uint8_t* l = data_ + z.local_header_offset;
  uint64_t start = z.local_header_offset + 30 + u16(l + 26) + u16(l + 28);
  if (!inside(start, z.compressed_size, size_))
    throw bad("data out of bounds (" + std::to_string(z.compressed_size) + " bytes at offset " + std::to_string(start) +
              ", file has " + std::to_string(size_) + "; truncated?)");
  ZipMember m;
  if (z.method == 0) {
    if (z.compressed_size != z.size) throw bad("stored member with different sizes");
    m.data = data_ + start;
    m.size = static_cast<size_t>(z.size);
  } else if (z.method == 8) {
    // DEFLATE cannot expand more than ~1032:1; refuse sizes that could only be lies.
    if (z.size / 1032 > z.compressed_size + 1) throw bad("implausible uncompressed size " + std::to_string(z.size));
    if (z.size > std::numeric_limits<size_t>::max() / 2) throw bad("member too large");
    m.owned.resize(static_cast<size_t>(z.size));
    z_stream s{};
    if (inflateInit2(&s, -MAX_WBITS) != Z_OK) throw bad("zlib init failed");
    uint64_t in_left = z.compressed_size, out_done = 0;
    const uint8_t* in = data_ + start;
    int rc = Z_OK;
    uint8_t sink = 0;
    while (rc == Z_OK) {
      uInt in_chunk = static_cast<uInt>(std::min<uint64_t>(in_left, 1u << 30));
      s.next_in = const_cast<Bytef*>(in);
      s.avail_in = in_chunk;
      uint64_t out_left = z.size - out_done;
      // With no room left, offer one scratch byte so over-long data is detected, not looped on.
      s.next_out = out_left ? m.owned.data() + out_done : &sink;
      s.avail_out = out_left ? static_cast<uInt>(std::min<uint64_t>(out_left, 1u << 30)) : 1;
      uInt out_before = s.avail_out;
      rc = inflate(&s, Z_NO_FLUSH);
      uint64_t consumed = in_chunk - s.avail_in, produced = out_before - s.avail_out;
      in += consumed;
      in_left -= consumed;
      if (!out_left && produced) {
        rc = Z_DATA_ERROR;
        break;
      }
      out_done += produced;
      if (rc == Z_BUF_ERROR || (rc == Z_OK && consumed == 0 && produced == 0)) break;
    }
    inflateEnd(&s);
    if (rc != Z_STREAM_END || out_done != z.size) throw bad("corrupt or truncated DEFLATE data");
    m.data = m.owned.data();
    m.size = m.owned.size();
  } else {
    throw bad("unsupported compression method " + std::to_string(z.method));
  }
  uLong crc = ::crc32(0L, Z_NULL, 0);
  for (size_t off = 0; off < m.size;) {
    uInt chunk = static_cast<uInt>(std::min<size_t>(m.size - off, 1u << 30));
    crc = ::crc32(crc, m.data + off, chunk);
    off += chunk;
  }
  if (static_cast<uint32_t>(crc) != z.crc32) throw bad("CRC-32 mismatch (corrupt file)");
  return m;
}

}  // namespace asdcap::modelio
