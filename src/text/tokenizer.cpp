#define PCRE2_CODE_UNIT_WIDTH 8
#include "asdcap/tokenizer.hpp"
#include "modelio/model_writer.hpp"

#include <pcre2.h>

#include <mutex>
#include <unordered_map>

#include "asdcap/error.hpp"
#include "utf8.hpp"

namespace asdcap {

using text_detail::append_utf8;
using text_detail::sanitize_utf8;
using text_detail::to_code_points;

namespace {

constexpr const char* kEndOfText = "<|endoftext|>";
constexpr const char* kPad = "!";
constexpr const char* kPretokenizePattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

// GPT-2's reversible byte -> printable code point table (bytes_to_unicode).
std::vector<char32_t> byte_to_code_point() {
  std::vector<char32_t> table(256, 0);
  std::vector<bool> direct(256, false);
  for (int b = '!'; b <= '~'; ++b) direct[b] = true;
  for (int b = 0xA1; b <= 0xAC; ++b) direct[b] = true;
  for (int b = 0xAE; b <= 0xFF; ++b) direct[b] = true;
  char32_t next = 256;
  for (int b = 0; b < 256; ++b) table[b] = direct[b] ? static_cast<char32_t>(b) : next++;
  return table;
}

struct Regex {
  pcre2_code* code = nullptr;
  Regex() {
    int err = 0;
    PCRE2_SIZE off = 0;
    code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(kPretokenizePattern), PCRE2_ZERO_TERMINATED,
                         PCRE2_UTF | PCRE2_UCP | PCRE2_NO_UTF_CHECK, &err, &off, nullptr);
    if (!code) throw Error("tokenizer: cannot compile the GPT-2 pre-tokenisation pattern");
    pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // optional speed-up; falls back to the interpreter
  }
  ~Regex() { pcre2_code_free(code); }
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;
};

const Regex& pretokenize_regex() {
  static const Regex re;
  return re;
}

}  // namespace

struct Tokenizer::Impl {
  std::vector<std::string> tokens;               // id -> byte-level string
  std::unordered_map<std::string, int64_t> ids;  // byte-level string -> id
  std::unordered_map<std::string, int> ranks;    // "a b" -> merge rank
  std::vector<std::string> byte_symbol;          // byte -> its byte-level UTF-8 string
  std::unordered_map<char32_t, unsigned char> symbol_byte;
  int64_t eos = -1, pad = -1;
  mutable std::mutex cache_mutex;
  mutable std::unordered_map<std::string, std::vector<int64_t>> cache;

  void init_bytes() {
    const auto table = byte_to_code_point();
    byte_symbol.resize(256);
    for (int b = 0; b < 256; ++b) {
      append_utf8(byte_symbol[b], table[b]);
      symbol_byte[table[b]] = static_cast<unsigned char>(b);
    }
  }

  int64_t id_of(const std::string& tok, const char* what) const {
    auto it = ids.find(tok);
    if (it == ids.end()) throw ModelError(std::string("tokenizer: the vocabulary has no ") + what + " token");
    return it->second;
  }

  // BPE of one pre-tokenised piece (raw UTF-8 bytes), appended to out as ids.
  void bpe(const std::string& piece, std::vector<int64_t>& out) const {
    {
      std::lock_guard<std::mutex> lock(cache_mutex);
      auto it = cache.find(piece);
      if (it != cache.end()) {
        out.insert(out.end(), it->second.begin(), it->second.end());
        return;
      }
    }
    std::vector<std::string> word;
    word.reserve(piece.size());
    for (unsigned char c : piece) word.push_back(byte_symbol[c]);
    std::string key;
    while (word.size() > 1) {
      int best = -1;
      size_t best_i = 0;
      for (size_t i = 0; i + 1 < word.size(); ++i) {
        key.assign(word[i]).append(" ").append(word[i + 1]);
        auto it = ranks.find(key);
        if (it != ranks.end() && (best < 0 || it->second < best)) {
          best = it->second;
          best_i = i;
        }
      }
      if (best < 0) break;
      const std::string first = word[best_i], second = word[best_i + 1];
      std::vector<std::string> merged;
      merged.reserve(word.size());
      for (size_t i = 0; i < word.size();) {
        if (i + 1 < word.size() && word[i] == first && word[i + 1] == second) {
          merged.push_back(first + second);
          i += 2;
        } else {
          merged.push_back(word[i]);
          ++i;
        }
      }
      word.swap(merged);
    }
    std::vector<int64_t> result;
    result.reserve(word.size());
    for (const auto& sym : word) {
      auto it = ids.find(sym);
      // Every single byte symbol is in GPT-2's vocabulary; unknown merges fall back to <|endoftext|>
      // (GPT2Tokenizer's unk_token).
      result.push_back(it == ids.end() ? eos : it->second);
    }
    out.insert(out.end(), result.begin(), result.end());
    std::lock_guard<std::mutex> lock(cache_mutex);
    if (cache.size() > 100000) cache.clear();
    cache.emplace(piece, std::move(result));
  }

  // Pre-tokenises a span free of special tokens and BPE-merges each piece.
  void encode_plain(const std::string& text, std::vector<int64_t>& out) const {
    if (text.empty()) return;
    const pcre2_code* code = pretokenize_regex().code;
    pcre2_match_data* md = pcre2_match_data_create_from_pattern(code, nullptr);
    if (!md) throw Error("tokenizer: out of memory");
    const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
    PCRE2_SIZE pos = 0;
    while (pos < text.size()) {
      const int rc = pcre2_match(code, subject, text.size(), pos, PCRE2_NO_UTF_CHECK, md, nullptr);
      if (rc < 0) break;  // PCRE2_ERROR_NOMATCH: nothing left that the pattern matches
      const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
      if (ov[1] <= ov[0]) break;  // the pattern never matches empty; be safe anyway
      bpe(text.substr(ov[0], ov[1] - ov[0]), out);
      pos = ov[1];
    }
    pcre2_match_data_free(md);
  }

