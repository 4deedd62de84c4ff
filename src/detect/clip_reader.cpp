#include "detect/clip_reader.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <new>

#include "asdcap/error.hpp"
#include "core/files.hpp"
#include "core/parallel.hpp"
#include "core/progress.hpp"

namespace asdcap {

namespace {

enum class Status { Pending, Done, Failed };

bool all_finite(const std::vector<float>& v) {
  return std::all_of(v.begin(), v.end(), [](float x) { return std::isfinite(x); });
}

// Clips read per block: enough to keep every thread busy, few enough that a block's audio is small.
constexpr int kClipsPerThread = 4;

}  // namespace

// A clip's content hash and, per target, its crop, cache key and embedding (or why it has none).
struct ClipReader::ClipState {
  std::string sha256;
  struct Target {
    Status status = Status::Pending;
    CropPolicy crop;
    std::string key;
    std::vector<float> embedding;
    std::string error;
  };
  std::vector<Target> targets;
  bool pending() const {
    return std::any_of(targets.begin(), targets.end(), [](const Target& t) { return t.status == Status::Pending; });
  }
  void fail_pending(const std::string& why) {
    for (auto& t : targets)
      if (t.status == Status::Pending) {
        t.status = Status::Failed;
        t.error = why;
      }
  }
};

ClipReader::ClipReader(const std::vector<const Clip*>& clips, std::vector<KnnTarget> targets,
                       const DetectOptions& options)
    : clips_(clips), targets_(std::move(targets)), hits_(targets_.size(), 0), options_(options) {
  state_.resize(clips_.size());
  for (size_t i = 0; i < clips_.size(); ++i) {
    index_[clips_[i]] = i;
    state_[i] = std::make_unique<ClipState>();
    state_[i]->targets.resize(targets_.size());
  }
  if (targets_.empty()) return;
  std::vector<std::string> identities;
  for (const auto& t : targets_) identities.push_back(t.backend->identity());
  std::vector<std::atomic<int>> hits(targets_.size());
  parallel_for(options_.threads, static_cast<int64_t>(clips_.size()), [&](int64_t item) {
    if (options_.cancelled && options_.cancelled()) return;
    ClipState& st = *state_[static_cast<size_t>(item)];
    try {
      st.sha256 = sha256_file(clips_[static_cast<size_t>(item)]->path);
      for (size_t t = 0; t < targets_.size(); ++t) {
        ClipState::Target& ts = st.targets[t];
        ClipCrop resolved = resolve_clip_crop(targets_[t].crop, st.sha256);
        ts.crop = resolved.policy;
        ts.key = std::move(resolved.cache_key);
        auto cached = targets_[t].cache->get(st.sha256, identities[t], ts.key);
        if (cached && cached->size() == static_cast<size_t>(targets_[t].backend->dim())) {
          ts.embedding = std::move(*cached);
          ts.status = Status::Done;
          hits[t].fetch_add(1);
        }
      }
    } catch (const Error& e) {
      st.fail_pending(e.what());
    }
  });
  for (size_t t = 0; t < targets_.size(); ++t) hits_[t] = hits[t].load();
}

ClipReader::~ClipReader() = default;

void ClipReader::embed_one(size_t clip, size_t target, const std::vector<float>& signal) {
  ClipState& st = *state_[clip];
  ClipState::Target& ts = st.targets[target];
  const KnnTarget& kt = targets_[target];
  const std::string& path = clips_[clip]->path;
  std::vector<float> emb;
  try {
    emb = kt.backend->embed(signal, ts.crop);
    if (emb.size() != static_cast<size_t>(kt.backend->dim()))
      throw FormatError(path + ": embedding has the wrong size");
    if (!all_finite(emb)) throw FormatError(path + ": embedding is not finite");
  } catch (const Error& e) {
    ts.status = Status::Failed;
    ts.error = e.what();
    return;
  } catch (const std::bad_alloc&) {
    ts.status = Status::Failed;
    ts.error = path + ": out of memory while embedding";
    return;
  }
  kt.cache->put(st.sha256, kt.backend->identity(), ts.key, emb);  // a cache that cannot be written stops the run
  ts.embedding = std::move(emb);
  ts.status = Status::Done;
}

void ClipReader::read(const std::vector<const Clip*>& clips, const std::string& label, const ClipUse& use,
                      std::vector<std::string>& errors) {
  errors.assign(clips.size(), std::string());
  const auto stopped = [this] { return options_.cancelled && options_.cancelled(); };
  const int threads = resolve_threads(options_.threads);
  const size_t block = static_cast<size_t>(std::max(1, threads) * kClipsPerThread);
  std::atomic<bool> fatal{false};
  Progress progress(label, static_cast<int64_t>(clips.size()));
  for (size_t b0 = 0; b0 < clips.size() && !fatal.load() && !stopped(); b0 += block) {
    const size_t b1 = std::min(clips.size(), b0 + block);
    // The signals, by sample rate, that the targets which embed one clip at a time still need.
    std::vector<std::map<int, std::vector<float>>> signals(b1 - b0);
    std::vector<ClipState*> states(b1 - b0, nullptr);
    std::vector<size_t> indices(b1 - b0, 0);
    std::vector<int> native_rates(b1 - b0, 0);
    // Decoding, rate conversion and the targets that embed clips in parallel.
    parallel_for(options_.threads, static_cast<int64_t>(b1 - b0), [&](int64_t item) {
      const auto k = static_cast<size_t>(item);
      const size_t i = b0 + k;
      if (fatal.load() || stopped()) return;
      const Clip* c = clips[i];
      if (auto it = index_.find(c); it != index_.end()) {
        indices[k] = it->second;
        states[k] = state_[it->second].get();
      }
      ClipState* st = states[k];
      if (!use && !(st && st->pending())) {
        progress.tick();
        return;
      }
      DecodedAudio audio;
      bool decoded = false;
      try {
        if (options_.on_decode) options_.on_decode(c->path);
        audio = decode_audio(c->path);
        decoded = true;
        native_rates[k] = audio.info.sample_rate;
        if (use) use(i, audio);
      } catch (const Error& e) {
        errors[i] = e.what();
      } catch (const std::bad_alloc&) {
        errors[i] = c->path + ": out of memory while decoding";
      }
      if (st && !decoded) st->fail_pending(errors[i]);
      if (st && st->pending()) {
        for (size_t t = 0; t < targets_.size(); ++t) {
          if (st->targets[t].status != Status::Pending) continue;
          const int rate = targets_[t].backend->sample_rate();
          const int key = rate == 0 ? audio.info.sample_rate : rate;
          const std::vector<float>* signal = nullptr;
          try {
            auto found = signals[k].find(key);
            if (found == signals[k].end())
              found = signals[k].emplace(key, audio_signal(audio, rate, options_.channels)).first;
            signal = &found->second;
          } catch (const Error& e) {
            st->targets[t].status = Status::Failed;
            st->targets[t].error = e.what();
          } catch (const std::bad_alloc&) {
            st->targets[t].status = Status::Failed;
            st->targets[t].error = c->path + ": out of memory while decoding";
          }
          if (!signal || !targets_[t].backend->thread_safe_embed()) continue;
          try {
            embed_one(indices[k], t, *signal);  // only a cache that cannot be written throws
          } catch (...) {
            fatal = true;
            throw;
          }
        }
      }
      if (!(st && st->pending())) signals[k].clear();
      progress.tick();
    });
    // The targets that embed one clip at a time, spreading its work over the threads themselves.
    for (size_t k = 0; k < b1 - b0 && !stopped(); ++k) {
      ClipState* st = states[k];
      if (!st) continue;
      for (size_t t = 0; t < targets_.size(); ++t) {
        if (st->targets[t].status != Status::Pending) continue;
        const int rate = targets_[t].backend->sample_rate();
        auto found = signals[k].find(rate == 0 ? native_rates[k] : rate);
        if (found == signals[k].end()) continue;  // not read: the run was cancelled
        embed_one(indices[k], t, found->second);
      }
      signals[k].clear();
    }
  }
}

void ClipReader::read_remaining() {
  std::vector<const Clip*> pending;
  for (size_t i = 0; i < clips_.size(); ++i)
    if (state_[i]->pending()) pending.push_back(clips_[i]);
  if (pending.empty()) return;
  std::vector<std::string> errors;
  read(pending, "embedding", {}, errors);
}

Embedded ClipReader::take(size_t t) {
  Embedded out;
  for (size_t i = 0; i < clips_.size(); ++i) {
    ClipState::Target& ts = state_[i]->targets[t];
    if (ts.status == Status::Done)
      out.embeddings[clips_[i]] = std::move(ts.embedding);
    else if (ts.status == Status::Failed)
      out.failures[clips_[i]] = ts.error;
  }
  out.cache_hits = hits_[t];
  return out;
}

}  // namespace asdcap
