#include "options.hpp"

#include <charconv>

namespace asdcap::cli {

CropPolicy parse_crop_flag(const std::string& flag, const std::string& text) {
  return rethrow_for_flag(flag, [&] { return CropPolicy::parse(text); });
}

ChannelMode parse_channels_flag(const std::string& flag, const std::string& text) {
  return rethrow_for_flag(flag, [&] { return parse_channel_mode(text); });
}

int parse_threads_flag(const std::string& flag, const std::string& text) {
  int value = -1;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value < 0 || value > kMaxThreads)
    throw UsageError(flag + ": '" + text + "' is not a thread count: expected a whole number from 0 (all cores) to " +
                     std::to_string(kMaxThreads));
  return value;
}

CLI::Option* add_crop(CLI::App* sub, CropPolicy& target, const CropMeaning& meaning) {
  const std::string random = meaning.random_by_content
                                 ? "seeded by the clip's content hash, so a rerun takes the same window"
                                 : "a fresh seed each run, as msclap";
  const std::string help =
      "Which 7-s window(s) of each clip: random (" + random +
      "), random:SEED (the same seed for every clip), "
      "offset:N (the window from sample N of the signal at the backend's rate, 44.1 kHz for msclap), "
      "cover (consecutive windows covering the clip, "
      "the last ending at its end; " +
      meaning.cover +
      "), whole (the whole clip as one window, for backends that take any length: panns). "
      "Clips of 7 s or less are tiled, whatever the policy but whole";
  return sub
      ->add_option_function<std::string>(
          "--crop", [&target](const std::string& text) { target = parse_crop_flag("--crop", text); }, help)
      ->type_name("POLICY")
      ->default_str(target.to_string());
}

CLI::Option* add_channels(CLI::App* sub, ChannelMode& target) {
  return sub
      ->add_option_function<std::string>(
          "--channels", [&target](const std::string& text) { target = parse_channels_flag("--channels", text); },
          "Multi-channel files: mean (average the channels) or concat (msclap: the channels one after the other)")
      ->type_name("MODE")
      ->default_str(to_string(target));
}

CLI::Option* add_threads(CLI::App* sub, int& target) {
  return sub
      ->add_option_function<std::string>(
          "--threads", [&target](const std::string& text) { target = parse_threads_flag("--threads", text); },
          "Worker threads (0: all cores)")
      ->type_name("N")
      ->default_str(std::to_string(target));
}

CLI::Option* add_model(CLI::App* sub, std::string& target, const std::string& holds) {
  return sub
      ->add_option("--model", target,
                   "Model file (GGUF, from `asdcap convert`)" + (holds.empty() ? std::string() : " " + holds))
      ->type_name("FILE");
}

void require_model_for_backend(const std::string& backend, const std::string& model) {
  if (!backend.empty() && backend != "acoustic" && backend != "ae" && model.empty())
    throw UsageError("--backend " + backend + " needs --model FILE");
}

void add_explain_flags(CLI::App* sub, ExplainOptions& o, ExplainFiles& files) {
  sub->add_option("--llm", o.llm,
                  "Who writes the sentence: offline (built-in, deterministic) or openai "
                  "(any OpenAI-compatible server: OPENAI_BASE_URL, OPENAI_API_KEY)")
      ->capture_default_str()
      ->check(CLI::IsMember({"offline", "openai"}));
  sub->add_option("--llm-model", o.llm_options.model, "Model name for --llm openai (e.g. gpt-4o, llama3)");
  sub->add_option("--llm-timeout", o.llm_options.timeout_s, "Seconds per request attempt")
      ->capture_default_str()
      ->check(CLI::Range(0.1, 3600.0));
  sub->add_option("--llm-retries", o.llm_options.max_retries,
                  "Extra attempts after 429/5xx/timeouts (exponential backoff)")
      ->capture_default_str()
      ->check(CLI::Range(0, 20));
  sub->add_option("--llm-temperature", o.llm_options.temperature,
                  "Sampling temperature sent to the server (default: not sent)");
  sub->add_option("--texts", files.texts, "Reference texts, one per line (default: the papers' 8)");
  sub->add_option("--templates", files.templates,
                  "JSON object overriding prompt templates: instruction, text, zeroshot, combined, acoustic");
  sub->add_option("--caption-prompt", o.caption_prompt, "Forced beginning of the captions")->capture_default_str();
  sub->add_flag("--combined-evidence", o.combined_evidence,
                "Add the acoustic evidence columns to the combined method's CSV");
  sub->add_option("--machine-parts", files.machine_parts,
                  "What a machine type is built of, for the causes the built-in explainer suggests (repeatable): "
                  "TYPE=LIST with LIST flow, rotor, gears joined by commas, or none (e.g. line3-motor=rotor). "
                  "Default: guessed from the type's name")
      ->type_name("TYPE=LIST");
}

std::map<std::string, MachineParts> parse_machine_parts_flags(const std::vector<std::string>& values) {
  std::map<std::string, MachineParts> parts;
  for (const auto& v : values) {
    const auto eq = v.find('=');
    if (eq == std::string::npos || eq == 0)
      throw UsageError("--machine-parts \"" + v + "\": expected TYPE=LIST (e.g. line3-motor=rotor)");
    const std::string type = v.substr(0, eq);
    if (parts.count(type)) throw UsageError("--machine-parts: machine type \"" + type + "\" given twice");
    try {
      parts[type] = parse_machine_parts(v.substr(eq + 1));
    } catch (const InvalidArgument& e) {
      throw UsageError("--machine-parts " + type + ": " + e.what());
    }
  }
  return parts;
}

void finish_explain_flags(ExplainOptions& o, const ExplainFiles& files) {
  if (o.llm == "openai" && o.llm_options.model.empty()) throw UsageError("--llm openai needs --llm-model NAME");
  if (!files.texts.empty()) o.texts = load_reference_texts(files.texts);
  if (!files.templates.empty()) o.templates = PromptTemplates::from_file(files.templates);
  o.machine_parts = parse_machine_parts_flags(files.machine_parts);
  o.llm_options = llm_options_from_env(o.llm_options);
  if (o.llm == "openai") rethrow_for_flags([&] { OpenAiClient check(o.llm_options); });  // the address, before any work
}

CLI::Option* add_quiet(CLI::App* sub, bool& target) {
  return sub->add_flag("--quiet", target, "No progress lines on stderr");
}

}  // namespace asdcap::cli
