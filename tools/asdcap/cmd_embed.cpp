// asdcap embed: CLAP audio embeddings of files, or text embeddings, as an (N, d) .npy.
#include <cstdio>
#include <memory>

#include "asdcap/clap.hpp"
#include "asdcap/error.hpp"
#include "asdcap/nn.hpp"
#include "asdcap/npy.hpp"
#include "asdcap/progress.hpp"
#include "asdcap/text_encoder.hpp"
#include "command.hpp"

namespace {

struct EmbedArgs {
  std::string model, out, crop = "random", channels = "mean";
  std::vector<std::string> texts, files;
  int threads = 0;
};

void run(const EmbedArgs& a) {
  if (a.texts.empty() == a.files.empty())
    throw asdcap::UsageError("embed: give audio FILEs or --text, not both and not neither");
  asdcap::nn::set_threads(a.threads);
  const auto model = asdcap::ModelFile::open(a.model);
  std::vector<float> rows;
  int64_t n = 0, dim = 0;
  if (!a.texts.empty()) {
    const asdcap::TextEncoder encoder(model);
    rows = encoder.embed(a.texts);
    n = static_cast<int64_t>(a.texts.size());
    dim = encoder.dim();
  } else {
    const asdcap::AudioEncoder encoder(model, "audio.");
    const auto crop = asdcap::CropPolicy::parse(a.crop);
    const auto mode = a.channels == "concat" ? asdcap::ChannelMode::Concat : asdcap::ChannelMode::Mean;
    asdcap::Progress progress("embedding", static_cast<int64_t>(a.files.size()));
    const auto outs = asdcap::encode_files(encoder, a.files, crop, mode, [&] { progress.tick(); });
    for (const auto& o : outs) rows.insert(rows.end(), o.embedding.begin(), o.embedding.end());
    n = static_cast<int64_t>(outs.size());
    dim = encoder.dim();
  }
  if (static_cast<int64_t>(rows.size()) != n * dim) throw asdcap::Error("embed: encoder returned a wrong size");
  asdcap::write_npy(a.out, rows.data(), {n, dim});
  std::fprintf(stderr, "asdcap embed: wrote %s (%lld x %lld float32)\n", a.out.c_str(), static_cast<long long>(n),
               static_cast<long long>(dim));
}

void setup(CLI::App& app) {
  auto a = std::make_shared<EmbedArgs>();
  auto* sub = app.add_subcommand("embed", "CLAP embeddings of audio files or texts, written as an (N, d) .npy");
  sub->add_option("--model", a->model, "model file (GGUF, from asdcap convert)")->required();
  sub->add_option("--out", a->out, "output .npy: float32 (N, d), one row per FILE or --text, in order")->required();
  sub->add_option("--text", a->texts, "embed this text instead of audio (repeatable: --text A --text B)")
      ->allow_extra_args(false);
  sub->add_option("--crop", a->crop,
                  "7-s window(s) per file: random (seeded by the file's content hash), random:SEED, offset:N, "
                  "cover (all windows, embeddings averaged)")
      ->capture_default_str();
  sub->add_option("--channels", a->channels, "multi-channel files: mean (average) or concat (msclap's behaviour)")
      ->capture_default_str()
      ->check(CLI::IsMember({"mean", "concat"}));
  sub->add_option("--threads", a->threads, "threads (0: all cores)")->capture_default_str()->check(CLI::Range(0, 1024));
  sub->add_option("files", a->files, "audio files (WAV, FLAC, OGG...)");
  sub->callback([a] { run(*a); });
}

}  // namespace

ASDCAP_REGISTER_COMMAND(20, setup)
