// How the CLI reports a failure: one line on stderr and an exit code. UsageError and CLI11's
// parse errors (a bad command line) exit 2; every other asdcap::Error, InvalidArgument included
// (the library refused a value that did not come from a flag), and anything else exit 1.
#pragma once
#include <exception>
#include <string>

namespace asdcap::cli {

struct Failure {
  int exit_code = 1;
  std::string message;  // one line: line breaks of the exception's message become spaces
};

Failure failure_of(const std::exception_ptr& error);

}  // namespace asdcap::cli
