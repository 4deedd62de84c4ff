#include "asdcap/prompts.hpp"

#include <cstdio>
#include <nlohmann/json.hpp>

#include "asdcap/error.hpp"
#include "core/files.hpp"

namespace asdcap {

namespace {

// Papers §IV-A state the instruction's content ("begin their output sentence with 'This sound is'
// and finish it within 40 words") but not its wording; this is asdcap's sentence for it.
constexpr const char* kInstruction = "Begin your answer with \"This sound is\" and finish it within 40 words.";

// Papers §III-B, word for word.
constexpr const char* kTextTemplate =
    "The caption of the anomalous sound of {machine} is given as: {anomalous_caption}. "
    "On the other hand, the captions of the normal sounds of {machine} are given as: "
    "{normal_captions}. Please describe in broad strokes how this anomalous sound differs "
    "compared to the normal sounds.";

// Papers §III-C, word for word (the quoted prompt ends without a full stop).
constexpr const char* kZeroShotTemplate =
    "The acoustic features of the anomalous sound of {machine} are given as {anomalous_csv}. "
    "On the other hand, the acoustic features of the {k} normal sounds of {machine} are given "
    "as {normal_csv}";

// asdcap's fourth method: the zero-shot sentence about measured features, with the §III-B
// request so that the model knows what to compare.
constexpr const char* kAcousticTemplate =
    "The measured acoustic features of the anomalous sound of {machine} are given as "
    "{anomalous_csv}. On the other hand, the measured acoustic features of the {k} normal sounds "
    "of {machine} are given as {normal_csv}. Please describe in broad strokes how this anomalous "
    "sound differs compared to the normal sounds.";

std::string trim(const std::string& s) {
  const char* ws = " \t\r\n";
  size_t b = s.find_first_not_of(ws);
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(ws);
  return s.substr(b, e - b + 1);
}

std::string join(const std::vector<std::string>& items, const std::string& sep) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out += sep;
    out += items[i];
  }
  return out;
}

std::vector<std::string> similarity_cells(const std::vector<double>& row) {
  std::vector<std::string> cells;
  cells.reserve(row.size());
  for (double v : row) cells.push_back(format_similarity(v));
  return cells;
}

std::vector<std::string> text_cells(const std::vector<std::string>& texts) {
  std::vector<std::string> cells;
  for (const auto& t : texts) cells.push_back(csv_cell(t));
  return cells;
}

void check_row(const std::vector<double>& row, size_t n, const char* what) {
  if (row.size() != n)
    throw Error(std::string("prompt: ") + what + " has " + std::to_string(row.size()) + " similarities for " +
                std::to_string(n) + " reference texts");
}

}  // namespace

PromptTemplates PromptTemplates::defaults() {
  return {kInstruction, kTextTemplate, kZeroShotTemplate, kZeroShotTemplate, kAcousticTemplate};
}

PromptTemplates PromptTemplates::from_file(const std::string& path) {
  const std::string text = read_text_file(path);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(path + ": not valid JSON (" + e.what() + ")");
  }
  if (!j.is_object()) throw FormatError(path + ": templates must be a JSON object");
  PromptTemplates t = defaults();
  for (auto it = j.begin(); it != j.end(); ++it) {
    std::string* slot = nullptr;
    if (it.key() == "instruction")
      slot = &t.instruction;
    else if (it.key() == "text")
      slot = &t.text;
    else if (it.key() == "zeroshot")
      slot = &t.zeroshot;
    else if (it.key() == "combined")
      slot = &t.combined;
    else if (it.key() == "acoustic")
      slot = &t.acoustic;
    else
      throw FormatError(path + ": unknown template key \"" + it.key() +
                        "\" (expected instruction, text, zeroshot, combined, acoustic)");
    if (!it.value().is_string()) throw FormatError(path + ": template \"" + it.key() + "\" must be a string");
    *slot = it.value().get<std::string>();
  }
  return t;
}

const std::vector<std::string>& default_reference_texts() {
  static const std::vector<std::string> texts = {
      "Vibration",
      "High-frequency Squealing or Screeching",
      "Popping or Knocking Sounds",
      "Rhythmic Clicking or Tapping",
      "Grinding Sounds",
      "Irregular Patterns",
      "Low-frequency Humming",
      "Unexpected Silence",
  };
  return texts;
}

std::vector<std::string> load_reference_texts(const std::string& path) {
  const std::string content = read_text_file(path);
  std::vector<std::string> texts;
  size_t start = 0;
  while (start <= content.size()) {
    size_t end = content.find('\n', start);
    if (end == std::string::npos) end = content.size();
    std::string line = trim(content.substr(start, end - start));
    if (!line.empty() && line[0] != '#') texts.push_back(line);
    start = end + 1;
  }
  if (texts.empty()) throw FormatError(path + ": no reference texts (one text per line)");
  return texts;
}

std::string format_similarity(double value) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.4f", value);
  std::string s = buf;
  if (s == "-0.0000") s = "0.0000";
  return s;
}

