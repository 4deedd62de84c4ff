// Detection's reading of clips for one or several systems at once (asdcap compare): every clip is
// decoded once, each distinct sample rate the systems need is converted once from that decode, and
// the one decode feeds every k-NN system still missing the clip's embedding as well as a machine
// scorer's features (ClipReadFn). Clips are read in blocks, so only a block's audio is in memory.
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "asdcap/audio.hpp"
#include "asdcap/backend.hpp"
#include "asdcap/dataset.hpp"
#include "asdcap/detect.hpp"
#include "detect/embedding_cache.hpp"

namespace asdcap {

// A system's clip embeddings (or, from a machine scorer, its scores too).
struct Embedded {
  std::map<const Clip*, std::vector<float>> embeddings;
  std::map<const Clip*, std::string> failures;  // clip -> why it has no embedding
  int cache_hits = 0;
  // From a backend's machine scorer: every embedded clip's score (training clips too) and the
  // models it trained or loaded. No scores: the score is the k-NN distance.
  std::map<const Clip*, double> scores;
  int models_trained = 0, models_cached = 0;
};

// Reads clips: decodes clips[i] and calls use(i, audio) with it; errors[i] gets why the clip could
// not be decoded or used (an Error's message), and stays empty otherwise. `label` names the
// progress bar. When the run is cancelled the clips not yet read are left without either.
using ClipUse = std::function<void(size_t, const DecodedAudio&)>;
using ClipReadFn = std::function<void(const std::vector<const Clip*>& clips, const std::string& label,
                                      const ClipUse& use, std::vector<std::string>& errors)>;

// One k-NN system of the run: its backend, the crop it applies and its run folder's cache.
struct KnnTarget {
  EmbeddingBackend* backend = nullptr;
  CropPolicy crop;
  EmbeddingCache* cache = nullptr;
};

class ClipReader {
 public:
  // Looks every clip of `clips` up in every target's cache (each file hashed once). `options`
  // gives the threads, the channel mode, the cancel and on_decode callbacks.
  ClipReader(const std::vector<const Clip*>& clips, std::vector<KnnTarget> targets, const DetectOptions& options);
  ~ClipReader();
  ClipReader(const ClipReader&) = delete;
  ClipReader& operator=(const ClipReader&) = delete;

  // The ClipReadFn: decodes each clip once, hands it to `use` (may be empty) and embeds it for
  // every target that still misses it. Throws what stops the run (a cache that cannot be written).
  void read(const std::vector<const Clip*>& clips, const std::string& label, const ClipUse& use,
            std::vector<std::string>& errors);
  // Reads the clips some target still misses (none read before, or all of them cached).
  void read_remaining();
  // Target t's embeddings (moved out) and failures over every clip, and its cache hits.
  Embedded take(size_t t);

 private:
  struct ClipState;
  void embed_one(size_t clip, size_t target, const std::vector<float>& signal);

  std::vector<const Clip*> clips_;
  std::map<const Clip*, size_t> index_;
  std::vector<KnnTarget> targets_;
  std::vector<std::unique_ptr<ClipState>> state_;  // per clip of clips_
  std::vector<int> hits_;                          // per target
  const DetectOptions& options_;
};

}  // namespace asdcap
