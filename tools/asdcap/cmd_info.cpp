// asdcap info: what a model file holds (architecture, sizes, sources, tensors).
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>

#include "asdcap/ae.hpp"
#include "asdcap/error.hpp"
#include "asdcap/laion.hpp"
#include "asdcap/model_file.hpp"
#include "asdcap/panns.hpp"
#include "command.hpp"
#include "core/files.hpp"
#include "modelio/gguf.hpp"
#include "modelio/mapped_file.hpp"

namespace {

std::string join(const std::vector<int>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? "-" : "") + std::to_string(v[i]);
  return s;
}

// A shape as "2x3", the form `info --tensors` prints.
std::string dims_text(const std::vector<int64_t>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? "x" : "") + std::to_string(v[i]);
  return s;
}

void print_htsat(const char* label, const asdcap::HtsatConfig& h) {
  std::printf("%s HTSAT: embed_dim %d, depths %s, heads %s, window %d, patch %d, spec %d, features %d, classes %d\n",
              label, h.embed_dim, join(h.depths).c_str(), join(h.heads).c_str(), h.window, h.patch, h.spec_size,
              h.num_features, h.num_classes);
}

void print_gpt2(const char* label, const asdcap::Gpt2Config& g) {
  std::printf("%s GPT-2: n_embd %d, n_layer %d, n_head %d, vocab %d, n_ctx %d\n", label, g.n_embd, g.n_layer, g.n_head,
              g.vocab, g.n_ctx);
}

// Whether every cap.audio.<x> tensor equals audio.<x> byte for byte (and the sets match).
bool captioner_audio_identical(const asdcap::ModelFile& m) {
  size_t pairs = 0;
  for (const auto& t : m.tensors()) {
    if (t.name.rfind("cap.audio.", 0) != 0) continue;
    const std::string twin = t.name.substr(4);
    if (!m.has(twin)) return false;
    const auto& u = m.tensor(twin);
    if (u.dtype != t.dtype || u.shape != t.shape || std::memcmp(u.data, t.data, t.nbytes) != 0) return false;
    ++pairs;
  }
  for (const auto& t : m.tensors())
    if (t.name.rfind("audio.", 0) == 0) --pairs;
  return pairs == 0;
}

// The source checkpoint (keys <prefix>source.checkpoint.*) and the tensors of a GGUF file.
void print_source_and_tensors(const asdcap::GgufView& g, const std::string& prefix, bool list_tensors) {
  auto text = [&](const std::string& key) {
    auto it = g.kv.find(prefix + key);
    return it != g.kv.end() && it->second.kind == asdcap::GgufValue::Kind::String ? it->second.s : std::string();
  };
  if (!text("source.checkpoint.file").empty())
    std::printf("source checkpoint: %s sha256 %s\n", text("source.checkpoint.file").c_str(),
                text("source.checkpoint.sha256").c_str());
  std::map<std::string, std::pair<size_t, size_t>> by_dtype;
  size_t total = 0;
  for (const auto& t : g.tensors) {
    auto& e = by_dtype[asdcap::dtype_name(t.dtype)];
    e.first++;
    e.second += t.nbytes;
    total += t.nbytes;
  }
  std::printf("tensors: %zu, %zu bytes (%.1f MB):", g.tensors.size(), total, total / 1e6);
  for (const auto& [d, e] : by_dtype) std::printf(" %s %zu (%.1f MB)", d.c_str(), e.first, e.second / 1e6);
  std::printf("\n");
  size_t packed = 0;
  for (const auto& t : g.tensors) packed += g.kv.count("asdcap.packed." + t.name);
  if (auto v = g.kv.find("asdcap.format_version"); v != g.kv.end() && v->second.kind == asdcap::GgufValue::Kind::Int)
    std::printf("format version: %lld (%zu weight matrices stored packed, used in place)\n",
                static_cast<long long>(v->second.i), packed);
  if (list_tensors)
    for (const auto& t : g.tensors) {
      // A packed tensor by its PyTorch shape (its key: [out_dim, shape...]), as the model sees it.
      std::vector<int64_t> shape = t.shape;
      if (auto key = g.kv.find("asdcap.packed." + t.name);
          key != g.kv.end() && key->second.kind == asdcap::GgufValue::Kind::IntArray && key->second.ints.size() > 1)
        shape.assign(key->second.ints.begin() + 1, key->second.ints.end());
      std::printf("%s\t%s\t%s\n", t.name.c_str(), asdcap::dtype_name(t.dtype), dims_text(shape).c_str());
    }
}

