#include <gtest/gtest.h>

#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "asdcap/error.hpp"
#include "core/files.hpp"

namespace fs = std::filesystem;
using namespace asdcap;

TEST(Files, AtomicWriteLeavesNothingOnError) {
  fs::path dir = fs::temp_directory_path() / "asdcap_test_files";
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string target = (dir / "out.bin").string();
  write_file_atomic(target, std::string("old"));
  EXPECT_THROW(write_file_atomic(target,
                                 [](std::FILE* f) {
                                   std::fputs("partial", f);
                                   throw IoError("simulated failure half-way");
                                 }),
               IoError);
  EXPECT_EQ(read_text_file(target), "old");  // untouched
  size_t entries = 0;
  for ([[maybe_unused]] auto& e : fs::directory_iterator(dir)) ++entries;
  EXPECT_EQ(entries, 1u);  // no temporary left behind
  EXPECT_THROW(write_file_atomic((dir / "no/such/folder/x").string(), std::string("x")), IoError);
  fs::remove_all(dir);
}

TEST(Files, Sha256KnownVector) {
  // FIPS 180-2 test vector.
  EXPECT_EQ(sha256_hex("abc", 3), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

// A full disk, simulated by a file-size limit (SIGXFSZ ignored, so writes fail with EFBIG): the
// old file survives complete, no temporary is left, and the error names the reason.
TEST(Files, FullDiskKeepsTheOldFile) {
  fs::path dir = fs::temp_directory_path() / ("asdcap_test_full_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string target = (dir / "results.csv").string();
  const std::string old_text(10000, 'o');
  write_file_atomic(target, old_text);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    std::signal(SIGXFSZ, SIG_IGN);
    rlimit lim{64 * 1024, 64 * 1024};
    if (setrlimit(RLIMIT_FSIZE, &lim) != 0) _exit(2);
    try {
      write_file_atomic(target, std::string(1 << 20, 'n'));
      _exit(3);
    } catch (const IoError& e) {
      _exit(std::string(e.what()).find("File too large") != std::string::npos ? 0 : 4);
    }
  }
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_EQ(read_text_file(target), old_text);
  size_t entries = 0;
  for ([[maybe_unused]] auto& e : fs::directory_iterator(dir)) ++entries;
  EXPECT_EQ(entries, 1u);
  fs::remove_all(dir);
}

// A writer killed with SIGKILL leaves its hidden temporary; the next write of the same file
// removes it (and never one of a writer still running).
TEST(Files, TemporariesOfKilledWritersAreRemoved) {
  fs::path dir = fs::temp_directory_path() / ("asdcap_test_tmp_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string target = (dir / "run.json").string();
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    write_file_atomic(target, [](std::FILE* f) {
      std::fputs("partial", f);
      std::fflush(f);
      ::kill(::getpid(), SIGKILL);
    });
    _exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status));
  auto hidden = [&] {
    std::vector<std::string> names;
    for (auto& e : fs::directory_iterator(dir))
      if (e.path().filename().string().rfind(".run.json.tmp.", 0) == 0) names.push_back(e.path().filename());
    return names;
  };
  ASSERT_EQ(hidden().size(), 1u);
  EXPECT_FALSE(fs::exists(target));
  // A temporary of this (running) process is not touched.
  const fs::path mine = dir / (".run.json.tmp." + std::to_string(::getpid()) + ".abcdef");
  std::ofstream(mine) << "x";
  write_file_atomic(target, std::string("{}"));
  EXPECT_EQ(hidden(), std::vector<std::string>{mine.filename().string()});
  EXPECT_EQ(read_text_file(target), "{}");
  fs::remove_all(dir);
}
