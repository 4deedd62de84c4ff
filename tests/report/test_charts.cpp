#include <gtest/gtest.h>

#include "report/charts.hpp"

using namespace asdcap::report;
using asdcap::EvidenceFeature;

TEST(ReportCharts, RocCurveAndAucOfAHandExample) {
  // Scores 0.1 (normal) 0.4 (normal) 0.35 (anomaly) 0.8 (anomaly): 3 of the 4 (anomaly, normal)
  // pairs are ordered correctly, so AUC = 0.75 (scikit-learn's roc_auc_score gives the same).
  auto c = roc_curve({0.1, 0.4, 0.35, 0.8}, {false, false, true, true});
  ASSERT_EQ(c.size(), 5u);
  EXPECT_DOUBLE_EQ(c[1].fpr, 0.0);
  EXPECT_DOUBLE_EQ(c[1].tpr, 0.5);
  EXPECT_DOUBLE_EQ(c[2].fpr, 0.5);
  EXPECT_DOUBLE_EQ(c[2].tpr, 0.5);
  EXPECT_DOUBLE_EQ(c.back().fpr, 1.0);
  EXPECT_DOUBLE_EQ(c.back().tpr, 1.0);
  EXPECT_DOUBLE_EQ(roc_auc(c), 0.75);
}

TEST(ReportCharts, TiedScoresCountHalf) {
  // One tie between classes: AUC = (1 + 0.5) / 2 pairs... pairs: (a=0.5 vs n=0.5) tie 0.5, (a=0.5 vs n=0.1) 1.
  EXPECT_DOUBLE_EQ(roc_auc(roc_curve({0.5, 0.1, 0.5}, {true, false, false})), 0.75);
  EXPECT_TRUE(roc_curve({0.1, 0.2}, {true, true}).empty());
}

TEST(ReportCharts, SvgsAreCompleteAndCarryTheThreshold) {
  const std::string hist = svg_score_distribution({1, 1.2, 1.3}, {2.5, 3}, {}, 2.2);
  EXPECT_EQ(hist.rfind("<svg", 0), 0u);
  EXPECT_NE(hist.find("class=\"threshold\""), std::string::npos);
  EXPECT_NE(hist.find("normal (3)"), std::string::npos);
  EXPECT_NE(hist.find("anomalous (2)"), std::string::npos);
  EXPECT_EQ(hist.substr(hist.size() - 6), "</svg>");
  const std::string roc = svg_roc({0.1, 0.4, 0.35, 0.8}, {false, false, true, true}, 0.3);
  EXPECT_NE(roc.find("AUC 75.0%"), std::string::npos);
  EXPECT_NE(roc.find("op-point"), std::string::npos);
  EXPECT_NE(svg_roc({1, 2}, {false, false}, std::nullopt).find("needs normal and anomalous labels"), std::string::npos);
  EXPECT_NE(svg_score_distribution({}, {}, {}, std::nullopt).find("no scores"), std::string::npos);
}

TEST(ReportCharts, LabelsAreEscaped) {
  const std::string s = svg_similarity({"<script>alert(1)</script> & more"}, {0.3}, {{0.1}});
  EXPECT_EQ(s.find("<script>"), std::string::npos);
  EXPECT_NE(s.find("&lt;script&gt;"), std::string::npos);
  EXPECT_EQ(html_escape("a\"b'c"), "a&quot;b&#39;c");
}

