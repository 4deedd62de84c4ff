#include <grp.h>
#include <gtest/gtest.h>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
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

namespace {

struct TempTree {
  fs::path root;
  explicit TempTree(const std::string& name)
      : root(fs::temp_directory_path() / ("asdcap_ds_" + name + "_" + std::to_string(::getpid()))) {
    fs::remove_all(root);
    fs::create_directories(root);
  }
  ~TempTree() {
    std::error_code ec;
    fs::permissions(root, fs::perms::all, ec);
    for (auto it = fs::recursive_directory_iterator(root, ec); !ec && it != fs::recursive_directory_iterator();
         it.increment(ec))
      if (it->is_directory(ec) && !it->is_symlink(ec)) fs::permissions(it->path(), fs::perms::owner_all, ec);
    fs::remove_all(root, ec);
  }
  void touch(const fs::path& rel) const {
    fs::create_directories((root / rel).parent_path());
    std::ofstream(root / rel) << "x";
  }
};

std::map<std::string, std::string> skipped_by_rel(const Dataset& ds) {
  std::map<std::string, std::string> m;
  for (auto& s : ds.skipped) m[fs::path(s.path).lexically_relative(ds.root).string()] = s.reason;
  return m;
}

// Runs `check` in a child process (for limits and identities the test process must keep) and
// returns its exit status: 0 when every check held.
int in_child(const std::function<int()>& check) {
  pid_t pid = fork();
  if (pid == 0) {
    int rc = 99;
    try {
      rc = check();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "%s\n", e.what());
      rc = 98;
    }
    _exit(rc);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 97;
}

}  // namespace

// Symbolic links to folders are followed: a linked machine folder, a linked train/ alone.
TEST(DetectDataset, FollowsSymlinkedFolders) {
  TempTree t("links");
  t.touch("elsewhere/fan/train/normal_id_00_00000000.wav");
  t.touch("elsewhere/fan/test/anomaly_id_00_00000000.wav");
  t.touch("elsewhere/pump_train/normal_id_00_00000001.wav");
  t.touch("data/pump/test/normal_id_00_00000002.wav");
  fs::create_symlink(t.root / "elsewhere/fan", t.root / "data/fan");
  fs::create_symlink(t.root / "elsewhere/pump_train", t.root / "data/pump/train");
  auto ds = discover_dataset((t.root / "data").string());
  std::vector<std::string> rels;
  for (auto& c : ds.clips) rels.push_back(c.rel);
  EXPECT_EQ(rels,
            (std::vector<std::string>{"fan/test/anomaly_id_00_00000000.wav", "fan/train/normal_id_00_00000000.wav",
                                      "pump/test/normal_id_00_00000002.wav", "pump/train/normal_id_00_00000001.wav"}));
  EXPECT_EQ(ds.clips[1].machine, "fan");
  EXPECT_EQ(ds.clips[3].split, Split::Train);
  EXPECT_TRUE(ds.skipped.empty());
}

// A link back to an ancestor is listed once and reported as a loop; a link to itself named like a
// clip is a loop, not "dangling".
TEST(DetectDataset, SymlinkLoopsAreReportedNotFollowed) {
  TempTree t("loops");
  t.touch("fan/train/normal_id_00_00000000.wav");
  fs::create_directories(t.root / "fan/test");
  fs::create_symlink(t.root / "fan", t.root / "fan/train/back");
  fs::create_symlink(t.root / "fan/test/normal_id_00_00000001.wav", t.root / "fan/test/normal_id_00_00000001.wav");
  fs::create_symlink(t.root / "fan/train", t.root / "train_again");
  auto ds = discover_dataset(t.root.string());
  ASSERT_EQ(ds.clips.size(), 1u);
  auto why = skipped_by_rel(ds);
  ASSERT_EQ(why.size(), 3u);
  EXPECT_NE(why["fan/train/back"].find("symbolic link loop"), std::string::npos) << why["fan/train/back"];
  EXPECT_NE(why["fan/test/normal_id_00_00000001.wav"].find("symbolic link loop"), std::string::npos);
  EXPECT_NE(why["train_again"].find("same folder as"), std::string::npos) << why["train_again"];
}

