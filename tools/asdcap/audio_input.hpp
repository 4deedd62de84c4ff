// What the CLAP subcommands that read audio files share (embed, tags, similarity): the --crop,
// --channels and --threads options, the file list, encoding with a progress bar, and CSV quoting.
#pragma once
#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "asdcap/clap.hpp"
#include "asdcap/progress.hpp"

namespace asdcap::cli {

struct AudioInput {
  std::string crop = "random", channels = "mean";
  int threads = 0;
  std::vector<std::string> files;

  // `several_windows`: what becomes of a file's windows with --crop cover ("embeddings averaged").
  void add_options(CLI::App* sub, const std::string& several_windows, bool files_required = true) {
    sub->add_option("--crop", crop,
                    "7-s window(s) per file: random (seeded by the file's content hash), random:SEED, offset:N, "
                    "cover (all windows, " + several_windows + ")")
        ->capture_default_str();
    sub->add_option("--channels", channels, "multi-channel files: mean (average) or concat (msclap's behaviour)")
        ->capture_default_str()
        ->check(CLI::IsMember({"mean", "concat"}));
    sub->add_option("--threads", threads, "threads (0: all cores)")->capture_default_str()->check(CLI::Range(0, 1024));
    auto* f = sub->add_option("files", files, "audio files (WAV, FLAC, OGG, ... any rate and channel count)");
    if (files_required) f->required();
  }

  // One Output per file, in order, with a progress bar ("embedding", "tagging") on stderr.
  std::vector<AudioEncoder::Output> encode(const AudioEncoder& encoder, const char* verb) const {
    Progress progress(verb, static_cast<int64_t>(files.size()));
    return encode_files(encoder, files, CropPolicy::parse(crop),
                        channels == "concat" ? ChannelMode::Concat : ChannelMode::Mean, [&] { progress.tick(); });
  }
};

// RFC 4180 quoting of one CSV field.
inline std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

}  // namespace asdcap::cli
