// The autoencoder's layers, optimiser and BatchNorm bookkeeping: gradients against central finite
// differences (double precision), Adam against hand-worked numbers, BatchNorm's training and
// inference modes and Keras's moving-average convention.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>

#include "ae/layers.hpp"
#include "ae/network.hpp"

namespace asdcap::ae {
namespace {

std::vector<double> random_vector(size_t n, uint64_t seed, double scale = 1.0) {
  SplitMix64 rng{seed};
  std::vector<double> v(n);
  for (auto& x : v) x = scale * (2.0 * rng.uniform() - 1.0);
  return v;
}

// Central differences of f with respect to every element of p, against the analytic `grad`.
// Relative to the largest gradient: the checks in double reach ~1e-9; 1e-6 leaves room.
void expect_gradient(std::vector<double>& p, const std::vector<double>& grad, const std::function<double()>& f,
                     const std::string& what, double h = 1e-5) {
  ASSERT_EQ(p.size(), grad.size()) << what;
  double scale = 1e-12;
  for (double g : grad) scale = std::max(scale, std::fabs(g));
  for (size_t i = 0; i < p.size(); ++i) {
    const double keep = p[i];
    p[i] = keep + h;
    const double up = f();
    p[i] = keep - h;
    const double down = f();
    p[i] = keep;
    const double numeric = (up - down) / (2 * h);
    ASSERT_NEAR(grad[i], numeric, 1e-6 * scale) << what << " element " << i;
  }
}

constexpr int kRows = 9, kIn = 7, kOut = 5;

TEST(AeGradients, Dense) {
  std::vector<double> x = random_vector(kRows * kIn, 1), w = random_vector(kIn * kOut, 2), b = random_vector(kOut, 3);
  const std::vector<double> c = random_vector(kRows * kOut, 4);  // loss = sum c * z
  auto loss = [&] {
    std::vector<double> z(kRows * kOut);
    dense_forward(1, x.data(), kRows, kIn, w.data(), b.data(), kOut, z.data());
    double s = 0;
    for (size_t i = 0; i < z.size(); ++i) s += c[i] * z[i];
    return s;
  };
  std::vector<double> dw(w.size()), db(b.size()), dx(x.size());
  dense_backward(2, x.data(), c.data(), kRows, kIn, w.data(), kOut, dw.data(), db.data(), dx.data());
  expect_gradient(w, dw, loss, "Dense kernel");
  expect_gradient(b, db, loss, "Dense bias");
  expect_gradient(x, dx, loss, "Dense input");
}

void check_batchnorm(bool relu) {
  const std::string name = relu ? "BatchNorm+ReLU" : "BatchNorm";
  std::vector<double> z = random_vector(kRows * kOut, 5, 2.0), gamma = random_vector(kOut, 6),
                      beta = random_vector(kOut, 7);
  for (auto& g : gamma) g += 1.5;
  const std::vector<double> c = random_vector(kRows * kOut, 8);
  auto forward = [&](std::vector<double>& xhat, std::vector<double>& y, BnStats& stats) {
    xhat = z;
    y.assign(z.size(), 0.0);
    bn_train_forward(1, xhat.data(), kRows, kOut, gamma.data(), beta.data(), kBnEpsilon, relu, y.data(), stats);
  };
  auto loss = [&] {
    std::vector<double> xhat, y;
    BnStats s;
    forward(xhat, y, s);
    double sum = 0;
    for (size_t i = 0; i < y.size(); ++i) sum += c[i] * y[i];
    return sum;
  };
  std::vector<double> xhat, y;
  BnStats stats;
  forward(xhat, y, stats);
  if (relu) {
    int zeros = 0;
    for (double v : y) zeros += v == 0.0;
    ASSERT_GT(zeros, 0) << "the ReLU should cut some values for this check to cover it";
  }
  std::vector<double> dgamma(kOut), dbeta(kOut), dz(z.size());
  bn_train_backward(2, xhat.data(), y.data(), c.data(), kRows, kOut, gamma.data(), stats, relu, dgamma.data(),
                    dbeta.data(), dz.data());
  expect_gradient(z, dz, loss, name + " input");
  expect_gradient(gamma, dgamma, loss, name + " gamma");
  expect_gradient(beta, dbeta, loss, name + " beta");
}

TEST(AeGradients, BatchNormTrainingMode) { check_batchnorm(false); }
TEST(AeGradients, BatchNormTrainingModeWithRelu) { check_batchnorm(true); }

TEST(AeGradients, MeanSquaredError) {
  std::vector<double> out = random_vector(kRows * kOut, 9), target = random_vector(kRows * kOut, 10);
  std::vector<double> grad(out.size());
  const double l = mse_loss(2, out.data(), target.data(), kRows, kOut, grad.data());
  double manual = 0;
  for (size_t i = 0; i < out.size(); ++i) manual += (out[i] - target[i]) * (out[i] - target[i]);
  EXPECT_NEAR(l, manual / (kRows * kOut), 1e-15);
  expect_gradient(
      out, grad, [&] { return mse_loss(1, out.data(), target.data(), kRows, kOut, (double*)nullptr); }, "MSE");
}

// Every parameter of a small network of the baseline's structure (Dense + BatchNorm + ReLU blocks,
// a linear output), with the loss of the autoencoder (the input is the target).
TEST(AeGradients, WholeNetwork) {
  Network<double> net({6, 5, 4, 3, 4, 5, 6});
  net.init_glorot(11);
  // Non-trivial BatchNorm parameters and biases.
  SplitMix64 rng{12};
  for (auto& p : net.params) p += 0.2 * (2 * rng.uniform() - 1);
  const int rows = 11;
  const std::vector<double> x = random_vector(rows * 6, 13, 1.5);
  Trainer<double> trainer(net, rows, 1e-3, 2);
  trainer.gradients(x.data(), rows);
  const std::vector<double> analytic = trainer.grads();
  Trainer<double> probe(net, rows, 1e-3, 1);
  expect_gradient(
      net.params, analytic, [&] { return probe.gradients(x.data(), rows); }, "network parameter");
  // The bias of a Dense layer followed by BatchNorm has no effect in training mode (its gradient is
  // exactly zero by construction; the finite differences above confirm it is zero).
  for (int l = 0; l + 1 < net.layers(); ++l)
    for (int j = 0; j < net.widths[static_cast<size_t>(l) + 1]; ++j)
      EXPECT_EQ(analytic[static_cast<size_t>(net.bias_at[static_cast<size_t>(l)] + j)], 0.0);
}

// The same network in float: its gradients agree with the double ones to float precision.
TEST(AeGradients, FloatMatchesDouble) {
  const std::vector<int> widths{6, 5, 4, 3, 4, 5, 6};
  Network<double> nd(widths);
  nd.init_glorot(21);
  Network<float> nf(widths);
  nf.init_glorot(21);
  const int rows = 300;  // three row chunks: the chunked reductions are exercised
  const std::vector<double> x = random_vector(rows * 6, 22, 1.5);
  const std::vector<float> xf(x.begin(), x.end());
  std::vector<double> xr(xf.begin(), xf.end());
  Trainer<double> td(nd, rows, 1e-3, 2);
  Trainer<float> tf(nf, rows, 1e-3, 2);
  for (size_t i = 0; i < nd.params.size(); ++i) nd.params[i] = nf.params[i];
  const double ld = td.gradients(xr.data(), rows), lf = tf.gradients(xf.data(), rows);
  EXPECT_NEAR(lf, ld, 1e-6 * ld);
  double scale = 0;
  for (double g : td.grads()) scale = std::max(scale, std::fabs(g));
  for (size_t i = 0; i < nd.params.size(); ++i) EXPECT_NEAR(tf.grads()[i], td.grads()[i], 1e-5 * scale) << i;
}

// Adam, Keras 2.1.6: lr_t = lr sqrt(1 - b2^t) / (1 - b1^t); p -= lr_t m / (sqrt(v) + eps), with eps
// added to sqrt(v) and not to the bias-corrected sqrt(v_hat) as in PyTorch. Expected values worked
// by hand with 40-digit decimals:
//   t = 1, g = (0.5, -0.1, 1e-9): lr_t = 3.162277660168379e-4, m = 0.1 g, v = 0.001 g^2
//     p = 1 - lr_t 0.05 / (0.0158113883008419 + 1e-7)          = 0.99900000632451532
//     p = -2 + lr_t 0.01 / (0.00316227766016838 + 1e-7)         = -1.99900003162177663
//     p = 3 - lr_t 1e-10 / (3.16227766e-11 + 1e-7)              = 2.99999968387220237
//   t = 2, g = (0.5, 0.3, 1e-9): lr_t = 2.353167253274543e-4
//     p = 0.99800001079774972, -1.99949421651297770, 2.99999923697023491
// (PyTorch's Adam would move the third parameter by 9.9e-6 in the first step instead of 3.2e-7.)
TEST(AeAdam, StepsAsKeras) {
  Adam<double> adam;
  adam.lr = 1e-3;
  std::vector<double> p{1.0, -2.0, 3.0};
  adam.step(2, p, {0.5, -0.1, 1e-9});
  EXPECT_NEAR(p[0], 0.99900000632451532, 1e-15);
  EXPECT_NEAR(p[1], -1.99900003162177663, 1e-15);
  EXPECT_NEAR(p[2], 2.99999968387220237, 1e-15);
  adam.step(2, p, {0.5, 0.3, 1e-9});
  EXPECT_NEAR(p[0], 0.99800001079774972, 1e-15);
  EXPECT_NEAR(p[1], -1.99949421651297770, 1e-15);
  EXPECT_NEAR(p[2], 2.99999923697023491, 1e-15);
  EXPECT_EQ(adam.iterations, 2);
}

TEST(AeAdam, FloatStepMatchesDouble) {
  Adam<float> a;
  Adam<double> b;
  std::vector<float> pf(40000);
  std::vector<double> pd(pf.size());
  for (size_t i = 0; i < pf.size(); ++i) pf[i] = static_cast<float>(std::sin(0.001 * i)), pd[i] = pf[i];
  for (int t = 0; t < 3; ++t) {
    std::vector<float> gf(pf.size());
    std::vector<double> gd(pf.size());
    for (size_t i = 0; i < pf.size(); ++i) gf[i] = static_cast<float>(std::cos(0.37 * i + t)), gd[i] = gf[i];
    a.step(2, pf, gf);
    b.step(1, pd, gd);
  }
  for (size_t i = 0; i < pf.size(); ++i) ASSERT_NEAR(pf[i], pd[i], 1e-6) << i;
}

// BatchNorm in training mode normalises with the batch's statistics (biased variance).
TEST(AeBatchNorm, TrainingModeUsesBatchStatistics) {
  const int rows = 260, dim = 3;  // three row chunks
  std::vector<double> z(rows * dim);
  for (int r = 0; r < rows; ++r)
    for (int j = 0; j < dim; ++j) z[r * dim + j] = 10.0 * j + std::sin(0.1 * r * (j + 1));
  std::vector<double> mean(dim, 0), var(dim, 0);
  for (int r = 0; r < rows; ++r)
    for (int j = 0; j < dim; ++j) mean[j] += z[r * dim + j] / rows;
  for (int r = 0; r < rows; ++r)
    for (int j = 0; j < dim; ++j) var[j] += (z[r * dim + j] - mean[j]) * (z[r * dim + j] - mean[j]) / rows;
  const std::vector<double> gamma{2.0, 0.5, 1.0}, beta{0.1, -1.0, 3.0};
  std::vector<double> xhat = z, y(z.size());
  BnStats s;
  bn_train_forward(2, xhat.data(), rows, dim, gamma.data(), beta.data(), kBnEpsilon, false, y.data(), s);
  for (int j = 0; j < dim; ++j) {
    EXPECT_NEAR(s.mean[j], mean[j], 1e-12);
    EXPECT_NEAR(s.var[j], var[j], 1e-12);
    for (int r = 0; r < rows; ++r)
      ASSERT_NEAR(y[r * dim + j], gamma[j] * (z[r * dim + j] - mean[j]) / std::sqrt(var[j] + 1e-3) + beta[j], 1e-12);
  }
}

// Keras 2.1.6 on TensorFlow: moving = zero-debiased average with momentum 0.99 of the batch mean and
// of the batch variance times n / (n - 1 - eps). After one step the moving mean is the batch mean
// (the initial 0 / 1 are forgotten); after two: (0.0099 s1 + 0.01 s2) / (1 - 0.99^2).
TEST(AeBatchNorm, MovingAveragesFollowKeras) {
  Network<double> net({4, 2, 4});
  std::vector<BnStats> batch(2);
  batch[0].mean = {1.0, -2.0};
  batch[0].var = {4.0, 0.25};
  MovingStats<double> ms;
  const int64_t n = 512;
  const double c = 512.0 / (512.0 - 1.001);
  ms.update(net, batch, n);
  EXPECT_DOUBLE_EQ(net.moving_mean[0], 1.0);
  EXPECT_DOUBLE_EQ(net.moving_mean[1], -2.0);
  EXPECT_DOUBLE_EQ(net.moving_var[0], 4.0 * c);
  EXPECT_DOUBLE_EQ(net.moving_var[1], 0.25 * c);
  BnStats second;
  second.mean = {3.0, 0.0};
  second.var = {1.0, 1.0};
  batch[0] = second;
  ms.update(net, batch, n);
  const double d = 1 - 0.99 * 0.99;
  EXPECT_NEAR(net.moving_mean[0], (0.0099 * 1.0 + 0.01 * 3.0) / d, 1e-14);
  EXPECT_NEAR(net.moving_mean[1], (0.0099 * -2.0 + 0.01 * 0.0) / d, 1e-14);
  EXPECT_NEAR(net.moving_var[0], (0.0099 * 4.0 * c + 0.01 * 1.0 * c) / d, 1e-14);
  EXPECT_NEAR(net.moving_var[1], (0.0099 * 0.25 * c + 0.01 * 1.0 * c) / d, 1e-14);
}

// Inference mode uses the moving statistics, not the batch's: a single row is normalised with them
// (in training mode one row would give xhat = 0 whatever its value).
TEST(AeBatchNorm, InferenceModeUsesMovingStatistics) {
  const std::vector<double> gamma{2.0, 0.5}, beta{0.1, -1.0}, mm{1.0, -3.0}, mv{4.0, 0.01};
  std::vector<double> z{2.0, -2.0};
  bn_eval_forward(z.data(), 1, 2, gamma.data(), beta.data(), mm.data(), mv.data(), kBnEpsilon, false);
  EXPECT_NEAR(z[0], 2.0 * (2.0 - 1.0) / std::sqrt(4.001) + 0.1, 1e-14);
  EXPECT_NEAR(z[1], 0.5 * (-2.0 + 3.0) / std::sqrt(0.011) - 1.0, 1e-14);
  std::vector<double> r{-5.0, 5.0};
  bn_eval_forward(r.data(), 1, 2, gamma.data(), beta.data(), mm.data(), mv.data(), kBnEpsilon, true);
  EXPECT_EQ(r[0], 0.0);
  EXPECT_GT(r[1], 0.0);

  std::vector<double> one{2.0, -2.0}, y(2);
  BnStats s;
  bn_train_forward(1, one.data(), 1, 2, gamma.data(), beta.data(), kBnEpsilon, false, y.data(), s);
  EXPECT_EQ(y[0], beta[0]);
  EXPECT_EQ(y[1], beta[1]);
}

// A training step changes the moving statistics as MovingStats says, from the forward pass's batch
// statistics; inference then depends on them and not on the batch.
TEST(AeBatchNorm, TrainingStepUpdatesMovingStatistics) {
  Network<double> net({3, 2, 3});
  net.init_glorot(5);
  const int rows = 6;
  const std::vector<double> x = random_vector(rows * 3, 6);
  std::vector<double> z(rows * 2);
  dense_forward(1, x.data(), rows, 3, net.kernel(0), net.bias(0), 2, z.data());
  Trainer<double> t(net, rows, 1e-3, 1);
  t.step(x.data(), rows);
  for (int j = 0; j < 2; ++j) {
    double mean = 0, var = 0;
    for (int r = 0; r < rows; ++r) mean += z[r * 2 + j] / rows;
    for (int r = 0; r < rows; ++r) var += (z[r * 2 + j] - mean) * (z[r * 2 + j] - mean) / rows;
    EXPECT_NEAR(net.moving_mean[j], mean, 1e-12);
    EXPECT_NEAR(net.moving_var[j], var * rows / (rows - 1.001), 1e-12);
  }
  // Row errors in inference mode are per-row: a row's error does not depend on the other rows.
  std::vector<double> all(rows), first(1);
  infer(net, x.data(), rows, 1, all.data(), -1, nullptr);
  infer(net, x.data(), 1, 1, first.data(), -1, nullptr);
  EXPECT_EQ(all[0], first[0]);
}

TEST(AeInit, GlorotUniformBoundsAndSpread) {
  Network<float> net;
  net.init_glorot(7);
  ASSERT_EQ(net.size(), 267928);  // the baseline's trainable parameter count
  for (int l = 0; l < net.layers(); ++l) {
    const int in = net.widths[static_cast<size_t>(l)], out = net.widths[static_cast<size_t>(l) + 1];
    const double limit = std::sqrt(6.0 / (in + out));
    double sq = 0;
    for (int64_t i = 0; i < int64_t{in} * out; ++i) {
      const double w = net.kernel(l)[i];
      ASSERT_LE(std::fabs(w), limit);
      sq += w * w;
    }
    // Uniform(-a, a) has variance a^2 / 3 = 2 / (in + out).
    EXPECT_NEAR(sq / (double(in) * out), 2.0 / (in + out), 0.15 * 2.0 / (in + out)) << "layer " << l;
    for (int j = 0; j < out; ++j) EXPECT_EQ(net.bias(l)[j], 0.0f);
    if (net.has_bn(l))
      for (int j = 0; j < out; ++j) {
        EXPECT_EQ(net.gamma(l)[j], 1.0f);
        EXPECT_EQ(net.beta(l)[j], 0.0f);
      }
  }
  Network<float> again;
  again.init_glorot(7);
  EXPECT_EQ(again.params, net.params);
  again.init_glorot(8);
  EXPECT_NE(again.params, net.params);
}

TEST(AeShuffle, EpochOrderIsAPermutationThatChanges) {
  const auto a = epoch_order(3, 1, 1000), b = epoch_order(3, 2, 1000), c = epoch_order(3, 1, 1000);
  EXPECT_EQ(a, c);
  EXPECT_NE(a, b);
  std::vector<int64_t> sorted = a;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < 1000; ++i) ASSERT_EQ(sorted[static_cast<size_t>(i)], i);
}

}  // namespace
}  // namespace asdcap::ae
