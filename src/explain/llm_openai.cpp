#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <functional>
#include <nlohmann/json.hpp>
#include <thread>

#include "asdcap/error.hpp"
#include "asdcap/llm.hpp"

namespace asdcap {

namespace {

using Clock = std::chrono::steady_clock;

std::string trim(const std::string& s) {
  const char* ws = " \t\r\n";
  size_t b = s.find_first_not_of(ws);
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

void set_timeout(double seconds, const std::function<void(time_t, time_t)>& setter) {
  seconds = std::max(seconds, 0.001);
  const auto sec = static_cast<time_t>(seconds);
  setter(sec, static_cast<time_t>(std::lround((seconds - sec) * 1e6)));
}

// Retry-After (RFC 9110): delta-seconds, or an HTTP date (IMF-fixdate, "Sun, 06 Nov 1994 08:49:37
// GMT") turned into seconds from now (0 if past). -1 when absent or unreadable.
double retry_after_seconds(const httplib::Response& res) {
  if (!res.has_header("Retry-After")) return -1;
  const std::string v = trim(res.get_header_value("Retry-After"));
  if (v.empty()) return -1;
  if (v.find_first_not_of("0123456789.") == std::string::npos) return std::strtod(v.c_str(), nullptr);
  std::tm tm{};
  const char* end = strptime(v.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (!end || *end != '\0') return -1;
  const double until = static_cast<double>(timegm(&tm)) - static_cast<double>(std::time(nullptr));
  return std::max(0.0, until);
}

// The server's own words about an error, if its body is the usual {"error":{"message":...}}.
std::string server_message(const std::string& body) {
  std::string msg;
  try {
    const auto j = nlohmann::json::parse(body);
    if (j.contains("error")) {
      const auto& e = j["error"];
      if (e.is_object() && e.contains("message") && e["message"].is_string())
        msg = e["message"];
      else if (e.is_string())
        msg = e.get<std::string>();
    }
  } catch (const nlohmann::json::exception&) {
    msg = body;
  }
  msg = trim(msg);
  if (msg.size() > 300) msg = msg.substr(0, 300) + "...";
  return msg;
}

bool transient_status(int status) { return status == 408 || status == 429 || status >= 500; }

bool transient_transport(httplib::Error e) {
  switch (e) {
    case httplib::Error::SSLServerVerification:
    case httplib::Error::SSLLoadingCerts:
    case httplib::Error::UnsupportedMultipartBoundaryChars:
    case httplib::Error::ExceedRedirectCount: return false;
    default: return true;
  }
}

std::string parse_answer(const std::string& body, std::string* model) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(body);
  } catch (const nlohmann::json::exception&) {
    throw FormatError("the response is not JSON");
  }
  if (!j.is_object() || !j.contains("choices") || !j["choices"].is_array() || j["choices"].empty())
    throw FormatError("the response has no \"choices\"");
  const auto& choice = j["choices"][0];
  if (!choice.is_object() || !choice.contains("message") || !choice["message"].is_object() ||
      !choice["message"].contains("content") || !choice["message"]["content"].is_string())
    throw FormatError("the response has no choices[0].message.content string");
  if (j.contains("model") && j["model"].is_string()) *model = j["model"];
  return trim(choice["message"]["content"].get<std::string>());
}

}  // namespace

std::string redact_secret(std::string text, const std::string& secret) {
  if (secret.empty()) return text;
  for (size_t pos = text.find(secret); pos != std::string::npos; pos = text.find(secret, pos))
    text.replace(pos, secret.size(), "[redacted]");
  return text;
}

LlmOptions llm_options_from_env(LlmOptions defaults) {
  if (const char* url = std::getenv("OPENAI_BASE_URL"); url && *url) defaults.base_url = url;
  if (const char* key = std::getenv("OPENAI_API_KEY"); key && *key) defaults.api_key = key;
  return defaults;
}

OpenAiClient::OpenAiClient(LlmOptions options) : options_(std::move(options)) {
  const std::string& url = options_.base_url;
  const size_t sep = url.find("://");
  const std::string scheme = sep == std::string::npos ? "" : url.substr(0, sep);
  if (scheme != "http" && scheme != "https")
    throw InvalidArgument("OPENAI_BASE_URL must start with http:// or https:// (got \"" +
                          redact_secret(url, options_.api_key) + "\")");
  const size_t path_at = url.find('/', sep + 3);
  const std::string authority =
      url.substr(sep + 3, path_at == std::string::npos ? std::string::npos : path_at - sep - 3);
  if (authority.find('@') != std::string::npos)
    throw InvalidArgument("OPENAI_BASE_URL must not contain credentials; put the key in OPENAI_API_KEY");
  if (authority.empty()) throw InvalidArgument("OPENAI_BASE_URL has no host");
  origin_ = scheme + "://" + authority;
  std::string prefix = path_at == std::string::npos ? "" : url.substr(path_at);
  while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
  path_ = prefix + "/chat/completions";
  if (options_.max_retries < 0) options_.max_retries = 0;
}

LlmReply OpenAiClient::complete(const std::string& prompt) const {
  nlohmann::json body = {{"model", options_.model},
                         {"messages", nlohmann::json::array({{{"role", "user"}, {"content", prompt}}})}};
  if (options_.temperature >= 0) body["temperature"] = options_.temperature;
  if (options_.max_tokens > 0) body["max_tokens"] = options_.max_tokens;
  const std::string payload = body.dump();

  httplib::Headers headers = {{"Accept", "application/json"}};
  if (!options_.api_key.empty()) headers.emplace("Authorization", "Bearer " + options_.api_key);

  const auto start = Clock::now();
  const std::string where = "POST " + endpoint();
  std::string last_problem;
  for (int attempt = 1;; ++attempt) {
    httplib::Client client(origin_);
    set_timeout(options_.connect_timeout_s, [&](time_t s, time_t us) { client.set_connection_timeout(s, us); });
    set_timeout(options_.timeout_s, [&](time_t s, time_t us) { client.set_read_timeout(s, us); });
    set_timeout(options_.timeout_s, [&](time_t s, time_t us) { client.set_write_timeout(s, us); });
    client.set_keep_alive(false);

    double wait = -1;
    auto res = client.Post(path_, headers, payload, "application/json");
    if (!res) {
      last_problem = "no answer (" + httplib::to_string(res.error()) + ")";
      if (!transient_transport(res.error()))
        throw NetworkError(redact_secret(where + ": " + last_problem, options_.api_key));
    } else if (res->status >= 200 && res->status < 300) {
      LlmReply reply;
      reply.model = options_.model;
      try {
        reply.answer = parse_answer(res->body, &reply.model);
      } catch (const FormatError& e) {
        throw NetworkError(redact_secret(where + ": malformed chat completion (" + e.what() + ")", options_.api_key));
      }
      reply.attempts = attempt;
      reply.seconds = std::chrono::duration<double>(Clock::now() - start).count();
      return reply;
    } else {
      const std::string msg = server_message(res->body);
      last_problem = "HTTP " + std::to_string(res->status) + (msg.empty() ? "" : ": " + msg);
      if (!transient_status(res->status))
        throw NetworkError(
            redact_secret(where + ": the server refused the request, " + last_problem, options_.api_key));
      wait = std::min(retry_after_seconds(*res), options_.max_retry_after_s);
    }
    if (attempt > options_.max_retries)
      throw NetworkError(redact_secret(
          where + ": gave up after " + std::to_string(attempt) + " attempts, last: " + last_problem, options_.api_key));
    if (wait < 0) wait = std::min(options_.backoff_s * std::pow(2.0, attempt - 1), options_.max_backoff_s);
    std::this_thread::sleep_for(std::chrono::duration<double>(std::max(wait, 0.0)));
  }
}

}  // namespace asdcap
