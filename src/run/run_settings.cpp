// run.json (written last, read strictly), publishing a detection run as one unit, the writer's lock.
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "asdcap/run.hpp"
#include "core/files.hpp"
#include "run/run_io.hpp"

namespace asdcap {
namespace fs = std::filesystem;
using nlohmann::json;
using run_detail::join;

namespace {

// Schema 1 stored the embedding cache key of a random crop seeded by the clip's content as "crop".
constexpr const char* kContentSeededKey = "random@content-sha256";

// Reads the fields of run.json one by one: a field of the wrong type is an error; a missing field
// is an error from schema 2 on and keeps its default in schema 1.
class FieldReader {
 public:
  FieldReader(const json& j, const std::string& path, int schema) : j_(j), path_(path), schema_(schema) {}

  const json* find(const char* key) const {
    auto it = j_.find(key);
    if (it != j_.end()) return &*it;
    if (schema_ >= 2) throw FormatError(path_ + ": the field \"" + key + "\" is missing");
    return nullptr;
  }
  [[noreturn]] void wrong(const char* key, const char* what) const {
    throw FormatError(path_ + ": the field \"" + key + "\" is not " + what);
  }
  void string(const char* key, std::string& out) const {
    if (const json* v = find(key)) {
      if (!v->is_string()) wrong(key, "a string");
      out = v->get<std::string>();
    }
  }
  void string_or_null(const char* key, std::string& out) const {
    if (const json* v = find(key)) {
      if (v->is_null())
        out.clear();
      else if (v->is_string())
        out = v->get<std::string>();
      else
        wrong(key, "a string or null");
    }
  }
  void integer(const char* key, int& out) const {
    if (const json* v = find(key)) {
      if (!v->is_number_integer()) wrong(key, "an integer");
      out = v->get<int>();
    }
  }
  void strings(const char* key, std::vector<std::string>& out) const {
    if (const json* v = find(key)) {
      if (!v->is_array()) wrong(key, "a list of strings");
      out.clear();
      for (const auto& s : *v) {
        if (!s.is_string()) wrong(key, "a list of strings");
        out.push_back(s.get<std::string>());
      }
    }
  }

