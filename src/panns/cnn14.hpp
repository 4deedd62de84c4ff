// CNN14 inference (internal to the panns area; the public API is asdcap/panns.hpp).
//
// Feature maps are channels-last, [time][mel][channel], so that a 3x3 convolution is a GEMM per
// block of output positions over an im2col matrix whose rows are 9 contiguous runs of channels
// (for wide inputs, a few GEMMs over chunks of the row, accumulated).
// BatchNorm is folded into each convolution (weights scaled per output channel, plus a bias). Every
// product (STFT, mel, convolutions, fc) runs on asdcap's packed GEMM (nn::PackedLinear), whose
// results do not depend on the thread count or on how rows are split: neither do CNN14's.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "asdcap/nn.hpp"
#include "asdcap/panns.hpp"

namespace asdcap::panns {

// BatchNorm (eval) as y = (x - mean) * scale + shift, scale = weight / sqrt(var + eps) (in double).
struct BatchNorm {
  std::vector<float> mean, scale, shift;
};
BatchNorm make_batchnorm(const float* weight, const float* bias, const float* mean, const float* var, int64_t n,
                         float eps);

// 3x3 convolution, padding 1, stride 1, no bias, followed by BatchNorm and ReLU (folded).
class Conv3x3 {
 public:
  Conv3x3() = default;
  // w: [cout][cin][3][3] (PyTorch), as stored (f32, or f16 / bf16 widened exactly while folding).
  Conv3x3(nn::WeightView w, int64_t cout, int64_t cin, const BatchNorm& bn);
  int64_t cin() const { return cin_; }
  int64_t cout() const { return cout_; }
  // in [t][f][cin] -> out [t][f][cout] = ReLU(BN(conv(in))). out must not alias in.
  void forward(const float* in, int64_t t, int64_t f, float* out, int threads) const;
  double flops(int64_t t, int64_t f) const { return 2.0 * t * f * 9 * cin_ * cout_; }

 private:
  int64_t cin_ = 0, cout_ = 0;
  // Output channels in groups of up to kGroup; the im2col row ((dt * 3 + df) * cin + ci) in chunks
  // of whole taps of at most kChunk values (a chunk's weight panel then stays in L2 while the row
  // tiles of a task pass over it), accumulated in order. groups_[g * chunks_ + c]: BatchNorm's scale
  // applied to the weights, its shift as the bias of chunk 0.
  static constexpr int64_t kGroup = 256, kChunk = 2048;
  int64_t chunks_ = 1, taps_per_chunk_ = 9;
  std::vector<nn::PackedLinear> groups_;
};

// Every intermediate of one forward pass, for tests (layouts as noted).
struct Trace {
  struct Map {
    int64_t t = 0, f = 0, c = 0;
    std::vector<float> v;  // [t][f][c]
  };
  std::vector<float> spectrogram;  // [T][bins] power
  std::vector<float> logmel;       // [T][mel]
  std::vector<float> bn0;          // [T][mel]
  std::vector<Map> blocks;         // conv_block1..6 outputs
  std::vector<float> freq_mean;    // [T6][C6]
  std::vector<float> pooled, fc1_linear, embedding, logits, clipwise;
};

class Network {
 public:
  // From the tensors of an asdcap-panns file (f32 views; the convolutions and fc layers as stored,
  // f16 / bf16 ones too; see PannsModel::open).
  struct Tensors {
    const float* stft_real = nullptr;  // [bins][n_fft]
    const float* stft_imag = nullptr;
    const float* melw = nullptr;     // [bins][mel]
    const float* bn0[4] = {};        // weight, bias, running_mean, running_var
    nn::WeightView conv[6][2] = {};  // conv1, conv2 weights per block
    const float* bn[6][2][4] = {};   // bn1, bn2 per block
    nn::WeightView fc1_w;
    const float* fc1_b = nullptr;
    nn::WeightView fc_w;
    const float* fc_b = nullptr;
  };
  // Packs the weights (BatchNorm folded) on up to `threads` threads (0 = all cores).
  Network(const PannsConfig& cfg, const Tensors& t, int threads);

  const PannsConfig& config() const { return cfg_; }
  // One clip, whole. Throws InvalidArgument when it is shorter than config().min_samples().
  PannsModel::Output forward(const float* x, int64_t n, int threads, Trace* trace = nullptr) const;
  // The arithmetic forward() performs on n samples (front end GEMMs, convolutions, fc layers).
  double flops(int64_t n) const;

 private:
  void front_end(const float* x, int64_t n, int64_t frames, float* out, int threads, Trace* trace) const;
  PannsConfig cfg_;
  nn::PackedLinear dft_;   // n_fft -> 2 * bins: real parts, then imaginary parts
  nn::PackedLinear melw_;  // bins -> mel
  BatchNorm bn0_;
  Conv3x3 conv_[6][2];
  nn::PackedLinear fc1_, fc_;
};

}  // namespace asdcap::panns

namespace asdcap {

struct PannsModel::Impl {
  std::string path, identity;
  PannsConfig config;
  std::unique_ptr<panns::Network> net;
};

}  // namespace asdcap
