// The service's persistent state behind one interface, with two implementations: SQLite (WAL, one
// file; the default) and PostgreSQL (several serve processes on several hosts sharing one
// database). Internal to src/serve.
//
// Every method is one transaction: it either happens completely or not at all, so a killed process
// never leaves half an event. Methods throw asdcap::IoError naming the store (path or host/db) when
// the database cannot be reached or written.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace asdcap::serve {

// A machine is a (type, id) pair, e.g. ("fan", "id_00"). Names are validated by the HTTP layer
// (valid_machine_name) before they reach the store.
struct MachineKey {
  std::string type, id;
  bool operator==(const MachineKey&) const = default;
  auto operator<=>(const MachineKey&) const = default;
};

// One normal reference clip of a machine.
struct ReferenceRecord {
  int64_t id = 0;  // assigned by the store
  MachineKey machine;
  std::string name;              // clip name shown to users (upload ?name=, file name, or event's clip)
  std::string audio_path;        // the stored audio file (absolute)
  std::string source;            // "upload" | "folder" | "false_alarm"
  std::string backend_identity;  // EmbeddingBackend::identity() the embedding was computed with
  std::vector<float> embedding;
  std::string created_at;  // UTC ISO 8601, assigned by the store
};

// One scored clip.
struct EventRecord {
  int64_t id = 0;  // assigned by the store
  MachineKey machine;
  std::string clip_name;
  std::string audio_path;
  double score = 0, threshold = 0;  // threshold NaN is stored as NULL and read back as NaN
  std::string label;                // "normal" | "anomaly"
  std::string neighbors_json;       // [{"name", "distance", "reference_id"}...]
  std::string status = "new";       // "new" | "acknowledged" | "false_alarm"
  std::string explanation_state;    // "" (none asked) | "pending" | "done" | "failed"
  std::string explanation_json;     // the explanation once done, or {"error": ...} when failed
  std::string idempotency_key;      // client's Idempotency-Key; "" for none. Unique per machine.
  std::string created_at;           // UTC ISO 8601 with microseconds, assigned by the store
};

struct EventFilter {
  std::optional<MachineKey> machine;        // both set, or
  std::optional<std::string> machine_type;  // type only
  std::optional<std::string> label, status;
  std::optional<std::string> since, until;  // created_at >= since, < until (ISO 8601 strings)
  int64_t before_id = 0;                    // > 0: only ids below it (paging, newest first)
  int limit = 100;
};

// A background explanation job for one event.
struct Job {
  int64_t id = 0, event_id = 0;
  int attempts = 0;
};

struct MachineSummary {
  MachineKey machine;
  int64_t n_references = 0, n_events = 0, n_anomalies = 0, n_unacknowledged_anomalies = 0;
  std::optional<double> last_score, last_threshold;
  std::string last_label, last_event_at;
};

class Store {
 public:
  virtual ~Store() = default;
  // "sqlite:/path/db.sqlite" or "postgresql://user@host/db" (password never echoed).
  virtual std::string describe() const = 0;
  virtual int schema_version() = 0;

  virtual void ensure_machine(const MachineKey& m) = 0;
  virtual std::vector<MachineSummary> machines() = 0;

  // Adds a reference and bumps the machine's reference generation; returns the new id.
  virtual int64_t add_reference(const ReferenceRecord& r) = 0;
  virtual std::vector<ReferenceRecord> references(const MachineKey& m) = 0;
  // Replaces a reference's embedding and the identity of the backend that computed it (a service
  // restarted with another model embeds its references again once, not at every index rebuild).
  // The reference generation is unchanged: the references are the same clips. False when there is
  // no such reference.
  virtual bool update_embedding(int64_t reference_id, const std::string& backend_identity,
                                const std::vector<float>& embedding) = 0;
  // Increases whenever the machine's references change (any process): in-memory indexes compare
  // it to decide whether to reload.
  virtual int64_t reference_generation(const MachineKey& m) = 0;

  // Inserts the event and, when explanation_state == "pending", its explanation job, in one
  // transaction. With a non-empty idempotency_key already used for this machine, inserts nothing
  // and returns the existing event's id (second = false).
  virtual std::pair<int64_t, bool> add_event(const EventRecord& e) = 0;
  virtual std::optional<EventRecord> event(int64_t id) = 0;
  virtual std::vector<EventRecord> events(const EventFilter& f) = 0;
  // Sets status to "acknowledged"; false when there is no such event.
  virtual bool acknowledge(int64_t event_id) = 0;
  // Sets status "false_alarm" and adds `as_reference` to the machine's references, atomically;
  // false when there is no such event. Marking twice adds the reference once.
  virtual bool mark_false_alarm(int64_t event_id, const ReferenceRecord& as_reference) = 0;

  // Claims the oldest runnable job: queued, or claimed by a worker whose lease has expired (a
  // killed process). PostgreSQL: SELECT ... FOR UPDATE SKIP LOCKED, so concurrent workers never
  // claim the same job. The lease lasts lease_seconds.
  virtual std::optional<Job> claim_job(const std::string& worker, int lease_seconds) = 0;
  // Stores the explanation (state "done", or "failed" with explanation_json {"error": ...}) and
  // deletes the job, atomically.
  virtual void finish_job(const Job& job, bool ok, const std::string& explanation_json) = 0;
  virtual int64_t queue_depth() = 0;
};

// Opens (creating and migrating to the current schema version) "sqlite:PATH", a bare PATH, or a
// "postgresql://" / "postgres://" URL. Throws InvalidArgument for an unknown scheme, IoError when
// the store cannot be opened, FormatError for a schema newer than this build knows.
std::unique_ptr<Store> open_store(const std::string& url);

}  // namespace asdcap::serve
