// asdcap features: the log-mel spectrogram msclap feeds to bn0, for any audio files.
#include <nlohmann/json.hpp>

#include <atomic>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <memory>

#include "asdcap/audio.hpp"
#include "asdcap/error.hpp"
#include "asdcap/npy.hpp"
#include "command.hpp"
#include "core/parallel.hpp"
#include "core/progress.hpp"
#include "options.hpp"

namespace {

struct FeaturesArgs {
  std::vector<std::string> files;
  std::string out;
  asdcap::CropPolicy crop;
  asdcap::ChannelMode channels = asdcap::ChannelMode::Mean;
  int threads = 0;
};

struct FileResult {
  asdcap::AudioInfo info;
  int64_t samples_44k = 0;
  std::vector<int64_t> starts;
  std::vector<std::vector<float>> rows;  // one [965 x 64] log-mel per window
};

// `threads`: the log-mel's (serial when files are processed in parallel).
FileResult process(const std::string& path, const asdcap::CropPolicy& crop, asdcap::ChannelMode mode, int threads) {
  FileResult r;
  const std::vector<float> signal = asdcap::load_audio_44k(path, mode, &r.info);
  r.samples_44k = static_cast<int64_t>(signal.size());
  try {
    asdcap::require_windowed_crop(crop, "msclap's log-mel features");
    r.starts = asdcap::window_starts(r.samples_44k, crop);
  } catch (const asdcap::InvalidArgument& e) {
    throw asdcap::UsageError("--crop: " + path + ": " + e.what());  // an offset beyond this clip
  }
  for (int64_t start : r.starts) {
    const std::vector<float> window = asdcap::window_at(signal, start);
    r.rows.push_back(asdcap::log_mel(threads, window.data(), asdcap::kWindowSamples));
  }
  return r;
}

void check_output_folder(const std::string& out) {
  const auto parent = std::filesystem::path(out).parent_path();
  if (!parent.empty() && !std::filesystem::is_directory(parent))
    throw asdcap::IoError(out + ": cannot write: folder " + parent.string() + " does not exist");
  if (std::filesystem::is_directory(out)) throw asdcap::IoError(out + ": is a directory");
}

void run(const FeaturesArgs& args) {
  const asdcap::CropPolicy& crop = args.crop;
  const asdcap::ChannelMode mode = args.channels;
  check_output_folder(args.out);

  const size_t n = args.files.size();
  std::vector<FileResult> results(n);
  asdcap::Progress progress("features", static_cast<int64_t>(n));
  // One bad file fails the command. Files after the first failure are skipped, files before it
  // are still read, so the error reported is the one a serial run would report (parallel_for
  // rethrows the error of the lowest index).
  std::atomic<size_t> first_failure{n};
  asdcap::parallel_for(args.threads, static_cast<int64_t>(n), [&](int64_t item) {
    const auto i = static_cast<size_t>(item);
    if (i > first_failure.load()) return;
    try {
      results[i] = process(args.files[i], crop, mode, args.threads);
    } catch (...) {
      size_t seen = first_failure.load();
      while (i < seen && !first_failure.compare_exchange_weak(seen, i)) {
      }
      progress.tick();
      throw;
    }
    progress.tick();
  });

  int64_t total_rows = 0;
  for (const auto& r : results) total_rows += static_cast<int64_t>(r.rows.size());
  const size_t row_size = static_cast<size_t>(asdcap::kWindowFrames) * asdcap::kMelBins;
  std::vector<float> data;
  data.reserve(static_cast<size_t>(total_rows) * row_size);
  nlohmann::json rows = nlohmann::json::array(), files = nlohmann::json::array();
  int64_t row = 0;
  for (size_t i = 0; i < n; ++i) {
    auto& r = results[i];
    files.push_back({{"file", args.files[i]},
                     {"format", r.info.format},
                     {"sample_rate", r.info.sample_rate},
                     {"channels", r.info.channels},
                     {"frames", r.info.frames},
                     {"samples_44k", r.samples_44k},
                     {"first_row", row},
                     {"n_rows", r.rows.size()}});
    for (size_t w = 0; w < r.rows.size(); ++w, ++row) {
      rows.push_back({{"row", row},
                      {"file", args.files[i]},
                      {"window", w},
                      {"start", r.starts[w]},
                      {"tiled", r.samples_44k <= asdcap::kWindowSamples}});
      data.insert(data.end(), r.rows[w].begin(), r.rows[w].end());
      std::vector<float>().swap(r.rows[w]);  // keep the peak memory at one copy
    }
  }
  asdcap::write_npy(args.out, data.data(), {total_rows, asdcap::kWindowFrames, asdcap::kMelBins});
  const nlohmann::json summary = {{"out", args.out},
                                  {"shape", {total_rows, asdcap::kWindowFrames, asdcap::kMelBins}},
                                  {"crop", crop.to_string()},
                                  {"channels", asdcap::to_string(mode)},
                                  {"rows", rows},
                                  {"files", files}};
  std::printf("%s\n", summary.dump(1).c_str());
}

void setup(CLI::App& app) {
  auto args = std::make_shared<FeaturesArgs>();
  auto* sub = app.add_subcommand("features",
                                 "Log-mel spectrograms (msclap's input to bn0) of audio files, as one float32 .npy");
  sub->footer(
      "Writes OUT.npy of shape (N, 965, 64): one 7-s window per row (44.1 kHz, 1024-point STFT, hop 320,\n"
      "64 Slaney mel bands, dB). Prints the mapping of rows to files as JSON on stdout.\n"
      "Clips of 7 s or less are tiled as msclap does, whatever --crop says.");
  sub->add_option("files", args->files, "Audio files (WAV, FLAC, OGG, ... any rate and channel count)")->required();
  sub->add_option("--out,-o", args->out, "Output .npy (written atomically; nothing is written on error)")->required();
  asdcap::cli::add_crop(sub, args->crop, {.random_by_content = false, .cover = "one row per window"});
  asdcap::cli::add_channels(sub, args->channels);
  asdcap::cli::add_threads(sub, args->threads);
  sub->callback([args] { run(*args); });
}

}  // namespace

ASDCAP_REGISTER_COMMAND(61, setup)
