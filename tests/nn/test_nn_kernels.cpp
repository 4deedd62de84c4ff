// The inference core against plain double-precision references written out in the test.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "asdcap/error.hpp"
#include "asdcap/nn.hpp"
#include "core/panels.hpp"
#include "core/parallel.hpp"
#include "nn/packed_int8.hpp"

namespace nn = asdcap::nn;

namespace {

// GPT-2's gelu_new in float as the library computes it: 0.5 v (1 + tanh(sqrt(2/pi) u)) with
// u = v + 0.044715 v^3 formed as fma(v, 0.044715 v v, v) (how the optimised build has always
// evaluated the plain expression), every other operation rounded separately, std::tanh.
float gelu_new_reference(float v) {
  const float u = std::fma(v, 0.044715f * v * v, v);
  const float half = 0.5f * v;
  return half * (1.0f + std::tanh(0.79788456080286536f * u));
}

std::vector<float> random_vector(size_t n, uint32_t seed, float scale = 1.f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

// Swin reference written the slow, literal way: roll the map by -shift, partition into windows,
// attention per window and head with bias and mask, reverse the partition, roll back by +shift.
std::vector<float> reference_window_attention(const std::vector<float>& qkv, int64_t batch, const nn::WindowGeometry& g,
                                              const std::vector<float>& table, bool masked) {
  const int64_t H = g.height, W = g.width, C = g.channels, nh = g.heads, ws = g.window, s = g.shift;
  const int64_t hd = C / nh, T = ws * ws, span = 2 * ws - 1;
  std::vector<float> out(static_cast<size_t>(batch * H * W * C));
  auto region = [&](int64_t p, int64_t len) { return p < len - ws ? 0 : (p < len - s ? 1 : 2); };
  for (int64_t b = 0; b < batch; ++b) {
    // rolled[r][c] = x[(r + s) % H][(c + s) % W]  (torch.roll by -s)
    auto src_row = [&](int64_t r, int64_t c) { return b * H * W + ((r + s) % H) * W + (c + s) % W; };
    for (int64_t wr = 0; wr < H / ws; ++wr)
      for (int64_t wc = 0; wc < W / ws; ++wc)
        for (int64_t h = 0; h < nh; ++h)
          for (int64_t i = 0; i < T; ++i) {
            const int64_t ri = wr * ws + i / ws, ci = wc * ws + i % ws;
            const float* qi = &qkv[static_cast<size_t>(src_row(ri, ci) * 3 * C + h * hd)];
            std::vector<double> sc(static_cast<size_t>(T));
            double mx = -1e300;
            for (int64_t j = 0; j < T; ++j) {
              const int64_t rj = wr * ws + j / ws, cj = wc * ws + j % ws;
              const float* kj = &qkv[static_cast<size_t>(src_row(rj, cj) * 3 * C + C + h * hd)];
              double d = 0;
              for (int64_t e = 0; e < hd; ++e) d += static_cast<double>(qi[e]) / std::sqrt(double(hd)) * kj[e];
              const int64_t idx = (i / ws - j / ws + ws - 1) * span + (i % ws - j % ws + ws - 1);
              d += table[static_cast<size_t>(idx * nh + h)];
              if (masked && (region(ri, H) * 3 + region(ci, W)) != (region(rj, H) * 3 + region(cj, W))) d -= 100.0;
              sc[static_cast<size_t>(j)] = d;
              mx = std::max(mx, d);
            }
            double sum = 0;
            for (auto& v : sc) sum += (v = std::exp(v - mx));
            // window_reverse + roll(+s) puts rolled position (ri, ci) back at source row src_row(ri, ci)
            float* o = &out[static_cast<size_t>(src_row(ri, ci) * C + h * hd)];
            for (int64_t e = 0; e < hd; ++e) {
              double acc = 0;
              for (int64_t j = 0; j < T; ++j) {
                const int64_t rj = wr * ws + j / ws, cj = wc * ws + j % ws;
                acc += sc[static_cast<size_t>(j)] / sum *
                       qkv[static_cast<size_t>(src_row(rj, cj) * 3 * C + 2 * C + h * hd + e)];
              }
              o[e] = static_cast<float>(acc);
            }
          }
  }
  return out;
}

void check_window_attention(int64_t side, int64_t channels, int64_t heads, int64_t window, int64_t shift,
                            int64_t batch) {
  nn::WindowGeometry g{side, side, channels, heads, window, shift};
  const auto qkv = random_vector(static_cast<size_t>(batch * side * side * 3 * channels), 7, 1.5f);
  const auto table = random_vector(static_cast<size_t>((2 * window - 1) * (2 * window - 1) * heads), 8);
  std::vector<float> out(static_cast<size_t>(batch * side * side * channels));
  nn::WindowAttention(g, table.data()).forward(0, qkv.data(), batch, out.data());
  const auto ref = reference_window_attention(qkv, batch, g, table, shift > 0);
  double worst = 0;
  for (size_t i = 0; i < out.size(); ++i) worst = std::max(worst, std::fabs(double(out[i]) - ref[i]));
  EXPECT_LT(worst, 1e-5) << "side " << side << " C " << channels << " heads " << heads << " shift " << shift;
}

}  // namespace

TEST(NnWindowAttention, MatchesLiteralRollPartitionReferenceHead16) {
  check_window_attention(16, 32, 2, 8, 0, 2);
  check_window_attention(16, 32, 2, 8, 4, 2);
}

TEST(NnWindowAttention, MatchesReferenceHead24AndGenericSizes) {
  check_window_attention(16, 48, 2, 8, 4, 1);  // msclap's head size 24
  check_window_attention(12, 24, 3, 4, 2, 2);  // runtime path: window 4, head size 8
  check_window_attention(8, 64, 2, 8, 0, 1);   // one window, no shift (HTSAT's last stage)
}

TEST(NnWindowAttention, MatchesReferenceHead8And40) {
  check_window_attention(16, 16, 2, 8, 4, 1);  // head size 8: AVX-512 kernel, generic elsewhere
  check_window_attention(8, 80, 2, 8, 0, 1);   // head size 40
}

// Heads of one window are split over threads (HTSAT's last stage is a single window); windows of a
// map too. Neither changes a bit.
TEST(NnWindowAttention, SameBitsWithOneAndTwoThreads) {
  for (int64_t side : {8, 32}) {
    const nn::WindowGeometry g{side, side, 96, 4, 8, side > 8 ? 4 : 0};
    const auto qkv = random_vector(static_cast<size_t>(2 * side * side * 3 * 96), 9, 1.5f);
    const auto table = random_vector(static_cast<size_t>(15 * 15 * 4), 10);
    const nn::WindowAttention attn(g, table.data());
    std::vector<float> one(static_cast<size_t>(2 * side * side * 96)), two(one.size());
    attn.forward(1, qkv.data(), 2, one.data());
    attn.forward(2, qkv.data(), 2, two.data());
    EXPECT_EQ(one, two) << "side " << side;
  }
}

TEST(NnWindowAttention, RejectsGridNotMultipleOfWindow) {
  const std::vector<float> table(15 * 15 * 2);
  EXPECT_THROW(nn::WindowAttention(nn::WindowGeometry{12, 12, 32, 2, 8, 0}, table.data()), asdcap::Error);
  EXPECT_THROW(nn::WindowAttention(nn::WindowGeometry{16, 16, 30, 4, 8, 0}, table.data()), asdcap::Error);
  EXPECT_THROW(nn::WindowAttention(nn::WindowGeometry{16, 16, 32, 2, 8, 8}, table.data()), asdcap::Error);
}

TEST(NnLinear, MatchesDoubleReferenceBothLayoutsAndAccumulate) {
  const int64_t m = 300, k = 70, n = 90;
  const auto x = random_vector(m * k, 1), w = random_vector(n * k, 2), b = random_vector(n, 3);
  std::vector<float> y(m * n), y_kn(m * n), acc(m * n, 1.0f);
  // w as [n, k] for linear, transposed copy [k, n] for linear_kn
  std::vector<float> wt(k * n);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < k; ++j) wt[j * n + i] = w[i * k + j];
  nn::linear(0, x.data(), m, k, w.data(), n, b.data(), y.data());
  nn::linear_kn(0, x.data(), m, k, wt.data(), n, b.data(), y_kn.data());
  nn::linear(0, x.data(), m, k, w.data(), n, nullptr, acc.data(), /*accumulate=*/true);
  double worst = 0;
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double r = 0;
      for (int64_t e = 0; e < k; ++e) r += double(x[i * k + e]) * w[j * k + e];
      worst = std::max({worst, std::fabs(y[i * n + j] - (r + b[j])), std::fabs(y_kn[i * n + j] - (r + b[j])),
                        std::fabs(acc[i * n + j] - (r + 1.0))});
    }
  EXPECT_LT(worst, 1e-4);
}

