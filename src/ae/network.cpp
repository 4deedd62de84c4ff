#include "ae/network.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/parallel.hpp"

namespace asdcap::ae {

std::vector<int> baseline_widths(int input_dim) { return {input_dim, 128, 128, 128, 128, 8, 128, 128, 128, 128, input_dim}; }

uint64_t SplitMix64::below(uint64_t n) {
  const uint64_t limit = UINT64_MAX - UINT64_MAX % n;  // largest multiple of n (draws at or above it are redrawn)
  uint64_t x;
  do x = next();
  while (x >= limit);
  return x % n;
}

std::vector<int64_t> epoch_order(uint64_t seed, int epoch, int64_t n) {
  std::vector<int64_t> order(static_cast<size_t>(std::max<int64_t>(n, 0)));
  std::iota(order.begin(), order.end(), int64_t{0});
  SplitMix64 rng{seed ^ (static_cast<uint64_t>(epoch) * 0xd1b54a32d192ed03ULL)};
  for (int64_t i = n - 1; i > 0; --i)
    std::swap(order[static_cast<size_t>(i)], order[rng.below(static_cast<uint64_t>(i + 1))]);
  return order;
}

template <class T>
Network<T>::Network(std::vector<int> w) : widths(std::move(w)) {
  int64_t at = 0, stat = 0;
  for (int l = 0; l < layers(); ++l) {
    const int in = widths[static_cast<size_t>(l)], out = widths[static_cast<size_t>(l) + 1];
    kernel_at.push_back(at);
    at += int64_t{in} * out;
    bias_at.push_back(at);
    at += out;
    if (has_bn(l)) {
      gamma_at.push_back(at);
      beta_at.push_back(at + out);
      at += 2 * out;
      stat_at.push_back(stat);
      stat += out;
    } else {
      gamma_at.push_back(-1);
      beta_at.push_back(-1);
      stat_at.push_back(-1);
    }
  }
  params.assign(static_cast<size_t>(at), T(0));
  moving_mean.assign(static_cast<size_t>(stat), T(0));
  moving_var.assign(static_cast<size_t>(stat), T(1));
  for (int l = 0; l < layers(); ++l)
    if (has_bn(l)) std::fill(gamma(l), gamma(l) + widths[static_cast<size_t>(l) + 1], T(1));
}

template <class T>
void Network<T>::init_glorot(uint64_t seed) {
  SplitMix64 rng{seed};
  std::fill(params.begin(), params.end(), T(0));
  for (int l = 0; l < layers(); ++l) {
    const int in = widths[static_cast<size_t>(l)], out = widths[static_cast<size_t>(l) + 1];
    const double limit = std::sqrt(6.0 / (in + out));
    T* k = kernel(l);
    for (int64_t i = 0; i < int64_t{in} * out; ++i) k[i] = static_cast<T>(limit * (2.0 * rng.uniform() - 1.0));
    if (has_bn(l)) std::fill(gamma(l), gamma(l) + out, T(1));
  }
  std::fill(moving_mean.begin(), moving_mean.end(), T(0));
  std::fill(moving_var.begin(), moving_var.end(), T(1));
}

template <class T>
void MovingStats<T>::update(Network<T>& net, const std::vector<BnStats>& batch, int64_t rows) {
  if (biased_mean.empty()) {
    biased_mean.assign(net.moving_mean.size(), 0.0);
    biased_var.assign(net.moving_var.size(), 0.0);
  }
  ++steps;
  const double decay = 1.0 - kBnMomentum;
  const double debias = 1.0 - std::pow(kBnMomentum, static_cast<double>(steps));
  const double n = static_cast<double>(rows);
  const double unbiased = n / (n - (1.0 + kBnEpsilon));
  for (int l = 0; l < net.layers(); ++l) {
    if (!net.has_bn(l)) continue;
    const size_t at = static_cast<size_t>(net.stat_at[static_cast<size_t>(l)]);
    const BnStats& s = batch[static_cast<size_t>(l)];
    for (size_t j = 0; j < s.mean.size(); ++j) {
      double& bm = biased_mean[at + j];
      double& bv = biased_var[at + j];
      bm -= (bm - s.mean[j]) * decay;
      bv -= (bv - s.var[j] * unbiased) * decay;
      net.moving_mean[at + j] = static_cast<T>(bm / debias);
      net.moving_var[at + j] = static_cast<T>(bv / debias);
    }
  }
}

template <class T>
void Adam<T>::step(int threads, std::vector<T>& params, const std::vector<T>& grads) {
  if (m.empty()) {
    m.assign(params.size(), T(0));
    v.assign(params.size(), T(0));
  }
  ++iterations;
  const double t = static_cast<double>(iterations);
  const T lr_t = static_cast<T>(lr * std::sqrt(1.0 - std::pow(kAdamBeta2, t)) / (1.0 - std::pow(kAdamBeta1, t)));
  const T b1 = static_cast<T>(kAdamBeta1), c1 = static_cast<T>(1.0 - kAdamBeta1);
  const T b2 = static_cast<T>(kAdamBeta2), c2 = static_cast<T>(1.0 - kAdamBeta2);
  const T eps = static_cast<T>(kAdamEpsilon);
  parallel_chunks(threads, static_cast<int64_t>(params.size()), 16384, [&](int64_t i0, int64_t i1) {
    T* p = params.data();
    T* mm = m.data();
    T* vv = v.data();
    const T* g = grads.data();
#pragma omp simd
    for (int64_t i = i0; i < i1; ++i) {
      mm[i] = b1 * mm[i] + c1 * g[i];
      vv[i] = b2 * vv[i] + c2 * (g[i] * g[i]);
      p[i] -= lr_t * mm[i] / (std::sqrt(vv[i]) + eps);
    }
  }, Schedule::kStatic);
}

template <class T>
Trainer<T>::Trainer(Network<T>& net, int64_t capacity, double learning_rate, int threads)
    : net_(net), capacity_(capacity), threads_(threads) {
  const int L = net.layers();
  int widest = 0;
  for (int w : net.widths) widest = std::max(widest, w);
  z_.resize(static_cast<size_t>(L));
  y_.resize(static_cast<size_t>(L));
  stats_.resize(static_cast<size_t>(L));
  for (int l = 0; l < L; ++l) {
    const size_t n = static_cast<size_t>(capacity * net.widths[static_cast<size_t>(l) + 1]);
    z_[static_cast<size_t>(l)].resize(n);
    if (net.has_bn(l)) y_[static_cast<size_t>(l)].resize(n);
  }
  grads_.assign(net.params.size(), T(0));
  dbuf_a_.resize(static_cast<size_t>(capacity * widest));
  dbuf_b_.resize(static_cast<size_t>(capacity * widest));
  adam_.lr = learning_rate;
}

template <class T>
void Trainer<T>::forward(const T* x, int64_t rows) {
  const T* in = x;
  for (int l = 0; l < net_.layers(); ++l) {
    const size_t u = static_cast<size_t>(l);
    const int din = net_.widths[u], dout = net_.widths[u + 1];
    dense_forward(threads_, in, rows, din, net_.kernel(l), net_.bias(l), dout, z_[u].data());
    if (net_.has_bn(l)) {
      bn_train_forward(threads_, z_[u].data(), rows, dout, net_.gamma(l), net_.beta(l), kBnEpsilon, true, y_[u].data(),
                       stats_[u]);
      in = y_[u].data();
    }
  }
}

template <class T>
double Trainer<T>::gradients(const T* x, int64_t rows) {
  forward(x, rows);
  const int L = net_.layers();
  const double loss = mse_loss(threads_, z_.back().data(), x, rows, net_.widths.back(), dbuf_a_.data());
  T* d = dbuf_a_.data();
  T* other = dbuf_b_.data();
  for (int l = L - 1; l >= 0; --l) {
    const size_t u = static_cast<size_t>(l);
    const int din = net_.widths[u], dout = net_.widths[u + 1];
    T* g = grads_.data();
    if (net_.has_bn(l)) {
      bn_train_backward(threads_, z_[u].data(), y_[u].data(), d, rows, dout, net_.gamma(l), stats_[u], true,
                        g + net_.gamma_at[u], g + net_.beta_at[u], d);
      // The bias of a Dense layer followed by BatchNorm in training mode does not change the loss
      // (the batch mean removes it): its gradient is exactly zero.
      std::fill(g + net_.bias_at[u], g + net_.bias_at[u] + dout, T(0));
    }
    const T* in = l == 0 ? x : y_[u - 1].data();
    dense_backward(threads_, in, d, rows, din, net_.kernel(l), dout, g + net_.kernel_at[u],
                   net_.has_bn(l) ? nullptr : g + net_.bias_at[u], l > 0 ? other : nullptr);
    std::swap(d, other);
  }
  return loss;
}

template <class T>
double Trainer<T>::step(const T* x, int64_t rows) {
  const double loss = gradients(x, rows);
  adam_.step(threads_, net_.params, grads_);
  moving_.update(net_, stats_, rows);
  return loss;
}

template <class T>
void infer(const Network<T>& net, const T* x, int64_t rows, int threads, double* errors, int code_layer,
           std::vector<double>* code) {
  blas_single_threaded();
  const int L = net.layers();
  int widest = 0;
  for (int w : net.widths) widest = std::max(widest, w);
  const int code_dim = code_layer >= 0 ? net.widths[static_cast<size_t>(code_layer) + 1] : 0;
  const int64_t chunks = (rows + kRowChunk - 1) / kRowChunk;
  std::vector<double> partial(static_cast<size_t>(chunks * code_dim), 0.0);
  parallel_chunks(threads, rows, kRowChunk, [&](int64_t r0, int64_t r1) {
    const int64_t n = r1 - r0;
    std::vector<T> a(static_cast<size_t>(kRowChunk * widest)), b(static_cast<size_t>(kRowChunk * widest));
    const T* in = x + r0 * net.widths[0];
    for (int l = 0; l < L; ++l) {
      const size_t u = static_cast<size_t>(l);
      const int din = net.widths[u], dout = net.widths[u + 1];
      dense_forward(1, in, n, din, net.kernel(l), net.bias(l), dout, a.data());
      if (net.has_bn(l)) {
        const size_t at = static_cast<size_t>(net.stat_at[u]);
        bn_eval_forward(a.data(), n, dout, net.gamma(l), net.beta(l), net.moving_mean.data() + at,
                        net.moving_var.data() + at, kBnEpsilon, true);
        if (l == code_layer) {
          double* p = partial.data() + (r0 / kRowChunk) * code_dim;
          for (int64_t r = 0; r < n; ++r)
            for (int j = 0; j < dout; ++j) p[j] += static_cast<double>(a[static_cast<size_t>(r * dout + j)]);
        }
      }
      std::swap(a, b);
      in = b.data();
    }
    if (errors) row_errors(b.data(), x + r0 * net.widths[0], n, net.widths.back(), errors + r0);
  });
  if (code) {
    code->assign(static_cast<size_t>(code_dim), 0.0);
    for (int64_t c = 0; c < chunks; ++c)
      for (int j = 0; j < code_dim; ++j) (*code)[static_cast<size_t>(j)] += partial[static_cast<size_t>(c * code_dim + j)];
    for (auto& v : *code) v /= static_cast<double>(std::max<int64_t>(rows, 1));
  }
}

template struct Network<float>;
template struct Network<double>;
template struct MovingStats<float>;
template struct MovingStats<double>;
template struct Adam<float>;
template struct Adam<double>;
template class Trainer<float>;
template class Trainer<double>;
template void infer<float>(const Network<float>&, const float*, int64_t, int, double*, int, std::vector<double>*);
template void infer<double>(const Network<double>&, const double*, int64_t, int, double*, int, std::vector<double>*);

}  // namespace asdcap::ae
