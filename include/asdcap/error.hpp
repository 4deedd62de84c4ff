// Every failure the library reports is an asdcap::Error (or a subclass). The CLI prints
// what() as one line and exits 1 (2 for UsageError). Messages name the file and the problem.
#pragma once
#include <stdexcept>
#include <string>

namespace asdcap {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Bad command-line arguments or option values (exit code 2).
class UsageError : public Error {
 public:
  using Error::Error;
};

// A file could not be opened, read or written.
class IoError : public Error {
 public:
  using Error::Error;
};

// A file was read but its content is not what it should be (corrupt audio, bad checkpoint...).
class FormatError : public Error {
 public:
  using Error::Error;
};

// A model file lacks something or does not fit the request.
class ModelError : public Error {
 public:
  using Error::Error;
};

// A remote service (LLM server) failed.
class NetworkError : public Error {
 public:
  using Error::Error;
};

}  // namespace asdcap
