// LLM back ends that turn a prompt into a difference caption.
//   OpenAiClient: any OpenAI-compatible chat-completions server (OpenAI, Azure-compatible
//                 gateways, vLLM, llama.cpp server, Ollama), over http or https.
//   explain_offline: asdcap's deterministic built-in explainer (no network, no model).
#pragma once
#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "asdcap/evidence.hpp"

namespace asdcap {

struct LlmOptions {
  std::string base_url = "https://api.openai.com/v1";  // ".../chat/completions" is appended
  std::string api_key;  // sent as "Authorization: Bearer"; never printed, logged or written
  std::string model;    // required by most servers
  double connect_timeout_s = 10;
  double timeout_s = 120;               // the whole of one attempt: connecting, sending, the answer
  int max_retries = 4;                  // extra attempts after 429, 5xx, 408 and transport errors
  double backoff_s = 1.0;               // first wait; doubles on every retry
  double max_backoff_s = 30;            // cap of the exponential wait
  double max_retry_after_s = 120;       // cap of a server's Retry-After
  double temperature = -1;              // < 0: not sent (server default)
  int max_tokens = 1024;                // <= 0: not sent
  size_t max_response_bytes = 1 << 20;  // a longer response body is refused
  int fail_fast_after = 2;              // after this many requests in a row found no server listening, the
                                        // next ones make one attempt only (no retries)
};

// base_url from OPENAI_BASE_URL (if set and non-empty), api_key from OPENAI_API_KEY.
LlmOptions llm_options_from_env(LlmOptions defaults = {});

struct LlmReply {
  std::string answer;  // choices[0].message.content, surrounding whitespace trimmed, control
                       // characters and terminal escape sequences removed; never empty
  std::string model;   // as reported by the server (else the requested one)
  int attempts = 0;
  double seconds = 0;
};

class OpenAiClient {
 public:
  // Throws InvalidArgument for an unusable base URL (scheme other than http/https, credentials in it).
  explicit OpenAiClient(LlmOptions options);
  // One user message. Throws NetworkError (message never contains the API key) when the server
  // answers 4xx, keeps failing after the retries, sends a body that is not a chat completion, an
  // empty answer or more than max_response_bytes, or when an attempt outlasts timeout_s.
  LlmReply complete(const std::string& prompt) const;
  // What a request sends besides the prompt, as compact JSON (requested model, temperature,
  // max_tokens): with the prompt, the key under which an earlier answer may be reused.
  std::string request_settings() const;
  // scheme://host[:port]/path of the chat-completions endpoint (for messages and records).
  std::string endpoint() const { return origin_ + path_; }
  const LlmOptions& options() const { return options_; }

 private:
  LlmOptions options_;
  std::string origin_;  // scheme://host[:port]
  std::string path_;    // /v1/chat/completions
  // Requests in a row that found no server listening (shared by copies of the client).
  std::shared_ptr<std::atomic<int>> refused_in_a_row_ = std::make_shared<std::atomic<int>>(0);
};

// An answer as it may be shown and stored: control characters (but line breaks and tabs) and
// terminal escape sequences removed, surrounding whitespace trimmed.
std::string clean_answer(const std::string& text);

// Replaces every occurrence of `secret` in `text` by "[redacted]" (no-op for an empty secret).
std::string redact_secret(std::string text, const std::string& secret);

// What a machine type is built of, for the causes the offline explainer may suggest
// (docs/explain.md, "Ranking": the causes by machine type).
struct MachineParts {
  bool flow = false;  // moves air or liquid: its broadband noise is flow noise, a collapse a blocked flow
  bool rotor = true;  // has a main rotor or shaft: a swell or a low tone suggests an unbalanced rotor
  bool gears = true;  // has gears: sidebands suggest gear wear
  bool operator==(const MachineParts&) const = default;
};

// The parts guessed from a type's name, in any case: flow for fan, pump, valve, blower, compressor,
// vacuum, dryer; a rotor for all but valves and slide rails; gears for gearboxes. An empty name is
// unknown: no flow, and the rotor and gear causes hedged.
MachineParts machine_parts_from_name(const std::string& type);

// A declared list: "flow", "rotor", "gears" joined by commas (any subset, any order, no repeats) or
// "none". Throws InvalidArgument naming the list otherwise.
MachineParts parse_machine_parts(const std::string& list);

// What the offline explainer may use: exactly the information the method's prompt carries.
// Absent parts are null.
struct OfflineInput {
  const std::string* anomalous_caption = nullptr;
  const std::vector<std::string>* normal_captions = nullptr;
  const std::vector<std::string>* texts = nullptr;            // reference texts
  const std::vector<double>* anomalous_similarity = nullptr;  // one per text
  const std::vector<std::vector<double>>* normal_similarity = nullptr;
  const std::vector<EvidenceRow>* evidence = nullptr;
  const std::vector<double>* burst_times = nullptr;  // seconds: the anomalous clip's short events
  // The machine type (e.g. "pump"): it decides which causes a phrase may suggest (a blocked flow
  // only for machines that move air or liquid, an unbalanced rotor not for valves or slide rails,
  // gear wear for gearboxes; docs/explain.md). Empty: unknown.
  std::string machine;
  // The parts the user declared for this type; unset: guessed from `machine`.
  std::optional<MachineParts> parts;
};

struct OfflineAnswer {
  std::string answer;              // "This sound is ...", at most 40 words
  std::vector<std::string> named;  // what it names, strongest first: evidence keys,
                                   // "text:<reference text>", "caption"
};

// Ranks the differences (evidence z-scores, similarity z-scores, caption words) and names the
// strongest in plain words. Deterministic.
OfflineAnswer explain_offline(const OfflineInput& input);

// Words in a sentence (split on spaces).
int count_words(const std::string& sentence);

}  // namespace asdcap
