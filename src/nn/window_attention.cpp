// Swin window attention with the cyclic shift and window partition done by index arithmetic: the
// relative position bias and shift mask, the split of a map into window jobs, PatchMerging.
#include <algorithm>
#include <cmath>
#include <vector>

#include "asdcap/error.hpp"
#include "asdcap/nn.hpp"
#include "core/parallel.hpp"
#include "window_kernels.hpp"

namespace asdcap::nn {

std::vector<float> relative_position_bias(const float* table, int64_t window, int64_t heads) {
  const int64_t t = window * window, span = 2 * window - 1;
  std::vector<float> bias(static_cast<size_t>(heads * t * t));
  for (int64_t i = 0; i < t; ++i) {
    for (int64_t j = 0; j < t; ++j) {
      const int64_t dr = i / window - j / window + window - 1;
      const int64_t dc = i % window - j % window + window - 1;
      const float* entry = table + (dr * span + dc) * heads;
      for (int64_t h = 0; h < heads; ++h) bias[static_cast<size_t>((h * t + i) * t + j)] = entry[h];
    }
  }
  return bias;
}

std::vector<float> shifted_window_mask(int64_t height, int64_t width, int64_t window, int64_t shift) {
  // Regions of the rolled map: [0, L - window), [L - window, L - shift), [L - shift, L) per axis.
  auto region = [window, shift](int64_t pos, int64_t len) {
    return pos < len - window ? 0 : (pos < len - shift ? 1 : 2);
  };
  const int64_t t = window * window, wins_w = width / window;
  const int64_t n_windows = (height / window) * wins_w;
  std::vector<float> mask(static_cast<size_t>(n_windows * t * t));
  std::vector<int> id(static_cast<size_t>(t));
  for (int64_t w = 0; w < n_windows; ++w) {
    const int64_t r0 = (w / wins_w) * window, c0 = (w % wins_w) * window;
    for (int64_t i = 0; i < t; ++i)
      id[static_cast<size_t>(i)] =
          static_cast<int>(region(r0 + i / window, height) * 3 + region(c0 + i % window, width));
    float* m = mask.data() + w * t * t;
    for (int64_t i = 0; i < t; ++i)
      for (int64_t j = 0; j < t; ++j)
        m[i * t + j] = id[static_cast<size_t>(i)] == id[static_cast<size_t>(j)] ? 0.f : -100.f;
  }
  return mask;
}

namespace {

// As PyTorch: head_dim ** -0.5 computed in double, applied as a float multiplier.
float attention_scale(int64_t head_dim) { return static_cast<float>(std::pow(static_cast<double>(head_dim), -0.5)); }

}  // namespace

WindowAttention::WindowAttention(const WindowGeometry& g, const float* table) : g_(g) {
  const int64_t ws = g.window, t = g.tokens();
  if (ws <= 0 || g.height <= 0 || g.width <= 0 || g.height % ws || g.width % ws || g.heads <= 0 ||
      g.channels % g.heads || g.shift < 0 || g.shift >= ws)
    throw ModelError("window attention: grid " + std::to_string(g.height) + "x" + std::to_string(g.width) +
                     " does not fit window " + std::to_string(ws) + " / heads " + std::to_string(g.heads) +
                     " / shift " + std::to_string(g.shift));
  const int64_t hd = g.channels / g.heads;
  if (hd > 256) throw ModelError("window attention: head size " + std::to_string(hd) + " > 256 is not supported");
  kernel_ = static_cast<int>(window::choose(t, hd, g.height * g.width * 3 * g.channels, kernel_set()));
  std::vector<float> bias = relative_position_bias(table, ws, g.heads);  // [h][query][key]
  if (window::layout_of(static_cast<window::Kernel>(kernel_)) == window::Layout::kKeyMajor) {
    bias_.resize(bias.size());
    for (int64_t h = 0; h < g.heads; ++h)
      for (int64_t i = 0; i < t; ++i)
        for (int64_t j = 0; j < t; ++j)
          bias_[static_cast<size_t>((h * t + j) * t + i)] = bias[static_cast<size_t>((h * t + i) * t + j)];
  } else {
    bias_ = std::move(bias);
  }
  if (g.shift > 0) {
    mask_ = shifted_window_mask(g.height, g.width, ws, g.shift);
    masked_.resize(static_cast<size_t>(g.num_windows()));
    for (int64_t w = 0; w < g.num_windows(); ++w) {
      const float* m = mask_.data() + w * t * t;
      masked_[static_cast<size_t>(w)] = std::any_of(m, m + t * t, [](float v) { return v != 0.f; });
    }
  }
}

void WindowAttention::forward(int threads, const float* qkv, int64_t batch, float* out) const {
  const WindowGeometry& g = g_;
  const int64_t ws = g.window, t = g.tokens(), hd = g.channels / g.heads;
  const int64_t wins_w = g.width / ws, per_clip = g.num_windows(), hw = g.height * g.width;
  const auto kernel = static_cast<window::Kernel>(kernel_);
  // Jobs are (window, group of heads): a map of few windows (HTSAT's last stage has one) still
  // keeps every thread busy. Heads are independent, so the split does not change any value.
  const int64_t windows = batch * per_clip, t_threads = resolve_threads(threads);
  const int64_t groups = std::min(g.heads, std::max<int64_t>(1, (2 * t_threads + windows - 1) / windows));
  const int64_t per_group = (g.heads + groups - 1) / groups;
  const float scale = attention_scale(hd);
  // Token i of window w on the map rolled by -shift is token (r + shift, c + shift) of the original.
  auto window_rows = [&](int64_t win, int64_t* rows) {
    const int64_t b = win / per_clip, w = win % per_clip;
    const int64_t r0 = (w / wins_w) * ws, c0 = (w % wins_w) * ws;
    for (int64_t i = 0; i < t; ++i) {
      const int64_t r = (r0 + i / ws + g.shift) % g.height, col = (c0 + i % ws + g.shift) % g.width;
      rows[i] = b * hw + r * g.width + col;
    }
  };
  // One contiguous range of jobs per thread (thread i the i-th): the windows of its own rows.
  const int64_t jobs = windows * groups, per_thread = (jobs + t_threads - 1) / t_threads;
  parallel_chunks(
      threads, jobs, per_thread,
      [&](int64_t begin, int64_t end) {
        thread_local std::vector<float> scratch;
        thread_local std::vector<int64_t> rows_buffer;
        rows_buffer.resize(static_cast<size_t>(2 * t));
        int64_t* rows = rows_buffer.data();
        int64_t* next_rows = rows + t;
        window_rows(begin / groups, rows);
        for (int64_t job_id = begin; job_id < end; ++job_id) {
          const int64_t win = job_id / groups, group = job_id % groups;
          const int64_t b = win / per_clip, w = win % per_clip;
          // The next window's qkv rows are requested while this one is computed (they come from L3 or
          // the other core: the qkv GEMM wrote them).
          const bool next_window = job_id + 1 < end && (job_id + 1) / groups != win;
          if (next_window) window_rows(win + 1, next_rows);
          const int64_t h0 = group * per_group, h1 = std::min(g.heads, h0 + per_group);
          // Windows inside one region of the rolled map have an all-zero mask: none is added (s + 0 == s).
          const bool masked = !masked_.empty() && masked_[static_cast<size_t>(w)];
          const window::Job job{qkv,
                                rows,
                                b * hw,
                                bias_.data(),
                                masked ? mask_.data() + w * t * t : nullptr,
                                out,
                                g.channels,
                                hd,
                                h0,
                                h1,
                                t,
                                scale,
                                next_window ? next_rows : nullptr};
          if (h0 < h1) {
            switch (kernel) {
              case window::Kernel::kAvx512_64:
                scratch.resize(static_cast<size_t>(window::avx512_scratch_floats(hd)));
                window::attend_avx512_64(job, scratch.data());
                break;
              case window::Kernel::kAvx64: window::attend_avx_64(job, scratch); break;
              default: window::attend_generic(job, scratch); break;
            }
          }
          if (next_window) std::swap(rows, next_rows);
        }
      },
      Schedule::kStatic);
}

void patch_merge_norm(int threads, const float* x, int64_t batch, int64_t height, int64_t width, int64_t channels,
                      const float* gamma, const float* beta, float eps, float* out) {
  const int64_t h2 = height / 2, w2 = width / 2, c = channels;
  parallel_chunks(
      threads, batch * h2, 1,
      [&](int64_t begin, int64_t end) {
        for (int64_t br = begin; br < end; ++br) {
          const int64_t b = br / h2, r = br % h2;
          for (int64_t col = 0; col < w2; ++col) {
            float* dst = out + ((b * h2 + r) * w2 + col) * 4 * c;
            // Order of torch.cat([x0, x1, x2, x3]): (2r, 2c), (2r+1, 2c), (2r, 2c+1), (2r+1, 2c+1).
            const int64_t base = b * height * width;
            const float* src[4] = {
                x + (base + (2 * r) * width + 2 * col) * c, x + (base + (2 * r + 1) * width + 2 * col) * c,
                x + (base + (2 * r) * width + 2 * col + 1) * c, x + (base + (2 * r + 1) * width + 2 * col + 1) * c};
            for (int k = 0; k < 4; ++k) std::copy(src[k], src[k] + c, dst + k * c);
          }
          float* row = out + (b * h2 + r) * w2 * 4 * c;
          layer_norm(threads, row, w2, 4 * c, gamma, beta, eps, row);  // a whole output row: four tokens at a time
        }
      },
      Schedule::kStatic);
}

}  // namespace asdcap::nn
