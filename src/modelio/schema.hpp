// What an asdcap-msclap model file holds: the metadata keys, reading/writing ModelConfig, and the
// list of tensors a configuration requires (internal to modelio; required_tensors is public in convert.hpp).
#pragma once
#include <string>
#include <vector>

#include "asdcap/gguf.hpp"
#include "asdcap/model_file.hpp"

namespace asdcap::modelio {

inline constexpr const char* kArchitecture = "asdcap-msclap";
inline constexpr const char* kPrefix = "asdcap-msclap.";  // every architecture key starts with this

// Writes every ModelConfig field (tokenizer ids included) as metadata.
void write_config(GgufWriter& w, const ModelConfig& c);
// Reads it back; throws ModelError("<file>: ...") naming a missing or mistyped key.
ModelConfig read_config(const GgufView& g, const std::string& file);

// Consistency of the sizes (positive, divisible where the architecture needs it). Throws ModelError.
void check_config(const ModelConfig& c, const std::string& file);

// Tensors of HTSAT / GPT-2 that msclap files carry but inference does not need: kept when present.
bool optional_tensor(const std::string& name);

}  // namespace asdcap::modelio
