// run_compare end to end on a small synthetic dataset: one complete run folder per system, the
// table, the page, reuse of every cached embedding on a rerun, and the CLI's errors.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "asdcap/compare.hpp"
#include "asdcap/error.hpp"
#include "asdcap/run.hpp"
#include "asdcap/synth.hpp"
#include "support/golden_model.hpp"

using namespace asdcap;
namespace fs = std::filesystem;

namespace {

fs::path temp_dir(const std::string& name) {
  fs::path p = fs::temp_directory_path() / ("asdcap_compare_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

fs::path small_dataset(const std::string& name) {
  const fs::path data = temp_dir(name);
  SynthOptions so;
  so.out_dir = data.string();
  so.machines = {"fan", "pump"};
  so.ids = {"id_00"};
  so.n_train = 8;
  so.n_test_normal = 4;
  so.n_test_anomaly = 4;
  so.seconds = 3.0;
  synthesize_dataset(so);
  return data;
}

std::string read(const fs::path& p) {
  std::ifstream in(p);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

TEST(CompareRun, EverySystemGetsItsRunFolderAndAColumn) {
  const fs::path data = small_dataset("data"), out = temp_dir("out");
  CompareOptions o;
  o.data_root = data.string();
  o.out_dir = out.string();
  o.detect.quiet = true;
  o.systems = {{"", "acoustic", ""}, {"clap", "", golden_model_path(false)}};
  const CompareResult r = run_compare(o);
  ASSERT_EQ(r.table.systems, (std::vector<std::string>{"acoustic", "clap"}));
  EXPECT_EQ(r.table.backends, (std::vector<std::string>{"acoustic", "msclap"}));
  // Each system's folder is a complete run, with its own report; its results are the table's column.
  for (size_t s = 0; s < 2; ++s) {
    const fs::path run = out / r.table.systems[s];
    EXPECT_EQ(read_run_settings(run.string()).backend, r.table.backends[s]);
    EXPECT_TRUE(fs::exists(run / "report.html"));
    const auto results = read_results(run.string());
    ASSERT_EQ(results.size(), r.table.rows.size());
    for (size_t i = 0; i < results.size(); ++i) {
      EXPECT_EQ(results[i].machine, r.table.rows[i].machine) << i;
      EXPECT_EQ(results[i].auc, r.table.rows[i].auc[s]) << i;
    }
  }
  EXPECT_FALSE(r.table.dcase2020_dev);
  const CompareTable back = read_compare_table((out / "table.csv").string());
  EXPECT_EQ(back.systems, r.table.systems);
  EXPECT_TRUE(is_compare_folder(out.string()));
  const std::string page = read(out / "report.html");
  EXPECT_NE(page.find("acoustic/report.html"), std::string::npos);
  EXPECT_EQ(page.find("<script"), std::string::npos);
  EXPECT_EQ(page.find("http"), std::string::npos);  // self-contained

  // A rerun takes every embedding from the systems' caches and gives the same table.
  const CompareResult again = run_compare(o);
  for (const auto& dir : again.run_dirs) {
    const RunSettings s = read_run_settings(dir);
    EXPECT_EQ(s.n_cache_hits, s.n_embedded) << dir;
  }
  for (size_t i = 0; i < r.table.rows.size(); ++i) EXPECT_EQ(again.table.rows[i].auc, r.table.rows[i].auc);
  // The page is rebuilt from the folder alone.
  fs::remove(out / "report.html");
  EXPECT_EQ(build_compare_report(out.string()), (out / "report.html").string());
  fs::remove_all(data);
  fs::remove_all(out);
}

TEST(CompareRun, LabelsMustBeDistinctFolderNames) {
  CompareOptions o;
  o.data_root = "/nonexistent";
  o.out_dir = (fs::temp_directory_path() / "asdcap_compare_never").string();
  o.systems = {{"", "acoustic", ""}, {"", "acoustic", ""}};
  EXPECT_THROW(run_compare(o), InvalidArgument);
  o.systems = {{"../escape", "acoustic", ""}};
  EXPECT_THROW(run_compare(o), InvalidArgument);
  EXPECT_FALSE(fs::exists(o.out_dir));
}

int run_cli(const std::string& args) {
  const int status = std::system((std::string(ASDCAP_CLI) + " " + args + " >/dev/null 2>&1").c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(CompareRun, CliUsageErrorsExitTwo) {
  EXPECT_EQ(run_cli("compare --data /tmp --out /tmp/x --backend nosuch"), 2);
  EXPECT_EQ(run_cli("compare --data /tmp --out /tmp/x --backend msclap"), 2);  // needs --model
  EXPECT_EQ(run_cli("compare --out /tmp/x"), 2);
  EXPECT_EQ(run_cli("compare --help"), 0);
}

}  // namespace
