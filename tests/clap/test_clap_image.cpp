// HTSAT's image (wav_to_image: bicubic time interpolation and reshape_wav2img) from msclap's own bn0
// output of every golden clip.
#include <gtest/gtest.h>

#include <cstdio>

#include "asdcap/audio.hpp"
#include "asdcap/clap.hpp"
#include "asdcap/npy.hpp"
#include "audio/golden_clips.hpp"

namespace asdcap {
namespace {

constexpr double kImageTolerance = 5e-6;  // abs, image from golden bn0 (|values| < 10, ~10 ulp)

std::vector<float> golden_array(const std::string& id, const std::string& name) {
  return read_npy(test::golden_dir() + "/audio/" + id + "/" + name).as_float();
}

class ClapImageClip : public ::testing::TestWithParam<std::string> {};

TEST_P(ClapImageClip, ImageFromGoldenBn0) {
  const std::string id = GetParam();
  const std::vector<float> bn0 = golden_array(id, "bn0.npy");
  ASSERT_EQ(bn0.size(), static_cast<size_t>(kWindowFrames * kMelBins));
  const std::vector<float> image = wav_to_image(bn0.data());
  const std::vector<float> reference = golden_array(id, "image.npy");
  ASSERT_EQ(image.size(), reference.size());
  const double err = test::max_abs_diff(image, reference);
  std::printf("[ %s ] image max abs err %.3g\n", id.c_str(), err);
  EXPECT_LE(err, kImageTolerance);
}

std::vector<std::string> clip_ids() {
  std::vector<std::string> ids;
  for (const auto& c : test::golden_clips()) ids.push_back(c.id);
  return ids;
}

INSTANTIATE_TEST_SUITE_P(Clips, ClapImageClip, ::testing::ValuesIn(clip_ids()),
                         [](const auto& test_info) { return test_info.param.substr(0, 3); });

}  // namespace
}  // namespace asdcap