TEST(ReportCharts, EvidenceBarsMarkStrongDeviationsWarm) {
  EvidenceFeature strong{"k1", "Knocks per second", "per second", 4.0, 8.5, {0.0, 0.1}, std::nullopt, {}, {}, {}, {}};
  EvidenceFeature weak{"k2", "Level", "dB", -20.0, 0.1, {-19.5}, std::nullopt, {}, {}, {}, {}};
  EvidenceFeature none{"k3", "Peak frequency", "Hz", 120.0, std::nullopt, {110.0}, std::nullopt, {}, {}, {}, {}};
  const std::string s = svg_evidence({strong, weak, none});
  EXPECT_NE(s.find("fill=\"#e8590c\"><title>z = 8.50"), std::string::npos);
  EXPECT_NE(s.find("fill=\"#adb5bd\"><title>z = 0.100"), std::string::npos);
  EXPECT_NE(s.find("descriptive"), std::string::npos);
  EXPECT_NE(s.find("4.00 vs 0.0500 per second"), std::string::npos);
}

TEST(ReportCharts, EvidenceRowsStrongestFirst) {
  EvidenceFeature none{"k3", "Peak frequency", "Hz", 120.0, std::nullopt, {110.0}, std::nullopt, {}, {}, {}, {}};
  EvidenceFeature weak{"k2", "Level", "dB", -20.0, 0.1, {-19.5}, std::nullopt, {}, {}, {}, {}};
  EvidenceFeature negative{"k4", "Tonality", "dB", 1.0, -3.0, {4.0}, std::nullopt, {}, {}, {}, {}};
  EvidenceFeature strong{"k1", "Knocks per second", "per second", 4.0, 8.5, {0.0, 0.1}, std::nullopt, {}, {}, {}, {}};
  const std::string s = svg_evidence({none, weak, negative, strong});
  const size_t knocks = s.find("Knocks per second"), tonality = s.find("Tonality"), level = s.find(">Level<"),
               peak = s.find("Peak frequency");
  ASSERT_NE(knocks, std::string::npos);
  ASSERT_NE(level, std::string::npos);
  EXPECT_LT(knocks, tonality);  // |8.5| > |-3| > |0.1| > descriptive
  EXPECT_LT(tonality, level);
  EXPECT_LT(level, peak);
}

TEST(ReportCharts, NumbersAreFormattedReadably) {
  EXPECT_EQ(format_number(0.012345, 3), "0.0123");
  EXPECT_EQ(format_number(12.345, 3), "12.3");
  EXPECT_EQ(format_number(0, 3), "0.00");
  EXPECT_EQ(format_number(123456, 3), "1.23e+05");
  EXPECT_EQ(format_number(std::nan(""), 3), "n/a");
}

// A spectrogram shown twice (a neighbour of two flagged clips) is stored once, as a CSS class; a
// spectrogram shown once stays an <img>.
TEST(ReportSpectrogram, RepeatedImagesAreStoredOnce) {
  const std::vector<float> quiet(20 * 8, -60.f), loud(20 * 8, -10.f);
  const std::vector<double> hz = {100, 200, 400, 800, 1600, 3200, 6400, 12800};
  const std::string a = spectrogram_panel(quiet, 20, 8, 1.0, hz, -80, 0, "normal <1>");
  const std::string b = spectrogram_panel(loud, 20, 8, 1.0, hz, -80, 0, "anomalous");
  std::string body = "<p>x</p>" + a + b + a + "<p>y</p>";
  const std::string css = share_repeated_images(body);
  auto count = [](const std::string& s, const std::string& what) {
    size_t n = 0;
    for (size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + 1)) ++n;
    return n;
  };
  EXPECT_EQ(count(body, "<img "), 1u);  // the anomalous clip's, shown once
  EXPECT_EQ(count(body, "<div class=\"sgimg sg0\" role=\"img\" aria-label=\"normal &lt;1&gt;\""), 2u);
  EXPECT_EQ(count(css, ".sg0{background-image:url(data:image/png;base64,"), 1u);
  EXPECT_EQ(count(body + css, "data:image/png;base64,"), 2u);  // each picture once
  EXPECT_EQ(body.rfind("<p>y</p>"), body.size() - 8);
  std::string single = "<p>z</p>" + b;
  EXPECT_EQ(share_repeated_images(single), "");
  EXPECT_EQ(single, "<p>z</p>" + b);
}