TEST(NnLinear, SameBitsWithOneAndTwoThreads) {
  for (int64_t m : {2048, 40}) {  // large and small row splits
    const int64_t k = 192, n = 768;
    const auto x = random_vector(m * k, 4), w = random_vector(n * k, 5), b = random_vector(n, 6);
    std::vector<float> y1(m * n), y2(m * n);
    nn::linear(1, x.data(), m, k, w.data(), n, b.data(), y1.data());
    nn::linear(2, x.data(), m, k, w.data(), n, b.data(), y2.data());
    EXPECT_EQ(y1, y2) << "m = " << m;
  }
}

// Widths that take the four-row vector path (multiples of 16) and one that does not, rows that leave
// a remainder of the four-row blocks, and a row mean far from zero (the two-pass variance).
TEST(NnLayerNorm, MatchesDoubleReference) {
  for (const int64_t dim : {96, 768, 100}) {
    for (const float offset : {0.f, 1000.f}) {
      const int64_t rows = 50;
      auto x = random_vector(static_cast<size_t>(rows * dim), 9, 3.f);
      for (auto& v : x) v += offset;
      const auto g = random_vector(static_cast<size_t>(dim), 10), b = random_vector(static_cast<size_t>(dim), 11);
      std::vector<float> y(static_cast<size_t>(rows * dim));
      nn::layer_norm(0, x.data(), rows, dim, g.data(), b.data(), 1e-5f, y.data());
      double worst = 0;
      for (int64_t r = 0; r < rows; ++r) {
        double mean = 0, var = 0;
        for (int64_t i = 0; i < dim; ++i) mean += x[r * dim + i];
        mean /= dim;
        for (int64_t i = 0; i < dim; ++i) var += (x[r * dim + i] - mean) * (x[r * dim + i] - mean);
        var /= dim;
        for (int64_t i = 0; i < dim; ++i) {
          const double ref = (x[r * dim + i] - mean) / std::sqrt(var + 1e-5) * g[i] + b[i];
          worst = std::max(worst, std::fabs(y[r * dim + i] - ref));
        }
      }
      // float rounding of x - mean: ulp(offset) / std is the error scale of the float arithmetic
      EXPECT_LT(worst, offset == 0.f ? 2e-6 : 1e-4) << "dim " << dim << " offset " << offset;
    }
  }
}

