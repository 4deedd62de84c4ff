#include "serve/dashboard.hpp"

namespace asdcap::serve {

// Defined in the source generated from dashboard.html (see dashboard.cmake).
std::string dashboard_page_text();

std::string dashboard_html() { return dashboard_page_text(); }

}  // namespace asdcap::serve
