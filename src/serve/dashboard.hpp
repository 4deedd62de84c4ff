// The dashboard page served at GET /: one self-contained HTML page (no external scripts or fonts)
// that reads the JSON API.
#pragma once
#include <string>

namespace asdcap::serve {

std::string dashboard_html();

}  // namespace asdcap::serve
