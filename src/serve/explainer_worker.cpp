#include "serve/explainer_worker.hpp"

#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>

#include "asdcap/backend.hpp"
#include "asdcap/error.hpp"
#include "asdcap/explain.hpp"
#include "explain/stages.hpp"
#include "run/run_io.hpp"

namespace asdcap::serve {

namespace ed = asdcap::explain_detail;

void ExplainerWorker::check_options(ExplainerOptions& o) {
  ExplainOptions& eo = o.explain;
  if (eo.llm != "offline" && eo.llm != "openai")
    throw InvalidArgument("serve: --llm must be offline or openai, not '" + eo.llm + "'");
  if (eo.llm == "openai" && eo.llm_options.model.empty())
    throw InvalidArgument("serve: --llm openai needs --llm-model NAME");
  std::vector<std::string> methods;
  for (const auto& m : eo.methods)
    for (const auto& x : parse_methods(m))
      if (std::find(methods.begin(), methods.end(), x) == methods.end()) methods.push_back(x);
  if (methods.empty()) throw InvalidArgument("serve: no explanation method given");
  eo.methods = methods;
  for (const auto& m : methods)
    if ((ed::needs_captions(m) || ed::needs_similarity(m)) && eo.model_path.empty())
      throw InvalidArgument("--explain " + m + " needs an msclap model file" +
                            (ed::needs_captions(m) ? " with the captioner" : "") +
                            ": --explain-model FILE (or an msclap --model)");
  if (!eo.model_path.empty() && std::any_of(methods.begin(), methods.end(), [](const std::string& m) {
        return ed::needs_captions(m) || ed::needs_similarity(m);
      }))
    if (const std::string backend = backend_for_model_file(eo.model_path); backend != "msclap")
      throw InvalidArgument("--explain-model: " + eo.model_path + " is a " + backend +
                            " model file; the text, zeroshot and combined methods need an msclap model");
}

ExplainerWorker::ExplainerWorker(ExplainerOptions options) : options_(std::move(options)) {
  check_options(options_);
  const ExplainOptions& eo = options_.explain;
  // The crop serve's msclap backend embeds with (a window seeded by the clip's content), no cache:
  // the store keeps the embeddings serve scores with, and the stage below remembers the references'.
  plan_ = std::make_unique<ed::Plan>(ed::make_plan(eo, CropPolicy{}, ChannelMode::Mean, ""));
  for (const auto& m : plan_->methods)
    if (const std::string why = plan_->method_missing(m); !why.empty())
      throw InvalidArgument("--explain " + m + ": " + why);
  clap_ = std::make_unique<ed::ClapInputStage>(*plan_, eo.caption_prompt);
}

ExplainerWorker::~ExplainerWorker() { stop(); }

void ExplainerWorker::start() {
  if (!store_) throw Error("serve: the explanation workers were started without a store");
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
      job = store_->claim_job(name, options_.lease_seconds);
      metrics_->set("asdcap_explanation_queue_depth", {}, static_cast<double>(store_->queue_depth()));
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
      auto e = store_->event(job->event_id);
      if (!e) throw Error("event " + std::to_string(job->event_id) + " no longer exists");
      result = explain(*e);
      ok = true;
    } catch (const std::exception& ex) {
      result = nlohmann::json{{"error", redact_secret(ex.what(), options_.explain.llm_options.api_key)}}.dump();
    }
    try {
      store_->finish_job(*job, ok, result);
      metrics_->add("asdcap_explanations_total", {{"state", ok ? "done" : "failed"}});
    } catch (const Error&) {
      // The lease expires and another worker (or this one, after a restart) takes the job again.
    }
  }
}

std::shared_ptr<const ClipEvidence> ExplainerWorker::reference_evidence(const std::string& path) {
  {
    std::lock_guard lock(cache_mu_);
    if (auto it = reference_cache_.find(path); it != reference_cache_.end()) {
      lru_.splice(lru_.end(), lru_, it->second.second);  // the most recently used now
      return it->second.first;
    }
  }
  auto ev = std::make_shared<const ClipEvidence>(measure_evidence_file(path));
  std::lock_guard lock(cache_mu_);
  if (options_.reference_cache_clips == 0 || reference_cache_.count(path)) return ev;  // (another worker's is kept)
  while (reference_cache_.size() >= options_.reference_cache_clips) {
    reference_cache_.erase(lru_.front());
    lru_.pop_front();
  }
  reference_cache_.emplace(path, std::make_pair(ev, lru_.insert(lru_.end(), path)));
  return ev;
}

size_t ExplainerWorker::cached_reference_clips() {
  std::lock_guard lock(cache_mu_);
  return reference_cache_.size();
}

size_t ExplainerWorker::cached_clap_clips() {
  std::lock_guard lock(clap_mu_);
  return clap_ ? clap_->remembered_files() : 0;
}

std::string ExplainerWorker::explain(const EventRecord& e) {
  if (!store_) throw Error("serve: an explanation was asked for without a store");
  // The event as detection's record of a flagged clip, its neighbours by their stored audio.
  std::map<int64_t, ReferenceRecord> refs;
  for (auto& r : store_->references(e.machine)) {
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
  const auto t0 = std::chrono::steady_clock::now();
  auto since = [](std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
  };
  ed::EvidenceByPath evidence;
  const ClipEvidence own = measure_evidence_file(e.audio_path);
  std::vector<std::string> pool;
  for (const auto& [id, r] : refs) {
    pool.push_back(r.audio_path);
    ed::MeasuredFile& m = evidence[r.audio_path];
    try {
      m.value = *reference_evidence(r.audio_path);
    } catch (const Error& ex) {
      m.error = ex.what();
    }
  }
  const ed::ClipComparison comparison = ed::compare_with_neighbors(clip, own, evidence, pool);
  const double evidence_seconds = since(t0);

  // Captions and similarities: the references' are remembered (their files never change), the
  // clip's are not.
  ed::ClapInputs clap;
  {
    std::lock_guard lock(clap_mu_);
    clap = clap_->inputs_for(clip);
    clap_->forget(clip.path);
    clap_->keep_at_most(options_.reference_cache_clips);
  }
  ed::AnswerCounts counts;
  ExplanationRecord record = ed::explain_record(clip, comparison, clap, *plan_, options_.explain, {}, counts);
  record.timings->evidence_s_all_clips = evidence_seconds;
  record.timings->total_s = since(t0);

  // The summary shows the first method that answered; "record" has every method's.
  const MethodRecord* first = nullptr;
  std::string first_method, problems;
  for (const auto& [m, r] : record.methods) {
    if (r.answer && !first) {
      first = &r;
      first_method = m;
    }
    if (!r.answer)
      problems += (problems.empty() ? "" : "; ") + m + ": " + r.error.value_or(r.missing_reason.value_or("no answer"));
  }
  if (!first) {
    if (counts.n_errors > 0) throw NetworkError(problems);
    throw Error(problems);
  }
  const nlohmann::ordered_json full = run_detail::explanation_record_json(record);
  nlohmann::ordered_json out;
  out["method"] = first_method;
  out["text"] = *first->answer;
  out["llm"] = first->backend;
  out["model"] = first->model ? nlohmann::ordered_json(*first->model) : nlohmann::ordered_json(nullptr);
  if (first->named) out["named"] = *first->named;
  out["evidence"] = full["evidence"]["features"];
  out["burst_times"] = full["evidence"]["burst_times"];
  out["neighbors"] = full["neighbors"];
  out["prompt"] = first->prompt ? nlohmann::ordered_json(*first->prompt) : nlohmann::ordered_json(nullptr);
  out["record"] = full;
  return out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace asdcap::serve
