// A whole file mapped read-only into memory (internal to modelio).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace asdcap::modelio {

class MappedFile {
 public:
  // Throws IoError naming the file (missing, unreadable, not a regular file).
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }
  // Maps the pages of [p, p + n) (inside the mapping) in one call, before they are read: cheaper than
  // a page fault per few pages. Only a hint (nothing happens on kernels without MADV_POPULATE_READ).
  void prefault(const void* p, size_t n) const;

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  void* map_ = nullptr;
};

}  // namespace asdcap::modelio
