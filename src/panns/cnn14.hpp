// CNN14 inference (internal to the panns area; the public API is asdcap/panns.hpp).
//
// Feature maps are channels-last, [time][mel][channel], so that a 3x3 convolution is a GEMM per
// block of output positions over an im2col matrix whose rows are 9 contiguous runs of channels
// (for wide inputs, a few GEMMs over chunks of the row, accumulated).
// BatchNorm is folded into each convolution (weights scaled per output channel, plus a bias) when
// the model file is written. Every product (STFT, mel, convolutions, fc) runs on asdcap's packed GEMM
// (nn::PackedLinear) straight from the file's packed panels, whose
// results do not depend on the thread count or on how rows are split: neither do CNN14's.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "asdcap/nn.hpp"
#include "asdcap/panns.hpp"
#include "modelio/panns_layout.hpp"

namespace asdcap::panns {

// 3x3 convolution, padding 1, stride 1, no bias, followed by BatchNorm and ReLU, folded: the
// matrices of a version-2 file (modelio::fold_panns_tensors), used where they lie.
class Conv3x3 {
 public:
  Conv3x3() = default;
  // panels[g * chunks + c]: the packed [group size][taps * cin] matrix of group g, chunk c
  // (modelio::PannsConvSplit); bias [cout], the folded BatchNorm's shift; `keep` holds the panels.
  Conv3x3(const std::vector<nn::WeightView>& panels, const float* bias, int64_t cout, int64_t cin,
          const std::shared_ptr<const void>& keep);
  int64_t cin() const { return cin_; }
  int64_t cout() const { return cout_; }
  // in [t][f][cin] -> out [t][f][cout] = ReLU(BN(conv(in))). out must not alias in.
  void forward(const float* in, int64_t t, int64_t f, float* out, int threads) const;
  double flops(int64_t t, int64_t f) const { return 2.0 * t * f * 9 * cin_ * cout_; }

 private:
  int64_t cin_ = 0, cout_ = 0;
  modelio::PannsConvSplit split_;
  std::vector<nn::PackedLinear> groups_;  // [g * chunks + c]; chunk 0 carries the bias
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
  // The tensors of a version-2 asdcap-panns file (modelio::panns_v2_tensors): the packed ones as
  // stored (f32, or f16 / bf16 weights, widened in the kernels), the others float32.
  struct Tensors {
    nn::WeightView stft_real, stft_imag;     // packed, [bins] outputs of n_fft inputs
    nn::WeightView melw;                     // packed, [mel] outputs of bins inputs
    const float* bn0[4] = {};                // weight, bias, running_mean, running_var
    std::vector<nn::WeightView> conv[6][2];  // conv1, conv2 of each block: folded, by group then chunk
    const float* conv_bias[6][2] = {};
    nn::WeightView fc1_w;
    const float* fc1_b = nullptr;
    nn::WeightView fc_w;
    const float* fc_b = nullptr;
    std::shared_ptr<const void> keep;  // holds the panels' memory (the mapping, or a version-1 file's fold)
  };
  // Nothing is packed or copied but the biases.
  Network(const PannsConfig& cfg, const Tensors& t);

  const PannsConfig& config() const { return cfg_; }
  // One clip, whole. Throws InvalidArgument when it is shorter than config().min_samples().
  PannsModel::Output forward(const float* x, int64_t n, int threads, Trace* trace = nullptr) const;
  // The arithmetic forward() performs on n samples (front end GEMMs, convolutions, fc layers).
  double flops(int64_t n) const;

 private:
  void front_end(const float* x, int64_t n, int64_t frames, float* out, int threads, Trace* trace) const;
  PannsConfig cfg_;
  nn::PackedLinear dft_real_, dft_imag_;  // n_fft -> bins
  nn::PackedLinear melw_;                 // bins -> mel
  modelio::BatchNorm bn0_;
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
