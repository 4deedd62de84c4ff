// The golden tiny msclap models (../shared/golden) converted to asdcap model files, for tests.
//
//   golden_model_path(false): CLAP only (clap_2023_tiny.pth)
//   golden_model_path(true):  CLAP + captioner (+ clapcap_2023_tiny.pth)
// Both with the GPT-2 vocabulary of ../shared/assets/gpt2 and 4 heads for the text encoder and the
// decoder (the golden config). Converted once into the system temp dir (atomically, so concurrent
// test processes are safe) and reused while the file opens and validates. Link asdcap_modelio.
#pragma once
#include <unistd.h>
#include <filesystem>
#include <string>

#include "asdcap/convert.hpp"
#include "asdcap/error.hpp"
#include "asdcap/model_file.hpp"

namespace asdcap::test {

inline std::string golden_model_path(bool with_captioner) {
  namespace fs = std::filesystem;
  const std::string shared = ASDCAP_SHARED_DIR;
  // Bump the version when the converter's output changes, so stale files are not reused.
  const fs::path dir = fs::temp_directory_path() / ("asdcap-golden-models-v2-" + std::to_string(::getuid()));
  fs::create_directories(dir);
  const fs::path out = dir / (with_captioner ? "clap_clapcap_2023_tiny.gguf" : "clap_2023_tiny.gguf");
  if (fs::exists(out)) {
    try {
      ModelFile::open(out.string());
      return out.string();
    } catch (const Error&) {
      // stale or damaged: convert again below
    }
  }
  ConvertOptions o;
  o.clap = shared + "/golden/clap_2023_tiny.pth";
  if (with_captioner) o.clapcap = shared + "/golden/clapcap_2023_tiny.pth";
  o.vocab = shared + "/assets/gpt2/vocab.json";
  o.merges = shared + "/assets/gpt2/merges.txt";
  o.text_heads = 4;
  o.decoder_heads = 4;
  o.out = out.string();
  convert_model(o);
  return out.string();
}

}  // namespace asdcap::test

using asdcap::test::golden_model_path;
