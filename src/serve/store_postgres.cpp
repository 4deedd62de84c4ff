// PostgreSQL store: several serve processes (on several hosts) share one database. Every method is
// one transaction on a connection taken from a small pool; data only ever travels as query
// parameters (PQexecParams), embeddings as binary bytea. Migrations run under a transaction-level
// advisory lock, so servers starting together apply each migration once. Jobs are claimed with
// SELECT ... FOR UPDATE SKIP LOCKED and a lease (claimed_until), so concurrent workers never claim
// the same job and a killed worker's job becomes runnable again when its lease expires.
#include "serve/store_postgres.hpp"

#include <libpq-fe.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <mutex>
#include <vector>

#include "asdcap/error.hpp"

namespace asdcap::serve {
namespace {

// The schema, one entry per version: migration i brings version i to i + 1.
const char* const kMigrations[] = {
    R"sql(
CREATE TABLE machines (type text NOT NULL, mid text NOT NULL, ref_generation bigint NOT NULL DEFAULT 0,
                       created_at timestamptz NOT NULL DEFAULT clock_timestamp(), PRIMARY KEY (type, mid));
CREATE TABLE refs (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, type text NOT NULL, mid text NOT NULL,
                   name text NOT NULL, audio_path text NOT NULL, source text NOT NULL,
                   backend_identity text NOT NULL, embedding bytea NOT NULL,
                   created_at timestamptz NOT NULL DEFAULT clock_timestamp(), from_event bigint UNIQUE,
                   FOREIGN KEY (type, mid) REFERENCES machines (type, mid));
CREATE INDEX refs_machine ON refs (type, mid, id);
CREATE TABLE events (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, type text NOT NULL, mid text NOT NULL,
                     clip_name text NOT NULL, audio_path text NOT NULL, score double precision NOT NULL,
                     threshold double precision, label text NOT NULL, neighbors_json text NOT NULL,
                     status text NOT NULL, explanation_state text NOT NULL, explanation_json text NOT NULL,
                     idempotency_key text NOT NULL, created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
                     FOREIGN KEY (type, mid) REFERENCES machines (type, mid));
CREATE UNIQUE INDEX events_idempotency ON events (type, mid, idempotency_key) WHERE idempotency_key <> '';
CREATE INDEX events_machine ON events (type, mid, id);
CREATE INDEX events_created ON events (created_at);
CREATE TABLE jobs (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                   event_id bigint NOT NULL UNIQUE REFERENCES events (id) ON DELETE CASCADE,
                   worker text, claimed_until timestamptz, attempts integer NOT NULL DEFAULT 0);
)sql",
};
constexpr int kSchemaVersion = static_cast<int>(sizeof kMigrations / sizeof kMigrations[0]);
// pg_advisory_xact_lock key serialising migrations ("asdcap" in ASCII).
constexpr const char* kMigrationLock = "107148233367920";

// A timestamptz column rendered as UTC ISO 8601 with microseconds.
std::string iso(const std::string& column) {
  return "to_char(" + column + " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')";
}

// The URL without its password (userinfo "user:secret@" and a "password=" query parameter).
std::string redact(const std::string& url, std::string* password) {
  std::string out = url;
  const size_t scheme = out.find("://");
  if (scheme != std::string::npos) {
    const size_t start = scheme + 3;
    const size_t end = out.find_first_of("/?", start);
    const size_t at = out.rfind('@', end == std::string::npos ? out.size() : end);
    if (at != std::string::npos && at >= start) {
      const size_t colon = out.find(':', start);
      if (colon != std::string::npos && colon < at) {
        if (password) *password = out.substr(colon + 1, at - colon - 1);
        out.erase(colon, at - colon);
      }
    }
  }
  const size_t q = out.find('?');
  if (q != std::string::npos) {
    size_t pos = q + 1;
    while (pos < out.size()) {
      size_t amp = out.find('&', pos);
      if (amp == std::string::npos) amp = out.size();
      if (out.compare(pos, 9, "password=") == 0) {
        if (password && password->empty()) *password = out.substr(pos + 9, amp - pos - 9);
        const size_t from = pos == q + 1 ? pos : pos - 1;  // the '&' before it, or the first param
        const size_t to = pos == q + 1 && amp < out.size() ? amp + 1 : amp;
        out.erase(from, to - from);
        if (from != pos) pos = from;
        continue;
      }
      pos = amp + 1;
    }
    if (!out.empty() && (out.back() == '?' || out.back() == '&')) out.pop_back();
  }
  return out;
}

// Query parameters: text values, NULLs, and binary values (bytea).
class Params {
 public:
  Params& text(std::string v) {
    vals_.push_back(std::move(v));
    null_.push_back(false);
    formats_.push_back(0);
    return *this;
  }
  Params& i64(int64_t v) { return text(std::to_string(v)); }
  // NaN (and only NaN) as NULL; otherwise the shortest exact decimal of the double.
  Params& dbl_or_null(double v) {
    if (std::isnan(v)) return null();
    return dbl(v);
  }
  Params& dbl(double v) {
    char buf[40];
    std::snprintf(buf, sizeof buf, "%.17g", v);
    return text(std::isnan(v) ? std::string("NaN") : std::isinf(v) ? (v > 0 ? "Infinity" : "-Infinity") : buf);
  }
  Params& null() {
    vals_.emplace_back();
    null_.push_back(true);
    formats_.push_back(0);
    return *this;
  }
  Params& binary(const void* p, size_t n) {
    vals_.emplace_back(static_cast<const char*>(p), n);
    null_.push_back(false);
    formats_.push_back(1);
    return *this;
  }
  int size() const { return static_cast<int>(vals_.size()); }
  std::vector<const char*> values() const {
    std::vector<const char*> v;
    for (size_t i = 0; i < vals_.size(); ++i) v.push_back(null_[i] ? nullptr : vals_[i].data());
    return v;
  }
  std::vector<int> lengths() const {
    std::vector<int> v;
    for (const auto& s : vals_) v.push_back(static_cast<int>(s.size()));
    return v;
  }
  const std::vector<int>& formats() const { return formats_; }

