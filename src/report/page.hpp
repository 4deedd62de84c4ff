// Internal to asdcap_report: what the page writer needs besides the run data.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "asdcap/report.hpp"
#include "report/charts.hpp"

namespace asdcap::report {

// One clip drawn on the page: its spectrogram panel (HTML) or the reason there is none, and its player.
struct ClipView {
  std::string panel_html;  // empty if the clip could not be drawn
  std::string missing_reason;
  std::string audio_src;  // data: URI or a path relative to DIR; empty if none
  double seconds = 0;
};

struct PageInput {
  const RunData* run = nullptr;
  const ReportOptions* options = nullptr;
  std::vector<ExplanationRecord> figures;    // drawn, in page order
  std::vector<ExplanationRecord> not_drawn;  // explained but over --max-figures
  bool figures_are_fallback = false;         // no explanations.jsonl: top flagged clips instead
  std::map<std::string, ClipView> views;     // key: clip path
};

std::string page_css();
std::string render_page(const PageInput& in);

// The path under which the page finds a clip: `path`, or run.json's data_root joined with `file`.
std::string clip_path(const RunData& run, const std::string& file, const std::string& path);

}  // namespace asdcap::report
