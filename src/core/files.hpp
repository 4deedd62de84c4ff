// File helpers shared by every area: whole-file reads, atomic writes, content hashes.
#pragma once
#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace asdcap {

std::vector<char> read_file(const std::string& path);
std::string read_text_file(const std::string& path);

// Writes `path` atomically: the bytes go to a temporary file in the same folder
// (".<name>.tmp.<pid>.XXXXXX"), are flushed to disk, then renamed over `path`, and the folder is
// synced. After a crash, a kill or an error (a full disk: the message names the system's reason),
// `path` is either the old file or the complete new one, never partial; the temporary file is
// removed on error, and temporaries of `path` left by killed writers are removed by the next write.
// Every output file of asdcap is written through here.
void write_file_atomic(const std::string& path, std::string_view bytes);
// Same, with the content produced by a callback writing to a FILE* (for large outputs).
void write_file_atomic(const std::string& path, const std::function<void(std::FILE*)>& writer);

// SHA-256 of a byte range / of a whole file, as 64 lowercase hex digits.
std::string sha256_hex(const void* data, size_t n);
std::string sha256_file(const std::string& path);

}  // namespace asdcap
