// Model files with deterministic random weights, for tests and benchmarks that need realistic sizes
// but no trained weights. Part of asdcap_testsupport (link it; it brings asdcap_modelio).
#pragma once
#include <cstdint>
#include <string>

#include "asdcap/model_file.hpp"

namespace asdcap::test {

// A model file of `cfg`'s sizes with deterministic random weights, written atomically. dtype F32 or
// F16 (as `asdcap convert`). Tokenizer from the given vocab.json / merges.txt; melW is the built-in
// Slaney filter bank. Throws InvalidArgument for another dtype.
void write_random_model(const std::string& path, const ModelConfig& cfg, DType dtype, uint64_t seed,
                        const std::string& vocab, const std::string& merges);

// Full-size msclap 2023 models (clap: CLAP audio + text encoder; captioner: clapcap), f16 (or f32)
// weights, or I8: the f16 model re-laid with int8 matrices; written once under the system temp dir and
// reused while they open.
std::string random_full_model_path(bool clap, bool captioner, DType dtype = DType::F16);

}  // namespace asdcap::test
