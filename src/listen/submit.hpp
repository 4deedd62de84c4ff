// One clip submitted to `asdcap serve` (internal): POST /v1/machines/TYPE/ID/clips, and what the
// answer means for the clip.
#pragma once
#include <string>

#include "asdcap/listen.hpp"

namespace asdcap::listen {

// Where the server is: "http://HOST:PORT" (or https) and a path prefix ("" or "/under/a/proxy").
struct Endpoint {
  std::string origin, prefix;
};
// InvalidArgument naming the URL unless it is http(s)://HOST[:PORT][/PREFIX].
Endpoint parse_server_url(const std::string& url);

enum class Delivery {
  Scored,        // 2xx: the server has the clip (201 new, 200 an earlier attempt of the same clip)
  Refused,       // 4xx other than 401/403: the clip itself is wrong for the server; not retried
  Unauthorized,  // 401/403: the token; no clip will get through
  Retry,         // no answer, or 5xx: the clip is kept and sent again later
};

struct Answer {
  Delivery delivery = Delivery::Retry;
  ClipOutcome outcome;  // scored: the event's fields; refused: http_status and error
  std::string problem;  // Retry / Unauthorized: what went wrong, one line
};

struct ClipRequest {
  std::string machine_type, machine_id, token;
  std::string name;  // ?name= and the Idempotency-Key "listen:NAME"
  const std::string* wav = nullptr;
  double timeout_s = 60;
};

Answer submit_clip(const Endpoint& server, const ClipRequest& request);

}  // namespace asdcap::listen
