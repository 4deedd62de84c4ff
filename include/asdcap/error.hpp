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

// Bad command-line arguments or option values (exit code 2). Thrown by the CLI only: the library
// reports a bad argument as InvalidArgument, and the CLI turns that into a UsageError naming the
// flag when the value came from one.
class UsageError : public Error {
 public:
  using Error::Error;
};

// A library function was called with an argument it does not accept (an unknown name, a size or
// index out of range, a missing required setting). The message names the argument and the problem.
class InvalidArgument : public Error {
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