// A PANNs CNN14 file: configuration, source, tensors.
void run_panns(const std::string& path, bool list_tensors) {
  auto m = asdcap::PannsModel::open(path);
  const auto& c = m->config();
  const asdcap::modelio::MappedFile file(path);  // the header only is read: no tensor data
  const asdcap::GgufView g = asdcap::GgufView::parse(file.data(), file.size(), path);
  std::printf("file: %s\n", path.c_str());
  std::printf("architecture: asdcap-panns (%s)\n", c.variant.c_str());
  std::printf("identity: %s\n", m->identity().c_str());
  std::printf("contents: PANNs %s (embedding + AudioSet tags)\n", c.variant.c_str());
  std::printf(
      "front end: %d Hz, n_fft %d (periodic Hann, centred, reflect padding), hop %d, %d mel bins (Slaney, %.0f-%.0f "
      "Hz), "
      "log10 floor 1e-10, no top_db; shortest clip %lld samples\n",
      c.sample_rate, c.n_fft, c.hop, c.mel_bins, c.fmin, c.fmax, static_cast<long long>(c.min_samples()));
  std::printf(
      "network: 6 conv blocks, widths %s, BatchNorm eps %g (folded into the convolutions %s), embedding %d, "
      "classes %d\n",
      join(c.widths).c_str(), c.bn_eps, g.kv.count("asdcap.format_version") ? "in the file" : "at every open",
      c.embedding_dim, c.classes);
  print_source_and_tensors(g, "asdcap-panns.", list_tensors);
}

// A LAION-CLAP file: configuration, source, tensors.
void run_laion(const std::string& path, bool list_tensors) {
  auto m = asdcap::LaionModel::open(path, 1);
  const auto& c = m->config();
  const asdcap::modelio::MappedFile file(path);  // the header only is read: no tensor data
  const asdcap::GgufView g = asdcap::GgufView::parse(file.data(), file.size(), path);
  std::printf("file: %s\n", path.c_str());
  std::printf("architecture: asdcap-laion (LAION-CLAP, HTSAT audio branch)\n");
  std::printf("identity: %s\n", m->identity().c_str());
  std::printf("contents: audio embedding %d (L2-normalised) + AudioSet tags; text branch %s\n", c.joint_dim,
              c.text_layers ? ("stored, not run (RoBERTa: vocab " + std::to_string(c.text_vocab) + ", width " +
                               std::to_string(c.text_hidden) + ", " + std::to_string(c.text_layers) + " layers)")
                                  .c_str()
                            : "absent");
  std::printf(
      "front end: %d Hz, int16 round trip, %lld-sample windows (repeat + zero-pad / crop), n_fft %d, hop %d, %d mel "
      "bins (%.0f-%.0f Hz), %lld frames\n",
      c.sample_rate, static_cast<long long>(c.clip_samples), c.n_fft, c.hop, c.mel_bins, c.fmin, c.fmax,
      static_cast<long long>(c.frames()));
  std::printf("HTSAT: embed_dim %d, depths %s, heads %s, window %d, num_features %d, classes %d\n", c.audio.embed_dim,
              join(c.audio.depths).c_str(), join(c.audio.heads).c_str(), c.audio.window, c.audio.num_features,
              c.audio.num_classes);
  std::printf("logit scales: audio %g (exp %g), text %g (exp %g)\n", c.logit_scale_a, std::exp(c.logit_scale_a),
              c.logit_scale_t, std::exp(c.logit_scale_t));
  print_source_and_tensors(g, "asdcap-laion.", list_tensors);
}

