// Tokenizer::from_model lives apart so that programs using only the vocabulary files do not link
// the model-file reader.
#include "asdcap/error.hpp"
#include "asdcap/model_file.hpp"
#include "asdcap/tokenizer.hpp"

namespace asdcap {

Tokenizer Tokenizer::from_model(const ModelFile& model) {
  static const char* kTokens = "tokenizer.ggml.tokens";
  static const char* kMerges = "tokenizer.ggml.merges";
  if (!model.has_key(kTokens) || !model.has_key(kMerges))
    throw ModelError(model.path() + ": no tokenizer vocabulary (" + kTokens + " / " + kMerges + ")");
  try {
    return from_tables(model.get_string_array(kTokens), model.get_string_array(kMerges));
  } catch (const Error& e) {
    throw ModelError(model.path() + ": " + e.what());
  }
}

}  // namespace asdcap
