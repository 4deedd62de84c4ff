// asdcap report --out DIR: the self-contained HTML report of a run folder.
#include <chrono>
#include <cstdio>
#include <memory>

#include "asdcap/compare.hpp"
#include "asdcap/error.hpp"
#include "asdcap/report.hpp"
#include "command.hpp"
#include "options.hpp"

namespace {

void setup(CLI::App& app) {
  auto opts = std::make_shared<asdcap::ReportOptions>();
  auto audio = std::make_shared<std::string>("link");
  auto* sub =
      app.add_subcommand("report", "Write DIR/report.html: results, score charts and explained clips, in one file");
  sub->add_option("--out", opts->out_dir,
                  "Run folder written by `asdcap detect` (and `asdcap explain`), or a folder of `asdcap compare`")
      ->required();
  sub->add_option("--audio", *audio,
                  "Audio players: 'link' (to the clips, relative to DIR) or 'embed' (16 kHz WAV inside the page, "
                  "first 10 s; the page grows by ~430 kB per clip)")
      ->check(CLI::IsMember({"link", "embed"}))
      ->capture_default_str();
  sub->add_option("--max-figures", opts->max_figures, "Explained clips drawn as figures (highest scores first)")
      ->check(CLI::Range(0, 100000))
      ->capture_default_str();
  asdcap::cli::add_threads(sub, opts->threads);
  sub->callback([opts, audio] {
    opts->embed_audio = *audio == "embed";
    const auto t0 = std::chrono::steady_clock::now();
    // A folder of `asdcap compare` gets its comparison page; a run folder its report.
    const std::string path = asdcap::is_compare_folder(opts->out_dir) ? asdcap::build_compare_report(opts->out_dir)
                                                                      : asdcap::build_report(*opts);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::fprintf(stderr, "report: written in %.1f s\n", secs);
    std::printf("%s\n", path.c_str());
  });
}

}  // namespace

ASDCAP_REGISTER_COMMAND(40, setup)
