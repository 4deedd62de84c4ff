#include "utf8.hpp"

#include <locale.h>
#include <clocale>
#include <cwctype>

#include "asdcap/tokenizer.hpp"

namespace asdcap::text_detail {

namespace {
// Length of the valid UTF-8 sequence at s[i..], or 0 (then `subpart` = bytes to replace by one U+FFFD,
// following the Unicode "maximal subpart" practice that Python implements).
size_t valid_sequence(std::string_view s, size_t i, size_t& subpart) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  subpart = 1;
  if (b0 < 0x80) return 1;
  int need;
  unsigned char lo = 0x80, hi = 0xBF;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 1;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 2;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 3;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  for (int k = 1; k <= need; ++k) {
    if (i + k >= s.size()) return 0;
    const auto b = static_cast<unsigned char>(s[i + k]);
    const unsigned char l = k == 1 ? lo : 0x80, h = k == 1 ? hi : 0xBF;
    if (b < l || b > h) return 0;
    subpart = static_cast<size_t>(k) + 1;
  }
  return static_cast<size_t>(need) + 1;
}
}  // namespace

std::string sanitize_utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    size_t subpart = 1;
    const size_t n = valid_sequence(s, i, subpart);
    if (n) {
      out.append(s.substr(i, n));
      i += n;
    } else {
      out.append("\xEF\xBF\xBD");
      i += subpart;  // a truncated but so far valid prefix is replaced as one unit
    }
  }
  return out;
}

std::vector<char32_t> to_code_points(std::string_view s) {
  std::vector<char32_t> cps;
  cps.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    const auto b0 = static_cast<unsigned char>(s[i]);
    int n = b0 < 0x80 ? 1 : b0 < 0xE0 ? 2 : b0 < 0xF0 ? 3 : 4;
    char32_t cp = n == 1 ? b0 : n == 2 ? (b0 & 0x1F) : n == 3 ? (b0 & 0x0F) : (b0 & 0x07);
    for (int k = 1; k < n && i + k < s.size(); ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
    cps.push_back(cp);
    i += static_cast<size_t>(n);
  }
  return cps;
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

}  // namespace asdcap::text_detail

namespace asdcap {

std::string python_capitalize(std::string_view utf8) {
  using namespace text_detail;
  // glibc's C.UTF-8 locale carries the Unicode simple case mappings; without it only ASCII changes.
  static const locale_t loc = newlocale(LC_CTYPE_MASK, "C.UTF-8", static_cast<locale_t>(nullptr));
  const std::string clean = sanitize_utf8(utf8);
  std::string out;
  out.reserve(clean.size());
  bool first = true;
  for (char32_t cp : to_code_points(clean)) {
    char32_t mapped = cp;
    if (loc) {
      mapped = static_cast<char32_t>(first ? towupper_l(static_cast<wint_t>(cp), loc)
                                           : towlower_l(static_cast<wint_t>(cp), loc));
    } else if (cp < 0x80) {
      if (first && cp >= 'a' && cp <= 'z') mapped = cp - 32;
      if (!first && cp >= 'A' && cp <= 'Z') mapped = cp + 32;
    }
    append_utf8(out, mapped);
    first = false;
  }
  return out;
}

}  // namespace asdcap
