// Full-size msclap-architecture model files with random weights (write_random_model),
// written once under the system temp dir and reused: for the naive-vs-cached test and the benchmarks.
#pragma once
#include <filesystem>
#include <string>
#include <unistd.h>

#include "asdcap/convert.hpp"
#include "asdcap/error.hpp"
#include "asdcap/model_file.hpp"

namespace asdcap::test {

// clap: CLAP (audio + text encoder); captioner: clapcap (cap.*). f16 weights keep the files small.
inline std::string random_full_model_path(bool clap, bool captioner) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("asdcap-random-models-v2-" + std::to_string(::getuid()));
  fs::create_directories(dir);
  const fs::path out = dir / (std::string("msclap2023") + (clap ? "_clap" : "") + (captioner ? "_cap" : "") + "_f16.gguf");
  if (fs::exists(out)) {
    try {
      ModelFile::open(out.string());
      return out.string();
    } catch (const Error&) {
    }
  }
  ModelConfig cfg = msclap_2023_config();
  cfg.has_clap = clap;
  cfg.has_captioner = captioner;
  const std::string gpt2 = std::string(ASDCAP_SHARED_DIR) + "/assets/gpt2/";
  write_random_model(out.string(), cfg, DType::F16, 7, gpt2 + "vocab.json", gpt2 + "merges.txt");
  return out.string();
}

}  // namespace asdcap::test
