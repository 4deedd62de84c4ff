// HTSAT (msclap 2023 audio encoder) forward pass: bn0, HTSAT image, then the HTSAT tower
// (clap/htsat.hpp: patch embedding, Swin stages, final LayerNorm, token-semantic head) and the CLAP
// projection. See docs/clap.md, "HTSAT, layer by layer".
#include <algorithm>
#include <cmath>
#include <functional>
#include <string>

#include "asdcap/audio.hpp"
#include "asdcap/clap.hpp"
#include "asdcap/error.hpp"
#include "asdcap/nn.hpp"
#include "clap/htsat.hpp"
#include "core/parallel.hpp"
#include "nn/weight_view.hpp"

namespace asdcap {

namespace {
constexpr float kEps = 1e-5f;
}  // namespace

struct AudioEncoder::Impl final : clap::HtsatWeights {
  std::shared_ptr<const ModelFile> model;
  std::string prefix;
  int threads = 0;  // AudioEncoderParams::threads
  HtsatConfig cfg;
  int64_t proj_dim = 0;
  std::vector<float> bn_alpha, bn_beta;  // bn0 as x * alpha + beta (PyTorch's inference form)
  const float* melW = nullptr;
  std::unique_ptr<clap::Htsat> htsat;
  nn::PackedLinear proj1, proj2;  // CLAP projection (no biases)
  const float *proj_g = nullptr, *proj_b = nullptr;

  std::string name(const std::string& rest) const { return prefix + rest; }
  // The full name of a tensor the encoder needs; ModelError naming it if the file lacks it.
  std::string require(const std::string& rest) const {
    std::string full = name(rest);
    if (!model->has(full))
      throw ModelError("model file " + model->path() + " lacks tensor " + full + " (needed by the " +
                       (prefix == "audio." ? "CLAP" : "captioner") + " audio encoder)");
    return full;
  }
  const float* tensor(const std::string& rest, std::initializer_list<int64_t> shape) const {
    return model->f32(require(rest), shape);
  }
  // HtsatWeights: the HTSAT module's tensors are under <prefix>htsat.
  const float* get(const std::string& rest, std::initializer_list<int64_t> shape) const override {
    return tensor("htsat." + rest, shape);
  }
  nn::PackedLinear linear(const std::string& rest, std::initializer_list<int64_t> shape,
                          const float* bias) const override {
    return nn::linear_from(model, require("htsat." + rest), shape, bias);
  }
  const std::string& file() const override { return model->path(); }
  // A Linear layer packed for asdcap's GEMM from weight [out, in] without bias.
  nn::PackedLinear packed(const std::string& weight, std::initializer_list<int64_t> shape) const {
    return nn::linear_from(model, require(weight), shape, nullptr);
  }

