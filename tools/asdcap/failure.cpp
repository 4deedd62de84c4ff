#include "failure.hpp"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <new>

#include "asdcap/error.hpp"

namespace asdcap::cli {
namespace {

Failure make(int code, std::string message) {
  std::replace(message.begin(), message.end(), '\n', ' ');
  return {code, std::move(message)};
}

}  // namespace

Failure failure_of(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const CLI::ParseError& e) {
    return make(2, std::string(e.what()) + " (see --help)");
  } catch (const UsageError& e) {
    return make(2, e.what());
  } catch (const Error& e) {
    return make(1, e.what());
  } catch (const std::bad_alloc&) {
    return make(1, "out of memory");
  } catch (const std::exception& e) {
    return make(1, std::string("internal error: ") + e.what());
  } catch (...) {
    return make(1, "internal error: unknown exception");
  }
}

}  // namespace asdcap::cli
