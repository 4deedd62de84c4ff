// What an asdcap-msclap model file holds: the metadata keys, reading/writing ModelConfig, and the
// list of tensors a configuration requires (internal to modelio; required_tensors is public in convert.hpp).
#pragma once
#include <string>
#include <vector>

#include "asdcap/convert.hpp"
#include "asdcap/model_file.hpp"
#include "asdcap/panns.hpp"
#include "modelio/gguf.hpp"

namespace asdcap::modelio {

inline constexpr const char* kArchitecture = "asdcap-msclap";
inline constexpr const char* kPrefix = "asdcap-msclap.";  // every architecture key starts with this

// Writes every ModelConfig field (tokenizer ids included) as metadata.
void write_config(GgufWriter& w, const ModelConfig& c);
// Reads it back; throws ModelError("<file>: ...") naming a missing or mistyped key.
ModelConfig read_config(const GgufView& g, const std::string& file);

// Consistency of the sizes (positive, divisible where the architecture needs it). Throws ModelError.
void check_config(const ModelConfig& c, const std::string& file);

// PANNs CNN14 files: architecture "asdcap-panns", keys under kPannsPrefix, the checkpoint's tensors
// under their state-dict names (num_batches_tracked left out).
inline constexpr const char* kPannsArchitecture = "asdcap-panns";
inline constexpr const char* kPannsPrefix = "asdcap-panns.";
void write_panns_config(GgufWriter& w, const PannsConfig& c);
PannsConfig read_panns_config(const GgufView& g, const std::string& file);  // checks it too
void check_panns_config(const PannsConfig& c, const std::string& file);     // throws ModelError
std::vector<TensorSpec> panns_required_tensors(const PannsConfig& c);
// Stored as f16 by `convert --panns --dtype f16`: the convolution and fc weights.
bool panns_f16_eligible(const std::string& name);

// Tensors of HTSAT / GPT-2 that msclap files carry but inference does not need: kept when present.
bool optional_tensor(const std::string& name);

}  // namespace asdcap::modelio
