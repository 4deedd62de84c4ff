// Wall-clock time stamps (internal).
#pragma once
#include <string>

namespace asdcap {

// The current UTC time through strftime's `format` (default ISO 8601 to the second,
// e.g. 2026-12-04T13:50:00Z).
std::string utc_now(const char* format = "%Y-%m-%dT%H:%M:%SZ");

}  // namespace asdcap
