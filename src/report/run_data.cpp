// Reading a run folder for the report, through the run folder's readers. Bad content never throws:
// it becomes a `problems` line.
#include <filesystem>

#include "asdcap/error.hpp"
#include "report/charts.hpp"

namespace asdcap::report {
namespace fs = std::filesystem;

namespace {

constexpr size_t kProblemLinesPerFile = 5;

bool file_exists(const fs::path& p) {
  std::error_code ec;
  return fs::exists(p, ec);
}

// The first few unreadable lines of a file, then how many more there were.
void add_problems(RunData& run, const std::string& file, const std::vector<std::string>& problems) {
  for (size_t i = 0; i < problems.size() && i < kProblemLinesPerFile; ++i) run.problems.push_back(problems[i]);
  if (problems.size() > kProblemLinesPerFile)
    run.problems.push_back(file + ": " + std::to_string(problems.size() - kProblemLinesPerFile) +
                           " more unreadable lines");
}

}  // namespace

RunData load_run(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    throw IoError(dir + ": not a folder (expected a run folder written by `asdcap detect`)");
  RunData run;
  run.dir = dir;
  const fs::path root(dir);

  // detect removes run.json first and writes it last, under its lock: a folder it has written
  // (run.lock there) without run.json holds a run that was not published completely.
  if (!file_exists(root / run_files::kSettings) && file_exists(root / run_files::kLock))
    throw RunRefused((root / run_files::kSettings).string() +
                     ": missing: the run is incomplete (detect did not finish it: interrupted, or it failed); "
                     "run detection again");
  if (file_exists(root / run_files::kSettings)) {
    try {
      run.settings = read_run_settings(dir);
    } catch (const RunRefused&) {
      throw;
    } catch (const Error& e) {
      run.problems.push_back(std::string("run.json could not be read: ") + e.what());
    }
  }
  if (file_exists(root / run_files::kResults)) {
    run.has_results = true;
    run.results = read_results(dir, &run.problems);
  } else {
    run.problems.push_back("results.csv: not found (run `asdcap detect` first)");
  }
  std::vector<std::string> problems;
  if ((run.has_neighbors = file_exists(root / run_files::kNeighbors))) {
    run.clips = read_neighbors(dir, &problems);
    add_problems(run, run_files::kNeighbors, problems);
  } else {
    run.problems.push_back("neighbors.jsonl: not found, so no score distributions");
  }
  if ((run.has_explanations = file_exists(root / run_files::kExplanations))) {
    problems.clear();
    run.explanations = read_explanations((root / run_files::kExplanations).string(), &problems);
    add_problems(run, run_files::kExplanations, problems);
  }
  if ((run.has_skipped = file_exists(root / run_files::kSkipped))) {
    problems.clear();
    run.skipped = read_skipped(dir, &problems);
    add_problems(run, run_files::kSkipped, problems);
  }
  return run;
}

}  // namespace asdcap::report
