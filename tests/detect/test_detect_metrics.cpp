// Metric and threshold tests. Expected values are worked out by hand in the comments (or taken
// from scikit-learn's documentation / published chi-square tables), never from this code.
#include <gtest/gtest.h>

#include <cmath>

#include "asdcap/metrics.hpp"

using namespace asdcap;

namespace {
std::vector<bool> labels(std::initializer_list<int> v) {
  std::vector<bool> out;
  for (int x : v) out.push_back(x != 0);
  return out;
}
}  // namespace

// scores: anomalies {0.9, 0.5, 0.5}, normals {0.5, 0.3, 0.1}; 9 pairs.
// 0.9 beats 3 normals -> 3; each 0.5 anomaly: tie with 0.5 (0.5) + beats 0.3, 0.1 (2) -> 2.5.
// AUC = (3 + 2.5 + 2.5) / 9 = 8/9.
TEST(DetectMetrics, AucCountsTiesAcrossClassesAsHalf) {
  std::vector<double> s = {0.9, 0.5, 0.5, 0.5, 0.3, 0.1};
  auto y = labels({1, 1, 1, 0, 0, 0});
  EXPECT_NEAR(roc_auc(s, y), 8.0 / 9.0, 1e-12);
}

// Same data. roc_curve (descending): t=0.9 (tp1,fp0), t=0.5 (tp3,fp1), t=0.3 (tp3,fp2), t=0.1 (tp3,fp3).
// drop_intermediate removes t=0.3 (both second differences 0). Points: (0,0) (0,1/3) (1/3,1) (1,1).
// max_fpr 0.1 lies between (0,1/3) and (1/3,1): tpr = 1/3 + (2/3)*(0.1/(1/3)) = 1/3 + 0.2.
// area = 0.1 * (1/3 + 1/3 + 0.2) / 2 = 0.1 * 0.4333.. = 0.0433333..
// McClish: 0.5 * (1 + (0.0433333 - 0.005) / (0.1 - 0.005)) = 0.5 * (1 + 0.0383333/0.095) = 0.7017544.
TEST(DetectMetrics, PartialAucInterpolatesAtMaxFpr) {
  std::vector<double> s = {0.9, 0.5, 0.5, 0.5, 0.3, 0.1};
  auto y = labels({1, 1, 1, 0, 0, 0});
  double area = 0.1 * (1.0 / 3 + 1.0 / 3 + 0.2) / 2;
  EXPECT_NEAR(partial_roc_auc(s, y, 0.1), 0.5 * (1 + (area - 0.005) / 0.095), 1e-12);
  EXPECT_NEAR(partial_roc_auc(s, y, 0.1), 0.70175438596, 1e-10);
}

