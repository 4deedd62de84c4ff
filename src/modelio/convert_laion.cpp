// LAION-CLAP training checkpoints (630k-audioset-best.pt and the like) -> asdcap-laion model files.
#include <cmath>
#include <cstring>
#include <deque>
#include <filesystem>
#include <map>
#include <random>
#include <set>

#include "asdcap/error.hpp"
#include "asdcap/laion.hpp"
#include "core/files.hpp"
#include "half.hpp"
#include "mapped_file.hpp"
#include "model_writer.hpp"
#include "modelio/gguf.hpp"
#include "modelio/packed_layout.hpp"
#include "schema.hpp"

namespace asdcap {
namespace {

bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }
bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

using TensorIndex = std::map<std::string, const CheckpointTensor*>;

const CheckpointTensor& need(const TensorIndex& m, const std::string& name, size_t ndim, const std::string& file) {
  auto it = m.find(name);
  if (it == m.end()) throw ModelError(file + ": not a LAION-CLAP checkpoint: tensor " + name + " missing");
  if (it->second->shape.size() != ndim)
    throw ModelError(file + ": tensor " + name + " has shape " + format_shape(it->second->shape) + ", expected " +
                     std::to_string(ndim) + " dimensions");
  return *it->second;
}

int dim(int64_t v, const std::string& what, const std::string& file) {
  if (v <= 0 || v > (1 << 22)) throw ModelError(file + ": implausible " + what + " " + std::to_string(v));
  return static_cast<int>(v);
}

float scalar(const CheckpointTensor& t, const std::string& file) {
  CheckpointTensor c = t;
  if (c.data.size() != dtype_size(c.dtype)) throw ModelError(file + ": " + t.name + " is not a scalar");
  modelio::convert_float_dtype(c, DType::F32);
  float v = 0;
  std::memcpy(&v, c.data.data(), sizeof v);
  return v;
}

// Blocks of Swin stage i: block j exists while its norm1.weight does.
int count_blocks(const TensorIndex& m, int stage) {
  int j = 0;
  while (m.count("audio_branch.layers." + std::to_string(stage) + ".blocks." + std::to_string(j) + ".norm1.weight"))
    ++j;
  return j;
}

// What a state-dict tensor becomes in the model file.
enum class Role { Audio, Text, Scale, Skip, Stft, Unexpected };

Role role_of(const std::string& name, const std::set<std::string>& audio) {
  if (audio.count(name) || name == "audio_branch.head.weight" || name == "audio_branch.head.bias") return Role::Audio;
  if (ends_with(name, ".num_batches_tracked") || name == "text_branch.embeddings.position_ids") return Role::Skip;
  if (name == "audio_branch.spectrogram_extractor.stft.conv_real.weight" ||
      name == "audio_branch.spectrogram_extractor.stft.conv_imag.weight")
    return Role::Stft;
  if (name == "logit_scale_a" || name == "logit_scale_t") return Role::Scale;
  for (const char* p : {"text_branch.", "text_transform.", "text_projection.", "audio_transform."})
    if (starts_with(name, p)) return Role::Text;
  return Role::Unexpected;
}

void write_laion_file(const std::string& path, const LaionConfig& c, const std::vector<CheckpointTensor>& tensors,
                      const std::string& source, const std::string& source_sha256, bool int8 = false) {
  GgufWriter w(64);
  w.set_string("general.architecture", modelio::kLaionArchitecture);
  w.set_string("general.name", "LAION-CLAP HTSAT");
  bool any_f16 = false, any_bf16 = false;
  for (const auto& t : tensors) any_f16 |= t.dtype == DType::F16, any_bf16 |= t.dtype == DType::BF16;
  w.set_uint32("general.file_type", modelio::gguf_file_type(any_f16, any_bf16));
  modelio::write_laion_config(w, c);
  w.set_string(std::string(modelio::kLaionPrefix) + "converter", std::string("asdcap ") +
#ifdef ASDCAP_VERSION
                                                                     ASDCAP_VERSION
#else
                                                                     "0.1"
#endif
  );
  w.set_string(std::string(modelio::kLaionPrefix) + "source.checkpoint.file", source);
  w.set_string(std::string(modelio::kLaionPrefix) + "source.checkpoint.sha256", source_sha256);
  std::deque<std::vector<char>> packed;  // the packed tensors' bytes until the file is written
  w.set_int(modelio::kFormatVersionKey, modelio::kFormatVersion);
  for (const auto& t : tensors) {
    if (const auto out_dim = modelio::laion_packed_out_dim(t.name))
      modelio::add_packed_tensor(w, t.name, t.dtype, t.shape, t.data.data(), t.data.size(), *out_dim, packed, int8);
    else
      w.add_tensor(t.name, t.dtype, t.shape, t.data.data(), t.data.size());
  }
  w.write_file(path);
}

}  // namespace