// A sub-folder the user cannot read is listed in skipped with the reason (checked as an
// unprivileged user: root reads every folder).
TEST(DetectDataset, UnreadableFolderIsListedAsSkipped) {
  TempTree t("unreadable");
  t.touch("fan/train/normal_id_00_00000000.wav");
  t.touch("fan/test/anomaly_id_00_00000000.wav");
  const auto readable = fs::perms::owner_all | fs::perms::others_read | fs::perms::others_exec;
  for (const char* folder : {"", "fan", "fan/train"}) fs::permissions(t.root / folder, readable);
  fs::permissions(t.root / "fan/test", fs::perms::none);
  const int rc = in_child([&] {
    // As root, become nobody entirely (groups too: the folders' group is root's).
    if (::getuid() == 0 && (::setgroups(0, nullptr) != 0 || ::setgid(65534) != 0 || ::setuid(65534) != 0)) return 2;
    auto ds = discover_dataset(t.root.string());
    if (ds.clips.size() != 1) return 3;
    auto why = skipped_by_rel(ds);
    if (why.size() != 1 || why["fan/test"].find("Permission denied") == std::string::npos) return 4;
    return 0;
  });
  EXPECT_EQ(rc, 0);
}

// The walk holds one folder open at a time: a 20-deep tree is listed completely under a limit of
// a few open files (the recursive iterator stopped there, silently, with 0 clips).
TEST(DetectDataset, DeepTreeUnderAFileDescriptorLimit) {
  TempTree t("deep");
  fs::path deep = "a";
  for (int i = 0; i < 20; ++i) deep /= std::string(1, 'd').append(std::to_string(i));
  t.touch(deep / "fan/train/normal_id_00_00000000.wav");
  t.touch(deep / "fan/test/anomaly_id_00_00000000.wav");
  const int rc = in_child([&] {
    int open_now = 0;
    for (const auto& e : fs::directory_iterator("/proc/self/fd")) open_now += e.path().empty() ? 0 : 1;
    rlimit lim{static_cast<rlim_t>(open_now + 4), static_cast<rlim_t>(open_now + 4)};
    if (setrlimit(RLIMIT_NOFILE, &lim) != 0) return 2;
    auto ds = discover_dataset(t.root.string());
    return ds.clips.size() == 2 && ds.skipped.empty() ? 0 : 3;
  });
  EXPECT_EQ(rc, 0);
}

// A folder seen in its parent's listing and gone (or replaced by a file) when its turn comes stops
// the walk with an IoError naming it: going on would give an incomplete clip list. The walk's
// on_folder hook is called with every folder, the root first, before it is listed.
TEST(DetectDataset, FolderThatVanishesDuringTheWalkStopsIt) {
  for (const bool replace_by_file : {false, true}) {
    TempTree t(replace_by_file ? "replaced" : "vanished");
    t.touch("fan/train/normal_id_00_00000000.wav");
    t.touch("fan/test/anomaly_id_00_00000000.wav");
    t.touch("pump/test/anomaly_id_00_00000000.wav");
    std::vector<std::string> seen;
    const fs::path doomed = t.root / "pump";
    auto hook = [&](const std::string& folder) {
      seen.push_back(fs::path(folder).lexically_relative(t.root).string());
      if (fs::path(folder) != doomed) return;
      fs::remove_all(doomed);
      if (replace_by_file) std::ofstream(doomed) << "x";
    };
    try {
      discover_dataset(t.root.string(), {}, hook);
      ADD_FAILURE() << "the walk went on without " << doomed;
    } catch (const IoError& e) {
      EXPECT_NE(std::string(e.what()).find(doomed.string() + ": the folder cannot be listed any more: "),
                std::string::npos)
          << e.what();
      EXPECT_NE(std::string(e.what()).find(replace_by_file ? "Not a directory" : "No such file"), std::string::npos)
          << e.what();
    }
    EXPECT_EQ(seen, (std::vector<std::string>{".", "fan", "fan/test", "fan/train", "pump"}));
  }
}
