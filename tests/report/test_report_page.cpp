// The report of a hand-made run folder: structure, missing pieces explained, images that decode,
// spectrograms oriented and labelled right, no network references.
#include <gtest/gtest.h>

#include <unistd.h>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "asdcap/error.hpp"
#include "asdcap/report.hpp"
#include "core/files.hpp"
#include "fixture.hpp"
#include "png_reader.hpp"

namespace fs = std::filesystem;
using namespace asdcap;

namespace {

size_t count(const std::string& hay, const std::string& needle) {
  size_t n = 0;
  for (size_t at = hay.find(needle); at != std::string::npos; at = hay.find(needle, at + 1)) ++n;
  return n;
}

// The base64 payloads of the data: URIs of <img> or <audio> elements, "" for any other src.
std::vector<std::string> data_uris(const std::string& html, const std::string& mime) {
  std::vector<std::string> out;
  const std::string prefix = "data:" + mime + ";base64,";
  for (const auto& src : test::tag_attributes(html, mime.rfind("image", 0) == 0 ? "<img " : "<audio ", "src"))
    out.push_back(src.rfind(prefix, 0) == 0 ? src.substr(prefix.size()) : std::string());
  return out;
}

std::vector<std::string>& created_roots() {
  static std::vector<std::string> roots;
  return roots;
}

// Per process, so release and sanitizer runs of the suite may overlap; removed at exit.
std::string temp_root(const std::string& name) {
  created_roots().push_back(
      (fs::temp_directory_path() / ("asdcap_test_report_" + name + "_" + std::to_string(::getpid()))).string());
  return created_roots().back();
}

class RemoveTempRoots : public ::testing::Environment {
 public:
  void TearDown() override {
    std::error_code ec;
    for (const auto& r : created_roots()) fs::remove_all(r, ec);
  }
};
[[maybe_unused]] ::testing::Environment* const remove_temp_roots =
    ::testing::AddGlobalTestEnvironment(new RemoveTempRoots);

std::string build(const std::string& dir, bool embed = false) {
  ReportOptions o;
  o.out_dir = dir;
  o.embed_audio = embed;
  o.threads = 2;
  return read_text_file(build_report(o));
}

// Slaney mel scale (librosa), for the expected band of a frequency.
double hz_to_mel(double f) { return f < 1000 ? 3 * f / 200 : 15 + 27 * std::log(f / 1000) / std::log(6.4); }

}  // namespace

TEST(ReportPage, OverviewFiguresAndMissingReasons) {
  const auto f = test::make_fixture_run(temp_root("page"));
  const std::string html = build(f.dir);
  EXPECT_EQ(count(html, "<tr class=\"row-id\""), 3u);
  EXPECT_EQ(count(html, "<tr class=\"row-average\""), 2u);
  EXPECT_EQ(count(html, "<tr class=\"row-overall\""), 1u);
  EXPECT_NE(html.find("91.25"), std::string::npos);  // fan id_00 AUC in %
  EXPECT_NE(html.find("74.31"), std::string::npos);  // its pAUC
  EXPECT_EQ(count(html, "<figure class=\"clip\""), 3u);
  // Summary: 18 scored, 9 flagged (scores > 2.2), best and worst machine ID.
  EXPECT_NE(html.find("Clips scored</div><div class=\"v\">18<"), std::string::npos);
  EXPECT_NE(html.find("Flagged anomalous</div><div class=\"v\">9<"), std::string::npos);
  EXPECT_NE(html.find("pump id_00 (AUC)"), std::string::npos);
  EXPECT_NE(html.find("fan id_02 (AUC)"), std::string::npos);
  // Complete explanation: captions, answers, charts.
  EXPECT_NE(html.find("Sounds like a fan with a knocking noise"), std::string::npos);
  EXPECT_NE(html.find("This sound is knocking, unlike the steady normal fan."), std::string::npos);
  EXPECT_NE(html.find("Popping and knocking sounds"), std::string::npos);
  EXPECT_NE(html.find("Knocks per second"), std::string::npos);
  // What is missing says why.
  EXPECT_NE(html.find("<b>No captions:</b> the model file has no caption decoder (clapcap)"), std::string::npos);
  EXPECT_NE(html.find("<b>Zero-shot similarities not available:</b> the acoustic backend has no text encoder"),
            std::string::npos);
  EXPECT_NE(html.find("no difference caption: connection refused by localhost:8080"), std::string::npos);
  EXPECT_NE(html.find("no spectrogram: file not found:"), std::string::npos);
  EXPECT_NE(html.find("not a sound file: the RIFF header is truncated"), std::string::npos);
  EXPECT_NE(html.find("LLM server timed out after 60 s"), std::string::npos);
  EXPECT_NE(html.find("id=\"missing\""), std::string::npos);
  // Linked audio, relative to the run folder.
  EXPECT_NE(html.find("src=\"../data/fan/test/anomaly_id_00_00000015.wav\""), std::string::npos);
  // Self-contained: no http(s) reference at all.
  EXPECT_EQ(html.find("http://"), std::string::npos);
  EXPECT_EQ(html.find("https://"), std::string::npos);
  EXPECT_EQ(html.find("<link"), std::string::npos);
  EXPECT_EQ(html.find("<script src"), std::string::npos);
}

