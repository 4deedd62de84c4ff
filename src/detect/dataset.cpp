#include "asdcap/dataset.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
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

namespace {

// One folder as a file-system object: the walk's identity for loop protection.
struct FolderId {
  dev_t dev;
  ino_t ino;
  bool operator<(const FolderId& o) const { return dev != o.dev ? dev < o.dev : ino < o.ino; }
};

// Recursive discovery. Each folder is listed completely and closed before its sub-folders are
// visited, so the walk holds one folder open at a time whatever the depth. Symbolic links to
// folders are followed; a folder reached a second time (a link loop, or two links to one folder)
// is listed once and the later path is skipped with the reason.
class Walk {
 public:
  Walk(const fs::path& root, const std::vector<std::string>& machines,
       const std::function<void(const std::string&)>& on_folder, Dataset& ds)
      : root_(root), machines_(machines), on_folder_(on_folder), ds_(ds) {}

  void folder(const fs::path& dir, bool is_root) {
    if (on_folder_) on_folder_(dir.string());
    struct stat st {};
    const int stat_rc = ::stat(dir.c_str(), &st);
    if (stat_rc != 0 || !S_ISDIR(st.st_mode)) {
      const int e = stat_rc != 0 ? errno : ENOTDIR;
      if (is_root) throw IoError(dir.string() + ": cannot list: " + std::strerror(e));
      // Seen as a folder in its parent a moment ago: gone now, the dataset changed under the run.
      if (e == ENOENT || e == ENOTDIR) throw changed_during_run(dir, std::strerror(e));
      skip(dir, std::string("cannot read folder: ") + std::strerror(e));
      return;
    }
    auto [seen, inserted] = visited_.emplace(FolderId{st.st_dev, st.st_ino}, dir.string());
    if (!inserted) {
      const bool loop = dir.string().rfind(seen->second + "/", 0) == 0;
      skip(dir, (loop ? "symbolic link loop: leads back to " : "same folder as ") + seen->second +
                    (loop ? "" : ", already listed"));
      return;
    }
    std::vector<fs::path> entries;
    {
      std::error_code ec;
      fs::directory_iterator it(dir, ec), end;
      if (ec) {
        if (is_root) throw IoError(dir.string() + ": cannot list: " + ec.message());
        if (ec == std::errc::no_such_file_or_directory || ec == std::errc::not_a_directory)
          throw changed_during_run(dir, ec.message());
        skip(dir, "cannot list folder: " + ec.message());
        return;
      }
      while (it != end) {
        entries.push_back(it->path());
        it.increment(ec);
        // An incomplete listing would silently drop clips: stop the run instead.
        if (ec)
          throw IoError(dir.string() + ": listing the folder failed part-way: " + ec.message() +
                        " (did the dataset change during the run?)");
      }
    }
    std::sort(entries.begin(), entries.end());
    for (const auto& p : entries) entry(p);
  }

 private:
  void skip(const fs::path& p, std::string why) { ds_.skipped.push_back({p.string(), std::move(why)}); }
  static IoError changed_during_run(const fs::path& dir, const std::string& why) {
    return IoError(dir.string() + ": the folder cannot be listed any more: " + why +
                   " (did the dataset change during the run?)");
  }

  void entry(const fs::path& p) {
    struct stat lst {
    }, st{};
    if (::lstat(p.c_str(), &lst) != 0) {
      if (has_audio_extension(p)) skip(p, std::string("cannot read: ") + std::strerror(errno));
      return;
    }
    const bool link = S_ISLNK(lst.st_mode);
    if (link && ::stat(p.c_str(), &st) != 0) {
      const int e = errno;
      // A link to nothing only matters where a clip or a folder could be: audio names are
      // reported; any other broken link is ignored like any other non-audio file.
      if (!has_audio_extension(p)) {
        if (e == ELOOP) skip(p, "symbolic link loop (the link resolves to itself)");
        return;
      }
      skip(p, e == ELOOP    ? "symbolic link loop (the link resolves to itself)"
              : e == ENOENT ? "dangling symbolic link"
                            : std::string("cannot follow the symbolic link: ") + std::strerror(e));
      return;
    }
    if (!link) st = lst;
    if (S_ISDIR(st.st_mode)) {
      if (has_audio_extension(p))
        skip(p, "is a directory, not an audio file");
      else
        folder(p, false);
      return;
    }
    if (!has_audio_extension(p)) return;
    if (!S_ISREG(st.st_mode)) {
      skip(p, "not a regular file");
      return;
    }
    std::string reason;
    auto clip = parse_clip_path(p.string(), &reason);
    if (!clip) {
      skip(p, reason);
      return;
    }
    if (!machines_.empty() && std::find(machines_.begin(), machines_.end(), clip->machine) == machines_.end()) return;
    clip->rel = p.lexically_relative(root_).string();
    ds_.clips.push_back(std::move(*clip));
  }

  const fs::path& root_;
  const std::vector<std::string>& machines_;
  const std::function<void(const std::string&)>& on_folder_;
  Dataset& ds_;
  std::map<FolderId, std::string> visited_;
};

}  // namespace

Dataset discover_dataset(const std::string& root, const std::vector<std::string>& machines,
                         const std::function<void(const std::string& folder)>& on_folder) {
  std::error_code ec;
  fs::path root_path = fs::absolute(fs::path(root), ec).lexically_normal();
  if (ec || !fs::is_directory(root_path, ec)) throw IoError(root + ": not a readable directory");
  Dataset ds;
  ds.root = root_path.string();
  if (!ds.root.empty() && ds.root.size() > 1 && ds.root.back() == '/') ds.root.pop_back();
  root_path = fs::path(ds.root);
  Walk(root_path, machines, on_folder, ds).folder(root_path, true);
  std::sort(ds.clips.begin(), ds.clips.end(), [](const Clip& a, const Clip& b) { return a.path < b.path; });
  std::sort(ds.skipped.begin(), ds.skipped.end(),
            [](const SkippedFile& a, const SkippedFile& b) { return a.path < b.path; });
  return ds;
}

}  // namespace asdcap
