// Reading a run folder for the report. Bad content never throws: it becomes a `problems` line.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "asdcap/error.hpp"
#include "asdcap/report_parts.hpp"

namespace asdcap::report {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::vector<std::string> split_csv_line(const std::string& line) {
  std::vector<std::string> cells(1);
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') cells.back() += '"', ++i;
      else if (c == '"') quoted = false;
      else cells.back() += c;
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      cells.emplace_back();
    } else if (c != '\r') {
      cells.back() += c;
    }
  }
  return cells;
}

std::optional<double> number_cell(const std::string& s) {
  if (s.empty()) return std::nullopt;
  try {
    size_t used = 0;
    double v = std::stod(s, &used);
    if (used != s.size() || !std::isfinite(v)) return std::nullopt;
    return v;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

std::optional<std::string> opt_string(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::nullopt;
  return it->get<std::string>();
}

std::optional<double> opt_number(const json& j) {
  if (!j.is_number()) return std::nullopt;
  double v = j.get<double>();
  if (!std::isfinite(v)) return std::nullopt;
  return v;
}

double number_or(const json& j, const char* key, double fallback) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number()) return fallback;
  return it->get<double>();
}

std::vector<NeighborRef> parse_neighbors(const json& j) {
  std::vector<NeighborRef> out;
  auto it = j.find("neighbors");
  if (it == j.end() || !it->is_array()) return out;
  for (const auto& n : *it)
    out.push_back({n.value("file", std::string()), n.value("path", std::string()), number_or(n, "distance", NAN)});
  return out;
}

// Calls `on_line` for each non-empty line of DIR/name; records parse failures as problems.
template <typename F>
bool read_jsonl(const fs::path& file, RunData& run, F on_line) {
  std::ifstream in(file);
  if (!in) return false;
  std::string line;
  int lineno = 0, bad = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    try {
      on_line(json::parse(line));
    } catch (const std::exception& e) {
      if (++bad <= 5)
        run.problems.push_back(file.filename().string() + " line " + std::to_string(lineno) +
                               " could not be read: " + e.what());
    }
  }
  if (bad > 5)
    run.problems.push_back(file.filename().string() + ": " + std::to_string(bad - 5) + " more unreadable lines");
  return true;
}

void load_results(const fs::path& file, RunData& run) {
  std::ifstream in(file);
  if (!in) return;
  run.has_results = true;
  std::string line;
  std::getline(in, line);
  auto header = split_csv_line(line);
  std::map<std::string, size_t> col;
  for (size_t i = 0; i < header.size(); ++i) col[header[i]] = i;
  for (const char* need : {"machine", "id", "auc", "pauc"})
    if (!col.count(need)) {
      run.problems.push_back("results.csv: the header lacks the column '" + std::string(need) + "'");
      return;
    }
  int lineno = 1;
  while (std::getline(in, line)) {
    ++lineno;
    if (line.empty() || line == "\r") continue;
    auto cells = split_csv_line(line);
    auto cell = [&](const char* name) -> std::string {
      auto it = col.find(name);
      return it != col.end() && it->second < cells.size() ? cells[it->second] : std::string();
    };
    ResultRow row;
    row.machine = cell("machine");
    row.id = cell("id");
    if (row.machine.empty()) {
      run.problems.push_back("results.csv line " + std::to_string(lineno) + " has no machine");
      continue;
    }
    if (row.id == "average") row.kind = ResultRow::Kind::Average;
    if (row.machine == "overall" || row.id == "overall" || row.machine == "all") row.kind = ResultRow::Kind::Overall;
    row.auc = number_cell(cell("auc"));
    row.pauc = number_cell(cell("pauc"));
    row.threshold = number_cell(cell("threshold"));
    row.threshold_rule = cell("threshold_rule");
    row.n_normal = static_cast<long>(number_cell(cell("n_normal")).value_or(0));
    row.n_anomaly = static_cast<long>(number_cell(cell("n_anomaly")).value_or(0));
    run.results.push_back(std::move(row));
  }
}

}  // namespace

