#include "serve/explainer_worker.hpp"

#include <chrono>
#include <nlohmann/json.hpp>

#include "asdcap/error.hpp"
#include "asdcap/explain.hpp"
#include "explain/stages.hpp"
#include "run/run_io.hpp"

namespace asdcap::serve {

namespace ed = asdcap::explain_detail;

ExplainerWorker::ExplainerWorker(Store& store, Metrics& metrics, ExplainerOptions options)
    : store_(store), metrics_(metrics), options_(std::move(options)) {
  if (options_.llm != "offline" && options_.llm != "openai")
    throw InvalidArgument("serve: --llm must be offline or openai, not '" + options_.llm + "'");
  if (options_.llm == "openai") OpenAiClient check(options_.llm_options);  // a bad base URL fails now
}

ExplainerWorker::~ExplainerWorker() { stop(); }

void ExplainerWorker::start() {
  for (int i = 0; i < std::max(1, options_.workers); ++i) threads_.emplace_back([this, i] { run(i); });
}

void ExplainerWorker::wake() { wake_cv_.notify_all(); }

void ExplainerWorker::stop() {
  stopping_ = true;
  wake_cv_.notify_all();
  for (auto& t : threads_)
    if (t.joinable()) t.join();
  threads_.clear();
}

void ExplainerWorker::run(int worker) {
  const std::string name = options_.worker_name + "/" + std::to_string(worker);
  while (!stopping_) {
    std::optional<Job> job;
    try {
      job = store_.claim_job(name, options_.lease_seconds);
      metrics_.set("asdcap_explanation_queue_depth", {}, static_cast<double>(store_.queue_depth()));
    } catch (const Error&) {
      job.reset();  // the store is unreachable for now: try again after the pause
    }
    if (!job) {
      std::unique_lock lock(wake_mu_);
      wake_cv_.wait_for(lock, std::chrono::milliseconds(500), [this] { return stopping_.load(); });
      continue;
    }
    bool ok = false;
    std::string result;
    try {
      auto e = store_.event(job->event_id);
      if (!e) throw Error("event " + std::to_string(job->event_id) + " no longer exists");
      result = explain(*e);
      ok = true;
    } catch (const std::exception& ex) {
      result = nlohmann::json{{"error", redact_secret(ex.what(), options_.llm_options.api_key)}}.dump();
    }
    try {
      store_.finish_job(*job, ok, result);
      metrics_.add("asdcap_explanations_total", {{"state", ok ? "done" : "failed"}});
    } catch (const Error&) {
      // The lease expires and another worker (or this one, after a restart) takes the job again.
    }
  }
}

const ClipEvidence& ExplainerWorker::reference_evidence(const std::string& path) {
  {
    std::lock_guard lock(cache_mu_);
    if (auto it = reference_cache_.find(path); it != reference_cache_.end()) return it->second;
  }
  ClipEvidence ev = measure_evidence_file(path);
  std::lock_guard lock(cache_mu_);
  return reference_cache_.emplace(path, std::move(ev)).first->second;  // std::map: references stay valid
}

std::string ExplainerWorker::explain(const EventRecord& e) {
  // The event as detection's record of a flagged clip, its neighbours by their stored audio.
  std::map<int64_t, ReferenceRecord> refs;
  for (auto& r : store_.references(e.machine)) {
    r.embedding.clear();
    refs.emplace(r.id, std::move(r));
  }
  ScoredClip clip;
  clip.file = e.clip_name;
  clip.path = e.audio_path;
  clip.machine = e.machine.type;
  clip.id = e.machine.id;
  clip.label = e.label;
  clip.score = e.score;
  clip.threshold = e.threshold;
  clip.decision = e.label == "anomaly" ? 1 : 0;
  const auto neighbors = nlohmann::json::parse(e.neighbors_json.empty() ? "[]" : e.neighbors_json);
  for (const auto& n : neighbors) {
    auto it = refs.find(n.value("reference_id", int64_t{0}));
    if (it == refs.end()) continue;
    clip.neighbors.push_back({n.value("name", std::string()), it->second.audio_path, n.value("distance", 0.0)});
  }

  // Measured evidence: the clip, its neighbours and the machine's whole reference set.
  ed::EvidenceByPath evidence;
  const ClipEvidence own = measure_evidence_file(e.audio_path);
  std::vector<std::string> pool;
  for (const auto& [id, r] : refs) {
    pool.push_back(r.audio_path);
    ed::MeasuredFile& m = evidence[r.audio_path];
    try {
      m.value = reference_evidence(r.audio_path);
    } catch (const Error& ex) {
      m.error = ex.what();
    }
  }
  const ed::ClipComparison comparison = ed::compare_with_neighbors(clip, own, evidence, pool);

  ExplainOptions eo;
  eo.methods = {"acoustic"};
  eo.llm = options_.llm;
  eo.llm_options = options_.llm_options;
  ed::Plan plan;
  plan.methods = {"acoustic"};
  ed::open_llm(plan, eo);
  const ed::ClapInputs clap;
  ed::MethodPrompt prompt = ed::method_prompt("acoustic", clip, plan, eo, comparison, clap);
  ed::AnswerCounts counts;
  MethodRecord answer = ed::answer("acoustic", clip, prompt, plan, eo, {}, counts);
  if (answer.error) throw NetworkError(*answer.error);
  if (!answer.answer) throw Error(answer.missing_reason.value_or("the acoustic method gave no answer"));

  ExplanationRecord record = ed::make_record(clip, comparison, clap, plan, eo);
  record.methods.push_back({"acoustic", answer});
  const nlohmann::ordered_json full = run_detail::explanation_record_json(record);
  nlohmann::ordered_json out;
  out["method"] = "acoustic";
  out["text"] = *answer.answer;
  out["llm"] = answer.backend;
  out["model"] = answer.model ? nlohmann::ordered_json(*answer.model) : nlohmann::ordered_json(nullptr);
  if (answer.named) out["named"] = *answer.named;
  out["evidence"] = full["evidence"]["features"];
  out["burst_times"] = full["evidence"]["burst_times"];
  out["neighbors"] = full["neighbors"];
  out["prompt"] = answer.prompt ? nlohmann::ordered_json(*answer.prompt) : nlohmann::ordered_json(nullptr);
  return out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace asdcap::serve
