#include "run_inputs.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "asdcap/error.hpp"
#include "asdcap/files.hpp"

namespace asdcap::explain_detail {

namespace {

std::string str(const nlohmann::json& j, const char* key) {
  return j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : std::string();
}

double num(const nlohmann::json& j, const char* key) {
  if (!j.contains(key) || !j[key].is_number()) throw FormatError(std::string("no number \"") + key + "\"");
  return j[key].get<double>();
}

}  // namespace

std::vector<ScoredClip> read_neighbors(const std::string& path, std::vector<int>* bad_lines) {
  std::ifstream in(path);
  if (!in) throw IoError(path + ": cannot open");
  std::vector<ScoredClip> clips;
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    try {
      const auto j = nlohmann::json::parse(line);
      ScoredClip c;
      c.file = str(j, "file");
      c.path = str(j, "path");
      c.machine = str(j, "machine");
      c.id = str(j, "id");
      if (c.path.empty() || c.machine.empty()) throw FormatError("no path or machine");
      c.label = j.contains("label") ? j["label"] : nlohmann::json();
      c.domain = j.contains("domain") ? j["domain"] : nlohmann::json();
      c.score = num(j, "score");
      c.threshold = j.contains("threshold") && j["threshold"].is_number() ? j["threshold"].get<double>() : 0.0;
      c.decision = j.contains("decision") && j["decision"].is_number() ? j["decision"].get<int>() : 0;
      if (j.contains("neighbors") && j["neighbors"].is_array())
        for (const auto& n : j["neighbors"])
          c.neighbors.push_back({str(n, "file"), str(n, "path"),
                                 n.contains("distance") && n["distance"].is_number() ? n["distance"].get<double>() : 0.0});
      clips.push_back(std::move(c));
    } catch (const std::exception&) {
      if (bad_lines) bad_lines->push_back(number);
    }
  }
  return clips;
}

std::vector<ScoredClip> select_flagged(const std::vector<ScoredClip>& clips, int top, int* n_flagged) {
  std::vector<ScoredClip> flagged;
  for (const auto& c : clips)
    if (c.decision == 1) flagged.push_back(c);
  if (n_flagged) *n_flagged = static_cast<int>(flagged.size());
  std::stable_sort(flagged.begin(), flagged.end(), [](const ScoredClip& a, const ScoredClip& b) {
    if (a.machine != b.machine) return a.machine < b.machine;
    if (a.id != b.id) return a.id < b.id;
    if (a.score != b.score) return a.score > b.score;
    return a.file < b.file;
  });
  if (top <= 0) return flagged;
  std::vector<ScoredClip> out;
  int taken = 0;
  for (size_t i = 0; i < flagged.size(); ++i) {
    if (i == 0 || flagged[i].machine != flagged[i - 1].machine || flagged[i].id != flagged[i - 1].id) taken = 0;
    if (taken++ < top) out.push_back(flagged[i]);
  }
  return out;
}

RunSettings read_run_settings(const std::string& run_json) {
  RunSettings s;
  if (!std::filesystem::exists(run_json)) return s;
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_text_file(run_json));
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(run_json + ": not valid JSON (" + e.what() + ")");
  }
  if (j.contains("crop") && j["crop"].is_string()) {
    try {
      s.crop = CropPolicy::parse(j["crop"].get<std::string>());
    } catch (const Error&) {
      // A crop description this version cannot parse: keep the default policy.
    }
  }
  if (j.contains("channels") && j["channels"].is_string() && j["channels"] == "concat")
    s.channels = ChannelMode::Concat;
  s.data_root = str(j, "data_root");
  return s;
}

std::map<std::string, nlohmann::ordered_json> read_previous_records(const std::vector<std::string>& paths) {
  std::map<std::string, nlohmann::ordered_json> records;
  for (const auto& path : paths) {
    std::ifstream in(path);
    if (!in) continue;
    std::string line;
    while (std::getline(in, line)) {
      try {
        auto j = nlohmann::ordered_json::parse(line);
        if (j.is_object() && j.contains("path") && j["path"].is_string()) {
          const std::string key = j["path"].get<std::string>();  // before j is moved from
          records[key] = std::move(j);
        }
      } catch (const nlohmann::json::exception&) {
        // A damaged line of an earlier run is only a lost cache entry.
      }
    }
  }
  return records;
}

}  // namespace asdcap::explain_detail
