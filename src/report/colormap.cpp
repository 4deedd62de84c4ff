#include "report/colormap.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace asdcap {
namespace {

double to_linear(double c) { return c <= 0.04045 ? c / 12.92 : std::pow((c + 0.055) / 1.055, 2.4); }
double to_gamma(double c) { return c <= 0.0031308 ? 12.92 * c : 1.055 * std::pow(c, 1 / 2.4) - 0.055; }

// Lightness rises linearly (the property that makes a map perceptually ordered); hue turns from
// violet (290 deg) through blue and teal to yellow (100 deg); chroma grows towards the bright end
// and is reduced where the sRGB gamut is too narrow to hold it.
std::array<Rgb8, 256> build_map() {
  std::array<Rgb8, 256> map{};
  for (int i = 0; i < 256; ++i) {
    const double t = i / 255.0;
    const double L = 0.22 + 0.71 * t;
    const double hue = (290.0 - 190.0 * t) * std::numbers::pi / 180.0;
    double hi = 0.09 + 0.09 * t, lo = 0.0;
    double r = 0, g = 0, b = 0;
    if (!oklab_to_srgb({L, hi * std::cos(hue), hi * std::sin(hue)}, r, g, b)) {
      for (int it = 0; it < 30; ++it) {  // largest chroma inside the gamut
        const double c = 0.5 * (lo + hi);
        if (oklab_to_srgb({L, c * std::cos(hue), c * std::sin(hue)}, r, g, b))
          lo = c;
        else
          hi = c;
      }
      oklab_to_srgb({L, lo * std::cos(hue), lo * std::sin(hue)}, r, g, b);
    }
    auto q = [](double c) { return static_cast<uint8_t>(std::lround(std::clamp(c, 0.0, 1.0) * 255.0)); };
    map[static_cast<size_t>(i)] = {q(r), q(g), q(b)};
  }
  return map;
}

}  // namespace

Oklab srgb_to_oklab(double r, double g, double b) {
  r = to_linear(r), g = to_linear(g), b = to_linear(b);
  const double l = std::cbrt(0.4122214708 * r + 0.5363325363 * g + 0.0514459929 * b);
  const double m = std::cbrt(0.2119034982 * r + 0.6806995451 * g + 0.1073969566 * b);
  const double s = std::cbrt(0.0883024619 * r + 0.2817188376 * g + 0.6299787005 * b);
  return {0.2104542553 * l + 0.7936177850 * m - 0.0040720468 * s,
          1.9779984951 * l - 2.4285922050 * m + 0.4505937099 * s,
          0.0259040371 * l + 0.7827717662 * m - 0.8086757660 * s};
}

bool oklab_to_srgb(const Oklab& lab, double& r, double& g, double& b) {
  const double l = std::pow(lab.L + 0.3963377774 * lab.a + 0.2158037573 * lab.b, 3);
  const double m = std::pow(lab.L - 0.1055613458 * lab.a - 0.0638541728 * lab.b, 3);
  const double s = std::pow(lab.L - 0.0894841775 * lab.a - 1.2914855480 * lab.b, 3);
  const double lr = 4.0767416621 * l - 3.3077115913 * m + 0.2309699292 * s;
  const double lg = -1.2684380046 * l + 2.6097574011 * m - 0.3413193965 * s;
  const double lb = -0.0041960863 * l - 0.7034186147 * m + 1.7076147010 * s;
  const double eps = 1e-6;
  const bool inside = lr >= -eps && lr <= 1 + eps && lg >= -eps && lg <= 1 + eps && lb >= -eps && lb <= 1 + eps;
  r = to_gamma(std::clamp(lr, 0.0, 1.0));
  g = to_gamma(std::clamp(lg, 0.0, 1.0));
  b = to_gamma(std::clamp(lb, 0.0, 1.0));
  return inside;
}

const std::array<Rgb8, 256>& sequential_colormap() {
  static const std::array<Rgb8, 256> map = build_map();
  return map;
}

Rgb8 colormap_at(double v, double lo, double hi) {
  double t = hi > lo ? (v - lo) / (hi - lo) : 0.5;
  if (!(t >= 0)) t = 0;  // NaN too
  if (t > 1) t = 1;
  return sequential_colormap()[static_cast<size_t>(std::lround(t * 255.0))];
}

}  // namespace asdcap
