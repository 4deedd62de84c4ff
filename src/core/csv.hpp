// The one CSV writer of the library and the CLI: RFC 4180 quoting, numbers printed so that they
// read back to the same double.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace asdcap {

// One field, quoted when it holds a comma, a double quote or a line break ("" inside quotes).
std::string csv_field(std::string_view s);

// A finite number with `format` (printf style, default: 9 significant digits, enough for a float); "nan"/"inf" as such.
std::string csv_number(double v, const char* format = "%.9g");

// The cells of one CSV line (RFC 4180 quotes; a trailing CR dropped).
std::vector<std::string> csv_split_line(const std::string& line);

// Builds CSV text row by row.
class CsvWriter {
 public:
  CsvWriter& row(const std::vector<std::string>& fields);  // fields already formatted, quoted here
  const std::string& text() const { return text_; }

 private:
  std::string text_;
};

}  // namespace asdcap
