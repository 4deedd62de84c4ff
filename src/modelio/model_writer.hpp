// Shared by convert_model and the tests' random model writer (tests/support/random_model.cpp): the
// GPT-2 tokenizer files and writing a complete asdcap-msclap GGUF file.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "asdcap/checkpoint.hpp"
#include "asdcap/model_file.hpp"

namespace asdcap::modelio {

struct TokenizerFiles {
  std::vector<std::string> tokens;                                      // by id
  std::vector<std::string> merges;                                      // "a b", in rank order
  int64_t id(const std::string& token, const std::string& file) const;  // throws ModelError
};
// vocab.json (token -> id, ids dense from 0) and merges.txt (optional "#version" line first).
TokenizerFiles read_tokenizer_files(const std::string& vocab_json, const std::string& merges_txt);

// Sets pad/eos/stop ids from the vocabulary ("!", "<|endoftext|>", "Ġ" = the first token of " <|endoftext|>").
void set_token_ids(ModelConfig& cfg, const TokenizerFiles& tok, const std::string& vocab_file);

struct SourceFile {
  std::string role;  // clap, clapcap, gpt2, vocab, merges
  std::string path;
  std::string sha256;
};

struct ModelContents {
  ModelConfig config;
  std::vector<CheckpointTensor> tensors;  // in file order, final dtypes
  std::vector<std::string> origins;       // "name=role:key", one per tensor
  std::vector<std::string> filled_from_gpt2;
  std::vector<SourceFile> sources;
  std::string name;  // general.name
  // Format version 2: the Linear weights stored in the packed panel layout (msclap_packed_out_dim);
  // false writes format version 1 (PyTorch order throughout), as asdcap wrote before.
  bool packed_layout = true;
  // The packed weight matrices stored as int8 with per-output scales (convert --dtype int8).
  bool int8 = false;
};

// Writes `m` atomically to `path` (checks the config and the required tensors first).
void write_model_file(const std::string& path, const ModelContents& m, const TokenizerFiles& tok);

// Converts a float tensor in place to f32 (from f16/bf16/f64) or to f16 (from f32).
void convert_float_dtype(CheckpointTensor& t, DType to);
// n float values stored as `from` (f32, f64, f16 or bf16; any alignment) written to `dst` as `to`
// (f32, f16 or bf16): widened exactly, or rounded to nearest even; Error naming tensor `what` for
// other dtypes.
void convert_floats(const void* src, DType from, size_t n, void* dst, DType to, const std::string& what);

}  // namespace asdcap::modelio
