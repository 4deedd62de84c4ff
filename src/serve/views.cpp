#include "serve/views.hpp"

#include <cmath>

namespace asdcap::serve {

Json number_or_null(double v) { return std::isfinite(v) ? Json(v) : Json(nullptr); }

Json event_json(const EventRecord& e, bool with_explanation) {
  Json j;
  j["event_id"] = e.id;
  j["machine"] = {{"type", e.machine.type}, {"id", e.machine.id}};
  j["clip_name"] = e.clip_name;
  j["created_at"] = e.created_at;
  j["score"] = number_or_null(e.score);
  j["threshold"] = number_or_null(e.threshold);
  j["label"] = e.label;
  j["status"] = e.status;
  j["neighbors"] = Json::parse(e.neighbors_json.empty() ? "[]" : e.neighbors_json, nullptr, false);
  if (j["neighbors"].is_discarded()) j["neighbors"] = Json::array();
  j["explanation_state"] = e.explanation_state.empty() ? Json(nullptr) : Json(e.explanation_state);
  if (with_explanation && !e.explanation_json.empty()) {
    Json x = Json::parse(e.explanation_json, nullptr, false);
    j["explanation"] = x.is_discarded() ? Json(nullptr) : x;
  }
  return j;
}

Json machine_json(const MachineSummary& s, double threshold) {
  Json j;
  j["type"] = s.machine.type;
  j["id"] = s.machine.id;
  j["n_references"] = s.n_references;
  j["threshold"] = number_or_null(threshold);
  j["last_score"] = s.last_score ? number_or_null(*s.last_score) : Json(nullptr);
  j["last_label"] = s.last_label.empty() ? Json(nullptr) : Json(s.last_label);
  j["last_event_at"] = s.last_event_at.empty() ? Json(nullptr) : Json(s.last_event_at);
  j["n_events"] = s.n_events;
  j["n_anomalies"] = s.n_anomalies;
  j["n_unacknowledged"] = s.n_unacknowledged_anomalies;
  return j;
}

std::string error_body(const std::string& what) {
  std::string line = what;
  for (char& c : line)
    if (c == '\n' || c == '\r') c = ' ';
  return Json{{"error", line}}.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace asdcap::serve