TEST(NnLayerNorm, SameBitsWithOneAndTwoThreadsAndInPlace) {
  const int64_t rows = 1027, dim = 96;
  const auto x = random_vector(static_cast<size_t>(rows * dim), 13, 2.f);
  const auto g = random_vector(static_cast<size_t>(dim), 14), b = random_vector(static_cast<size_t>(dim), 15);
  std::vector<float> one(x.size()), two(x.size()), in_place = x;
  nn::layer_norm(1, x.data(), rows, dim, g.data(), b.data(), 1e-5f, one.data());
  nn::layer_norm(2, x.data(), rows, dim, g.data(), b.data(), 1e-5f, two.data());
  nn::layer_norm(2, in_place.data(), rows, dim, g.data(), b.data(), 1e-5f, in_place.data());
  EXPECT_EQ(one, two);
  EXPECT_EQ(one, in_place);
}

TEST(NnActivations, GeluErfSigmoidAndSoftmaxMatchLibm) {
  std::vector<float> x;
  for (int i = -12000; i <= 12000; ++i) x.push_back(static_cast<float>(i) * 1e-3f);
  std::vector<float> gelu = x, sig = x;
  nn::gelu_erf(0, gelu.data(), static_cast<int64_t>(gelu.size()));
  nn::sigmoid(0, sig.data(), static_cast<int64_t>(sig.size()));
  double worst_gelu = 0, worst_sig = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double v = x[i];
    const double g = 0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0)));
    worst_gelu = std::max(worst_gelu, std::fabs(gelu[i] - g) / std::max(1.0, std::fabs(v)));
    worst_sig = std::max(worst_sig, std::fabs(sig[i] - 1.0 / (1.0 + std::exp(-v))));
  }
  EXPECT_LT(worst_gelu, 2e-7);  // A&S 7.1.26 (PyTorch's vectorised erf) is within 1.5e-7
  EXPECT_LT(worst_sig, 2e-7);
  std::vector<float> s = {1.f, 2.f, 3.f, -1e30f};
  nn::softmax_rows(0, s.data(), 1, 4);
  const double z = std::exp(1.0) + std::exp(2.0) + std::exp(3.0);
  EXPECT_NEAR(s[0], std::exp(1.0) / z, 1e-7);
  EXPECT_NEAR(s[2], std::exp(3.0) / z, 1e-7);
  EXPECT_EQ(s[3], 0.f);
}

// GPT-2's GELU (tanh form) is std::tanh per element, written out as GPT-2's gelu_new: split over
// threads (a large array) it gives those bits exactly, whatever the thread count.
TEST(NnActivations, GeluTanhIsTheFormulaPerElementOnAnyThreadCount) {
  const auto x = random_vector(3 * 768 * 4 * 21 + 5, 31);  // odd length, above the parallel threshold
  for (const int threads : {1, 2, 3}) {
    std::vector<float> y = x;
    nn::gelu_tanh(threads, y.data(), std::ssize(y));
    for (size_t i = 0; i < x.size(); ++i) {
      const float v = x[i];
      const float expect = gelu_new_reference(v);
      ASSERT_EQ(y[i], expect) << i << " threads " << threads;
    }
  }
}

// The vectorised GELU is the scalar formula with the C library's tanhf bit for bit (tanhf's
// algorithm restated lane by lane): over a sample of all float bit patterns (every branch: tiny, |x| < 1, |x| >= 1, |x|
// >= 22, infinities, NaN) and densely over GPT-2's activation range. Through gelu_tanh: x = 0 gives 0.5 * 0 * (1 +
// tanh(...)), so the tanh argument is probed by inputs whose u lands there.
TEST(NnActivations, VectorGeluTanhIsTheScalarFormulaBitForBit) {
  std::vector<float> x;
  for (uint64_t u = 0; u < (uint64_t{1} << 32); u += 4093) x.push_back(std::bit_cast<float>(static_cast<uint32_t>(u)));
  for (float v = -12.f; v < 12.f; v += 1.f / 1024) x.push_back(v);
  for (const float v : {0.f, -0.f, 1e-30f, -1e-30f, 1.f, -1.f, 22.f, -22.f, 88.f, -88.f,
                        std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                        std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::denorm_min()})
    x.push_back(v);
  std::vector<float> y = x;
  nn::gelu_tanh(1, y.data(), std::ssize(y));
  int64_t mismatches = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const float v = x[i];
    const float expect = gelu_new_reference(v);
    if (std::isnan(expect) ? !std::isnan(y[i]) : std::bit_cast<uint32_t>(y[i]) != std::bit_cast<uint32_t>(expect))
      if (++mismatches <= 5)
        ADD_FAILURE() << "x = " << v << " (" << std::hexfloat << v << "): " << y[i] << " vs " << expect;
  }
  EXPECT_EQ(mismatches, 0) << "of " << x.size();
}

