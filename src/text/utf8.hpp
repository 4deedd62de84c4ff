// UTF-8 helpers of the text area (private header).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace asdcap::text_detail {

// Python's bytes.decode("utf-8", errors="replace"): each maximal invalid subpart becomes U+FFFD.
std::string sanitize_utf8(std::string_view bytes);

// Decodes valid UTF-8 into code points (input must be sanitized).
std::vector<char32_t> to_code_points(std::string_view utf8);
void append_utf8(std::string& out, char32_t cp);

}  // namespace asdcap::text_detail
