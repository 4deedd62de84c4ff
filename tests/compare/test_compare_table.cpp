// The comparison table: the published Table I as the papers print it, best-per-row marking,
// table.csv written and read back, malformed tables refused.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>

#include "asdcap/compare.hpp"
#include "asdcap/error.hpp"

using namespace asdcap;
namespace fs = std::filesystem;

namespace {

// Table I from the papers' text (../shared/papers): "Machine<TAB>ID<TAB>v1<TAB>v2<TAB>v3<TAB>v4" lines
// after the "TABLE I" caption, the machine name only on its first line. Empty when not available.
std::vector<PublishedRow> table1_from_paper() {
  std::vector<PublishedRow> rows;
  const fs::path dir = fs::path(ASDCAP_SHARED_DIR) / "papers";
  if (!fs::is_directory(dir)) return rows;
  for (const auto& entry : fs::directory_iterator(dir)) {
    std::ifstream in(entry.path());
    std::string line, machine;
    bool in_table = false;
    static const std::regex row(R"(^([A-Za-z]*)\t(\d\d|Average)\t([\d.]+)\t([\d.]+)\t([\d.]+)\t([\d.]+)\s*$)");
    while (std::getline(in, line)) {
      if (line.rfind("TABLE I:", 0) == 0) in_table = true;
      if (!in_table) continue;
      std::smatch m;
      if (std::regex_match(line, m, row)) {
        if (!m[1].str().empty()) machine = m[1].str();
        rows.push_back({machine, m[2].str() == "Average" ? "average" : m[2].str(), std::stod(m[3].str()),
                        std::stod(m[4].str()), std::stod(m[5].str()), std::stod(m[6].str())});
      } else if (!rows.empty() && line.empty() && rows.size() >= 29) {
        return rows;
      }
    }
    if (!rows.empty()) return rows;
  }
  return rows;
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

TEST(CompareTable, PublishedFiguresAreThePapersTableI) {
  const auto paper = table1_from_paper();
  if (paper.empty()) GTEST_SKIP() << "the papers' text is not available";
  ASSERT_EQ(paper.size(), 29u);  // 23 IDs and 6 machine averages
  const auto& ours = published_table1();
  ASSERT_EQ(ours.size(), 30u);  // plus the overall line, printed in the second paper only
  for (size_t i = 0; i < paper.size(); ++i) {
    EXPECT_EQ(lower(ours[i].machine), lower(paper[i].machine)) << i;
    EXPECT_EQ(ours[i].id, paper[i].id) << i;
    EXPECT_DOUBLE_EQ(ours[i].baseline, paper[i].baseline) << i;
    EXPECT_DOUBLE_EQ(ours[i].panns, paper[i].panns) << i;
    EXPECT_DOUBLE_EQ(ours[i].laion_clap, paper[i].laion_clap) << i;
    EXPECT_DOUBLE_EQ(ours[i].ms_clap, paper[i].ms_clap) << i;
  }
}

// The printed averages are the means of the printed IDs (to the printed rounding), the overall line
// the mean of the six machine averages (not of the 23 IDs): a transcription error in a cell shows here.
TEST(CompareTable, PublishedAveragesAreMeansOfTheirRows) {
  std::map<std::string, std::vector<const PublishedRow*>> ids;
  std::vector<const PublishedRow*> averages;
  const PublishedRow* overall = nullptr;
  for (const auto& r : published_table1()) {
    if (r.machine == "overall")
      overall = &r;
    else if (r.id == "average")
      averages.push_back(&r);
    else
      ids[r.machine].push_back(&r);
  }
  ASSERT_EQ(averages.size(), 6u);
  ASSERT_NE(overall, nullptr);
  auto field = [](const PublishedRow* r, int f) {
    return f == 0 ? r->baseline : f == 1 ? r->panns : f == 2 ? r->laion_clap : r->ms_clap;
  };
  for (int f = 0; f < 4; ++f) {
    double sum_of_averages = 0;
    for (const PublishedRow* a : averages) {
      double sum = 0;
      for (const PublishedRow* r : ids[a->machine]) sum += field(r, f);
      EXPECT_NEAR(sum / static_cast<double>(ids[a->machine].size()), field(a, f), 0.0051) << a->machine << " " << f;
      sum_of_averages += field(a, f);
    }
    // The paper averaged unrounded type means: the printed ones may be off by 0.005 each.
    EXPECT_NEAR(sum_of_averages / 6.0, field(overall, f), 0.0101) << f;
  }
  EXPECT_EQ(published_system_of("ae"), "Baseline");
  EXPECT_EQ(published_system_of("msclap"), "MS-CLAP");
  EXPECT_EQ(published_system_of("acoustic"), "");
}

ResultRow id_row(const std::string& machine, const std::string& id, double auc, double pauc) {
  ResultRow r;
  r.machine = machine;
  r.id = id;
  r.auc = auc;
  r.pauc = pauc;
  return r;
}
ResultRow average_row(const std::string& machine, double auc, double pauc) {
  ResultRow r = id_row(machine, "average", auc, pauc);
  r.kind = ResultRow::Kind::Average;
  return r;
}
ResultRow overall_row(double auc, double pauc) {
  ResultRow r = id_row("overall", "average", auc, pauc);
  r.kind = ResultRow::Kind::Overall;
  return r;
}

TEST(CompareTable, RowsAreTheUnionAndTheBestIsMarked) {
  const std::vector<ResultRow> a = {id_row("pump", "id_00", 0.9, 0.7), average_row("pump", 0.9, 0.7),
                                    overall_row(0.9, 0.7)};
  const std::vector<ResultRow> b = {id_row("fan", "id_02", 0.6, 0.5), average_row("fan", 0.6, 0.5),
                                    id_row("pump", "id_00", 0.95, 0.6), average_row("pump", 0.95, 0.6),
                                    overall_row(0.775, NAN)};
  const CompareTable t = make_compare_table({"a", "b"}, {"acoustic", "ae"}, {a, b});
  ASSERT_EQ(t.rows.size(), 5u);
  EXPECT_EQ(t.rows[0].machine, "fan");
  EXPECT_EQ(t.rows[0].id, "id_02");
  EXPECT_TRUE(std::isnan(t.rows[0].auc[0]));  // a has no fan
  EXPECT_EQ(t.rows[0].best_auc, 1);
  EXPECT_EQ(t.rows[1].kind, ResultRow::Kind::Average);
  EXPECT_EQ(t.rows[2].machine, "pump");
  EXPECT_EQ(t.rows[2].best_auc, 1);   // 0.95 > 0.9
  EXPECT_EQ(t.rows[2].best_pauc, 0);  // 0.7 > 0.6
  EXPECT_EQ(t.rows[4].kind, ResultRow::Kind::Overall);
  EXPECT_EQ(t.rows[4].best_pauc, 0);  // NaN never wins
  EXPECT_FALSE(t.dcase2020_dev);      // fan and pump have four IDs in DCASE 2020, not one
}

TEST(CompareTable, Dcase2020DevelopmentDataGetsThePublishedFigures) {
  std::vector<ResultRow> a;
  for (const char* id : {"id_01", "id_02", "id_03", "id_04"}) a.push_back(id_row("ToyCar", id, 0.8, 0.6));
  a.push_back(average_row("ToyCar", 0.8, 0.6));
  for (const char* id : {"id_00", "id_02", "id_04", "id_06"}) a.push_back(id_row("valve", id, 0.5, 0.5));
  a.push_back(average_row("valve", 0.5, 0.5));
  a.push_back(overall_row(0.65, 0.55));
  const CompareTable t = make_compare_table({"x"}, {"acoustic"}, {a});
  EXPECT_TRUE(t.dcase2020_dev);
  ASSERT_TRUE(t.rows[0].published.has_value());
  EXPECT_DOUBLE_EQ(t.rows[0].published->baseline, 81.36);
  EXPECT_EQ(t.rows[0].best_auc, -1);             // one system: nothing to mark
  EXPECT_TRUE(t.rows[5].published.has_value());  // valve id_00
  // Not DCASE 2020: an ID Table I does not have, a missing ID, a machine type it does not have.
  auto with = [&](std::vector<ResultRow> rows) {
    return make_compare_table({"x"}, {"acoustic"}, {rows}).dcase2020_dev;
  };
  auto changed = a;
  changed[0].id = "id_07";
  EXPECT_FALSE(with(changed));
  changed = a;
  changed.erase(changed.begin());
  EXPECT_FALSE(with(changed));
  changed = a;
  changed.push_back(id_row("gearbox", "id_00", 0.5, 0.5));
  EXPECT_FALSE(with(changed));
}

fs::path temp_file(const std::string& name) {
  return fs::temp_directory_path() / ("asdcap_compare_" + name + "_" + std::to_string(::getpid()) + ".csv");
}

TEST(CompareTable, TableCsvReadsBackAsWritten) {
  std::vector<ResultRow> a, b;
  for (const char* id : {"id_00", "id_02", "id_04", "id_06"}) {
    a.push_back(id_row("fan", id, 0.8125, 0.5));
    b.push_back(id_row("fan", id, 0.25, NAN));
  }
  a.push_back(average_row("fan", 0.8125, 0.5));
  a.push_back(overall_row(0.8125, 0.5));
  b.push_back(average_row("fan", 0.25, NAN));
  b.push_back(overall_row(0.25, NAN));
  const CompareTable t = make_compare_table({"acoustic", "my,model"}, {"acoustic", "msclap"}, {a, b});
  const fs::path p = temp_file("roundtrip");
  write_compare_table(p.string(), t);
  std::ifstream in(p);
  std::string header;
  std::getline(in, header);
  EXPECT_EQ(header,
            "machine,id,acoustic_auc,acoustic_pauc,\"my,model_auc\",\"my,model_pauc\",best_auc,best_pauc,"
            "paper_Baseline_auc,paper_PANNs_auc,paper_LAION-CLAP_auc,paper_MS-CLAP_auc");
  const CompareTable back = read_compare_table(p.string());
  ASSERT_EQ(back.systems, t.systems);
  ASSERT_EQ(back.rows.size(), t.rows.size());
  for (size_t i = 0; i < t.rows.size(); ++i) {
    EXPECT_EQ(back.rows[i].machine, t.rows[i].machine);
    EXPECT_EQ(back.rows[i].kind, t.rows[i].kind);
    EXPECT_EQ(back.rows[i].auc[0], t.rows[i].auc[0]);
    EXPECT_EQ(back.rows[i].best_auc, t.rows[i].best_auc);
    EXPECT_TRUE(std::isnan(back.rows[i].pauc[1]));
    EXPECT_EQ(back.rows[i].published.has_value(), t.rows[i].published.has_value());
  }
  ASSERT_TRUE(back.rows[0].published.has_value());
  EXPECT_NEAR(back.rows[0].published->ms_clap, 51.91, 1e-9);
  const std::string text = format_compare_table(t);
  EXPECT_NE(text.find("81.25*"), std::string::npos) << text;
  fs::remove(p);
}

TEST(CompareTable, MalformedTablesAreRefusedNamingTheFile) {
  const fs::path p = temp_file("bad");
  for (const char* content : {"", "file,score\n", "machine,id,a_auc,b_pauc,best_auc,best_pauc\n",
                              "machine,id,a_auc,a_pauc,best_auc,best_pauc\nfan,id_00,0.5\n",
                              "machine,id,a_auc,a_pauc,best_auc,best_pauc\nfan,id_00,zero,0.5,,\n"}) {
    std::ofstream(p) << content;
    try {
      read_compare_table(p.string());
      ADD_FAILURE() << "accepted: " << content;
    } catch (const FormatError& e) {
      EXPECT_NE(std::string(e.what()).find(p.string()), std::string::npos) << e.what();
    }
  }
  fs::remove(p);
  EXPECT_THROW(read_compare_table(p.string()), IoError);
}

}  // namespace