// The softmax half with the C library's expf values (its algorithm restated 4 lanes at a time) and
// the scalar loop's sum: a sample of all float bit patterns (subnormal, overflowing, infinite, NaN
// arguments) and a vocabulary-sized row of logits, on lengths with and without a vector tail.
TEST(NnActivations, ExpShiftedSumIsTheScalarLoopBitForBit) {
  std::vector<float> patterns;
  for (uint64_t u = 0; u < (uint64_t{1} << 32); u += 4093)
    patterns.push_back(std::bit_cast<float>(static_cast<uint32_t>(u)));
  auto logits = random_vector(50257, 43, 12.f);
  for (const auto* row : {&patterns, &logits})
    for (const int64_t n : {std::ssize(*row), std::ssize(*row) - 3}) {
      const float shift = row == &logits ? *std::max_element(logits.begin(), logits.end()) : 0.5f;
      std::vector<float> got(row->begin(), row->begin() + n), want = got;
      const double sum = nn::exp_shifted_sum(got.data(), n, shift);
      double want_sum = 0;
      for (auto& v : want) {
        v = std::exp(v - shift);
        want_sum += v;
      }
      int64_t mismatches = 0;
      for (int64_t i = 0; i < n; ++i) {
        const bool same = std::isnan(want[i]) ? std::isnan(got[i])
                                              : std::bit_cast<uint32_t>(got[i]) == std::bit_cast<uint32_t>(want[i]);
        if (!same && ++mismatches <= 5)
          ADD_FAILURE() << "exp(" << std::hexfloat << (*row)[i] - shift << "): " << got[i] << " vs " << want[i];
      }
      EXPECT_EQ(mismatches, 0) << "of " << n;
      if (row == &logits) {
        EXPECT_EQ(std::bit_cast<uint64_t>(sum), std::bit_cast<uint64_t>(want_sum));
      }
    }
}

// A NaN in (a corrupt weight, a NaN sample) comes out as NaN, never as a finite number and
// without undefined behaviour on the way (the UBSan build runs this).
TEST(NnActivations, NanInputsPropagateAsNan) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> x(37, 0.5f);
  x[3] = nan;
  x[20] = nan;
  for (auto f : {+[](std::vector<float>& v) { nn::gelu_erf(0, v.data(), std::ssize(v)); },
                 +[](std::vector<float>& v) { nn::sigmoid(0, v.data(), std::ssize(v)); }}) {
    std::vector<float> v = x;
    f(v);
    EXPECT_TRUE(std::isnan(v[3]));
    EXPECT_TRUE(std::isnan(v[20]));
    EXPECT_TRUE(std::isfinite(v[4]));
  }
  std::vector<float> s = {1.f, nan, 3.f, 0.f};
  nn::softmax_rows(0, s.data(), 1, 4);
  EXPECT_TRUE(std::isnan(s[0]) || std::isnan(s[1]));  // the row is poisoned, not silently finite
}

TEST(NnPatchMerge, MatchesLiteralConcatenationOrder) {
  const int64_t batch = 2, h = 4, w = 6, c = 3;
  const auto x = random_vector(batch * h * w * c, 12);
  std::vector<float> out(batch * (h / 2) * (w / 2) * 4 * c);
  nn::patch_merge_norm(0, x.data(), batch, h, w, c, nullptr, nullptr, 1e-5f, out.data());
  // torch.cat([x[0::2, 0::2], x[1::2, 0::2], x[0::2, 1::2], x[1::2, 1::2]], -1) then LayerNorm
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t r = 0; r < h / 2; ++r)
      for (int64_t col = 0; col < w / 2; ++col) {
        std::vector<double> v;
        const int64_t dr[4] = {0, 1, 0, 1}, dc[4] = {0, 0, 1, 1};
        for (int q = 0; q < 4; ++q)
          for (int64_t e = 0; e < c; ++e) v.push_back(x[((b * h + 2 * r + dr[q]) * w + 2 * col + dc[q]) * c + e]);
        double mean = 0, var = 0;
        for (double a : v) mean += a;
        mean /= v.size();
        for (double a : v) var += (a - mean) * (a - mean);
        var /= v.size();
        const float* o = &out[((b * (h / 2) + r) * (w / 2) + col) * 4 * c];
        for (size_t e = 0; e < v.size(); ++e) EXPECT_NEAR(o[e], (v[e] - mean) / std::sqrt(var + 1e-5), 2e-6);
      }
}

TEST(NnParallel, ChunksCoverRangeOnceWithAnyThreadCountAndSchedule) {
  for (int t : {1, 2})
    for (const auto schedule : {asdcap::Schedule::kDynamic, asdcap::Schedule::kStatic}) {
      std::vector<int> hits(1000, 0);
      asdcap::parallel_chunks(
          t, 1000, 64,
          [&](int64_t a, int64_t b) {
            EXPECT_EQ(a % 64, 0);
            EXPECT_EQ(b, std::min<int64_t>(1000, a + 64));
            for (int64_t i = a; i < b; ++i) ++hits[static_cast<size_t>(i)];
          },
          schedule);
      for (int h : hits) ASSERT_EQ(h, 1);
    }
}

// asdcap's packed GEMM against a double reference: both weight layouts, every epilogue, and shapes
// that leave partial register tiles (m % 6 != 0) and a partial panel (n % 16 != 0).
TEST(NnPackedLinear, MatchesDoubleReferenceLayoutsAndEpilogues) {
  const int64_t m = 301, k = 70, n = 90;
  const auto x = random_vector(m * k, 21), w = random_vector(n * k, 22), b = random_vector(n, 23);
  std::vector<float> wt(k * n);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < k; ++j) wt[j * n + i] = w[i * k + j];
  const nn::PackedLinear out_in(w.data(), n, k, b.data());
  const nn::PackedLinear in_out(wt.data(), n, k, b.data(), nn::PackedLinear::Layout::kInOut);
  EXPECT_EQ(out_in.in_features(), k);
  EXPECT_EQ(out_in.out_features(), n);
  std::vector<float> plain(m * n), transposed(m * n), gelu(m * n), acc(m * n, 1.0f);
  out_in.forward(0, x.data(), m, plain.data());
  in_out.forward(0, x.data(), m, transposed.data());
  out_in.forward(0, x.data(), m, gelu.data(), nn::PackedLinear::Epilogue::kGelu);
  out_in.forward(0, x.data(), m, acc.data(), nn::PackedLinear::Epilogue::kAccumulate);
  double worst = 0;
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double r = b[j];
      for (int64_t e = 0; e < k; ++e) r += double(x[i * k + e]) * w[j * k + e];
      const double g = 0.5 * r * (1.0 + std::erf(r / std::sqrt(2.0)));
      const size_t at = static_cast<size_t>(i * n + j);
      worst = std::max({worst, std::fabs(plain[at] - r), std::fabs(transposed[at] - r), std::fabs(gelu[at] - g),
                        std::fabs(acc[at] - (r + 1.0))});
    }
  EXPECT_LT(worst, 1e-4);
}

