#include "ae/network.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/parallel.hpp"

namespace asdcap::ae {

std::vector<int> baseline_widths(int input_dim) {
  return {input_dim, 128, 128, 128, 128, 8, 128, 128, 128, 128, input_dim};
}

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
  parallel_chunks(
      threads, static_cast<int64_t>(params.size()), 16384,
      [&](int64_t i0, int64_t i1) {
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
      },
      Schedule::kStatic);
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
  for (auto& d : d_) d.resize(static_cast<size_t>(capacity * widest));
  const size_t parts = static_cast<size_t>(row_chunks(capacity) * widest);
  part_a_.resize(parts);
  part_b_.resize(parts);
  part_loss_.resize(static_cast<size_t>(row_chunks(capacity)));
  adam_.lr = learning_rate;
}

template <class T>
void Trainer<T>::forward(const T* x, int64_t rows) {
  blas_single_threaded();
  std::vector<T> mean, inv;
  for (int l = 0; l < net_.layers(); ++l) {
    const size_t u = static_cast<size_t>(l);
    const int din = net_.widths[u], dout = net_.widths[u + 1];
    if (l > 0) {  // the previous layer's BatchNorm statistics, combined after its pass
      mean.assign(stats_[u - 1].mean.begin(), stats_[u - 1].mean.end());
      inv.assign(stats_[u - 1].inv.begin(), stats_[u - 1].inv.end());
    }
    parallel_chunks(
        threads_, rows, kRowChunk,
        [&](int64_t r0, int64_t r1) {
          const T* in = x;
          if (l > 0) {
            bn_normalize_rows(z_[u - 1].data(), r0, r1, din, mean.data(), inv.data(), net_.gamma(l - 1),
                              net_.beta(l - 1), true, y_[u - 1].data());
            in = y_[u - 1].data();
          }
          dense_rows(in, r0, r1, din, net_.kernel(l), net_.bias(l), dout, z_[u].data());
          if (net_.has_bn(l)) {
            const int64_t c = r0 / kRowChunk;
            bn_moments_rows(z_[u].data(), r0, r1, dout, part_a_.data() + c * dout, part_b_.data() + c * dout);
          }
        },
        Schedule::kStatic);
    if (net_.has_bn(l)) bn_combine(part_a_, part_b_, rows, dout, kBnEpsilon, stats_[u]);
  }
}

