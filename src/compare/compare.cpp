// run_compare: every system on the same dataset, one run folder each, then the table and the page.
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "asdcap/backend.hpp"
#include "asdcap/compare.hpp"
#include "asdcap/error.hpp"
#include "asdcap/report.hpp"
#include "compare/compare_internal.hpp"
#include "core/clock.hpp"
#include "core/files.hpp"

namespace asdcap {
namespace fs = std::filesystem;
using nlohmann::ordered_json;

namespace {

bool safe_label(const std::string& label) {
  if (label.empty() || label.size() > 64 || label == "." || label == "..") return false;
  for (char c : label)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')) return false;
  return true;
}

}  // namespace

std::vector<CompareSystem> resolve_compare_systems(std::vector<CompareSystem> systems) {
  if (systems.empty()) {
    for (const char* name : {"acoustic", "ae"})
      for (const auto& known : backend_names())
        if (known == name) systems.push_back({name, name, ""});
  }
  std::set<std::string> seen;
  for (auto& s : systems) {
    if (s.backend.empty() && s.model_path.empty())
      throw InvalidArgument("a compared system needs a backend or a model file");
    if (s.label.empty()) s.label = s.model_path.empty() ? s.backend : fs::path(s.model_path).stem().string();
    if (!safe_label(s.label))
      throw InvalidArgument("system label '" + s.label +
                            "' cannot name a folder (letters, digits, '-', '_' and '.', at most 64 characters)");
    if (!seen.insert(s.label).second)
      throw InvalidArgument("two compared systems are labelled '" + s.label + "': give each a distinct label");
  }
  return systems;
}

void write_compare_manifest(const std::string& dir, const CompareManifest& m) {
  ordered_json j;
  j["schema"] = kRunSchema;
  j["data_root"] = m.data_root;
  j["created"] = m.created;
  j["systems"] = ordered_json::array();
  for (size_t i = 0; i < m.systems.size(); ++i)
    j["systems"].push_back(
        {{"label", m.systems[i].label},
         {"backend", m.backends[i]},
         {"model", m.systems[i].model_path.empty() ? ordered_json() : ordered_json(m.systems[i].model_path)},
         {"run", m.systems[i].label}});
  write_file_atomic((fs::path(dir) / kCompareManifest).string(), j.dump(2) + "\n");
}

CompareManifest read_compare_manifest(const std::string& dir) {
  const std::string path = (fs::path(dir) / kCompareManifest).string();
  ordered_json j;
  try {
    j = ordered_json::parse(read_text_file(path));
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(path + ": not valid JSON (" + e.what() + ")");
  }
  CompareManifest m;
  try {
    if (j.value("schema", 0) > kRunSchema)
      throw RunRefused(path + ": written by a newer asdcap (schema " + std::to_string(j.value("schema", 0)) + ")");
    m.data_root = j.at("data_root").get<std::string>();
    m.created = j.value("created", "");
    for (const auto& s : j.at("systems")) {
      CompareSystem sys;
      sys.label = s.at("label").get<std::string>();
      if (!safe_label(sys.label)) throw FormatError(path + ": system label '" + sys.label + "' is not a folder name");
      if (s.contains("model") && s["model"].is_string()) sys.model_path = s["model"].get<std::string>();
      sys.backend = s.at("backend").get<std::string>();
      m.backends.push_back(sys.backend);
      m.systems.push_back(std::move(sys));
    }
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(path + ": " + e.what());
  }
  return m;
}

bool is_compare_folder(const std::string& dir) { return fs::exists(fs::path(dir) / kCompareManifest); }

CompareResult run_compare(const CompareOptions& options) {
  if (options.data_root.empty()) throw InvalidArgument("compare needs a dataset folder");
  if (options.out_dir.empty()) throw InvalidArgument("compare needs an output folder");
  const std::vector<CompareSystem> systems = resolve_compare_systems(options.systems);
  std::error_code ec;
  fs::create_directories(options.out_dir, ec);
  if (ec) throw IoError(options.out_dir + ": cannot create the folder (" + ec.message() + ")");
  // A new comparison replaces the old one as a unit: its manifest goes first, and is written again last.
  fs::remove(fs::path(options.out_dir) / kCompareManifest, ec);

  CompareResult result;
  result.out_dir = options.out_dir;
  std::vector<std::string> labels, backends;
  std::vector<std::vector<ResultRow>> results;
  // Every system on the same pass over the clips: each clip is decoded once for all of them.
  std::vector<DetectOptions> runs;
  for (const auto& s : systems) {
    DetectOptions d = options.detect;
    d.data_root = options.data_root;
    d.out_dir = (fs::path(options.out_dir) / s.label).string();
    d.backend = s.backend;
    d.model_path = s.model_path;
    runs.push_back(std::move(d));
    if (!options.detect.quiet) std::fprintf(stderr, "compare: %s\n", s.label.c_str());
  }
  const std::vector<DetectSummary> summaries = run_detect_systems(runs);
  for (size_t i = 0; i < systems.size(); ++i) {
    labels.push_back(systems[i].label);
    backends.push_back(read_run_settings(runs[i].out_dir).backend);
    results.push_back(result_lines(summaries[i]));
    result.run_dirs.push_back(runs[i].out_dir);
    ReportOptions ro;
    ro.out_dir = runs[i].out_dir;
    ro.threads = options.detect.threads;
    build_report(ro);
  }
  result.table = make_compare_table(labels, backends, results);
  write_compare_table((fs::path(options.out_dir) / kCompareTable).string(), result.table);
  CompareManifest manifest;
  manifest.data_root = fs::absolute(options.data_root).string();
  manifest.created = utc_now();
  manifest.systems = systems;
  manifest.backends = backends;
  build_compare_report(options.out_dir, result.table, manifest);
  write_compare_manifest(options.out_dir, manifest);
  return result;
}

std::string build_compare_report(const std::string& dir) {
  const CompareManifest manifest = read_compare_manifest(dir);
  CompareTable table = read_compare_table((fs::path(dir) / kCompareTable).string());
  if (table.systems.size() != manifest.systems.size())
    throw FormatError((fs::path(dir) / kCompareTable).string() + ": its columns do not match compare.json's systems");
  table.backends = manifest.backends;
  return build_compare_report(dir, table, manifest);
}

}  // namespace asdcap
