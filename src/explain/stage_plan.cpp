// Plan: which methods run, and what this run can deliver for them.
#include <algorithm>
#include <filesystem>

#include "asdcap/backend.hpp"
#include "asdcap/error.hpp"
#include "stages.hpp"

namespace asdcap::explain_detail {

bool needs_captions(const std::string& m) { return m == "text" || m == "combined"; }
bool needs_similarity(const std::string& m) { return m == "zeroshot" || m == "combined"; }

void check_options(const ExplainOptions& o) {
  if (o.out_dir.empty()) throw InvalidArgument("explain: no run folder given");
  if (o.llm != "offline" && o.llm != "openai")
    throw InvalidArgument("explain: unknown LLM back end \"" + o.llm + "\" (expected offline or openai)");
  if (!o.all_flagged && o.top < 1)
    throw InvalidArgument("explain: the number of clips per machine ID must be at least 1");
  if (o.llm == "openai" && o.llm_options.model.empty())
    throw InvalidArgument("explain: the openai LLM back end needs a model name");
  for (const auto& m : o.methods) parse_methods(m);
}

std::string Plan::method_missing(const std::string& m) const {
  if (needs_captions(m) && !caption_missing.empty()) return caption_missing;
  if (needs_similarity(m) && !similarity_missing.empty()) return similarity_missing;
  return "";
}

Plan make_plan(const ExplainOptions& o, const RunInputs& run) {
  // The CLAP methods take detection's windows when detection worked at msclap's 44.1 kHz (msclap,
  // acoustic), so that they share its cached embeddings; otherwise (e.g. panns' whole clips) msclap's
  // default.
  const bool windows_44k = run.settings.backend == "msclap" || run.settings.backend == "acoustic";
  return make_plan(o, windows_44k ? run.crop : CropPolicy{}, run.channels,
                   (std::filesystem::path(o.out_dir) / "cache.sqlite").string());
}

Plan make_plan(const ExplainOptions& o, const CropPolicy& crop, ChannelMode channels, const std::string& cache_path) {
  Plan p;
  for (const auto& m : o.methods)
    for (const auto& x : parse_methods(m))
      if (std::find(p.methods.begin(), p.methods.end(), x) == p.methods.end()) p.methods.push_back(x);
  if (p.methods.empty()) p.methods = o.model_path.empty() ? std::vector<std::string>{"acoustic"} : parse_methods("all");
  p.texts = o.texts.empty() ? default_reference_texts() : o.texts;
  for (const auto& m : p.methods) {
    p.want_captions |= needs_captions(m);
    p.want_similarity |= needs_similarity(m);
  }
  p.not_needed = o.model_path.empty() ? "no model: captions and similarities need a CLAP model file (--model MODEL)"
                                      : "not needed by the chosen --method";
  if (p.want_captions || p.want_similarity) {
    if (o.model_path.empty()) {
      p.caption_missing = "no model: captions need CLAP's captioner (--model MODEL)";
      p.similarity_missing = "no model: similarities need CLAP's audio and text encoders (--model MODEL)";
    } else {
      // The CLAP methods need an msclap model file, whatever backend detected the anomalies.
      if (const std::string backend = backend_for_model_file(o.model_path); backend != "msclap")
        throw InvalidArgument("explain: " + o.model_path + " is a " + backend +
                              " model file: captions and similarities need an msclap model (--model), "
                              "the acoustic method none (--method acoustic)");
      p.clap = std::make_unique<ClapMethods>(o.model_path, crop, channels, cache_path, o.threads);
      p.caption_missing = p.clap->caption_missing();
      p.similarity_missing = p.clap->similarity_missing();
    }
  }
  open_llm(p, o);
  return p;
}

void open_llm(Plan& p, const ExplainOptions& o) {
  p.llm_backend = o.llm;
  if (o.llm == "openai") {
    p.client = std::make_unique<OpenAiClient>(o.llm_options);
    p.llm_model = o.llm_options.model;
  } else {
    p.llm_model = "asdcap-offline-1";
  }
}

}  // namespace asdcap::explain_detail