 private:
  std::vector<std::string> vals_;
  std::vector<bool> null_;
  std::vector<int> formats_;
};

// A query's result (rows as text).
class Result {
 public:
  explicit Result(PGresult* r) : r_(r) {}
  ~Result() { PQclear(r_); }
  Result(Result&& o) noexcept : r_(o.r_) { o.r_ = nullptr; }
  Result(const Result&) = delete;
  Result& operator=(const Result&) = delete;
  const PGresult* raw() const { return r_; }
  int rows() const { return PQntuples(r_); }
  int64_t affected() const {
    const char* s = PQcmdTuples(r_);
    return s && *s ? std::strtoll(s, nullptr, 10) : 0;
  }
  bool null(int row, int c) const { return PQgetisnull(r_, row, c) != 0; }
  std::string text(int row, int c) const {
    return std::string(PQgetvalue(r_, row, c), static_cast<size_t>(PQgetlength(r_, row, c)));
  }
  int64_t i64(int row, int c) const { return std::strtoll(PQgetvalue(r_, row, c), nullptr, 10); }
  double dbl(int row, int c) const { return null(row, c) ? NAN : std::strtod(PQgetvalue(r_, row, c), nullptr); }
  std::vector<float> floats(int row, int c) const {
    size_t n = 0;
    unsigned char* raw = PQunescapeBytea(reinterpret_cast<const unsigned char*>(PQgetvalue(r_, row, c)), &n);
    std::vector<float> v(raw ? n / sizeof(float) : 0);
    if (!v.empty()) std::memcpy(v.data(), raw, v.size() * sizeof(float));
    PQfreemem(raw);
    return v;
  }

 private:
  PGresult* r_;
};

// Thrown inside a transaction when the connection itself broke (the transaction is retried once on
// a new connection).
struct BrokenConnection : IoError {
  using IoError::IoError;
};

void ignore_notice(void*, const char*) {}

class PostgresStore final : public Store {
 public:
  explicit PostgresStore(const std::string& url) : url_(url), where_(redact(url, &password_)) {
    PGconn* c = connect();
    release(c);
    try {
      migrate();
    } catch (...) {
      close_all();
      throw;
    }
  }
  ~PostgresStore() override { close_all(); }

  std::string describe() const override { return where_; }

  int schema_version() override {
    return tx([&](PGconn* c) { return version(c); });
  }

