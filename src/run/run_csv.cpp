// results.csv and the DCASE files anomaly_score_<machine>_<id>.csv / decision_result_<machine>_<id>.csv.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>

#include "asdcap/run.hpp"
#include "core/csv.hpp"
#include "core/files.hpp"
#include "run/run_io.hpp"

namespace asdcap {
namespace fs = std::filesystem;
using run_detail::join;

namespace {

constexpr const char* kResultsHeader = "machine,id,auc,pauc,threshold,threshold_rule,n_normal,n_anomaly";

// A finite number, or NaN for an empty, "nan" or unreadable cell.
double number_cell(const std::string& s) {
  if (s.empty()) return NAN;
  try {
    size_t used = 0;
    const double v = std::stod(s, &used);
    return used == s.size() && std::isfinite(v) ? v : NAN;
  } catch (const std::exception&) {
    return NAN;
  }
}

std::ifstream open_csv(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw IoError(path + ": cannot open");
  return in;
}

bool blank(const std::string& line) { return line.empty() || line == "\r"; }

void add_problem(std::vector<std::string>* problems, const std::string& text) {
  if (problems) problems->push_back(text);
}

// DCASE rows sorted by file name, as fs::path orders them.
template <typename Row>
void sort_by_file(std::vector<Row>& rows) {
  std::stable_sort(rows.begin(), rows.end(),
                   [](const Row& a, const Row& b) { return fs::path(a.file) < fs::path(b.file); });
}

}  // namespace

void write_results(const std::string& dir, const std::vector<ResultRow>& rows) {
  std::string text = std::string(kResultsHeader) + "\n";
  CsvWriter csv;
  for (const auto& r : rows) {
    const bool id_line = r.kind == ResultRow::Kind::Id;
    csv.row({r.machine, r.id, csv_number(r.auc, "%.6f"), csv_number(r.pauc, "%.6f"),
             id_line ? csv_number(r.threshold) : std::string(), id_line ? r.threshold_rule : std::string(),
             std::to_string(r.n_normal), std::to_string(r.n_anomaly)});
  }
  write_file_atomic(join(dir, run_files::kResults), text + csv.text());
}

std::vector<ResultRow> read_results(const std::string& dir, std::vector<std::string>* problems) {
  const std::string path = join(dir, run_files::kResults);
  std::ifstream in = open_csv(path);
  std::vector<ResultRow> rows;
  std::string line;
  std::getline(in, line);
  const auto header = csv_split_line(line);
  std::map<std::string, size_t> col;
  for (size_t i = 0; i < header.size(); ++i) col[header[i]] = i;
  for (const char* need : {"machine", "id", "auc", "pauc"})
    if (!col.count(need)) {
      add_problem(problems, std::string(run_files::kResults) + ": the header lacks the column '" + need + "'");
      return rows;
    }
  for (int number = 2; std::getline(in, line); ++number) {
    if (blank(line)) continue;
    const auto cells = csv_split_line(line);
    auto cell = [&](const char* name) -> std::string {
      auto it = col.find(name);
      return it != col.end() && it->second < cells.size() ? cells[it->second] : std::string();
    };
    ResultRow r;
    r.machine = cell("machine");
    r.id = cell("id");
    if (r.machine.empty()) {
      add_problem(problems, std::string(run_files::kResults) + " line " + std::to_string(number) + " has no machine");
      continue;
    }
    if (r.id == "average") r.kind = ResultRow::Kind::Average;
    if (r.machine == "overall" || r.id == "overall" || r.machine == "all") r.kind = ResultRow::Kind::Overall;
    r.auc = number_cell(cell("auc"));
    r.pauc = number_cell(cell("pauc"));
    r.threshold = number_cell(cell("threshold"));
    r.threshold_rule = cell("threshold_rule");
    const double n_normal = number_cell(cell("n_normal")), n_anomaly = number_cell(cell("n_anomaly"));
    r.n_normal = std::isfinite(n_normal) ? static_cast<int>(n_normal) : 0;
    r.n_anomaly = std::isfinite(n_anomaly) ? static_cast<int>(n_anomaly) : 0;
    rows.push_back(std::move(r));
  }
  return rows;
}

void write_anomaly_scores(const std::string& dir, const std::string& machine, const std::string& id,
                          std::vector<DcaseScore> rows) {
  sort_by_file(rows);
  CsvWriter csv;
  for (const auto& r : rows) csv.row({r.file, csv_number(r.score)});
  write_file_atomic(join(dir, run_files::anomaly_scores(machine, id)), csv.text());
}

void write_decision_results(const std::string& dir, const std::string& machine, const std::string& id,
                            std::vector<DcaseDecision> rows) {
  sort_by_file(rows);
  CsvWriter csv;
  for (const auto& r : rows) csv.row({r.file, std::to_string(r.decision)});
  write_file_atomic(join(dir, run_files::decision_results(machine, id)), csv.text());
}

std::vector<DcaseScore> read_anomaly_scores(const std::string& dir, const std::string& machine, const std::string& id,
                                            std::vector<std::string>* problems) {
  const std::string name = run_files::anomaly_scores(machine, id);
  std::ifstream in = open_csv(join(dir, name));
  std::vector<DcaseScore> rows;
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    if (blank(line)) continue;
    const auto cells = csv_split_line(line);
    if (cells.size() != 2 || cells[0].empty()) {
      add_problem(problems, name + " line " + std::to_string(number) + " is not 'file,score'");
      continue;
    }
    rows.push_back({cells[0], cells[1] == "nan" ? NAN : number_cell(cells[1])});
    if (std::isnan(rows.back().score) && cells[1] != "nan") {
      rows.pop_back();
      add_problem(problems, name + " line " + std::to_string(number) + ": the score is not a number");
    }
  }
  return rows;
}

std::vector<DcaseDecision> read_decision_results(const std::string& dir, const std::string& machine,
                                                 const std::string& id, std::vector<std::string>* problems) {
  const std::string name = run_files::decision_results(machine, id);
  std::ifstream in = open_csv(join(dir, name));
  std::vector<DcaseDecision> rows;
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    if (blank(line)) continue;
    const auto cells = csv_split_line(line);
    if (cells.size() != 2 || cells[0].empty() || (cells[1] != "0" && cells[1] != "1")) {
      add_problem(problems, name + " line " + std::to_string(number) + " is not 'file,0' or 'file,1'");
      continue;
    }
    rows.push_back({cells[0], cells[1] == "1" ? 1 : 0});
  }
  return rows;
}

}  // namespace asdcap
