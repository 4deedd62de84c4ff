// The files of a detection run (layout in docs/detection.md, "Output folder") and the stdout table.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "asdcap/files.hpp"
#include "detect_internal.hpp"

namespace asdcap {
namespace fs = std::filesystem;
using nlohmann::json;

namespace detail {

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string format_number(double v, const char* fmt) {
  if (std::isnan(v)) return "nan";
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, v);
  return buf;
}

namespace {

std::string now_utc() {
  std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

const char* crop_channels(ChannelMode m) { return m == ChannelMode::Concat ? "concat" : "mean"; }

json number_or_null(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

}  // namespace

void write_outputs(const RunRecord& run) {
  const auto& opt = *run.options;
  fs::path dir(opt.out_dir);

  json meta = {{"asdcap_version", ASDCAP_VERSION},
               {"data_root", run.data_root},
               {"backend", run.backend_name},
               {"backend_identity", run.backend_identity},
               {"model", opt.model_path.empty() ? json(nullptr) : json(opt.model_path)},
               {"k", opt.k},
               {"crop", run.crop},
               {"channels", crop_channels(opt.channels)},
               {"machines", run.machines},
               {"created", now_utc()},
               {"n_scored", run.summary->n_scored},
               {"n_skipped", run.summary->n_skipped},
               {"n_embedded", run.summary->n_embedded},
               {"n_cache_hits", run.summary->n_cache_hits}};
  write_file_atomic((dir / "run.json").string(), meta.dump(2) + "\n");

  std::string results = "machine,id,auc,pauc,threshold,threshold_rule,n_normal,n_anomaly\n";
  for (const auto& l : result_lines(*run.summary)) {
    results += csv_field(l.machine) + "," + csv_field(l.id) + "," + format_number(l.auc, "%.6f") + "," +
               format_number(l.pauc, "%.6f") + "," +
               (l.threshold_rule.empty() ? std::string() : format_number(l.threshold)) + "," + l.threshold_rule +
               "," + std::to_string(l.n_normal) + "," + std::to_string(l.n_anomaly) + "\n";
  }
  write_file_atomic((dir / "results.csv").string(), results);

  // DCASE files: one pair per machine/id, rows sorted by file name.
  std::map<std::pair<std::string, std::string>, std::vector<const ScoredClip*>> by_group;
  for (const auto& s : run.scored) by_group[{s.clip->machine, s.clip->id}].push_back(&s);
  for (auto& [key, clips] : by_group) {
    std::sort(clips.begin(), clips.end(), [](const ScoredClip* a, const ScoredClip* b) {
      return fs::path(a->clip->path).filename() < fs::path(b->clip->path).filename();
    });
    std::string scores, decisions;
    for (auto* s : clips) {
      std::string name = csv_field(fs::path(s->clip->path).filename().string());
      scores += name + "," + format_number(s->score) + "\n";
      decisions += name + "," + std::to_string(s->decision) + "\n";
    }
    std::string suffix = key.first + "_" + key.second + ".csv";
    write_file_atomic((dir / ("anomaly_score_" + suffix)).string(), scores);
    write_file_atomic((dir / ("decision_result_" + suffix)).string(), decisions);
  }

  std::string neighbors;
  for (const auto& s : run.scored) {
    json nb = json::array();
    for (size_t i = 0; i < s.neighbors.size(); ++i)
      nb.push_back({{"file", s.neighbors[i]->rel}, {"path", s.neighbors[i]->path}, {"distance", s.distances[i]}});
    json line = {{"file", s.clip->rel},
                 {"path", s.clip->path},
                 {"machine", s.clip->machine},
                 {"id", s.clip->id},
                 {"split", "test"},
                 {"label", s.clip->label == Label::Unknown ? json(nullptr) : json(to_string(s.clip->label))},
                 {"domain", s.clip->domain.empty() ? json(nullptr) : json(s.clip->domain)},
                 {"score", number_or_null(s.score)},
                 {"threshold", number_or_null(s.threshold)},
                 {"decision", s.decision},
                 {"neighbors", nb}};
    neighbors += line.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
  }
  write_file_atomic((dir / "neighbors.jsonl").string(), neighbors);

  std::string skipped;
  for (const auto& s : run.skipped)
    skipped += json({{"path", s.path}, {"stage", "detect"}, {"reason", s.reason}})
                   .dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
  write_file_atomic((dir / "skipped.jsonl").string(), skipped);
}

}  // namespace detail

std::vector<ResultLine> result_lines(const DetectSummary& summary) {
  std::vector<ResultLine> out;
  auto mean_of = [](const std::vector<double>& v) {
    double s = 0;
    int n = 0;
    for (double x : v)
      if (std::isfinite(x)) s += x, ++n;
    return n ? s / n : std::nan("");
  };
  std::vector<double> type_auc, type_pauc;
  int all_normal = 0, all_anomaly = 0;
  for (size_t i = 0; i < summary.rows.size();) {
    size_t j = i;
    std::vector<double> auc, pauc;
    int nn = 0, na = 0;
    for (; j < summary.rows.size() && summary.rows[j].machine == summary.rows[i].machine; ++j) {
      const auto& r = summary.rows[j];
      out.push_back({r.machine, r.id, r.auc, r.pauc, r.threshold, r.threshold_rule, r.n_normal, r.n_anomaly});
      auc.push_back(r.auc);
      pauc.push_back(r.pauc);
      nn += r.n_normal;
      na += r.n_anomaly;
    }
    out.push_back({summary.rows[i].machine, "average", mean_of(auc), mean_of(pauc), std::nan(""), "", nn, na});
    type_auc.push_back(out.back().auc);
    type_pauc.push_back(out.back().pauc);
    all_normal += nn;
    all_anomaly += na;
    i = j;
  }
  // As in the papers' Table I: the overall line averages the machine-type averages.
  out.push_back({"overall", "average", mean_of(type_auc), mean_of(type_pauc), std::nan(""), "", all_normal, all_anomaly});
  return out;
}

std::string format_results_table(const DetectSummary& summary) {
  std::ostringstream os;
  char buf[256];
  std::snprintf(buf, sizeof buf, "%-14s %-12s %7s %7s %12s %-12s %6s %6s\n", "machine", "id", "AUC%", "pAUC%",
                "threshold", "rule", "normal", "anom.");
  os << buf;
  auto pct = [](double v) { return std::isfinite(v) ? detail::format_number(100 * v, "%.2f") : std::string("-"); };
  for (const auto& l : result_lines(summary)) {
    bool summary_line = l.id == "average";
    std::string thr = l.threshold_rule.empty() || !std::isfinite(l.threshold) ? "" : detail::format_number(l.threshold, "%.4g");
    std::snprintf(buf, sizeof buf, "%-14s %-12s %7s %7s %12s %-12s %6d %6d\n", l.machine.c_str(), l.id.c_str(),
                  pct(l.auc).c_str(), pct(l.pauc).c_str(), thr.c_str(), l.threshold_rule.c_str(), l.n_normal,
                  l.n_anomaly);
    if (summary_line && l.machine == "overall") os << std::string(80, '-') << "\n";
    os << buf;
  }
  return os.str();
}

}  // namespace asdcap
