#include "listen/spool.hpp"

#include <algorithm>
#include <filesystem>
#include <string_view>
#include <system_error>

#include "asdcap/error.hpp"
#include "core/files.hpp"

namespace asdcap::listen {

namespace fs = std::filesystem;

Spool::Spool(std::string dir) : dir_(std::move(dir)) {
  if (dir_.empty()) return;
  std::error_code ec;
  fs::create_directories(fs::path(dir_) / "rejected", ec);
  if (ec) throw IoError(dir_ + ": cannot create the spool folder: " + ec.message());
}

std::vector<std::string> Spool::waiting() const {
  std::vector<std::string> names;
  std::error_code ec;
  for (fs::directory_iterator it(dir_, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    // Hidden names are the temporaries of atomic writes (a killed run may leave one).
    if (name.empty() || name[0] == '.' || it->path().extension() != ".wav") continue;
    if (it->is_regular_file(ec)) names.push_back(name);
  }
  if (ec) throw IoError(dir_ + ": cannot list the spool folder: " + ec.message());
  std::sort(names.begin(), names.end());
  return names;
}

void Spool::store(const std::string& name, const std::string& wav) const { write_file_atomic(path(name), wav); }

std::string Spool::load(const std::string& name) const {
  const std::vector<char> bytes = read_file(path(name));
  return std::string(bytes.begin(), bytes.end());
}

void Spool::remove(const std::string& name) const {
  std::error_code ec;
  fs::remove(path(name), ec);
  if (ec) throw IoError(path(name) + ": cannot remove a delivered clip: " + ec.message());
}

void Spool::reject(const std::string& name) const {
  std::error_code ec;
  fs::rename(path(name), fs::path(dir_) / "rejected" / name, ec);
  if (ec) throw IoError(path(name) + ": cannot move a refused clip to rejected/: " + ec.message());
}

}  // namespace asdcap::listen