  void load();
  // HTSAT latents -> the outputs with msclap's projection.
  void head(const float* fin, int64_t batch, std::vector<Output>& out) const;
  void project(std::vector<float>& latent, std::vector<float>& clipwise, int64_t batch, std::vector<Output>& out) const;
  // HTSAT images -> outputs (thread-safe).
  void encode_group(const float* const* images, int64_t count, Output* out) const;
  // A window's log-mel (audio's front end) -> bn0 -> the HTSAT image.
  std::vector<float> image_of(const float* window, std::vector<float>* logmel, std::vector<float>* bn0) const;
  void apply_bn0(float* frames_by_mel, int64_t frames) const;
};

void AudioEncoder::Impl::load() {
  const ModelConfig& mc = model->config();
  if (prefix == "audio.") {
    if (!mc.has_clap)
      throw ModelError("model file " + model->path() +
                       " has no CLAP model (audio.*): convert CLAP_weights_2023.pth into it (asdcap convert --clap)");
    cfg = mc.audio;
  } else if (prefix == "cap.audio.") {
    if (!mc.has_captioner)
      throw ModelError(
          "model file " + model->path() +
          " has no captioner (cap.*): convert clapcap_weights_2023.pth into it (asdcap convert --clapcap)");
    cfg = mc.cap_audio;
  } else {
    throw InvalidArgument("audio encoder prefix must be \"audio.\" or \"cap.audio.\", not \"" + prefix + "\"");
  }
  proj_dim = mc.proj_dim;
  const auto& fe = mc.front_end;
  if (fe.mel_bins != kMelBins)
    throw ModelError("model file " + model->path() + ": unsupported HTSAT configuration (" +
                     std::to_string(fe.mel_bins) + " mel bins)");
  const int64_t mel = kMelBins;
  const float* bn_w = get("bn0.weight", {mel});
  const float* bn_b = get("bn0.bias", {mel});
  const float* bn_m = get("bn0.running_mean", {mel});
  const float* bn_v = get("bn0.running_var", {mel});
  bn_alpha.resize(mel);
  bn_beta.resize(mel);
  for (int64_t m = 0; m < mel; ++m) {
    // PyTorch (batch_norm_cpu inference): alpha = w / sqrt(var + eps), beta = b - mean * alpha.
    const float inv = 1.0f / std::sqrt(bn_v[m] + kEps);
    bn_alpha[m] = inv * bn_w[m];
    bn_beta[m] = bn_b[m] - bn_m[m] * bn_alpha[m];
  }
  if (model->has(name("htsat.logmel_extractor.melW"))) melW = get("logmel_extractor.melW", {513, mel});
  htsat = std::make_unique<clap::Htsat>(cfg, *this, threads);
  const int64_t c = htsat->latent_dim();
  proj1 = packed("proj.linear1.weight", {proj_dim, c});
  proj2 = packed("proj.linear2.weight", {proj_dim, proj_dim});
  proj_g = tensor("proj.layer_norm.weight", {proj_dim});
  proj_b = tensor("proj.layer_norm.bias", {proj_dim});
}

void AudioEncoder::Impl::project(std::vector<float>& latent, std::vector<float>& clipwise, int64_t batch,
                                 std::vector<Output>& out) const {
  const int64_t c = htsat->latent_dim(), ncls = cfg.num_classes;
  std::vector<float> emb(static_cast<size_t>(batch * proj_dim));
  nn::clap_projection(threads, latent.data(), batch, proj1, proj2, proj_g, proj_b, emb.data());
  for (int64_t b = 0; b < batch; ++b) {
    Output o;
    o.latent.assign(latent.begin() + b * c, latent.begin() + (b + 1) * c);
    o.clipwise.assign(clipwise.begin() + b * ncls, clipwise.begin() + (b + 1) * ncls);
    o.embedding.assign(emb.begin() + b * proj_dim, emb.begin() + (b + 1) * proj_dim);
    out.push_back(std::move(o));
  }
}

void AudioEncoder::Impl::head(const float* fin, int64_t batch, std::vector<Output>& out) const {
  std::vector<float> latent(static_cast<size_t>(batch * htsat->latent_dim()));
  std::vector<float> clipwise(static_cast<size_t>(batch * cfg.num_classes));
  htsat->head(fin, batch, latent.data(), clipwise.data());
  project(latent, clipwise, batch, out);
}

std::vector<float> AudioEncoder::Impl::image_of(const float* window, std::vector<float>* logmel_out,
                                                std::vector<float>* bn0_out) const {
  std::vector<float> mel = log_mel(threads, window, kWindowSamples, melW);
  const int64_t frames = static_cast<int64_t>(mel.size()) / kMelBins;
  if (frames != kWindowFrames)
    throw Error("log_mel returned " + std::to_string(frames) + " frames, expected " + std::to_string(kWindowFrames));
  if (logmel_out) *logmel_out = mel;
  apply_bn0(mel.data(), frames);
  if (bn0_out) *bn0_out = mel;
  return wav_to_image(mel.data());
}

void AudioEncoder::Impl::apply_bn0(float* frames_by_mel, int64_t frames) const {
  for (int64_t f = 0; f < frames; ++f)
    for (int64_t m = 0; m < kMelBins; ++m) {
      float& v = frames_by_mel[f * kMelBins + m];
      v = v * bn_alpha[static_cast<size_t>(m)] + bn_beta[static_cast<size_t>(m)];
    }
}

// The HTSAT tower on the group (see clap::Htsat::encode_group), then the projection on all of it.
void AudioEncoder::Impl::encode_group(const float* const* images, int64_t count, Output* out) const {
  std::vector<float> latent(static_cast<size_t>(count * htsat->latent_dim()));
  std::vector<float> clipwise(static_cast<size_t>(count * cfg.num_classes));
  htsat->encode_group(images, count, latent.data(), clipwise.data());
  std::vector<Output> o;
  project(latent, clipwise, count, o);
  std::move(o.begin(), o.end(), out);
}

// ---------------------------------------------------------------------------------------------

AudioEncoder::AudioEncoder(std::shared_ptr<const ModelFile> model, std::string prefix, AudioEncoderParams params)
    : impl_(std::make_unique<Impl>()) {
  if (!model) throw InvalidArgument("audio encoder: no model file");
  impl_->model = std::move(model);
  impl_->prefix = std::move(prefix);
  impl_->threads = params.threads;
  impl_->load();
}

AudioEncoder::~AudioEncoder() = default;

int AudioEncoder::num_stages() const { return impl_->htsat->num_stages(); }
int64_t AudioEncoder::dim() const { return impl_->proj_dim; }
int64_t AudioEncoder::latent_dim() const { return impl_->htsat->latent_dim(); }
int64_t AudioEncoder::num_classes() const { return impl_->cfg.num_classes; }
const std::string& AudioEncoder::prefix() const { return impl_->prefix; }

std::vector<AudioEncoder::Output> AudioEncoder::encode_images(const std::vector<const float*>& images) const {
  std::vector<Output> out(images.size());
  const int64_t n = static_cast<int64_t>(images.size());
  const int64_t groups = std::min<int64_t>(n, resolve_threads(impl_->threads));
  if (groups >= 2) {
    // One group of windows per thread, each pass single-threaded (the kernels run serially inside a
    // parallel region): no synchronisation per layer.
    parallel_for(impl_->threads, groups, [&](int64_t g) {
      const int64_t first = n * g / groups, last = n * (g + 1) / groups;
      impl_->encode_group(images.data() + first, last - first, out.data() + first);
    });
  } else if (n > 0) {
    impl_->encode_group(images.data(), n, out.data());
  }
  return out;
}

std::vector<AudioEncoder::Output> AudioEncoder::encode(const std::vector<const float*>& windows) const {
  std::vector<Output> out;
  out.reserve(windows.size());
  for (size_t first = 0; first < windows.size(); first += kMaxBatch) {
    const size_t count = std::min<size_t>(kMaxBatch, windows.size() - first);
    std::vector<std::vector<float>> images(count);
    // Front ends in parallel (log_mel is thread-safe).
    parallel_for(impl_->threads, static_cast<int64_t>(count), [&](int64_t i) {
      images[static_cast<size_t>(i)] = impl_->image_of(windows[first + static_cast<size_t>(i)], nullptr, nullptr);
    });
    std::vector<const float*> ptrs;
    for (auto& im : images) ptrs.push_back(im.data());
    auto part = encode_images(ptrs);
    for (auto& o : part) out.push_back(std::move(o));
  }
  return out;
}

AudioEncoder::Trace AudioEncoder::trace(const float* window) const {
  Trace tr;
  tr.image = impl_->image_of(window, &tr.logmel, &tr.bn0);
  tr.patch_embed = patch_embed(tr.image.data(), 1);
  const float* in = tr.patch_embed.data();
  for (int i = 0; i < num_stages(); ++i) {
    tr.stages.push_back(stage(i, in, 1));
    in = tr.stages.back().data();
  }
  tr.final_norm = final_norm(in, 1);
  tr.output = std::move(head(tr.final_norm.data(), 1).front());
  return tr;
}

std::vector<float> AudioEncoder::bn0(const float* logmel, int64_t frames) const {
  std::vector<float> out(logmel, logmel + frames * kMelBins);
  impl_->apply_bn0(out.data(), frames);
  return out;
}

std::vector<float> AudioEncoder::patch_embed(const float* images, int64_t batch) const {
  return impl_->htsat->patch_embed(images, batch);
}

std::vector<float> AudioEncoder::stage(int index, const float* tokens, int64_t batch) const {
  return impl_->htsat->stage(index, tokens, batch);
}

std::vector<float> AudioEncoder::final_norm(const float* tokens, int64_t batch) const {
  return impl_->htsat->final_norm(tokens, batch);
}

std::vector<AudioEncoder::Output> AudioEncoder::head(const float* final_tokens, int64_t batch) const {
  std::vector<Output> out;
  impl_->head(final_tokens, batch, out);
  return out;
}

}  // namespace asdcap
