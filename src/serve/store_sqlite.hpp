// The SQLite store: one database file in WAL mode (the default store of asdcap serve).
#pragma once
#include <memory>
#include <string>

#include "serve/store.hpp"

namespace asdcap::serve {

// Opens (creating the file and its folder, and migrating the schema) the database at `path`.
std::unique_ptr<Store> open_sqlite_store(const std::string& path);

}  // namespace asdcap::serve
