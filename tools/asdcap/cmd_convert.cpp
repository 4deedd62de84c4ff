// asdcap convert: msclap checkpoints (+ GPT-2 tokenizer files), a PANNs CNN14 checkpoint (--panns)
// or a LAION-CLAP checkpoint (--laion-clap) -> one asdcap model file (GGUF); --relayout rewrites an
// msclap model file in the current format version.
#include <cstdio>

#include "asdcap/convert.hpp"
#include "asdcap/error.hpp"
#include "asdcap/laion.hpp"
#include "asdcap/panns.hpp"
#include "command.hpp"

namespace {

struct ConvertArgs {
  asdcap::ConvertOptions opts;
  std::string panns, laion, relayout;
  std::string dtype = "f32";
};

void setup(CLI::App& app) {
  auto args = std::make_shared<ConvertArgs>();
  auto* sub = app.add_subcommand("convert",
                                 "Convert msclap's PyTorch checkpoints, or a PANNs CNN14 checkpoint, into one "
                                 "asdcap model file (GGUF)");
  sub->add_option("--panns", args->panns,
                  "PANNs CNN14 checkpoint (Cnn14_mAP=0.431.pth, Cnn14_16k_mAP=0.438.pth), converted alone")
      ->check(CLI::ExistingFile);
  sub->add_option("--laion-clap", args->laion,
                  "LAION-CLAP checkpoint (630k-audioset-best.pt, enable_fusion=False), converted alone")
      ->check(CLI::ExistingFile);
  sub->add_option("--relayout", args->relayout,
                  "An existing msclap, LAION-CLAP or PANNs model file, rewritten in the current format (weights stored "
                  "packed, PANNs convolutions folded with their BatchNorm, used in place from the mapping), converted "
                  "alone; with --dtype int8 (msclap, LAION-CLAP) its weight matrices stored as int8")
      ->check(CLI::ExistingFile);
  sub->add_option("--clap", args->opts.clap, "CLAP checkpoint (CLAP_weights_2023.pth)")->check(CLI::ExistingFile);
  sub->add_option("--clapcap", args->opts.clapcap, "Captioner checkpoint (clapcap_weights_2023.pth)")
      ->check(CLI::ExistingFile);
  sub->add_option("--vocab", args->opts.vocab, "GPT-2 vocab.json (with --clap)")->check(CLI::ExistingFile);
  sub->add_option("--merges", args->opts.merges, "GPT-2 merges.txt (with --clap)")->check(CLI::ExistingFile);
  sub->add_option("--gpt2", args->opts.gpt2_safetensors,
                  "Hugging Face gpt2 model.safetensors: GPT-2 tensors missing from the checkpoints are taken from it")
      ->check(CLI::ExistingFile);
  sub->add_option("--dtype", args->dtype,
                  "Weights: f32, or f16 / bf16 for the large weight matrices (half the size; the kernels read them "
                  "as stored), or int8 (msclap and LAION-CLAP, also with --relayout): the GEMM weight matrices int8 "
                  "with one scale per output, the rest as f16 (opt-in, approximate: docs/model-files.md)")
      ->check(CLI::IsMember({"f32", "f16", "bf16", "int8"}))
      ->capture_default_str();
  sub->add_option("--text-heads", args->opts.text_heads, "Attention heads of the text encoder (default n_embd/64)");
  sub->add_option("--decoder-heads", args->opts.decoder_heads,
                  "Attention heads of the caption decoder (default n_embd/64)");
  sub->add_option("--out,-o", args->opts.out, "Output model file (.gguf), written atomically")->required();
  sub->callback([args] {
    args->opts.dtype = args->dtype == "f16"    ? asdcap::DType::F16
                       : args->dtype == "bf16" ? asdcap::DType::BF16
                       : args->dtype == "int8" ? asdcap::DType::I8
                                               : asdcap::DType::F32;
    const bool int8 = args->dtype == "int8";
    if (int8 && !args->panns.empty())
      throw asdcap::UsageError(
          "convert: --dtype int8 is for msclap and LAION-CLAP model files; PANNs files take f32, f16 or bf16");
    const auto& o = args->opts;
    const bool msclap_inputs =
        !o.clap.empty() || !o.clapcap.empty() || !o.vocab.empty() || !o.merges.empty() || !o.gpt2_safetensors.empty();
    if (!args->relayout.empty()) {
      if (msclap_inputs || !args->panns.empty() || !args->laion.empty() || (args->dtype != "f32" && !int8))
        throw asdcap::UsageError(
            "convert: --relayout re-lays a model file alone (with --dtype int8 at most); drop --panns, --laion-clap, "
            "--clap, --clapcap, --vocab, --merges, --gpt2 and --dtype " +
            args->dtype);
      const asdcap::RelayoutReport r = asdcap::relayout_model(args->relayout, o.out, int8);
      std::printf("wrote %s (format version %lld from %lld: %zu weight matrices packed, %zu packed already",
                  o.out.c_str(), static_cast<long long>(r.to_version), static_cast<long long>(r.from_version), r.packed,
                  r.already);
      if (int8) std::printf("; %zu stored as int8 now", r.quantized);
      std::printf(")\n");
      return;
    }
    if (!args->laion.empty()) {
      if (msclap_inputs || !args->panns.empty())
        throw asdcap::UsageError(
            "convert: --laion-clap converts a LAION-CLAP checkpoint alone; drop --panns, --clap, --clapcap, "
            "--vocab, --merges and --gpt2");
      asdcap::LaionConvertOptions l;
      l.checkpoint = args->laion;
      l.out = o.out;
      l.dtype = o.dtype;
      const asdcap::LaionConvertReport r = asdcap::convert_laion(l);
      std::printf(
          "wrote %s (LAION-CLAP HTSAT embed_dim %d, embedding %d; %zu audio and %zu text-side tensors, %zu "
          "not stored)\n",
          o.out.c_str(), r.config.audio.embed_dim, r.config.joint_dim, r.audio_tensors, r.text_tensors,
          r.skipped.size());
      return;
    }
    if (!args->panns.empty()) {
      if (msclap_inputs)
        throw asdcap::UsageError(
            "convert: --panns converts a PANNs checkpoint alone; drop --clap, --clapcap, --vocab, "
            "--merges and --gpt2");
      asdcap::PannsConvertOptions p;
      p.checkpoint = args->panns;
      p.out = o.out;
      p.dtype = o.dtype;
      asdcap::PannsConvertReport r = asdcap::convert_panns(p);
      std::printf("wrote %s (%s, %d Hz, embedding %d, %zu training counters not stored)\n", o.out.c_str(),
                  r.config.variant.c_str(), r.config.sample_rate, r.config.embedding_dim, r.skipped.size());
      return;
    }
    if (o.clap.empty() || o.vocab.empty() || o.merges.empty())
      throw asdcap::UsageError(
          "convert: --clap, --vocab and --merges are required (or --panns FILE.pth, or --laion-clap FILE.pt)");
    asdcap::ConvertReport r;
    try {
      r = asdcap::convert_model(args->opts);
    } catch (const asdcap::InvalidArgument& e) {
      // The flags above fill every other option; a head count that does not divide n_embd is a bad
      // --text-heads / --decoder-heads when one was given (otherwise the checkpoint is odd: exit 1).
      if (args->opts.text_heads <= 0 && args->opts.decoder_heads <= 0) throw;
      throw asdcap::UsageError(std::string("--text-heads/--decoder-heads: ") + e.what());
    }
    for (const auto& w : r.warnings) std::fprintf(stderr, "asdcap: warning: %s\n", w.c_str());
    if (!r.filled_from_gpt2.empty())
      std::fprintf(stderr, "asdcap: %zu GPT-2 tensors taken from %s (see `asdcap info --tensors`)\n",
                   r.filled_from_gpt2.size(), args->opts.gpt2_safetensors.c_str());
    std::printf("wrote %s\n", args->opts.out.c_str());
  });
}

}  // namespace

ASDCAP_REGISTER_COMMAND(70, setup)
