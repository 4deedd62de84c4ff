#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdlib>
#include <ctime>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "asdcap/error.hpp"
#include "asdcap/llm.hpp"
#include "explain/llm_response.hpp"

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

// What a failed transport means, in words.
std::string transport_problem(httplib::Error e) {
  switch (e) {
    case httplib::Error::Connection: return "cannot connect (no server listening, or the host is unreachable)";
    case httplib::Error::ConnectionTimeout: return "connecting timed out";
    case httplib::Error::Read: return "the connection failed while reading the answer";
    case httplib::Error::Write: return "the connection failed while sending the request";
    default: return "no answer (" + httplib::to_string(e) + ")";
  }
}

// Ends a request that outlasts its deadline: shuts the client's socket down from another thread,
// which makes the blocked read or write return.
class Watchdog {
 public:
  Watchdog(httplib::Client& client, double seconds) {
    thread_ = std::thread([this, &client, seconds] {
      std::unique_lock<std::mutex> lock(mu_);
      if (!cv_.wait_for(lock, std::chrono::duration<double>(seconds), [this] { return done_; })) {
        fired_ = true;
        client.stop();
      }
    });
  }
  ~Watchdog() { finish(); }
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;
  // Stops the watch; true when the deadline had passed.
  bool finish() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      done_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
    return fired_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false, fired_ = false;
  std::thread thread_;
};

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

std::string OpenAiClient::request_settings() const {
  nlohmann::json j = {{"model", options_.model}};
  if (options_.temperature >= 0) j["temperature"] = options_.temperature;
  if (options_.max_tokens > 0) j["max_tokens"] = options_.max_tokens;
  return j.dump();
}

LlmReply OpenAiClient::complete(const std::string& prompt) const {
  nlohmann::json body = {{"model", options_.model},
                         {"messages", nlohmann::json::array({{{"role", "user"}, {"content", prompt}}})}};
  if (options_.temperature >= 0) body["temperature"] = options_.temperature;
  if (options_.max_tokens > 0) body["max_tokens"] = options_.max_tokens;

  httplib::Request request;
  request.method = "POST";
  request.path = path_;
  request.body = body.dump();
  request.headers = {{"Accept", "application/json"}, {"Content-Type", "application/json"}};
  if (!options_.api_key.empty()) request.headers.emplace("Authorization", "Bearer " + options_.api_key);
  std::string received;
  bool too_large = false;
  request.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    if (received.size() + n > options_.max_response_bytes) {
      too_large = true;
      return false;
    }
    received.append(data, n);
    return true;
  };

  const auto start = Clock::now();
  const std::string where = "POST " + endpoint();
  auto fail = [&](const std::string& what) {
    return NetworkError(redact_secret(where + ": " + what, options_.api_key));
  };
  // A server that refused the connection for the last requests gets one attempt, not the retries.
  const int max_retries = *refused_in_a_row_ >= options_.fail_fast_after ? 0 : options_.max_retries;
  std::string last_problem;
  for (int attempt = 1;; ++attempt) {
    httplib::Client client(origin_);
    set_timeout(options_.connect_timeout_s, [&](time_t s, time_t us) { client.set_connection_timeout(s, us); });
    set_timeout(options_.timeout_s, [&](time_t s, time_t us) { client.set_read_timeout(s, us); });
    set_timeout(options_.timeout_s, [&](time_t s, time_t us) { client.set_write_timeout(s, us); });
    client.set_keep_alive(false);

    double wait = -1;
    received.clear();
    too_large = false;
    httplib::Response res;
    httplib::Error error = httplib::Error::Success;
    bool sent = false, timed_out = false;
    {
      Watchdog watchdog(client, std::max(options_.timeout_s, 0.001));
      sent = client.send(request, res, error);
      timed_out = watchdog.finish();
    }
    const bool refused = !sent && error == httplib::Error::Connection;
    if (!refused) *refused_in_a_row_ = 0;
    if (too_large) throw fail("the response is larger than " + std::to_string(options_.max_response_bytes) + " bytes");
    if (timed_out) {
      last_problem = "no complete answer within the timeout of " + std::to_string(options_.timeout_s) + " s";
    } else if (!sent) {
      last_problem = transport_problem(error);
      if (!transient_transport(error)) throw fail(last_problem);
    } else if (res.status >= 200 && res.status < 300) {
      LlmReply reply;
      reply.model = options_.model;
      try {
        reply.answer = explain_detail::parse_chat_completion(received, &reply.model);
      } catch (const FormatError& e) {
        throw fail(std::string("malformed chat completion (") + e.what() + ")");
      }
      reply.attempts = attempt;
      reply.seconds = std::chrono::duration<double>(Clock::now() - start).count();
      return reply;
    } else {
      const std::string msg = server_message(received);
      last_problem = "HTTP " + std::to_string(res.status) + (msg.empty() ? "" : ": " + msg);
      if (!transient_status(res.status)) throw fail("the server refused the request, " + last_problem);
      wait = std::min(retry_after_seconds(res), options_.max_retry_after_s);
    }
    if (attempt > max_retries) {
      if (refused) ++*refused_in_a_row_;
      throw fail("gave up after " + std::to_string(attempt) + " attempt" + (attempt == 1 ? "" : "s") +
                 ", last: " + last_problem);
    }
    if (wait < 0) wait = std::min(options_.backoff_s * std::pow(2.0, attempt - 1), options_.max_backoff_s);
    std::this_thread::sleep_for(std::chrono::duration<double>(std::max(wait, 0.0)));
  }
}

}  // namespace asdcap
