// Audio files -> CLAP outputs, windows of several files batched together.
#include "asdcap/audio.hpp"
#include "asdcap/clap.hpp"
#include "asdcap/files.hpp"

namespace asdcap {

namespace {

CropPolicy crop_for_file(const CropPolicy& crop, const std::string& path) {
  if (crop.kind != CropPolicy::Kind::Random || crop.seeded) return crop;
  CropPolicy c = crop;
  c.seeded = true;
  c.seed = std::stoull(sha256_file(path).substr(0, 16), nullptr, 16);
  return c;
}

void average_into(std::vector<float>& acc, const std::vector<float>& v, bool first) {
  if (first) {
    acc = v;
    return;
  }
  for (size_t i = 0; i < acc.size(); ++i) acc[i] += v[i];
}

}  // namespace

std::vector<AudioEncoder::Output> encode_files(const AudioEncoder& encoder, const std::vector<std::string>& paths,
                                               const CropPolicy& crop, ChannelMode channels,
                                               const std::function<void()>& on_file_done) {
  std::vector<AudioEncoder::Output> results(paths.size());
  // Pending windows (with the file each belongs to) until a full batch is collected.
  std::vector<std::vector<float>> windows;
  std::vector<size_t> owner;
  std::vector<int> window_count(paths.size(), 0), windows_done(paths.size(), 0);
  auto flush = [&] {
    if (windows.empty()) return;
    std::vector<const float*> ptrs;
    for (const auto& w : windows) ptrs.push_back(w.data());
    const auto outs = encoder.encode(ptrs);
    for (size_t i = 0; i < outs.size(); ++i) {
      const size_t f = owner[i];
      auto& r = results[f];
      const bool first = windows_done[f] == 0;
      average_into(r.embedding, outs[i].embedding, first);
      average_into(r.latent, outs[i].latent, first);
      average_into(r.clipwise, outs[i].clipwise, first);
      if (++windows_done[f] == window_count[f]) {
        const float inv = 1.0f / static_cast<float>(window_count[f]);
        for (auto* v : {&r.embedding, &r.latent, &r.clipwise})
          for (float& x : *v) x *= inv;
        if (on_file_done) on_file_done();
      }
    }
    windows.clear();
    owner.clear();
  };
  for (size_t f = 0; f < paths.size(); ++f) {
    const auto signal = load_audio_44k(paths[f], channels);
    const auto starts = window_starts(static_cast<int64_t>(signal.size()), crop_for_file(crop, paths[f]));
    window_count[f] = static_cast<int>(starts.size());
    for (int64_t s : starts) {
      windows.push_back(window_at(signal, s));
      owner.push_back(f);
    }
    if (windows.size() >= static_cast<size_t>(AudioEncoder::kMaxBatch)) flush();
  }
  flush();
  return results;
}

}  // namespace asdcap
