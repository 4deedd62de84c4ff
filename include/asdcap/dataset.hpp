// Discovery of DCASE-style datasets: which clips exist under a root, and what their names say
// (machine type, ID/section, split, label, domain, attributes). Names that fit no known layout
// are reported as skipped with a reason, never guessed.
#pragma once
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace asdcap {

enum class Split { Train, Test };
enum class Label { Normal, Anomaly, Unknown };

const char* to_string(Split s);
const char* to_string(Label l);  // "normal", "anomaly", "unknown"

struct Clip {
  std::string path;     // absolute (lexically normalised, symlinks not resolved)
  std::string rel;      // relative to the dataset root
  std::string machine;  // e.g. "fan", "ToyCar"
  std::string id;       // "id_00" (DCASE 2020) or "section_00" (DCASE 2021+)
  Split split = Split::Test;
  Label label = Label::Unknown;
  std::string domain;      // "source" | "target" | "" (not in the name)
  std::string attributes;  // trailing attribute text of 2021+ names, e.g. "car_C2_spd_34V_mic_1"
};

struct SkippedFile {
  std::string path;
  std::string reason;
};

// What a file name (and, when the name does not carry them, its folders) says about a clip.
// `path` may be relative or absolute; the machine comes from the name (DCASE 2023 dev
// "<machine>_<split>_section_..." names, MIMII "<machine>_id_XX_<label>_N") or from the folder
// above "train"/"test"; the split from the name or that folder. On failure returns nullopt
// and sets `reason`.
std::optional<Clip> parse_clip_path(const std::string& path, std::string* reason);

struct Dataset {
  std::string root;                  // absolute
  std::vector<Clip> clips;           // sorted by path
  std::vector<SkippedFile> skipped;  // audio-looking entries that cannot be used, with why
};

// Walks `root` recursively. Files with extension .wav/.flac (any case) are parsed; other files
// are ignored. Directories or dangling links named like audio files, unparsable names, anomalous
// clips in a training split, training clips without a label and clips whose machine is not in
// `machines` (when non-empty: the filter skips silently) are handled as documented above.
// Symbolic links to folders are followed; a folder reached twice (a link loop, two links to one
// folder) is listed once and the other path skipped; a sub-folder that cannot be read is listed in
// `skipped` with the reason. Throws IoError if `root` is not a readable directory, if listing a
// folder fails part-way, or if a folder vanishes (or stops being a folder) between being seen in
// its parent and being listed: the clip list would be incomplete. `on_folder`, when set, is called
// with each folder's path just before it is listed.
Dataset discover_dataset(const std::string& root, const std::vector<std::string>& machines = {},
                         const std::function<void(const std::string& folder)>& on_folder = {});

}  // namespace asdcap
