// reshape_wav2img of HTSAT: bicubic time interpolation (965 -> 1024 for msclap, 1001 -> 1024 for
// LAION-CLAP) and the 4-chunk stacking.
#include <algorithm>
#include <cmath>

#include "asdcap/audio.hpp"
#include "asdcap/clap.hpp"
#include "asdcap/error.hpp"
#include "clap/htsat.hpp"

namespace asdcap {
namespace {

// PyTorch's cubic_convolution1/2 (a = -0.75) in float32, with the fused multiply-adds that its
// AVX2 build contracts them to (measured against golden image.npy: without them the error is
// 4x larger).
constexpr float kA = -0.75f;
float cubic1(float x) { return std::fma(std::fma(kA + 2, x, -(kA + 3)) * x, x, 1.0f); }
float cubic2(float x) { return std::fma(std::fma(std::fma(kA, x, -5 * kA), x, 8 * kA), x, -4 * kA); }

}  // namespace

std::vector<float> clap::spectrogram_to_image(const float* bn0, int in_t) {
  constexpr int out_t = 4 * kImageSize;
  if (in_t < 1 || in_t > out_t)
    throw InvalidArgument("HTSAT image: " + std::to_string(in_t) + " frames (1 to " + std::to_string(out_t) +
                          " are stretched to " + std::to_string(out_t) + ")");
  // upsample_bicubic2d, align_corners=True: source = scale * y with a float32 scale. The
  // fractional part is taken from the unrounded product (fma), as in PyTorch's compiled kernel;
  // rounding it first moves the last rows by up to 5e-6 frames and costs 1e-4 of accuracy.
  const float scale = static_cast<float>(in_t - 1) / static_cast<float>(out_t - 1);
  std::vector<float> image(static_cast<size_t>(kImageSize * kImageSize));
  for (int y = 0; y < out_t; ++y) {
    const auto fy = static_cast<float>(y);
    const auto iy = static_cast<int64_t>(std::floor(scale * fy));
    const float t = std::fma(scale, fy, -static_cast<float>(iy));
    const float c[4] = {cubic2(t + 1.0f), cubic1(t), cubic1(1.0f - t), cubic2((1.0f - t) + 1.0f)};
    const float* rows[4];
    for (int j = 0; j < 4; ++j) rows[j] = bn0 + std::clamp<int64_t>(iy - 1 + j, 0, in_t - 1) * kMelBins;
    // reshape_wav2img: frame y goes to chunk y / 256 (stacked along frequency), column y % 256.
    const int chunk = y / kImageSize, col = y % kImageSize;
    for (int m = 0; m < kMelBins; ++m) {
      float v = rows[0][m] * c[0];
      v += rows[1][m] * c[1];
      v += rows[2][m] * c[2];
      v += rows[3][m] * c[3];
      image[static_cast<size_t>((chunk * kMelBins + m) * kImageSize + col)] = v;
    }
  }
  return image;
}

std::vector<float> wav_to_image(const float* bn0) { return clap::spectrogram_to_image(bn0, kWindowFrames); }

}  // namespace asdcap