TEST(NnPackedLinear, SameBitsForAnyThreadCountAndRowSplit) {
  const int64_t m = 1000, k = 192, n = 200;
  const auto x = random_vector(m * k, 24), w = random_vector(n * k, 25), b = random_vector(n, 26);
  const nn::PackedLinear layer(w.data(), n, k, b.data());
  std::vector<float> one(m * n), two(m * n), pieces(m * n);
  layer.forward(1, x.data(), m, one.data());
  layer.forward(2, x.data(), m, two.data());
  // Rows in uneven pieces (as clips of different batches would fall; pieces of few tiles take the
  // tiles that spread their prefetches): still the same bits.
  for (int64_t r0 = 0, step = 1; r0 < m; r0 += step, step = step * 3 + 1)
    layer.forward_serial(x.data() + r0 * k, std::min(step, m - r0), pieces.data() + r0 * n);
  EXPECT_EQ(one, two);
  EXPECT_EQ(one, pieces);
}

TEST(NnPackedLinear, RejectsEmptyShapes) {
  const std::vector<float> w(16, 1.f);
  EXPECT_THROW(nn::PackedLinear(w.data(), 0, 16, nullptr), asdcap::Error);
  EXPECT_THROW(nn::PackedLinear(w.data(), 16, 0, nullptr), asdcap::Error);
}

// Panels packed beforehand (as a model file stores them) give the layer packed at construction, bit
// for bit: from aligned memory used where it is, from unaligned memory through a copy. The layout
// is written out here from its definition: element (j, p) at panel j / 48, row p, column j % 48.
TEST(NnPackedLinear, OverPrepackedPanelsEqualsPackingAtConstruction) {
  const int64_t n = 100, k = 37, m = 11;  // a partial last panel (100 = 2 x 48 + 4)
  const std::vector<float> w = random_vector(static_cast<size_t>(n * k), 41), b = random_vector(n, 42);
  const std::vector<float> x = random_vector(static_cast<size_t>(m * k), 43);
  const int64_t panels = (n + 47) / 48;
  ASSERT_EQ(nn::PackedLinear::panel_bytes(n, k, nn::WeightType::kF32), static_cast<size_t>(panels * k * 48 * 4));
  std::vector<float, nn::LineAligned<float>> stored(static_cast<size_t>(panels * k * 48 + 16), 0.f);
  for (int64_t j = 0; j < n; ++j)
    for (int64_t p = 0; p < k; ++p) stored[static_cast<size_t>((j / 48) * k * 48 + p * 48 + j % 48)] = w[j * k + p];
  std::vector<float, nn::LineAligned<float>> packed(stored.size(), -1.f);
  nn::PackedLinear::pack({w.data(), nn::WeightType::kF32}, n, k, nn::PackedLinear::Layout::kOutIn, packed.data());
  EXPECT_EQ(std::memcmp(packed.data(), stored.data(), nn::PackedLinear::panel_bytes(n, k, nn::WeightType::kF32)), 0);

  const nn::PackedLinear own(w.data(), n, k, b.data());
  auto keep = std::make_shared<int>(0);
  const auto view = nn::PackedLinear::over_panels({stored.data(), nn::WeightType::kF32}, n, k, b.data(), keep);
  EXPECT_FALSE(view.owns_panels());
  EXPECT_EQ(keep.use_count(), 2);  // the view holds the panels' owner
  std::vector<float> shifted(stored.size());
  std::memcpy(shifted.data() + 1, stored.data(), (stored.size() - 1) * sizeof(float));
  const auto copied = nn::PackedLinear::over_panels({shifted.data() + 1, nn::WeightType::kF32}, n, k, b.data(), {});
  EXPECT_TRUE(copied.owns_panels());
  for (int threads : {1, 2}) {
    std::vector<float> y0(static_cast<size_t>(m * n)), y1(y0.size()), y2(y0.size());
    own.forward(threads, x.data(), m, y0.data(), nn::PackedLinear::Epilogue::kGelu);
    view.forward(threads, x.data(), m, y1.data(), nn::PackedLinear::Epilogue::kGelu);
    copied.forward(threads, x.data(), m, y2.data(), nn::PackedLinear::Epilogue::kGelu);
    EXPECT_EQ(y0, y1);
    EXPECT_EQ(y0, y2);
  }
  EXPECT_THROW(nn::PackedLinear::over_panels({stored.data(), nn::WeightType::kF32}, 0, k, nullptr, {}), asdcap::Error);
  EXPECT_THROW(nn::PackedLinear::panel_bytes(int64_t{1} << 32, 1, nn::WeightType::kF16), asdcap::Error);
}

