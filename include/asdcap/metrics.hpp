// Detection metrics and thresholds, as the DCASE evaluators and the papers compute them.
// Convention everywhere: a higher score means more anomalous; label true = anomalous.
#pragma once
#include <optional>
#include <vector>

namespace asdcap {

// Area under the ROC curve = Mann-Whitney U / (P N); a tie between an anomalous and a normal
// score counts 1/2. NaN when either class is empty.
double roc_auc(const std::vector<double>& scores, const std::vector<bool>& anomalous);

// scikit-learn's roc_auc_score(y, s, max_fpr): partial AUC up to max_fpr on roc_curve's points
// (drop_intermediate=True), the last point interpolated at max_fpr, McClish-standardised:
// 0.5 * (1 + (pauc - min_area) / (max_area - min_area)), min_area = max_fpr^2 / 2, max_area = max_fpr.
// NaN when either class is empty.
double partial_roc_auc(const std::vector<double>& scores, const std::vector<bool>& anomalous, double max_fpr = 0.1);

struct RocPoint {
  double fpr, tpr, threshold;  // scores > threshold are predicted anomalous
};
// scikit-learn's roc_curve: one point per distinct score (plus the origin, threshold +inf),
// optionally without collinear intermediate points. Here point i predicts "score >= t_i";
// `threshold` is reported as in scikit-learn (t_i itself).
std::vector<RocPoint> roc_curve(const std::vector<double>& scores, const std::vector<bool>& anomalous,
                                bool drop_intermediate);

// The second paper's rule: the threshold whose ROC point (decision: score > threshold) is closest
// in Euclidean distance to (0, 1). Candidates are the distinct scores; ties go to the higher
// threshold. nullopt when either class is empty.
std::optional<double> threshold_closest_to_corner(const std::vector<double>& scores,
                                                  const std::vector<bool>& anomalous);

// Regularised lower incomplete gamma P(a, x) and its inverse in x (a > 0, 0 <= p < 1).
double gamma_p(double a, double x);
double gamma_p_inverse(double a, double p);

struct GammaFit {
  double shape, scale;  // loc = 0
};
// Maximum-likelihood gamma fit with the location fixed at 0 (scipy.stats.gamma.fit(x, floc=0)):
// solves ln(a) - digamma(a) = ln(mean x) - mean(ln x), scale = mean / a. Needs >= 2 positive,
// not all equal values; otherwise nullopt.
std::optional<GammaFit> fit_gamma_mle(const std::vector<double>& x);

// Threshold for unlabelled data: the `q` quantile of the gamma fitted to `normal_scores`.
std::optional<double> gamma_threshold(const std::vector<double>& normal_scores, double q = 0.9);

}  // namespace asdcap
