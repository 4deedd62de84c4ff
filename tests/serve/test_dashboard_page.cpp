// The embedded dashboard: the binary serves exactly src/serve/dashboard.html, the page loads nothing
// from the network, and every API path it calls is one of the v1 routes.
#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>

#include "serve/dashboard.hpp"

namespace {

std::string read_source() {
  std::ifstream f(ASDCAP_DASHBOARD_SOURCE, std::ios::binary);
  EXPECT_TRUE(f.good()) << ASDCAP_DASHBOARD_SOURCE;
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

TEST(DashboardPage, TheBinaryCarriesTheSourceFileByteForByte) {
  const std::string page = asdcap::serve::dashboard_html();
  const std::string source = read_source();
  ASSERT_GT(source.size(), 10000u);
  EXPECT_EQ(page.size(), source.size());
  EXPECT_TRUE(page == source);
  EXPECT_EQ(page.rfind("<!doctype html>", 0), 0u);
  EXPECT_NE(page.find("</html>"), std::string::npos);
}

TEST(DashboardPage, LoadsNothingFromTheNetwork) {
  const std::string page = asdcap::serve::dashboard_html();
  for (const char* banned : {"<link", "@import", "url(", "<script src", "<img src", "<iframe", "//fonts.", "cdn"})
    EXPECT_EQ(page.find(banned), std::string::npos) << banned;
  // The only absolute URL is the SVG namespace name, which is never fetched.
  const std::regex url(R"(https?://[^\s"'<>)]+)");
  std::set<std::string> urls;
  for (auto it = std::sregex_iterator(page.begin(), page.end(), url); it != std::sregex_iterator(); ++it)
    urls.insert(it->str());
  EXPECT_EQ(urls, std::set<std::string>{"http://www.w3.org/2000/svg"});
}

TEST(DashboardPage, CallsOnlyV1Routes) {
  const std::string page = asdcap::serve::dashboard_html();
  const std::regex path(R"re("(/v1/[A-Za-z0-9_./-]*))re");
  const std::set<std::string> allowed = {"/v1/machines", "/v1/machines/",   "/v1/events",
                                         "/v1/events/",  "/v1/references/", "/v1/updates"};
  std::set<std::string> seen;
  for (auto it = std::sregex_iterator(page.begin(), page.end(), path); it != std::sregex_iterator(); ++it) {
    const std::string p = (*it)[1];
    seen.insert(p);
    EXPECT_TRUE(allowed.count(p)) << p;
  }
  // The views need these: fleet, machine, event, media, live updates.
  for (const char* want : {"/v1/machines", "/v1/machines/", "/v1/events/", "/v1/references/", "/v1/updates"})
    EXPECT_TRUE(seen.count(want)) << want;
  for (const char* part : {"/spectrogram.png\"", "/audio\"", "/scores?", "\"acknowledge\"", "\"false-alarm\""})
    EXPECT_NE(page.find(part), std::string::npos) << part;
  // Writes carry the bearer token; polling is every 2 s.
  EXPECT_NE(page.find("\"Bearer \"+t"), std::string::npos);
  EXPECT_NE(page.find("setInterval(poll,2000)"), std::string::npos);
}

}  // namespace
