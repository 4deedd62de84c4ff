// asdcap similarity: audio-text similarities (cosine, msclap's scaled logits or zero-shot softmax).
#include <algorithm>
#include <cstdio>
#include <memory>

#include "asdcap/clap.hpp"
#include "asdcap/error.hpp"
#include "asdcap/text_encoder.hpp"
#include "audio_input.hpp"
#include "command.hpp"
#include "core/csv.hpp"

namespace {

using asdcap::csv_field;

struct SimilarityArgs {
  std::string model, measure = "cosine";
  std::vector<std::string> texts;
  asdcap::cli::AudioInput input;
  bool csv = false;
};

void run(const SimilarityArgs& a) {
  const auto& files = a.input.files;
  if (files.empty()) throw asdcap::UsageError("similarity: no audio FILE given");
  if (a.texts.empty()) throw asdcap::UsageError("similarity: give at least one --text");
  const auto model = asdcap::ModelFile::open(a.model);
  const asdcap::TextEncoder text_encoder(model, {a.input.threads});
  const asdcap::AudioEncoder audio_encoder(model, "audio.", {a.input.threads});
  const auto text = asdcap::cli::rethrow_for_flag("--text", [&] { return text_encoder.embed(a.texts); });
  const auto outs = a.input.encode(audio_encoder, "embedding");
  std::vector<float> audio;
  for (const auto& o : outs) audio.insert(audio.end(), o.embedding.begin(), o.embedding.end());
  const int64_t na = static_cast<int64_t>(outs.size()), nt = static_cast<int64_t>(a.texts.size());
  const int64_t dim = audio_encoder.dim();
  std::vector<float> values;
  if (a.measure == "cosine") {
    values = asdcap::cosine_matrix(audio.data(), na, text.data(), nt, dim);
  } else {
    values = asdcap::scaled_logits(audio.data(), na, text.data(), nt, dim, model->config().logit_scale);
    if (a.measure == "softmax") values = asdcap::softmax_rows_copy(values, na, nt);
  }
  if (a.csv) {
    std::printf("file");
    for (const auto& t : a.texts) std::printf(",%s", csv_field(t).c_str());
    std::printf("\n");
    for (int64_t i = 0; i < na; ++i) {
      std::printf("%s", csv_field(files[static_cast<size_t>(i)]).c_str());
      for (int64_t j = 0; j < nt; ++j) std::printf(",%.6f", values[static_cast<size_t>(i * nt + j)]);
      std::printf("\n");
    }
  } else {
    // One block per file: texts ranked by similarity.
    for (int64_t i = 0; i < na; ++i) {
      std::printf("%s\n", files[static_cast<size_t>(i)].c_str());
      std::vector<int64_t> order;
      for (int64_t j = 0; j < nt; ++j) order.push_back(j);
      std::stable_sort(order.begin(), order.end(),
                       [&](int64_t x, int64_t y) { return values[i * nt + x] > values[i * nt + y]; });
      for (int64_t j : order)
        std::printf("  %9.4f  %s\n", values[static_cast<size_t>(i * nt + j)], a.texts[static_cast<size_t>(j)].c_str());
    }
  }
  std::fflush(stdout);
}

void setup(CLI::App& app) {
  auto a = std::make_shared<SimilarityArgs>();
  auto* sub = app.add_subcommand("similarity", "Similarity of audio files to texts in CLAP's joint space (zero-shot)");
  asdcap::cli::add_model(sub, a->model)->required();
  sub->add_option("--text", a->texts, "A text to compare with (repeatable: --text A --text B)")
      ->allow_extra_args(false)
      ->required();
  sub->add_option("--measure", a->measure,
                  "Measure: cosine; logits (msclap: exp(logit_scale) * cosine); softmax (zero-shot probabilities "
                  "over the texts)")
      ->capture_default_str()
      ->check(CLI::IsMember({"cosine", "logits", "softmax"}));
  sub->add_flag("--csv", a->csv, "CSV output: a header row file,<texts...>, then one row per file");
  a->input.add_options(sub, "embeddings averaged");
  sub->callback([a] { run(*a); });
}

}  // namespace

ASDCAP_REGISTER_COMMAND(63, setup)
