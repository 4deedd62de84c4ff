// Model files, audio loading, CLAP's audio and text encoders, similarities, captions and the
// converter. Every computation runs with the GIL released; inputs are copied out of numpy first.
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "asdcap/audio.hpp"
#include "asdcap/caption.hpp"
#include "asdcap/clap.hpp"
#include "asdcap/convert.hpp"
#include "asdcap/error.hpp"
#include "asdcap/model_file.hpp"
#include "asdcap/prompts.hpp"
#include "asdcap/text_encoder.hpp"
#include "bindings.hpp"
#include "core/files.hpp"

namespace asdcap::python {

namespace {

struct Model {
  std::shared_ptr<const ModelFile> file;
};

// Per-clip outputs of CLAP's audio encoder, one row per clip.
struct ClipOutputs {
  py::array_t<float> embedding, latent, clipwise;
};

ClipOutputs to_outputs(std::vector<AudioEncoder::Output>&& outs, const AudioEncoder& encoder) {
  const auto n = static_cast<py::ssize_t>(outs.size());
  std::vector<float> e, l, c;
  for (auto& o : outs) {
    e.insert(e.end(), o.embedding.begin(), o.embedding.end());
    l.insert(l.end(), o.latent.begin(), o.latent.end());
    c.insert(c.end(), o.clipwise.begin(), o.clipwise.end());
  }
  outs.clear();
  ClipOutputs r;
  r.embedding = to_numpy(std::move(e), {n, static_cast<py::ssize_t>(encoder.dim())});
  r.latent = to_numpy(std::move(l), {n, static_cast<py::ssize_t>(encoder.latent_dim())});
  r.clipwise = to_numpy(std::move(c), {n, static_cast<py::ssize_t>(encoder.num_classes())});
  return r;
}

struct PyAudioEncoder {
  std::shared_ptr<const ModelFile> model;
  std::unique_ptr<AudioEncoder> encoder;
};

// encode_clip's rule on several 44.1 kHz signals at once: every clip's windows go through one
// batched encoder call, and each clip's outputs are its windows' WindowMean.
std::vector<AudioEncoder::Output> encode_signals(const AudioEncoder& encoder,
                                                 const std::vector<std::vector<float>>& signals,
                                                 const std::vector<CropPolicy>& crops) {
  std::vector<std::vector<float>> windows;
  std::vector<size_t> owner;
  for (size_t i = 0; i < signals.size(); ++i) {
    require_windowed_crop(crops[i], "msclap's audio encoder");
    if (crops[i].seeded_from_content())
      throw InvalidArgument(
          "crop 'random' without a seed needs the clip's file (its content hash): give "
          "random:SEED, offset:N or cover for signals, or embed the files");
    for (auto& w : crop_windows(signals[i], crops[i])) {
      windows.push_back(std::move(w));
      owner.push_back(i);
    }
  }
  std::vector<const float*> ptrs;
  for (const auto& w : windows) ptrs.push_back(w.data());
  const auto outs = encoder.encode(ptrs);
  std::vector<WindowMean> embedding(signals.size()), latent(signals.size()), clipwise(signals.size());
  for (size_t j = 0; j < outs.size(); ++j) {
    embedding[owner[j]].add(outs[j].embedding);
    latent[owner[j]].add(outs[j].latent);
    clipwise[owner[j]].add(outs[j].clipwise);
  }
  std::vector<AudioEncoder::Output> result;
  for (size_t i = 0; i < signals.size(); ++i)
    result.push_back({embedding[i].mean(), latent[i].mean(), clipwise[i].mean()});
  return result;
}

std::vector<std::vector<float>> signal_list(const std::vector<FloatArray>& signals) {
  std::vector<std::vector<float>> out;
  for (size_t i = 0; i < signals.size(); ++i) out.push_back(signal_vector(signals[i], "signal " + std::to_string(i)));
  return out;
}

struct PyTextEncoder {
  std::shared_ptr<const ModelFile> model;
  std::unique_ptr<TextEncoder> encoder;
};

struct PyCaptioner {
  std::shared_ptr<const ModelFile> model;
  std::unique_ptr<Captioner> captioner;
};

CaptionOptions caption_options(int beam, int max_tokens, float temperature, const std::string& prompt) {
  if (beam < 1) throw InvalidArgument("beam_size must be at least 1, got " + std::to_string(beam));
  if (max_tokens < 1) throw InvalidArgument("max_tokens must be at least 1, got " + std::to_string(max_tokens));
  CaptionOptions o;
  o.beam = beam;
  o.max_tokens = max_tokens;
  o.temperature = temperature;
  o.prompt = prompt;
  return o;
}

py::array_t<float> similarity_matrix(const FloatArray& a, const FloatArray& b, const char* what,
                                     const std::function<std::vector<float>(const Matrix&, const Matrix&)>& fn) {
  Matrix ma = matrix(a, std::string(what) + " a"), mb = matrix(b, std::string(what) + " b");
  if (ma.cols != mb.cols)
    throw InvalidArgument(std::string(what) + ": the rows of a and b differ in size (" + std::to_string(ma.cols) +
                          " and " + std::to_string(mb.cols) + ")");
  std::vector<float> values;
  {
    py::gil_scoped_release release;
    values = fn(ma, mb);
  }
  return to_numpy(std::move(values), {static_cast<py::ssize_t>(ma.rows), static_cast<py::ssize_t>(mb.rows)});
}

}  // namespace

void register_clap(py::module_& m) {
  // ---- audio ----------------------------------------------------------------------------------
  py::class_<AudioInfo>(m, "AudioInfo", "What an audio file's header says.")
      .def_readonly("path", &AudioInfo::path)
      .def_readonly("sample_rate", &AudioInfo::sample_rate)
      .def_readonly("channels", &AudioInfo::channels)
      .def_readonly("frames", &AudioInfo::frames, "Frames per channel.")
      .def_readonly("format", &AudioInfo::format, "e.g. 'WAV PCM_16'.")
      .def("__repr__", [](const AudioInfo& i) {
        return "AudioInfo(path='" + i.path + "', sample_rate=" + std::to_string(i.sample_rate) +
               ", channels=" + std::to_string(i.channels) + ", frames=" + std::to_string(i.frames) + ", format='" +
               i.format + "')";
      });
  m.def("probe_audio", &probe_audio, py::arg("path"), py::call_guard<py::gil_scoped_release>(),
        "Reads an audio file's header only. Raises IoError / FormatError naming the file.");
  m.def(
      "load_audio",
      [](const std::string& path, int rate, const std::string& channels) {
        const ChannelMode mode = parse_channel_mode(channels);
        AudioInfo info;
        std::vector<float> signal;
        {
          py::gil_scoped_release release;
          signal = load_audio(path, rate, mode, &info);
        }
        return py::make_tuple(to_numpy(std::move(signal)), info);
      },
      py::arg("path"), py::arg("sample_rate") = 44100, py::arg("channels") = "mean",
      "Decodes an audio file to a float32 signal in [-1, 1] resampled to `sample_rate` (torchaudio's "
      "resampler, bit for bit; 0 keeps the file's rate), channels averaged ('mean') or concatenated "
      "('concat', msclap's way). Returns (signal, AudioInfo).");
  m.def(
      "resample",
      [](const FloatArray& signal, int from_rate, int to_rate) {
        auto x = signal_vector(signal, "resample");
        std::vector<float> y;
        {
          py::gil_scoped_release release;
          y = resample(x, from_rate, to_rate);
        }
        return to_numpy(std::move(y));
      },
      py::arg("signal"), py::arg("from_rate"), py::arg("to_rate"),
      "torchaudio.functional.resample(signal, from_rate, to_rate) with its defaults, bit for bit.");
  m.def("sha256_file", &sha256_file, py::arg("path"), py::call_guard<py::gil_scoped_release>(),
        "The SHA-256 of a file's content in hex.");
  m.def(
      "clip_crop",
      [](const std::string& crop, const std::string& path) {
        const CropPolicy policy = CropPolicy::parse(crop);
        py::gil_scoped_release release;
        const std::string sha = policy.seeded_from_content() ? sha256_file(path) : "";
        return resolve_clip_crop(policy, sha).policy.to_string();
      },
      py::arg("crop"), py::arg("path"),
      "The crop asdcap applies to this file: an unseeded 'random' becomes 'random:SEED' with the seed "
      "taken from the file's content hash (what every asdcap command does); other crops are returned "
      "as they are.");
  m.def(
      "window_starts",
      [](int64_t length, const std::string& crop, int64_t window) {
        return asdcap::window_starts(length, CropPolicy::parse(crop), window);
      },
      py::arg("length"), py::arg("crop"), py::arg("window") = kWindowSamples,
      "Start offsets of the windows a crop takes from a signal of `length` samples.");
  m.attr("WINDOW_SAMPLES") = kWindowSamples;

  // ---- model files ----------------------------------------------------------------------------
  py::class_<Model>(m, "Model", "A converted asdcap model file (GGUF), memory-mapped and validated.")
      .def(py::init([](const std::string& path) {
             py::gil_scoped_release release;
             return Model{ModelFile::open(path)};
           }),
           py::arg("path"), "Opens a model file. Raises IoError / FormatError / ModelError naming the file.")
      .def_property_readonly("path", [](const Model& mf) { return mf.file->path(); })
      .def_property_readonly(
          "identity", [](const Model& mf) { return mf.file->identity(); },
          "Content identity (SHA-256 of header, metadata and tensor table).")
      .def_property_readonly(
          "has_clap", [](const Model& mf) { return mf.file->config().has_clap; },
          "True when the file holds CLAP's audio and text encoders.")
      .def_property_readonly(
          "has_captioner", [](const Model& mf) { return mf.file->config().has_captioner; },
          "True when the file holds the captioner (converted with --clapcap).")
      .def_property_readonly(
          "logit_scale", [](const Model& mf) { return mf.file->config().logit_scale; },
          "The log of CLAP's similarity scale.")
      .def_property_readonly(
          "embedding_dim", [](const Model& mf) { return mf.file->config().proj_dim; },
          "Size of the joint audio-text embedding.")
      .def("__repr__", [](const Model& mf) { return "asdcap.Model('" + mf.file->path() + "')"; });

  // ---- audio encoder --------------------------------------------------------------------------
  py::class_<ClipOutputs>(m, "ClipOutputs", "CLAP's audio-encoder outputs, one row per clip.")
      .def_readonly("embedding", &ClipOutputs::embedding, "[clips x dim]: the projection (msclap's audio embedding).")
      .def_readonly("latent", &ClipOutputs::latent, "[clips x latent_dim]: HTSAT's latent output.")
      .def_readonly("clipwise", &ClipOutputs::clipwise, "[clips x classes]: AudioSet tag scores (sigmoid).");

  py::class_<PyAudioEncoder>(m, "AudioEncoder",
                             "CLAP's HTSAT audio encoder with its projection. Computes on `threads` threads "
                             "(0: all cores); results are the same bits for any thread count.")
      .def(py::init([](const Model& model, const std::string& prefix, int threads) {
             py::gil_scoped_release release;
             return PyAudioEncoder{model.file,
                                   std::make_unique<AudioEncoder>(model.file, prefix, AudioEncoderParams{threads})};
           }),
           py::arg("model"), py::arg("prefix") = "audio.", py::arg("threads") = 0,
           "prefix 'audio.' is CLAP's encoder, 'cap.audio.' the captioner's copy. Raises ModelError.")
      .def_property_readonly("dim", [](const PyAudioEncoder& e) { return e.encoder->dim(); })
      .def_property_readonly("latent_dim", [](const PyAudioEncoder& e) { return e.encoder->latent_dim(); })
      .def_property_readonly("num_classes", [](const PyAudioEncoder& e) { return e.encoder->num_classes(); })
      .def(
          "embed_files",
          [](const PyAudioEncoder& e, const std::vector<std::string>& paths, const std::string& crop,
             const std::string& channels) {
            const CropPolicy policy = CropPolicy::parse(crop);
            const ChannelMode mode = parse_channel_mode(channels);
            std::vector<AudioEncoder::Output> outs;
            {
              py::gil_scoped_release release;
              outs = encode_files(*e.encoder, paths, policy, mode);
            }
            return to_outputs(std::move(outs), *e.encoder);
          },
          py::arg("paths"), py::arg("crop") = "random", py::arg("channels") = "mean",
          "Embeds audio files exactly as `asdcap embed` does: decoded, resampled to 44.1 kHz, channels "
          "per `channels`, the windows of `crop` ('random' seeded by the file's content, 'random:SEED', "
          "'offset:N', 'cover') averaged. Raises IoError / FormatError naming the file.")
      .def(
          "embed_signals",
          [](const PyAudioEncoder& e, const std::vector<FloatArray>& signals, const std::vector<std::string>& crops) {
            auto list = signal_list(signals);
            const auto policies = crop_policies(crops, list.size());
            std::vector<AudioEncoder::Output> outs;
            {
              py::gil_scoped_release release;
              outs = encode_signals(*e.encoder, list, policies);
            }
            return to_outputs(std::move(outs), *e.encoder);
          },
          py::arg("signals"), py::arg("crops") = std::vector<std::string>{"offset:0"},
          "Embeds mono float32 signals at 44.1 kHz with one crop for all or one per signal "
          "('random:SEED', 'offset:N', 'cover'). The same bits as embed_files on the files' signals.");

  // ---- text encoder ---------------------------------------------------------------------------
  py::class_<PyTextEncoder>(m, "TextEncoder", "CLAP's GPT-2 text encoder with its projection (msclap 2023).")
      .def(py::init([](const Model& model, int threads) {
             py::gil_scoped_release release;
             return PyTextEncoder{model.file, std::make_unique<TextEncoder>(model.file, TextEncoderParams{threads})};
           }),
           py::arg("model"), py::arg("threads") = 0)
      .def_property_readonly("dim", [](const PyTextEncoder& e) { return e.encoder->dim(); })
      .def(
          "embed",
          [](const PyTextEncoder& e, const std::vector<std::string>& texts) {
            std::vector<float> rows;
            {
              py::gil_scoped_release release;
              rows = e.encoder->embed(texts);
            }
            return to_numpy(std::move(rows),
                            {static_cast<py::ssize_t>(texts.size()), static_cast<py::ssize_t>(e.encoder->dim())});
          },
          py::arg("texts"), "[texts x dim] embeddings (projection output, not L2-normalised), as msclap.")
      .def(
          "token_ids", [](const PyTextEncoder& e, const std::string& text) { return e.encoder->trace(text).ids; },
          py::arg("text"), "The token ids msclap's tokenizer gives text + ' <|endoftext|>'.");

  m.def(
      "default_reference_texts", [] { return default_reference_texts(); },
      "The papers' 8 reference texts (the zero-shot similarities' default), in the papers' order.");

  // ---- similarities ---------------------------------------------------------------------------
  m.def(
      "cosine_matrix",
      [](const FloatArray& a, const FloatArray& b) {
        return similarity_matrix(a, b, "cosine_matrix", [](const Matrix& x, const Matrix& y) {
          return asdcap::cosine_matrix(x.values.data(), x.rows, y.values.data(), y.rows, x.cols);
        });
      },
      py::arg("a"), py::arg("b"), "cos(a_i, b_j) as an [len(a) x len(b)] float32 matrix (a zero row gives 0).");
  m.def(
      "scaled_logits",
      [](const FloatArray& a, const FloatArray& b, float logit_scale) {
        return similarity_matrix(a, b, "scaled_logits", [logit_scale](const Matrix& x, const Matrix& y) {
          return asdcap::scaled_logits(x.values.data(), x.rows, y.values.data(), y.rows, x.cols, logit_scale);
        });
      },
      py::arg("a"), py::arg("b"), py::arg("logit_scale"),
      "msclap's similarity: exp(logit_scale) * cosine, [len(a) x len(b)].");
  m.def(
      "softmax_rows",
      [](const FloatArray& logits) {
        Matrix x = matrix(logits, "softmax_rows");
        auto p = softmax_rows_copy(x.values, x.rows, x.cols);
        return to_numpy(std::move(p), {static_cast<py::ssize_t>(x.rows), static_cast<py::ssize_t>(x.cols)});
      },
      py::arg("logits"), "The softmax of each row (zero-shot probabilities over the texts).");

  // ---- captions -------------------------------------------------------------------------------
  py::class_<CaptionBeam>(m, "CaptionBeam", "One beam of the search.")
      .def_readonly("text", &CaptionBeam::text)
      .def_readonly("tokens", &CaptionBeam::tokens)
      .def_readonly("score", &CaptionBeam::score, "Length-normalised log-probability.");
  py::class_<CaptionResult>(m, "CaptionResult", "A caption and every beam, best first.")
      .def_readonly("caption", &CaptionResult::caption)
      .def_readonly("beams", &CaptionResult::beams)
      .def("__repr__", [](const CaptionResult& r) { return "CaptionResult(caption='" + r.caption + "')"; });
  py::class_<PyCaptioner>(m, "Captioner",
                          "msclap's captioner (clapcap): audio embedding -> mapper -> GPT-2 beam search.")
      .def(py::init([](const Model& model, int threads) {
             py::gil_scoped_release release;
             return PyCaptioner{model.file, std::make_unique<Captioner>(model.file, CaptionerParams{threads})};
           }),
           py::arg("model"), py::arg("threads") = 0, "Raises ModelError when the file has no captioner.")
      .def(
          "caption_signals",
          [](const PyCaptioner& c, const std::vector<FloatArray>& signals, const std::vector<std::string>& crops,
             int beam_size, int max_tokens, float temperature, const std::string& prompt) {
            auto list = signal_list(signals);
            const auto policies = crop_policies(crops, list.size());
            const CaptionOptions options = caption_options(beam_size, max_tokens, temperature, prompt);
            std::vector<CaptionResult> out;
            py::gil_scoped_release release;
            for (size_t i = 0; i < list.size(); ++i) {
              if (policies[i].seeded_from_content())
                throw InvalidArgument(
                    "crop 'random' without a seed needs the clip's file: give random:SEED, "
                    "offset:N or cover for signals");
              out.push_back(c.captioner->caption_signal(list[i], policies[i], options));
            }
            return out;
          },
          py::arg("signals"), py::arg("crops") = std::vector<std::string>{"offset:0"}, py::arg("beam_size") = 5,
          py::arg("max_tokens") = 67, py::arg("temperature") = 1.f, py::arg("prompt") = "",
          "Captions of mono 44.1 kHz signals (one crop for all or one per signal); `prompt` is a text "
          "every caption must continue, e.g. 'Sounds like'.");

  // ---- converter ------------------------------------------------------------------------------
  m.def(
      "convert_model",
      [](const std::string& out, const std::string& clap, const std::string& clapcap, const std::string& vocab,
         const std::string& merges, const std::string& gpt2, const std::string& dtype, int text_heads,
         int decoder_heads) {
        ConvertOptions o;
        o.out = out;
        o.clap = clap;
        o.clapcap = clapcap;
        o.vocab = vocab;
        o.merges = merges;
        o.gpt2_safetensors = gpt2;
        if (dtype == "f32")
          o.dtype = DType::F32;
        else if (dtype == "f16")
          o.dtype = DType::F16;
        else if (dtype == "bf16")
          o.dtype = DType::BF16;
        else if (dtype == "int8")
          o.dtype = DType::I8;
        else
          throw InvalidArgument("dtype must be 'f32', 'f16', 'bf16' or 'int8', got '" + dtype + "'");
        o.text_heads = text_heads;
        o.decoder_heads = decoder_heads;
        py::gil_scoped_release release;
        const ConvertReport report = convert_model(o);
        return report.warnings;
      },
      py::arg("out"), py::kw_only(), py::arg("clap") = "", py::arg("clapcap") = "", py::arg("vocab") = "",
      py::arg("merges") = "", py::arg("gpt2") = "", py::arg("dtype") = "f32", py::arg("text_heads") = 0,
      py::arg("decoder_heads") = 0,
      "Converts msclap checkpoints (+ GPT-2's vocab.json/merges.txt) into an asdcap model file, as "
      "`asdcap convert`. Returns the converter's warnings.");
  m.def(
      "relayout_model",
      [](const std::string& in, const std::string& out, bool int8) {
        RelayoutReport r;
        {
          py::gil_scoped_release release;
          r = relayout_model(in, out, int8);
        }
        return py::make_tuple(r.packed, r.already, r.quantized);
      },
      py::arg("model"), py::arg("out"), py::kw_only(), py::arg("int8") = false,
      "Rewrites an msclap, LAION-CLAP or PANNs model file in the current format, as `asdcap convert --relayout`; "
      "int8=True stores its weight matrices as int8 (`--dtype int8`, opt-in and approximate). Returns "
      "(matrices packed now, packed already, stored as int8 now).");
}

}  // namespace asdcap::python
