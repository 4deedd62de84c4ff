// The baseline autoencoder as a stack of Dense layers, each but the last followed by BatchNorm and
// ReLU, with its training step (forward, backward, Adam) and inference. Float for training; the
// same code in double is what the finite-difference tests check.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "ae/layers.hpp"

namespace asdcap::ae {

// The baseline's widths: 640 -> 128 x 4 -> 8 -> 128 x 4 -> 640.
std::vector<int> baseline_widths(int input_dim = 640);

inline constexpr double kBnEpsilon = 1e-3;
inline constexpr double kBnMomentum = 0.99;
inline constexpr double kAdamBeta1 = 0.9;
inline constexpr double kAdamBeta2 = 0.999;
inline constexpr double kAdamEpsilon = 1e-7;

// The generator of the initial weights and of the shuffles: SplitMix64 (Steele, Lea and Flood).
// docs/ae.md gives the exact recipes so that another implementation can reproduce them.
struct SplitMix64 {
  uint64_t state;
  uint64_t next() {
    uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }  // [0, 1)
  uint64_t below(uint64_t n);                                                 // uniform in [0, n), by rejection
};

// The shuffle of epoch `epoch` (1-based) of `n` training vectors: Fisher-Yates from the last position
// down, with SplitMix64 seeded by seed ^ (epoch * 0xd1b54a32d192ed03).
std::vector<int64_t> epoch_order(uint64_t seed, int epoch, int64_t n);

template <class T>
struct Network {
  std::vector<int> widths;  // widths[0] input ... widths[L] output
  int layers() const { return static_cast<int>(widths.size()) - 1; }
  bool has_bn(int l) const { return l + 1 < layers(); }

  // Trainable parameters in one array (Adam updates it in one pass): per layer kernel [in x out],
  // bias [out], then for BatchNorm layers gamma [out], beta [out].
  std::vector<T> params;
  std::vector<int64_t> kernel_at, bias_at, gamma_at, beta_at;  // offsets (-1: none)
  // BatchNorm moving statistics, per BatchNorm layer at stat_at[l].
  std::vector<T> moving_mean, moving_var;
  std::vector<int64_t> stat_at;

  explicit Network(std::vector<int> w = baseline_widths());
  int64_t size() const { return static_cast<int64_t>(params.size()); }
  T* kernel(int l) { return params.data() + kernel_at[static_cast<size_t>(l)]; }
  const T* kernel(int l) const { return params.data() + kernel_at[static_cast<size_t>(l)]; }
  T* bias(int l) { return params.data() + bias_at[static_cast<size_t>(l)]; }
  const T* bias(int l) const { return params.data() + bias_at[static_cast<size_t>(l)]; }
  T* gamma(int l) { return params.data() + gamma_at[static_cast<size_t>(l)]; }
  const T* gamma(int l) const { return params.data() + gamma_at[static_cast<size_t>(l)]; }
  T* beta(int l) { return params.data() + beta_at[static_cast<size_t>(l)]; }
  const T* beta(int l) const { return params.data() + beta_at[static_cast<size_t>(l)]; }

  // Keras defaults: Glorot-uniform kernels (limit sqrt(6 / (in + out))), drawn layer by layer in
  // row-major order from one SplitMix64(seed) as limit (2u - 1); zero biases and betas, unit gammas,
  // moving mean 0 and variance 1.
  void init_glorot(uint64_t seed);
};

// Keras 2.1.6's BatchNormalization moving averages on TensorFlow: zero-debiased exponential averages
// (tf assign_moving_average with zero_debias=True) of the batch mean and of the batch variance times
// n / (n - 1 - eps).
template <class T>
struct MovingStats {
  std::vector<double> biased_mean, biased_var;
  int64_t steps = 0;
  // One training step: the statistics of every BatchNorm layer (indexed by layer) of a batch of `rows`.
  void update(Network<T>& net, const std::vector<BnStats>& batch, int64_t rows);
};

// Adam as Keras 2.1.6 steps it: t = iterations + 1; lr_t = lr sqrt(1 - b2^t) / (1 - b1^t);
// m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2; p -= lr_t m / (sqrt(v) + eps).
template <class T>
struct Adam {
  double lr = 1e-3;
  std::vector<T> m, v;
  int64_t iterations = 0;
  void step(int threads, std::vector<T>& params, const std::vector<T>& grads);
};

// Buffers and steps for batches of up to `capacity` rows.
template <class T>
class Trainer {
 public:
  Trainer(Network<T>& net, int64_t capacity, double learning_rate, int threads);

  // One training step on x (rows x input): forward in training mode, loss, backward, Adam, moving
  // statistics. Returns the batch loss (before the update).
  double step(const T* x, int64_t rows);
  // Forward and backward only: the loss, with the gradient of every parameter in grads().
  double gradients(const T* x, int64_t rows);
  const std::vector<T>& grads() const { return grads_; }
  // The output of the last forward pass (rows x output).
  const T* output() const { return z_.back().data(); }

  Network<T>& net() { return net_; }
  Adam<T>& adam() { return adam_; }
  MovingStats<T>& moving() { return moving_; }

 private:
  // One parallel pass per layer: normalise the previous layer's rows, this layer's GEMM on them, and
  // the per-chunk moments of its output.
  void forward(const T* x, int64_t rows);
  Network<T>& net_;
  int64_t capacity_;
  int threads_;
  std::vector<std::vector<T>> z_;  // per layer: the Dense output; overwritten by xhat for BatchNorm layers
  std::vector<std::vector<T>> y_;  // per BatchNorm layer: its ReLU output (the next layer's input)
  std::vector<BnStats> stats_;
  std::vector<T> grads_;
  std::vector<T> d_[3];                  // gradients at layer outputs, rotating (see gradients())
  std::vector<double> part_a_, part_b_;  // per-chunk partial results (moments, backward sums)
  std::vector<double> part_loss_;
  Adam<T> adam_;
  MovingStats<T> moving_;
};

// Inference on rows (in fixed chunks of kRowChunk rows from the first, in parallel): per-row mean
// squared errors (when errors is not null) and the mean over the rows of the output of BatchNorm
// layer `code_layer`'s ReLU (when code is not null; `code_layer` < 0: none).
template <class T>
void infer(const Network<T>& net, const T* x, int64_t rows, int threads, double* errors, int code_layer,
           std::vector<double>* code);

}  // namespace asdcap::ae
