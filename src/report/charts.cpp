// Inline SVG charts. Colours carry meaning throughout the report: anomalous = warm (orange-red),
// normal = cool (blue), unlabelled = grey; the threshold is a dark dashed line.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

#include "report/charts.hpp"

namespace asdcap::report {
namespace {

constexpr const char* kWarm = "#e8590c";
constexpr const char* kCool = "#1c7ed6";
constexpr const char* kGrey = "#adb5bd";

std::string f1(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.1f", v);
  return b;
}

// About `n` round tick values covering [lo, hi].
std::vector<double> nice_ticks(double lo, double hi, int n) {
  std::vector<double> ticks;
  if (!(hi > lo)) return {lo};
  const double raw = (hi - lo) / std::max(1, n);
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 2.5, 5.0, 10.0})
    if (m * mag >= raw) {
      step = m * mag;
      break;
    }
  for (double t = std::ceil(lo / step) * step; t <= hi + step * 1e-9; t += step)
    ticks.push_back(std::abs(t) < step * 1e-9 ? 0.0 : t);
  return ticks;
}

std::string svg_open(int w, int h, const std::string& title, const std::string& cls) {
  return "<svg class=\"chart " + cls + "\" viewBox=\"0 0 " + std::to_string(w) + " " + std::to_string(h) +
         "\" role=\"img\"><title>" + html_escape(title) + "</title>";
}

std::string text(double x, double y, const std::string& s, const char* anchor = "middle", const char* cls = "") {
  return "<text x=\"" + f1(x) + "\" y=\"" + f1(y) + "\" text-anchor=\"" + anchor + "\"" +
         (*cls ? std::string(" class=\"") + cls + "\"" : std::string()) + ">" + html_escape(s) + "</text>";
}

std::string line(double x1, double y1, double x2, double y2, const std::string& style) {
  return "<line x1=\"" + f1(x1) + "\" y1=\"" + f1(y1) + "\" x2=\"" + f1(x2) + "\" y2=\"" + f1(y2) + "\" " + style +
         "/>";
}

double mean_of(const std::vector<double>& v) {
  return v.empty() ? NAN : std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
}

}  // namespace

std::string html_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string format_number(double v, int significant) {
  if (!std::isfinite(v)) return "n/a";
  char b[48];
  const double a = std::abs(v);
  if (a != 0 && (a >= 1e5 || a < 1e-3)) {
    std::snprintf(b, sizeof b, "%.*e", std::max(0, significant - 1), v);
  } else {
    int digits = a == 0 ? significant - 1 : std::max(0, significant - 1 - static_cast<int>(std::floor(std::log10(a))));
    std::snprintf(b, sizeof b, "%.*f", digits, v);
  }
  return b;
}

std::vector<RocPoint> roc_curve(const std::vector<double>& scores, const std::vector<bool>& anomaly) {
  const size_t n = std::min(scores.size(), anomaly.size());
  size_t pos = 0;
  for (size_t i = 0; i < n; ++i) pos += anomaly[i] ? 1 : 0;
  const size_t neg = n - pos;
  if (pos == 0 || neg == 0) return {};
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return scores[a] > scores[b]; });
  std::vector<RocPoint> curve{{0, 0}};
  size_t tp = 0, fp = 0;
  for (size_t i = 0; i < n;) {
    size_t j = i;
    while (j < n && scores[order[j]] == scores[order[i]]) {  // a tie moves as one step
      (anomaly[order[j]] ? tp : fp) += 1;
      ++j;
    }
    curve.push_back(
        {static_cast<double>(fp) / static_cast<double>(neg), static_cast<double>(tp) / static_cast<double>(pos)});
    i = j;
  }
  return curve;
}

double roc_auc(const std::vector<RocPoint>& c) {
  double area = 0;
  for (size_t i = 1; i < c.size(); ++i) area += (c[i].fpr - c[i - 1].fpr) * (c[i].tpr + c[i - 1].tpr) / 2;
  return area;
}