  void ensure_machine(const MachineKey& m) override {
    tx([&](PGconn* c) {
      ensure_machine(c, m);
      return 0;
    });
  }

  std::vector<MachineSummary> machines() override {
    return tx([&](PGconn* c) {
      const Result r = exec(c,
                            "SELECT m.type, m.mid,"
                            " (SELECT COUNT(*) FROM refs r WHERE r.type = m.type AND r.mid = m.mid),"
                            " (SELECT COUNT(*) FROM events e WHERE e.type = m.type AND e.mid = m.mid),"
                            " (SELECT COUNT(*) FROM events e WHERE e.type = m.type AND e.mid = m.mid"
                            "   AND e.label = 'anomaly'),"
                            " (SELECT COUNT(*) FROM events e WHERE e.type = m.type AND e.mid = m.mid"
                            "   AND e.label = 'anomaly' AND e.status = 'new'),"
                            " l.score, l.threshold, l.label, " +
                                iso("l.created_at") +
                                ", l.id IS NOT NULL"
                                " FROM machines m LEFT JOIN LATERAL (SELECT id, score, threshold, label, created_at"
                                " FROM events e WHERE e.type = m.type AND e.mid = m.mid ORDER BY id DESC LIMIT 1) l"
                                " ON true ORDER BY m.type, m.mid",
                            Params());
      std::vector<MachineSummary> out;
      for (int i = 0; i < r.rows(); ++i) {
        MachineSummary s;
        s.machine = {r.text(i, 0), r.text(i, 1)};
        s.n_references = r.i64(i, 2);
        s.n_events = r.i64(i, 3);
        s.n_anomalies = r.i64(i, 4);
        s.n_unacknowledged_anomalies = r.i64(i, 5);
        if (r.text(i, 10) == "t") {
          s.last_score = r.dbl(i, 6);
          if (!r.null(i, 7)) s.last_threshold = r.dbl(i, 7);
          s.last_label = r.text(i, 8);
          s.last_event_at = r.text(i, 9);
        }
        out.push_back(std::move(s));
      }
      return out;
    });
  }

  int64_t add_reference(const ReferenceRecord& rec) override {
    return tx([&](PGconn* c) { return insert_reference(c, rec, 0); });
  }

  bool update_embedding(int64_t reference_id, const std::string& backend_identity,
                        const std::vector<float>& embedding) override {
    return tx([&](PGconn* c) {
      return exec(c, "UPDATE refs SET backend_identity = $1, embedding = $2 WHERE id = $3",
                  Params()
                      .text(backend_identity)
                      .binary(embedding.data(), embedding.size() * sizeof(float))
                      .i64(reference_id))
                 .affected() > 0;
    });
  }

  std::vector<ReferenceRecord> references(const MachineKey& m) override {
    return tx([&](PGconn* c) {
      const Result r = exec(c,
                            "SELECT id, name, audio_path, source, backend_identity, embedding, " + iso("created_at") +
                                " FROM refs WHERE type = $1 AND mid = $2 ORDER BY id",
                            Params().text(m.type).text(m.id));
      std::vector<ReferenceRecord> out;
      for (int i = 0; i < r.rows(); ++i) {
        ReferenceRecord rec;
        rec.id = r.i64(i, 0);
        rec.machine = m;
        rec.name = r.text(i, 1);
        rec.audio_path = r.text(i, 2);
        rec.source = r.text(i, 3);
        rec.backend_identity = r.text(i, 4);
        rec.embedding = r.floats(i, 5);
        rec.created_at = r.text(i, 6);
        out.push_back(std::move(rec));
      }
      return out;
    });
  }

  int64_t reference_generation(const MachineKey& m) override {
    return tx([&](PGconn* c) {
      const Result r =
          exec(c, "SELECT ref_generation FROM machines WHERE type = $1 AND mid = $2", Params().text(m.type).text(m.id));
      return r.rows() ? r.i64(0, 0) : int64_t{0};
    });
  }