TEST(ReportPage, EveryImageDecodesAndSpectrogramsAreOrientedAndLabelled) {
  const auto f = test::make_fixture_run(temp_root("images"));
  const std::string html = build(f.dir);
  EXPECT_EQ(count(html, "<img "), 8u);  // 3 + 3 panels, and 2 for the figure whose anomalous clip is gone
  const auto pngs = data_uris(html, "image/png");
  ASSERT_EQ(pngs.size(), 8u);
  std::vector<test::DecodedPng> images;
  for (const auto& b64 : pngs) {
    ASSERT_FALSE(b64.empty());
    images.push_back(test::decode_png(test::base64_decode(b64)));
    EXPECT_EQ(images.back().height, 64);  // one row per mel band
  }
  // Figure 1: the anomalous clip has 3 kHz knocks its neighbours lack. The image row where it is
  // brightest relative to its first neighbour must be the band holding 3 kHz (low bands at the bottom).
  auto row_level = [](const test::DecodedPng& im, int y) {
    double s = 0;
    for (int x = 0; x < im.width; ++x)
      for (int c = 0; c < 3; ++c) s += im.rgb[size_t((y * im.width + x) * 3 + c)];
    return s / im.width;
  };
  int best_row = 0;
  double best = -1e9;
  for (int y = 0; y < 64; ++y) {
    const double d = row_level(images[0], y) - row_level(images[1], y);
    if (d > best) best = d, best_row = y;
  }
  const int band = 63 - best_row;
  // msclap's filter bank is designed for 32 kHz but applied at 44.1 kHz: 3 kHz sits where the
  // design frequency is 3000 * 32000 / 44100.
  const double lo = hz_to_mel(50), hi = hz_to_mel(14000), m3k = hz_to_mel(3000.0 * 32000 / 44100);
  const double expected_band = (m3k - lo) / (hi - lo) * 65 - 1;
  EXPECT_NEAR(band, expected_band, 2.0);
  // Axes: seconds and Hz.
  EXPECT_NE(html.find(">Hz</text>"), std::string::npos);
  EXPECT_NE(html.find(">s</text>"), std::string::npos);
  EXPECT_NE(html.find(">0.5</text>"), std::string::npos);  // 1-s clips: ticks every 0.5 s
}

TEST(ReportPage, EmbeddedAudioIsAPlayableWav) {
  const auto f = test::make_fixture_run(temp_root("embed"));
  const std::string html = build(f.dir, true);
  const auto wavs = data_uris(html, "audio/wav");
  ASSERT_EQ(wavs.size(), 8u);
  const std::string wav = test::base64_decode(wavs[0]);
  ASSERT_GT(wav.size(), 44u);
  EXPECT_EQ(wav.substr(0, 4), "RIFF");
  EXPECT_EQ(wav.substr(8, 4), "WAVE");
  uint32_t rate = 0;
  std::memcpy(&rate, wav.data() + 24, 4);
  EXPECT_EQ(rate, 16000u);
  EXPECT_NEAR(double(wav.size() - 44) / 2 / 16000, 1.0, 0.01);  // the whole 1-s clip
}

TEST(ReportPage, WithoutExplanationsShowsTopFlaggedClipsAndSaysWhy) {
  const auto f = test::make_fixture_run(temp_root("noexplain"));
  fs::remove(f.dir + "/explanations.jsonl");
  const std::string html = build(f.dir);
  EXPECT_NE(html.find("No explanations yet (explanations.jsonl not found)"), std::string::npos);
  EXPECT_EQ(count(html, "<figure class=\"clip\""), 3u);  // one flagged clip per machine ID
  EXPECT_NE(html.find("<b>No captions:</b> explain has not been run"), std::string::npos);
}

TEST(ReportPage, BrokenAndMissingFilesNeverStopTheReport) {
  const auto f = test::make_fixture_run(temp_root("broken"));
  { std::ofstream(f.dir + "/neighbors.jsonl", std::ios::app) << "{not json\n[1,2]\n{\"score\":\"high\"}\n"; }
  { std::ofstream(f.dir + "/run.json") << "{"; }
  fs::remove(f.dir + "/results.csv");
  const std::string html = build(f.dir);
  EXPECT_NE(html.find("neighbors.jsonl line 19 could not be read"), std::string::npos);
  EXPECT_NE(html.find("neighbors.jsonl line 21 could not be read"), std::string::npos);
  EXPECT_NE(html.find("run.json could not be read"), std::string::npos);
  EXPECT_NE(html.find("results.csv: not found"), std::string::npos);
  EXPECT_EQ(count(html, "<figure class=\"clip\""), 3u);

  const std::string empty = temp_root("empty");
  fs::remove_all(empty);
  fs::create_directories(empty);
  const std::string page = build(empty);
  EXPECT_NE(page.find("No clip to show"), std::string::npos);
  EXPECT_THROW(build(empty + "/does-not-exist"), IoError);
}

TEST(ReportPage, FigureLimitListsTheRest) {
  const auto f = test::make_fixture_run(temp_root("limit"));
  ReportOptions o;
  o.out_dir = f.dir;
  o.max_figures = 1;
  const std::string html = read_text_file(build_report(o));
  EXPECT_EQ(count(html, "<figure class=\"clip\""), 1u);
  EXPECT_NE(html.find("2 more explained clips"), std::string::npos);
}

// The moments of a clear crackle (crackle_db, strength 2 or more) are marked over the clip's
// spectrogram, each with its time; the neighbours' spectrograms carry no marks.
TEST(ReportPage, CrackleMomentsAreMarkedOnTheClipsSpectrogram) {
  const auto f = test::make_fixture_run(temp_root("crackle"));
  const std::string html = build(f.dir);
  EXPECT_EQ(count(html, "class=\"event\""), 2u);
  EXPECT_EQ(count(html, "<title>event at 0.3 s</title>"), 1u);
  EXPECT_EQ(count(html, "<title>event at 0.6 s</title>"), 1u);
}
