#include "serve/http_api.hpp"

#include <httplib.h>

#include <chrono>
#include <cmath>

#include "asdcap/audio.hpp"
#include "asdcap/error.hpp"
#include "core/files.hpp"
#include "report/charts.hpp"
#include "serve/dashboard.hpp"
#include "serve/explainer_worker.hpp"
#include "serve/http_error.hpp"
#include "serve/metrics.hpp"
#include "serve/service.hpp"
#include "serve/views.hpp"

namespace asdcap::serve {

namespace {

using Clock = std::chrono::steady_clock;
using Handler = std::function<void(const httplib::Request&, httplib::Response&)>;

constexpr const char* kJson = "application/json";

void send_json(httplib::Response& res, int status, const Json& j) {
  res.status = status;
  res.set_content(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), kJson);
}

void send_error(httplib::Response& res, int status, const std::string& what) {
  res.status = status;
  res.set_content(error_body(what), kJson);
}

// "type/id" from the captured rest of a /v1/machines/... path: both parts valid names, else 400.
MachineKey machine_of(const std::string& rest) {
  const auto slash = rest.rfind('/');
  MachineKey m;
  if (slash != std::string::npos) m = {rest.substr(0, slash), rest.substr(slash + 1)};
  if (!valid_machine_name(m.type) || !valid_machine_name(m.id))
    throw HttpError(400, "invalid machine type or id (each [A-Za-z0-9][A-Za-z0-9_.-]{0,63})");
  return m;
}

int64_t id_of(const std::string& text, const char* what) {
  try {
    size_t used = 0;
    const long long v = std::stoll(text, &used);
    if (used == text.size() && v > 0) return v;
  } catch (const std::exception&) {
  }
  throw HttpError(400, std::string("invalid ") + what + " '" + text + "'");
}

int limit_of(const httplib::Request& req, int fallback, int max) {
  if (!req.has_param("limit")) return fallback;
  const int64_t v = id_of(req.get_param_value("limit"), "limit");
  return static_cast<int>(std::min<int64_t>(v, max));
}

std::string lower(std::string t) {
  std::transform(t.begin(), t.end(), t.begin(), [](unsigned char c) { return std::tolower(c); });
  return t;
}

std::string media_type(const httplib::Request& req) {
  std::string t = req.get_header_value("Content-Type");
  t = t.substr(0, t.find(';'));
  while (!t.empty() && t.back() == ' ') t.pop_back();
  return lower(t);
}

void require_audio(const httplib::Request& req) {
  const std::string t = media_type(req);
  if (t != "audio/wav" && t != "audio/x-wav" && t != "audio/wave" && t != "audio/vnd.wave" && t != "audio/flac" &&
      t != "audio/x-flac")
    throw HttpError(415, "Content-Type must be audio/wav or audio/flac, not '" + t + "'");
  if (req.body.empty()) throw HttpError(400, "empty body: expected a WAV or FLAC file");
}

Json json_body(const httplib::Request& req) {
  if (media_type(req) != "application/json") throw HttpError(415, "Content-Type must be application/json");
  Json j = Json::parse(req.body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) throw HttpError(400, "malformed JSON body: expected an object");
  return j;
}

std::string audio_mime(const std::string& path) {
  const auto dot = path.rfind('.');
  const std::string ext = dot == std::string::npos ? "" : path.substr(dot + 1);
  if (ext == "wav") return "audio/wav";
  if (ext == "flac") return "audio/flac";
  return "application/octet-stream";
}

void send_file(httplib::Response& res, const std::string& path) {
  const std::vector<char> bytes = read_file(path);
  res.status = 200;
  res.set_content(std::string(bytes.begin(), bytes.end()), audio_mime(path).c_str());
}

void send_spectrogram(httplib::Response& res, const std::string& path) {
  constexpr double kMaxSeconds = 30;
  std::vector<float> x = load_audio_44k(path);
  x.resize(std::min(x.size(), static_cast<size_t>(kMaxSeconds * kSampleRate)));
  const std::vector<float> db = log_mel(1, x.data(), static_cast<int64_t>(x.size()));
  const auto [lo, hi] = report::spectrogram_db_range({&db});
  res.status = 200;
  res.set_header("Cache-Control", "max-age=3600");
  res.set_content(report::spectrogram_png(db, static_cast<int>(db.size() / kMelBins), kMelBins, lo, hi), "image/png");
}

class Api {
 public:
  Api(httplib::Server& http, ApiContext& ctx) : http_(http), ctx_(ctx) {}