void run(const std::string& path, bool list_tensors) {
  if (asdcap::is_ae_model_file(path)) {
    std::printf("file: %s\n", path.c_str());
    for (const auto& line : asdcap::describe(asdcap::AeModel::load(path).info())) std::printf("%s\n", line.c_str());
    return;
  }
  if (asdcap::is_panns_model_file(path)) {
    run_panns(path, list_tensors);
    return;
  }
  if (asdcap::is_laion_model_file(path)) {
    run_laion(path, list_tensors);
    return;
  }
  auto m = asdcap::ModelFile::open(path);
  const auto& c = m->config();
  std::printf("file: %s\n", path.c_str());
  std::printf("architecture: %s (%s)\n", m->get_string("general.architecture").c_str(),
              m->has_key("general.name") ? m->get_string("general.name").c_str() : "");
  std::printf("identity: %s\n", m->identity().c_str());
  std::printf("contents: %s%s\n", c.has_clap ? "CLAP (audio + text encoders)" : "",
              c.has_captioner ? (c.has_clap ? " + captioner" : "captioner") : "");
  const auto& fe = c.front_end;
  std::printf(
      "front end: %d Hz, %lld-sample windows, n_fft %d, hop %d, %d mel bins (filters for %d Hz, %.0f-%.0f Hz)\n",
      fe.sample_rate, static_cast<long long>(fe.window_samples), fe.n_fft, fe.hop, fe.mel_bins, fe.mel_sample_rate,
      fe.fmin, fe.fmax);
  if (c.has_clap) {
    print_htsat("audio encoder", c.audio);
    print_gpt2("text encoder", c.text);
    std::printf("projection: %d, logit_scale %.6f (scale %.4f), text_len %d\n", c.proj_dim, c.logit_scale,
                std::exp(c.logit_scale), c.text_len);
  }
  if (c.has_captioner) {
    print_htsat("captioner audio encoder", c.cap_audio);
    std::printf("mapper: prefix %d + clip %d tokens, %d layers, %d heads, dim %d, mlp %d\n", c.mapper.prefix_length,
                c.mapper.clip_length, c.mapper.layers, c.mapper.heads, c.mapper.dim, c.mapper.mlp_hidden);
    print_gpt2("caption decoder", c.decoder);
  }
  std::printf("tokens: pad %lld, eos %lld, caption stop %lld; %zu merges\n", static_cast<long long>(c.pad_id),
              static_cast<long long>(c.eos_id), static_cast<long long>(c.stop_id),
              m->get_string_array("tokenizer.ggml.merges").size());
  for (const char* role : {"clap", "clapcap", "gpt2", "vocab", "merges"}) {
    const std::string k = std::string("asdcap-msclap.source.") + role;
    if (m->has_key(k + ".file"))
      std::printf("source %s: %s sha256 %s\n", role, m->get_string(k + ".file").c_str(),
                  m->get_string(k + ".sha256").c_str());
  }
  if (m->has_key("asdcap-msclap.source.filled_from_gpt2")) {
    auto filled = m->get_string_array("asdcap-msclap.source.filled_from_gpt2");
    if (!filled.empty()) std::printf("tensors taken from gpt2: %zu\n", filled.size());
  }
  std::map<std::string, std::pair<size_t, size_t>> by_dtype;
  size_t bytes = 0;
  for (const auto& t : m->tensors()) {
    auto& e = by_dtype[asdcap::dtype_name(t.dtype)];
    e.first++;
    e.second += t.nbytes;
    bytes += t.nbytes;
  }
  std::printf("tensors: %zu, %zu bytes (%.1f MB):", m->tensors().size(), bytes, bytes / 1e6);
  for (const auto& [d, e] : by_dtype) std::printf(" %s %zu (%.1f MB)", d.c_str(), e.first, e.second / 1e6);
  std::printf("\n");
  size_t packed = 0;
  for (const auto& t : m->tensors()) packed += t.packed_out_dim >= 0;
  if (m->format_version() >= 2)
    std::printf("format version: %lld (%zu weight matrices stored packed, used in place)\n",
                static_cast<long long>(m->format_version()), packed);
  else
    std::printf(
        "format version: 1 (weights in PyTorch order, packed in memory at every open; "
        "`asdcap convert --relayout` re-lays the file)\n");
  if (c.has_clap && c.has_captioner)
    std::printf("captioner audio encoder identical to CLAP's (bit for bit): %s\n",
                captioner_audio_identical(*m) ? "yes" : "no");
  if (list_tensors) {
    std::map<std::string, std::string> origin;
    if (m->has_key("asdcap-msclap.source.tensor_origins"))
      for (const auto& o : m->get_string_array("asdcap-msclap.source.tensor_origins")) {
        auto eq = o.find('=');
        if (eq != std::string::npos) origin[o.substr(0, eq)] = o.substr(eq + 1);
      }
    for (const auto& t : m->tensors())
      std::printf("%s\t%s\t%s\t%s\n", t.name.c_str(), asdcap::dtype_name(t.dtype), dims_text(t.shape).c_str(),
                  origin.count(t.name) ? origin[t.name].c_str() : "");
  }
}

void setup(CLI::App& app) {
  auto path = std::make_shared<std::string>();
  auto list = std::make_shared<bool>(false);
  auto* sub = app.add_subcommand("info", "Describe an asdcap model file: architecture, sizes, sources, tensors");
  sub->add_option("model", *path, "Model file (.gguf) made by `asdcap convert`")->required();
  sub->add_flag("--tensors", *list, "Also list every tensor: name, dtype, shape, origin");
  sub->callback([path, list] { run(*path, *list); });
}

}  // namespace

ASDCAP_REGISTER_COMMAND(71, setup)
