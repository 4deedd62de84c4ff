// The JSON-lines files: neighbors.jsonl, skipped.jsonl, explanations.jsonl (appended record by record).
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "asdcap/run.hpp"
#include "core/files.hpp"
#include "run/run_io.hpp"

namespace asdcap {
namespace fs = std::filesystem;
using nlohmann::json;
using nlohmann::ordered_json;
using ojson = nlohmann::ordered_json;  // read with the keys in the file's order
using run_detail::join;
using run_detail::jsonl_line;

namespace {

// ---- writing --------------------------------------------------------------------------------
template <typename Json>
Json number_or_null(double v) {
  return std::isfinite(v) ? Json(v) : Json(nullptr);
}

template <typename Json, typename T>
Json optional_json(const std::optional<T>& v) {
  return v ? Json(*v) : Json(nullptr);
}

void write_lines(const std::string& path, const std::string& text) { write_file_atomic(path, text); }

// ---- reading --------------------------------------------------------------------------------
std::string required_string(const ojson& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_string()) throw FormatError(std::string("no string \"") + key + "\"");
  return it->get<std::string>();
}

std::string string_or(const ojson& j, const char* key, const std::string& fallback = "") {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : fallback;
}

std::optional<std::string> optional_string(const ojson& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_string()) return std::nullopt;
  return it->get<std::string>();
}

// A number, or NaN when absent or null.
double number_or_nan(const ojson& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return NAN;
  if (!it->is_number()) throw FormatError(std::string("\"") + key + "\" is not a number");
  return it->get<double>();
}

std::optional<double> optional_number(const ojson& j) {
  if (!j.is_number()) return std::nullopt;
  return j.get<double>();
}

std::optional<double> optional_number(const ojson& j, const char* key) {
  auto it = j.find(key);
  return it == j.end() ? std::nullopt : optional_number(*it);
}

const ojson* array_at(const ojson& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_array() ? &*it : nullptr;
}

const ojson* object_at(const ojson& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_object() ? &*it : nullptr;
}

std::vector<Neighbor> neighbors_of(const ojson& j) {
  std::vector<Neighbor> out;
  if (const ojson* a = array_at(j, "neighbors"))
    for (const auto& n : *a) {
      if (!n.is_object()) throw FormatError("a neighbour is not an object");
      out.push_back({string_or(n, "file"), string_or(n, "path"), number_or_nan(n, "distance")});
    }
  return out;
}

std::vector<double> numbers(const ojson& a) {
  std::vector<double> out;
  for (const auto& v : a) out.push_back(v.is_number() ? v.get<double>() : NAN);
  return out;
}

// ---- explanation records ----------------------------------------------------------------------
ordered_json neighbors_json(const std::vector<Neighbor>& neighbors) {
  ordered_json a = ordered_json::array();
  for (const auto& n : neighbors) a.push_back({{"file", n.file}, {"path", n.path}, {"distance", n.distance}});
  return a;
}

ordered_json method_json(const MethodRecord& m) {
  ordered_json j = {{"prompt", optional_json<ordered_json>(m.prompt)},
                    {"answer", optional_json<ordered_json>(m.answer)},
                    {"backend", m.backend},
                    {"model", optional_json<ordered_json>(m.model)},
                    {"error", optional_json<ordered_json>(m.error)},
                    {"seconds", m.seconds}};
  if (m.missing_reason) j["missing_reason"] = *m.missing_reason;
  if (m.named) j["named"] = *m.named;
  if (m.reused) j["reused"] = true;
  if (m.attempts) j["attempts"] = *m.attempts;
  if (m.request) j["request"] = *m.request;
  return j;
}