std::string svg_score_distribution(const std::vector<double>& normal, const std::vector<double>& anomaly,
                                   const std::vector<double>& unlabeled, std::optional<double> threshold) {
  const int W = 360, H = 214, ml = 36, mr = 10, mt = 30, mb = 34;
  std::string s = svg_open(W, H, "Anomaly scores of normal and anomalous test clips", "hist");
  std::vector<double> all;
  for (const auto* v : {&normal, &anomaly, &unlabeled})
    for (double x : *v)
      if (std::isfinite(x)) all.push_back(x);
  if (all.empty()) return s + text(W / 2.0, H / 2.0, "no scores", "middle", "muted") + "</svg>";
  double lo = *std::min_element(all.begin(), all.end()), hi = *std::max_element(all.begin(), all.end());
  if (threshold && std::isfinite(*threshold)) lo = std::min(lo, *threshold), hi = std::max(hi, *threshold);
  if (hi - lo < 1e-12) lo -= 0.5, hi += 0.5;
  const double pad = (hi - lo) * 0.04;
  lo -= pad, hi += pad;
  const int bins = std::clamp(static_cast<int>(std::sqrt(static_cast<double>(all.size())) * 1.5), 8, 30);
  auto hist = [&](const std::vector<double>& v) {
    std::vector<int> h(static_cast<size_t>(bins), 0);
    for (double x : v)
      if (std::isfinite(x))
        h[static_cast<size_t>(std::clamp(static_cast<int>((x - lo) / (hi - lo) * bins), 0, bins - 1))]++;
    return h;
  };
  auto hn = hist(normal), ha = hist(anomaly), hu = hist(unlabeled);
  int top = 1;
  for (int i = 0; i < bins; ++i) top = std::max({top, hn[size_t(i)], ha[size_t(i)], hu[size_t(i)]});
  const double pw = W - ml - mr, ph = H - mt - mb;
  auto X = [&](double v) { return ml + (v - lo) / (hi - lo) * pw; };
  auto Y = [&](double c) { return mt + ph - c / top * ph; };
  for (double t : nice_ticks(0, top, 4)) {
    if (t != std::floor(t)) continue;  // counts
    s += line(ml, Y(t), W - mr, Y(t), "class=\"grid\"");
    s += text(ml - 4, Y(t) + 3.5, std::to_string(static_cast<long>(t)), "end", "tick");
  }
  auto bars = [&](const std::vector<int>& h, const char* colour, const char* cls) {
    std::string path = "M" + f1(X(lo)) + "," + f1(Y(0));
    for (int i = 0; i < bins; ++i) {
      const double x0 = X(lo + (hi - lo) * i / bins), x1 = X(lo + (hi - lo) * (i + 1) / bins);
      path += " L" + f1(x0) + "," + f1(Y(h[size_t(i)])) + " L" + f1(x1) + "," + f1(Y(h[size_t(i)]));
    }
    path += " L" + f1(X(hi)) + "," + f1(Y(0)) + " Z";
    return "<path class=\"" + std::string(cls) + "\" d=\"" + path + "\" fill=\"" + colour +
           "\" fill-opacity=\"0.35\" stroke=\"" + colour + "\" stroke-width=\"1.5\"/>";
  };
  if (!unlabeled.empty()) s += bars(hu, kGrey, "unlabeled");
  if (!normal.empty()) s += bars(hn, kCool, "normal");
  if (!anomaly.empty()) s += bars(ha, kWarm, "anomaly");
  s += line(ml, Y(0), W - mr, Y(0), "class=\"axis\"");
  for (double t : nice_ticks(lo, hi, 5)) {
    s += line(X(t), Y(0), X(t), Y(0) + 4, "class=\"axis\"");
    s += text(X(t), Y(0) + 15, format_number(t, 3), "middle", "tick");
  }
  s += text(ml + pw / 2, H - 4, "anomaly score (mean distance to the k nearest normal clips)", "middle", "label");
  if (threshold && std::isfinite(*threshold)) {
    const bool right = X(*threshold) > ml + pw * 0.6;
    s += line(X(*threshold), mt - 6, X(*threshold), Y(0), "class=\"threshold\"");
    s += text(X(*threshold) + (right ? -4 : 4), mt + 2, "threshold " + format_number(*threshold, 3),
              right ? "end" : "start", "tick strong");
  }
  // Legend
  double lx = ml + 4;
  auto legend = [&](const char* colour, const std::string& label) {
    s += "<rect x=\"" + f1(lx) + "\" y=\"4\" width=\"10\" height=\"10\" fill=\"" + colour + "\" fill-opacity=\"0.6\"/>";
    s += text(lx + 13, 13, label, "start", "tick");
    lx += 22 + 5.6 * static_cast<double>(label.size());
  };
  if (!normal.empty()) legend(kCool, "normal (" + std::to_string(normal.size()) + ")");
  if (!anomaly.empty()) legend(kWarm, "anomalous (" + std::to_string(anomaly.size()) + ")");
  if (!unlabeled.empty()) legend(kGrey, "unlabelled (" + std::to_string(unlabeled.size()) + ")");
  return s + "</svg>";
}

