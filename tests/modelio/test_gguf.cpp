// GGUF v3 writing and validated reading.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "asdcap/error.hpp"
#include "modelio/gguf.hpp"
#include "zip_tools.hpp"

namespace fs = std::filesystem;
using namespace asdcap;

namespace {

std::string write_to_string(const GgufWriter& w) {
  char* buf = nullptr;
  size_t len = 0;
  std::FILE* f = open_memstream(&buf, &len);
  w.write(f, "mem");
  std::fclose(f);
  std::string s(buf, len);
  std::free(buf);
  return s;
}

std::string small_file() {
  static const float a[6] = {1, 2, 3, 4, 5, 6};
  static const int64_t b[2] = {-1, 1LL << 40};
  GgufWriter w(32);
  w.set_string("general.architecture", "test");
  w.set_int("u", 7);
  w.set_int("neg", -7);
  w.set_int("big", 1LL << 40);
  w.set_float("f", 0.5f);
  w.set_bool("yes", true);
  w.set_int_array("ints", {1, -2, 3});
  w.set_string_array("strs", {"a", "", "ccc"});
  w.add_tensor("a", DType::F32, {2, 3}, a, sizeof a);
  w.add_tensor("b", DType::I64, {2}, b, sizeof b);
  return write_to_string(w);
}

}  // namespace

TEST(Gguf, RoundTrip) {
  std::string s = small_file();
  GgufView g = GgufView::parse(s.data(), s.size(), "mem");
  EXPECT_EQ(g.version, 3u);
  EXPECT_EQ(g.alignment, 32u);
  EXPECT_EQ(g.kv.at("general.architecture").s, "test");
  EXPECT_EQ(g.kv.at("u").i, 7);
  EXPECT_EQ(g.kv.at("neg").i, -7);
  EXPECT_EQ(g.kv.at("big").i, 1LL << 40);
  EXPECT_EQ(g.kv.at("f").f, 0.5);
  EXPECT_TRUE(g.kv.at("yes").b);
  EXPECT_EQ(g.kv.at("ints").ints, (std::vector<int64_t>{1, -2, 3}));
  EXPECT_EQ(g.kv.at("strs").strings, (std::vector<std::string>{"a", "", "ccc"}));
  ASSERT_EQ(g.tensors.size(), 2u);
  EXPECT_EQ(g.tensors[0].shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(g.tensors[0].offset % 32, 0u);
  EXPECT_EQ(g.tensors[1].offset % 32, 0u);
  float a[6];
  std::memcpy(a, s.data() + g.tensors[0].offset, sizeof a);
  EXPECT_EQ(a[5], 6.f);
  // Dims are stored innermost first (ggml order): the first dim of tensor "a" in the file is 3.
  size_t name_pos = s.rfind(std::string("\x01\0\0\0\0\0\0\0a", 9));
  ASSERT_NE(name_pos, std::string::npos);
  EXPECT_EQ(ziptest::rd32(s, name_pos + 9), 2u);   // n_dims
  EXPECT_EQ(ziptest::rd32(s, name_pos + 13), 3u);  // ne[0]
}

TEST(Gguf, EveryTruncationIsAFormatError) {
  std::string s = small_file();
  GgufView g = GgufView::parse(s.data(), s.size(), "full");
  const size_t end = g.tensors[1].offset + g.tensors[1].nbytes;  // only alignment padding follows
  ASSERT_LE(end, s.size());
  for (size_t n = 0; n < end; ++n) {
    std::string cut = s.substr(0, n);
    EXPECT_THROW(GgufView::parse(cut.data(), cut.size(), "cut"), FormatError) << n;
  }
}

TEST(Gguf, CorruptHeadersAreFormatErrors) {
  const std::string s = small_file();
  auto expect_bad = [](std::string b, const char* what) {
    EXPECT_THROW(GgufView::parse(b.data(), b.size(), "bad"), FormatError) << what;
  };
  std::string v = s;
  v[0] = 'X';
  expect_bad(v, "magic");
  v = s;
  v[4] = 2;
  expect_bad(v, "version 2");
  v = s;
  std::memset(v.data() + 8, 0xff, 8);  // tensor count
  expect_bad(v, "tensor count");
  v = s;
  std::memset(v.data() + 16, 0x7f, 8);  // kv count
  expect_bad(v, "kv count");
  v = s;  // the first key's length: huge
  std::memset(v.data() + 24, 0xff, 8);
  expect_bad(v, "string length");
  // A tensor offset that is misaligned or points past the end.
  size_t name_pos = s.find(std::string("\x01\0\0\0\0\0\0\0b", 9));
  size_t off_pos = name_pos + 9 + 4 + 8 + 4;
  v = s;
  v[off_pos] = 1;
  expect_bad(v, "misaligned");
  v = s;
  v[off_pos + 4] = 1;
  expect_bad(v, "past the end");
  v = s;  // type 2 (q4_0) is not supported
  v[off_pos - 4] = 2;
  expect_bad(v, "ggml type");
  v = s;  // 9 dimensions
  v[name_pos + 9] = 9;
  expect_bad(v, "dims");
}
