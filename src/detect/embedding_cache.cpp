#include "detect/embedding_cache.hpp"

#include <sqlite3.h>
#include <sys/resource.h>
#include <sys/statvfs.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>

#include "asdcap/error.hpp"
#include "core/files.hpp"

namespace asdcap {
namespace {

// Prepared statement that finalises itself; rc() is the result of preparing it.
class Statement {
 public:
  Statement(sqlite3* db, const char* sql) { rc_ = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr); }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  sqlite3_stmt* get() { return stmt_; }
  int rc() const { return rc_; }

 private:
  sqlite3_stmt* stmt_ = nullptr;
  int rc_ = SQLITE_OK;
};

// SQLite's codes for a file that is not (or no longer) a valid database.
bool is_damage(int rc) {
  const int primary = rc & 0xff;
  return primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB;
}

// Thrown inside this file only: the database is damaged and must be rebuilt.
struct Damaged {};

void bind_key(sqlite3_stmt* st, const std::string& sha256, const std::string& backend, const std::string& crop) {
  sqlite3_bind_text(st, 1, sha256.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 2, backend.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 3, crop.c_str(), -1, SQLITE_TRANSIENT);
}

}  // namespace

EmbeddingCache::EmbeddingCache(const std::string& path) : path_(path) {
  try {
    open();
  } catch (const Damaged&) {
    rebuild();
  }
}

EmbeddingCache::~EmbeddingCache() { close(); }

void EmbeddingCache::close() {
  if (db_) sqlite3_close(db_);
  db_ = nullptr;
}

std::string EmbeddingCache::error_text() const {
  if (!db_) return "out of memory";
  std::string msg = sqlite3_errmsg(db_);
  if (int e = sqlite3_system_errno(db_)) return msg + " (" + std::strerror(e) + ")";
  // SQLite often loses errno after a failed or short write: find the reason where it is visible.
  const int code = sqlite3_extended_errcode(db_);
  if (code != SQLITE_FULL && (code & 0xff) != SQLITE_IOERR) return msg;
  const std::string dir = std::filesystem::path(path_).parent_path().string();
  struct statvfs vfs {};
  if (::statvfs(dir.empty() ? "." : dir.c_str(), &vfs) == 0 &&
      static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize < (1u << 20))
    return msg + " (" + std::strerror(ENOSPC) + ")";
  rlimit lim{};
  if (::getrlimit(RLIMIT_FSIZE, &lim) == 0 && lim.rlim_cur != RLIM_INFINITY) {
    std::error_code ec;
    for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
      const auto size = std::filesystem::file_size(path_ + suffix, ec);
      if (!ec && size + (64u << 10) >= lim.rlim_cur)
        return msg + " (" + std::strerror(EFBIG) + ": the file-size limit is " + std::to_string(lim.rlim_cur) +
               " bytes)";
    }
  }
  return msg;
}

void EmbeddingCache::open() {
  if (sqlite3_open_v2(path_.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                      nullptr) != SQLITE_OK) {
    std::string msg = error_text();
    close();
    throw IoError(path_ + ": cannot open the embedding cache: " + msg);
  }
  sqlite3_busy_timeout(db_, 10000);
  try {
    // WAL: a writer killed mid-transaction leaves the last committed state; NORMAL sync is
    // durable against process crashes (only a power cut may lose the latest commits).
    exec("PRAGMA journal_mode=WAL");
    exec("PRAGMA synchronous=NORMAL");
    int schema = 0;
    {
      Statement version(db_, "PRAGMA user_version");
      if (version.rc() != SQLITE_OK || sqlite3_step(version.get()) != SQLITE_ROW) {
        if (is_damage(sqlite3_extended_errcode(db_))) throw Damaged{};
        throw IoError(path_ + ": cannot open the embedding cache: " + error_text());
      }
      schema = sqlite3_column_int(version.get(), 0);
    }  // finalised: a pending statement would lock the table against DROP
    if (schema != kSchema) {
      // An older layout (or a new file): the cache is derived data, so it starts empty.
      exec("DROP TABLE IF EXISTS embeddings");
      exec(
          "CREATE TABLE embeddings ("
          " sha256 TEXT NOT NULL, backend TEXT NOT NULL, crop TEXT NOT NULL,"
          " dim INTEGER NOT NULL, data BLOB NOT NULL, data_sha256 TEXT NOT NULL,"
          " PRIMARY KEY (sha256, backend, crop))");
      exec(("PRAGMA user_version=" + std::to_string(kSchema)).c_str());
    }
  } catch (...) {
    close();
    throw;
  }
}