  std::string decode_raw(const std::vector<int64_t>& id_list) const {
    std::string bytes;
    for (int64_t id : id_list) {
      if (id < 0 || id >= static_cast<int64_t>(tokens.size()))
        throw Error("tokenizer: token id " + std::to_string(id) + " is outside the vocabulary (size " +
                    std::to_string(tokens.size()) + ")");
      for (char32_t cp : to_code_points(tokens[static_cast<size_t>(id)])) {
        auto it = symbol_byte.find(cp);
        if (it != symbol_byte.end())
          bytes.push_back(static_cast<char>(it->second));
        else
          append_utf8(bytes, cp);  // not a byte-level symbol (added tokens): kept as text
      }
    }
    return sanitize_utf8(bytes);
  }
};

Tokenizer::Tokenizer() : impl_(std::make_unique<Impl>()) {}
Tokenizer::~Tokenizer() = default;
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::Tokenizer(const Tokenizer& o) : impl_(std::make_unique<Impl>()) {
  impl_->tokens = o.impl_->tokens;
  impl_->ids = o.impl_->ids;
  impl_->ranks = o.impl_->ranks;
  impl_->byte_symbol = o.impl_->byte_symbol;
  impl_->symbol_byte = o.impl_->symbol_byte;
  impl_->eos = o.impl_->eos;
  impl_->pad = o.impl_->pad;
}
Tokenizer& Tokenizer::operator=(const Tokenizer& o) {
  if (this != &o) *this = Tokenizer(o);
  return *this;
}

Tokenizer Tokenizer::from_tables(std::vector<std::string> tokens, const std::vector<std::string>& merges) {
  Tokenizer t;
  Impl& im = *t.impl_;
  im.init_bytes();
  im.tokens = std::move(tokens);
  for (size_t i = 0; i < im.tokens.size(); ++i) im.ids.emplace(im.tokens[i], static_cast<int64_t>(i));
  int rank = 0;
  for (const auto& m : merges) {
    const auto sp = m.find(' ');
    if (sp == std::string::npos || sp == 0 || sp + 1 >= m.size() || m.find(' ', sp + 1) != std::string::npos)
      throw FormatError("tokenizer: malformed merge rule \"" + m + "\" (expected \"a b\")");
    im.ranks.emplace(m, rank++);
  }
  for (int b = 0; b < 256; ++b)
    if (!im.ids.count(im.byte_symbol[b]))
      throw FormatError("tokenizer: the vocabulary lacks the byte symbol of byte " + std::to_string(b));
  im.eos = im.id_of(kEndOfText, "<|endoftext|>");
  im.pad = im.id_of(kPad, "\"!\"");
  return t;
}

// The same vocabulary reader as the converter's (modelio), so a file the converter accepts loads here.
Tokenizer Tokenizer::from_files(const std::string& vocab_json, const std::string& merges_txt) {
  modelio::TokenizerFiles files = modelio::read_tokenizer_files(vocab_json, merges_txt);
  try {
    return from_tables(std::move(files.tokens), files.merges);
  } catch (const Error& e) {
    throw FormatError(vocab_json + " / " + merges_txt + ": " + e.what());
  }
}

std::vector<int64_t> Tokenizer::encode(std::string_view utf8) const {
  const std::string text = sanitize_utf8(utf8);
  const std::string eot = kEndOfText;
  std::vector<int64_t> out;
  std::string plain;
  size_t i = 0;
  while (i < text.size()) {
    if (text.compare(i, eot.size(), eot) == 0) {
      impl_->encode_plain(plain, out);
      plain.clear();
      out.push_back(impl_->eos);
      i += eot.size();
    } else if (text[i] == '!') {
      impl_->encode_plain(plain, out);
      plain.clear();
      out.push_back(impl_->pad);
      ++i;
    } else {
      plain.push_back(text[i]);
      ++i;
    }
  }
  impl_->encode_plain(plain, out);
  return out;
}

std::vector<int64_t> Tokenizer::encode_clap_text(std::string_view text) const {
  std::string s(text);
  s += " ";
  s += kEndOfText;
  return encode(s);
}

std::string Tokenizer::decode_raw(const std::vector<int64_t>& ids) const { return impl_->decode_raw(ids); }

std::string Tokenizer::decode(const std::vector<int64_t>& ids) const {
  std::string s = impl_->decode_raw(ids);
  // transformers' clean_up_tokenization: sequential str.replace calls, in this order.
  static const std::pair<const char*, const char*> kRules[] = {
      {" .", "."},     {" ?", "?"},   {" !", "!"},   {" ,", ","},     {" ' ", "'"},
      {" n't", "n't"}, {" 'm", "'m"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}};
  for (const auto& [from, to] : kRules) {
    const std::string f = from, t = to;
    std::string r;
    r.reserve(s.size());
    size_t pos = 0;
    while (true) {
      const size_t hit = s.find(f, pos);
      if (hit == std::string::npos) break;
      r.append(s, pos, hit - pos).append(t);
      pos = hit + f.size();
    }
    r.append(s, pos, std::string::npos);
    s.swap(r);
  }
  return s;
}

int64_t Tokenizer::vocab_size() const { return static_cast<int64_t>(impl_->tokens.size()); }
int64_t Tokenizer::eos_id() const { return impl_->eos; }
int64_t Tokenizer::pad_id() const { return impl_->pad; }

}  // namespace asdcap