// Normals score 1..10, anomalies 10 (tied with the top normal) and 5.5.
// AUC: anomaly 10 beats 9 normals + half a tie = 9.5; anomaly 5.5 beats 5 -> (9.5 + 5) / 20 = 0.725.
// ROC: the tie at 10 gives the diagonal step (0,0) -> (0.1, 0.5); the partial area up to 0.1 is
// 0.1 * 0.5 / 2 = 0.025 -> 0.5 * (1 + 0.02 / 0.095) = 0.6052632. (Counting the tie as a hit first
// would give the step (0, 0.5) and 0.7368.)
// Closest to (0,1) with "score > t": t=9 -> (0.1, 0.5), d = 0.5099; t=5 -> (0.5, 1), d = 0.5;
// t=4 -> (0.6, 1), d = 0.6; t=5.5 -> (0.5, 0.5), d = 0.707. Best: t = 5.
TEST(DetectMetrics, TieAtTheTopIsADiagonalStep) {
  std::vector<double> s = {10, 5.5, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  auto y = labels({1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0});
  EXPECT_NEAR(roc_auc(s, y), 0.725, 1e-12);
  EXPECT_NEAR(partial_roc_auc(s, y, 0.1), 0.5 * (1 + 0.02 / 0.095), 1e-12);
  auto t = threshold_closest_to_corner(s, y);
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(*t, 5.0);
}

// Same data as the first test: t=0.9 -> (0,0) d=1; t=0.5 -> (0,1/3) d=2/3; t=0.3 -> (1/3,1) d=1/3;
// t=0.1 -> (2/3,1) d=2/3. Best t = 0.3: predicted anomalous = {0.9, 0.5, 0.5, 0.5}.
TEST(DetectMetrics, ThresholdClosestToCorner) {
  std::vector<double> s = {0.9, 0.5, 0.5, 0.5, 0.3, 0.1};
  auto y = labels({1, 1, 1, 0, 0, 0});
  EXPECT_EQ(threshold_closest_to_corner(s, y).value(), 0.3);
}

TEST(DetectMetrics, PerfectWorstAndChance) {
  std::vector<double> s = {4, 3, 2, 1};
  // Anomalies on top: AUC 1, pAUC 1.
  EXPECT_NEAR(roc_auc(s, labels({1, 1, 0, 0})), 1.0, 1e-12);
  EXPECT_NEAR(partial_roc_auc(s, labels({1, 1, 0, 0})), 1.0, 1e-12);
  // Anomalies at the bottom: AUC 0; pAUC area 0 -> 0.5 * (1 - 0.005 / 0.095) = 0.4736842.
  EXPECT_NEAR(roc_auc(s, labels({0, 0, 1, 1})), 0.0, 1e-12);
  EXPECT_NEAR(partial_roc_auc(s, labels({0, 0, 1, 1})), 0.5 * (1 - 0.005 / 0.095), 1e-12);
  // All scores equal: the ROC is the diagonal; AUC 0.5, partial area 0.005 -> pAUC 0.5.
  std::vector<double> same = {1, 1, 1, 1};
  EXPECT_NEAR(roc_auc(same, labels({1, 0, 1, 0})), 0.5, 1e-12);
  EXPECT_NEAR(partial_roc_auc(same, labels({1, 0, 1, 0})), 0.5, 1e-12);
}

TEST(DetectMetrics, OneClassGivesNaN) {
  std::vector<double> s = {1, 2};
  EXPECT_TRUE(std::isnan(roc_auc(s, labels({0, 0}))));
  EXPECT_TRUE(std::isnan(partial_roc_auc(s, labels({1, 1}))));
  EXPECT_FALSE(threshold_closest_to_corner(s, labels({0, 0})).has_value());
}

// scikit-learn's roc_curve documentation example: y = [1, 1, 2, 2] (2 positive),
// scores = [0.1, 0.4, 0.35, 0.8] -> fpr [0, 0, .5, .5, 1], tpr [0, .5, .5, 1, 1],
// thresholds [inf, .8, .4, .35, .1]; roc_auc_score = 0.75.
TEST(DetectMetrics, RocCurveMatchesScikitLearnExample) {
  std::vector<double> s = {0.1, 0.4, 0.35, 0.8};
  auto y = labels({0, 0, 1, 1});
  auto roc = roc_curve(s, y, true);
  ASSERT_EQ(roc.size(), 5u);
  const double fpr[] = {0, 0, .5, .5, 1}, tpr[] = {0, .5, .5, 1, 1}, thr[] = {INFINITY, .8, .4, .35, .1};
  for (size_t i = 0; i < 5; ++i) {
    EXPECT_DOUBLE_EQ(roc[i].fpr, fpr[i]);
    EXPECT_DOUBLE_EQ(roc[i].tpr, tpr[i]);
    EXPECT_DOUBLE_EQ(roc[i].threshold, thr[i]);
  }
  EXPECT_NEAR(roc_auc(s, y), 0.75, 1e-12);
}

// P(1, x) = 1 - exp(-x); P(1/2, x) = erf(sqrt(x)).
TEST(DetectMetrics, IncompleteGammaClosedForms) {
  for (double x : {0.01, 0.5, 1.0, 2.0, 7.5, 30.0}) {
    EXPECT_NEAR(gamma_p(1, x), 1 - std::exp(-x), 1e-13);
    EXPECT_NEAR(gamma_p(0.5, x), std::erf(std::sqrt(x)), 1e-13);
  }
  EXPECT_EQ(gamma_p(2, 0), 0.0);
}

// Chi-square 0.90 quantiles (standard tables): chi2(df) = 2 * P^-1(df/2, 0.9).
TEST(DetectMetrics, IncompleteGammaInverseMatchesChiSquareTable) {
  EXPECT_NEAR(gamma_p_inverse(1, 0.9), std::log(10.0), 1e-12);  // exponential: -ln(0.1)
  EXPECT_NEAR(2 * gamma_p_inverse(0.5, 0.9), 2.705543, 1e-6);
  EXPECT_NEAR(2 * gamma_p_inverse(1.0, 0.9), 4.605170, 1e-6);
  EXPECT_NEAR(2 * gamma_p_inverse(2.0, 0.9), 7.779440, 1e-6);
  EXPECT_NEAR(2 * gamma_p_inverse(5.0, 0.9), 15.987179, 1e-6);
  EXPECT_NEAR(2 * gamma_p_inverse(15.0, 0.9), 40.256024, 1e-6);
  // Round trip far in the tails.
  for (double a : {0.05, 0.7, 3.0, 250.0})
    for (double p : {1e-8, 0.1, 0.5, 0.9, 0.999999})
      EXPECT_NEAR(gamma_p(a, gamma_p_inverse(a, p)), p, 1e-13 + 1e-10 * p);
}

// Two points {1-d, 1+d}: mean 1, so the MLE equation is ln a - digamma(a) = -ln(1-d^2)/2.
// digamma(1) = -gamma_E  => choose -ln(1-d^2)/2 = gamma_E  for a = 1 (scale = mean/a = 1);
// digamma(1/2) = -gamma_E - 2 ln 2 => ln(1/2) - digamma(1/2) = gamma_E + ln 2 for a = 1/2 (scale 2).
TEST(DetectMetrics, GammaMaximumLikelihoodFit) {
  const double euler = 0.57721566490153286;
  for (auto [target_a, s] : {std::pair{1.0, euler}, std::pair{0.5, euler + std::log(2.0)}}) {
    double d = std::sqrt(1 - std::exp(-2 * s));
    auto fit = fit_gamma_mle({1 - d, 1 + d});
    ASSERT_TRUE(fit.has_value());
    EXPECT_NEAR(fit->shape, target_a, 1e-9);
    EXPECT_NEAR(fit->scale, 1 / target_a, 1e-9);
  }
  // a = 1, scale = 1: the 0.9 quantile is ln 10; scaling the data scales the threshold.
  double d = std::sqrt(1 - std::exp(-2 * euler));
  EXPECT_NEAR(gamma_threshold({1 - d, 1 + d}, 0.9).value(), std::log(10.0), 1e-9);
  EXPECT_NEAR(gamma_threshold({3 * (1 - d), 3 * (1 + d)}, 0.9).value(), 3 * std::log(10.0), 1e-8);
  EXPECT_FALSE(fit_gamma_mle({2, 2, 2}).has_value());
  EXPECT_FALSE(fit_gamma_mle({1}).has_value());
  EXPECT_FALSE(fit_gamma_mle({1, -1}).has_value());
}