// Half-precision weights stay 16-bit in the panels and are widened in registers: every output equals
// the float32 layer's on the widened weights, bit for bit, in both layouts, every epilogue, partial
// tiles and panels, one and two threads. Widening is written out here from the formats' definitions
// (IEEE binary16: 1 sign, 5 exponent bits with bias 15, 10 mantissa bits; bfloat16: a float32's upper
// 16 bits).
namespace {

float half_value(uint16_t h) {
  const int sign = h >> 15, exponent = (h >> 10) & 0x1f, mantissa = h & 0x3ff;
  const double magnitude = exponent == 0 ? std::ldexp(mantissa, -24) : std::ldexp(1024 + mantissa, exponent - 25);
  return static_cast<float>(sign ? -magnitude : magnitude);
}

float brain_value(uint16_t b) {
  const uint32_t bits = uint32_t{b} << 16;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

// Random finite 16-bit patterns of either format (zeros, subnormals and both signs included).
std::vector<uint16_t> random_patterns(size_t n, uint32_t seed, bool half) {
  std::mt19937 rng(seed);
  std::vector<uint16_t> v(n);
  for (auto& x : v) {
    do x = static_cast<uint16_t>(rng());
    while (half ? ((x >> 10) & 0x1f) == 0x1f || ((x >> 10) & 0x1f) > 17 : ((x >> 7) & 0xff) >= 0x84);
  }
  return v;
}

}  // namespace

TEST(NnPackedLinear, HalfPrecisionWeightsGiveTheWidenedFloat32LayersBits) {
  const int64_t m = 29, k = 70, n = 90;
  const auto x = random_vector(m * k, 27), b = random_vector(n, 28);
  for (const auto type : {nn::WeightType::kF16, nn::WeightType::kBF16}) {
    const bool half = type == nn::WeightType::kF16;
    for (const auto layout : {nn::PackedLinear::Layout::kOutIn, nn::PackedLinear::Layout::kInOut}) {
      const std::vector<uint16_t> bits = random_patterns(n * k, half ? 29 : 30, half);
      std::vector<float> widened(bits.size());
      for (size_t i = 0; i < bits.size(); ++i) widened[i] = half ? half_value(bits[i]) : brain_value(bits[i]);
      const nn::PackedLinear narrow(nn::WeightView{bits.data(), type}, n, k, b.data(), layout);
      const nn::PackedLinear wide(widened.data(), n, k, b.data(), layout);
      EXPECT_EQ(narrow.weight_type(), type);
      EXPECT_EQ(2 * narrow.packed_bytes(), wide.packed_bytes());
      for (const auto ep : {nn::PackedLinear::Epilogue::kNone, nn::PackedLinear::Epilogue::kGelu,
                            nn::PackedLinear::Epilogue::kAccumulate})
        for (int threads : {1, 2}) {
          std::vector<float> got(m * n, 0.5f), want(m * n, 0.5f);
          narrow.forward(threads, x.data(), m, got.data(), ep);
          wide.forward(threads, x.data(), m, want.data(), ep);
          ASSERT_EQ(std::memcmp(got.data(), want.data(), got.size() * sizeof(float)), 0)
              << (half ? "f16" : "bf16") << " layout " << static_cast<int>(layout) << " epilogue "
              << static_cast<int>(ep) << " threads " << threads;
        }
    }
  }
}

// int8 storage: per output feature, scale = max |w| / 127 and q = w / scale rounded to nearest, ties
// to even. Worked by hand: row 0's largest magnitude is 127 (scale 1: 2.5 -> 2, -3.5 -> -4, 0.4 -> 0);
// row 1's is 254 (scale 2: 1 / 2 = 0.5 -> 0, 3 / 2 = 1.5 -> 2); row 2 is all zero (scale 1, q 0). The
// [in, out] order gives the same numbers transposed.
TEST(NnInt8, QuantizationPerOutputFeatureByHand) {
  const std::vector<float> w = {127,  2.5f, -3.5f, 0.4f,  //
                                -254, 1,    3,     -127,  //
                                0,    0,    0,     0};
  std::vector<int8_t> q(12);
  std::vector<float> scale(3);
  asdcap::panels::quantize_int8(w.data(), 3, 4, false, q.data(), scale.data());
  EXPECT_EQ(scale, (std::vector<float>{1.f, 2.f, 1.f}));
  EXPECT_EQ(q, (std::vector<int8_t>{127, 2, -4, 0, -127, 0, 2, -64, 0, 0, 0, 0}));
  std::vector<float> wt(12);
  for (int j = 0; j < 3; ++j)
    for (int p = 0; p < 4; ++p) wt[static_cast<size_t>(p * 3 + j)] = w[static_cast<size_t>(j * 4 + p)];
  std::vector<int8_t> qt(12);
  std::vector<float> scale_t(3);
  asdcap::panels::quantize_int8(wt.data(), 3, 4, true, qt.data(), scale_t.data());
  EXPECT_EQ(scale_t, scale);
  for (int j = 0; j < 3; ++j)
    for (int p = 0; p < 4; ++p) EXPECT_EQ(qt[static_cast<size_t>(p * 3 + j)], q[static_cast<size_t>(j * 4 + p)]);
}

// int8 layers: each call quantizes its input rows (s[r] = max |x[r]| / 127, q = x / s[r] rounded to
// nearest even), sums the integer products exactly and scales: y = sum_p q_x[r][p] q_w[j][p] *
// wscale[j] * s[r] + b[j]. Written out here from that definition in double; the kernel's float
// epilogue is the only rounding. Both layouts, every epilogue, partial tiles and panels, inputs not a
// multiple of 4; one and two threads and panels used in place give the same bits; the AVX2 and the
// VNNI kernels (where the CPU has it) the same bits; a row holding a NaN gives NaN outputs.
TEST(NnInt8, PackedLinearQuantizesRowsAndSumsExactly) {
  const int64_t m = 29, k = 70, n = 90;
  auto x = random_vector(m * k, 51);
  const auto b = random_vector(n, 52);
  std::mt19937 rng(53);
  std::vector<int8_t> q(static_cast<size_t>(n * k));
  for (auto& v : q) v = static_cast<int8_t>(static_cast<int>(rng() % 255) - 127);
  std::vector<float> scale(static_cast<size_t>(n));
  for (auto& s : scale) s = std::ldexp(1.f + static_cast<float>(rng() % 1000) / 1000.f, -7);
  std::vector<int8_t> qt(q.size());
  for (int64_t j = 0; j < n; ++j)
    for (int64_t p = 0; p < k; ++p) qt[static_cast<size_t>(p * n + j)] = q[static_cast<size_t>(j * k + p)];
  const nn::PackedLinear out_in(nn::WeightView{q.data(), nn::WeightType::kI8, scale.data()}, n, k, b.data());
  const nn::PackedLinear in_out(nn::WeightView{qt.data(), nn::WeightType::kI8, scale.data()}, n, k, b.data(),
                                nn::PackedLinear::Layout::kInOut);
  EXPECT_EQ(out_in.weight_type(), nn::WeightType::kI8);
  EXPECT_EQ(out_in.packed_bytes(), static_cast<size_t>(2 * 72 * 48));  // one byte per weight, k rounded up to 72
  // The reference: rows quantized from the definition, integer sums, scaled in double.
  std::vector<double> want(static_cast<size_t>(m * n));
  for (int64_t i = 0; i < m; ++i) {
    float top = 0;
    for (int64_t e = 0; e < k; ++e) top = std::max(top, std::fabs(x[i * k + e]));
    const float sx = top / 127.f;
    for (int64_t j = 0; j < n; ++j) {
      int64_t sum = 0;
      for (int64_t e = 0; e < k; ++e) sum += static_cast<int64_t>(std::nearbyint(x[i * k + e] / sx)) * q[j * k + e];
      want[static_cast<size_t>(i * n + j)] = double(sum) * scale[j] * sx + b[j];
    }
  }
  for (const auto ep : {nn::PackedLinear::Epilogue::kNone, nn::PackedLinear::Epilogue::kGelu,
                        nn::PackedLinear::Epilogue::kAccumulate}) {
    std::vector<float> got(m * n, 0.5f), got_t(m * n, 0.5f), got2(m * n, 0.5f);
    out_in.forward(1, x.data(), m, got.data(), ep);
    in_out.forward(1, x.data(), m, got_t.data(), ep);
    out_in.forward(2, x.data(), m, got2.data(), ep);
    EXPECT_EQ(got, got_t);
    EXPECT_EQ(got, got2);
    double worst = 0;
    for (size_t at = 0; at < want.size(); ++at) {
      double r = want[at];
      if (ep == nn::PackedLinear::Epilogue::kGelu) r = 0.5 * r * (1.0 + std::erf(r / std::sqrt(2.0)));
      if (ep == nn::PackedLinear::Epilogue::kAccumulate) r += 0.5;
      worst = std::max(worst, std::fabs(got[at] - r) / (1 + std::fabs(r)));
    }
    EXPECT_LT(worst, 2e-6) << "epilogue " << static_cast<int>(ep);
  }
  std::vector<int8_t, nn::LineAligned<int8_t>> panels(nn::PackedLinear::panel_bytes(n, k, nn::WeightType::kI8));
  nn::PackedLinear::pack({q.data(), nn::WeightType::kI8}, n, k, nn::PackedLinear::Layout::kOutIn, panels.data());
  // The layout from its definition: element (j, p) at panel j / 48, group p / 4, column j % 48, byte p % 4.
  for (int64_t j = 0; j < n; ++j)
    for (int64_t p = 0; p < k; ++p)
      ASSERT_EQ(panels[static_cast<size_t>((j / 48) * 72 * 48 + (p / 4) * 192 + (j % 48) * 4 + p % 4)],
                q[static_cast<size_t>(j * k + p)]);
  const auto view =
      nn::PackedLinear::over_panels({panels.data(), nn::WeightType::kI8, scale.data()}, n, k, b.data(), {});
  EXPECT_FALSE(view.owns_panels());
  std::vector<float> a(m * n), c(m * n);
  out_in.forward(1, x.data(), m, a.data());
  view.forward(1, x.data(), m, c.data());
  EXPECT_EQ(a, c);
  // Both int8 kernels: the same integer sums, the same bits.
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl")) {
    std::vector<int8_t> xq(static_cast<size_t>(m * 72));
    std::vector<float> sx(static_cast<size_t>(m));
    nn::int8::quantize_rows(x.data(), m, k, 72, xq.data(), sx.data());
    std::vector<float> sc(96, 0.f), bias(96, 0.f);
    std::copy(scale.begin(), scale.end(), sc.begin());
    std::copy(b.begin(), b.end(), bias.begin());
    std::vector<int32_t> sums(96, 0);
    for (int64_t j = 0; j < n; ++j)
      for (int64_t p = 0; p < k; ++p) sums[static_cast<size_t>(j)] += q[static_cast<size_t>(j * k + p)];
    const nn::int8::Layer layer{panels.data(), bias.data(), sc.data(), sums.data(), n, 72};
    std::vector<float> y2(m * n), y512(m * n);
    nn::int8::avx2_block()(layer, {xq.data(), sx.data(), 72}, 0, m, 0, 2, y2.data(), nn::PackedLinear::Epilogue::kNone);
    nn::int8::avx512_block()(layer, {xq.data(), sx.data(), 72}, 0, m, 0, 2, y512.data(),
                             nn::PackedLinear::Epilogue::kNone);
    EXPECT_EQ(y2, y512);
    EXPECT_EQ(y2, a);
  }
  // A row with a NaN: that row's outputs are NaN, the others unchanged.
  x[3 * k + 5] = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> nan_row(m * n);
  out_in.forward(1, x.data(), m, nan_row.data());
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      const size_t at = static_cast<size_t>(i * n + j);
      if (i == 3)
        EXPECT_TRUE(std::isnan(nan_row[at]));
      else
        EXPECT_EQ(nan_row[at], a[at]);
    }
  EXPECT_THROW(nn::PackedLinear(nn::WeightView{q.data(), nn::WeightType::kI8}, n, k, b.data()), asdcap::Error);
  EXPECT_THROW(nn::PackedLinear::over_panels({panels.data(), nn::WeightType::kI8}, n, k, b.data(), {}), asdcap::Error);
  // The stored integers through widen(), and their output's scale.
  float v[3];
  nn::widen({q.data(), nn::WeightType::kI8, scale.data()}, 5, 3, v);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(v[i], static_cast<float>(q[static_cast<size_t>(5 + i)]));
  EXPECT_EQ(nn::output_scale({q.data(), nn::WeightType::kI8, scale.data()}, 7), scale[7]);
  EXPECT_EQ(nn::output_scale({x.data(), nn::WeightType::kF32}, 7), 1.f);
}

