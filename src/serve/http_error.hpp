// An error that carries the HTTP status the API answers it with (404 unknown event, 409 machine
// without references, ...). Other asdcap::Error kinds are mapped by http_api.cpp.
#pragma once
#include <string>

#include "asdcap/error.hpp"

namespace asdcap::serve {

class HttpError : public Error {
 public:
  HttpError(int status, const std::string& what) : Error(what), status_(status) {}
  int status() const { return status_; }

 private:
  int status_;
};

// [A-Za-z0-9][A-Za-z0-9_.-]{0,63}: safe as a folder name, no path can escape the data folder.
bool valid_machine_name(const std::string& name);

}  // namespace asdcap::serve