  std::pair<int64_t, bool> add_event(const EventRecord& e) override {
    return tx([&](PGconn* c) -> std::pair<int64_t, bool> {
      ensure_machine(c, e.machine);
      // A key already used for this machine (also by a concurrent transaction, which this insert
      // waits for) inserts nothing; the existing event is then read back.
      const Result ins = exec(c,
                              "INSERT INTO events (type, mid, clip_name, audio_path, score, threshold, label,"
                              " neighbors_json, status, explanation_state, explanation_json, idempotency_key)"
                              " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
                              " ON CONFLICT (type, mid, idempotency_key) WHERE idempotency_key <> '' DO NOTHING"
                              " RETURNING id",
                              Params()
                                  .text(e.machine.type)
                                  .text(e.machine.id)
                                  .text(e.clip_name)
                                  .text(e.audio_path)
                                  .dbl(e.score)
                                  .dbl_or_null(e.threshold)
                                  .text(e.label)
                                  .text(e.neighbors_json.empty() ? std::string("[]") : e.neighbors_json)
                                  .text(e.status.empty() ? std::string("new") : e.status)
                                  .text(e.explanation_state)
                                  .text(e.explanation_json)
                                  .text(e.idempotency_key));
      if (ins.rows() == 0) {
        const Result old = exec(c, "SELECT id FROM events WHERE type = $1 AND mid = $2 AND idempotency_key = $3",
                                Params().text(e.machine.type).text(e.machine.id).text(e.idempotency_key));
        if (old.rows() == 0) throw IoError(where_ + ": an event with this idempotency key vanished");
        return {old.i64(0, 0), false};
      }
      const int64_t id = ins.i64(0, 0);
      if (e.explanation_state == "pending") exec(c, "INSERT INTO jobs (event_id) VALUES ($1)", Params().i64(id));
      return {id, true};
    });
  }

  std::optional<EventRecord> event(int64_t id) override {
    return tx([&](PGconn* c) -> std::optional<EventRecord> {
      const Result r = exec(c, event_columns() + " WHERE id = $1", Params().i64(id));
      if (r.rows() == 0) return std::nullopt;
      return read_event(r, 0);
    });
  }

  std::vector<EventRecord> events(const EventFilter& f) override {
    std::string sql = event_columns() + " WHERE true";
    Params p;
    auto cond = [&](const std::string& v, const std::string& expr) {
      p.text(v);
      sql += " AND " + expr + " $" + std::to_string(p.size());
    };
    if (f.machine) {
      cond(f.machine->type, "type =");
      cond(f.machine->id, "mid =");
    } else if (f.machine_type) {
      cond(*f.machine_type, "type =");
    }
    if (f.label) cond(*f.label, "label =");
    if (f.status) cond(*f.status, "status =");
    if (f.since) {
      cond(*f.since, "created_at >=");
      sql += "::timestamptz";
    }
    if (f.until) {
      cond(*f.until, "created_at <");
      sql += "::timestamptz";
    }
    if (f.before_id > 0) {
      p.i64(f.before_id);
      sql += " AND id < $" + std::to_string(p.size());
    }
    p.i64(f.limit > 0 ? f.limit : 100);
    sql += " ORDER BY id DESC LIMIT $" + std::to_string(p.size());
    return tx([&](PGconn* c) {
      const Result r = exec(c, sql, p);
      std::vector<EventRecord> out;
      for (int i = 0; i < r.rows(); ++i) out.push_back(read_event(r, i));
      return out;
    });
  }

  bool acknowledge(int64_t event_id) override {
    return tx([&](PGconn* c) {
      return exec(c, "UPDATE events SET status = 'acknowledged' WHERE id = $1", Params().i64(event_id)).affected() > 0;
    });
  }

  bool mark_false_alarm(int64_t event_id, const ReferenceRecord& as_reference) override {
    return tx([&](PGconn* c) {
      // The update locks the event's row: a concurrent marking waits here, then finds the reference.
      if (exec(c, "UPDATE events SET status = 'false_alarm' WHERE id = $1", Params().i64(event_id)).affected() == 0)
        return false;
      insert_reference(c, as_reference, event_id);
      return true;
    });
  }

  std::optional<Job> claim_job(const std::string& worker, int lease_seconds) override {
    return tx([&](PGconn* c) -> std::optional<Job> {
      const Result r =
          exec(c,
               "WITH j AS (SELECT id FROM jobs WHERE claimed_until IS NULL OR claimed_until < clock_timestamp()"
               " ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)"
               " UPDATE jobs SET worker = $1, claimed_until = clock_timestamp() + make_interval(secs => $2),"
               " attempts = jobs.attempts + 1 FROM j WHERE jobs.id = j.id"
               " RETURNING jobs.id, jobs.event_id, jobs.attempts",
               Params().text(worker).i64(lease_seconds));
      if (r.rows() == 0) return std::nullopt;
      return Job{r.i64(0, 0), r.i64(0, 1), static_cast<int>(r.i64(0, 2))};
    });
  }

