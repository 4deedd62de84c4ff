// GPT-2 byte-level BPE tokenizer, equal to Hugging Face's GPT2Tokenizer as msclap configures it:
// "<|endoftext|>" (id 50256) and "!" (msclap's pad token, id 0) are special tokens split out before
// BPE (leftmost-longest, spaces kept), so every "!" is the lone id 0.
//
// Behaviour on unusual input (documented, never a crash):
//   * invalid UTF-8 input: each byte that is not part of a valid UTF-8 sequence is treated as the
//     code point U+FFFD for pre-tokenisation (as Python would see the replacement character after
//     decoding with errors="replace"); its BPE bytes are the 3 bytes of U+FFFD.
//   * any length is accepted; limits of the model (1024 positions) are checked by the encoders.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace asdcap {

class ModelFile;

class Tokenizer {
 public:
  // vocab.json (token -> id) and merges.txt ("#version" line, then "a b" per line, rank = order).
  // Throws IoError / FormatError naming the file.
  static Tokenizer from_files(const std::string& vocab_json, const std::string& merges_txt);
  // The vocabulary stored in a model file (see model_file.hpp). Throws ModelError when absent.
  static Tokenizer from_model(const ModelFile& model);
  // From in-memory tables: tokens[id] is the byte-level unicode string of id; merges in rank order,
  // each "a b".
  static Tokenizer from_tables(std::vector<std::string> tokens, const std::vector<std::string>& merges);

  Tokenizer(const Tokenizer&);
  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(const Tokenizer&);
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  // HF GPT2Tokenizer.encode (no BOS/EOS added) with msclap's "!" special token.
  std::vector<int64_t> encode(std::string_view utf8) const;
  // msclap's text input: encode(text + " <|endoftext|>") -- ends with 220, 50256. No truncation.
  std::vector<int64_t> encode_clap_text(std::string_view text) const;
  // Byte-level decode (special tokens kept), invalid UTF-8 -> U+FFFD, then transformers'
  // clean_up_tokenization (" ." -> "." etc.), as tokenizer.decode(ids) does by default.
  std::string decode(const std::vector<int64_t>& ids) const;
  // Same without clean_up_tokenization.
  std::string decode_raw(const std::vector<int64_t>& ids) const;

  int64_t vocab_size() const;
  int64_t eos_id() const;  // id of "<|endoftext|>"
  int64_t pad_id() const;  // id of "!"

 private:
  Tokenizer();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Python's str.capitalize() on UTF-8 text: first character upper-cased, every other lower-cased
// (simple case mapping of the C.UTF-8/towupper tables; invalid bytes pass through unchanged).
std::string python_capitalize(std::string_view utf8);

}  // namespace asdcap
