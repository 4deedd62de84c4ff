// The PostgreSQL store (several serve processes on several hosts sharing one database). Compiled
// in when store_postgres.cpp is part of the build (ASDCAP_HAVE_POSTGRES).
#pragma once
#include <memory>
#include <string>

#include "serve/store.hpp"

namespace asdcap::serve {

// "postgresql://user@host:port/db" or "postgres://...": connects, creates and migrates the schema.
// Throws IoError naming host/db (never the password) when the server cannot be reached.
std::unique_ptr<Store> open_postgres_store(const std::string& url);

}  // namespace asdcap::serve