ordered_json explanation_json(const ExplanationRecord& r) {
  ordered_json j;
  j["file"] = r.file;
  j["path"] = r.path;
  j["machine"] = r.machine;
  j["id"] = r.id;
  j["score"] = r.score;
  j["threshold"] = r.threshold;
  j["label"] = optional_json<ordered_json>(r.label);
  j["domain"] = optional_json<ordered_json>(r.domain);
  j["neighbors"] = neighbors_json(r.neighbors);
  ordered_json features = ordered_json::array();
  for (const auto& f : r.evidence) {
    ordered_json nb = ordered_json::array();
    for (const auto& v : f.neighbors) nb.push_back(optional_json<ordered_json>(v));
    ordered_json feature = {{"key", f.key},
                            {"name", f.name},
                            {"unit", f.unit},
                            {"anomalous", optional_json<ordered_json>(f.anomalous)},
                            {"neighbors", nb},
                            {"z", optional_json<ordered_json>(f.z)},
                            {"reference_mean", optional_json<ordered_json>(f.reference_mean)}};
    if (f.z_all) feature["z_all"] = *f.z_all;
    if (f.percentile) feature["percentile"] = *f.percentile;
    if (f.strength) feature["strength"] = *f.strength;
    if (!f.times.empty()) feature["times"] = f.times;
    features.push_back(std::move(feature));
  }
  ordered_json unreadable = ordered_json::array();
  for (const auto& u : r.unreadable_neighbors) unreadable.push_back({{"path", u.path}, {"reason", u.reason}});
  j["evidence"] = {{"features", features}, {"burst_times", r.burst_times}, {"unreadable_neighbors", unreadable}};

  const CaptionsRecord& c = r.captions;
  ordered_json caption_neighbors = ordered_json::array();
  for (const auto& n : c.neighbors) caption_neighbors.push_back(optional_json<ordered_json>(n));
  j["captions"] = {{"anomalous", optional_json<ordered_json>(c.anomalous)}, {"neighbors", caption_neighbors}};
  if (c.prompt) j["captions"]["prompt"] = *c.prompt;
  j["captions"]["missing_reason"] = optional_json<ordered_json>(c.missing_reason);

  const SimilarityRecord& s = r.similarity;
  j["similarity"] = {{"texts", s.texts},
                     {"anomalous", optional_json<ordered_json>(s.anomalous)},
                     {"neighbors", s.neighbors},
                     {"missing_reason", optional_json<ordered_json>(s.missing_reason)}};
  ordered_json methods = ordered_json::object();
  for (const auto& [name, m] : r.methods) methods[name] = method_json(m);
  j["methods"] = methods;
  if (r.timings)
    j["timings"] = {{"evidence_s_all_clips", r.timings->evidence_s_all_clips},
                    {"captions_s", r.timings->captions_s},
                    {"similarity_s", r.timings->similarity_s},
                    {"llm_s", r.timings->llm_s},
                    {"total_s", r.timings->total_s}};
  j["schema"] = kRunSchema;
  return j;
}