  void install() {
    declare_metrics();
    // POST (token) routes.
    post("/v1/machines/(.+)/references/folder", "/v1/machines/{type}/{id}/references/folder",
         [this](const auto& req, auto& res) { enrol_folder(req, res); });
    post("/v1/machines/(.+)/references", "/v1/machines/{type}/{id}/references",
         [this](const auto& req, auto& res) { enrol(req, res); });
    post("/v1/machines/(.+)/clips", "/v1/machines/{type}/{id}/clips",
         [this](const auto& req, auto& res) { submit(req, res); });
    post("/v1/events/([^/]+)/acknowledge", "/v1/events/{id}/acknowledge",
         [this](const auto& req, auto& res) { acknowledge(req, res); });
    post("/v1/events/([^/]+)/false-alarm", "/v1/events/{id}/false-alarm",
         [this](const auto& req, auto& res) { false_alarm(req, res); });
    // GET routes.
    get("/", "/", [](const auto&, auto& res) { res.set_content(dashboard_html(), "text/html; charset=utf-8"); });
    get("/healthz", "/healthz", [this](const auto&, auto& res) {
      send_json(res, 200, {{"status", "ok"}, {"store", store().describe()}});
    });
    get("/metrics", "/metrics", [this](const auto&, auto& res) {
      ctx_.metrics.set("asdcap_explanation_queue_depth", {}, static_cast<double>(store().queue_depth()));
      res.set_content(ctx_.metrics.render(), "text/plain; version=0.0.4; charset=utf-8");
    });
    get("/v1/machines", "/v1/machines", [this](const auto&, auto& res) { machines(res); });
    get("/v1/machines/(.+)/scores", "/v1/machines/{type}/{id}/scores",
        [this](const auto& req, auto& res) { scores(req, res); });
    get("/v1/machines/(.+)", "/v1/machines/{type}/{id}", [this](const auto& req, auto& res) { machine(req, res); });
    get("/v1/events", "/v1/events", [this](const auto& req, auto& res) { events(req, res); });
    get("/v1/events/([^/]+)", "/v1/events/{id}",
        [this](const auto& req, auto& res) { send_json(res, 200, event_json(event_or_404(req.matches[1]), true)); });
    get("/v1/events/([^/]+)/audio", "/v1/events/{id}/audio",
        [this](const auto& req, auto& res) { send_file(res, event_or_404(req.matches[1]).audio_path); });
    get("/v1/events/([^/]+)/spectrogram.png", "/v1/events/{id}/spectrogram.png",
        [this](const auto& req, auto& res) { send_spectrogram(res, event_or_404(req.matches[1]).audio_path); });
    get("/v1/references/([^/]+)/audio", "/v1/references/{id}/audio",
        [this](const auto& req, auto& res) { send_file(res, reference_or_404(req.matches[1]).audio_path); });
    get("/v1/references/([^/]+)/spectrogram.png", "/v1/references/{id}/spectrogram.png",
        [this](const auto& req, auto& res) { send_spectrogram(res, reference_or_404(req.matches[1]).audio_path); });
    get("/v1/updates", "/v1/updates", [this](const auto& req, auto& res) { updates(req, res); });

    // Bodies are read whole before a handler runs, and cpp-httplib bounds only a Content-Length body
    // by --max-upload-mb: a chunked or compressed body (a few kB of gzip inflate to gigabytes) would
    // be read without bound, even without a token. Such requests are refused unread.
    http_.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      const std::string encoding = lower(req.get_header_value("Content-Encoding"));
      if (req.has_header("Transfer-Encoding"))
        send_error(res, 411, "request bodies must have a Content-Length (no Transfer-Encoding)");
      else if (!encoding.empty() && encoding != "identity")
        send_error(res, 415, "compressed request bodies (Content-Encoding: " + encoding + ") are not accepted");
      else
        return httplib::Server::HandlerResponse::Unhandled;
      res.set_header("Connection", "close");  // the body was not read
      count(req.method == "POST" ? "other POST" : "other", res.status);
      return httplib::Server::HandlerResponse::Handled;
    });
    // Errors httplib produces itself (404 no route, 413 too large, 400 bad request) get JSON bodies.
    http_.set_error_handler(
        httplib::Server::HandlerWithResponse([this](const httplib::Request& req, httplib::Response& res) {
          if (res.body.empty()) {
            std::string what = "request failed";
            if (res.status == 404) what = "no such endpoint: " + req.method + " " + req.path;
            if (res.status == 413) what = "request body too large (see --max-upload-mb)";
            if (res.status == 400) what = "bad request";
            if (res.status == 405) what = "method not allowed";
            send_error(res, res.status, what);
            count(req.method == "POST" ? "other POST" : "other", res.status);
          }
          return httplib::Server::HandlerResponse::Handled;
        }));
  }

 private:
  Store& store() { return ctx_.service.store(); }

  void declare_metrics() {
    Metrics& m = ctx_.metrics;
    const std::vector<double> buckets = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
    m.declare("asdcap_clips_scored_total", "Clips scored, per machine.", "counter");
    m.declare("asdcap_clips_flagged_total", "Clips labelled anomaly, per machine.", "counter");
    m.declare("asdcap_request_duration_seconds", "HTTP request duration, per route.", "histogram", buckets);
    m.declare("asdcap_score_duration_seconds", "Time to store, embed and score one clip.", "histogram", buckets);
    m.declare("asdcap_explanation_queue_depth", "Explanation jobs queued or running.", "gauge");
    m.declare("asdcap_explanations_total", "Explanations finished, by state.", "counter");
    m.declare("asdcap_machine_last_score", "Score of the machine's last scored clip.", "gauge");
    m.declare("asdcap_machine_threshold", "The machine's current threshold (NaN: none).", "gauge");
    m.declare("asdcap_http_requests_total", "HTTP requests, per route and status code.", "counter");
  }

  void count(const std::string& route, int status) {
    ctx_.metrics.add("asdcap_http_requests_total", {{"route", route}, {"code", std::to_string(status)}});
  }

  // Runs a handler: errors become {"error"} responses with their status, and the request is counted
  // and timed under its route pattern.
  Handler wrap(const std::string& route, bool needs_token, Handler fn) {
    return [this, route, needs_token, fn](const httplib::Request& req, httplib::Response& res) {
      const auto t0 = Clock::now();
      try {
        if (needs_token) check_token(req);
        fn(req, res);
      } catch (const HttpError& e) {
        send_error(res, e.status(), e.what());
      } catch (const FormatError& e) {
        send_error(res, 422, e.what());
      } catch (const InvalidArgument& e) {
        send_error(res, 400, e.what());
      } catch (const std::bad_alloc&) {
        send_error(res, 503, "out of memory");
      } catch (const std::exception& e) {
        send_error(res, 500, e.what());
        if (ctx_.log) ctx_.log(req.method + " " + route + ": " + e.what());
      }
      count(route, res.status);
      ctx_.metrics.observe("asdcap_request_duration_seconds", {{"route", route}},
                           std::chrono::duration<double>(Clock::now() - t0).count());
    };
  }

  void post(const char* pattern, const std::string& route, Handler fn) { http_.Post(pattern, wrap(route, true, fn)); }
  void get(const char* pattern, const std::string& route, Handler fn) { http_.Get(pattern, wrap(route, false, fn)); }

  void check_token(const httplib::Request& req) {
    const std::string h = req.get_header_value("Authorization");
    const std::string prefix = "Bearer ";
    if (h.size() <= prefix.size() || h.compare(0, prefix.size(), prefix) != 0 ||
        !secrets_equal(h.substr(prefix.size()), ctx_.token))
      throw HttpError(401, "missing or wrong bearer token (Authorization: Bearer TOKEN)");
  }

  EventRecord event_or_404(const std::string& text) {
    auto e = store().event(id_of(text, "event id"));
    if (!e) throw HttpError(404, "no event " + text);
    return *e;
  }

  ReferenceRecord reference_or_404(const std::string& text) {
    auto r = ctx_.service.reference(id_of(text, "reference id"));
    if (!r) throw HttpError(404, "no reference " + text);
    return *r;
  }

  void enrol(const httplib::Request& req, httplib::Response& res) {
    const MachineKey m = machine_of(req.matches[1]);
    require_audio(req);
    const EnrolResult r = ctx_.service.enrol(m, req.body, req.get_param_value("name"), "upload");
    send_json(res, 201,
              {{"reference_id", r.reference_id},
               {"name", r.name},
               {"n_references", r.n_references},
               {"threshold", number_or_null(r.threshold)}});
  }

  void enrol_folder(const httplib::Request& req, httplib::Response& res) {
    const MachineKey m = machine_of(req.matches[1]);
    const Json body = json_body(req);
    if (!body.contains("path") || !body["path"].is_string() || body["path"].get<std::string>().empty())
      throw HttpError(400, "the body needs \"path\": a folder on the server");
    const FolderResult r = ctx_.service.enrol_folder(m, body["path"].get<std::string>());
    Json skipped = Json::array();
    for (const auto& [file, reason] : r.skipped) skipped.push_back({{"file", file}, {"reason", reason}});
    send_json(res, 200,
              {{"enrolled", r.enrolled},
               {"skipped", skipped},
               {"n_references", r.n_references},
               {"threshold", number_or_null(r.threshold)}});
  }

  void submit(const httplib::Request& req, httplib::Response& res) {
    const MachineKey m = machine_of(req.matches[1]);
    require_audio(req);
    const std::string key = req.get_header_value("Idempotency-Key");
    if (key.size() > 200) throw HttpError(400, "Idempotency-Key longer than 200 characters");
    const ScoreResult r = ctx_.service.submit(m, req.body, req.get_param_value("name"), key);
    if (r.created && r.event.explanation_state == "pending" && ctx_.explainer) ctx_.explainer->wake();
    send_json(res, r.created ? 201 : 200, event_json(r.event, false));
  }

  void acknowledge(const httplib::Request& req, httplib::Response& res) {
    const int64_t id = id_of(req.matches[1], "event id");
    if (!store().acknowledge(id)) throw HttpError(404, "no event " + std::to_string(id));
    send_json(res, 200, event_json(event_or_404(req.matches[1]), true));
  }

  void false_alarm(const httplib::Request& req, httplib::Response& res) {
    const int64_t id = id_of(req.matches[1], "event id");
    auto e = ctx_.service.false_alarm(id);
    if (!e) throw HttpError(404, "no event " + std::to_string(id));
    send_json(res, 200, event_json(*e, true));
  }

  void machines(httplib::Response& res) {
    Json list = Json::array();
    for (const auto& s : store().machines()) list.push_back(machine_json(s, ctx_.service.index(s.machine)->threshold));
    send_json(res, 200, {{"machines", list}});
  }

  void machine(const httplib::Request& req, httplib::Response& res) {
    const MachineKey m = machine_of(req.matches[1]);
    for (const auto& s : store().machines()) {
      if (s.machine != m) continue;
      auto idx = ctx_.service.index(m);
      Json j = machine_json(s, idx->threshold);
      Json refs = Json::array();
      for (const auto& r : store().references(m))
        refs.push_back({{"reference_id", r.id}, {"name", r.name}, {"source", r.source}, {"created_at", r.created_at}});
      j["references"] = refs;
      send_json(res, 200, j);
      return;
    }
    throw HttpError(404, "no machine " + m.type + "/" + m.id);
  }

  void scores(const httplib::Request& req, httplib::Response& res) {
    EventFilter f;
    f.machine = machine_of(req.matches[1]);
    if (req.has_param("since")) f.since = req.get_param_value("since");
    f.limit = limit_of(req, 1000, 100000);
    std::vector<EventRecord> events = store().events(f);  // newest first
    Json list = Json::array();
    for (auto it = events.rbegin(); it != events.rend(); ++it)
      list.push_back({{"event_id", it->id},
                      {"created_at", it->created_at},
                      {"score", number_or_null(it->score)},
                      {"threshold", number_or_null(it->threshold)},
                      {"label", it->label},
                      {"status", it->status}});
    send_json(res, 200, {{"scores", list}});
  }

  void events(const httplib::Request& req, httplib::Response& res) {
    EventFilter f;
    const std::string type = req.get_param_value("machine"), id = req.get_param_value("id");
    if (!type.empty() && !valid_machine_name(type)) throw HttpError(400, "invalid machine type '" + type + "'");
    if (!id.empty() && !valid_machine_name(id)) throw HttpError(400, "invalid machine id '" + id + "'");
    if (!id.empty() && type.empty()) throw HttpError(400, "id= needs machine= too");
    if (!id.empty())
      f.machine = MachineKey{type, id};
    else if (!type.empty())
      f.machine_type = type;
    auto opt = [&](const char* name) -> std::optional<std::string> {
      if (!req.has_param(name) || req.get_param_value(name).empty()) return std::nullopt;
      return req.get_param_value(name);
    };
    f.label = opt("label");
    if (f.label && *f.label != "normal" && *f.label != "anomaly")
      throw HttpError(400, "label must be normal or anomaly");
    f.status = opt("status");
    if (f.status && *f.status != "new" && *f.status != "acknowledged" && *f.status != "false_alarm")
      throw HttpError(400, "status must be new, acknowledged or false_alarm");
    f.since = opt("since");
    f.until = opt("until");
    if (auto b = opt("before")) f.before_id = id_of(*b, "before");
    f.limit = limit_of(req, 100, 1000);
    Json list = Json::array();
    for (const auto& e : store().events(f)) list.push_back(event_json(e, false));
    send_json(res, 200, {{"events", list}});
  }

  void updates(const httplib::Request& req, httplib::Response& res) {
    int64_t after = 0;
    if (req.has_param("after") && !req.get_param_value("after").empty() && req.get_param_value("after") != "0")
      after = id_of(req.get_param_value("after"), "after");
    EventFilter f;
    f.limit = 200;
    std::vector<EventRecord> newest = store().events(f);
    const int64_t last = newest.empty() ? 0 : newest.front().id;
    Json list = Json::array();
    for (auto it = newest.rbegin(); it != newest.rend(); ++it)
      if (it->id > after) list.push_back(event_json(*it, false));
    send_json(res, 200, {{"last_event_id", last}, {"events", list}});
  }

  httplib::Server& http_;
  ApiContext& ctx_;
};

}  // namespace

bool secrets_equal(const std::string& presented, const std::string& expected) {
  // Every byte of the longer string is looked at whatever the content; only the lengths leak.
  const size_t n = std::max(presented.size(), expected.size());
  unsigned char diff = presented.size() == expected.size() ? 0 : 1;
  for (size_t i = 0; i < n; ++i) {
    const unsigned char a = i < presented.size() ? static_cast<unsigned char>(presented[i]) : 0;
    const unsigned char b = i < expected.size() ? static_cast<unsigned char>(expected[i]) : 0;
    diff |= static_cast<unsigned char>(a ^ b);
  }
  return diff == 0 && !expected.empty();
}

void install_api(httplib::Server& http, ApiContext& ctx) {
  // The handlers refer to the Api object, which the context keeps alive.
  auto api = std::make_shared<Api>(http, ctx);
  api->install();
  ctx.routes = api;
  http.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
    send_error(res, 500, "internal error");
  });
}

}  // namespace asdcap::serve
