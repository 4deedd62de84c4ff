// Answers: the offline explainer, or an LLM, with the answer of an earlier run reused when it
// answered exactly this prompt sent with the same requested model and parameters.
#include <chrono>
#include <filesystem>

#include "asdcap/error.hpp"
#include "stages.hpp"

namespace asdcap::explain_detail {

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

const MethodRecord* reusable_answer(const std::map<std::string, ExplanationRecord>& previous, const std::string& path,
                                    const std::string& method, const std::string& prompt, const OpenAiClient& client) {
  auto it = previous.find(path);
  if (it == previous.end()) return nullptr;
  for (const auto& [name, m] : it->second.methods) {
    if (name != method) continue;
    if (m.prompt != prompt || m.backend != "openai") return nullptr;
    // Keyed on what was sent; a record without the request settings (an older asdcap) by the
    // model name it recorded.
    if (m.request ? *m.request != client.request_settings() : m.model != client.options().model) return nullptr;
    if (!m.answer || m.error) return nullptr;
    return &m;
  }
  return nullptr;
}

}  // namespace

std::map<std::string, ExplanationRecord> previous_records(const std::string& dir, std::vector<std::string>* problems) {
  std::map<std::string, ExplanationRecord> records;
  for (const char* name : {run_files::kExplanations, run_files::kExplanationsPartial}) {
    const std::string path = (std::filesystem::path(dir) / name).string();
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) continue;
    for (auto& r : read_explanations(path, problems)) {
      const std::string key = r.path;
      records[key] = std::move(r);
    }
  }
  return records;
}

MethodRecord answer(const std::string& method, const ScoredClip& clip, MethodPrompt& prompt, const Plan& plan,
                    const ExplainOptions& o, const std::map<std::string, ExplanationRecord>& previous,
                    AnswerCounts& counts) {
  MethodRecord r;
  r.backend = plan.llm_backend;
  r.model = plan.llm_model;
  if (!prompt.missing.empty()) {
    r.missing_reason = prompt.missing;
    return r;
  }
  r.prompt = prompt.prompt;
  const auto t_method = Clock::now();
  if (!plan.client) {
    OfflineAnswer a = explain_offline(prompt.input);
    r.answer = std::move(a.answer);
    r.named = std::move(a.named);
  } else if (const MethodRecord* old = reusable_answer(previous, clip.path, method, prompt.prompt, *plan.client)) {
    r.answer = old->answer;
    r.request = old->request;
    r.reused = true;
    ++counts.n_reused;
  } else {
    r.request = plan.client->request_settings();
    try {
      ++counts.n_llm_requests;
      const LlmReply reply = plan.client->complete(prompt.prompt);
      r.answer = reply.answer;
      r.model = reply.model;
      r.attempts = reply.attempts;
    } catch (const Error& e) {
      r.error = redact_secret(e.what(), o.llm_options.api_key);
      if (counts.first_llm_error.empty()) counts.first_llm_error = *r.error;
      ++counts.n_errors;
    }
  }
  r.seconds = since(t_method);
  return r;
}

}  // namespace asdcap::explain_detail
