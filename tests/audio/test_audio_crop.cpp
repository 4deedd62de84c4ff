// Crop policies, msclap's tiling rule and CPython's randrange.
#include <gtest/gtest.h>

#include <numeric>

#include "asdcap/audio.hpp"
#include "asdcap/error.hpp"
#include "golden_clips.hpp"

namespace asdcap {
namespace {

// The golden manifest records, per clip, the seed msclap's run used and the crop start it drew.
TEST(AudioPythonRandom, MatchesGoldenManifest) {
  const auto clips = test::golden_clips();
  ASSERT_EQ(clips.size(), 8u);
  int checked = 0;
  for (const auto& clip : clips) {
    if (!clip.crop_start) continue;
    ASSERT_TRUE(clip.randrange_arg.has_value()) << clip.id;
    EXPECT_EQ(python_randrange(clip.crop_seed, *clip.randrange_arg), *clip.crop_start) << clip.id;
    ++checked;
  }
  EXPECT_EQ(checked, 5);
}

// Expected values printed by CPython 3.11: random.Random(seed).randrange(n). They cover
// n = 1, multi-word seeds (>= 2^32) and getrandbits with more than 32 bits.
TEST(AudioPythonRandom, MatchesCPython) {
  struct Case {
    uint64_t seed;
    int64_t n, expected;
  };
  const Case cases[] = {
      {0ULL, 1LL, 0LL},
      {0ULL, 10LL, 6LL},
      {1ULL, 132300LL, 35222LL},
      {42ULL, 2LL, 0LL},
      {123401ULL, 132300LL, 33919LL},
      {4294967301ULL, 1000003LL, 164912LL},
      {18446744073709551615ULL, 44100LL, 1430LL},
      {7ULL, 2147483648LL, 1390851128LL},
      {7ULL, 4294967296LL, 647892279LL},
      {7ULL, 4294967303LL, 647892279LL},
      {99ULL, 1099511627777LL, 834958728041LL},
      {99ULL, 4611686018427387907LL, 3511823210090535785LL},
      {3ULL, 9223372036854775807LL, 5466147605252358141LL},
  };
  for (const auto& c : cases) EXPECT_EQ(python_randrange(c.seed, c.n), c.expected) << "seed " << c.seed << " n " << c.n;
  EXPECT_THROW(python_randrange(1, 0), Error);
}

TEST(AudioCropPolicy, ParseAndPrint) {
  for (const char* text : {"random", "random:0", "random:123401", "random:18446744073709551615", "offset:0",
                           "offset:33919", "cover", "whole"})
    EXPECT_EQ(CropPolicy::parse(text).to_string(), text);
  EXPECT_EQ(CropPolicy::parse("random").kind, CropPolicy::Kind::Random);
  EXPECT_FALSE(CropPolicy::parse("random").seeded);
  const CropPolicy seeded = CropPolicy::parse("random:77");
  EXPECT_TRUE(seeded.seeded);
  EXPECT_EQ(seeded.seed, 77u);
  EXPECT_EQ(CropPolicy::parse("offset:12").offset, 12);
  EXPECT_EQ(CropPolicy::parse("cover").kind, CropPolicy::Kind::Cover);
  EXPECT_EQ(CropPolicy::parse("whole").kind, CropPolicy::Kind::Whole);
}

TEST(AudioCropPolicy, RejectsMalformedText) {
  for (const char* text : {"", "Random", "random:", "random:-1", "random:1x", "random:18446744073709551616", "offset",
                           "offset:", "offset:-5", "offset:1.5", "cover:1", "center", " cover", "whole:1", "Whole"})
    EXPECT_THROW(CropPolicy::parse(text), InvalidArgument) << "'" << text << "'";
}

TEST(AudioCropPolicy, ShortClipsAreTiledWhateverThePolicy) {
  for (const char* text : {"random", "random:5", "offset:100", "cover"}) {
    const CropPolicy p = CropPolicy::parse(text);
    EXPECT_EQ(window_starts(1, p), std::vector<int64_t>{0}) << text;
    EXPECT_EQ(window_starts(kWindowSamples, p), std::vector<int64_t>{0}) << text;
  }
  EXPECT_THROW(window_starts(0, CropPolicy{}), Error);
}

TEST(AudioCropPolicy, RandomIsMsclapsRandrange) {
  const int64_t length = 441000;
  const auto starts = window_starts(length, CropPolicy::parse("random:123401"));
  EXPECT_EQ(starts, std::vector<int64_t>{33919});
  // Unseeded draws stay inside [0, length - 308700).
  for (int i = 0; i < 20; ++i) {
    const auto s = window_starts(kWindowSamples + 3, CropPolicy::parse("random"));
    ASSERT_EQ(s.size(), 1u);
    EXPECT_GE(s[0], 0);
    EXPECT_LT(s[0], 3);
  }
}

TEST(AudioCropPolicy, OffsetBeyondTheClipNamesTheLimit) {
  const int64_t length = 441000, last = length - kWindowSamples;  // 132300
  EXPECT_EQ(window_starts(length, CropPolicy::parse("offset:" + std::to_string(last))), std::vector<int64_t>{last});
  try {
    window_starts(length, CropPolicy::parse("offset:" + std::to_string(last + 1)));
    FAIL() << "no error";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find(std::to_string(last)), std::string::npos) << e.what();
  }
}

TEST(AudioCropPolicy, CoverWindowsTileTheClipAndEndAtItsEnd) {
  const CropPolicy cover = CropPolicy::parse("cover");
  EXPECT_EQ(window_starts(kWindowSamples + 1, cover), (std::vector<int64_t>{0, 1}));
  EXPECT_EQ(window_starts(2 * kWindowSamples, cover), (std::vector<int64_t>{0, kWindowSamples}));
  EXPECT_EQ(window_starts(441000, cover), (std::vector<int64_t>{0, 441000 - kWindowSamples}));
  for (int64_t length : {int64_t{308701}, int64_t{617399}, int64_t{617401}, int64_t{4806900}, int64_t{4806901}}) {
    const auto starts = window_starts(length, cover);
    const auto expected_count = (length + kWindowSamples - 1) / kWindowSamples;
    ASSERT_EQ(static_cast<int64_t>(starts.size()), expected_count) << length;
    EXPECT_EQ(starts.front(), 0);
    EXPECT_EQ(starts.back(), length - kWindowSamples);
    for (size_t i = 1; i < starts.size(); ++i) {
      EXPECT_GT(starts[i], starts[i - 1]);
      EXPECT_LE(starts[i], starts[i - 1] + kWindowSamples) << "gap between windows";
    }
  }
}

TEST(AudioWindowAt, TilesShortSignalsLikeMsclap) {
  // 132300 samples (3 s) -> repeated 3 times and cut; 22050 -> 14 times.
  for (int64_t n : {int64_t{132300}, int64_t{22050}, int64_t{1}, int64_t{300000}}) {
    std::vector<float> signal(static_cast<size_t>(n));
    std::iota(signal.begin(), signal.end(), 0.0f);
    const auto w = window_at(signal, 0);
    ASSERT_EQ(static_cast<int64_t>(w.size()), kWindowSamples);
    for (int64_t i = 0; i < kWindowSamples; i += 997) EXPECT_EQ(w[static_cast<size_t>(i)], float(i % n)) << n;
    EXPECT_EQ(w.back(), float((kWindowSamples - 1) % n));
  }
}

TEST(AudioWindowAt, CutsLongSignalsAndRejectsBadStarts) {
  std::vector<float> signal(400000);
  std::iota(signal.begin(), signal.end(), 0.0f);
  const auto w = window_at(signal, 1234);
  EXPECT_EQ(w.front(), 1234.0f);
  EXPECT_EQ(w.back(), float(1234 + kWindowSamples - 1));
  EXPECT_THROW(window_at(signal, 400000 - kWindowSamples + 1), Error);
  EXPECT_THROW(window_at(signal, -1), Error);
  EXPECT_THROW(window_at({}, 0), Error);
}

TEST(AudioCropPolicy, WholeIsTheSignalItselfAndRefusedByWindowedPaths) {
  std::vector<float> signal(12345);
  std::iota(signal.begin(), signal.end(), 0.0f);
  const CropPolicy whole = CropPolicy::parse("whole");
  const auto windows = crop_windows(signal, whole);
  ASSERT_EQ(windows.size(), 1u);
  EXPECT_EQ(windows[0], signal);  // neither tiled nor cut, whatever the length
  EXPECT_EQ(window_starts(3 * kWindowSamples, whole), std::vector<int64_t>{0});
  EXPECT_THROW(crop_windows({}, whole), Error);
  EXPECT_THROW(require_windowed_crop(whole, "a windowed path"), InvalidArgument);
  EXPECT_NO_THROW(require_windowed_crop(CropPolicy::parse("cover"), "a windowed path"));
}

TEST(AudioCropPolicy, OtherWindowLengthsFollowTheSameRules) {
  // A 1000-sample window over 3500 samples: cover takes 0, 1000, 2000 and the last, 2500.
  const int64_t window = 1000;
  EXPECT_EQ(window_starts(3500, CropPolicy::parse("cover"), window), (std::vector<int64_t>{0, 1000, 2000, 2500}));
  EXPECT_EQ(window_starts(3500, CropPolicy::parse("offset:2500"), window), std::vector<int64_t>{2500});
  EXPECT_THROW(window_starts(3500, CropPolicy::parse("offset:2501"), window), InvalidArgument);
  EXPECT_EQ(window_starts(800, CropPolicy::parse("random:5"), window), std::vector<int64_t>{0});
  // random:SEED draws randrange(length - window), as for the 7-s window.
  EXPECT_EQ(window_starts(3500, CropPolicy::parse("random:123401"), window),
            std::vector<int64_t>{python_randrange(123401, 2500)});
  std::vector<float> signal(300);
  std::iota(signal.begin(), signal.end(), 0.0f);
  const auto tiled = crop_windows(signal, CropPolicy::parse("cover"), window);
  ASSERT_EQ(tiled.size(), 1u);
  ASSERT_EQ(tiled[0].size(), size_t(window));
  EXPECT_EQ(tiled[0][999], float(999 % 300));
  EXPECT_THROW(window_starts(3500, CropPolicy{}, 0), InvalidArgument);
}

}  // namespace
}  // namespace asdcap