  void finish_job(const Job& job, bool ok, const std::string& explanation_json) override {
    tx([&](PGconn* c) {
      exec(c, "UPDATE events SET explanation_state = $1, explanation_json = $2 WHERE id = $3",
           Params().text(ok ? "done" : "failed").text(explanation_json).i64(job.event_id));
      exec(c, "DELETE FROM jobs WHERE id = $1", Params().i64(job.id));
      return 0;
    });
  }

  int64_t queue_depth() override {
    return tx([&](PGconn* c) { return exec(c, "SELECT COUNT(*) FROM jobs", Params()).i64(0, 0); });
  }

 private:
  void close_all() {
    std::lock_guard lock(mu_);
    for (PGconn* c : idle_) PQfinish(c);
    idle_.clear();
  }

  static std::string event_columns() {
    return "SELECT id, type, mid, clip_name, audio_path, score, threshold, label, neighbors_json, status,"
           " explanation_state, explanation_json, idempotency_key, " +
           iso("created_at") + " FROM events";
  }

  static EventRecord read_event(const Result& r, int i) {
    EventRecord e;
    e.id = r.i64(i, 0);
    e.machine = {r.text(i, 1), r.text(i, 2)};
    e.clip_name = r.text(i, 3);
    e.audio_path = r.text(i, 4);
    e.score = r.dbl(i, 5);
    e.threshold = r.dbl(i, 6);
    e.label = r.text(i, 7);
    e.neighbors_json = r.text(i, 8);
    e.status = r.text(i, 9);
    e.explanation_state = r.text(i, 10);
    e.explanation_json = r.text(i, 11);
    e.idempotency_key = r.text(i, 12);
    e.created_at = r.text(i, 13);
    return e;
  }

  // libpq's message on one line, without the password should the server or libpq echo it.
  std::string message(const char* raw) const {
    std::string m = raw ? raw : "unknown error";
    while (!m.empty() && (m.back() == '\n' || m.back() == ' ')) m.pop_back();
    for (char& ch : m)
      if (ch == '\n') ch = ' ';
    if (!password_.empty())
      for (size_t pos; (pos = m.find(password_)) != std::string::npos;) m.replace(pos, password_.size(), "***");
    return m;
  }

  PGconn* connect() {
    // connect_timeout before dbname: a value in the URL overrides it.
    const char* keys[] = {"connect_timeout", "dbname", nullptr};
    const char* vals[] = {"10", url_.c_str(), nullptr};
    PGconn* c = PQconnectdbParams(keys, vals, 1);
    if (!c) throw IoError(where_ + ": cannot connect: out of memory");
    if (PQstatus(c) != CONNECTION_OK) {
      const std::string msg = message(PQerrorMessage(c));
      PQfinish(c);
      throw IoError(where_ + ": cannot connect: " + msg);
    }
    PQsetNoticeProcessor(c, ignore_notice, nullptr);
    return c;
  }

  PGconn* acquire() {
    {
      std::lock_guard lock(mu_);
      if (!idle_.empty()) {
        PGconn* c = idle_.back();
        idle_.pop_back();
        return c;
      }
    }
    return connect();
  }

  // Keeps a healthy connection for the next call (at most kMaxIdle of them).
  void release(PGconn* c) {
    static constexpr size_t kMaxIdle = 8;
    if (PQstatus(c) == CONNECTION_OK && PQtransactionStatus(c) == PQTRANS_IDLE) {
      std::lock_guard lock(mu_);
      if (idle_.size() < kMaxIdle) {
        idle_.push_back(c);
        return;
      }
    }
    PQfinish(c);
  }

  Result exec(PGconn* c, const std::string& sql, const Params& p) {
    const auto values = p.values();
    const auto lengths = p.lengths();
    Result r(PQexecParams(c, sql.c_str(), p.size(), nullptr, values.data(), lengths.data(), p.formats().data(), 0));
    check(c, r);
    return r;
  }

