#include "model_writer.hpp"

#include <nlohmann/json.hpp>

#include <cstring>
#include <deque>
#include <filesystem>
#include <set>

#include "asdcap/convert.hpp"
#include "asdcap/error.hpp"
#include "core/files.hpp"
#include "half.hpp"
#include "modelio/gguf.hpp"
#include "modelio/packed_layout.hpp"
#include "schema.hpp"

namespace asdcap::modelio {

int64_t TokenizerFiles::id(const std::string& token, const std::string& file) const {
  for (size_t i = 0; i < tokens.size(); ++i)
    if (tokens[i] == token) return static_cast<int64_t>(i);
  throw ModelError(file + ": vocabulary lacks the token '" + token + "'");
}

TokenizerFiles read_tokenizer_files(const std::string& vocab_json, const std::string& merges_txt) {
  TokenizerFiles t;
  nlohmann::json vocab;
  try {
    vocab = nlohmann::json::parse(read_text_file(vocab_json));
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(vocab_json + ": not valid JSON: " + e.what());
  }
  if (!vocab.is_object() || vocab.empty()) throw FormatError(vocab_json + ": expected a JSON object token -> id");
  t.tokens.resize(vocab.size());
  std::vector<bool> seen(vocab.size(), false);
  for (const auto& [tok, id] : vocab.items()) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() >= static_cast<int64_t>(vocab.size()))
      throw FormatError(vocab_json + ": token ids must be dense integers 0.." + std::to_string(vocab.size() - 1));
    size_t i = id.get<size_t>();
    if (seen[i]) throw FormatError(vocab_json + ": id " + std::to_string(i) + " used twice");
    seen[i] = true;
    t.tokens[i] = tok;
  }
  std::string text = read_text_file(merges_txt);
  size_t pos = 0;
  bool first = true;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    std::string line = text.substr(pos, nl - pos);
    pos = nl + 1;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (first && line.rfind("#version", 0) == 0) {
      first = false;
      continue;
    }
    first = false;
    if (line.empty()) continue;
    size_t sp = line.find(' ');
    if (sp == std::string::npos || sp == 0 || sp + 1 == line.size() || line.find(' ', sp + 1) != std::string::npos)
      throw FormatError(merges_txt + ": line '" + line + "' is not a merge 'a b'");
    t.merges.push_back(std::move(line));
  }
  if (t.merges.empty()) throw FormatError(merges_txt + ": no merges");
  return t;
}

void set_token_ids(ModelConfig& cfg, const TokenizerFiles& tok, const std::string& vocab_file) {
  cfg.pad_id = tok.id("!", vocab_file);
  cfg.eos_id = tok.id("<|endoftext|>", vocab_file);
  cfg.stop_id = tok.id("\xC4\xA0", vocab_file);  // "Ġ": byte-level BPE's space, msclap's caption stop token
}

void convert_floats(const void* src_bytes, DType from, size_t n, void* dst, DType to, const std::string& what) {
  const auto* src = static_cast<const char*>(src_bytes);
  auto* out = static_cast<char*>(dst);
  if (to != DType::F32 && to != DType::F16 && to != DType::BF16) throw Error("unsupported conversion target");
  for (size_t i = 0; i < n; ++i) {
    float f;
    switch (from) {
      case DType::F32: std::memcpy(&f, src + 4 * i, 4); break;
      case DType::F64: {
        double d;
        std::memcpy(&d, src + 8 * i, 8);
        f = static_cast<float>(d);
        break;
      }
      case DType::F16:
      case DType::BF16: {
        uint16_t h;
        std::memcpy(&h, src + 2 * i, 2);
        f = from == DType::F16 ? half_to_float(h) : bf16_to_float(h);
        break;
      }
      default: throw Error("cannot convert " + std::string(dtype_name(from)) + " tensor " + what + " to float");
    }
    if (to == DType::F32) {
      std::memcpy(out + 4 * i, &f, 4);
    } else {
      const uint16_t h = to == DType::F16 ? float_to_half(f) : float_to_bf16(f);
      std::memcpy(out + 2 * i, &h, 2);
    }
  }
}

void convert_float_dtype(CheckpointTensor& t, DType to) {
  if (t.dtype == to) return;
  const size_t n = t.data.size() / dtype_size(t.dtype);
  std::vector<char> out(n * dtype_size(to));
  convert_floats(t.data.data(), t.dtype, n, out.data(), to, t.name);
  t.data = std::move(out);
  t.dtype = to;
}

void write_model_file(const std::string& path, const ModelContents& m, const TokenizerFiles& tok) {
  check_config(m.config, path);
  std::set<std::string> present;
  for (const auto& t : m.tensors) present.insert(t.name);
  for (const TensorSpec& s : required_tensors(m.config))
    if (!present.count(s.name)) throw Error("internal: model contents lack " + s.name);
  const int vocab = m.config.has_clap ? m.config.text.vocab : m.config.decoder.vocab;
  if (static_cast<int>(tok.tokens.size()) != vocab)
    throw ModelError("the vocabulary has " + std::to_string(tok.tokens.size()) +
                     " tokens but the model's embeddings have " + std::to_string(vocab) + " rows");

  GgufWriter w(64);
  w.set_string("general.architecture", kArchitecture);
  w.set_string("general.name", m.name);
  bool any_f16 = false, any_bf16 = false;
  for (const auto& t : m.tensors) any_f16 |= t.dtype == DType::F16, any_bf16 |= t.dtype == DType::BF16;
  w.set_uint32("general.file_type", gguf_file_type(any_f16, any_bf16));
  write_config(w, m.config);
  w.set_string("tokenizer.ggml.model", "gpt2");
  w.set_string_array("tokenizer.ggml.tokens", tok.tokens);
  w.set_string_array("tokenizer.ggml.merges", tok.merges);
  w.set_string(std::string(kPrefix) + "converter", std::string("asdcap ") +
#ifdef ASDCAP_VERSION
                                                       ASDCAP_VERSION
#else
                                                       "0.1"
#endif
  );
  for (const SourceFile& s : m.sources) {
    w.set_string(std::string(kPrefix) + "source." + s.role + ".file",
                 std::filesystem::path(s.path).filename().string());
    w.set_string(std::string(kPrefix) + "source." + s.role + ".sha256", s.sha256);
  }
  w.set_string_array(std::string(kPrefix) + "source.tensor_origins", m.origins);
  w.set_string_array(std::string(kPrefix) + "source.filled_from_gpt2", m.filled_from_gpt2);
  std::deque<std::vector<char>> packed;  // the packed tensors' bytes until the file is written
  if (m.packed_layout) w.set_int(kFormatVersionKey, kFormatVersion);
  for (const auto& t : m.tensors) {
    if (const auto out_dim = msclap_packed_out_dim(t.name); m.packed_layout && out_dim) {
      add_packed_tensor(w, t.name, t.dtype, t.shape, t.data.data(), t.data.size(), *out_dim, packed, m.int8);
      continue;
    }
    std::vector<int64_t> shape = t.shape.empty() ? std::vector<int64_t>{1} : t.shape;
    w.add_tensor(t.name, t.dtype, shape, t.data.data(), t.data.size());
  }
  w.write_file(path);
}

}  // namespace asdcap::modelio
