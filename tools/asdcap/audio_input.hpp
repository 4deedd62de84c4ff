// What the subcommands that read audio files share (embed, tags, similarity): the --crop,
// --channels and --threads options, the file list, and encoding with a progress bar (CLAP's
// encoder, or PANNs CNN14 for embed and tags).
#pragma once
#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "asdcap/clap.hpp"
#include "asdcap/panns.hpp"
#include "asdcap/laion.hpp"
#include "core/progress.hpp"
#include "options.hpp"

namespace asdcap::cli {

struct AudioInput {
  CropPolicy crop;
  ChannelMode channels = ChannelMode::Mean;
  int threads = 0;
  std::vector<std::string> files;
  CLI::Option* crop_option = nullptr;

  // `several_windows`: what becomes of a file's windows with --crop cover ("embeddings averaged").
  void add_options(CLI::App* sub, const char* several_windows, bool files_required = true) {
    crop_option = add_crop(sub, crop, {.random_by_content = true, .cover = several_windows});
    add_channels(sub, channels);
    add_threads(sub, threads);
    auto* f = sub->add_option("files", files, "Audio files (WAV, FLAC, OGG, ... any rate and channel count)");
    if (files_required) f->required();
  }

  // One Output per file, in order, with a progress bar ("embedding", "tagging") on stderr. A crop
  // offset beyond a clip is a bad --crop.
  std::vector<AudioEncoder::Output> encode(const AudioEncoder& encoder, const char* verb) const {
    Progress progress(verb, static_cast<int64_t>(files.size()));
    return rethrow_for_flag("--crop",
                            [&] { return encode_files(encoder, files, crop, channels, [&] { progress.tick(); }); });
  }

  // The same with PANNs CNN14, whose crop without --crop is the whole clip.
  std::vector<PannsModel::Output> run(const PannsModel& model, const char* verb) const {
    Progress progress(verb, static_cast<int64_t>(files.size()));
    const CropPolicy policy = crop_option && crop_option->count() > 0 ? crop : panns_default_crop();
    return rethrow_for_flag(
        "--crop", [&] { return panns_files(model, files, policy, channels, threads, [&] { progress.tick(); }); });
  }

  // The same with LAION-CLAP.
  std::vector<LaionModel::Output> encode(const LaionModel& model, const char* verb) const {
    Progress progress(verb, static_cast<int64_t>(files.size()));
    return rethrow_for_flag("--crop",
                            [&] { return laion_encode_files(model, files, crop, channels, [&] { progress.tick(); }); });
  }
};

}  // namespace asdcap::cli
