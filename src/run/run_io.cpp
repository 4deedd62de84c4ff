#include "run/run_io.hpp"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "asdcap/error.hpp"
#include "asdcap/run.hpp"

namespace asdcap::run_detail {

std::string join(const std::string& dir, const std::string& name) {
  return (std::filesystem::path(dir) / name).string();
}

void read_jsonl(const std::string& path, bool last_line_needs_break, std::vector<std::string>* problems,
                const std::function<void(const nlohmann::ordered_json&)>& on_line) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(path + ": cannot open");
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string text = buffer.str();
  const std::string name = std::filesystem::path(path).filename().string();
  auto problem = [&](int number, const std::string& why) {
    if (problems) problems->push_back(name + " line " + std::to_string(number) + " could not be read: " + why);
  };
  size_t start = 0;
  for (int number = 1; start < text.size(); ++number) {
    size_t end = text.find('\n', start);
    const bool complete = end != std::string::npos;
    if (!complete) end = text.size();
    const std::string line = text.substr(start, end - start);
    start = end + 1;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    if (!complete && last_line_needs_break) {
      problem(number, "the last line has no line break (an interrupted write), ignored");
      continue;
    }
    try {
      const nlohmann::ordered_json j = nlohmann::ordered_json::parse(line);
      if (!j.is_object()) throw FormatError("not a JSON object");
      if (auto s = j.find("schema"); s != j.end()) {
        if (!s->is_number_integer() || s->get<int64_t>() < 1) throw FormatError("\"schema\" is not a version number");
        if (s->get<int64_t>() > kRunSchema)
          throw FormatError("written by a newer asdcap (schema " + std::to_string(s->get<int64_t>()) +
                            "; this asdcap reads up to " + std::to_string(kRunSchema) + ")");
      }
      on_line(j);
    } catch (const std::exception& e) {
      problem(number, e.what());
    }
  }
}

}  // namespace asdcap::run_detail