std::string svg_roc(const std::vector<double>& scores, const std::vector<bool>& anomaly,
                    std::optional<double> threshold) {
  const int W = 236, H = 214, ml = 44, mr = 10, mt = 14, mb = 34;
  std::string s = svg_open(W, H, "ROC curve", "roc");
  const auto curve = roc_curve(scores, anomaly);
  const double pw = W - ml - mr, ph = H - mt - mb;
  auto X = [&](double v) { return ml + v * pw; };
  auto Y = [&](double v) { return mt + ph - v * ph; };
  s += "<rect x=\"" + f1(X(0)) + "\" y=\"" + f1(Y(1)) + "\" width=\"" + f1(X(0.1) - X(0)) + "\" height=\"" + f1(ph) +
       "\" class=\"pauc-band\"><title>pAUC region: FPR up to 0.1</title></rect>";
  for (double t : {0.0, 0.25, 0.5, 0.75, 1.0}) {
    s += line(ml, Y(t), W - mr, Y(t), "class=\"grid\"");
    s += text(ml - 4, Y(t) + 3.5, format_number(t, 2), "end", "tick");
    s += text(X(t), Y(0) + 14, format_number(t, 2), "middle", "tick");
  }
  s += line(X(0), Y(0), X(1), Y(1), "class=\"chance\"");
  s += line(ml, Y(0), W - mr, Y(0), "class=\"axis\"") + line(ml, Y(0), ml, Y(1), "class=\"axis\"");
  s += text(ml + pw / 2, H - 4, "false positive rate", "middle", "label");
  s += "<text class=\"label\" transform=\"translate(11," + f1(mt + ph / 2) +
       ") rotate(-90)\" text-anchor=\"middle\">true positive rate</text>";
  if (curve.empty())
    return s + text(ml + pw / 2, mt + ph / 2, "needs normal and anomalous labels", "middle", "muted") + "</svg>";
  std::string pts;
  for (const auto& p : curve) pts += f1(X(p.fpr)) + "," + f1(Y(p.tpr)) + " ";
  s += "<polyline class=\"roc-line\" points=\"" + pts + "\"/>";
  if (threshold && std::isfinite(*threshold)) {
    size_t pos = 0, neg = 0, tp = 0, fp = 0;
    for (size_t i = 0; i < std::min(scores.size(), anomaly.size()); ++i) {
      (anomaly[i] ? pos : neg)++;
      if (scores[i] > *threshold) (anomaly[i] ? tp : fp)++;
    }
    const double fpr = double(fp) / double(neg), tpr = double(tp) / double(pos);
    s += "<circle class=\"op-point\" cx=\"" + f1(X(fpr)) + "\" cy=\"" + f1(Y(tpr)) +
         "\" r=\"4\"><title>threshold: FPR " + format_number(fpr, 2) + ", TPR " + format_number(tpr, 2) +
         "</title></circle>";
  }
  s += text(X(1) - 2, Y(0) - 6, "AUC " + f1(100 * roc_auc(curve)) + "%", "end", "label");
  return s + "</svg>";
}

std::string svg_similarity(const std::vector<std::string>& texts, const std::vector<double>& anomalous,
                           const std::vector<std::vector<double>>& neighbors) {
  const int rows = static_cast<int>(texts.size());
  const int W = 600, row_h = 22, ml = 236, mr = 16, mt = 24, mb = 30;
  const int H = mt + mb + row_h * std::max(rows, 1);
  std::string s = svg_open(W, H, "Cosine similarity of each clip to the reference texts", "sim");
  std::vector<double> all(anomalous.begin(), anomalous.end());
  for (const auto& n : neighbors) all.insert(all.end(), n.begin(), n.end());
  all.erase(std::remove_if(all.begin(), all.end(), [](double v) { return !std::isfinite(v); }), all.end());
  if (all.empty() || rows == 0) return s + text(W / 2.0, H / 2.0, "no similarities", "middle", "muted") + "</svg>";
  double lo = *std::min_element(all.begin(), all.end()), hi = *std::max_element(all.begin(), all.end());
  const double pad = std::max(1e-3, (hi - lo) * 0.08);
  lo -= pad, hi += pad;
  const double pw = W - ml - mr;
  auto X = [&](double v) { return ml + (v - lo) / (hi - lo) * pw; };
  const double y_end = mt + row_h * rows;
  for (double t : nice_ticks(lo, hi, 5)) {
    s += line(X(t), mt - 4, X(t), y_end, "class=\"grid\"");
    s += text(X(t), y_end + 13, format_number(t, 2), "middle", "tick");
  }
  s += text(ml + pw / 2, H - 3, "cosine similarity", "middle", "label");
  s += "<circle cx=\"" + f1(ml + 4) + "\" cy=\"10\" r=\"5\" fill=\"" + kWarm + "\"/>" +
       text(ml + 12, 14, "anomalous clip", "start", "tick");
  s += "<circle cx=\"" + f1(ml + 110) + "\" cy=\"10\" r=\"3.5\" fill=\"" + kCool + "\" fill-opacity=\"0.75\"/>" +
       text(ml + 117, 14, "nearest normal clips", "start", "tick");
  for (int r = 0; r < rows; ++r) {
    const double y = mt + row_h * (r + 0.5);
    std::string label = texts[size_t(r)];
    std::string shown = label.size() > 36 ? label.substr(0, 35) + "\u2026" : label;
    s += "<g><title>" + html_escape(label) + "</title>" + text(ml - 8, y + 4, shown, "end", "rowlabel") + "</g>";
    std::vector<double> nv;
    for (const auto& n : neighbors)
      if (size_t(r) < n.size() && std::isfinite(n[size_t(r)])) nv.push_back(n[size_t(r)]);
    if (!nv.empty() && size_t(r) < anomalous.size() && std::isfinite(anomalous[size_t(r)]))
      s += line(X(mean_of(nv)), y, X(anomalous[size_t(r)]), y, "class=\"diff\"");
    for (double v : nv)
      s += "<circle cx=\"" + f1(X(v)) + "\" cy=\"" + f1(y) + "\" r=\"3.5\" fill=\"" + kCool +
           "\" fill-opacity=\"0.75\"/>";
    if (size_t(r) < anomalous.size() && std::isfinite(anomalous[size_t(r)]))
      s += "<circle cx=\"" + f1(X(anomalous[size_t(r)])) + "\" cy=\"" + f1(y) + "\" r=\"5\" fill=\"" + kWarm +
           "\"><title>" + format_number(anomalous[size_t(r)], 3) + "</title></circle>";
  }
  return s + "</svg>";
}

