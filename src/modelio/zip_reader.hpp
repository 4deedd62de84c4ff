// A read-only zip archive over a byte image (internal to modelio). Only what torch.save writes is
// needed: single-disk archives, STORED or DEFLATE members, optional zip64 records. Every offset and
// size is checked against the image before use; member contents are CRC-checked.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace asdcap::modelio {

struct ZipEntry {
  std::string name;
  uint16_t method = 0;  // 0 stored, 8 deflate
  uint16_t flags = 0;
  uint32_t crc32 = 0;
  uint64_t compressed_size = 0;
  uint64_t size = 0;
  uint64_t local_header_offset = 0;
};

// Bytes of one member: a view into the image (stored) or into `owned` (inflated).
struct ZipMember {
  const uint8_t* data = nullptr;
  size_t size = 0;
  std::vector<uint8_t> owned;
};

class ZipArchive {
 public:
  // Parses the central directory. Throws FormatError("<file>: ...").
  ZipArchive(const uint8_t* data, size_t size, std::string file);
  const std::vector<ZipEntry>& entries() const { return entries_; }
  const ZipEntry* find(std::string_view name) const;
  // Reads (and for DEFLATE, inflates) a member, checking bounds, sizes and CRC-32.
  ZipMember read(const ZipEntry& e) const;

 private:
  const uint8_t* data_;
  size_t size_;
  std::string file_;
  std::vector<ZipEntry> entries_;
};

}  // namespace asdcap::modelio
