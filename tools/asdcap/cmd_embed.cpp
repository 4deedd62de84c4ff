// asdcap embed: CLAP, PANNs or LAION-CLAP audio embeddings of files, or CLAP text embeddings, as an (N, d) .npy.
#include <cmath>
#include <cstdio>
#include <memory>

#include "asdcap/clap.hpp"
#include "asdcap/error.hpp"
#include "asdcap/laion.hpp"
#include "asdcap/npy.hpp"
#include "asdcap/panns.hpp"
#include "asdcap/text_encoder.hpp"
#include "audio_input.hpp"
#include "command.hpp"

namespace {

struct EmbedArgs {
  std::string model, out;
  std::vector<std::string> texts;
  asdcap::cli::AudioInput input;
};

// CNN14's 2048-d embeddings (fc1 + ReLU) of the files; PANNs has no text encoder.
std::vector<float> panns_rows(const EmbedArgs& a, int64_t& n, int64_t& dim) {
  if (!a.texts.empty())
    throw asdcap::UsageError("embed: " + a.model + " is a PANNs model: it has no text encoder (--text needs CLAP)");
  const auto model = asdcap::PannsModel::open(a.model, a.input.threads);
  std::vector<float> rows;
  for (const auto& o : a.input.run(*model, "embedding"))
    rows.insert(rows.end(), o.embedding.begin(), o.embedding.end());
  n = static_cast<int64_t>(a.input.files.size());
  dim = model->config().embedding_dim;
  return rows;
}

void run(const EmbedArgs& a) {
  if (a.texts.empty() == a.input.files.empty())
    throw asdcap::UsageError("embed: give audio FILEs or --text, not both and not neither");
  std::vector<float> rows;
  int64_t n = 0, dim = 0;
  if (asdcap::is_laion_model_file(a.model)) {
    if (!a.texts.empty()) throw asdcap::UsageError("embed: --text needs a CLAP model with a text encoder (msclap)");
    const auto laion = asdcap::LaionModel::open(a.model, a.input.threads);
    const auto outs = a.input.encode(*laion, "embedding");
    for (const auto& o : outs) rows.insert(rows.end(), o.embedding.begin(), o.embedding.end());
    n = static_cast<int64_t>(outs.size());
    dim = static_cast<int64_t>(laion->config().joint_dim);
  } else if (asdcap::is_panns_model_file(a.model)) {
    rows = panns_rows(a, n, dim);
  } else if (const auto model = asdcap::ModelFile::open(a.model); !a.texts.empty()) {
    const asdcap::TextEncoder encoder(model, {a.input.threads});
    rows = asdcap::cli::rethrow_for_flag("--text", [&] { return encoder.embed(a.texts); });
    n = static_cast<int64_t>(a.texts.size());
    dim = encoder.dim();
  } else {
    const asdcap::AudioEncoder encoder(model, "audio.", {a.input.threads});
    const auto outs = a.input.encode(encoder, "embedding");
    for (const auto& o : outs) rows.insert(rows.end(), o.embedding.begin(), o.embedding.end());
    n = static_cast<int64_t>(outs.size());
    dim = encoder.dim();
  }
  if (static_cast<int64_t>(rows.size()) != n * dim) throw asdcap::Error("embed: encoder returned a wrong size");
  // A row that is not finite (e.g. from NaN weights) is refused: nothing is written.
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < dim; ++j)
      if (!std::isfinite(rows[static_cast<size_t>(i * dim + j)])) {
        const auto at = static_cast<size_t>(i);
        const std::string what = a.texts.empty() ? a.input.files.at(at) : "--text \"" + a.texts.at(at) + "\"";
        throw asdcap::FormatError(what + ": its embedding is not finite (NaN or infinity); " + a.out +
                                  " was not written");
      }
  asdcap::write_npy(a.out, rows.data(), {n, dim});
  std::fprintf(stderr, "asdcap embed: wrote %s (%lld x %lld float32)\n", a.out.c_str(), static_cast<long long>(n),
               static_cast<long long>(dim));
}

void setup(CLI::App& app) {
  auto a = std::make_shared<EmbedArgs>();
  auto* sub = app.add_subcommand(
      "embed", "CLAP embeddings of audio files or texts, or PANNs CNN14 embeddings of audio files, as an (N, d) .npy");
  asdcap::cli::add_model(sub, a->model, "of msclap or PANNs CNN14 (which one: read from the file)")->required();
  sub->add_option("--out", a->out, "Output .npy: float32 (N, d), one row per FILE or --text, in order")->required();
  sub->add_option("--text", a->texts, "Embed this text instead of audio (repeatable: --text A --text B)")
      ->allow_extra_args(false);
  a->input.add_options(sub, "embeddings averaged", /*files_required=*/false);
  a->input.crop_option->default_str("random; whole for a PANNs model");
  sub->callback([a] { run(*a); });
}

}  // namespace

ASDCAP_REGISTER_COMMAND(60, setup)
