// Pieces shared by the run folder's writers and readers (not a public interface).
#pragma once
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace asdcap {
struct ExplanationRecord;
}

namespace asdcap::run_detail {

// One explanations.jsonl record as JSON (also what asdcap serve attaches to an explained event).
nlohmann::ordered_json explanation_record_json(const ExplanationRecord& r);

std::string join(const std::string& dir, const std::string& name);

// One JSON value per line, as written to a .jsonl file (invalid UTF-8 replaced, never thrown on).
template <typename Json>
std::string jsonl_line(const Json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

// Calls `on_line` with each non-blank line of `path` parsed as JSON (keys in the file's order). A line that does not
// parse, has a "schema" newer than this asdcap's, or makes `on_line` throw is skipped and described in `problems`
// ("<file name> line N could not be read: why"). With `last_line_needs_break`, a final line without its line break (an
// interrupted append) is skipped and described too. Throws IoError when the file cannot be opened.
void read_jsonl(const std::string& path, bool last_line_needs_break, std::vector<std::string>* problems,
                const std::function<void(const nlohmann::ordered_json&)>& on_line);

}  // namespace asdcap::run_detail
