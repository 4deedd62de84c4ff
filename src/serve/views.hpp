// The JSON objects of the HTTP API, built from store records.
#pragma once
#include <nlohmann/json.hpp>

#include "serve/store.hpp"

namespace asdcap::serve {

using Json = nlohmann::ordered_json;

// A number, or null for NaN / infinity.
Json number_or_null(double v);
// The event object; with_explanation adds "explanation" (an object) once it is done or failed.
Json event_json(const EventRecord& e, bool with_explanation);
// A machine's summary; `threshold` is its current one (NaN: none).
Json machine_json(const MachineSummary& s, double threshold);
// {"error": what} as one line.
std::string error_body(const std::string& what);

}  // namespace asdcap::serve
