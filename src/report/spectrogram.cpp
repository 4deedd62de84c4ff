// A log-mel spectrogram as an HTML panel: the image is a PNG (<img>, data: URI) and the axes are an
// SVG laid over it; both scale with the panel's width (the panel keeps the SVG's aspect ratio).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "asdcap/error.hpp"
#include "report/charts.hpp"
#include "report/colormap.hpp"
#include "report/png.hpp"

namespace asdcap::report {
namespace {

std::string pct(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.3f%%", v * 100);
  return b;
}

std::string f1(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.1f", v);
  return b;
}

std::string hz_label(double hz) {
  char b[32];
  if (hz >= 10000)
    std::snprintf(b, sizeof b, "%.0fk", hz / 1000);
  else if (hz >= 1000)
    std::snprintf(b, sizeof b, "%.1fk", hz / 1000);
  else
    std::snprintf(b, sizeof b, "%.0f", hz);
  return b;
}

}  // namespace

std::string spectrogram_png(const std::vector<float>& db, int frames, int mel_bins, double db_lo, double db_hi) {
  if (frames <= 0 || mel_bins <= 0 || db.size() < static_cast<size_t>(frames) * static_cast<size_t>(mel_bins))
    throw Error("spectrogram_png: no spectrogram");
  // Columns: at most 320, each the mean of the frames it covers; one row per band, low bands at the
  // bottom (the browser stretches it smoothly; this keeps a figure of five clips near 100 kB).
  const int width = std::min(frames, 320), row_px = 1, height = mel_bins * row_px;
  std::vector<uint8_t> index(static_cast<size_t>(width) * static_cast<size_t>(height));
  for (int x = 0; x < width; ++x) {
    const int f0 = static_cast<int>(static_cast<int64_t>(x) * frames / width);
    const int f1_ = std::max(f0 + 1, static_cast<int>(static_cast<int64_t>(x + 1) * frames / width));
    for (int m = 0; m < mel_bins; ++m) {
      double sum = 0;
      for (int f = f0; f < f1_; ++f)
        sum += db[static_cast<size_t>(f) * static_cast<size_t>(mel_bins) + static_cast<size_t>(m)];
      double t = db_hi > db_lo ? (sum / (f1_ - f0) - db_lo) / (db_hi - db_lo) : 0.5;
      if (!(t >= 0)) t = 0;  // NaN too
      const auto level = static_cast<uint8_t>(std::lround(std::min(t, 1.0) * 255.0));
      for (int k = 0; k < row_px; ++k)
        index[static_cast<size_t>((mel_bins - 1 - m) * row_px + k) * static_cast<size_t>(width) +
              static_cast<size_t>(x)] = level;
    }
  }
  std::vector<uint8_t> palette;
  for (const Rgb8& c : sequential_colormap()) palette.insert(palette.end(), {c.r, c.g, c.b});
  return encode_png_indexed(index.data(), width, height, palette.data(), 256);
}

std::pair<double, double> spectrogram_db_range(const std::vector<const std::vector<float>*>& dbs) {
  std::vector<float> sample;
  for (const auto* db : dbs)
    for (size_t i = 0; i < db->size(); i += 5) sample.push_back((*db)[i]);
  if (sample.empty()) return {-100, 0};
  auto q = [&](double p) {
    auto it = sample.begin() + static_cast<std::ptrdiff_t>(p * double(sample.size() - 1));
    std::nth_element(sample.begin(), it, sample.end());
    return double(*it);
  };
  const double hi = q(0.998);
  double lo = q(0.02);
  if (hi - lo < 10) lo = hi - 10;
  return {lo, hi};
}

std::string spectrogram_panel(const std::vector<float>& db, int frames, int mel_bins, double seconds,
                              const std::vector<double>& band_hz, double db_lo, double db_hi, const std::string& alt,
                              const std::vector<double>& marks) {
  if (frames <= 0 || mel_bins <= 0 || db.size() < static_cast<size_t>(frames) * static_cast<size_t>(mel_bins))
    return "<div class=\"spec missing\">no spectrogram</div>";
  const std::string png = spectrogram_png(db, frames, mel_bins, db_lo, db_hi);
  const double W = 220, H = 138, ml = 30, mr = 6, mt = 12, mb = 20;
  const double pw = W - ml - mr, ph = H - mt - mb;
  std::string s = "<div class=\"spec\" style=\"aspect-ratio:" + f1(W) + "/" + f1(H) + "\">";
  s += "<img alt=\"" + html_escape(alt) + "\" src=\"" + data_uri("image/png", png) + "\" style=\"left:" + pct(ml / W) +
       ";top:" + pct(mt / H) + ";width:" + pct(pw / W) + ";height:" + pct(ph / H) + "\">";
  s += "<svg viewBox=\"0 0 " + f1(W) + " " + f1(H) + "\" aria-hidden=\"true\">";
  s += "<rect x=\"" + f1(ml) + "\" y=\"" + f1(mt) + "\" width=\"" + f1(pw) + "\" height=\"" + f1(ph) +
       "\" class=\"frame\"/>";
  // Frequency ticks at band centres, about every 16 bands, in Hz.
  if (static_cast<int>(band_hz.size()) == mel_bins) {
    const int step = std::max(1, mel_bins / 4);
    for (int m = 0; m < mel_bins; m += step) {
      const double y = mt + ph - (m + 0.5) / mel_bins * ph;
      s += "<line x1=\"" + f1(ml - 3) + "\" y1=\"" + f1(y) + "\" x2=\"" + f1(ml) + "\" y2=\"" + f1(y) +
           "\" class=\"axis\"/>";
      s += "<text x=\"" + f1(ml - 5) + "\" y=\"" + f1(y + 3.5) + "\" text-anchor=\"end\" class=\"tick\">" +
           hz_label(band_hz[size_t(m)]) + "</text>";
    }
    const double ytop = mt + ph - (mel_bins - 0.5) / mel_bins * ph;
    s += "<line x1=\"" + f1(ml - 3) + "\" y1=\"" + f1(ytop) + "\" x2=\"" + f1(ml) + "\" y2=\"" + f1(ytop) +
         "\" class=\"axis\"/>";
    s += "<text x=\"" + f1(ml - 5) + "\" y=\"" + f1(ytop + 6) + "\" text-anchor=\"end\" class=\"tick\">" +
         hz_label(band_hz.back()) + "</text>";
  }
  s += "<text x=\"" + f1(ml - 5) + "\" y=\"" + f1(mt - 3) + "\" text-anchor=\"end\" class=\"tick unit\">Hz</text>";
  if (seconds > 0) {
    const double raw = seconds / 4;
    const double mag = std::pow(10.0, std::floor(std::log10(raw)));
    double step = mag;
    for (double m : {1.0, 2.0, 5.0, 10.0})
      if (m * mag >= raw) {
        step = m * mag;
        break;
      }
    for (double t = 0; t <= seconds + 1e-9; t += step) {
      const double x = ml + t / seconds * pw;
      if (x > W - mr - 14 && t > 0) break;  // keep the unit label readable
      s += "<line x1=\"" + f1(x) + "\" y1=\"" + f1(mt + ph) + "\" x2=\"" + f1(x) + "\" y2=\"" + f1(mt + ph + 3) +
           "\" class=\"axis\"/>";
      char b[32];
      std::snprintf(b, sizeof b, step < 1 ? "%.1f" : "%.0f", t);
      s += "<text x=\"" + f1(x) + "\" y=\"" + f1(mt + ph + 13) + "\" text-anchor=\"middle\" class=\"tick\">" + b +
           "</text>";
    }
    s += "<text x=\"" + f1(W - mr) + "\" y=\"" + f1(mt + ph + 13) +
         "\" text-anchor=\"end\" class=\"tick unit\">s</text>";
    for (double t : marks) {
      if (!(t >= 0 && t <= seconds)) continue;
      const double x = ml + t / seconds * pw;
      s += "<path d=\"M" + f1(x - 3) + " " + f1(mt - 6) + "L" + f1(x + 3) + " " + f1(mt - 6) + "L" + f1(x) + " " +
           f1(mt) + "Z\" class=\"event\"><title>event at " + f1(t) + " s</title></path>";
    }
  }
  s += "</svg></div>";
  return s;
}

std::string share_repeated_images(std::string& body) {
  // spectrogram_panel writes <img alt="ALT" src="URI" style="STYLE">; ALT is escaped and URI is base64.
  static const std::string open = "<img alt=\"", src = "\" src=\"", style = "\" style=\"";
  struct Tag {
    size_t begin, end;
    std::string alt, uri, style;
  };
  std::vector<Tag> tags;
  std::map<std::string, int> uses;
  for (size_t at = body.find(open); at != std::string::npos; at = body.find(open, at + 1)) {
    const size_t a = at + open.size(), s1 = body.find(src, a);
    if (s1 == std::string::npos) break;
    const size_t u = s1 + src.size(), s2 = body.find(style, u);
    if (s2 == std::string::npos) break;
    const size_t st = s2 + style.size(), close = body.find("\">", st);
    if (close == std::string::npos) break;
    Tag t{at, close + 2, body.substr(a, s1 - a), body.substr(u, s2 - u), body.substr(st, close - st)};
    if (t.uri.rfind("data:image/png;base64,", 0) != 0 || t.alt.find('"') != std::string::npos) continue;
    ++uses[t.uri];
    tags.push_back(std::move(t));
  }
  std::map<std::string, int> cls;  // URI -> class number, for URIs used more than once
  std::string css, out;
  size_t copied = 0;
  for (const Tag& t : tags) {
    if (uses[t.uri] < 2) continue;
    auto [it, fresh] = cls.emplace(t.uri, static_cast<int>(cls.size()));
    const std::string name = "sg" + std::to_string(it->second);
    if (fresh) css += "." + name + "{background-image:url(" + t.uri + ")}";
    out.append(body, copied, t.begin - copied);
    out +=
        "<div class=\"sgimg " + name + "\" role=\"img\" aria-label=\"" + t.alt + "\" style=\"" + t.style + "\"></div>";
    copied = t.end;
  }
  if (cls.empty()) return "";
  out.append(body, copied, std::string::npos);
  body = std::move(out);
  return css;
}

}  // namespace asdcap::report
