// The small inference core shared by the audio encoder, the text encoder and the caption decoder.
// Row-major float32 everywhere. Matrix products go through OpenBLAS (cblas_sgemm).
//
// Threads: every kernel that parallelises takes the thread count as its first parameter (0: all
// cores) and splits its work with core/parallel.hpp; inside a parallel region (a caller's
// parallel_for or parallel_chunks) it runs on the calling thread. OpenBLAS itself is kept
// single-threaded, and GEMMs are split by rows at multiples of 48 (OpenBLAS register tiles), so a
// result does not depend on the thread count (bit for bit). Row chunks given to linear_serial should
// be multiples of 48 too.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <utility>
#include <vector>

namespace asdcap::nn {

// The CPU kernel set, chosen once per process at its first use from what the running CPU has (never
// from the machine that built the binary): "avx512" with AVX-512 F/BW/DQ/VL, else "avx2" (AVX2 and
// FMA, the least asdcap runs on). The environment variable ASDCAP_KERNELS=avx2 forces the AVX2
// kernels on an AVX-512 CPU; ASDCAP_KERNELS=avx512 on a CPU without AVX-512, or another value, is an
// InvalidArgument error. The two sets round differently (each within float tolerance of the
// reference models), so embedding caches key on it.
enum class KernelSet { kAvx2, kAvx512 };
KernelSet kernel_set();
const char* kernel_set_name(KernelSet set);
// True when this CPU has AVX2 and FMA, the least asdcap runs on (the CLI checks it first).
bool cpu_has_avx2();

// y[m, n] = x[m, k] · w[n, k]^T + b[n]   (PyTorch nn.Linear layout; b may be null).
// When accumulate is true, y += x · w^T (+ b) instead.
void linear(int threads, const float* x, int64_t m, int64_t k, const float* w, int64_t n, const float* b, float* y,
            bool accumulate = false);

// y[m, n] = x[m, k] · w[k, n] + b[n]   (Hugging Face GPT-2 Conv1D layout; b may be null).
void linear_kn(int threads, const float* x, int64_t m, int64_t k, const float* w, int64_t n, const float* b, float* y,
               bool accumulate = false);

// Row-wise LayerNorm over `dim` (biased variance, as PyTorch). y may alias x.
void layer_norm(int threads, const float* x, int64_t rows, int64_t dim, const float* gamma, const float* beta,
                float eps, float* y);

void gelu_erf(int threads, float* x, int64_t n);   // exact GELU: 0.5 x (1 + erf(x / sqrt 2))
void gelu_tanh(int threads, float* x, int64_t n);  // GPT-2 "gelu_new" (std::tanh's values per element)
void relu(float* x, int64_t n);
void add(float* y, const float* x, int64_t n);  // y += x
// out[j] = q . keys[:, j] for j < n (`keys` transposed: [hd][n]), each summed over e in order from
// 0.f with every product rounded to float before it is added (the plain loop's sums, without
// fused multiply-adds), 8 keys at a time.
void query_key_dots(const float* q, const float* keys, int64_t n, int64_t hd, float* out);

// In-place softmax of each row (max-subtracted, float32 like PyTorch's CPU kernel).
void softmax_rows(int threads, float* x, int64_t rows, int64_t cols);
// x[i] = std::exp(x[i] - shift) for i < n, serially, and their sum accumulated in double in index
// order: the unnormalised half of a softmax over a long row, with exactly the scalar loop's values.
double exp_shifted_sum(float* x, int64_t n, float shift);
// x[i] = std::exp(x[i] - shift) for i < n, serially, with exactly the scalar call's values.
void exp_shifted(float* x, int64_t n, float shift);

// CLAP's projection head (msclap Projection, eval mode), for `rows` vectors at once:
// e1 = x · W1^T; out = LayerNorm(e1 + GELU_erf(e1) · W2^T). W1 [out, in], W2 [out, out], no biases.
void clap_projection(int threads, const float* x, int64_t rows, int64_t in_dim, const float* w1, const float* w2,
                     int64_t out_dim, const float* ln_gamma, const float* ln_beta, float* out);
class PackedLinear;
// The same on packed weights (w1: in -> out, w2: out -> out).
void clap_projection(int threads, const float* x, int64_t rows, const PackedLinear& w1, const PackedLinear& w2,
                     const float* ln_gamma, const float* ln_beta, float* out);

// linear() without any threading, for use inside parallel_chunks.
void linear_serial(const float* x, int64_t m, int64_t k, const float* w, int64_t n, const float* b, float* y,
                   bool accumulate = false);

void sigmoid(int threads, float* x, int64_t n);

// ---- Cache-line aligned buffers --------------------------------------------------------------
// Memory starting on a cache line; blocks of 1 MB and more start on a 2 MB boundary and are offered
// to the kernel as transparent huge pages (weights streamed from memory then cost one TLB entry per
// 2 MB instead of 512).
void* allocate_lines(size_t bytes);
void free_lines(void* p, size_t bytes);
template <typename T>
struct LineAligned {
  using value_type = T;
  LineAligned() = default;
  template <typename U>
  LineAligned(const LineAligned<U>&) {}
  T* allocate(size_t n) { return static_cast<T*>(allocate_lines(n * sizeof(T))); }
  void deallocate(T* p, size_t n) { free_lines(p, n * sizeof(T)); }
  bool operator==(const LineAligned&) const { return true; }
};
// The same, but elements a container adds without a value are left as allocated (not zeroed): for
// buffers that are written in full right after they are sized.
template <typename T>
struct UninitLineAligned : LineAligned<T> {
  using value_type = T;
  UninitLineAligned() = default;
  template <typename U>
  UninitLineAligned(const UninitLineAligned<U>&) {}
  template <typename U>
  struct rebind {
    using other = UninitLineAligned<U>;
  };
  template <typename U>
  void construct(U* p) noexcept {
    ::new (static_cast<void*>(p)) U;
  }
  template <typename U, typename... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
  bool operator==(const UninitLineAligned&) const { return true; }
};
// Floats starting on a cache line: activations whose rows two threads write side by side then
// share no line (no false sharing) when the rows are whole lines.
using AlignedVector = std::vector<float, LineAligned<float>>;

// ---- Packed linear layers (asdcap's own GEMM) -------------------------------------------------
// A Linear layer whose weights are packed once for asdcap's register-blocked kernel; y = x . W^T + b
// with the bias, GELU or residual add applied in registers. Results are bit-identical for any
// thread count, batch size or row split. Used where a model's shapes are narrow (HTSAT), where
// OpenBLAS's per-call packing and C round trips cost more than the arithmetic.
//
// Weights stored as IEEE half or bfloat16 stay so in the panels (half the bytes held and streamed) and
// are widened to float32 in registers: the results are those of the float32 layer on the widened
// weights, bit for bit.
//
// int8 weights (opt-in, `asdcap convert --dtype int8`) are symmetric per output feature: weight (j, p)
// = q[j][p] * scale[j] with q in [-127, 127], in panels of their own (core/panels.hpp, pack_int8). Each
// call quantizes its input rows to int8 too (one scale per row), sums the integer products exactly in
// int32 (VNNI where the CPU has it) and scales once per output, before the bias: a quarter of
// float32's bytes streamed and four products per instruction lane, with the error of both
// quantizations (docs/model-files.md states it).
enum class WeightType { kF32 = 0, kF16 = 1, kBF16 = 2, kI8 = 3 };
struct WeightView {  // a weight matrix as stored: float32 values, the 16-bit patterns of f16/bf16, or int8
  const void* data = nullptr;
  WeightType type = WeightType::kF32;
  const float* scale = nullptr;  // kI8: one scale per output feature (required); otherwise unused
};

// Elements [first, first + count) of a stored weight tensor as float32 (exact for f16 and bf16). For
// kI8 the stored integers q: the weight is q times its output feature's scale (output_scale()).
void widen(WeightView w, int64_t first, int64_t count, float* out);
// The factor of output feature j's stored values: scale[j] for kI8, 1 otherwise.
inline float output_scale(const WeightView& w, int64_t j) { return w.type == WeightType::kI8 ? w.scale[j] : 1.f; }

class PackedLinear {
 public:
  enum class Layout { kOutIn, kInOut };               // w[n, k] (PyTorch Linear) or w[k, n] (GPT-2 Conv1D)
  enum class Epilogue { kNone, kGelu, kAccumulate };  // y = v, y = GELU_erf(v), y += v (v = x.W^T + b)

