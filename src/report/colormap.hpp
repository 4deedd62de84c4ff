// Colour helpers for the report: Oklab conversions and asdcap's perceptually uniform sequential
// colour map (dark violet -> teal -> yellow), computed in Oklab with lightness rising linearly.
#pragma once
#include <array>
#include <cstdint>

namespace asdcap {

struct Rgb8 {
  uint8_t r, g, b;
};

struct Oklab {
  double L, a, b;
};

// sRGB components in [0, 1] (gamma encoded) <-> Oklab (Ottosson 2020).
Oklab srgb_to_oklab(double r, double g, double b);
// Returns false if the colour lies outside the sRGB gamut (components are then clamped).
bool oklab_to_srgb(const Oklab& lab, double& r, double& g, double& b);

// 256 entries, index 0 = lowest value. Lightness is strictly increasing.
const std::array<Rgb8, 256>& sequential_colormap();

// Colour of v in [lo, hi] (clamped), as the map's entry.
Rgb8 colormap_at(double v, double lo, double hi);

}  // namespace asdcap