 private:
  const json& j_;
  const std::string& path_;
  int schema_;
};

void remove_file(const std::string& path) {
  std::error_code ec;
  fs::remove(path, ec);
  if (ec) throw IoError(path + ": cannot remove: " + ec.message());
}

bool is_dcase_file(const std::string& name) {
  auto ends_csv = name.size() > 4 && name.compare(name.size() - 4, 4, ".csv") == 0;
  return ends_csv && (name.rfind("anomaly_score_", 0) == 0 || name.rfind("decision_result_", 0) == 0);
}

}  // namespace

void write_run_settings(const std::string& dir, const RunSettings& s) {
  const json j = {{"schema", kRunSchema},
                  {"asdcap_version", ASDCAP_VERSION},
                  {"data_root", s.data_root},
                  {"backend", s.backend},
                  {"backend_identity", s.backend_identity},
                  {"model", s.model.empty() ? json(nullptr) : json(s.model)},
                  {"k", s.k},
                  {"crop", s.crop},
                  {"cache_key", s.cache_key},
                  {"channels", s.channels},
                  {"machines", s.machines},
                  {"created", s.created},
                  {"n_scored", s.n_scored},
                  {"n_skipped", s.n_skipped},
                  {"n_embedded", s.n_embedded},
                  {"n_cache_hits", s.n_cache_hits},
                  {"files", s.files}};
  write_file_atomic(join(dir, run_files::kSettings), j.dump(2, ' ', false, json::error_handler_t::replace) + "\n");
}

RunSettings read_run_settings(const std::string& dir) {
  const std::string path = join(dir, run_files::kSettings);
  std::error_code ec;
  if (!fs::exists(path, ec)) throw IoError(path + ": not found");
  json j;
  try {
    j = json::parse(read_text_file(path));
  } catch (const json::exception& e) {
    throw FormatError(path + ": not valid JSON (" + e.what() + ")");
  }
  if (!j.is_object()) throw FormatError(path + ": not a JSON object");
  RunSettings s;
  s.schema = 1;
  if (auto it = j.find("schema"); it != j.end()) {
    if (!it->is_number_integer() || it->get<int64_t>() < 1)
      throw FormatError(path + ": the field \"schema\" is not a version number");
    if (it->get<int64_t>() > kRunSchema)
      throw RunRefused(path + ": written by a newer asdcap (run folder schema " + std::to_string(it->get<int64_t>()) +
                       "; this asdcap " ASDCAP_VERSION " reads schemas 1 to " + std::to_string(kRunSchema) + ")");
    s.schema = it->get<int>();
  }
  const FieldReader f(j, path, s.schema);
  f.string("asdcap_version", s.asdcap_version);
  f.string("data_root", s.data_root);
  f.string("backend", s.backend);
  f.string("backend_identity", s.backend_identity);
  f.string_or_null("model", s.model);
  f.integer("k", s.k);
  s.channels = "mean";
  f.string("channels", s.channels);
  if (s.channels != "mean" && s.channels != "concat")
    throw FormatError(path + ": \"channels\" is \"" + s.channels + "\" (expected mean or concat)");
  f.strings("machines", s.machines);
  f.string("created", s.created);
  f.integer("n_scored", s.n_scored);
  f.integer("n_skipped", s.n_skipped);
  f.integer("n_embedded", s.n_embedded);
  f.integer("n_cache_hits", s.n_cache_hits);
  if (s.schema == 1) {
    // "crop" held the cache key: the policy text, or "random@content-sha256" for the default
    // random crop seeded by each clip's content (also what a run.json without "crop" meant).
    std::string key = kContentSeededKey;
    f.string("crop", key);
    s.cache_key = key;
    s.crop = key == kContentSeededKey ? "random" : key;
  } else {
    f.string("crop", s.crop);
    f.string("cache_key", s.cache_key);
    f.strings("files", s.files);
  }
  for (const auto& file : s.files) {
    if (file.empty() || file.find('/') != std::string::npos || file == "." || file == "..")
      throw FormatError(path + ": lists \"" + file + "\", which is not a file name in the run folder");
    if (!fs::is_regular_file(join(dir, file), ec))
      throw RunRefused(path + ": lists " + file + ", which is missing: the run is incomplete (interrupted, or " +
                       "files were removed); run detection again");
  }
  return s;
}

void publish_detection_run(const std::string& dir, RunSettings settings, const std::vector<ResultRow>& results,
                           const std::vector<ScoredClip>& scored, const std::vector<SkippedRecord>& skipped,
                           const std::function<void()>& before_run_json) {
  remove_file(join(dir, run_files::kSettings));
  settings.files = {run_files::kResults};
  write_results(dir, results);

  std::map<std::pair<std::string, std::string>, std::vector<const ScoredClip*>> groups;
  for (const auto& c : scored) groups[{c.machine, c.id}].push_back(&c);
  std::set<std::string> written;
  for (const auto& [key, clips] : groups) {
    std::vector<DcaseScore> scores;
    std::vector<DcaseDecision> decisions;
    for (const ScoredClip* c : clips) {
      const std::string name = fs::path(c->path).filename().string();
      scores.push_back({name, c->score});
      decisions.push_back({name, c->decision});
    }
    write_anomaly_scores(dir, key.first, key.second, std::move(scores));
    write_decision_results(dir, key.first, key.second, std::move(decisions));
    for (const auto& name :
         {run_files::anomaly_scores(key.first, key.second), run_files::decision_results(key.first, key.second)}) {
      settings.files.push_back(name);
      written.insert(name);
    }
  }
  write_neighbors(dir, scored);
  settings.files.push_back(run_files::kNeighbors);
  write_skipped(dir, skipped);
  settings.files.push_back(run_files::kSkipped);

  // DCASE files of machine IDs an earlier run of this folder scored and this one did not.
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (is_dcase_file(name) && !written.count(name)) remove_file(e.path().string());
  }
  if (ec) throw IoError(dir + ": cannot list the folder: " + ec.message());
  // Explanations describe an earlier detection, not this one. Their answers stay reusable (explain
  // reuses an answer only for an identical prompt): the file becomes the partial one unless an
  // interrupted explain left a newer partial file.
  const std::string explanations = join(dir, run_files::kExplanations);
  if (fs::exists(explanations, ec)) {
    const std::string partial = join(dir, run_files::kExplanationsPartial);
    if (fs::exists(partial, ec))
      remove_file(explanations);
    else if (std::rename(explanations.c_str(), partial.c_str()) != 0)
      throw IoError(explanations + ": cannot set aside: " + std::strerror(errno));
  }
  if (before_run_json) before_run_json();
  write_run_settings(dir, settings);
}

RunLock::RunLock(const std::string& dir) {
  const std::string path = join(dir, run_files::kLock);
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) throw IoError(path + ": cannot create the run folder's lock file: " + std::strerror(errno));
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    ::close(fd_);
    fd_ = -1;
    if (err == EWOULDBLOCK)
      throw IoError(dir + ": another asdcap process is writing this run folder (it holds " + path +
                    "); wait until it has finished");
    throw IoError(path + ": cannot lock: " + std::strerror(err));
  }
}

RunLock::~RunLock() {
  if (fd_ >= 0) ::close(fd_);  // releases the lock
}

namespace run_files {
std::string anomaly_scores(const std::string& machine, const std::string& id) {
  return "anomaly_score_" + machine + "_" + id + ".csv";
}
std::string decision_results(const std::string& machine, const std::string& id) {
  return "decision_result_" + machine + "_" + id + ".csv";
}
}  // namespace run_files

}  // namespace asdcap
