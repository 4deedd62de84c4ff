// libFuzzer target: GPT-2's byte-level BPE tokenizer on arbitrary bytes (valid or invalid UTF-8),
// with a small vocabulary built in memory: the 256 byte symbols, merges of common English pieces,
// msclap's special tokens. Valid UTF-8 must come back byte for byte from decode_raw(encode(text)).
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "asdcap/error.hpp"
#include "asdcap/tokenizer.hpp"
#include "text/utf8.hpp"

namespace {

// GPT-2's printable code point of each byte (bytes_to_unicode), as UTF-8.
std::vector<std::string> byte_symbols() {
  std::vector<std::string> symbols(256);
  char32_t next = 256;
  for (int b = 0; b < 256; ++b) {
    const bool direct = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    asdcap::text_detail::append_utf8(symbols[static_cast<size_t>(b)], direct ? static_cast<char32_t>(b) : next++);
  }
  return symbols;
}

const asdcap::Tokenizer& tokenizer() {
  static const asdcap::Tokenizer t = [] {
    std::vector<std::string> tokens = byte_symbols();
    const std::string space = tokens[' '];  // "Ġ"
    const std::vector<std::pair<std::string, std::string>> merges = {
        {space, "t"}, {"h", "e"}, {space + "t", "he"},  {"i", "n"},  {space, "a"},
        {"e", "r"},   {"o", "n"}, {space, "s"},         {"in", "g"}, {space + "s", "o"},
        {"u", "n"},   {"d", "s"}, {space + "so", "un"}, {"'", "s"},  {"a", "n"}};
    std::vector<std::string> rules;
    for (const auto& [a, b] : merges) {
      rules.push_back(a + " " + b);
      tokens.push_back(a + b);
    }
    tokens.push_back("<|endoftext|>");
    return asdcap::Tokenizer::from_tables(std::move(tokens), rules);
  }();
  return t;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const asdcap::Tokenizer& t = tokenizer();
    const std::vector<int64_t> ids = t.encode(text);
    for (int64_t id : ids)
      if (id < 0 || id >= t.vocab_size()) __builtin_trap();
    // Byte-level BPE loses nothing: valid UTF-8 decodes back to itself.
    if (asdcap::text_detail::sanitize_utf8(text) == text && t.decode_raw(ids) != text) __builtin_trap();
    t.decode(ids);
    t.encode_clap_text(text);
  } catch (const asdcap::Error&) {
  }
  return 0;
}
