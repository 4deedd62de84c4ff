// Exact k-nearest-neighbour search in Euclidean distance (using matrix products for speed) or in
// another Minkowski distance.
#pragma once
#include <cstdint>
#include <vector>

namespace asdcap {

struct KnnResult {
  int k = 0;                          // neighbours per query (min(k, available references))
  std::vector<int64_t> index;         // n_query x k, nearest first (ties: lower reference index)
  std::vector<double> distance;       // n_query x k, exact distances (double)
  std::vector<double> mean_distance;  // n_query: the anomaly score (NaN when k == 0)
};

// queries: nq x dim, refs: nr x dim, row-major float. Candidates come from squared distances
// ||q||^2 + ||r||^2 - 2 q.r with cblas_sgemm in blocks; the candidates are re-checked exactly in
// double, and a query whose candidate set cannot be proven to contain the true k nearest (by a
// rounding-error bound) is searched again exhaustively in double. With leave_one_out, queries
// are the references themselves (nq == nr) and reference i is excluded for query i.
// `order` p >= 1 chooses the Minkowski distance (sum_d |q_d - r_d|^p)^(1/p): 2 is Euclidean; any
// other order is computed exactly in double for every pair (no matrix product).
KnnResult knn_search(const float* queries, int64_t nq, const float* refs, int64_t nr, int64_t dim, int k,
                     bool leave_one_out = false, int order = 2);

}  // namespace asdcap