void EmbeddingCache::rebuild() {
  close();
  ++rebuilds_;
  std::error_code ec;
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
    std::filesystem::remove(path_ + suffix, ec);
    if (ec) throw IoError(path_ + suffix + ": cannot remove the damaged embedding cache: " + ec.message());
  }
  try {
    open();
  } catch (const Damaged&) {
    throw IoError(path_ + ": the rebuilt embedding cache is reported damaged");
  }
}

void EmbeddingCache::exec(const char* sql) {
  // One statement, stepped here: the reason (e.g. "File too large") is read before finalising,
  // which may make system calls of its own and forget it.
  std::string why;
  int code = SQLITE_OK;
  {
    Statement st(db_, sql);
    int rc = st.rc();
    if (rc == SQLITE_OK)
      while ((rc = sqlite3_step(st.get())) == SQLITE_ROW) {
      }
    if (rc == SQLITE_OK || rc == SQLITE_DONE) return;
    code = sqlite3_extended_errcode(db_);
    why = error_text();
  }
  if (is_damage(code)) throw Damaged{};
  throw IoError(path_ + ": embedding cache: " + why);
}

std::optional<std::vector<float>> EmbeddingCache::get(const std::string& sha256, const std::string& backend,
                                                      const std::string& crop) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!db_) return std::nullopt;
  bool damaged = false;
  std::optional<std::vector<float>> out;
  {
    Statement st(db_, "SELECT dim, data, data_sha256 FROM embeddings WHERE sha256=?1 AND backend=?2 AND crop=?3");
    int rc = st.rc();
    if (rc == SQLITE_OK) {
      bind_key(st.get(), sha256, backend, crop);
      rc = sqlite3_step(st.get());
    }
    if (rc == SQLITE_ROW) {
      const int64_t dim = sqlite3_column_int64(st.get(), 0);
      const void* blob = sqlite3_column_blob(st.get(), 1);
      const int64_t bytes = sqlite3_column_bytes(st.get(), 1);
      const unsigned char* sum = sqlite3_column_text(st.get(), 2);
      // A row that does not hold exactly dim floats with the stored checksum is a miss (and is
      // overwritten when the clip has been recomputed).
      if (dim > 0 && blob && sum && bytes == dim * static_cast<int64_t>(sizeof(float)) &&
          sha256_hex(blob, static_cast<size_t>(bytes)) == reinterpret_cast<const char*>(sum)) {
        std::vector<float> v(static_cast<size_t>(dim));
        std::memcpy(v.data(), blob, static_cast<size_t>(bytes));
        out = std::move(v);
      }
    } else if (rc != SQLITE_DONE) {
      damaged = is_damage(sqlite3_extended_errcode(db_));
    }
  }
  // Any other read error is a miss too: the clip is recomputed and its row written again.
  if (damaged) rebuild();
  return out;
}

void EmbeddingCache::put(const std::string& sha256, const std::string& backend, const std::string& crop,
                         const std::vector<float>& embedding) {
  std::lock_guard<std::mutex> lock(mu_);
  const size_t bytes = embedding.size() * sizeof(float);
  const std::string sum = sha256_hex(embedding.data(), bytes);
  for (int attempt = 0;; ++attempt) {
    if (!db_) throw IoError(path_ + ": embedding cache is not open");
    int rc, code = SQLITE_OK;
    std::string why;
    {
      Statement st(db_,
                   "INSERT OR REPLACE INTO embeddings (sha256, backend, crop, dim, data, data_sha256)"
                   " VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
      rc = st.rc();
      if (rc == SQLITE_OK) {
        bind_key(st.get(), sha256, backend, crop);
        sqlite3_bind_int64(st.get(), 4, static_cast<sqlite3_int64>(embedding.size()));
        sqlite3_bind_blob64(st.get(), 5, embedding.data(), bytes, SQLITE_TRANSIENT);
        sqlite3_bind_text(st.get(), 6, sum.c_str(), -1, SQLITE_TRANSIENT);
        // One statement outside an explicit transaction is its own atomic transaction.
        rc = sqlite3_step(st.get());
      }
      if (rc != SQLITE_DONE) code = sqlite3_extended_errcode(db_), why = error_text();  // before finalising
    }
    if (rc == SQLITE_DONE) return;
    if (attempt == 0 && is_damage(code)) {
      rebuild();
      continue;
    }
    throw IoError(path_ + ": embedding cache write failed: " + why);
  }
}

int64_t EmbeddingCache::size() {
  std::lock_guard<std::mutex> lock(mu_);
  Statement st(db_, "SELECT COUNT(*) FROM embeddings");
  if (st.rc() != SQLITE_OK || sqlite3_step(st.get()) != SQLITE_ROW)
    throw IoError(path_ + ": embedding cache read failed: " + error_text());
  return sqlite3_column_int64(st.get(), 0);
}

}  // namespace asdcap
