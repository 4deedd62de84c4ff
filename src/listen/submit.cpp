#include "listen/submit.hpp"

#include <httplib.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "asdcap/error.hpp"

namespace asdcap::listen {

namespace {

void set_timeout(double seconds, const std::function<void(time_t, time_t)>& setter) {
  const auto sec = static_cast<time_t>(seconds);
  setter(sec, static_cast<time_t>(std::lround((seconds - static_cast<double>(sec)) * 1e6)));
}

// The server's {"error": "..."} message, or the start of the body.
std::string error_message(const std::string& body) {
  const auto j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_object() && j.contains("error") && j["error"].is_string()) return j["error"].get<std::string>();
  std::string text = body.substr(0, 200);
  for (char& c : text)
    if (c == '\n' || c == '\r') c = ' ';
  return text;
}

}  // namespace

Endpoint parse_server_url(const std::string& url) {
  const bool http = url.rfind("http://", 0) == 0, https = url.rfind("https://", 0) == 0;
  const size_t host_at = http ? 7 : https ? 8 : std::string::npos;
  const size_t slash = host_at == std::string::npos ? std::string::npos : url.find('/', host_at);
  const std::string host = host_at == std::string::npos ? "" : url.substr(host_at, slash - host_at);
  if (host.empty() || host.find_first_of("?#@ ") != std::string::npos)
    throw InvalidArgument("server URL '" + url + "' is not http://HOST:PORT or https://HOST:PORT");
  Endpoint e;
  e.origin = url.substr(0, host_at) + host;
  if (slash != std::string::npos) e.prefix = url.substr(slash);
  while (!e.prefix.empty() && e.prefix.back() == '/') e.prefix.pop_back();
  if (e.prefix.find_first_of("?# ") != std::string::npos)
    throw InvalidArgument("server URL '" + url + "' has a query or fragment");
  return e;
}

Answer submit_clip(const Endpoint& server, const ClipRequest& request) {
  Answer a;
  a.outcome.name = request.name;
  httplib::Client client(server.origin);
  set_timeout(std::min(request.timeout_s, 10.0), [&](time_t s, time_t us) { client.set_connection_timeout(s, us); });
  set_timeout(request.timeout_s, [&](time_t s, time_t us) { client.set_read_timeout(s, us); });
  set_timeout(request.timeout_s, [&](time_t s, time_t us) { client.set_write_timeout(s, us); });
  client.set_keep_alive(false);
  const std::string path =
      server.prefix + "/v1/machines/" + request.machine_type + "/" + request.machine_id + "/clips?name=" + request.name;
  const httplib::Headers headers = {{"Authorization", "Bearer " + request.token},
                                    {"Idempotency-Key", "listen:" + request.name}};
  const httplib::Result r = client.Post(path, headers, *request.wav, "audio/wav");
  if (!r) {
    a.problem = "no answer from " + server.origin + " (" + httplib::to_string(r.error()) + ")";
    return a;
  }
  const int status = r->status;
  a.outcome.http_status = status;
  if (status >= 200 && status < 300) {
    a.delivery = Delivery::Scored;
    a.outcome.scored = true;
    const auto j = nlohmann::json::parse(r->body, nullptr, false);
    try {
      a.outcome.event_id = j.at("event_id").get<long long>();
      a.outcome.score = j.at("score").get<double>();
      if (j.contains("threshold") && j["threshold"].is_number()) a.outcome.threshold = j["threshold"].get<double>();
      a.outcome.label = j.at("label").get<std::string>();
    } catch (const nlohmann::json::exception&) {
      // Stored by the server, but the answer lacks the event's fields: reported, not resent.
      a.outcome.error = "the server's answer (HTTP " + std::to_string(status) + ") is not an event";
    }
    return a;
  }
  const std::string message = "HTTP " + std::to_string(status) + ": " + error_message(r->body);
  if (status == 401 || status == 403) {
    a.delivery = Delivery::Unauthorized;
    a.problem = server.origin + " refused the token (" + message + ")";
  } else if (status < 500) {  // 3xx and 4xx: nothing a resend changes
    a.delivery = Delivery::Refused;
    a.outcome.error = message;
  } else {
    a.problem = server.origin + " answered " + message;
  }
  return a;
}

}  // namespace asdcap::listen
