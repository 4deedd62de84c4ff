// Shared helpers of the text/caption tests: the golden manifest and GPT-2 vocabulary paths.
#pragma once
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "asdcap/tokenizer.hpp"

namespace asdcap::testing_text {

inline std::string golden_dir() { return std::string(ASDCAP_SHARED_DIR) + "/golden"; }

inline const nlohmann::json& manifest() {
  static const nlohmann::json m = [] {
    std::ifstream in(golden_dir() + "/manifest.json");
    return nlohmann::json::parse(in);
  }();
  return m;
}

inline const Tokenizer& gpt2_tokenizer() {
  static const Tokenizer t = Tokenizer::from_files(std::string(ASDCAP_SHARED_DIR) + "/assets/gpt2/vocab.json",
                                                   std::string(ASDCAP_SHARED_DIR) + "/assets/gpt2/merges.txt");
  return t;
}

}  // namespace asdcap::testing_text