  // Constant SQL (possibly several statements), no parameters.
  void exec_plain(PGconn* c, const char* sql) {
    Result r(PQexec(c, sql));
    check(c, r);
  }

  void check(PGconn* c, const Result& r) {
    const PGresult* raw = r.raw();
    const auto st = PQresultStatus(raw);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return;
    const std::string msg = where_ + ": " + message(PQerrorMessage(c));
    if (PQstatus(c) == CONNECTION_BAD) throw BrokenConnection(msg);
    const char* state = PQresultErrorField(raw, PG_DIAG_SQLSTATE);
    // Class 22 (data exception), e.g. an unparseable timestamp in a filter.
    if (state && std::strncmp(state, "22", 2) == 0) throw InvalidArgument(msg);
    throw IoError(msg);
  }

  // Runs f(connection) in one transaction; when the connection turns out to be broken (a restarted
  // server, a dropped network), once more on a new connection.
  template <class F>
  auto tx(F&& f) -> decltype(f(static_cast<PGconn*>(nullptr))) {
    for (int attempt = 0;; ++attempt) {
      PGconn* c = nullptr;
      try {
        c = acquire();
        exec_plain(c, "BEGIN");
        auto out = f(c);
        exec_plain(c, "COMMIT");
        release(c);
        return out;
      } catch (const BrokenConnection&) {
        // The other idle connections most likely broke the same way (a restarted server).
        if (c) PQfinish(c);
        close_all();
        if (attempt > 0) throw;
      } catch (...) {
        if (c) {
          if (PQstatus(c) == CONNECTION_OK) PQclear(PQexec(c, "ROLLBACK"));
          release(c);
        }
        throw;
      }
    }
  }

  int version(PGconn* c) {
    const Result r = exec(c, "SELECT max(version) FROM schema_version", Params());
    return r.rows() && !r.null(0, 0) ? static_cast<int>(r.i64(0, 0)) : 0;
  }

  void migrate() {
    tx([&](PGconn* c) {
      exec(c, std::string("SELECT pg_advisory_xact_lock(") + kMigrationLock + ")", Params());
      exec_plain(c, "CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)");
      int v = version(c);
      if (v > kSchemaVersion)
        throw FormatError(where_ + ": schema version " + std::to_string(v) + " is newer than this build knows (" +
                          std::to_string(kSchemaVersion) + ")");
      for (; v < kSchemaVersion; ++v) {
        exec_plain(c, kMigrations[v]);
        exec(c, "DELETE FROM schema_version", Params());
        exec(c, "INSERT INTO schema_version (version) VALUES ($1)", Params().i64(v + 1));
      }
      return 0;
    });
  }

  void ensure_machine(PGconn* c, const MachineKey& m) {
    exec(c, "INSERT INTO machines (type, mid) VALUES ($1, $2) ON CONFLICT DO NOTHING",
         Params().text(m.type).text(m.id));
  }

  // Inserts a reference (once per false-alarm event) and bumps the machine's generation when it did.
  int64_t insert_reference(PGconn* c, const ReferenceRecord& r, int64_t from_event) {
    ensure_machine(c, r.machine);
    Params p;
    p.text(r.machine.type)
        .text(r.machine.id)
        .text(r.name)
        .text(r.audio_path)
        .text(r.source)
        .text(r.backend_identity)
        .binary(r.embedding.data(), r.embedding.size() * sizeof(float));
    if (from_event > 0)
      p.i64(from_event);
    else
      p.null();
    const Result ins = exec(c,
                            "INSERT INTO refs (type, mid, name, audio_path, source, backend_identity, embedding,"
                            " from_event) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (from_event) DO NOTHING"
                            " RETURNING id",
                            p);
    if (ins.rows() == 0) return 0;
    exec(c, "UPDATE machines SET ref_generation = ref_generation + 1 WHERE type = $1 AND mid = $2",
         Params().text(r.machine.type).text(r.machine.id));
    return ins.i64(0, 0);
  }

  std::string url_, password_, where_;
  std::mutex mu_;
  std::vector<PGconn*> idle_;
};

}  // namespace

std::unique_ptr<Store> open_postgres_store(const std::string& url) { return std::make_unique<PostgresStore>(url); }

}  // namespace asdcap::serve
