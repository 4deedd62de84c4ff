// asdcap_fault_naming: does the explanation of every flagged anomalous clip name the fault that was
// injected into it? Reads a run folder of `asdcap detect` + `asdcap explain` (neighbors.jsonl,
// explanations.jsonl), the labels of a synthetic set (asdcap synth's synth_manifest.csv, or a
// faults.csv with machine,split,file,fault) and the criteria (criteria.csv beside this file: which
// named evidence keys, with which direction, count for each fault). Prints the rate per fault type.
//
//   asdcap_fault_naming RUN_DIR LABELS.csv CRITERIA.csv [--method acoustic] [--verbose]
//
// A flagged anomalous clip without an explanation counts as not named.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "asdcap/error.hpp"
#include "asdcap/run.hpp"

using namespace asdcap;

namespace {

std::vector<std::string> split_csv(const std::string& line) {
  std::vector<std::string> cells;
  std::stringstream ss(line);
  std::string cell;
  while (std::getline(ss, cell, ',')) {
    while (!cell.empty() && (cell.back() == '\r' || cell.back() == ' ')) cell.pop_back();
    cells.push_back(cell);
  }
  if (!line.empty() && line.back() == ',') cells.emplace_back();
  return cells;
}

// Relative clip path -> fault ("" for normal clips). Either synth_manifest.csv
// (file,...,fault with the relative path in `file`) or faults.csv (machine,split,file,fault).
std::map<std::string, std::string> read_labels(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw IoError(path + ": cannot open");
  std::string line;
  if (!std::getline(in, line)) throw FormatError(path + ": empty");
  const std::vector<std::string> header = split_csv(line);
  auto column = [&](const char* name) -> int {
    for (size_t i = 0; i < header.size(); ++i)
      if (header[i] == name) return static_cast<int>(i);
    return -1;
  };
  const int file = column("file"), fault = column("fault"), machine = column("machine"), split = column("split");
  if (file < 0 || fault < 0) throw FormatError(path + ": needs the columns file and fault");
  const bool relative = line.find("label") != std::string::npos;  // synth_manifest.csv: file is relative
  std::map<std::string, std::string> labels;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    const std::vector<std::string> c = split_csv(line);
    if (static_cast<int>(c.size()) <= std::max(file, fault)) throw FormatError(path + ": short line: " + line);
    std::string key = c[file];
    if (!relative) {
      if (machine < 0 || split < 0) throw FormatError(path + ": needs machine and split beside file");
      key = c[machine] + "/" + c[split] + "/" + c[file];
    }
    labels[key] = c[fault] == "none" ? "" : c[fault];
  }
  return labels;
}

struct Criterion {
  std::string key;
  int direction;  // +1 / -1
};

std::map<std::string, std::vector<Criterion>> read_criteria(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw IoError(path + ": cannot open");
  std::map<std::string, std::vector<Criterion>> out;
  std::string line;
  bool header = true;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    if (header) {
      header = false;
      continue;
    }
    const std::vector<std::string> c = split_csv(line);
    if (c.size() != 3 || (c[2] != "+" && c[2] != "-")) throw FormatError(path + ": bad line: " + line);
    out[c[0]].push_back({c[1], c[2] == "+" ? 1 : -1});
  }
  return out;
}

// Whether a named key, with the direction the clip measured, counts for the fault.
bool counts(const std::vector<Criterion>& criteria, const std::string& key, const ExplanationRecord& r) {
  for (const auto& c : criteria) {
    if (c.key != key) continue;
    for (const auto& f : r.evidence)
      if (f.key == key && f.anomalous && f.reference_mean) {
        const double d = *f.anomalous - *f.reference_mean;
        if (d * c.direction > 0) return true;
      }
  }
  return false;
}

struct Tally {
  int anomalies = 0, flagged = 0, named = 0, first = 0;
};

std::string percent(int a, int b) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%d/%d (%.0f %%)", a, b, b ? 100.0 * a / b : 0.0);
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> positional;
  std::string method = "acoustic";
  bool verbose = false;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--method") && i + 1 < argc)
      method = argv[++i];
    else if (!std::strcmp(argv[i], "--verbose"))
      verbose = true;
    else
      positional.push_back(argv[i]);
  }
  if (positional.size() != 3) {
    std::fprintf(stderr, "usage: asdcap_fault_naming RUN_DIR LABELS.csv CRITERIA.csv [--method M] [--verbose]\n");
    return 2;
  }
  try {
    const std::string& dir = positional[0];
    const auto labels = read_labels(positional[1]);
    const auto criteria = read_criteria(positional[2]);
    std::map<std::string, const ExplanationRecord*> by_file;
    const std::vector<ExplanationRecord> records = read_explanations(dir + "/" + run_files::kExplanations);
    for (const auto& r : records) by_file[r.file] = &r;

    std::map<std::string, Tally> per_fault;
    Tally all;
    for (const ScoredClip& clip : read_neighbors(dir)) {
      auto label = labels.find(clip.file);
      if (label == labels.end()) throw FormatError(positional[1] + ": no label for " + clip.file);
      const std::string& fault = label->second;
      if (fault.empty() || clip.split != "test") continue;
      auto crit = criteria.find(fault);
      if (crit == criteria.end()) throw FormatError(positional[2] + ": no criteria for fault " + fault);
      Tally& t = per_fault[fault];
      ++t.anomalies;
      ++all.anomalies;
      if (!clip.decision) continue;
      ++t.flagged;
      ++all.flagged;
      bool named = false, first = false;
      std::string answer = "(not explained)", keys;
      auto rec = by_file.find(clip.file);
      if (rec != by_file.end()) {
        for (const auto& [name, m] : rec->second->methods) {
          if (name != method) continue;
          answer = m.answer.value_or(m.error.value_or("(no answer)"));
          if (!m.named) continue;
          for (size_t i = 0; i < m.named->size(); ++i) {
            const bool ok = counts(crit->second, (*m.named)[i], *rec->second);
            named = named || ok;
            first = first || (i == 0 && ok);
            keys += (i ? "," : "") + (*m.named)[i];
          }
        }
      }
      t.named += named;
      t.first += first;
      all.named += named;
      all.first += first;
      if (verbose)
        std::printf("%s %-10s %s [%s] %s\n", named ? "NAMED" : "MISS ", fault.c_str(), clip.file.c_str(), keys.c_str(),
                    answer.c_str());
    }
    std::printf("%-14s %-14s %-18s %-18s\n", "fault", "flagged", "named", "named first");
    for (const auto& [fault, t] : per_fault)
      std::printf("%-14s %-14s %-18s %-18s\n", fault.c_str(), percent(t.flagged, t.anomalies).c_str(),
                  percent(t.named, t.flagged).c_str(), percent(t.first, t.flagged).c_str());
    std::printf("%-14s %-14s %-18s %-18s\n", "overall", percent(all.flagged, all.anomalies).c_str(),
                percent(all.named, all.flagged).c_str(), percent(all.first, all.flagged).c_str());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "asdcap_fault_naming: %s\n", e.what());
    return 1;
  }
}
