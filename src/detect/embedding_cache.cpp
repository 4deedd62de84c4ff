#include "detect/embedding_cache.hpp"

#include <sqlite3.h>

#include <cstring>

#include "asdcap/error.hpp"

namespace asdcap {
namespace {

// Prepared statement that finalises itself.
class Statement {
 public:
  Statement(sqlite3* db, const char* sql, const std::string& path) {
    if (sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr) != SQLITE_OK)
      throw IoError(path + ": cache query failed: " + sqlite3_errmsg(db));
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  sqlite3_stmt* get() { return stmt_; }

 private:
  sqlite3_stmt* stmt_ = nullptr;
};

}  // namespace

EmbeddingCache::EmbeddingCache(const std::string& path) : path_(path) {
  if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                      nullptr) != SQLITE_OK) {
    std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    db_ = nullptr;
    throw IoError(path + ": cannot open the embedding cache: " + msg);
  }
  sqlite3_busy_timeout(db_, 10000);
  try {
    // WAL: a writer killed mid-transaction leaves the last committed state; NORMAL sync is
    // durable against process crashes (only a power cut may lose the latest commits).
    exec("PRAGMA journal_mode=WAL");
    exec("PRAGMA synchronous=NORMAL");
    exec(
        "CREATE TABLE IF NOT EXISTS embeddings ("
        " sha256 TEXT NOT NULL, backend TEXT NOT NULL, crop TEXT NOT NULL,"
        " dim INTEGER NOT NULL, data BLOB NOT NULL,"
        " PRIMARY KEY (sha256, backend, crop))");
  } catch (...) {
    sqlite3_close(db_);
    db_ = nullptr;
    throw;
  }
}

EmbeddingCache::~EmbeddingCache() {
  if (db_) sqlite3_close(db_);
}

void EmbeddingCache::exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : sqlite3_errmsg(db_);
    sqlite3_free(err);
    throw IoError(path_ + ": embedding cache: " + msg);
  }
}

std::optional<std::vector<float>> EmbeddingCache::get(const std::string& sha256, const std::string& backend,
                                                      const std::string& crop) {
  std::lock_guard<std::mutex> lock(mu_);
  Statement st(db_, "SELECT dim, data FROM embeddings WHERE sha256=?1 AND backend=?2 AND crop=?3", path_);
  sqlite3_bind_text(st.get(), 1, sha256.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st.get(), 2, backend.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st.get(), 3, crop.c_str(), -1, SQLITE_TRANSIENT);
  int rc = sqlite3_step(st.get());
  if (rc == SQLITE_DONE) return std::nullopt;
  if (rc != SQLITE_ROW) throw IoError(path_ + ": embedding cache read failed: " + sqlite3_errmsg(db_));
  int64_t dim = sqlite3_column_int64(st.get(), 0);
  const void* blob = sqlite3_column_blob(st.get(), 1);
  int bytes = sqlite3_column_bytes(st.get(), 1);
  // A row that does not hold exactly dim floats is treated as absent (and overwritten later).
  if (dim <= 0 || bytes != dim * static_cast<int64_t>(sizeof(float)) || !blob) return std::nullopt;
  std::vector<float> v(static_cast<size_t>(dim));
  std::memcpy(v.data(), blob, static_cast<size_t>(bytes));
  return v;
}

void EmbeddingCache::put(const std::string& sha256, const std::string& backend, const std::string& crop,
                         const std::vector<float>& embedding) {
  std::lock_guard<std::mutex> lock(mu_);
  Statement st(db_, "INSERT OR REPLACE INTO embeddings (sha256, backend, crop, dim, data) VALUES (?1, ?2, ?3, ?4, ?5)",
               path_);
  sqlite3_bind_text(st.get(), 1, sha256.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st.get(), 2, backend.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st.get(), 3, crop.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_int64(st.get(), 4, static_cast<sqlite3_int64>(embedding.size()));
  sqlite3_bind_blob(st.get(), 5, embedding.data(), static_cast<int>(embedding.size() * sizeof(float)),
                    SQLITE_TRANSIENT);
  // One statement outside an explicit transaction is its own atomic transaction.
  if (sqlite3_step(st.get()) != SQLITE_DONE)
    throw IoError(path_ + ": embedding cache write failed: " + sqlite3_errmsg(db_));
}

int64_t EmbeddingCache::size() {
  std::lock_guard<std::mutex> lock(mu_);
  Statement st(db_, "SELECT COUNT(*) FROM embeddings", path_);
  if (sqlite3_step(st.get()) != SQLITE_ROW) throw IoError(path_ + ": embedding cache read failed");
  return sqlite3_column_int64(st.get(), 0);
}

}  // namespace asdcap
