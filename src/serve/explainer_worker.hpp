// Background explanations: worker threads claim jobs from the store's queue (with a lease, so a
// job of a killed process is taken up again once its lease expires), explain the flagged clip
// against its neighbours and attach the explanation to the event.
//
// Methods: "acoustic" (measured evidence of the clip against its nearest references, phrased by
// asdcap's offline explainer or, with --llm openai, by an OpenAI-compatible LLM from the acoustic
// prompt, exactly as `asdcap explain --method acoustic` does) and "none" (no explanation jobs).
#pragma once
#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "asdcap/evidence.hpp"
#include "asdcap/llm.hpp"
#include "serve/metrics.hpp"
#include "serve/store.hpp"

namespace asdcap::serve {

struct ExplainerOptions {
  std::string llm = "offline";  // "offline" | "openai"
  LlmOptions llm_options;
  int workers = 1;
  int lease_seconds = 120;
  std::string worker_name;  // identifies this process's workers in the job table
};

class ExplainerWorker {
 public:
  ExplainerWorker(Store& store, Metrics& metrics, ExplainerOptions options);
  ~ExplainerWorker();
  ExplainerWorker(const ExplainerWorker&) = delete;
  ExplainerWorker& operator=(const ExplainerWorker&) = delete;
  void start();
  void wake();  // a job was queued
  void stop();

  // Explains one event (exposed for tests): the explanation object as JSON text. Throws Error when
  // the clip cannot be measured or the LLM fails.
  std::string explain(const EventRecord& e);

 private:
  void run(int worker);
  const ClipEvidence& reference_evidence(const std::string& path);

  Store& store_;
  Metrics& metrics_;
  ExplainerOptions options_;
  std::vector<std::thread> threads_;
  std::atomic<bool> stopping_{false};
  std::mutex wake_mu_;
  std::condition_variable wake_cv_;
  std::mutex cache_mu_;
  std::map<std::string, ClipEvidence> reference_cache_;  // by audio path (reference files never change)
};

}  // namespace asdcap::serve
