// asdcap tags: the top AudioSet tag scores of HTSAT's or CNN14's clipwise output for each file.
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <memory>
#include <numeric>

#include "asdcap/clap.hpp"
#include "asdcap/error.hpp"
#include "asdcap/panns.hpp"
#include "asdcap/laion.hpp"
#include "audio_input.hpp"
#include "command.hpp"
#include "core/csv.hpp"

namespace {

using asdcap::csv_field;

struct TagsArgs {
  std::string model, labels;
  asdcap::cli::AudioInput input;
  int top = 5;
  bool csv = false;
};

// One class name per line, or AudioSet's class_labels_indices.csv (index,mid,display_name).
std::vector<std::string> read_labels(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw asdcap::IoError("cannot read labels file " + path);
  std::vector<std::string> labels;
  std::string line;
  bool first = true, audioset_csv = false;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (first && line.rfind("index,mid,display_name", 0) == 0) {
      audioset_csv = true;
      first = false;
      continue;
    }
    first = false;
    if (audioset_csv) {
      // index,mid,"display name, possibly with commas"
      const auto c1 = line.find(','), c2 = c1 == std::string::npos ? c1 : line.find(',', c1 + 1);
      if (c2 == std::string::npos) throw asdcap::FormatError("labels file " + path + ": bad line: " + line);
      std::string name = line.substr(c2 + 1);
      if (name.size() >= 2 && name.front() == '"' && name.back() == '"') name = name.substr(1, name.size() - 2);
      labels.push_back(name);
    } else if (!line.empty()) {
      labels.push_back(line);
    }
  }
  return labels;
}

// Each file's clipwise scores (msclap's HTSAT, PANNs CNN14 or LAION-CLAP's HTSAT, from the model file),
// and the class count.
std::vector<std::vector<float>> clipwise_scores(const TagsArgs& a, int64_t& classes) {
  std::vector<std::vector<float>> scores;
  if (asdcap::is_laion_model_file(a.model)) {
    const auto model = asdcap::LaionModel::open(a.model, a.input.threads);
    classes = model->config().audio.num_classes;
    for (auto& o : a.input.encode(*model, "tagging")) scores.push_back(std::move(o.clipwise));
  } else if (asdcap::is_panns_model_file(a.model)) {
    const auto model = asdcap::PannsModel::open(a.model, a.input.threads);
    classes = model->config().classes;
    for (auto& o : a.input.run(*model, "tagging")) scores.push_back(std::move(o.clipwise));
  } else {
    const asdcap::AudioEncoder encoder(asdcap::ModelFile::open(a.model), "audio.", {a.input.threads});
    classes = encoder.num_classes();
    for (auto& o : a.input.encode(encoder, "tagging")) scores.push_back(std::move(o.clipwise));
  }
  return scores;
}

void run(const TagsArgs& a) {
  const auto& files = a.input.files;
  if (files.empty()) throw asdcap::UsageError("tags: no audio FILE given");
  int64_t classes = 0;
  const auto outs = clipwise_scores(a, classes);
  std::vector<std::string> labels;
  if (!a.labels.empty()) {
    labels = read_labels(a.labels);
    if (static_cast<int64_t>(labels.size()) != classes)
      throw asdcap::UsageError("labels file " + a.labels + " has " + std::to_string(labels.size()) +
                               " names, the model has " + std::to_string(classes) + " classes");
  } else {
    for (int64_t i = 0; i < classes; ++i) labels.push_back("class_" + std::to_string(i));
  }
  const int64_t top = std::min<int64_t>(a.top, classes);
  if (a.csv) std::printf("file,rank,class,label,score\n");
  for (size_t f = 0; f < outs.size(); ++f) {
    const auto& scores = outs[f];
    std::vector<int64_t> order(static_cast<size_t>(classes));
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int64_t x, int64_t y) { return scores[x] > scores[y]; });
    if (!a.csv) std::printf("%s\n", files[f].c_str());
    for (int64_t r = 0; r < top; ++r) {
      const int64_t c = order[static_cast<size_t>(r)];
      if (a.csv)
        std::printf("%s,%lld,%lld,%s,%.6f\n", csv_field(files[f]).c_str(), static_cast<long long>(r + 1),
                    static_cast<long long>(c), csv_field(labels[static_cast<size_t>(c)]).c_str(), scores[c]);
      else
        std::printf("  %2lld. %.4f  %s\n", static_cast<long long>(r + 1), scores[c],
                    labels[static_cast<size_t>(c)].c_str());
    }
  }
  std::fflush(stdout);
}

void setup(CLI::App& app) {
  auto a = std::make_shared<TagsArgs>();
  auto* sub = app.add_subcommand(
      "tags", "Top AudioSet tag scores (the 527 sigmoid outputs of msclap's HTSAT or PANNs CNN14) of audio files");
  asdcap::cli::add_model(sub, a->model, "of msclap or PANNs CNN14 (which one: read from the file)")->required();
  sub->add_option("--labels", a->labels,
                  "Class names: one per line, or AudioSet's class_labels_indices.csv (default: class_<index>)");
  sub->add_option("--top", a->top, "Tags shown per file")->capture_default_str()->check(CLI::Range(1, 100000));
  sub->add_flag("--csv", a->csv, "CSV output: file,rank,class,label,score");
  a->input.add_options(sub, "scores averaged");
  a->input.crop_option->default_str("random; whole for a PANNs model");
  sub->callback([a] { run(*a); });
}

}  // namespace

ASDCAP_REGISTER_COMMAND(62, setup)
