#include <gtest/gtest.h>

#include <cmath>

#include "asdcap/error.hpp"
#include "png_reader.hpp"
#include "report/colormap.hpp"
#include "report/png.hpp"

using namespace asdcap;

TEST(ReportPng, RoundTripsThroughAnIndependentDecoder) {
  const int w = 37, h = 11;
  std::vector<uint8_t> rgb(size_t(w * h * 3));
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < 3; ++c) rgb[size_t((y * w + x) * 3 + c)] = uint8_t((x * 7 + y * 13 + c * 50) % 256);
  const std::string png = encode_png_rgb(rgb.data(), w, h);
  const auto d = test::decode_png(png);
  EXPECT_EQ(d.width, w);
  EXPECT_EQ(d.height, h);
  EXPECT_EQ(d.rgb, rgb);
}

TEST(ReportPng, PaletteImageRoundTrips) {
  const int w = 19, h = 5;
  const uint8_t palette[9] = {0, 0, 0, 255, 128, 0, 10, 20, 30};
  std::vector<uint8_t> index(size_t(w * h));
  for (size_t i = 0; i < index.size(); ++i) index[i] = uint8_t((i * 7 / 3) % 3);
  const auto d = test::decode_png(encode_png_indexed(index.data(), w, h, palette, 3));
  ASSERT_TRUE(d.palette_type);
  ASSERT_EQ(d.rgb.size(), index.size() * 3);
  for (size_t i = 0; i < index.size(); ++i)
    for (size_t c = 0; c < 3; ++c) EXPECT_EQ(d.rgb[i * 3 + c], palette[index[i] * 3 + c]);
  index[4] = 3;  // outside a 3-colour palette
  EXPECT_THROW(encode_png_indexed(index.data(), w, h, palette, 3), Error);
  EXPECT_THROW(encode_png_indexed(index.data(), w, h, palette, 0), Error);
}

TEST(ReportPng, RejectsBadSizes) {
  uint8_t px[3] = {0, 0, 0};
  EXPECT_THROW(encode_png_rgb(px, 0, 1), Error);
  EXPECT_THROW(encode_png_rgb(px, 1, -1), Error);
}

TEST(ReportPng, Base64MatchesRfc4648Vectors) {
  EXPECT_EQ(base64_encode(""), "");
  EXPECT_EQ(base64_encode("f"), "Zg==");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_EQ(base64_encode("foo"), "Zm9v");
  EXPECT_EQ(base64_encode("foob"), "Zm9vYg==");
  EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(data_uri("image/png", "foo"), "data:image/png;base64,Zm9v");
}

TEST(ReportColormap, OklabOfReferenceColours) {
  // Ottosson's published values: white (1, 0, 0); sRGB red (0.627955, 0.224863, 0.125846).
  auto w = srgb_to_oklab(1, 1, 1);
  EXPECT_NEAR(w.L, 1.0, 1e-4);
  EXPECT_NEAR(w.a, 0.0, 1e-4);
  EXPECT_NEAR(w.b, 0.0, 1e-4);
  auto r = srgb_to_oklab(1, 0, 0);
  EXPECT_NEAR(r.L, 0.627955, 1e-4);
  EXPECT_NEAR(r.a, 0.224863, 1e-4);
  EXPECT_NEAR(r.b, 0.125846, 1e-4);
  double rr, gg, bb;
  EXPECT_TRUE(oklab_to_srgb(r, rr, gg, bb));
  EXPECT_NEAR(rr, 1, 1e-4);
  EXPECT_NEAR(gg, 0, 1e-4);
  EXPECT_FALSE(oklab_to_srgb({0.5, 0.4, 0.0}, rr, gg, bb));  // far outside sRGB
}

// CIE L* straight from sRGB (IEC 61966-2-1 luminance, D65), independent of the Oklab code.
static double cie_lightness(const Rgb8& c) {
  auto lin = [](double v) {
    v /= 255;
    return v <= 0.04045 ? v / 12.92 : std::pow((v + 0.055) / 1.055, 2.4);
  };
  const double Y = 0.2126 * lin(c.r) + 0.7152 * lin(c.g) + 0.0722 * lin(c.b);
  return Y > 216.0 / 24389 ? 116 * std::cbrt(Y) - 16 : Y * 24389.0 / 27;
}

TEST(ReportColormap, LightnessRisesMonotonicallyAndEvenly) {
  const auto& map = sequential_colormap();
  double prev = -1;
  for (const auto& c : map) {
    const double L = cie_lightness(c);
    EXPECT_GE(L, prev - 0.05);  // 8-bit rounding may tie neighbouring entries
    prev = L;
  }
  EXPECT_LT(cie_lightness(map.front()), 25);  // dark end
  EXPECT_GT(cie_lightness(map.back()), 85);   // bright end
  // Perceptual uniformity: equal index steps give similar lightness steps (16 entries apart).
  double lo = 1e9, hi = 0;
  for (int i = 0; i + 16 < 256; i += 16) {
    const double d = cie_lightness(map[size_t(i + 16)]) - cie_lightness(map[size_t(i)]);
    lo = std::min(lo, d), hi = std::max(hi, d);
  }
  EXPECT_GT(lo, 0);
  EXPECT_LT(hi / lo, 1.6);
}

TEST(ReportColormap, ColourDifferenceStepsAreEven) {
  const auto& map = sequential_colormap();
  double lo = 1e9, hi = 0;
  for (int i = 0; i + 16 < 256; i += 16) {
    const auto& a = map[size_t(i)];
    const auto& b = map[size_t(i + 16)];
    auto p = srgb_to_oklab(a.r / 255.0, a.g / 255.0, a.b / 255.0),
         q = srgb_to_oklab(b.r / 255.0, b.g / 255.0, b.b / 255.0);
    const double d = std::sqrt((p.L - q.L) * (p.L - q.L) + (p.a - q.a) * (p.a - q.a) + (p.b - q.b) * (p.b - q.b));
    lo = std::min(lo, d), hi = std::max(hi, d);
  }
  EXPECT_LT(hi / lo, 2.0);
  EXPECT_EQ(colormap_at(-5, 0, 1).r, sequential_colormap()[0].r);
  EXPECT_EQ(colormap_at(std::nan(""), 0, 1).g, sequential_colormap()[0].g);
  EXPECT_EQ(colormap_at(7, 0, 1).b, sequential_colormap()[255].b);
}
