// `asdcap compare`: several detection systems (backends, or model files) run on the same clips, and
// their results side by side in the layout of the papers' Table I.
//
// Folder DIR written by run_compare:
//   DIR/<label>/       each system's complete run folder (run.hpp), as `asdcap detect` writes it
//   DIR/table.csv      CompareTable: one line per machine ID, per machine type and overall
//   DIR/compare.json   the systems and their folders; written last (its presence marks a complete run)
//   DIR/report.html    the comparison page (report.hpp: build_compare_report), linking each run's report
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "asdcap/detect.hpp"
#include "asdcap/run.hpp"

namespace asdcap {

// One compared system: a backend name, or a model file whose architecture chooses the backend.
struct CompareSystem {
  std::string label;  // column title and sub-folder name; derived from backend/model when empty
  std::string backend;
  std::string model_path;
};

// The papers' Table I (AUC %, DCASE 2020 Task 2 development set, k = 4 for the embedding systems):
// the autoencoder baseline, PANNs CNN14, LAION-CLAP and MS-CLAP.
struct PublishedRow {
  std::string machine, id;  // DCASE 2020 names ("ToyCar", "fan", ...); id "01"... or "average"/"overall"
  double baseline, panns, laion_clap, ms_clap;
};
const std::vector<PublishedRow>& published_table1();
// The published systems' column names, in PublishedRow order.
const std::vector<std::string>& published_systems();
// The published system a backend name stands for ("ae" -> "Baseline", "panns" -> "PANNs",
// "laion" -> "LAION-CLAP", "msclap" -> "MS-CLAP"); empty for the others.
std::string published_system_of(const std::string& backend);

// The comparison: one row per machine ID, per machine type ("average") and "overall", one value per
// system (NaN where a system has no value), the best system's index per row (-1: none), and the
// published figures where the row is one of Table I's.
struct CompareTable {
  std::vector<std::string> systems;   // labels, in column order
  std::vector<std::string> backends;  // the backend each system ran
  struct Row {
    ResultRow::Kind kind = ResultRow::Kind::Id;
    std::string machine, id;
    std::vector<double> auc, pauc;  // per system, fractions (0..1)
    int best_auc = -1, best_pauc = -1;
    std::optional<PublishedRow> published;  // set only for DCASE 2020 development data
  };
  std::vector<Row> rows;
  // Every machine type compared is one of Table I's, with exactly Table I's IDs (DCASE 2020 Task 2
  // development data, possibly a subset of its machine types): the published figures are shown.
  bool dcase2020_dev = false;
};

// Builds the table from each system's results.csv lines (ResultRow, as read_results returns them).
// Rows are the union of the systems' machine IDs, sorted as in results.csv.
CompareTable make_compare_table(const std::vector<std::string>& systems, const std::vector<std::string>& backends,
                                const std::vector<std::vector<ResultRow>>& results);

// table.csv: machine,id,<label>_auc,<label>_pauc (per system),best_auc,best_pauc, then for DCASE 2020
// development data paper_<system>_auc for the four published systems. Values as fractions.
void write_compare_table(const std::string& path, const CompareTable& table);
// Reads table.csv back (for `asdcap report` on a compare folder). Throws FormatError naming the file.
CompareTable read_compare_table(const std::string& path);

// The table printed on stdout: AUC % per system, the best marked with '*'.
std::string format_compare_table(const CompareTable& table);

struct CompareOptions {
  std::string data_root, out_dir;
  std::vector<CompareSystem> systems;  // empty: the weight-free backends
  DetectOptions detect;                // k, crop, channels, machines, threads, quiet (data/out/backend ignored)
};

struct CompareResult {
  CompareTable table;
  std::vector<std::string> run_dirs;  // DIR/<label>, per system
  std::string out_dir;
};

// Runs every system on the same clips into DIR/<label>/ (run_detect_systems: each clip decoded
// once for all systems), then writes table.csv, compare.json and report.html. Labels must be
// distinct (InvalidArgument otherwise). A system that fails stops the comparison with its error;
// the embeddings and models computed so far stay in the systems' caches, and the systems published
// before it keep their complete run folders.
CompareResult run_compare(const CompareOptions& options);

// True when DIR holds a comparison (compare.json).
bool is_compare_folder(const std::string& dir);
// Rewrites DIR/report.html of a comparison from its table.csv and compare.json; returns its path.
std::string build_compare_report(const std::string& dir);

}  // namespace asdcap
