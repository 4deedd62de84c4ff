#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>

#include "asdcap/error.hpp"
#include "asdcap/npy.hpp"
#include "core/files.hpp"

namespace fs = std::filesystem;
using namespace asdcap;

TEST(Npy, ReadsGoldenFloatInt64AndFloat64) {
  const std::string g = std::string(ASDCAP_SHARED_DIR) + "/golden";
  NpyArray w = read_npy(g + "/audio/c05_44k1_f32_7s/waveform.npy");
  EXPECT_EQ(w.dtype, "f4");
  ASSERT_EQ(w.shape, (std::vector<int64_t>{308700}));
  NpyArray ids = read_npy(g + "/text/input_ids.npy");
  EXPECT_EQ(ids.dtype, "i8");
  ASSERT_EQ(ids.shape.size(), 2u);
  EXPECT_EQ(ids.shape[0], 14);
  EXPECT_EQ(ids.shape[1], 77);
  // "Vibration" + " <|endoftext|>" = [53, 571, 1358, 220, 50256] (golden manifest), then padding 0.
  auto v = ids.as_int64();
  EXPECT_EQ(v[0], 53);
  EXPECT_EQ(v[3], 220);
  EXPECT_EQ(v[4], 50256);
  EXPECT_EQ(v[5], 0);
  NpyArray hann = read_npy(g + "/frontend/hann_window_f64.npy");
  EXPECT_EQ(hann.dtype, "f8");
  auto h = hann.as_double();
  ASSERT_EQ(h.size(), 1024u);
  EXPECT_DOUBLE_EQ(h[0], 0.0);
  EXPECT_NEAR(h[512], 1.0, 1e-15);  // periodic Hann peaks at n = N/2
}

TEST(Npy, RoundTripsShapesAndValues) {
  fs::path dir = fs::temp_directory_path() / "asdcap_test_npy";
  fs::create_directories(dir);
  std::vector<float> f = {1.5f, -2.25f, 3.f, 4.f, 5.f, 6.f};
  write_npy((dir / "f.npy").string(), f.data(), {2, 3});
  NpyArray a = read_npy((dir / "f.npy").string());
  EXPECT_EQ(a.shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(a.as_float(), f);
  std::vector<int64_t> i = {-7, 1LL << 40};
  write_npy((dir / "i.npy").string(), i.data(), {2});
  NpyArray b = read_npy((dir / "i.npy").string());
  EXPECT_EQ(b.dtype, "i8");
  EXPECT_EQ(b.as_int64(), i);
  // The header is padded so that the data starts on a 64-byte boundary, as NumPy writes it.
  EXPECT_EQ(fs::file_size(dir / "i.npy") % 64, 16u);
  fs::remove_all(dir);
}

TEST(Npy, RejectsGarbageAndTruncation) {
  fs::path dir = fs::temp_directory_path() / "asdcap_test_npy_bad";
  fs::create_directories(dir);
  write_file_atomic((dir / "junk.npy").string(), std::string("hello world, not numpy"));
  EXPECT_THROW(read_npy((dir / "junk.npy").string()), FormatError);
  std::vector<float> f(100, 1.f);
  write_npy((dir / "t.npy").string(), f.data(), {100});
  fs::resize_file(dir / "t.npy", fs::file_size(dir / "t.npy") - 4);
  EXPECT_THROW(read_npy((dir / "t.npy").string()), FormatError);
  EXPECT_THROW(read_npy((dir / "missing.npy").string()), IoError);
  fs::remove_all(dir);
}
