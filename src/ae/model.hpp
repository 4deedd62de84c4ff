// Internals of AeModel shared with the tests: the training loop with a given batch order.
#pragma once
#include <functional>
#include <vector>

#include "ae/network.hpp"
#include "asdcap/ae.hpp"

namespace asdcap {

struct AeModel::Impl {
  ae::Network<float> net;
  AeModelInfo info;
};

struct AeModelInternals {
  static const ae::Network<float>& network(const AeModel& m) { return m.impl_->net; }
};

namespace ae {

// The training vectors' order in epoch `epoch` (1-based): a permutation of [0, n).
using OrderFn = std::function<std::vector<int64_t>(int epoch, int64_t n)>;

// Keras's fit loop: the first int(rows (1 - validation_split)) vectors are trained on, in batches of
// options.batch_size taken in order(epoch) (the last batch of an epoch may be smaller); the rest give
// the validation loss after each epoch. `net` must already be initialised. Returns one report per epoch.
// (AeModel trains in float; the double instantiation is the cross-check's exact-arithmetic twin.)
template <class T>
std::vector<AeEpochReport> train_network(Network<T>& net, const T* data, int64_t rows, const AeTrainOptions& options,
                                         const OrderFn& order);

// Rows split by Keras's validation_split: int(rows * (1 - split)) training rows.
int64_t training_rows(int64_t rows, double validation_split);

}  // namespace ae
}  // namespace asdcap
