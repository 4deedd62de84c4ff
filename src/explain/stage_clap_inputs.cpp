// CLAP inputs: "Sounds like ..." captions of a clip and its neighbours, and their audio embeddings'
// similarities to the reference texts. Each file is captioned and embedded once per run.
#include <algorithm>
#include <chrono>

#include "stages.hpp"

namespace asdcap::explain_detail {

namespace {
using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }
}  // namespace

void ClapInputStage::caption_batch(const ScoredClip& clip) {
  std::vector<std::string> paths;
  // The clip asked for is captioned whole; later clips fill the batch up to kCaptionBatch files.
  auto add = [&](const ScoredClip& c, bool whole) {
    auto want = [&](const std::string& p) {
      if ((whole || paths.size() < kCaptionBatch) && !caption_memo_.count(p) &&
          std::find(paths.begin(), paths.end(), p) == paths.end())
        paths.push_back(p);
    };
    want(c.path);
    for (const auto& n : c.neighbors) want(n.path);
  };
  add(clip, true);
  size_t at = cursor_;
  while (at < upcoming_.size() && upcoming_[at].path != clip.path) ++at;
  if (at == upcoming_.size()) at = 0;  // asked out of order: look from the start
  while (at < upcoming_.size() && upcoming_[at].path != clip.path) ++at;
  if (at < upcoming_.size()) {
    cursor_ = at;
    for (size_t i = at + 1; i < upcoming_.size() && paths.size() < kCaptionBatch; ++i) add(upcoming_[i], false);
  }
  if (paths.empty()) return;
  std::vector<std::pair<std::string, std::string>> results;
  try {
    results = plan_.clap->captions(paths, caption_prompt_);
  } catch (const std::exception& e) {
    results.assign(paths.size(), {"", e.what()});
  }
  for (size_t i = 0; i < paths.size(); ++i) {
    caption_memo_[paths[i]] = std::move(results[i]);
    last_use_.try_emplace(paths[i], tick_);
  }
}

const std::pair<std::vector<float>, std::string>& ClapInputStage::embedding_of(const std::string& path) {
  auto it = embedding_memo_.find(path);
  if (it != embedding_memo_.end()) return it->second;
  std::pair<std::vector<float>, std::string> r;
  try {
    r.first = plan_.clap->audio_embedding(path);
  } catch (const std::exception& e) {
    r.second = path + ": " + e.what();
  }
  return embedding_memo_[path] = r;
}

void ClapInputStage::captions(const ScoredClip& clip, ClapInputs& in) {
  in.caption_error.clear();
  caption_batch(clip);
  const auto& a = caption_memo_.at(clip.path);
  if (a.second.empty())
    in.anomalous_caption = a.first;
  else
    in.caption_error = a.second;
  for (const auto& n : clip.neighbors) {
    const auto& c = caption_memo_.at(n.path);
    if (!c.second.empty() && in.caption_error.empty()) in.caption_error = c.second;
    in.normal_captions.push_back(c.first);
  }
  if (!in.caption_error.empty()) in.anomalous_caption.reset();
}

void ClapInputStage::similarities(const ScoredClip& clip, ClapInputs& in) {
  in.similarity_error.clear();
  std::vector<std::string> paths{clip.path};
  for (const auto& n : clip.neighbors) paths.push_back(n.path);
  std::vector<std::vector<float>> audio;
  for (const auto& p : paths) {
    const auto& e = embedding_of(p);
    if (!e.second.empty() && in.similarity_error.empty()) in.similarity_error = e.second;
    audio.push_back(e.first);
  }
  if (!in.similarity_error.empty()) return;
  try {
    auto sims = plan_.clap->similarities(audio, plan_.texts);
    in.anomalous_similarity = sims[0];
    in.normal_similarity.assign(sims.begin() + 1, sims.end());
  } catch (const std::exception& e) {
    in.similarity_error = e.what();
  }
}

void ClapInputStage::forget(const std::string& path) {
  caption_memo_.erase(path);
  embedding_memo_.erase(path);
  last_use_.erase(path);
}

void ClapInputStage::keep_at_most(size_t files) {
  if (last_use_.size() <= files) return;
  std::vector<std::pair<uint64_t, std::string>> by_use;
  for (const auto& [path, tick] : last_use_) by_use.emplace_back(tick, path);
  std::sort(by_use.begin(), by_use.end());
  for (size_t i = 0; i + files < by_use.size(); ++i) forget(by_use[i].second);
}

ClapInputs ClapInputStage::inputs_for(const ScoredClip& clip) {
  ++tick_;
  ClapInputs in;
  in.caption_error = plan_.caption_missing;
  in.similarity_error = plan_.similarity_missing;
  const auto t_captions = Clock::now();
  if (plan_.want_captions && plan_.clap && plan_.caption_missing.empty()) captions(clip, in);
  in.caption_seconds = since(t_captions);
  const auto t_similarity = Clock::now();
  if (plan_.want_similarity && plan_.clap && plan_.similarity_missing.empty()) similarities(clip, in);
  in.similarity_seconds = since(t_similarity);
  // The files this clip needed are the most recently used (keep_at_most drops the others first).
  auto used = [&](const std::string& p) {
    if (caption_memo_.count(p) || embedding_memo_.count(p)) last_use_[p] = tick_;
  };
  used(clip.path);
  for (const auto& n : clip.neighbors) used(n.path);
  return in;
}

}  // namespace asdcap::explain_detail
