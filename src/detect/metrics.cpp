#include "asdcap/metrics.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace asdcap {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

void count_classes(const std::vector<bool>& y, int64_t* pos, int64_t* neg) {
  *pos = std::count(y.begin(), y.end(), true);
  *neg = static_cast<int64_t>(y.size()) - *pos;
}

// Indices sorted by score, descending; stable in the original order.
std::vector<size_t> order_descending(const std::vector<double>& s) {
  std::vector<size_t> idx(s.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return s[a] > s[b]; });
  return idx;
}

// Trapezoidal area under a polyline with increasing x.
double trapezoid(const std::vector<double>& x, const std::vector<double>& y) {
  double area = 0;
  for (size_t i = 1; i < x.size(); ++i) area += (x[i] - x[i - 1]) * (y[i] + y[i - 1]) / 2;
  return area;
}

}  // namespace

double roc_auc(const std::vector<double>& scores, const std::vector<bool>& anomalous) {
  int64_t pos, neg;
  count_classes(anomalous, &pos, &neg);
  if (pos == 0 || neg == 0 || scores.size() != anomalous.size()) return kNaN;
  // Mann-Whitney U from mid-ranks (ascending): tied scores share the mean of their ranks,
  // which is exactly counting each anomalous/normal tie as 1/2.
  std::vector<size_t> idx(scores.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return scores[a] < scores[b]; });
  double rank_sum = 0;
  for (size_t i = 0; i < idx.size();) {
    size_t j = i;
    while (j < idx.size() && scores[idx[j]] == scores[idx[i]]) ++j;
    double mid_rank = (static_cast<double>(i + 1) + static_cast<double>(j)) / 2;
    for (size_t t = i; t < j; ++t)
      if (anomalous[idx[t]]) rank_sum += mid_rank;
    i = j;
  }
  double u = rank_sum - static_cast<double>(pos) * (pos + 1) / 2;
  return u / (static_cast<double>(pos) * static_cast<double>(neg));
}

std::vector<RocPoint> roc_curve(const std::vector<double>& scores, const std::vector<bool>& anomalous,
                                bool drop_intermediate) {
  int64_t pos, neg;
  count_classes(anomalous, &pos, &neg);
  if (pos == 0 || neg == 0 || scores.size() != anomalous.size()) return {};
  auto idx = order_descending(scores);
  // Cumulative true/false positives at the last index of each run of equal scores.
  std::vector<double> tps, fps, thr;
  double tp = 0, fp = 0;
  for (size_t i = 0; i < idx.size(); ++i) {
    if (anomalous[idx[i]])
      tp += 1;
    else
      fp += 1;
    if (i + 1 == idx.size() || scores[idx[i + 1]] != scores[idx[i]]) {
      tps.push_back(tp);
      fps.push_back(fp);
      thr.push_back(scores[idx[i]]);
    }
  }
  if (drop_intermediate && tps.size() > 2) {
    // Keep the ends and every point where either cumulative count bends (second difference != 0).
    std::vector<double> t2, f2, h2;
    for (size_t i = 0; i < tps.size(); ++i) {
      bool keep = i == 0 || i + 1 == tps.size() || (fps[i + 1] - 2 * fps[i] + fps[i - 1]) != 0 ||
                  (tps[i + 1] - 2 * tps[i] + tps[i - 1]) != 0;
      if (keep) {
        t2.push_back(tps[i]);
        f2.push_back(fps[i]);
        h2.push_back(thr[i]);
      }
    }
    tps.swap(t2);
    fps.swap(f2);
    thr.swap(h2);
  }
  std::vector<RocPoint> roc;
  roc.push_back({0.0, 0.0, std::numeric_limits<double>::infinity()});
  for (size_t i = 0; i < tps.size(); ++i) roc.push_back({fps[i] / fp, tps[i] / tp, thr[i]});
  return roc;
}

double partial_roc_auc(const std::vector<double>& scores, const std::vector<bool>& anomalous, double max_fpr) {
  auto roc = roc_curve(scores, anomalous, /*drop_intermediate=*/true);
  if (roc.empty()) return kNaN;
  std::vector<double> fpr, tpr;
  for (auto& p : roc) {
    fpr.push_back(p.fpr);
    tpr.push_back(p.tpr);
  }
  if (max_fpr >= 1) return trapezoid(fpr, tpr);
  // numpy.searchsorted(fpr, max_fpr, "right"): first index with fpr > max_fpr.
  size_t stop = std::upper_bound(fpr.begin(), fpr.end(), max_fpr) - fpr.begin();
  double x0 = fpr[stop - 1], x1 = fpr[stop], y0 = tpr[stop - 1], y1 = tpr[stop];
  double y_at = x1 == x0 ? y1 : y0 + (y1 - y0) * (max_fpr - x0) / (x1 - x0);
  std::vector<double> px(fpr.begin(), fpr.begin() + stop), py(tpr.begin(), tpr.begin() + stop);
  px.push_back(max_fpr);
  py.push_back(y_at);
  double partial = trapezoid(px, py);
  double min_area = 0.5 * max_fpr * max_fpr, max_area = max_fpr;
  return 0.5 * (1 + (partial - min_area) / (max_area - min_area));
}

std::optional<double> threshold_closest_to_corner(const std::vector<double>& scores,
                                                  const std::vector<bool>& anomalous) {
  int64_t pos, neg;
  count_classes(anomalous, &pos, &neg);
  if (pos == 0 || neg == 0 || scores.size() != anomalous.size()) return std::nullopt;
  auto idx = order_descending(scores);
  // Walking the distinct scores v from the top, the clips above v are those already passed.
  double above_pos = 0, above_neg = 0, best = std::numeric_limits<double>::infinity(), best_thr = 0;
  for (size_t i = 0; i < idx.size();) {
    double v = scores[idx[i]];
    double fpr = above_neg / neg, tpr = above_pos / pos;
    double d = std::hypot(fpr, 1 - tpr);
    if (d < best) {
      best = d;
      best_thr = v;
    }
    while (i < idx.size() && scores[idx[i]] == v) {
      if (anomalous[idx[i]])
        above_pos += 1;
      else
        above_neg += 1;
      ++i;
    }
  }
  return best_thr;
}

