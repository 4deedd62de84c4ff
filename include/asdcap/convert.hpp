// Turning msclap's checkpoints (+ Hugging Face gpt2 files) into asdcap's GGUF model file.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "asdcap/model_file.hpp"

namespace asdcap {

struct ConvertOptions {
  std::string clap, clapcap, vocab, merges, gpt2_safetensors, out;
  // F32, F16 or BF16 (only large weight matrices, see f16_eligible), or I8: the packed GEMM's weight
  // matrices int8 with per-output scales (docs/model-files.md), the other large matrices F16.
  DType dtype = DType::F32;
  int text_heads = 0, decoder_heads = 0;  // 0: n_embd / 64 (GPT-2's head size)
};

struct ConvertReport {
  std::vector<std::string> filled_from_gpt2;  // asdcap tensor names taken from --gpt2
  std::vector<std::string> unexpected;        // checkpoint keys not used (e.g. attn.bias buffers)
  std::vector<std::string> warnings;          // other notes, one line each
  ModelConfig config;                         // what was inferred and written
};

// Reads, maps, checks and writes (atomically) opts.out. Throws InvalidArgument (bad options),
// IoError, FormatError, ModelError (missing tensors, wrong shapes: all named).
ConvertReport convert_model(const ConvertOptions& opts);

// The full-size msclap 2023 configuration (sizes in docs/clap.md, "HTSAT, layer by layer"), CLAP + captioner.
ModelConfig msclap_2023_config();

// One tensor the configuration requires (asdcap name, PyTorch-order shape, stored dtype class).
struct TensorSpec {
  std::string name;
  std::vector<int64_t> shape;
  DType dtype = DType::F32;  // F32 for float tensors (F16 also accepted when f16_eligible), I64 for indices
};
std::vector<TensorSpec> required_tensors(const ModelConfig& cfg);

// Whether --dtype f16 stores this tensor as f16: `*.weight` matrices of >= 2 dims and >= 16384
// elements, except melW. Norms, biases, bn0, melW, masks, position tables and indices stay as they are.
bool f16_eligible(const std::string& name, const std::vector<int64_t>& shape);

// `asdcap convert --relayout`: an existing msclap, LAION-CLAP or PANNs model file rewritten (atomically) in
// the current format version, its Linear weights stored in the packed panel layout (a PANNs file's
// convolutions folded with their BatchNorm first) so that opening the model computes from the mapping
// (docs/model-files.md, docs/panns.md). Everything else is copied as it is. Throws as the model's open
// for a bad input, InvalidArgument for a file of another architecture or int8 for a PANNs file.
struct RelayoutReport {
  int64_t from_version = 1;  // the input's format version
  int64_t to_version = 1;    // the output's (the current one)
  size_t packed = 0;         // tensors packed now
  size_t already = 0;        // tensors the input stored packed already
  size_t quantized = 0;      // with int8: float weight matrices stored as int8 now
};
// With `int8`, the packed weight matrices are stored as int8 with per-output scales (as convert --dtype
// int8; int8 ones are copied).
RelayoutReport relayout_model(const std::string& in, const std::string& out, bool int8 = false);

}  // namespace asdcap