ExplanationRecord parse_explanation(const ojson& j) {
  ExplanationRecord e;
  e.file = required_string(j, "file");
  e.path = string_or(j, "path");
  e.machine = required_string(j, "machine");
  e.id = required_string(j, "id");
  e.score = number_or_nan(j, "score");
  e.threshold = number_or_nan(j, "threshold");
  e.label = optional_string(j, "label");
  e.domain = optional_string(j, "domain");
  e.neighbors = neighbors_of(j);
  if (const ojson* ev = object_at(j, "evidence")) {
    if (const ojson* features = array_at(*ev, "features"))
      for (const auto& f : *features) {
        EvidenceFeature x;
        x.key = string_or(f, "key");
        x.name = string_or(f, "name", x.key);
        x.unit = string_or(f, "unit");
        x.anomalous = optional_number(f, "anomalous");
        x.z = optional_number(f, "z");
        x.reference_mean = optional_number(f, "reference_mean");
        x.z_all = optional_number(f, "z_all");
        x.percentile = optional_number(f, "percentile");
        x.strength = optional_number(f, "strength");
        if (const ojson* n = array_at(f, "neighbors"))
          for (const auto& v : *n) x.neighbors.push_back(optional_number(v));
        if (const ojson* t = array_at(f, "times")) x.times = numbers(*t);
        e.evidence.push_back(std::move(x));
      }
    if (const ojson* t = array_at(*ev, "burst_times")) e.burst_times = numbers(*t);
    if (const ojson* u = array_at(*ev, "unreadable_neighbors"))
      for (const auto& x : *u) e.unreadable_neighbors.push_back({string_or(x, "path"), string_or(x, "reason")});
  }
  if (const ojson* c = object_at(j, "captions")) {
    e.captions.anomalous = optional_string(*c, "anomalous");
    if (const ojson* n = array_at(*c, "neighbors"))
      for (const auto& s : *n)
        e.captions.neighbors.push_back(s.is_string() ? std::optional(s.get<std::string>()) : std::nullopt);
    e.captions.prompt = optional_string(*c, "prompt");
    e.captions.missing_reason = optional_string(*c, "missing_reason");
  } else {
    e.captions.missing_reason = "no captions in this record";
  }
  if (const ojson* s = object_at(j, "similarity")) {
    if (const ojson* t = array_at(*s, "texts"))
      for (const auto& x : *t) e.similarity.texts.push_back(x.is_string() ? x.get<std::string>() : std::string());
    if (const ojson* a = array_at(*s, "anomalous"); a && !a->empty()) e.similarity.anomalous = numbers(*a);
    if (const ojson* n = array_at(*s, "neighbors"))
      for (const auto& row : *n)
        if (row.is_array()) e.similarity.neighbors.push_back(numbers(row));
    e.similarity.missing_reason = optional_string(*s, "missing_reason");
  }
  if (const ojson* m = object_at(j, "methods"))
    for (const auto& [name, v] : m->items()) {
      MethodRecord a;
      a.prompt = optional_string(v, "prompt");
      a.answer = optional_string(v, "answer");
      a.backend = string_or(v, "backend");
      a.model = optional_string(v, "model");
      a.error = optional_string(v, "error");
      a.seconds = v.contains("seconds") && v["seconds"].is_number() ? v["seconds"].get<double>() : 0.0;
      a.missing_reason = optional_string(v, "missing_reason");
      if (const ojson* n = array_at(v, "named")) {
        a.named.emplace();
        for (const auto& x : *n)
          if (x.is_string()) a.named->push_back(x.get<std::string>());
      }
      a.reused = v.contains("reused") && v["reused"].is_boolean() && v["reused"].get<bool>();
      if (v.contains("attempts") && v["attempts"].is_number_integer()) a.attempts = v["attempts"].get<int>();
      a.request = optional_string(v, "request");
      e.methods.emplace_back(name, std::move(a));
    }
  if (const ojson* t = object_at(j, "timings")) {
    auto num = [&](const char* key) {
      return t->contains(key) && (*t)[key].is_number() ? (*t)[key].get<double>() : 0.0;
    };
    e.timings = ExplainTimings{num("evidence_s_all_clips"), num("captions_s"), num("similarity_s"), num("llm_s"),
                               num("total_s")};
  }
  return e;
}

}  // namespace

namespace run_detail {
nlohmann::ordered_json explanation_record_json(const ExplanationRecord& r) { return explanation_json(r); }
}  // namespace run_detail

// ---- neighbors.jsonl --------------------------------------------------------------------------
void write_neighbors(const std::string& dir, const std::vector<ScoredClip>& clips) {
  std::string text;
  for (const auto& c : clips) {
    json nb = json::array();
    for (const auto& n : c.neighbors) nb.push_back({{"file", n.file}, {"path", n.path}, {"distance", n.distance}});
    const json line = {{"schema", kRunSchema},
                       {"file", c.file},
                       {"path", c.path},
                       {"machine", c.machine},
                       {"id", c.id},
                       {"split", c.split},
                       {"label", optional_json<json>(c.label)},
                       {"domain", optional_json<json>(c.domain)},
                       {"score", number_or_null<json>(c.score)},
                       {"threshold", number_or_null<json>(c.threshold)},
                       {"decision", c.decision},
                       {"neighbors", nb}};
    text += jsonl_line(line);
  }
  write_lines(join(dir, run_files::kNeighbors), text);
}