// The backward pass, one parallel pass per layer l (from the last): per row chunk, the gradient at
// the Dense output (the loss gradient for the last layer, BatchNorm + ReLU backward otherwise, from
// sums combined after the previous pass), the gradient at the layer input, and the BatchNorm sums of
// the layer below; in the same pass, the weight gradient of layer l + 1, whose output gradient is
// complete by then. The gradients at layer outputs rotate through three buffers so that the weight
// jobs read one while the row jobs write the other two.
template <class T>
double Trainer<T>::gradients(const T* x, int64_t rows) {
  forward(x, rows);
  const int L = net_.layers();
  const int64_t chunks = row_chunks(rows);
  const double total = static_cast<double>(rows) * net_.widths.back();
  T* g = grads_.data();
  std::vector<T> scale, mean_g, mean_gx;
  int k = 0, pending = -1, pending_buf = -1;
  double loss = 0;
  auto weight_jobs = [&](int p) {
    return p < 0 ? int64_t{0} : (net_.widths[static_cast<size_t>(p)] + kWeightRowChunk - 1) / kWeightRowChunk;
  };
  auto weight_job = [&](int p, int buf, int64_t job) {
    const size_t u = static_cast<size_t>(p);
    const int din = net_.widths[u], dout = net_.widths[u + 1];
    const int64_t i0 = job * kWeightRowChunk, i1 = std::min<int64_t>(din, i0 + kWeightRowChunk);
    dense_weight_grad_rows(p == 0 ? x : y_[u - 1].data(), d_[buf].data(), rows, din, dout, i0, i1,
                           g + net_.kernel_at[u]);
  };
  for (int l = L - 1; l >= 0; --l) {
    const size_t u = static_cast<size_t>(l);
    const int din = net_.widths[u], dout = net_.widths[u + 1];
    if (net_.has_bn(l)) {  // sums of this layer's BatchNorm backward, from the previous pass
      scale.resize(static_cast<size_t>(dout));
      mean_g.resize(static_cast<size_t>(dout));
      mean_gx.resize(static_cast<size_t>(dout));
      for (int j = 0; j < dout; ++j) {
        double a = 0, b = 0;
        for (int64_t c = 0; c < chunks; ++c)
          a += part_a_[static_cast<size_t>(c * dout + j)], b += part_b_[static_cast<size_t>(c * dout + j)];
        g[net_.beta_at[u] + j] = static_cast<T>(a);
        g[net_.gamma_at[u] + j] = static_cast<T>(b);
        scale[static_cast<size_t>(j)] =
            static_cast<T>(static_cast<double>(net_.gamma(l)[j]) * stats_[u].inv[static_cast<size_t>(j)]);
        mean_g[static_cast<size_t>(j)] = static_cast<T>(a / static_cast<double>(rows));
        mean_gx[static_cast<size_t>(j)] = static_cast<T>(b / static_cast<double>(rows));
      }
      // The bias of a Dense layer followed by BatchNorm in training mode does not change the loss
      // (the batch mean removes it): its gradient is exactly zero.
      std::fill(g + net_.bias_at[u], g + net_.bias_at[u] + dout, T(0));
    }
    if (l > 0) {  // this pass sums the BatchNorm backward of layer l - 1
      std::fill(part_a_.begin(), part_a_.begin() + chunks * din, 0.0);
      std::fill(part_b_.begin(), part_b_.begin() + chunks * din, 0.0);
    }
    const int below = (k + 1) % 3;
    const int64_t row_jobs = chunks, wjobs = weight_jobs(pending);
    parallel_chunks(threads_, row_jobs + wjobs, 1, [&](int64_t job, int64_t) {
      if (job >= row_jobs) {
        weight_job(pending, pending_buf, job - row_jobs);
        return;
      }
      const int64_t r0 = job * kRowChunk, r1 = std::min(rows, r0 + kRowChunk);
      T* d = d_[static_cast<size_t>(k)].data();
      if (l == L - 1)
        part_loss_[static_cast<size_t>(job)] = mse_rows(z_[u].data(), x, r0, r1, dout, total, d);
      else
        bn_grad_rows(z_[u].data(), y_[u].data(), d, r0, r1, dout, true, scale.data(), mean_g.data(), mean_gx.data(), d);
      if (l > 0) {
        T* dx = d_[static_cast<size_t>(below)].data();
        dense_input_grad_rows(d, r0, r1, din, net_.kernel(l), dout, dx);
        bn_grad_sums_rows(z_[u - 1].data(), y_[u - 1].data(), dx, r0, r1, din, true, part_a_.data() + job * din,
                          part_b_.data() + job * din);
      }
    });
    if (l == L - 1) {
      for (int64_t c = 0; c < chunks; ++c) loss += part_loss_[static_cast<size_t>(c)];
      loss /= total;
      // The output layer's bias gradient: column sums of its output gradient, chunk by chunk in order.
      const T* d = d_[static_cast<size_t>(k)].data();
      for (int j = 0; j < dout; ++j) g[net_.bias_at[u] + j] = T(0);
      std::vector<double> sum(static_cast<size_t>(dout), 0.0), part(static_cast<size_t>(dout));
      for (int64_t c = 0; c < chunks; ++c) {
        std::fill(part.begin(), part.end(), 0.0);
        for (int64_t r = c * kRowChunk; r < std::min(rows, (c + 1) * kRowChunk); ++r)
          for (int j = 0; j < dout; ++j) part[static_cast<size_t>(j)] += static_cast<double>(d[r * dout + j]);
        for (int j = 0; j < dout; ++j) sum[static_cast<size_t>(j)] += part[static_cast<size_t>(j)];
      }
      for (int j = 0; j < dout; ++j) g[net_.bias_at[u] + j] = static_cast<T>(sum[static_cast<size_t>(j)]);
    }
    pending = l;
    pending_buf = k;
    k = below;
  }
  parallel_chunks(threads_, weight_jobs(pending), 1,
                  [&](int64_t job, int64_t) { weight_job(pending, pending_buf, job); });
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
      for (int j = 0; j < code_dim; ++j)
        (*code)[static_cast<size_t>(j)] += partial[static_cast<size_t>(c * code_dim + j)];
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
