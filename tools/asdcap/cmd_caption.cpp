// asdcap caption: msclap's audio captions (clapcap), one JSON line per file on stdout.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "asdcap/audio.hpp"
#include "asdcap/caption.hpp"
#include "asdcap/error.hpp"
#include "asdcap/model_file.hpp"
#include "command.hpp"
#include "core/files.hpp"
#include "core/progress.hpp"
#include "options.hpp"

namespace {

struct CaptionArgs {
  std::string model, prompt;
  asdcap::CropPolicy crop;
  asdcap::ChannelMode channels = asdcap::ChannelMode::Mean;
  std::vector<std::string> files;
  int beam = 5, max_tokens = 67, threads = 0;
  float temperature = 1.f;
  bool all_beams = false;
};

nlohmann::json beam_json(const asdcap::CaptionBeam& b) {
  return {{"text", b.text}, {"tokens", b.tokens}, {"score", b.score}};
}

void print_line(const nlohmann::json& j) {
  const std::string line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  std::fwrite(line.data(), 1, line.size(), stdout);
  std::fflush(stdout);
}

void run(const CaptionArgs& a) {
  if (a.beam < 1 || a.beam > 64) throw asdcap::UsageError("--beam must be between 1 and 64");
  if (a.max_tokens < 1) throw asdcap::UsageError("--max-tokens must be at least 1");
  const auto model = asdcap::ModelFile::open(a.model);
  const asdcap::Captioner captioner(model, {a.threads});
  asdcap::CaptionOptions opts;
  opts.beam = a.beam;
  opts.max_tokens = a.max_tokens;
  opts.temperature = a.temperature;
  opts.prompt = a.prompt;

  // Files go in chunks of kChunk: each chunk's clips are embedded, then captioned as one batch
  // (Captioner::caption_embeddings: one decoder pass per step for all of them, the same captions as
  // one at a time), then printed in order.
  constexpr size_t kChunk = 16;
  asdcap::Progress progress("caption", static_cast<int64_t>(a.files.size()));
  size_t failed = 0;
  for (size_t c0 = 0; c0 < a.files.size(); c0 += kChunk) {
    const size_t c1 = std::min(a.files.size(), c0 + kChunk);
    std::vector<nlohmann::json> lines;
    std::vector<std::vector<float>> embeddings;
    std::vector<size_t> embedded;  // index into lines of each embedding
    for (size_t i = c0; i < c1; ++i) {
      const std::string& file = a.files[i];
      lines.push_back({{"file", file}});
      try {
        const std::vector<float> signal = asdcap::load_audio_44k(file, a.channels);
        const std::string sha = a.crop.seeded_from_content() ? asdcap::sha256_file(file) : "";
        const asdcap::CropPolicy clip_crop = asdcap::resolve_clip_crop(a.crop, sha).policy;
        embeddings.push_back(captioner.audio_embedding(signal, clip_crop));
        embedded.push_back(lines.size() - 1);
      } catch (const asdcap::InvalidArgument& e) {
        // Every argument of the embedding comes from a flag (a crop offset beyond this clip): the
        // command line is wrong, not the file.
        throw asdcap::UsageError(file + ": " + e.what());
      } catch (const asdcap::ModelError&) {
        throw;
      } catch (const asdcap::Error& e) {
        // A bad audio file does not lose the other files' captions: it gets an error line.
        ++failed;
        lines.back()["error"] = e.what();
        std::fprintf(stderr, "asdcap: %s\n", e.what());
      }
    }
    std::vector<const float*> ptrs;
    for (const auto& e : embeddings) ptrs.push_back(e.data());
    std::vector<asdcap::CaptionResult> results;
    try {
      if (!ptrs.empty()) results = captioner.caption_embeddings(ptrs, opts);
    } catch (const asdcap::InvalidArgument& e) {
      // Too many tokens for the decoder, a bad temperature: flags again.
      throw asdcap::UsageError(e.what());
    }
    for (size_t k = 0; k < results.size(); ++k) {
      nlohmann::json& j = lines[embedded[k]];
      const asdcap::CaptionResult& r = results[k];
      j["caption"] = r.caption;
      j["tokens"] = r.beams.front().tokens;
      j["score"] = r.beams.front().score;
      if (a.all_beams) {
        j["beams"] = nlohmann::json::array();
        for (const auto& beam : r.beams) j["beams"].push_back(beam_json(beam));
      }
    }
    for (const auto& j : lines) {
      print_line(j);
      progress.tick();
    }
  }
  if (failed)
    throw asdcap::Error(std::to_string(failed) + " of " + std::to_string(a.files.size()) +
                        " files could not be captioned (see their \"error\" lines)");
}

void setup(CLI::App& app) {
  auto args = std::make_shared<CaptionArgs>();
  auto* sub = app.add_subcommand("caption",
                                 "Describe audio files in words with msclap's captioner (clapcap): JSON Lines "
                                 "{\"file\",\"caption\",\"tokens\",\"score\"} on stdout");
  asdcap::cli::add_model(sub, args->model, "with the captioner (converted with --clapcap)")->required();
  asdcap::cli::add_crop(sub, args->crop,
                        {.random_by_content = true, .cover = "window captions: the mean of the windows' prefixes"});
  asdcap::cli::add_channels(sub, args->channels);
  sub->add_option("--beam", args->beam, "Beam size (1 = greedy)")->capture_default_str();
  sub->add_option("--max-tokens", args->max_tokens, "Most tokens per caption (msclap's entry_length)")
      ->capture_default_str();
  sub->add_option("--temperature", args->temperature, "Softmax temperature")
      ->capture_default_str()
      ->check(CLI::Validator(
          [](std::string& text) {
            const float t = std::strtof(text.c_str(), nullptr);
            return std::isfinite(t) ? std::string() : "must be a finite number";
          },
          ""));
  sub->add_option("--prompt", args->prompt,
                  "Text the caption must continue, e.g. \"Sounds like\" (the caption then starts with it)");
  sub->add_flag("--all-beams", args->all_beams, "Also print every beam: \"beams\": [{\"text\",\"tokens\",\"score\"}]");
  asdcap::cli::add_threads(sub, args->threads);
  sub->add_option("files", args->files, "Audio files")->required();
  sub->callback([args] { run(*args); });
}

}  // namespace

ASDCAP_REGISTER_COMMAND(64, setup)
