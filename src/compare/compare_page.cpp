// The comparison page: Table I with one column per system, the best value per row marked, the
// published figures beside the measured ones for DCASE 2020 development data.
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "compare/compare_internal.hpp"
#include "core/files.hpp"
#include "report/charts.hpp"
#include "report/page.hpp"

namespace asdcap {
namespace fs = std::filesystem;
using report::html_escape;

namespace {

std::string percent(double v) {
  if (!std::isfinite(v)) return "&ndash;";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", 100.0 * v);
  return buf;
}

// A cell shaded by its value: chance (0.5) white, 1.0 full blue.
std::string value_cell(double v, bool best) {
  std::string style;
  if (std::isfinite(v)) {
    const double a = std::clamp((v - 0.5) / 0.5, 0.0, 1.0) * 0.35;
    char buf[80];
    std::snprintf(buf, sizeof buf, " style=\"background:rgba(28,126,214,%.3f)\"", a);
    style = buf;
  }
  return "<td" + style + (best ? " class=\"best\"" : "") + ">" + percent(v) + (best ? " &#9733;" : "") + "</td>";
}

std::string table_html(const CompareTable& t, bool auc) {
  std::string s =
      "<div class=\"scroll\"><table class=\"results compare\"><thead><tr><th class=\"l\">Machine</th>"
      "<th class=\"l\">ID</th>";
  for (const auto& label : t.systems) s += "<th>" + html_escape(label) + "</th>";
  if (auc && t.dcase2020_dev)
    for (const auto& p : published_systems())
      s += "<th class=\"paper\">" + html_escape(p) + "<br><small>paper</small></th>";
  s += "</tr></thead><tbody>";
  std::string last_machine;
  for (const auto& r : t.rows) {
    const char* cls = r.kind == ResultRow::Kind::Id        ? ""
                      : r.kind == ResultRow::Kind::Average ? " class=\"row-average\""
                                                           : " class=\"row-overall\"";
    const std::string machine =
        r.kind == ResultRow::Kind::Id && r.machine == last_machine ? "" : html_escape(r.machine);
    if (r.kind == ResultRow::Kind::Id) last_machine = r.machine;
    s += std::string("<tr") + cls + "><td class=\"l\">" + machine + "</td><td class=\"l\">" + html_escape(r.id) +
         "</td>";
    const auto& values = auc ? r.auc : r.pauc;
    const int best = auc ? r.best_auc : r.best_pauc;
    for (size_t i = 0; i < values.size(); ++i) s += value_cell(values[i], static_cast<int>(i) == best);
    if (auc && t.dcase2020_dev) {
      if (r.published) {
        for (double v : {r.published->baseline, r.published->panns, r.published->laion_clap, r.published->ms_clap}) {
          char buf[32];
          std::snprintf(buf, sizeof buf, "%.2f", v);
          s += std::string("<td class=\"paper\">") + buf + "</td>";
        }
      } else {
        for (size_t i = 0; i < published_systems().size(); ++i) s += "<td class=\"paper\"></td>";
      }
    }
    s += "</tr>";
  }
  return s + "</tbody></table></div>";
}

}  // namespace

std::string build_compare_report(const std::string& dir, const CompareTable& t, const CompareManifest& m) {
  std::string s =
      "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" "
      "content=\"width=device-width,initial-scale=1\"><title>asdcap comparison</title><style>" +
      report::page_css() +
      "table.compare td.best{font-weight:700}table.compare .paper{color:#868e96;background:#f8f9fa}"
      "ul.systems{padding-left:18px}ul.systems li{margin:3px 0}</style></head><body>";
  s += "<header class=\"top\"><div class=\"wrap\"><h1>Detection systems compared</h1><p>" + html_escape(m.data_root) +
       (m.created.empty() ? "" : " &middot; " + html_escape(m.created)) + "</p></div></header><main>";
  s += "<h2>Systems</h2><ul class=\"systems\">";
  for (size_t i = 0; i < m.systems.size(); ++i) {
    const auto& sys = m.systems[i];
    const std::string run_report = sys.label + "/report.html";
    const bool has_report = fs::exists(fs::path(dir) / run_report);
    s += "<li><b>" + html_escape(sys.label) + "</b>: backend " +
         html_escape(i < m.backends.size() ? m.backends[i] : "") +
         (sys.model_path.empty() ? "" : ", model " + html_escape(sys.model_path)) + " &middot; " +
         (has_report ? "<a href=\"" + html_escape(run_report) + "\">its report</a>"
                     : "run folder " + html_escape(sys.label)) +
         "</li>";
  }
  s += "</ul>";
  s += "<h2>AUC (%)</h2><p class=\"lead\">Area under the ROC curve per machine ID, the mean over IDs per machine type "
       "and the mean of the type means overall, as in Table I of the papers. &#9733; marks the best system of each "
       "row; shading grows from chance (50) to 100.";
  if (t.dcase2020_dev)
    s += " The grey columns are the figures the papers publish for the DCASE 2020 Task 2 development set, for "
         "reference: the autoencoder baseline, PANNs CNN14, LAION-CLAP and MS-CLAP (k = 4).";
  s += "</p>" + table_html(t, true);
  s += "<h2>pAUC (%)</h2><p class=\"lead\">Partial AUC up to a false-positive rate of 0.1 (McClish-standardised), "
       "as the DCASE evaluators compute it.</p>" +
       table_html(t, false);
  s += "</main></body></html>\n";
  const std::string path = (fs::path(dir) / "report.html").string();
  write_file_atomic(path, s);
  return path;
}

}  // namespace asdcap
