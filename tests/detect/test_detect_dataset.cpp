#include <gtest/gtest.h>

#include <unistd.h>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "asdcap/dataset.hpp"
#include "asdcap/error.hpp"

using namespace asdcap;
namespace fs = std::filesystem;

namespace {
Clip parse_ok(const std::string& path) {
  std::string why;
  auto c = parse_clip_path(path, &why);
  EXPECT_TRUE(c.has_value()) << path << ": " << why;
  return c.value_or(Clip{});
}
std::string parse_fail(const std::string& path) {
  std::string why;
  auto c = parse_clip_path(path, &why);
  EXPECT_FALSE(c.has_value()) << path;
  return why;
}
}  // namespace

TEST(DetectDataset, Dcase2020Names) {
  auto c = parse_ok("/d/fan/train/normal_id_00_00000000.wav");
  EXPECT_EQ(c.machine, "fan");
  EXPECT_EQ(c.id, "id_00");
  EXPECT_EQ(c.split, Split::Train);
  EXPECT_EQ(c.label, Label::Normal);
  c = parse_ok("/d/ToyConveyor/test/anomaly_id_03_00000123.wav");
  EXPECT_EQ(c.machine, "ToyConveyor");
  EXPECT_EQ(c.id, "id_03");
  EXPECT_EQ(c.split, Split::Test);
  EXPECT_EQ(c.label, Label::Anomaly);
  c = parse_ok("/d/valve/test/id_05_00000001.wav");  // evaluation set: no label
  EXPECT_EQ(c.label, Label::Unknown);
  EXPECT_EQ(c.id, "id_05");
}

TEST(DetectDataset, Dcase2021To2025Names) {
  auto c = parse_ok("/d/ToyCar/train/section_00_source_train_normal_0000_car_A1_spd_28V_mic_1.wav");
  EXPECT_EQ(c.machine, "ToyCar");
  EXPECT_EQ(c.id, "section_00");
  EXPECT_EQ(c.domain, "source");
  EXPECT_EQ(c.split, Split::Train);
  EXPECT_EQ(c.attributes, "car_A1_spd_28V_mic_1");
  c = parse_ok("/d/fan/test/section_02_target_test_anomaly_0031.wav");
  EXPECT_EQ(c.domain, "target");
  EXPECT_EQ(c.label, Label::Anomaly);
  EXPECT_EQ(c.attributes, "");
  c = parse_ok("/d/pump/test/section_01_test_normal_0004.wav");  // no domain
  EXPECT_EQ(c.domain, "");
  EXPECT_EQ(c.label, Label::Normal);
  c = parse_ok("/d/pump/test/section_03_source_test_0004.wav");  // 2021 evaluation: no label
  EXPECT_EQ(c.label, Label::Unknown);
  c = parse_ok("/d/bearing/test/section_00_0017.wav");  // 2022+ evaluation: section and number only
  EXPECT_EQ(c.label, Label::Unknown);
  EXPECT_EQ(c.split, Split::Test);
}

// Every DCASE 2023 file in the shared real data parses to what its manifest row says.
TEST(DetectDataset, SharedRealDataNamesAgreeWithManifest) {
  std::ifstream in(std::string(ASDCAP_SHARED_DIR) + "/realdata/manifest.csv");
  ASSERT_TRUE(in) << "realdata/manifest.csv missing";
  std::string line;
  std::getline(in, line);
  int checked = 0;
  while (std::getline(in, line)) {
    std::vector<std::string> f;
    std::stringstream ss(line);
    for (std::string x; std::getline(ss, x, ',');) f.push_back(x);
    if (f.size() < 6 || f[0].rfind("dcase2023/", 0) != 0) continue;
    auto c = parse_ok(std::string(ASDCAP_SHARED_DIR) + "/realdata/" + f[0]);
    EXPECT_EQ(c.machine, f[2]) << f[0];
    EXPECT_EQ(c.id + "_" + c.domain, f[3]) << f[0];  // manifest: section_00_source
    EXPECT_EQ(to_string(c.label), f[4]) << f[0];
    EXPECT_EQ(to_string(c.split), f[5]) << f[0];
    ++checked;
  }
  EXPECT_EQ(checked, 28);
  // The flat MIMII and DCASE 2022 files say no split / no machine: skipped with a reason, not guessed.
  EXPECT_NE(
      parse_fail(std::string(ASDCAP_SHARED_DIR) + "/realdata/mimii-8ch/pump_id_00_normal_00000000.wav").find("split"),
      std::string::npos);
  EXPECT_NE(parse_fail(std::string(ASDCAP_SHARED_DIR) +
                       "/realdata/dcase2022/section_00_source_train_normal_0000_A1Spd28VMic1.wav")
                .find("machine type unknown"),
            std::string::npos);
}

TEST(DetectDataset, BadNamesAreReportedNotGuessed) {
  EXPECT_NE(parse_fail("/d/fan/train/recording_7.wav").find("no known layout"), std::string::npos);
  EXPECT_NE(parse_fail("/d/fan/train/anomaly_id_00_00000000.wav").find("training"), std::string::npos);
  EXPECT_NE(parse_fail("/d/fan/train/id_00_00000000.wav").find("without 'normal'"), std::string::npos);
  EXPECT_NE(parse_fail("/d/fan/test/fan_train_section_00_source_train_normal_0001.wav").find("differs"),
            std::string::npos);
  EXPECT_NE(parse_fail("/d/fan/normal_id_00_00000000.wav").find("split"), std::string::npos);
}

TEST(DetectDataset, DiscoveryListsWhatItSkips) {
  fs::path root = fs::temp_directory_path() / ("asdcap_ds_" + std::to_string(::getpid()));
  fs::remove_all(root);
  fs::create_directories(root / "fan/train");
  fs::create_directories(root / "fan/test");
  fs::create_directories(root / "pump/test");
  auto touch = [](const fs::path& p) { std::ofstream(p) << "x"; };
  touch(root / "fan/train/normal_id_00_00000000.wav");
  touch(root / "fan/test/anomaly_id_00_00000000.wav");
  touch(root / "fan/test/notes.txt");                                   // not audio: ignored
  touch(root / "fan/test/weird name.wav");                              // misnamed
  fs::create_directories(root / "fan/test/normal_id_00_00000009.wav");  // a directory
  fs::create_symlink(root / "nowhere.wav", root / "fan/test/normal_id_00_00000008.wav");
  touch(root / "pump/test/normal_id_00_00000000.wav");
  auto ds = discover_dataset(root.string());
  ASSERT_EQ(ds.clips.size(), 3u);
  EXPECT_EQ(ds.clips[0].rel, "fan/test/anomaly_id_00_00000000.wav");
  ASSERT_EQ(ds.skipped.size(), 3u);
  std::map<std::string, std::string> why;
  for (auto& s : ds.skipped) why[fs::path(s.path).filename().string()] = s.reason;
  EXPECT_NE(why["weird name.wav"].find("no known layout"), std::string::npos);
  EXPECT_NE(why["normal_id_00_00000009.wav"].find("directory"), std::string::npos);
  EXPECT_NE(why["normal_id_00_00000008.wav"].find("dangling"), std::string::npos);
  EXPECT_EQ(discover_dataset(root.string(), {"pump"}).clips.size(), 1u);
  EXPECT_THROW(discover_dataset((root / "missing").string()), IoError);
  fs::remove_all(root);
}
