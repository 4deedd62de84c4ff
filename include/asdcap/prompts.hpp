// The LLM prompts of the papers (§III-B, §III-C, §IV-A), word for word, plus asdcap's acoustic one.
//
// Templates hold placeholders in braces; fill_template replaces them and nothing else:
//   {machine}            machine name from the dataset (e.g. "fan")
//   {k}                  number of reference normal sounds
//   {anomalous_caption}  caption of the anomaly-identified sound (text method)
//   {normal_captions}    the k captions, separated with ", " (text method)
//   {anomalous_csv}      CSV block of the anomalous sound (zero-shot, combined, acoustic)
//   {normal_csv}         CSV block of the k normal sounds (zero-shot, combined, acoustic)
// A CSV block is "\n" + header line + "\n" + one line per sound + "\n": every line is its
// cells joined by ", " and closed by a "," (the papers' layout); lines are joined by "\n".
// The instruction is placed before each prompt, separated by one "\n".
#pragma once
#include <string>
#include <vector>

namespace asdcap {

struct PromptTemplates {
  std::string instruction;  // the papers' common instruction (§IV-A)
  std::string text;         // text-decoder method (§III-B)
  std::string zeroshot;     // zero-shot method (§III-C)
  std::string combined;     // captions + similarities in one CSV (§III-C, last paragraph)
  std::string acoustic;     // asdcap: measured acoustic evidence as CSV

  static PromptTemplates defaults();
  // JSON object with any of the keys instruction/text/zeroshot/combined/acoustic (strings);
  // missing keys keep the default. Throws IoError / FormatError naming the file.
  static PromptTemplates from_file(const std::string& path);
};

// The papers' 8 reference texts, in the papers' order.
const std::vector<std::string>& default_reference_texts();
// One text per line; blank lines and surrounding whitespace ignored; '#' starts a comment line.
std::vector<std::string> load_reference_texts(const std::string& path);

// Cosine similarities as written into prompts: fixed point, 4 decimals ("0.1234", "-0.0567").
std::string format_similarity(double value);
// A CSV cell: as is, unless it holds a comma, quote or newline: then RFC 4180 quoted.
std::string csv_cell(const std::string& text);
// One CSV line in the papers' layout: cells joined by ", " and closed by ",".
std::string csv_line(const std::vector<std::string>& cells);
// "\n" + lines joined by "\n" + "\n" (see the file comment).
std::string csv_block(const std::vector<std::string>& lines);

// Replaces every {name} of `values` in `tmpl`; other braces are left alone.
std::string fill_template(const std::string& tmpl, const std::vector<std::pair<std::string, std::string>>& values);

// The full prompts (instruction + "\n" + filled method template).
std::string build_text_prompt(const PromptTemplates& t, const std::string& machine,
                              const std::string& anomalous_caption, const std::vector<std::string>& normal_captions);
// similarities: rows are sounds (anomalous first for `anomalous`), columns the texts.
std::string build_zeroshot_prompt(const PromptTemplates& t, const std::string& machine,
                                  const std::vector<std::string>& texts, const std::vector<double>& anomalous,
                                  const std::vector<std::vector<double>>& normals);
// Columns: caption, texts..., then optional extra columns (e.g. acoustic evidence) with cells
// given per sound.
struct ExtraColumns {
  std::vector<std::string> headers;
  std::vector<std::string> anomalous;             // one cell per header
  std::vector<std::vector<std::string>> normals;  // per normal sound, one cell per header
};
std::string build_combined_prompt(const PromptTemplates& t, const std::string& machine,
                                  const std::vector<std::string>& texts, const std::string& anomalous_caption,
                                  const std::vector<double>& anomalous, const std::vector<std::string>& normal_captions,
                                  const std::vector<std::vector<double>>& normals, const ExtraColumns* extra = nullptr);
// headers: feature names with units; cells already formatted.
std::string build_acoustic_prompt(const PromptTemplates& t, const std::string& machine,
                                  const std::vector<std::string>& headers, const std::vector<std::string>& anomalous,
                                  const std::vector<std::vector<std::string>>& normals);

}  // namespace asdcap
