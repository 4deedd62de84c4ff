#include "asdcap/dataset.hpp"

#include <algorithm>
#include <filesystem>
#include <regex>

#include "asdcap/error.hpp"

namespace asdcap {
namespace fs = std::filesystem;

const char* to_string(Split s) { return s == Split::Train ? "train" : "test"; }
const char* to_string(Label l) {
  switch (l) {
    case Label::Normal: return "normal";
    case Label::Anomaly: return "anomaly";
    default: return "unknown";
  }
}

namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

bool has_audio_extension(const fs::path& p) {
  auto ext = lower(p.extension().string());
  return ext == ".wav" || ext == ".flac";
}

std::optional<Split> split_from(const std::string& s) {
  auto l = lower(s);
  if (l == "train") return Split::Train;
  if (l == "test") return Split::Test;
  return std::nullopt;
}

Label label_from(const std::string& s) {
  if (s == "normal") return Label::Normal;
  if (s == "anomaly") return Label::Anomaly;
  return Label::Unknown;
}

// What one name pattern extracted; empty strings for parts the name does not carry.
struct NameParts {
  std::string machine, id, split, label, domain, attributes;
};

std::optional<NameParts> parse_stem(const std::string& stem) {
  // DCASE 2020 Task 2: normal_id_00_00000000, anomaly_id_00_00000000; eval test: id_00_00000000.
  static const std::regex dcase2020(R"(^(normal|anomaly)_id_(\d+)_(\d+)$)");
  static const std::regex dcase2020_eval(R"(^id_(\d+)_(\d+)$)");
  // DCASE 2021-2025: [<machine>_<split>_]section_00_[source|target_][train|test_][normal|anomaly_]0000[_attrs]
  static const std::regex dcase2021(
      R"(^(?:(.+?)_(train|test)_)?section_(\d+)_(?:(source|target)_)?(?:(train|test)_)?(?:(normal|anomaly)_)?(\d+)(?:_(.+))?$)");
  // MIMII-style flat names: <machine>_id_00_<normal|anomaly>_00000000.
  static const std::regex mimii(R"(^(.+?)_id_(\d+)_(normal|anomaly)_(\d+)$)");
  std::smatch m;
  NameParts p;
  if (std::regex_match(stem, m, dcase2020)) {
    p.label = m[1];
    p.id = "id_" + m[2].str();
    return p;
  }
  if (std::regex_match(stem, m, dcase2020_eval)) {
    p.id = "id_" + m[1].str();
    return p;
  }
  if (std::regex_match(stem, m, mimii)) {
    p.machine = m[1];
    p.id = "id_" + m[2].str();
    p.label = m[3];
    return p;
  }
  if (std::regex_match(stem, m, dcase2021)) {
    p.machine = m[1];
    std::string prefix_split = m[2], name_split = m[5];
    if (!prefix_split.empty() && !name_split.empty() && prefix_split != name_split) return std::nullopt;
    p.split = name_split.empty() ? prefix_split : name_split;
    p.id = "section_" + m[3].str();
    p.domain = m[4];
    p.label = m[6];
    p.attributes = m[8];
    return p;
  }
  return std::nullopt;
}

}  // namespace

std::optional<Clip> parse_clip_path(const std::string& path, std::string* reason) {
  fs::path p(path);
  auto fail = [&](std::string why) -> std::optional<Clip> {
    if (reason) *reason = std::move(why);
    return std::nullopt;
  };
  if (!has_audio_extension(p)) return fail("not a .wav or .flac file");
  auto parts = parse_stem(p.stem().string());
  if (!parts)
    return fail(
        "file name fits no known layout (expected e.g. normal_id_00_00000000.wav or "
        "section_00_source_test_anomaly_0000.wav)");
  fs::path parent = p.parent_path();
  auto folder_split = split_from(parent.filename().string());
  std::string folder_machine = folder_split ? parent.parent_path().filename().string() : "";

  Clip c;
  c.path = p.string();
  c.id = parts->id;
  c.domain = parts->domain;
  c.attributes = parts->attributes;
  c.label = label_from(parts->label);

  auto name_split = split_from(parts->split);
  if (name_split && folder_split && *name_split != *folder_split)
    return fail(std::string("split in the name (") + to_string(*name_split) + ") differs from its folder (" +
                to_string(*folder_split) + ")");
  if (name_split)
    c.split = *name_split;
  else if (folder_split)
    c.split = *folder_split;
  else
    return fail("no train/test split in the name or the folder");

  if (!parts->machine.empty() && !folder_machine.empty() && parts->machine != folder_machine)
    return fail("machine type in the name (" + parts->machine + ") differs from its folder (" + folder_machine + ")");
  c.machine = !parts->machine.empty() ? parts->machine : folder_machine;
  if (c.machine.empty())
    return fail("machine type unknown: expected <root>/<machine>/<train|test>/<file> or a '<machine>_<split>_' prefix");

  if (c.split == Split::Train && c.label == Label::Anomaly)
    return fail("anomalous clip in a training split (references must be normal)");
  if (c.split == Split::Train && c.label == Label::Unknown) return fail("training clip without 'normal' in its name");
  return c;
}

Dataset discover_dataset(const std::string& root, const std::vector<std::string>& machines) {
  std::error_code ec;
  fs::path root_path = fs::absolute(fs::path(root), ec).lexically_normal();
  if (ec || !fs::is_directory(root_path, ec)) throw IoError(root + ": not a readable directory");
  Dataset ds;
  ds.root = root_path.string();
  if (!ds.root.empty() && ds.root.size() > 1 && ds.root.back() == '/') ds.root.pop_back();

  fs::recursive_directory_iterator it(root_path, fs::directory_options::skip_permission_denied, ec), end;
  if (ec) throw IoError(root + ": cannot list: " + ec.message());
  for (; it != end; it.increment(ec)) {
    if (ec) {
      ds.skipped.push_back({it->path().string(), "cannot list: " + ec.message()});
      ec.clear();
      continue;
    }
    const fs::path& p = it->path();
    if (!has_audio_extension(p)) continue;
    std::error_code sec;
    auto lst = fs::symlink_status(p, sec);
    auto st = fs::status(p, sec);
    if (fs::is_symlink(lst) && !fs::exists(st)) {
      ds.skipped.push_back({p.string(), "dangling symbolic link"});
      continue;
    }
    if (fs::is_directory(st)) {
      ds.skipped.push_back({p.string(), "is a directory, not an audio file"});
      if (!fs::is_symlink(lst)) it.disable_recursion_pending();
      continue;
    }
    if (!fs::is_regular_file(st)) {
      ds.skipped.push_back({p.string(), "not a regular file"});
      continue;
    }
    std::string reason;
    auto clip = parse_clip_path(p.string(), &reason);
    if (!clip) {
      ds.skipped.push_back({p.string(), reason});
      continue;
    }
    if (!machines.empty() && std::find(machines.begin(), machines.end(), clip->machine) == machines.end()) continue;
    clip->rel = p.lexically_relative(root_path).string();
    ds.clips.push_back(std::move(*clip));
  }
  std::sort(ds.clips.begin(), ds.clips.end(), [](const Clip& a, const Clip& b) { return a.path < b.path; });
  std::sort(ds.skipped.begin(), ds.skipped.end(),
            [](const SkippedFile& a, const SkippedFile& b) { return a.path < b.path; });
  return ds;
}

}  // namespace asdcap
