// Debian's headless Chromium opens a report and the test reads back the DOM: table rows, one figure
// per explained clip, every image decoded by the browser, no network reference; and a screenshot
// lands in the build folder (report-screenshot.png). Chromium missing = failure (scripts/setup.sh
// installs it), never a skip.
#include <gtest/gtest.h>

#include <unistd.h>
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <sstream>

#include "core/files.hpp"
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

struct DomCheck {
  size_t id_rows, summary_rows, figures;
};

// Opens `page` in Chromium, checks the DOM and returns it.
std::string check_in_browser(const std::string& root, const std::string& page, const DomCheck& want) {
  const std::string dom_file = root + "/dom.html";
  EXPECT_EQ(chromium(root + "/profile", "--dump-dom file://" + page, dom_file), 0)
      << asdcap::read_text_file(dom_file + ".err");
  const std::string dom = asdcap::read_text_file(dom_file);
  EXPECT_NE(dom.find("<table class=\"results\""), std::string::npos) << "Chromium gave no DOM";
  // Overview: one row per machine ID, plus one per machine average and the overall one.
  EXPECT_EQ(count(dom, "<tr class=\"row-id\""), want.id_rows);
  EXPECT_EQ(count(dom, "<tr class=\"row-average\"") + count(dom, "<tr class=\"row-overall\""), want.summary_rows);
  EXPECT_EQ(count(dom, "<figure class=\"clip\""), want.figures);
  // The page's own load handler counted the images the browser could decode.
  EXPECT_EQ(attribute(dom, "data-images-broken"), "0");
  EXPECT_EQ(attribute(dom, "data-images-ok"), std::to_string(count(dom, "<img ")));
  // Every <img> has a data: URI that decodes as a PNG; nothing points to the network.
  size_t images = 0;
  for (const auto& src : asdcap::test::tag_attributes(dom, "<img ", "src")) {
    ++images;
    const std::string prefix = "data:image/png;base64,";
    EXPECT_EQ(src.rfind(prefix, 0), 0u) << src.substr(0, 60);
    if (src.rfind(prefix, 0) == 0) {
      EXPECT_NO_THROW(asdcap::test::decode_png(asdcap::test::base64_decode(src.substr(prefix.size()))));
    }
  }
  EXPECT_GT(images, 0u);
  // Spectrograms shown more than once are one CSS background image each, used by >= 2 panels.
  const std::string rule = "{background-image:url(data:image/png;base64,";
  size_t shared = 0;
  for (size_t at = dom.find(rule); at != std::string::npos; at = dom.find(rule, at + 1)) {
    const size_t b = at + rule.size(), e = dom.find(')', b);
    if (e == std::string::npos) break;
    EXPECT_NO_THROW(asdcap::test::decode_png(asdcap::test::base64_decode(dom.substr(b, e - b))));
    ++shared;
  }
  EXPECT_GE(count(dom, "<div class=\"sgimg "), 2 * shared);
  EXPECT_EQ(dom.find("http://"), std::string::npos);
  EXPECT_EQ(dom.find("https://"), std::string::npos);
  return dom;
}

void check_chromium_present() {
  ASSERT_TRUE(fs::exists(kChromium)) << kChromium
                                     << " is missing: the browser test needs Debian's chromium package "
                                        "(run scripts/setup.sh, which installs it)";
}

size_t lines_of(const std::string& path) {
  const std::string text = asdcap::read_text_file(path);
  return static_cast<size_t>(std::count(text.begin(), text.end(), '\n'));
}

}  // namespace

// The README's first command, in its quick form, end to end; the screenshot lands in the build folder.
TEST(ReportBrowser, DemoReportInChromium) {
  check_chromium_present();
  const std::string root =
      (fs::temp_directory_path() / ("asdcap_test_report_browser_demo_" + std::to_string(::getpid()))).string();
  fs::remove_all(root);
  fs::create_directories(root);
  const std::string out = root + "/demo";
  ASSERT_EQ(
      run(std::string(ASDCAP_CLI) + " demo --small --out " + out + " > " + root + "/demo.out 2> " + root + "/demo.err"),
      0)
      << asdcap::read_text_file(root + "/demo.err");
  const std::string printed = asdcap::read_text_file(root + "/demo.out");
  EXPECT_NE(printed.find("Report: "), std::string::npos);
  EXPECT_NE(printed.find("report.html"), std::string::npos);
  // Expected counts from the run's own files: results.csv rows and explanations.jsonl lines.
  DomCheck want{0, 0, lines_of(out + "/explanations.jsonl")};
  {
    std::istringstream csv(asdcap::read_text_file(out + "/results.csv"));
    std::string line;
    std::getline(csv, line);
    while (std::getline(csv, line)) {
      if (line.empty()) continue;
      const bool summary = line.rfind("overall,", 0) == 0 || line.find(",average,") != std::string::npos;
      (summary ? want.summary_rows : want.id_rows)++;
    }
  }
  EXPECT_EQ(want.id_rows, 2u);  // --small: fan and slider, one ID each
  EXPECT_GT(want.figures, 0u);
  check_in_browser(root, out + "/report.html", want);

  const std::string shot = std::string(ASDCAP_BUILD_DIR) + "/report-screenshot.png";
  fs::remove(shot);
  ASSERT_EQ(
      chromium(root + "/profile2", "--window-size=1280,2000 --screenshot=" + shot + " file://" + out + "/report.html",
               root + "/shot.out"),
      0)
      << asdcap::read_text_file(root + "/shot.out.err");
  ASSERT_TRUE(fs::exists(shot));
  const auto png = asdcap::test::decode_png(asdcap::read_text_file(shot));
  EXPECT_EQ(png.width, 1280);
  EXPECT_GT(fs::file_size(shot), 20000u);   // a real page, not a blank one
  if (!HasFailure()) fs::remove_all(root);  // kept for a look when something failed
}

// A run with skipped files, clips without captions and a vanished clip still renders, and says why.
TEST(ReportBrowser, IncompleteRunInChromium) {
  check_chromium_present();
  const std::string root =
      (fs::temp_directory_path() / ("asdcap_test_report_browser_fixture_" + std::to_string(::getpid()))).string();
  const auto f = asdcap::test::make_fixture_run(root);
  ASSERT_EQ(run(std::string(ASDCAP_CLI) + " report --out " + f.dir + " > " + root + "/report.out 2>&1"), 0);
  const std::string dom = check_in_browser(root, f.dir + "/report.html",
                                           {size_t(f.n_ids), size_t(f.n_machines + 1), size_t(f.n_explained)});
  EXPECT_NE(dom.find("<b>No captions:</b> the model file has no caption decoder"), std::string::npos);
  EXPECT_NE(dom.find("no spectrogram: file not found"), std::string::npos);
  EXPECT_NE(dom.find("not a sound file: the RIFF header is truncated"), std::string::npos);
  if (!HasFailure()) fs::remove_all(root);
}
