#pragma once
// The dashboard served at GET /: one self-contained HTML page (inline CSS and JS, no network
// resources) that reads only the v1 JSON API.
#include <string>

namespace asdcap::serve {

// The page's bytes (UTF-8 HTML), embedded from src/serve/dashboard.html at build time.
std::string dashboard_html();

}  // namespace asdcap::serve