  PackedLinear() = default;
  PackedLinear(const float* w, int64_t out_features, int64_t in_features, const float* bias,
               Layout layout = Layout::kOutIn)
      : PackedLinear(WeightView{w, WeightType::kF32}, out_features, in_features, bias, layout) {}
  PackedLinear(WeightView w, int64_t out_features, int64_t in_features, const float* bias,
               Layout layout = Layout::kOutIn);
  // The packed layout, the same for every kernel set (and what model files store, docs/model-files.md):
  // panels of kPanelWidth output features, [ceil(n / 48)][k][48] elements of the weight type, the
  // padding of a partial last panel zero.
  static constexpr int64_t kPanelWidth = 48;
  // Bytes of an out x in layer's panels of `type`; ModelError when a size is not positive or too large.
  static size_t panel_bytes(int64_t out_features, int64_t in_features, WeightType type);
  // Packs w into `panels` (panel_bytes() bytes, any alignment), padding included.
  static void pack(WeightView w, int64_t out_features, int64_t in_features, Layout layout, void* panels);
  // A layer computing straight from panels already in the packed layout (panel_bytes() bytes of
  // panels.type, e.g. in a mapped model file): nothing is copied but the bias. `keep` holds the
  // panels' memory alive. Panels not 64-byte aligned are copied (the kernels' loads need the alignment).
  static PackedLinear over_panels(WeightView panels, int64_t out_features, int64_t in_features, const float* bias,
                                  std::shared_ptr<const void> keep);