std::string svg_evidence(const std::vector<EvidenceFeature>& unsorted) {
  // Strongest evidence first (largest |z|); descriptive features (no z) last, in their given order.
  std::vector<EvidenceFeature> features = unsorted;
  std::stable_sort(features.begin(), features.end(), [](const EvidenceFeature& a, const EvidenceFeature& b) {
    if (a.z.has_value() != b.z.has_value()) return a.z.has_value();
    return a.z && std::abs(*a.z) > std::abs(*b.z);
  });
  const int rows = static_cast<int>(features.size());
  const int W = 640, row_h = 22, ml = 236, mr = 184, mt = 10, mb = 30;
  const int H = mt + mb + row_h * std::max(rows, 1);
  std::string s =
      svg_open(W, H, "Acoustic evidence: z-score of the anomalous clip against its nearest normal clips", "evidence");
  if (rows == 0) return s + text(W / 2.0, H / 2.0, "no acoustic evidence", "middle", "muted") + "</svg>";
  double zmax = 3;
  for (const auto& f : features)
    if (f.z)
      zmax =
          std::max(zmax, std::min(std::ceil(std::abs(*f.z)), 10.0));  // larger |z| is clipped, value in the bar's title
  const double pw = W - ml - mr;
  auto X = [&](double z) { return ml + (std::clamp(z, -zmax, zmax) + zmax) / (2 * zmax) * pw; };
  const double y_end = mt + row_h * rows;
  for (double t : nice_ticks(-zmax, zmax, 6)) {
    s += line(X(t), mt, X(t), y_end, t == 0 ? "class=\"axis\"" : "class=\"grid\"");
    s += text(X(t), y_end + 13, format_number(t, 2), "middle", "tick");
  }
  s += text(ml + pw / 2, H - 3, "z-score (anomalous vs. nearest normal clips)", "middle", "label");
  for (int r = 0; r < rows; ++r) {
    const auto& f = features[size_t(r)];
    const double y = mt + row_h * (r + 0.5);
    std::string label = f.name.empty() ? f.key : f.name;
    std::string shown = label.size() > 36 ? label.substr(0, 35) + "\u2026" : label;
    s += "<g><title>" + html_escape(label) + "</title>" + text(ml - 8, y + 4, shown, "end", "rowlabel") + "</g>";
    std::vector<double> nv;
    for (const auto& v : f.neighbors)
      if (v) nv.push_back(*v);
    std::string detail = f.anomalous ? format_number(*f.anomalous, 3) : std::string("n/a");
    if (!nv.empty()) detail += " vs " + format_number(mean_of(nv), 3);
    if (!f.unit.empty()) detail += " " + f.unit;
    if (!f.z) {
      s += text(X(0) + 4, y + 4, "descriptive", "start", "muted");
    } else {
      const double z = *f.z, x0 = X(0), x1 = X(z);
      const char* colour = std::abs(z) >= 2 ? kWarm : kGrey;
      s += "<rect x=\"" + f1(std::min(x0, x1)) + "\" y=\"" + f1(y - 7) + "\" width=\"" +
           f1(std::max(1.0, std::abs(x1 - x0))) + "\" height=\"14\" rx=\"2\" fill=\"" + colour +
           "\"><title>z = " + format_number(z, 3) + "</title></rect>";
    }
    if (detail.size() > 34) detail = detail.substr(0, 33) + "\u2026";
    s += text(W - mr + 8, y + 4, detail, "start", "tick");
  }
  return s + "</svg>";
}

}  // namespace asdcap::report
