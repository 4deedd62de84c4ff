// The lines of results.csv (with the summary lines) and the table printed on stdout.
#include <cmath>
#include <cstdio>
#include <sstream>

#include "asdcap/detect.hpp"
#include "core/csv.hpp"

namespace asdcap {

namespace {

ResultRow summary_line(ResultRow::Kind kind, const std::string& machine, double auc, double pauc, int n_normal,
                       int n_anomaly) {
  ResultRow r;
  r.kind = kind;
  r.machine = machine;
  r.id = "average";
  r.auc = auc;
  r.pauc = pauc;
  r.n_normal = n_normal;
  r.n_anomaly = n_anomaly;
  return r;
}

}  // namespace

std::vector<ResultRow> result_lines(const DetectSummary& summary) {
  std::vector<ResultRow> out;
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
      out.push_back(r);
      out.back().kind = ResultRow::Kind::Id;
      auc.push_back(r.auc);
      pauc.push_back(r.pauc);
      nn += r.n_normal;
      na += r.n_anomaly;
    }
    out.push_back(summary_line(ResultRow::Kind::Average, summary.rows[i].machine, mean_of(auc), mean_of(pauc), nn, na));
    type_auc.push_back(out.back().auc);
    type_pauc.push_back(out.back().pauc);
    all_normal += nn;
    all_anomaly += na;
    i = j;
  }
  // As in the papers' Table I: the overall line averages the machine-type averages.
  out.push_back(summary_line(ResultRow::Kind::Overall, "overall", mean_of(type_auc), mean_of(type_pauc), all_normal,
                             all_anomaly));
  return out;
}

std::string format_results_table(const DetectSummary& summary) {
  std::ostringstream os;
  char buf[256];
  std::snprintf(buf, sizeof buf, "%-14s %-12s %7s %7s %12s %-12s %6s %6s\n", "machine", "id", "AUC%", "pAUC%",
                "threshold", "rule", "normal", "anom.");
  os << buf;
  auto pct = [](double v) { return std::isfinite(v) ? csv_number(100 * v, "%.2f") : std::string("-"); };
  for (const auto& l : result_lines(summary)) {
    const bool overall = l.kind == ResultRow::Kind::Overall;
    std::string thr = l.threshold_rule.empty() || !std::isfinite(l.threshold) ? "" : csv_number(l.threshold, "%.4g");
    std::snprintf(buf, sizeof buf, "%-14s %-12s %7s %7s %12s %-12s %6d %6d\n", l.machine.c_str(), l.id.c_str(),
                  pct(l.auc).c_str(), pct(l.pauc).c_str(), thr.c_str(), l.threshold_rule.c_str(), l.n_normal,
                  l.n_anomaly);
    if (overall) os << std::string(80, '-') << "\n";
    os << buf;
  }
  return os.str();
}

}  // namespace asdcap