// ---- gamma distribution -------------------------------------------------------------------

namespace {

constexpr double kEps = 1e-15;

// Series for P(a, x), good for x < a + 1.
double gamma_p_series(double a, double x) {
  double term = 1 / a, sum = term, ap = a;
  for (int n = 0; n < 100000; ++n) {
    ap += 1;
    term *= x / ap;
    sum += term;
    if (std::fabs(term) < std::fabs(sum) * kEps) break;
  }
  return sum * std::exp(-x + a * std::log(x) - std::lgamma(a));
}

// Continued fraction for Q(a, x) = 1 - P(a, x) (modified Lentz), good for x >= a + 1.
double gamma_q_fraction(double a, double x) {
  constexpr double tiny = 1e-300;
  double b = x + 1 - a, c = 1 / tiny, d = 1 / b, h = d;
  for (int i = 1; i < 100000; ++i) {
    double an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (std::fabs(d) < tiny) d = tiny;
    c = b + an / c;
    if (std::fabs(c) < tiny) c = tiny;
    d = 1 / d;
    double delta = d * c;
    h *= delta;
    if (std::fabs(delta - 1) < kEps) break;
  }
  return std::exp(-x + a * std::log(x) - std::lgamma(a)) * h;
}

double digamma(double x) {
  double result = 0;
  while (x < 6) {
    result -= 1 / x;
    x += 1;
  }
  double f = 1 / (x * x);
  return result + std::log(x) - 0.5 / x -
         f * (1.0 / 12 - f * (1.0 / 120 - f * (1.0 / 252 - f * (1.0 / 240 - f * (1.0 / 132)))));
}

double trigamma(double x) {
  double result = 0;
  while (x < 6) {
    result += 1 / (x * x);
    x += 1;
  }
  double f = 1 / (x * x);
  return result + 1 / x + f / 2 + f / x * (1.0 / 6 - f * (1.0 / 30 - f * (1.0 / 42 - f * (1.0 / 30 - f * 5.0 / 66))));
}

}  // namespace

double gamma_p(double a, double x) {
  if (!(a > 0) || std::isnan(x)) return kNaN;
  if (x <= 0) return 0;
  if (std::isinf(x)) return 1;
  return x < a + 1 ? gamma_p_series(a, x) : 1 - gamma_q_fraction(a, x);
}

double gamma_p_inverse(double a, double p) {
  if (!(a > 0) || !(p >= 0) || !(p < 1)) return kNaN;
  if (p == 0) return 0;
  // Bracket the root, then Newton steps kept inside the bracket (bisection when they leave it;
  // geometric when the root may be many decades below the bracket's top, as for small a).
  double lo = 0, hi = std::max(1.0, a);
  while (gamma_p(a, hi) < p) {
    lo = hi;
    hi *= 2;
  }
  // Start from the small-x expansion P(a, x) ~ x^a / Gamma(a + 1) when it falls inside.
  double x = std::exp((std::log(p) + std::lgamma(a + 1)) / a);
  if (!(x > lo && x < hi)) x = (lo + hi) / 2;
  const double log_norm = std::lgamma(a);
  for (int it = 0; it < 2000; ++it) {
    double f = gamma_p(a, x) - p;
    if (f == 0) return x;
    if (f < 0)
      lo = x;
    else
      hi = x;
    double density = std::exp((a - 1) * std::log(x) - x - log_norm);
    double next = density > 0 ? x - f / density : -1;
    if (!(next > lo && next < hi))
      next = lo == 0 ? hi / 16 : hi > 2 * lo ? std::exp((std::log(lo) + std::log(hi)) / 2) : lo + (hi - lo) / 2;
    if (std::fabs(next - x) <= 4e-16 * x) return next;
    x = next;
    if (hi - lo <= 1e-15 * hi) return x;
  }
  return x;
}

std::optional<GammaFit> fit_gamma_mle(const std::vector<double>& x) {
  if (x.size() < 2) return std::nullopt;
  double sum = 0, sum_log = 0;
  for (double v : x) {
    if (!(v > 0) || !std::isfinite(v)) return std::nullopt;
    sum += v;
    sum_log += std::log(v);
  }
  double n = static_cast<double>(x.size()), mean = sum / n;
  double s = std::log(mean) - sum_log / n;
  if (!(s > 1e-12)) return std::nullopt;  // all values (nearly) equal: no finite shape
  // Solve ln(a) - digamma(a) = s by Newton from the usual closed-form start (Minka 2002).
  double a = (3 - s + std::sqrt((s - 3) * (s - 3) + 24 * s)) / (12 * s);
  for (int it = 0; it < 100; ++it) {
    double f = std::log(a) - digamma(a) - s;
    double df = 1 / a - trigamma(a);
    double next = a - f / df;
    if (!(next > 0)) next = a / 2;
    bool done = std::fabs(next - a) <= 1e-14 * a;
    a = next;
    if (done) break;
  }
  return GammaFit{a, mean / a};
}

std::optional<double> gamma_threshold(const std::vector<double>& normal_scores, double q) {
  auto fit = fit_gamma_mle(normal_scores);
  if (!fit) return std::nullopt;
  return fit->scale * gamma_p_inverse(fit->shape, q);
}

}  // namespace asdcap