// ---- Kernel sets ------------------------------------------------------------------------------

TEST(NnKernelSets, TheCpuAndTheEnvironmentChooseTheSet) {
  __builtin_cpu_init();
  const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
  const char* forced = std::getenv("ASDCAP_KERNELS");
  const bool want_avx2 = (forced && std::string(forced) == "avx2") || !avx512;
  EXPECT_EQ(nn::kernel_set(), want_avx2 ? nn::KernelSet::kAvx2 : nn::KernelSet::kAvx512);
  EXPECT_STREQ(nn::kernel_set_name(nn::kernel_set()), want_avx2 ? "avx2" : "avx512");
  EXPECT_TRUE(nn::cpu_has_avx2());
}

// The files compiled for AVX-512 may define only their entry points and functions of their own
// (fastmath.hpp's target_avx512 namespace, anonymous namespaces): a standard-library or other inline
// function they emitted could be picked by the linker for the whole program and run AVX-512
// instructions on a CPU without them.
TEST(NnKernelSets, Avx512FilesExportOnlyTheirEntryPoints) {
  const std::string cmd = std::string("nm -C --defined-only --extern-only '") + ASDCAP_NN_LIBRARY + "' 2>&1";
  FILE* pipe = popen(cmd.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string member, out;
  std::vector<std::string> offending;
  int avx512_members = 0;
  char line[4096];
  while (std::fgets(line, sizeof line, pipe)) {
    std::string l(line);
    if (!l.empty() && l.back() == '\n') l.pop_back();
    out += l + "\n";
    if (l.size() > 1 && l.back() == ':') {
      member = l.substr(0, l.size() - 1);
      if (member.find("avx512") != std::string::npos) ++avx512_members;
      continue;
    }
    if (member.find("avx512") == std::string::npos || l.empty()) continue;
    const std::string symbol = l.size() > 19 ? l.substr(19) : l;
    const bool allowed = symbol.find("asdcap::nn::packed::avx512_kernel()") == 0 ||
                         symbol.find("asdcap::nn::window::attend_avx512_64(") == 0 ||
                         symbol.find("asdcap::nn::layer_norm_avx512(") == 0 ||
                         symbol.find("asdcap::nn::int8::avx512_block()") == 0 ||
                         symbol.find("target_avx512::") != std::string::npos || symbol.rfind("__", 0) == 0 ||
                         symbol.rfind("DW.ref.", 0) == 0 ||  // exception-handling data, not code
                         symbol.find("asan") != std::string::npos || symbol.find("__sancov") != std::string::npos;
    if (!allowed) offending.push_back(member + ": " + symbol);
  }
  ASSERT_EQ(pclose(pipe), 0) << out;
  EXPECT_EQ(avx512_members, 4) << out;
  EXPECT_TRUE(offending.empty()) << ::testing::PrintToString(offending);
}

// query_key_dots gives the plain loop's sums exactly: in order over e, each product rounded to float
// before it is added (volatile keeps the compiler from fusing the reference into FMAs), for key
// counts with and without a partial vector of 8.
TEST(NnAttention, QueryKeyDotsAreThePlainLoopsSums) {
  for (const int64_t n : {1, 7, 8, 13, 80}) {
    const int64_t hd = 96;
    const auto q = random_vector(static_cast<size_t>(hd), 41);
    const auto keys = random_vector(static_cast<size_t>(hd * n), 42);
    std::vector<float> out(static_cast<size_t>(n));
    nn::query_key_dots(q.data(), keys.data(), n, hd, out.data());
    for (int64_t j = 0; j < n; ++j) {
      float acc = 0.f;
      for (int64_t e = 0; e < hd; ++e) {
        volatile float p = q[static_cast<size_t>(e)] * keys[static_cast<size_t>(e * n + j)];
        acc += p;
      }
      ASSERT_EQ(out[static_cast<size_t>(j)], acc) << "n " << n << ", key " << j;
    }
  }
}
