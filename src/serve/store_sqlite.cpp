// SQLite store: WAL journal (readers never block the writer), a busy timeout for other processes
// on the same file, versioned migrations, one transaction per method.
#include "serve/store_sqlite.hpp"

#include <sqlite3.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <mutex>
#include <thread>

#include "asdcap/error.hpp"

namespace asdcap::serve {
namespace {

// The schema, one entry per version: migration i brings version i to i + 1.
const char* const kMigrations[] = {
    R"sql(
CREATE TABLE machines (type TEXT NOT NULL, mid TEXT NOT NULL, ref_generation INTEGER NOT NULL DEFAULT 0,
                       created_at TEXT NOT NULL, PRIMARY KEY (type, mid));
CREATE TABLE refs (id INTEGER PRIMARY KEY AUTOINCREMENT, type TEXT NOT NULL, mid TEXT NOT NULL,
                   name TEXT NOT NULL, audio_path TEXT NOT NULL, source TEXT NOT NULL,
                   backend_identity TEXT NOT NULL, embedding BLOB NOT NULL, created_at TEXT NOT NULL,
                   from_event INTEGER UNIQUE);
CREATE INDEX refs_machine ON refs (type, mid, id);
CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, type TEXT NOT NULL, mid TEXT NOT NULL,
                     clip_name TEXT NOT NULL, audio_path TEXT NOT NULL, score REAL NOT NULL, threshold REAL,
                     label TEXT NOT NULL, neighbors_json TEXT NOT NULL, status TEXT NOT NULL,
                     explanation_state TEXT NOT NULL, explanation_json TEXT NOT NULL,
                     idempotency_key TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE UNIQUE INDEX events_idempotency ON events (type, mid, idempotency_key) WHERE idempotency_key <> '';
CREATE INDEX events_machine ON events (type, mid, id);
CREATE TABLE jobs (id INTEGER PRIMARY KEY AUTOINCREMENT, event_id INTEGER NOT NULL UNIQUE,
                   worker TEXT, claimed_until REAL, attempts INTEGER NOT NULL DEFAULT 0);
)sql",
};
constexpr int kSchemaVersion = static_cast<int>(sizeof kMigrations / sizeof kMigrations[0]);
// How long a store waits for another connection holding the database.
constexpr int kBusyTimeoutMs = 10000;

std::string utc_now_micro() {
  const auto now = std::chrono::system_clock::now();
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count();
  const std::time_t t = static_cast<std::time_t>(us / 1000000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[40], out[72];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(out, sizeof out, "%s.%06lldZ", buf, static_cast<long long>(us % 1000000));
  return out;
}

double epoch_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

class Stmt {
 public:
  Stmt(sqlite3* db, const std::string& sql, const std::string& where) : db_(db), where_(where) {
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st_, nullptr) != SQLITE_OK) fail("prepare");
  }
  ~Stmt() { sqlite3_finalize(st_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  Stmt& bind(int i, const std::string& v) {
    sqlite3_bind_text(st_, i, v.c_str(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& bind(int i, int64_t v) {
    sqlite3_bind_int64(st_, i, v);
    return *this;
  }
  Stmt& bind(int i, double v) {
    if (std::isnan(v))
      sqlite3_bind_null(st_, i);
    else
      sqlite3_bind_double(st_, i, v);
    return *this;
  }
  Stmt& bind_blob(int i, const void* p, size_t n) {
    // A zero-length blob, not NULL, when there are no bytes (sqlite3_bind_blob binds NULL for a null pointer).
    if (n == 0)
      sqlite3_bind_zeroblob(st_, i, 0);
    else
      sqlite3_bind_blob(st_, i, p, static_cast<int>(n), SQLITE_TRANSIENT);
    return *this;
  }
  // True while there is a row.
  bool step() {
    const int rc = sqlite3_step(st_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    fail("step");
  }
  void run() {
    while (step()) {
    }
  }
  int64_t i64(int c) const { return sqlite3_column_int64(st_, c); }
  double dbl(int c) const { return sqlite3_column_type(st_, c) == SQLITE_NULL ? NAN : sqlite3_column_double(st_, c); }
  bool null(int c) const { return sqlite3_column_type(st_, c) == SQLITE_NULL; }
  std::string text(int c) const {
    const auto* p = sqlite3_column_text(st_, c);
    return p ? std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(sqlite3_column_bytes(st_, c))) : "";
  }
  std::vector<float> floats(int c) const {
    const void* p = sqlite3_column_blob(st_, c);
    const size_t n = static_cast<size_t>(sqlite3_column_bytes(st_, c)) / sizeof(float);
    std::vector<float> v(n);
    if (n) std::memcpy(v.data(), p, n * sizeof(float));
    return v;
  }

 private:
  [[noreturn]] void fail(const char* what) const { throw IoError(where_ + ": " + what + ": " + sqlite3_errmsg(db_)); }
  sqlite3* db_;
  sqlite3_stmt* st_ = nullptr;
  std::string where_;
};

class SqliteStore final : public Store {
 public:
  explicit SqliteStore(const std::string& path) : path_(path), where_("sqlite:" + path) {
    std::error_code ec;
    const auto parent = std::filesystem::path(path).parent_path();
    if (!parent.empty()) std::filesystem::create_directories(parent, ec);
    if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                        nullptr) != SQLITE_OK) {
      const std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
      sqlite3_close(db_);
      db_ = nullptr;
      throw IoError(where_ + ": cannot open: " + msg);
    }
    sqlite3_busy_timeout(db_, kBusyTimeoutMs);
    try {
      enter_wal_mode();
      exec("PRAGMA synchronous=FULL");
      exec("PRAGMA foreign_keys=ON");
      migrate();
    } catch (...) {
      sqlite3_close(db_);
      db_ = nullptr;
      throw;
    }
  }
  ~SqliteStore() override { sqlite3_close(db_); }

  std::string describe() const override { return where_; }

  int schema_version() override {
    std::lock_guard lock(mu_);
    return version_locked();
  }

  void ensure_machine(const MachineKey& m) override {
    std::lock_guard lock(mu_);
    Tx tx(*this);
    ensure_machine_locked(m);
    tx.commit();
  }

  std::vector<MachineSummary> machines() override {
    std::lock_guard lock(mu_);
    Tx tx(*this, false);
    std::vector<MachineSummary> out;
    Stmt st(db_,
            "SELECT m.type, m.mid, (SELECT COUNT(*) FROM refs r WHERE r.type = m.type AND r.mid = m.mid),"
            " (SELECT COUNT(*) FROM events e WHERE e.type = m.type AND e.mid = m.mid),"
            " (SELECT COUNT(*) FROM events e WHERE e.type = m.type AND e.mid = m.mid AND e.label = 'anomaly'),"
            " (SELECT COUNT(*) FROM events e WHERE e.type = m.type AND e.mid = m.mid AND e.label = 'anomaly'"
            "   AND e.status = 'new')"
            " FROM machines m ORDER BY m.type, m.mid",
            where_);
    while (st.step()) {
      MachineSummary s;
      s.machine = {st.text(0), st.text(1)};
      s.n_references = st.i64(2);
      s.n_events = st.i64(3);
      s.n_anomalies = st.i64(4);
      s.n_unacknowledged_anomalies = st.i64(5);
      out.push_back(std::move(s));
    }
    for (auto& s : out) {
      Stmt last(db_,
                "SELECT score, threshold, label, created_at FROM events WHERE type = ? AND mid = ?"
                " ORDER BY id DESC LIMIT 1",
                where_);
      last.bind(1, s.machine.type).bind(2, s.machine.id);
      if (last.step()) {
        s.last_score = last.dbl(0);
        if (!last.null(1)) s.last_threshold = last.dbl(1);
        s.last_label = last.text(2);
        s.last_event_at = last.text(3);
      }
    }
    tx.commit();
    return out;
  }

  int64_t add_reference(const ReferenceRecord& r) override {
    std::lock_guard lock(mu_);
    Tx tx(*this);
    const int64_t id = insert_reference_locked(r, 0);
    tx.commit();
    return id;
  }

  bool update_embedding(int64_t reference_id, const std::string& backend_identity,
                        const std::vector<float>& embedding) override {
    std::lock_guard lock(mu_);
    Tx tx(*this);
    Stmt st(db_, "UPDATE refs SET backend_identity = ?, embedding = ? WHERE id = ?", where_);
    st.bind(1, backend_identity).bind_blob(2, embedding.data(), embedding.size() * sizeof(float)).bind(3, reference_id);
    st.run();
    const bool found = sqlite3_changes(db_) > 0;
    tx.commit();
    return found;
  }

  std::vector<ReferenceRecord> references(const MachineKey& m) override {
    std::lock_guard lock(mu_);
    Tx tx(*this, false);
    std::vector<ReferenceRecord> out;
    Stmt st(db_,
            "SELECT id, name, audio_path, source, backend_identity, embedding, created_at FROM refs"
            " WHERE type = ? AND mid = ? ORDER BY id",
            where_);
    st.bind(1, m.type).bind(2, m.id);
    while (st.step()) {
      ReferenceRecord r;
      r.id = st.i64(0);
      r.machine = m;
      r.name = st.text(1);
      r.audio_path = st.text(2);
      r.source = st.text(3);
      r.backend_identity = st.text(4);
      r.embedding = st.floats(5);
      r.created_at = st.text(6);
      out.push_back(std::move(r));
    }
    tx.commit();
    return out;
  }

  int64_t reference_generation(const MachineKey& m) override {
    std::lock_guard lock(mu_);
    Stmt st(db_, "SELECT ref_generation FROM machines WHERE type = ? AND mid = ?", where_);
    st.bind(1, m.type).bind(2, m.id);
    return st.step() ? st.i64(0) : 0;
  }

  std::pair<int64_t, bool> add_event(const EventRecord& e) override {
    std::lock_guard lock(mu_);
    Tx tx(*this);
    ensure_machine_locked(e.machine);
    if (!e.idempotency_key.empty()) {
      Stmt find(db_, "SELECT id FROM events WHERE type = ? AND mid = ? AND idempotency_key = ?", where_);
      find.bind(1, e.machine.type).bind(2, e.machine.id).bind(3, e.idempotency_key);
      if (find.step()) {
        const int64_t existing = find.i64(0);
        tx.commit();
        return {existing, false};
      }
    }
    Stmt ins(db_,
             "INSERT INTO events (type, mid, clip_name, audio_path, score, threshold, label, neighbors_json, status,"
             " explanation_state, explanation_json, idempotency_key, created_at)"
             " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
             where_);
    ins.bind(1, e.machine.type)
        .bind(2, e.machine.id)
        .bind(3, e.clip_name)
        .bind(4, e.audio_path)
        .bind(5, e.score)
        .bind(6, e.threshold)
        .bind(7, e.label)
        .bind(8, e.neighbors_json.empty() ? std::string("[]") : e.neighbors_json)
        .bind(9, e.status.empty() ? std::string("new") : e.status)
        .bind(10, e.explanation_state)
        .bind(11, e.explanation_json)
        .bind(12, e.idempotency_key)
        .bind(13, utc_now_micro());
    ins.run();
    const int64_t id = sqlite3_last_insert_rowid(db_);
    if (e.explanation_state == "pending") {
      Stmt job(db_, "INSERT INTO jobs (event_id) VALUES (?)", where_);
      job.bind(1, id).run();
    }
    tx.commit();
    return {id, true};
  }

  std::optional<EventRecord> event(int64_t id) override {
    std::lock_guard lock(mu_);
    Stmt st(db_, std::string(kEventColumns) + " WHERE id = ?", where_);
    st.bind(1, id);
    if (!st.step()) return std::nullopt;
    return read_event(st);
  }

  std::vector<EventRecord> events(const EventFilter& f) override {
    std::lock_guard lock(mu_);
    std::string sql = std::string(kEventColumns) + " WHERE 1 = 1";
    std::vector<std::string> texts;
    if (f.machine) {
      sql += " AND type = ? AND mid = ?";
      texts.push_back(f.machine->type);
      texts.push_back(f.machine->id);
    } else if (f.machine_type) {
      sql += " AND type = ?";
      texts.push_back(*f.machine_type);
    }
    auto add = [&](const std::optional<std::string>& v, const char* cond) {
      if (!v) return;
      sql += cond;
      texts.push_back(*v);
    };
    add(f.label, " AND label = ?");
    add(f.status, " AND status = ?");
    add(f.since, " AND created_at >= ?");
    add(f.until, " AND created_at < ?");
    if (f.before_id > 0) sql += " AND id < " + std::to_string(f.before_id);
    sql += " ORDER BY id DESC LIMIT " + std::to_string(f.limit > 0 ? f.limit : 100);
    Stmt st(db_, sql, where_);
    for (size_t i = 0; i < texts.size(); ++i) st.bind(static_cast<int>(i + 1), texts[i]);
    std::vector<EventRecord> out;
    while (st.step()) out.push_back(read_event(st));
    return out;
  }

  bool acknowledge(int64_t event_id) override {
    std::lock_guard lock(mu_);
    Tx tx(*this);
    Stmt st(db_, "UPDATE events SET status = 'acknowledged' WHERE id = ?", where_);
    st.bind(1, event_id).run();
    const bool found = sqlite3_changes(db_) > 0;
    tx.commit();
    return found;
  }

  bool mark_false_alarm(int64_t event_id, const ReferenceRecord& as_reference) override {
    std::lock_guard lock(mu_);
    Tx tx(*this);
    Stmt st(db_, "UPDATE events SET status = 'false_alarm' WHERE id = ?", where_);
    st.bind(1, event_id).run();
    if (sqlite3_changes(db_) == 0) return false;
    Stmt has(db_, "SELECT 1 FROM refs WHERE from_event = ?", where_);
    has.bind(1, event_id);
    if (!has.step()) insert_reference_locked(as_reference, event_id);
    tx.commit();
    return true;
  }

  std::optional<Job> claim_job(const std::string& worker, int lease_seconds) override {
    std::lock_guard lock(mu_);
    Tx tx(*this);
    const double now = epoch_seconds();
    Stmt st(db_,
            "SELECT id, event_id, attempts FROM jobs WHERE claimed_until IS NULL OR claimed_until < ?"
            " ORDER BY id LIMIT 1",
            where_);
    st.bind(1, now);
    if (!st.step()) {
      tx.commit();
      return std::nullopt;
    }
    Job j{st.i64(0), st.i64(1), static_cast<int>(st.i64(2)) + 1};
    Stmt up(db_, "UPDATE jobs SET worker = ?, claimed_until = ?, attempts = ? WHERE id = ?", where_);
    up.bind(1, worker).bind(2, now + lease_seconds).bind(3, static_cast<int64_t>(j.attempts)).bind(4, j.id).run();
    tx.commit();
    return j;
  }

  void finish_job(const Job& job, bool ok, const std::string& explanation_json) override {
    std::lock_guard lock(mu_);
    Tx tx(*this);
    Stmt up(db_, "UPDATE events SET explanation_state = ?, explanation_json = ? WHERE id = ?", where_);
    up.bind(1, std::string(ok ? "done" : "failed")).bind(2, explanation_json).bind(3, job.event_id).run();
    Stmt del(db_, "DELETE FROM jobs WHERE id = ?", where_);
    del.bind(1, job.id).run();
    tx.commit();
  }

  int64_t queue_depth() override {
    std::lock_guard lock(mu_);
    Stmt st(db_, "SELECT COUNT(*) FROM jobs", where_);
    return st.step() ? st.i64(0) : 0;
  }

 private:
  static constexpr const char* kEventColumns =
      "SELECT id, type, mid, clip_name, audio_path, score, threshold, label, neighbors_json, status,"
      " explanation_state, explanation_json, idempotency_key, created_at FROM events";

  // A transaction: BEGIN IMMEDIATE for writers (the write lock up front, so a busy database waits
  // in busy_timeout instead of failing at commit), rolled back unless committed.
  class Tx {
   public:
    explicit Tx(SqliteStore& s, bool write = true) : s_(s) { s_.exec(write ? "BEGIN IMMEDIATE" : "BEGIN"); }
    ~Tx() {
      if (!done_) sqlite3_exec(s_.db_, "ROLLBACK", nullptr, nullptr, nullptr);
    }
    Tx(const Tx&) = delete;
    Tx& operator=(const Tx&) = delete;
    void commit() {
      s_.exec("COMMIT");
      done_ = true;
    }

   private:
    SqliteStore& s_;
    bool done_ = false;
  };

  void exec(const std::string& sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
      const std::string msg = err ? err : sqlite3_errmsg(db_);
      sqlite3_free(err);
      throw IoError(where_ + ": " + msg);
    }
  }

  // Switching a fresh file to WAL takes an exclusive lock, and SQLite reports a busy database
  // there without calling the busy handler (stores opening the same new file together), so the
  // switch is retried for as long as the busy timeout would have waited.
  void enter_wal_mode() {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kBusyTimeoutMs);
    for (;;) {
      char* err = nullptr;
      const int rc = sqlite3_exec(db_, "PRAGMA journal_mode=WAL", nullptr, nullptr, &err);
      const std::string msg = err ? err : sqlite3_errmsg(db_);
      sqlite3_free(err);
      if (rc == SQLITE_OK) return;
      if ((rc & 0xff) != SQLITE_BUSY || std::chrono::steady_clock::now() >= deadline)
        throw IoError(where_ + ": cannot switch to WAL journal: " + msg);
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }

  int version_locked() {
    Stmt st(db_, "SELECT version FROM schema_version", where_);
    return st.step() ? static_cast<int>(st.i64(0)) : 0;
  }

  void migrate() {
    std::lock_guard lock(mu_);
    Tx tx(*this);
    exec("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)");
    int v = version_locked();
    if (v > kSchemaVersion)
      throw FormatError(where_ + ": schema version " + std::to_string(v) + " is newer than this build knows (" +
                        std::to_string(kSchemaVersion) + ")");
    const bool fresh = v == 0 && !Stmt(db_, "SELECT 1 FROM schema_version", where_).step();
    for (; v < kSchemaVersion; ++v) exec(kMigrations[v]);
    if (fresh)
      exec("INSERT INTO schema_version (version) VALUES (" + std::to_string(kSchemaVersion) + ")");
    else
      exec("UPDATE schema_version SET version = " + std::to_string(kSchemaVersion));
    tx.commit();
  }

  void ensure_machine_locked(const MachineKey& m) {
    Stmt st(db_, "INSERT OR IGNORE INTO machines (type, mid, created_at) VALUES (?, ?, ?)", where_);
    st.bind(1, m.type).bind(2, m.id).bind(3, utc_now_micro()).run();
  }

  int64_t insert_reference_locked(const ReferenceRecord& r, int64_t from_event) {
    ensure_machine_locked(r.machine);
    Stmt st(db_,
            "INSERT INTO refs (type, mid, name, audio_path, source, backend_identity, embedding, created_at,"
            " from_event) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            where_);
    st.bind(1, r.machine.type)
        .bind(2, r.machine.id)
        .bind(3, r.name)
        .bind(4, r.audio_path)
        .bind(5, r.source)
        .bind(6, r.backend_identity)
        .bind_blob(7, r.embedding.data(), r.embedding.size() * sizeof(float))
        .bind(8, utc_now_micro());
    if (from_event > 0) st.bind(9, from_event);
    st.run();
    const int64_t id = sqlite3_last_insert_rowid(db_);
    Stmt gen(db_, "UPDATE machines SET ref_generation = ref_generation + 1 WHERE type = ? AND mid = ?", where_);
    gen.bind(1, r.machine.type).bind(2, r.machine.id).run();
    return id;
  }

  static EventRecord read_event(const Stmt& st) {
    EventRecord e;
    e.id = st.i64(0);
    e.machine = {st.text(1), st.text(2)};
    e.clip_name = st.text(3);
    e.audio_path = st.text(4);
    e.score = st.dbl(5);
    e.threshold = st.dbl(6);
    e.label = st.text(7);
    e.neighbors_json = st.text(8);
    e.status = st.text(9);
    e.explanation_state = st.text(10);
    e.explanation_json = st.text(11);
    e.idempotency_key = st.text(12);
    e.created_at = st.text(13);
    return e;
  }

  std::string path_, where_;
  sqlite3* db_ = nullptr;
  std::mutex mu_;
};

}  // namespace

std::unique_ptr<Store> open_sqlite_store(const std::string& path) { return std::make_unique<SqliteStore>(path); }

}  // namespace asdcap::serve