  int64_t in_features() const { return k_; }
  int64_t out_features() const { return n_; }
  WeightType weight_type() const { return type_; }
  size_t packed_bytes() const { return panel_bytes(n_, k_, type_); }  // the panels' bytes
  bool owns_panels() const { return view_ == nullptr; }               // false: computed from over_panels()' memory

  // x [m, in_features] -> y [m, out_features]; y must not alias x. forward() splits the work over
  // `threads` threads (and runs on the calling thread inside a parallel region, e.g.
  // parallel_chunks); forward_serial() always runs on the calling thread.
  void forward(int threads, const float* x, int64_t m, float* y, Epilogue ep = Epilogue::kNone) const;
  void forward_serial(const float* x, int64_t m, float* y, Epilogue ep = Epilogue::kNone) const;

 private:
  struct Int8Input;  // x quantized for an int8 layer (packed_linear.cpp)
  std::unique_ptr<Int8Input> quantize_input(const float* x, int64_t m) const;  // null for the float types
  void forward_block(const float* x, const Int8Input* xq, int64_t r0, int64_t r1, int64_t panel0, int64_t panel1,
                     float* y, Epilogue ep) const;
  int64_t n_ = 0, k_ = 0;
  KernelSet set_ = KernelSet::kAvx2;  // the kernel set that runs (kernel_set())
  WeightType type_ = WeightType::kF32;
  // Panels of 48 columns (packed::kPanelWidth, for every kernel set), cache-line aligned:
  // a float32 panel row is then whole lines, and no vector load of the kernel is split across two lines.
  // [panel][k][width] of type_, zero-padded; resized without clearing (every byte is then written).
  std::vector<unsigned char, UninitLineAligned<unsigned char>> packed_;
  const unsigned char* view_ = nullptr;  // over_panels(): the panels used where they are
  std::shared_ptr<const void> keep_;     // ... and what keeps them alive
  AlignedVector bias_;                   // [panels * width], zero where absent
  AlignedVector scale_;                  // kI8: [panels * width], the output features' scales (padding 0)
  std::vector<int32_t, LineAligned<int32_t>> column_sums_;  // kI8 on the VNNI kernel: each output's weight sum
  const unsigned char* panels() const { return view_ ? view_ : packed_.data(); }
};

// ---- Swin transformer pieces ----------------------------------------------------------------
// Tokens of an H x W grid are rows n = row * W + col of a [batch * H * W, C] matrix.
struct WindowGeometry {
  int64_t height = 0, width = 0;  // token grid (multiples of window)
  int64_t channels = 0, heads = 0;
  int64_t window = 8;  // window side; T = window^2 tokens per window
  int64_t shift = 0;   // cyclic shift (0 or window / 2)
  int64_t tokens() const { return window * window; }
  int64_t num_windows() const { return (height / window) * (width / window); }
};

// bias[h][i][j] = table[index(i, j)][h] with Swin's relative position index; table [(2w-1)^2, heads].
std::vector<float> relative_position_bias(const float* table, int64_t window, int64_t heads);
// Swin's shifted-window mask, [num_windows][T][T]: 0 within a region, -100 across regions.
std::vector<float> shifted_window_mask(int64_t height, int64_t width, int64_t window, int64_t shift);

// Multi-head attention inside (shifted) windows, as Swin's WindowAttention on the rolled map, with
// the roll and the window partition/reverse done by index arithmetic (no copies of the map). Built
// once per block: the relative position bias and the shift mask are laid out for the kernel that
// this CPU runs. forward(): qkv [batch*H*W, 3C] (q | k | v, heads contiguous) -> out [batch*H*W, C]
// in the original token order; q is scaled by head_dim^-0.5; scores + bias[h] (+ mask) -> softmax
// -> . v. Results do not depend on the thread count.
class WindowAttention {
 public:
  WindowAttention() = default;
  // table: Swin's relative_position_bias_table, [(2 window - 1)^2, heads]. Throws ModelError when
  // the grid, window, heads and shift do not fit together.
  WindowAttention(const WindowGeometry& g, const float* table);
  void forward(int threads, const float* qkv, int64_t batch, float* out) const;

 private:
  WindowGeometry g_;
  int kernel_ = 0;
  std::vector<float> bias_;   // [heads][T][T], query- or key-major per kernel
  std::vector<float> mask_;   // [num_windows][T][T] when shifted (symmetric)
  std::vector<bool> masked_;  // per window: whether its mask has a non-zero entry
};

// Swin PatchMerging up to the Linear: cat(x[0::2,0::2], x[1::2,0::2], x[0::2,1::2], x[1::2,1::2])
// then LayerNorm(4C): x [batch*H*W, C] -> out [batch*(H/2)*(W/2), 4C].
void patch_merge_norm(int threads, const float* x, int64_t batch, int64_t height, int64_t width, int64_t channels,
                      const float* gamma, const float* beta, float eps, float* out);

}  // namespace asdcap::nn
