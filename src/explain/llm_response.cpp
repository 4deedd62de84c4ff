// The body of an OpenAI-compatible chat completion, read and checked (no network here).
#include "explain/llm_response.hpp"

#include <nlohmann/json.hpp>

#include "asdcap/error.hpp"
#include "asdcap/llm.hpp"

namespace asdcap {

namespace {

std::string trim(const std::string& s) {
  const char* ws = " \t\r\n";
  size_t b = s.find_first_not_of(ws);
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

}  // namespace

std::string clean_answer(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == 0x1b) {  // ESC: a CSI sequence "ESC [ params final" or a two-byte escape
      if (i + 1 < text.size() && text[i + 1] == '[') {
        i += 2;
        while (i < text.size() && !(text[i] >= 0x40 && text[i] <= 0x7e)) ++i;
      } else {
        ++i;
      }
      continue;
    }
    if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f) continue;
    // C1 controls (U+0080-U+009F) are C2 80 .. C2 9F in UTF-8.
    if (c == 0xc2 && i + 1 < text.size() && static_cast<unsigned char>(text[i + 1]) < 0xa0 &&
        static_cast<unsigned char>(text[i + 1]) >= 0x80) {
      ++i;
      continue;
    }
    out.push_back(static_cast<char>(c));
  }
  return trim(out);
}

namespace explain_detail {

std::string parse_chat_completion(const std::string& body, std::string* model) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(body);
  } catch (const nlohmann::json::exception&) {
    throw FormatError("the response is not JSON");
  }
  if (!j.is_object() || !j.contains("choices") || !j["choices"].is_array() || j["choices"].empty())
    throw FormatError("the response has no \"choices\"");
  const auto& choice = j["choices"][0];
  if (!choice.is_object() || !choice.contains("message") || !choice["message"].is_object() ||
      !choice["message"].contains("content") || !choice["message"]["content"].is_string())
    throw FormatError("the response has no choices[0].message.content string");
  if (j.contains("model") && j["model"].is_string()) *model = j["model"];
  std::string answer = clean_answer(choice["message"]["content"].get<std::string>());
  if (answer.empty()) throw FormatError("the answer is empty");
  return answer;
}

}  // namespace explain_detail

}  // namespace asdcap
