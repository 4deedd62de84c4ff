// The comparison table: building it from the systems' results, table.csv, the stdout view.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <tuple>

#include "asdcap/compare.hpp"
#include "asdcap/error.hpp"
#include "core/csv.hpp"
#include "core/files.hpp"

namespace asdcap {
namespace {

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// "id_00" -> "00"; "average" stays.
std::string bare_id(const std::string& id) { return id.rfind("id_", 0) == 0 ? id.substr(3) : id; }

const PublishedRow* find_published(const std::string& machine, const std::string& id) {
  for (const auto& p : published_table1())
    if (lower(p.machine) == lower(machine) && p.id == bare_id(id)) return &p;
  return nullptr;
}

// Index of the largest finite value; -1 when none is finite or fewer than two systems.
int best_of(const std::vector<double>& values) {
  if (values.size() < 2) return -1;
  int best = -1;
  for (size_t i = 0; i < values.size(); ++i)
    if (std::isfinite(values[i]) && (best < 0 || values[i] > values[static_cast<size_t>(best)]))
      best = static_cast<int>(i);
  return best;
}

int kind_rank(ResultRow::Kind k) { return k == ResultRow::Kind::Id ? 0 : k == ResultRow::Kind::Average ? 1 : 2; }

std::string column(const std::string& label, const char* what) { return label + "_" + what; }

}  // namespace

CompareTable make_compare_table(const std::vector<std::string>& systems, const std::vector<std::string>& backends,
                                const std::vector<std::vector<ResultRow>>& results) {
  if (systems.size() != results.size() || backends.size() != systems.size())
    throw InvalidArgument("make_compare_table: one results list and one backend per system");
  CompareTable t;
  t.systems = systems;
  t.backends = backends;
  // Row order: per machine (sorted), its IDs then its average; the overall line last.
  using Key = std::tuple<int, std::string, int, std::string>;  // overall?, machine, kind rank, id
  std::map<Key, CompareTable::Row> rows;
  for (size_t s = 0; s < results.size(); ++s)
    for (const auto& r : results[s]) {
      const bool overall = r.kind == ResultRow::Kind::Overall;
      const Key key{overall ? 1 : 0, overall ? "" : r.machine, kind_rank(r.kind), r.id};
      auto [it, fresh] = rows.try_emplace(key);
      CompareTable::Row& row = it->second;
      if (fresh) {
        row.kind = r.kind;
        row.machine = overall ? "overall" : r.machine;
        row.id = overall ? "average" : r.id;
        row.auc.assign(systems.size(), NAN);
        row.pauc.assign(systems.size(), NAN);
      }
      row.auc[s] = r.auc;
      row.pauc[s] = r.pauc;
    }
  // DCASE 2020 development data: every machine type is one of Table I's, with exactly its IDs.
  std::map<std::string, std::set<std::string>> measured_ids, published_ids;
  for (const auto& p : published_table1())
    if (p.id != "average") published_ids[lower(p.machine)].insert(p.id);
  for (auto& [key, row] : rows) {
    row.best_auc = best_of(row.auc);
    row.best_pauc = best_of(row.pauc);
    if (row.kind == ResultRow::Kind::Id) measured_ids[lower(row.machine)].insert(bare_id(row.id));
    t.rows.push_back(std::move(row));
  }
  t.dcase2020_dev = !measured_ids.empty();
  for (const auto& [machine, ids] : measured_ids)
    if (published_ids.count(machine) == 0 || published_ids[machine] != ids) t.dcase2020_dev = false;
  if (t.dcase2020_dev)
    for (auto& row : t.rows)
      if (const PublishedRow* p = find_published(row.machine, row.id)) row.published = *p;
  return t;
}

void write_compare_table(const std::string& path, const CompareTable& t) {
  std::vector<std::string> header = {"machine", "id"};
  for (const auto& s : t.systems) header.push_back(column(s, "auc")), header.push_back(column(s, "pauc"));
  header.push_back("best_auc");
  header.push_back("best_pauc");
  if (t.dcase2020_dev)
    for (const auto& p : published_systems()) header.push_back("paper_" + p + "_auc");
  CsvWriter csv;
  csv.row(header);
  for (const auto& r : t.rows) {
    std::vector<std::string> cells = {r.machine, r.id};
    for (size_t s = 0; s < t.systems.size(); ++s)
      cells.push_back(csv_number(r.auc[s])), cells.push_back(csv_number(r.pauc[s]));
    cells.push_back(r.best_auc >= 0 ? t.systems[static_cast<size_t>(r.best_auc)] : "");
    cells.push_back(r.best_pauc >= 0 ? t.systems[static_cast<size_t>(r.best_pauc)] : "");
    if (t.dcase2020_dev) {
      if (r.published) {
        const PublishedRow& p = *r.published;
        for (double v : {p.baseline, p.panns, p.laion_clap, p.ms_clap}) cells.push_back(csv_number(v / 100.0, "%.4f"));
      } else {
        for (size_t i = 0; i < published_systems().size(); ++i) cells.push_back("");
      }
    }
    csv.row(cells);
  }
  write_file_atomic(path, csv.text());
}

CompareTable read_compare_table(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw IoError(path + ": cannot open");
  std::string line;
  if (!std::getline(in, line)) throw FormatError(path + ": empty file, expected a header line");
  const auto header = csv_split_line(line);
  if (header.size() < 4 || header[0] != "machine" || header[1] != "id")
    throw FormatError(path + ": not a comparison table (the header must start with machine,id)");
  CompareTable t;
  size_t c = 2;
  for (; c + 1 < header.size() && header[c] != "best_auc"; c += 2) {
    const std::string& a = header[c];
    if (a.size() <= 4 || a.substr(a.size() - 4) != "_auc" || header[c + 1] != a.substr(0, a.size() - 4) + "_pauc")
      throw FormatError(path + ": column '" + a + "' is not <label>_auc followed by <label>_pauc");
    t.systems.push_back(a.substr(0, a.size() - 4));
  }
  if (c + 1 >= header.size() || header[c] != "best_auc" || header[c + 1] != "best_pauc")
    throw FormatError(path + ": missing best_auc,best_pauc columns");
  t.backends.assign(t.systems.size(), "");
  t.dcase2020_dev = header.size() == c + 2 + published_systems().size();
  const size_t n = t.systems.size();
  auto number = [&](const std::string& cell, int line_no) {
    if (cell == "nan" || cell.empty()) return static_cast<double>(NAN);
    char* end = nullptr;
    const double v = std::strtod(cell.c_str(), &end);
    if (end == cell.c_str() || *end != '\0')
      throw FormatError(path + " line " + std::to_string(line_no) + ": '" + cell + "' is not a number");
    return v;
  };
  auto index_of = [&](const std::string& label) {
    for (size_t s = 0; s < n; ++s)
      if (t.systems[s] == label) return static_cast<int>(s);
    return -1;
  };
  for (int line_no = 2; std::getline(in, line); ++line_no) {
    if (line.empty() || line == "\r") continue;
    const auto cells = csv_split_line(line);
    if (cells.size() != header.size())
      throw FormatError(path + " line " + std::to_string(line_no) + ": " + std::to_string(cells.size()) +
                        " cells, the header has " + std::to_string(header.size()));
    CompareTable::Row r;
    r.machine = cells[0];
    r.id = cells[1];
    r.kind = r.machine == "overall" ? ResultRow::Kind::Overall
             : r.id == "average"    ? ResultRow::Kind::Average
                                    : ResultRow::Kind::Id;
    for (size_t s = 0; s < n; ++s) {
      r.auc.push_back(number(cells[2 + 2 * s], line_no));
      r.pauc.push_back(number(cells[3 + 2 * s], line_no));
    }
    r.best_auc = index_of(cells[2 + 2 * n]);
    r.best_pauc = index_of(cells[3 + 2 * n]);
    if (t.dcase2020_dev && !cells[4 + 2 * n].empty()) {
      PublishedRow p{r.machine, r.id, 0, 0, 0, 0};
      double* fields[] = {&p.baseline, &p.panns, &p.laion_clap, &p.ms_clap};
      for (size_t i = 0; i < 4; ++i) *fields[i] = 100.0 * number(cells[4 + 2 * n + i], line_no);
      r.published = p;
    }
    t.rows.push_back(std::move(r));
  }
  return t;
}

std::string format_compare_table(const CompareTable& t) {
  std::ostringstream out;
  char buf[64];
  std::snprintf(buf, sizeof buf, "%-14s %-8s", "machine", "id");
  out << buf;
  for (const auto& s : t.systems) {
    std::snprintf(buf, sizeof buf, " %12.12s", s.c_str());
    out << buf;
  }
  if (t.dcase2020_dev) out << "   | paper: Baseline  PANNs  LAION  MS-CLAP";
  out << "\n";
  for (const auto& r : t.rows) {
    std::snprintf(buf, sizeof buf, "%-14s %-8s", r.machine.c_str(), r.id.c_str());
    out << buf;
    for (size_t s = 0; s < t.systems.size(); ++s) {
      if (std::isfinite(r.auc[s]))
        std::snprintf(buf, sizeof buf, " %11.2f%c", 100.0 * r.auc[s], static_cast<int>(s) == r.best_auc ? '*' : ' ');
      else
        std::snprintf(buf, sizeof buf, " %12s", "-");
      out << buf;
    }
    if (r.published) {
      std::snprintf(buf, sizeof buf, "   |  %8.2f %6.2f %6.2f %8.2f", r.published->baseline, r.published->panns,
                    r.published->laion_clap, r.published->ms_clap);
      out << buf;
    }
    out << "\n";
  }
  out << "AUC in %; * marks the best system of each row.\n";
  return out.str();
}

}  // namespace asdcap
