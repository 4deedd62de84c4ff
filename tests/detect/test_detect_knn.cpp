#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "asdcap/error.hpp"
#include "asdcap/knn.hpp"

using namespace asdcap;

// 1-D: refs {0, 1, 3, 7}, query 2. Distances 2, 1, 1, 5: the tie 1 = 1 goes to the lower index.
TEST(DetectKnn, HandWorkedNeighboursAndTies) {
  std::vector<float> refs = {0, 1, 3, 7}, q = {2};
  auto r = knn_search(q.data(), 1, refs.data(), 4, 1, 2);
  ASSERT_EQ(r.k, 2);
  EXPECT_EQ(r.index[0], 1);
  EXPECT_EQ(r.index[1], 2);
  EXPECT_DOUBLE_EQ(r.mean_distance[0], 1.0);
  auto r3 = knn_search(q.data(), 1, refs.data(), 4, 1, 3);
  EXPECT_DOUBLE_EQ(r3.mean_distance[0], 4.0 / 3.0);  // (1 + 1 + 2) / 3
  // k larger than the references: all of them.
  auto r9 = knn_search(q.data(), 1, refs.data(), 4, 1, 9);
  EXPECT_EQ(r9.k, 4);
  EXPECT_DOUBLE_EQ(r9.mean_distance[0], 9.0 / 4.0);  // (1 + 1 + 2 + 5) / 4
}

// Leave-one-out on {0, 1, 3, 7}, k = 1: 0 -> 1 (1), 1 -> 0 (1), 3 -> 1 (2), 7 -> 3 (4).
TEST(DetectKnn, LeaveOneOutExcludesItself) {
  std::vector<float> refs = {0, 1, 3, 7};
  auto r = knn_search(refs.data(), 4, refs.data(), 4, 1, 1, true);
  const int64_t idx[] = {1, 0, 1, 2};
  const double dist[] = {1, 1, 2, 4};
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(r.index[i], idx[i]);
    EXPECT_DOUBLE_EQ(r.distance[i], dist[i]);
  }
  auto one = knn_search(refs.data(), 1, refs.data(), 1, 1, 4, true);
  EXPECT_EQ(one.k, 0);
  EXPECT_TRUE(std::isnan(one.mean_distance[0]));
}

// Against a plain double-precision exhaustive search, including data far from the origin with
// tiny differences (where ||a||^2 + ||b||^2 - 2ab in float alone would be useless).
TEST(DetectKnn, ExactAgainstBruteForce) {
  std::mt19937 gen(7);
  for (double offset : {0.0, 1000.0}) {
    const int64_t nq = 37, nr = 301, dim = 19;
    const int k = 5;
    std::normal_distribution<float> nd(0, offset > 0 ? 0.01f : 1.0f);
    std::vector<float> q(nq * dim), r(nr * dim);
    for (auto& v : q) v = static_cast<float>(offset) + nd(gen);
    for (auto& v : r) v = static_cast<float>(offset) + nd(gen);
    auto res = knn_search(q.data(), nq, r.data(), nr, dim, k);
    for (int64_t i = 0; i < nq; ++i) {
      std::vector<std::pair<double, int64_t>> all;
      for (int64_t j = 0; j < nr; ++j) {
        double s = 0;
        for (int64_t d = 0; d < dim; ++d) {
          double t = static_cast<double>(q[i * dim + d]) - r[j * dim + d];
          s += t * t;
        }
        all.emplace_back(std::sqrt(s), j);
      }
      std::sort(all.begin(), all.end());
      double mean = 0;
      for (int t = 0; t < k; ++t) {
        EXPECT_EQ(res.index[i * k + t], all[t].second) << "offset " << offset << " query " << i;
        EXPECT_NEAR(res.distance[i * k + t], all[t].first, 1e-12 * (1 + all[t].first));
        mean += all[t].first / k;
      }
      EXPECT_NEAR(res.mean_distance[i], mean, 1e-12 * (1 + mean));
    }
  }
}

// Minkowski order 4 in 2-D, worked by hand: refs (0,0), (2,0), (1,1), (3,3); query (1,0).
// d4 = (1 + 0)^(1/4) = 1, (1 + 0)^(1/4) = 1, (0 + 1)^(1/4) = 1, (16 + 81)^(1/4) = 97^(1/4).
// In Euclidean distance the same: 1, 1, 1, sqrt(13). Order 1 (city block): 1, 1, 1, 5.
TEST(DetectKnn, MinkowskiOrdersByHand) {
  std::vector<float> refs = {0, 0, 2, 0, 1, 1, 3, 3}, q = {1, 0};
  auto four = knn_search(q.data(), 1, refs.data(), 4, 2, 4, false, 4);
  ASSERT_EQ(four.k, 4);
  EXPECT_EQ(four.index, (std::vector<int64_t>{0, 1, 2, 3}));
  EXPECT_DOUBLE_EQ(four.distance[3], std::pow(97.0, 0.25));
  EXPECT_DOUBLE_EQ(four.mean_distance[0], (3.0 + std::pow(97.0, 0.25)) / 4);
  EXPECT_DOUBLE_EQ(knn_search(q.data(), 1, refs.data(), 4, 2, 4, false, 1).distance[3], 5.0);
  // One large deviation outweighs several small ones more in order 4 than in order 2:
  // (2, 0, 0, 0) is nearer than (1.2, 1.2, 1.2, 1.2) to the origin in Euclidean distance (2 < 2.4)
  // and farther in order 4 (2 > 1.2 x 4^(1/4) = 1.697).
  std::vector<float> pair = {2, 0, 0, 0, 1.2f, 1.2f, 1.2f, 1.2f}, origin = {0, 0, 0, 0};
  EXPECT_EQ(knn_search(origin.data(), 1, pair.data(), 2, 4, 1, false, 2).index[0], 0);
  EXPECT_EQ(knn_search(origin.data(), 1, pair.data(), 2, 4, 1, false, 4).index[0], 1);
  // Leave-one-out and the order's range.
  auto loo = knn_search(refs.data(), 4, refs.data(), 4, 2, 1, true, 4);
  // (1,1) is 2^(1/4) from both (0,0) and (2,0): the tie goes to the lower index.
  EXPECT_EQ(loo.index, (std::vector<int64_t>{2, 2, 0, 2}));
  EXPECT_THROW(knn_search(q.data(), 1, refs.data(), 4, 2, 1, false, 0), InvalidArgument);
  EXPECT_THROW(knn_search(q.data(), 1, refs.data(), 4, 2, 1, false, 17), InvalidArgument);
}
