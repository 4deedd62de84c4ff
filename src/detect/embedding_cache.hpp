// Embedding cache in SQLite (WAL journal, one transaction per insert): embeddings are keyed by
// (file content SHA-256, backend identity, crop policy), so a rerun or a resumed run recomputes
// nothing it already has, and a killed run leaves a consistent database.
#pragma once
#include <mutex>
#include <optional>
#include <string>
#include <vector>

struct sqlite3;

namespace asdcap {

class EmbeddingCache {
 public:
  // Opens (creating if needed) the database at `path`. Throws IoError naming the file.
  explicit EmbeddingCache(const std::string& path);
  ~EmbeddingCache();
  EmbeddingCache(const EmbeddingCache&) = delete;
  EmbeddingCache& operator=(const EmbeddingCache&) = delete;

  // Thread-safe.
  std::optional<std::vector<float>> get(const std::string& sha256, const std::string& backend, const std::string& crop);
  void put(const std::string& sha256, const std::string& backend, const std::string& crop,
           const std::vector<float>& embedding);
  int64_t size();

 private:
  void exec(const char* sql);
  std::string path_;
  sqlite3* db_ = nullptr;
  std::mutex mu_;
};

}  // namespace asdcap