std::vector<ScoredClip> read_neighbors(const std::string& dir, std::vector<std::string>* problems) {
  std::vector<ScoredClip> clips;
  run_detail::read_jsonl(join(dir, run_files::kNeighbors), false, problems, [&](const ojson& j) {
    ScoredClip c;
    c.file = required_string(j, "file");
    c.path = string_or(j, "path");
    c.machine = required_string(j, "machine");
    c.id = required_string(j, "id");
    if (c.machine.empty()) throw FormatError("no machine");
    c.split = string_or(j, "split", "test");
    c.label = optional_string(j, "label");
    c.domain = optional_string(j, "domain");
    if (!j.contains("score") || !j["score"].is_number()) throw FormatError("no number \"score\"");
    c.score = j["score"].get<double>();
    c.threshold = number_or_nan(j, "threshold");
    c.decision = j.contains("decision") && j["decision"].is_number() ? j["decision"].get<int>() : 0;
    c.neighbors = neighbors_of(j);
    clips.push_back(std::move(c));
  });
  return clips;
}

// ---- skipped.jsonl ----------------------------------------------------------------------------
void write_skipped(const std::string& dir, const std::vector<SkippedRecord>& records) {
  std::string text;
  for (const auto& s : records)
    text += jsonl_line(json{{"schema", kRunSchema}, {"path", s.path}, {"stage", s.stage}, {"reason", s.reason}});
  write_lines(join(dir, run_files::kSkipped), text);
}

std::vector<SkippedRecord> read_skipped(const std::string& dir, std::vector<std::string>* problems) {
  std::vector<SkippedRecord> records;
  run_detail::read_jsonl(join(dir, run_files::kSkipped), false, problems, [&](const ojson& j) {
    records.push_back(
        {string_or(j, "path", "?"), string_or(j, "stage", "?"), string_or(j, "reason", "no reason given")});
  });
  return records;
}

// ---- explanations.jsonl -----------------------------------------------------------------------
std::vector<ExplanationRecord> read_explanations(const std::string& path, std::vector<std::string>* problems) {
  std::vector<ExplanationRecord> records;
  run_detail::read_jsonl(path, true, problems, [&](const ojson& j) { records.push_back(parse_explanation(j)); });
  return records;
}

ExplanationWriter::ExplanationWriter(const std::string& dir)
    : dir_(dir), partial_(join(dir, run_files::kExplanationsPartial)) {
  fd_ = ::open(partial_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
  if (fd_ < 0) throw IoError(partial_ + ": cannot create: " + std::strerror(errno));
}

ExplanationWriter::~ExplanationWriter() {
  if (fd_ >= 0) ::close(fd_);
}

void ExplanationWriter::append(const ExplanationRecord& record) {
  if (fd_ < 0) throw IoError(partial_ + ": already committed");
  const std::string line = jsonl_line(explanation_json(record));
  // One write of the whole line (O_APPEND); the loop only matters if the kernel writes part of it.
  size_t done = 0;
  while (done < line.size()) {
    const ssize_t n = ::write(fd_, line.data() + done, line.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw IoError(partial_ + ": write failed: " + std::strerror(errno));
    done += static_cast<size_t>(n);
  }
}

std::string ExplanationWriter::commit() {
  if (fd_ < 0) throw IoError(partial_ + ": already committed");
  const std::string final_path = join(dir_, run_files::kExplanations);
  if (::fsync(fd_) != 0) throw IoError(partial_ + ": fsync failed: " + std::strerror(errno));
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) throw IoError(partial_ + ": close failed: " + std::strerror(errno));
  if (std::rename(partial_.c_str(), final_path.c_str()) != 0)
    throw IoError(final_path + ": cannot rename " + partial_ + " to it: " + std::strerror(errno));
  if (const int d = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); d >= 0) {
    ::fsync(d);  // makes the rename durable
    ::close(d);
  }
  return final_path;
}

}  // namespace asdcap
