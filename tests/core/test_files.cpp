#include <gtest/gtest.h>

#include <filesystem>

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
