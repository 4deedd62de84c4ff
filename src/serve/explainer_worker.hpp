// Background explanations: worker threads claim jobs from the store's queue (with a lease, so a
// job of a killed process is taken up again once its lease expires), explain the flagged clip
// against its neighbours and attach the explanation to the event.
//
// The methods are `asdcap explain`'s, run by its stages (src/explain/stages.hpp) on the event's
// clip and the machine's stored references: "acoustic" (measured evidence), and with an msclap
// model file "text" (captions of the clip and its neighbours), "zeroshot" (similarities to the
// reference texts) and "combined"; each phrased by asdcap's offline explainer or, with --llm openai,
// by an OpenAI-compatible LLM from the method's prompt. The event's explanation carries
// explain's record of the clip (explanations.jsonl's line) under "record".
#pragma once
#include <atomic>
#include <condition_variable>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "asdcap/evidence.hpp"
#include "asdcap/explain.hpp"
#include "serve/metrics.hpp"
#include "serve/store.hpp"

namespace asdcap::explain_detail {
struct Plan;
class ClapInputStage;
}  // namespace asdcap::explain_detail

namespace asdcap::serve {

struct ExplainerOptions {
  // explain's settings that apply to one clip: methods (at least one; "all" expands), model_path
  // (msclap, for text / zeroshot / combined), llm and llm_options, texts, templates, caption_prompt,
  // combined_evidence, threads (the CLAP model's). The run-folder settings are not used.
  ExplainOptions explain;
  int workers = 1;
  int lease_seconds = 120;
  std::string worker_name;  // identifies this process's workers in the job table
  // Reference clips whose measured evidence stays in memory between explanations (about 30-55 KB
  // each), the least recently used dropped first; a dropped one is measured again when needed. The
  // same bound holds for the references' captions and audio embeddings (CLAP methods, about 4 KB
  // each), which are computed again when needed.
  size_t reference_cache_clips = 4096;
};

class ExplainerWorker {
 public:
  // Opens what the methods need (the CLAP model, the LLM client). Throws InvalidArgument when a
  // method cannot run with these options (naming the method and why), ModelError / IoError when the
  // model file cannot be used. attach() gives it the store and metrics before start() or explain():
  // serve opens the models before it creates anything in its data folder.
  explicit ExplainerWorker(ExplainerOptions options);
  ExplainerWorker(Store& store, Metrics& metrics, ExplainerOptions options) : ExplainerWorker(std::move(options)) {
    attach(store, metrics);
  }
  void attach(Store& store, Metrics& metrics) {
    store_ = &store;
    metrics_ = &metrics;
  }
  // The checks that need no model opened (the LLM back end, the method names, a model file given and
  // of the msclap kind where a method needs one); expands "all" and drops repeated methods. Throws
  // InvalidArgument.
  static void check_options(ExplainerOptions& options);
  ~ExplainerWorker();
  ExplainerWorker(const ExplainerWorker&) = delete;
  ExplainerWorker& operator=(const ExplainerWorker&) = delete;
  void start();
  void wake();  // a job was queued
  void stop();

  // Explains one event (exposed for tests): the explanation object as JSON text. Throws Error when
  // the clip cannot be measured or no method gave an answer (the LLM failed, captions could not be
  // made).
  std::string explain(const EventRecord& e);
  // Reference clips whose evidence is in memory now (at most options.reference_cache_clips).
  size_t cached_reference_clips();
  // Reference clips whose captions or audio embeddings are in memory now (at most the same).
  size_t cached_clap_clips();

 private:
  void run(int worker);
  std::shared_ptr<const ClipEvidence> reference_evidence(const std::string& path);

  Store* store_ = nullptr;  // attach()
  Metrics* metrics_ = nullptr;
  ExplainerOptions options_;
  std::unique_ptr<explain_detail::Plan> plan_;            // methods, texts, the CLAP model, the LLM client
  std::mutex clap_mu_;                                    // the CLAP model runs one clip at a time
  std::unique_ptr<explain_detail::ClapInputStage> clap_;  // remembers the references' captions and embeddings
  std::vector<std::thread> threads_;
  std::atomic<bool> stopping_{false};
  std::mutex wake_mu_;
  std::condition_variable wake_cv_;
  // The references' measured evidence by audio path (reference files never change), least recently
  // used first in lru_.
  std::mutex cache_mu_;
  std::list<std::string> lru_;
  std::map<std::string, std::pair<std::shared_ptr<const ClipEvidence>, std::list<std::string>::iterator>>
      reference_cache_;
};

}  // namespace asdcap::serve
