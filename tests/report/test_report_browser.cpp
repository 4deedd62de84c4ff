// Debian's headless Chromium opens a report and the test reads back the DOM: table rows, one figure
// per explained clip, every image decoded by the browser, no network reference; and a screenshot
// lands in the build folder (report-screenshot.png). Chromium missing = failure (scripts/setup.sh
// installs it), never a skip.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "asdcap/files.hpp"
#include "fixture.hpp"
#include "png_reader.hpp"

namespace fs = std::filesystem;

namespace {

const char* kChromium = "/usr/bin/chromium";

size_t count(const std::string& hay, const std::string& needle) {
  size_t n = 0;
  for (size_t at = hay.find(needle); at != std::string::npos; at = hay.find(needle, at + 1)) ++n;
  return n;
}

int run(const std::string& cmd) {
  const int rc = std::system(cmd.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

// Runs Chromium headless, isolated in a fresh profile, with everything that could phone home off.
int chromium(const std::string& profile, const std::string& args, const std::string& stdout_file) {
  fs::remove_all(profile);
  fs::create_directories(profile);
  const std::string cmd = std::string(kChromium) +
                          " --headless --no-sandbox --disable-gpu --disable-quic --no-first-run"
                          " --disable-background-networking --disable-component-update --disable-sync"
                          " --disable-dev-shm-usage --hide-scrollbars --virtual-time-budget=10000 --user-data-dir=" +
                          profile + " " + args + " > " + stdout_file + " 2> " + stdout_file + ".err";
  return run(cmd);
}

std::string attribute(const std::string& html, const std::string& name) {
  const size_t at = html.find(" " + name + "=\"");
  if (at == std::string::npos) return "";
  const size_t v = at + name.size() + 3;
  return html.substr(v, html.find('"', v) - v);
}

}  // namespace

TEST(ReportBrowser, ChromiumRendersTheReport) {
  ASSERT_TRUE(fs::exists(kChromium)) << kChromium
                                     << " is missing: the browser test needs Debian's chromium package "
                                        "(run scripts/setup.sh, which installs it)";
  const std::string root = (fs::temp_directory_path() / "asdcap_test_report_browser").string();
  const auto f = asdcap::test::make_fixture_run(root);
  ASSERT_EQ(run(std::string(ASDCAP_CLI) + " report --out " + f.dir + " > " + root + "/report.out"), 0);
  const std::string page = f.dir + "/report.html";
  ASSERT_TRUE(fs::exists(page));

  const std::string dom_file = root + "/dom.html";
  ASSERT_EQ(chromium(root + "/profile", "--dump-dom file://" + page, dom_file), 0)
      << asdcap::read_text_file(dom_file + ".err");
  const std::string dom = asdcap::read_text_file(dom_file);
  ASSERT_NE(dom.find("<table class=\"results\""), std::string::npos) << "Chromium gave no DOM";
  // Overview: one row per machine ID, one per machine average, one overall.
  EXPECT_EQ(count(dom, "<tr class=\"row-id\""), size_t(f.n_ids));
  EXPECT_EQ(count(dom, "<tr class=\"row-average\"") + count(dom, "<tr class=\"row-overall\""), size_t(f.n_machines + 1));
  EXPECT_EQ(count(dom, "<figure class=\"clip\""), size_t(f.n_explained));
  // The page's own load handler counted the images the browser could decode.
  EXPECT_EQ(attribute(dom, "data-images-broken"), "0");
  EXPECT_EQ(attribute(dom, "data-images-ok"), std::to_string(count(dom, "<img ")));
  // Every <img> has a data: URI that decodes as a PNG; nothing points to the network.
  size_t images = 0;
  for (const auto& src : asdcap::test::tag_attributes(dom, "<img ", "src")) {
    ++images;
    const std::string prefix = "data:image/png;base64,";
    ASSERT_EQ(src.rfind(prefix, 0), 0u) << src.substr(0, 60);
    EXPECT_NO_THROW(asdcap::test::decode_png(asdcap::test::base64_decode(src.substr(prefix.size()))));
  }
  EXPECT_GT(images, 0u);
  EXPECT_EQ(images, count(dom, "<img "));
  EXPECT_EQ(dom.find("http://"), std::string::npos);
  EXPECT_EQ(dom.find("https://"), std::string::npos);
  EXPECT_NE(dom.find("<b>No captions:</b> the model file has no caption decoder"), std::string::npos);

  const std::string shot = std::string(ASDCAP_BUILD_DIR) + "/report-screenshot.png";
  fs::remove(shot);
  ASSERT_EQ(chromium(root + "/profile2", "--window-size=1280,2000 --screenshot=" + shot + " file://" + page, root + "/shot.out"), 0)
      << asdcap::read_text_file(root + "/shot.out.err");
  ASSERT_TRUE(fs::exists(shot));
  EXPECT_GT(fs::file_size(shot), 20000u);  // a real page, not a blank one
}
