// Test support for the PostgreSQL store: the test server's URL (ASDCAP_TEST_POSTGRES_URL) and a
// fresh schema per test, so tests are independent and can run in parallel on one database.
#pragma once
#include <libpq-fe.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <random>
#include <string>

namespace asdcap::test {

// The test server's URL, or "" (the tests then skip, or fail when ASDCAP_REQUIRE_POSTGRES=1).
inline std::string postgres_test_url() {
  const char* v = std::getenv("ASDCAP_TEST_POSTGRES_URL");
  return v ? v : "";
}
inline bool postgres_required() {
  const char* v = std::getenv("ASDCAP_REQUIRE_POSTGRES");
  return v && std::string(v) == "1";
}

// Runs SQL on the server at `url`: "" when fine, else the error.
inline std::string pg_run(const std::string& url, const std::string& sql) {
  PGconn* c = PQconnectdb(url.c_str());
  std::string err;
  PQsetNoticeProcessor(
      c, [](void*, const char*) {}, nullptr);
  if (PQstatus(c) != CONNECTION_OK) {
    err = PQerrorMessage(c);
  } else {
    PGresult* r = PQexec(c, sql.c_str());
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) err = PQerrorMessage(c);
    PQclear(r);
  }
  PQfinish(c);
  return err;
}

// A name no other test (process or thread) uses at the same time.
inline std::string unique_name(const char* prefix) {
  static std::atomic<int> counter{0};
  std::random_device rd;
  return std::string(prefix) + std::to_string(getpid()) + "_" + std::to_string(counter++) + "_" +
         std::to_string(rd() % 1000000);
}

// A new empty schema on the test server, dropped with the object; url() selects it (search_path).
class PgSchema {
 public:
  explicit PgSchema(const std::string& base) : base_(base), name_(unique_name("t_")) {
    error_ = pg_run(base_, "CREATE SCHEMA " + name_);
    url_ = base_ + (base_.find('?') == std::string::npos ? "?" : "&") + "options=-csearch_path%3D" + name_;
  }
  ~PgSchema() {
    if (error_.empty()) pg_run(base_, "DROP SCHEMA " + name_ + " CASCADE");
  }
  PgSchema(const PgSchema&) = delete;
  PgSchema& operator=(const PgSchema&) = delete;
  const std::string& url() const { return url_; }
  const std::string& error() const { return error_; }  // "" when the schema was created

 private:
  std::string base_, name_, url_, error_;
};

}  // namespace asdcap::test
