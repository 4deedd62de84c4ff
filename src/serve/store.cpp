#include "serve/store.hpp"

#include "asdcap/error.hpp"
#include "serve/store_postgres.hpp"
#include "serve/store_sqlite.hpp"

namespace asdcap::serve {

std::unique_ptr<Store> open_store(const std::string& url) {
  if (url.empty()) throw InvalidArgument("store: no database given");
  if (url.rfind("postgresql://", 0) == 0 || url.rfind("postgres://", 0) == 0) {
#ifdef ASDCAP_HAVE_POSTGRES
    return open_postgres_store(url);
#else
    throw IoError("store: this build has no PostgreSQL support");
#endif
  }
  if (url.rfind("sqlite:", 0) == 0) {
    const std::string path = url.substr(7);
    if (path.empty()) throw InvalidArgument("store: sqlite: needs a file path");
    return open_sqlite_store(path);
  }
  const auto colon = url.find("://");
  if (colon != std::string::npos)
    throw InvalidArgument("store: unknown scheme '" + url.substr(0, colon) + "' (expected sqlite: or postgresql://)");
  return open_sqlite_store(url);
}

}  // namespace asdcap::serve