LaionConfig infer_laion_config(const std::vector<CheckpointTensor>& tensors, const std::string& file) {
  TensorIndex m;
  for (const auto& t : tensors) m[t.name] = &t;
  for (const auto& t : tensors)
    if (starts_with(t.name, "audio_branch.fusion_model.") || starts_with(t.name, "audio_branch.mel_conv2d."))
      throw ModelError(file + ": a LAION-CLAP fusion model (tensor " + t.name +
                       "): only enable_fusion=False models are supported");
  LaionConfig c;
  HtsatConfig& h = c.audio;
  const CheckpointTensor& pe = need(m, "audio_branch.patch_embed.proj.weight", 4, file);
  h.embed_dim = dim(pe.shape[0], "embed_dim", file);
  h.in_chans = dim(pe.shape[1], "input channels", file);
  h.patch = dim(pe.shape[2], "patch size", file);
  h.depths.clear();
  h.heads.clear();
  for (int i = 0; count_blocks(m, i) > 0; ++i) {
    h.depths.push_back(count_blocks(m, i));
    const CheckpointTensor& table =
        need(m, "audio_branch.layers." + std::to_string(i) + ".blocks.0.attn.relative_position_bias_table", 2, file);
    h.heads.push_back(dim(table.shape[1], "head count", file));
    if (i == 0) {  // stage 0's window is the configured one (later stages may clamp it to their grid)
      const auto span = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(table.shape[0]))));
      if (span * span != table.shape[0] || span % 2 == 0)
        throw ModelError(file + ": " + table.name + " has " + std::to_string(table.shape[0]) +
                         " rows, not (2 window - 1)^2");
      h.window = static_cast<int>((span + 1) / 2);
    }
  }
  if (h.depths.empty()) throw ModelError(file + ": not a LAION-CLAP checkpoint: no audio_branch.layers.0.blocks.0");
  h.mlp_ratio =
      dim(need(m, "audio_branch.layers.0.blocks.0.mlp.fc1.weight", 2, file).shape[0] / h.embed_dim, "mlp ratio", file);
  h.num_features = dim(need(m, "audio_branch.norm.weight", 1, file).shape[0], "num_features", file);
  h.num_classes = dim(need(m, "audio_branch.tscam_conv.weight", 4, file).shape[0], "class count", file);
  c.mel_bins = dim(need(m, "audio_branch.logmel_extractor.melW", 2, file).shape[1], "mel bins", file);
  c.n_fft = dim((need(m, "audio_branch.logmel_extractor.melW", 2, file).shape[0] - 1) * 2, "FFT size", file);
  c.joint_dim = dim(need(m, "audio_projection.2.weight", 2, file).shape[0], "embedding size", file);
  if (m.count("text_branch.embeddings.word_embeddings.weight")) {
    const CheckpointTensor& words = need(m, "text_branch.embeddings.word_embeddings.weight", 2, file);
    c.text_vocab = dim(words.shape[0], "text vocabulary", file);
    c.text_hidden = dim(words.shape[1], "text width", file);
    c.text_positions =
        dim(need(m, "text_branch.embeddings.position_embeddings.weight", 2, file).shape[0], "text positions", file);
    while (m.count("text_branch.encoder.layer." + std::to_string(c.text_layers) + ".attention.self.query.weight"))
      ++c.text_layers;
    if (c.text_layers)
      c.text_intermediate = dim(need(m, "text_branch.encoder.layer.0.intermediate.dense.weight", 2, file).shape[0],
                                "text intermediate size", file);
  }
  c.logit_scale_a = scalar(need(m, "logit_scale_a", 0, file), file);
  c.logit_scale_t = scalar(need(m, "logit_scale_t", 0, file), file);
  modelio::check_laion_config(c, file);

  for (const TensorSpec& s : modelio::laion_audio_tensors(c)) {
    auto it = m.find(s.name);
    if (it == m.end()) throw ModelError(file + ": LAION-CLAP checkpoint lacks tensor " + s.name);
    const CheckpointTensor& t = *it->second;
    if (t.shape != s.shape)
      throw ModelError(file + ": tensor " + s.name + " has shape " + format_shape(t.shape) + ", expected " +
                       format_shape(s.shape) + " for the HTSAT sizes of the other tensors");
    const bool ok = s.dtype == DType::I64 ? t.dtype == DType::I64
                                          : t.dtype == DType::F32 || t.dtype == DType::F16 || t.dtype == DType::BF16 ||
                                                t.dtype == DType::F64;
    if (!ok) throw ModelError(file + ": tensor " + s.name + " is " + dtype_name(t.dtype) + ", expected a float tensor");
  }
  return c;
}