std::string csv_cell(const std::string& text) {
  if (text.find_first_of(",\"\n\r") == std::string::npos) return text;
  std::string out = "\"";
  for (char c : text) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string csv_line(const std::vector<std::string>& cells) { return join(cells, ", ") + ","; }

std::string csv_block(const std::vector<std::string>& lines) { return "\n" + join(lines, "\n") + "\n"; }

std::string fill_template(const std::string& tmpl, const std::vector<std::pair<std::string, std::string>>& values) {
  std::string out;
  size_t i = 0;
  while (i < tmpl.size()) {
    if (tmpl[i] == '{') {
      size_t close = tmpl.find('}', i);
      if (close != std::string::npos) {
        const std::string name = tmpl.substr(i + 1, close - i - 1);
        bool replaced = false;
        for (const auto& [key, value] : values) {
          if (key == name) {
            out += value;
            replaced = true;
            break;
          }
        }
        if (replaced) {
          i = close + 1;
          continue;
        }
      }
    }
    out += tmpl[i++];
  }
  return out;
}

std::string build_text_prompt(const PromptTemplates& t, const std::string& machine,
                              const std::string& anomalous_caption, const std::vector<std::string>& normal_captions) {
  std::vector<std::string> normals;
  for (const auto& c : normal_captions) normals.push_back(trim(c));
  return t.instruction + "\n" +
         fill_template(t.text, {{"machine", machine},
                                {"k", std::to_string(normal_captions.size())},
                                {"anomalous_caption", trim(anomalous_caption)},
                                {"normal_captions", join(normals, ", ")}});
}

std::string build_zeroshot_prompt(const PromptTemplates& t, const std::string& machine,
                                  const std::vector<std::string>& texts, const std::vector<double>& anomalous,
                                  const std::vector<std::vector<double>>& normals) {
  check_row(anomalous, texts.size(), "the anomalous sound");
  const std::string header = csv_line(text_cells(texts));
  std::vector<std::string> normal_lines{header};
  for (const auto& row : normals) {
    check_row(row, texts.size(), "a normal sound");
    normal_lines.push_back(csv_line(similarity_cells(row)));
  }
  return t.instruction + "\n" +
         fill_template(t.zeroshot, {{"machine", machine},
                                    {"k", std::to_string(normals.size())},
                                    {"anomalous_csv", csv_block({header, csv_line(similarity_cells(anomalous))})},
                                    {"normal_csv", csv_block(normal_lines)}});
}

std::string build_combined_prompt(const PromptTemplates& t, const std::string& machine,
                                  const std::vector<std::string>& texts, const std::string& anomalous_caption,
                                  const std::vector<double>& anomalous, const std::vector<std::string>& normal_captions,
                                  const std::vector<std::vector<double>>& normals, const ExtraColumns* extra) {
  check_row(anomalous, texts.size(), "the anomalous sound");
  if (normal_captions.size() != normals.size())
    throw Error("prompt: " + std::to_string(normal_captions.size()) + " captions for " +
                std::to_string(normals.size()) + " normal sounds");
  if (extra && (extra->anomalous.size() != extra->headers.size() || extra->normals.size() != normals.size()))
    throw Error("prompt: extra columns do not match the sounds");
  std::vector<std::string> header{"caption"};
  for (const auto& c : text_cells(texts)) header.push_back(c);
  if (extra)
    for (const auto& h : extra->headers) header.push_back(csv_cell(h));
  auto row = [&](const std::string& caption, const std::vector<double>& sims, const std::vector<std::string>* more) {
    std::vector<std::string> cells{csv_cell(trim(caption))};
    for (const auto& c : similarity_cells(sims)) cells.push_back(c);
    if (more)
      for (const auto& c : *more) cells.push_back(csv_cell(c));
    return csv_line(cells);
  };
  const std::string header_line = csv_line(header);
  std::vector<std::string> normal_lines{header_line};
  for (size_t i = 0; i < normals.size(); ++i) {
    check_row(normals[i], texts.size(), "a normal sound");
    if (extra && extra->normals[i].size() != extra->headers.size())
      throw Error("prompt: extra columns do not match the sounds");
    normal_lines.push_back(row(normal_captions[i], normals[i], extra ? &extra->normals[i] : nullptr));
  }
  const std::string anomalous_line = row(anomalous_caption, anomalous, extra ? &extra->anomalous : nullptr);
  return t.instruction + "\n" +
         fill_template(t.combined, {{"machine", machine},
                                    {"k", std::to_string(normals.size())},
                                    {"anomalous_csv", csv_block({header_line, anomalous_line})},
                                    {"normal_csv", csv_block(normal_lines)}});
}

std::string build_acoustic_prompt(const PromptTemplates& t, const std::string& machine,
                                  const std::vector<std::string>& headers, const std::vector<std::string>& anomalous,
                                  const std::vector<std::vector<std::string>>& normals) {
  if (anomalous.size() != headers.size()) throw Error("prompt: acoustic row does not match its header");
  std::vector<std::string> header_cells;
  for (const auto& h : headers) header_cells.push_back(csv_cell(h));
  const std::string header = csv_line(header_cells);
  std::vector<std::string> normal_lines{header};
  for (const auto& row : normals) {
    if (row.size() != headers.size()) throw Error("prompt: acoustic row does not match its header");
    normal_lines.push_back(csv_line(row));
  }
  return t.instruction + "\n" +
         fill_template(t.acoustic, {{"machine", machine},
                                    {"k", std::to_string(normals.size())},
                                    {"anomalous_csv", csv_block({header, csv_line(anomalous)})},
                                    {"normal_csv", csv_block(normal_lines)}});
}

}  // namespace asdcap