Explanation parse_explanation(const json& j) {
  Explanation e;
  e.file = j.value("file", std::string());
  e.path = j.value("path", std::string());
  e.machine = j.value("machine", std::string());
  e.id = j.value("id", std::string());
  e.label = opt_string(j, "label");
  e.score = number_or(j, "score", NAN);
  e.threshold = number_or(j, "threshold", NAN);
  e.neighbors = parse_neighbors(j);
  if (auto c = j.find("captions"); c != j.end() && c->is_object()) {
    e.caption_anomalous = opt_string(*c, "anomalous");
    if (auto n = c->find("neighbors"); n != c->end() && n->is_array())
      for (const auto& s : *n) e.caption_neighbors.push_back(s.is_string() ? std::optional(s.get<std::string>()) : std::nullopt);
    e.captions_missing = opt_string(*c, "missing_reason");
  } else {
    e.captions_missing = "no captions in this record";
  }
  if (auto s = j.find("similarity"); s != j.end() && s->is_object()) {
    if (auto t = s->find("texts"); t != s->end() && t->is_array()) e.sim_texts = t->get<std::vector<std::string>>();
    if (auto a = s->find("anomalous"); a != s->end() && a->is_array()) e.sim_anomalous = a->get<std::vector<double>>();
    if (auto n = s->find("neighbors"); n != s->end() && n->is_array())
      e.sim_neighbors = n->get<std::vector<std::vector<double>>>();
    e.similarity_missing = opt_string(*s, "missing_reason");
  }
  if (auto ev = j.find("evidence"); ev != j.end() && ev->is_object())
    if (auto fs_ = ev->find("features"); fs_ != ev->end() && fs_->is_array())
      for (const auto& f : *fs_) {
        EvidenceFeature x;
        x.key = f.value("key", std::string());
        x.name = f.value("name", x.key);
        x.unit = f.value("unit", std::string());
        if (auto a = f.find("anomalous"); a != f.end()) x.anomalous = opt_number(*a);
        if (auto z = f.find("z"); z != f.end()) x.z = opt_number(*z);
        if (auto n = f.find("neighbors"); n != f.end() && n->is_array())
          for (const auto& v : *n) x.neighbors.push_back(opt_number(v));
        e.evidence.push_back(std::move(x));
      }
  if (auto m = j.find("methods"); m != j.end() && m->is_object())
    for (const auto& [name, v] : m->items()) {
      MethodAnswer a;
      a.prompt = opt_string(v, "prompt");
      a.answer = opt_string(v, "answer");
      a.model = opt_string(v, "model");
      a.error = opt_string(v, "error");
      a.backend = v.contains("backend") && v["backend"].is_string() ? v["backend"].get<std::string>() : "";
      a.seconds = number_or(v, "seconds", 0);
      e.methods.emplace_back(name, std::move(a));
    }
  return e;
}

RunData load_run(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw IoError(dir + ": not a folder (expected a run folder written by `asdcap detect`)");
  RunData run;
  run.dir = dir;
  const fs::path root(dir);

  if (std::ifstream in(root / "run.json"); in) {
    try {
      run.run = json::parse(in);
    } catch (const std::exception& e) {
      run.problems.push_back(std::string("run.json could not be read: ") + e.what());
    }
  }
  load_results(root / "results.csv", run);
  if (!run.has_results) run.problems.push_back("results.csv: not found (run `asdcap detect` first)");

  run.has_neighbors = read_jsonl(root / "neighbors.jsonl", run, [&](const json& j) {
    ScoredClip c;  // file, machine, id and score are required
    c.file = j.at("file").get<std::string>();
    c.path = j.value("path", std::string());
    c.machine = j.at("machine").get<std::string>();
    c.id = j.at("id").get<std::string>();
    c.label = opt_string(j, "label");
    c.domain = opt_string(j, "domain");
    c.score = j.at("score").get<double>();
    c.threshold = number_or(j, "threshold", NAN);
    c.decision = j.contains("decision") && j["decision"].is_number() ? j["decision"].get<int>() : 0;
    c.neighbors = parse_neighbors(j);
    run.clips.push_back(std::move(c));
  });
  if (!run.has_neighbors) run.problems.push_back("neighbors.jsonl: not found, so no score distributions");

  run.has_explanations = read_jsonl(root / "explanations.jsonl", run,
                                    [&](const json& j) { run.explanations.push_back(parse_explanation(j)); });
  run.has_skipped = read_jsonl(root / "skipped.jsonl", run, [&](const json& j) {
    run.skipped.push_back({j.value("path", std::string("?")), j.value("stage", std::string("?")),
                           j.value("reason", std::string("no reason given"))});
  });
  return run;
}

}  // namespace asdcap::report