LaionConvertReport convert_laion(const LaionConvertOptions& opts) {
  if (opts.checkpoint.empty()) throw InvalidArgument("LAION-CLAP conversion: no checkpoint given");
  if (opts.out.empty()) throw InvalidArgument("LAION-CLAP conversion: no output file given");
  if (opts.dtype != DType::F32 && opts.dtype != DType::F16 && opts.dtype != DType::BF16 && opts.dtype != DType::I8)
    throw InvalidArgument("LAION-CLAP conversion: the storage type must be f32, f16, bf16 or int8");
  // Only the state dict's storages are read: the optimiser state's are never touched.
  std::vector<CheckpointTensor> all = read_torch_checkpoint(opts.checkpoint);
  LaionConvertReport r;
  r.config = infer_laion_config(all, opts.checkpoint);
  std::set<std::string> audio;
  for (const TensorSpec& s : modelio::laion_audio_tensors(r.config)) audio.insert(s.name);
  std::vector<CheckpointTensor> keep;
  std::vector<std::string> unexpected;
  for (CheckpointTensor& t : all) {
    const Role role = role_of(t.name, audio);
    if (role == Role::Unexpected) {
      unexpected.push_back(t.name);
      continue;
    }
    if (role == Role::Skip || role == Role::Stft) {
      if (role == Role::Stft)
        modelio::check_stft(t, ends_with(t.name, "conv_imag.weight"), r.config.n_fft, opts.checkpoint);
      r.skipped.push_back(t.name);
      continue;
    }
    if (t.dtype != DType::I64) {
      if (t.dtype != DType::F32 && t.dtype != DType::F16 && t.dtype != DType::BF16 && t.dtype != DType::F64)
        throw ModelError(opts.checkpoint + ": tensor " + t.name + " is " + dtype_name(t.dtype) +
                         ", not a float tensor");
      modelio::convert_float_dtype(t, modelio::converted_dtype(opts.dtype, f16_eligible(t.name, t.shape),
                                                               modelio::laion_packed_out_dim(t.name).has_value()));
    }
    if (role == Role::Scale) t.shape = {1};
    (role == Role::Text ? r.text_tensors : r.audio_tensors)++;
    keep.push_back(std::move(t));
  }
  if (!unexpected.empty()) {
    std::string list;
    for (size_t i = 0; i < unexpected.size() && i < 8; ++i) list += (i ? ", " : "") + unexpected[i];
    throw ModelError(opts.checkpoint + ": not a LAION-CLAP state dict: unexpected tensors " + list +
                     (unexpected.size() > 8 ? ", ... (" + std::to_string(unexpected.size()) + " in all)" : ""));
  }
  write_laion_file(opts.out, r.config, keep, std::filesystem::path(opts.checkpoint).filename().string(),
                   sha256_file(opts.checkpoint), opts.dtype == DType::I8);
  return r;
}

void write_random_laion_model(const std::string& path, const LaionConfig& cfg, DType dtype, uint64_t seed) {
  modelio::check_laion_config(cfg, path);
  std::mt19937_64 rng(seed);
  std::vector<CheckpointTensor> tensors;
  for (const TensorSpec& s : modelio::laion_audio_tensors(cfg)) {
    CheckpointTensor t;
    t.name = s.name;
    t.dtype = s.dtype;
    t.shape = s.shape;
    int64_t n = 1;
    for (int64_t d : s.shape) n *= d;
    t.data.resize(static_cast<size_t>(n) * dtype_size(s.dtype));
    if (s.dtype == DType::I64) {  // index buffers: not read by asdcap, zero
      tensors.push_back(std::move(t));
      continue;
    }
    std::vector<float> v(static_cast<size_t>(n));
    const bool norm_weight = ends_with(s.name, "norm.weight") || ends_with(s.name, "norm1.weight") ||
                             ends_with(s.name, "norm2.weight") || ends_with(s.name, "bn0.weight");
    if (ends_with(s.name, "melW")) {  // a triangular bank over the bins (the values do not matter for timing)
      const int64_t bins = s.shape[0], mels = s.shape[1];
      for (int64_t k = 0; k < bins; ++k) v[static_cast<size_t>(k * mels + k * mels / bins)] = 1e-3f;
    } else if (ends_with(s.name, "running_var")) {
      std::uniform_real_distribution<float> d(100.f, 900.f);
      for (auto& x : v) x = d(rng);
    } else if (ends_with(s.name, "running_mean")) {
      std::uniform_real_distribution<float> d(-50.f, -10.f);
      for (auto& x : v) x = d(rng);
    } else if (norm_weight) {
      std::uniform_real_distribution<float> d(0.5f, 1.5f);
      for (auto& x : v) x = d(rng);
    } else if (ends_with(s.name, "attn_mask")) {
      // left zero: the shifted windows' masks are computed by asdcap, not read
    } else {
      int64_t fan_in = 1;
      for (size_t k = 1; k < s.shape.size(); ++k) fan_in *= s.shape[k];
      std::normal_distribution<float> d(0.f, s.shape.size() < 2 ? 0.05f : 1.f / std::sqrt(static_cast<float>(fan_in)));
      for (auto& x : v) x = d(rng);
    }
    std::memcpy(t.data.data(), v.data(), t.data.size());
    if (dtype == DType::F16 && f16_eligible(t.name, t.shape)) modelio::convert_float_dtype(t, DType::F16);
    tensors.push_back(std::move(t));
  }
  write_laion_file(path, cfg, tensors, "random (seed " + std::to_string(seed) + ")", "");
}

bool is_laion_model_file(const std::string& path) {
  modelio::MappedFile f(path);
  return GgufView::architecture(f.data(), f.size(), path) == modelio::kLaionArchitecture;
}

}  // namespace asdcap
