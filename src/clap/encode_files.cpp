// Audio files -> CLAP outputs, windows of several files batched together.
#include "asdcap/audio.hpp"
#include "asdcap/clap.hpp"
#include "core/files.hpp"

namespace asdcap {

namespace {

// Running means of a clip's window outputs.
struct OutputMean {
  WindowMean embedding, latent, clipwise;
  void add(const AudioEncoder::Output& o) {
    embedding.add(o.embedding);
    latent.add(o.latent);
    clipwise.add(o.clipwise);
  }
  AudioEncoder::Output mean() const { return {embedding.mean(), latent.mean(), clipwise.mean()}; }
};

}  // namespace

AudioEncoder::Output encode_clip(const AudioEncoder& encoder, const std::vector<float>& signal44k,
                                 const CropPolicy& crop) {
  require_windowed_crop(crop, "msclap's audio encoder");
  const auto windows = crop_windows(signal44k, crop);
  std::vector<const float*> ptrs;
  for (const auto& w : windows) ptrs.push_back(w.data());
  OutputMean mean;
  for (const auto& o : encoder.encode(ptrs)) mean.add(o);
  return mean.mean();
}

std::vector<AudioEncoder::Output> encode_files(const AudioEncoder& encoder, const std::vector<std::string>& paths,
                                               const CropPolicy& crop, ChannelMode channels,
                                               const std::function<void()>& on_file_done) {
  require_windowed_crop(crop, "msclap's audio encoder");
  std::vector<AudioEncoder::Output> results(paths.size());
  // Per file: its window outputs' running means (embedding, latent, tags).
  std::vector<OutputMean> means(paths.size());
  // Pending windows (with the file each belongs to) until a full batch is collected.
  std::vector<std::vector<float>> windows;
  std::vector<size_t> owner;
  std::vector<int> window_count(paths.size(), 0);
  auto flush = [&] {
    if (windows.empty()) return;
    std::vector<const float*> ptrs;
    for (const auto& w : windows) ptrs.push_back(w.data());
    const auto outs = encoder.encode(ptrs);
    for (size_t i = 0; i < outs.size(); ++i) {
      const size_t f = owner[i];
      means[f].add(outs[i]);
      if (means[f].embedding.count() == window_count[f]) {
        results[f] = means[f].mean();
        means[f] = {};
        if (on_file_done) on_file_done();
      }
    }
    windows.clear();
    owner.clear();
  };
  for (size_t f = 0; f < paths.size(); ++f) {
    const auto signal = load_audio_44k(paths[f], channels);
    const std::string sha = crop.seeded_from_content() ? sha256_file(paths[f]) : "";
    auto file_windows = crop_windows(signal, resolve_clip_crop(crop, sha).policy);
    window_count[f] = static_cast<int>(file_windows.size());
    for (auto& w : file_windows) {
      windows.push_back(std::move(w));
      owner.push_back(f);
    }
    if (windows.size() >= static_cast<size_t>(AudioEncoder::kMaxBatch)) flush();
  }
  flush();
  return results;
}

}  // namespace asdcap
