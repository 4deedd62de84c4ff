// The scoring service: enrols references, scores clips against each machine's in-memory exact
// k-NN index, stores events and their audio. Thread-safe.
#pragma once
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "asdcap/backend.hpp"
#include "detect/standardise.hpp"
#include "serve/metrics.hpp"
#include "serve/store.hpp"

namespace asdcap::serve {

// One machine's references as the k-NN search uses them, with the threshold they give.
struct MachineIndex {
  int64_t generation = -1;
  std::vector<ReferenceRecord> refs;  // without their embeddings (those are in `matrix`)
  std::vector<float> matrix;          // n x dim, standardised when the backend asks for it
  std::optional<Standardisation> standardisation;
  double threshold = 0;  // NaN: fewer than 2 references, or the gamma fit failed
};

struct ScoreResult {
  EventRecord event;
  bool created = true;  // false: an earlier submission with the same idempotency key
};

struct EnrolResult {
  int64_t reference_id = 0;
  std::string name;
  int64_t n_references = 0;
  double threshold = 0;
};

struct FolderResult {
  int enrolled = 0;
  std::vector<std::pair<std::string, std::string>> skipped;  // file, reason
  int64_t n_references = 0;
  double threshold = 0;
};

class Service {
 public:
  // `explain`: flagged clips get an explanation job. `folder_root` non-empty: enrol_folder reads only
  // folders under it (InvalidArgument when it is not a folder).
  Service(Store& store, EmbeddingBackend& backend, Metrics& metrics, std::string data_dir, int k, bool explain,
          const std::string& folder_root = "");

  // Validates `bytes` as audio (FormatError naming the problem), stores them under
  // DATA/audio/<type>/<id>/references/, embeds them and adds the reference.
  EnrolResult enrol(const MachineKey& m, const std::string& bytes, const std::string& name, const std::string& source);
  // Every .wav / .flac file under `dir` (recursively, in name order); unreadable files are skipped.
  // With a folder root, a relative `dir` is taken from it and a folder outside it (symbolic links
  // resolved) is refused with HttpError 403.
  FolderResult enrol_folder(const MachineKey& m, const std::string& dir);
  // Validates, stores under DATA/audio/<type>/<id>/clips/, scores and records the clip. HttpError 409
  // when the machine has no references.
  ScoreResult submit(const MachineKey& m, const std::string& bytes, const std::string& name,
                     const std::string& idempotency_key);
  // Marks the event a false alarm and adds its clip to the machine's references. nullopt: no such event.
  std::optional<EventRecord> false_alarm(int64_t event_id);

  // A reference by id (any machine), without its embedding; nullopt when there is none.
  std::optional<ReferenceRecord> reference(int64_t reference_id);

  // The machine's current index (rebuilt when its reference generation changed).
  std::shared_ptr<const MachineIndex> index(const MachineKey& m);
  Store& store() { return store_; }
  const std::string& data_dir() const { return data_dir_; }

 private:
  std::vector<float> embed_file(const std::string& path);
  // The folder enrol_folder reads for `dir` (checked against the folder root).
  std::string folder_to_enrol(const std::string& dir) const;
  // The embedding of a clip's signal at backend_.sample_rate(); `sha256` (of the file's bytes) seeds
  // the default crop, `what` names the clip in errors.
  std::vector<float> embed_signal(const std::vector<float>& signal, const std::string& sha256, const std::string& what);
  // Stores, embeds and records one reference (the index is refreshed by the caller).
  int64_t add_reference(const MachineKey& m, const std::string& bytes, const std::string& name,
                        const std::string& source, std::string& stored_name);
  // The stored file's path, and its embedding (from the bytes already decoded for the check).
  struct StoredClip {
    std::string path;
    std::vector<float> embedding;
  };
  StoredClip store_audio(const MachineKey& m, const std::string& kind, const std::string& bytes);
  std::shared_ptr<const MachineIndex> build_index(const MachineKey& m, int64_t generation);

  Store& store_;
  EmbeddingBackend& backend_;
  Metrics& metrics_;
  std::string data_dir_;
  std::string folder_root_;  // canonical; empty: any folder
  int k_;
  bool explain_;
  std::mutex embed_mu_;  // for backends whose embed() is not thread-safe
  std::mutex index_mu_;
  std::map<MachineKey, std::shared_ptr<const MachineIndex>> indexes_;
};

}  // namespace asdcap::serve
