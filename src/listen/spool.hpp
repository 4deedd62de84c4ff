// The spool folder of `asdcap listen` (internal): recorded clips on disk until the server has them.
#pragma once
#include <string>
#include <vector>

namespace asdcap::listen {

class Spool {
 public:
  // `dir` empty: no spool (every method but enabled() is then unused). Creates the folder and its
  // rejected/ subfolder; IoError when it cannot.
  explicit Spool(std::string dir);
  bool enabled() const { return !dir_.empty(); }
  const std::string& dir() const { return dir_; }
  // Names of the clips waiting from an earlier run, oldest first (the names sort by time).
  std::vector<std::string> waiting() const;
  void store(const std::string& name, const std::string& wav) const;  // atomically (temporary file, fsync, rename)
  std::string load(const std::string& name) const;
  void remove(const std::string& name) const;  // the server has it
  void reject(const std::string& name) const;  // moved to rejected/

 private:
  std::string path(const std::string& name) const { return dir_ + "/" + name; }
  std::string dir_;
};

}  // namespace asdcap::listen
