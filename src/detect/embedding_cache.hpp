// Embedding cache in SQLite (WAL journal, one transaction per insert): embeddings are keyed by
// (file content SHA-256, backend identity, crop policy), so a rerun or a resumed run recomputes
// nothing it already has, and a killed run leaves a consistent database.
//
// The cache is derived data: every embedding is stored with the SHA-256 of its bytes and verified
// when read; a row that fails the check, and any read error (a damaged database), count as a miss,
// so the clip is recomputed. A database that SQLite reports as damaged is rebuilt empty, and so is
// a cache of an older schema.
#pragma once
#include <mutex>
#include <optional>
#include <string>
#include <vector>

struct sqlite3;

namespace asdcap {

class EmbeddingCache {
 public:
  // The layout version stored in the database (PRAGMA user_version); another version is rebuilt.
  static constexpr int kSchema = 2;

  // Opens (creating if needed) the database at `path`; a damaged or older database is replaced
  // by an empty one. Throws IoError naming the file and the system's reason when the file cannot
  // be opened or created at all.
  explicit EmbeddingCache(const std::string& path);
  ~EmbeddingCache();
  EmbeddingCache(const EmbeddingCache&) = delete;
  EmbeddingCache& operator=(const EmbeddingCache&) = delete;

  // Thread-safe. A missing row, a row whose checksum or size does not match, and a read error
  // all return nullopt.
  std::optional<std::vector<float>> get(const std::string& sha256, const std::string& backend, const std::string& crop);
  // Stores one embedding as its own transaction; a damaged database is rebuilt and the write
  // retried once. Throws IoError (with the reason, e.g. the disk is full) when it cannot be stored.
  void put(const std::string& sha256, const std::string& backend, const std::string& crop,
           const std::vector<float>& embedding);
  int64_t size();
  // How many times this object found the database damaged and rebuilt it.
  int rebuilds() const { return rebuilds_; }

 private:
  void open();
  void close();
  void rebuild();
  void exec(const char* sql);
  std::string error_text() const;
  std::string path_;
  sqlite3* db_ = nullptr;
  std::mutex mu_;
  int rebuilds_ = 0;
};

}  // namespace asdcap
