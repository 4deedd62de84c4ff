#include "serve/service.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>

#include "asdcap/audio.hpp"
#include "asdcap/knn.hpp"
#include "asdcap/metrics.hpp"
#include "core/clock.hpp"
#include "core/files.hpp"
#include "serve/http_error.hpp"

namespace asdcap::serve {
namespace fs = std::filesystem;

namespace {

constexpr double kGammaQuantile = 0.9;
// The longest clip taken: a short upload at a very low sample rate would otherwise become a signal
// of billions of samples once resampled to the backend's rate.
constexpr double kMaxClipSeconds = 600;

using Clock = std::chrono::steady_clock;

bool valid_char(char c, bool first) {
  if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) return true;
  return !first && (c == '_' || c == '.' || c == '-');
}

std::string random_hex(int bytes) {
  std::random_device rd;
  static const char* hex = "0123456789abcdef";
  std::string s;
  for (int i = 0; i < bytes; ++i) {
    const unsigned v = rd() & 0xff;
    s += hex[v >> 4];
    s += hex[v & 15];
  }
  return s;
}

// "wav" / "flac" / ... from libsndfile's format name ("WAV PCM_16").
std::string extension_of(const AudioInfo& info) {
  std::string first = info.format.substr(0, info.format.find(' '));
  std::transform(first.begin(), first.end(), first.begin(), [](unsigned char c) { return std::tolower(c); });
  if (first.empty() || !std::all_of(first.begin(), first.end(), [](unsigned char c) { return std::isalnum(c); }))
    return "audio";
  return first;
}

}  // namespace

bool valid_machine_name(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  for (size_t i = 0; i < name.size(); ++i)
    if (!valid_char(name[i], i == 0)) return false;
  return true;
}

Service::Service(Store& store, EmbeddingBackend& backend, Metrics& metrics, std::string data_dir, int k, bool explain,
                 const std::string& folder_root)
    : store_(store), backend_(backend), metrics_(metrics), data_dir_(std::move(data_dir)), k_(k), explain_(explain) {
  if (k_ < 1) throw InvalidArgument("serve: k must be at least 1");
  if (!folder_root.empty()) {
    std::error_code ec;
    const fs::path root = fs::canonical(folder_root, ec);
    if (ec || !fs::is_directory(root, ec)) throw InvalidArgument("folder root " + folder_root + ": not a folder");
    folder_root_ = root.string();
  }
}

std::string Service::folder_to_enrol(const std::string& dir) const {
  if (folder_root_.empty()) return dir;
  const fs::path root(folder_root_);
  std::error_code ec;
  const fs::path real = fs::canonical(fs::path(dir).is_absolute() ? fs::path(dir) : root / dir, ec);
  if (ec) throw HttpError(400, dir + ": not a folder on the server");
  // Inside the root: the root's components are a prefix of the folder's.
  auto r = root.begin();
  for (auto f = real.begin(); r != root.end() && f != real.end() && *r == *f; ++r, ++f) {
  }
  if (r != root.end()) throw HttpError(403, dir + ": outside the folder root of folder enrolment (--folder-root)");
  return real.string();
}

std::vector<float> Service::embed_file(const std::string& path) {
  return embed_signal(load_audio(path, backend_.sample_rate()), sha256_file(path), path);
}

std::vector<float> Service::embed_signal(const std::vector<float>& signal, const std::string& sha256,
                                         const std::string& what) {
  const ClipCrop crop = resolve_clip_crop(backend_.default_crop(), sha256);
  std::vector<float> e;
  if (backend_.thread_safe_embed()) {
    e = backend_.embed(signal, crop.policy);
  } else {
    std::lock_guard lock(embed_mu_);
    e = backend_.embed(signal, crop.policy);
  }
  if (e.size() != static_cast<size_t>(backend_.dim())) throw FormatError(what + ": embedding has the wrong size");
  if (!std::all_of(e.begin(), e.end(), [](float x) { return std::isfinite(x); }))
    throw FormatError(what + ": embedding is not finite");
  return e;
}

// Checks that the bytes decode as audio and embeds them, then writes them atomically (nothing is
// written for a clip that cannot be embedded).
Service::StoredClip Service::store_audio(const MachineKey& m, const std::string& kind, const std::string& bytes) {
  if (!valid_machine_name(m.type) || !valid_machine_name(m.id))
    throw HttpError(400, "invalid machine name (expected [A-Za-z0-9][A-Za-z0-9_.-]{0,63})");
  // Bounded while decoding: a few hundred kB of FLAC can hold hours of silence.
  const DecodedAudio decoded = decode_audio_bytes(bytes.data(), bytes.size(), "upload", kMaxClipSeconds);
  const std::string dir = (fs::path(data_dir_) / "audio" / m.type / m.id / kind).string();
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw IoError(dir + ": cannot create the folder: " + ec.message());
  const std::string path =
      (fs::path(dir) / (utc_now("%Y%m%dT%H%M%SZ") + "-" + random_hex(6) + "." + extension_of(decoded.info))).string();
  StoredClip out;
  out.embedding = embed_signal(audio_signal(decoded, backend_.sample_rate()), sha256_hex(bytes.data(), bytes.size()),
                               fs::path(path).filename().string());
  write_file_atomic(path, bytes);
  out.path = fs::absolute(path).string();
  return out;
}

int64_t Service::add_reference(const MachineKey& m, const std::string& bytes, const std::string& name,
                               const std::string& source, std::string& stored_name) {
  StoredClip stored = store_audio(m, "references", bytes);
  const std::string& path = stored.path;
  ReferenceRecord r;
  try {
    r.embedding = std::move(stored.embedding);
    r.machine = m;
    r.name = name.empty() ? fs::path(path).filename().string() : name;
    r.audio_path = path;
    r.source = source;
    r.backend_identity = backend_.identity();
    stored_name = r.name;
    return store_.add_reference(r);
  } catch (...) {
    // Nothing refers to the file: the reference was not stored.
    std::error_code ec;
    fs::remove(path, ec);
    throw;
  }
}

EnrolResult Service::enrol(const MachineKey& m, const std::string& bytes, const std::string& name,
                           const std::string& source) {
  EnrolResult out;
  out.reference_id = add_reference(m, bytes, name, source, out.name);
  auto idx = index(m);
  out.n_references = static_cast<int64_t>(idx->refs.size());
  out.threshold = idx->threshold;
  return out;
}

FolderResult Service::enrol_folder(const MachineKey& m, const std::string& requested) {
  const std::string dir = folder_to_enrol(requested);
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw HttpError(400, dir + ": not a folder on the server");
  std::vector<fs::path> files;
  for (auto it = fs::recursive_directory_iterator(dir, fs::directory_options::skip_permission_denied, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    std::string ext = it->path().extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
    if (ext == ".wav" || ext == ".flac") files.push_back(it->path());
  }
  if (ec) throw IoError(dir + ": cannot list the folder: " + ec.message());
  std::sort(files.begin(), files.end());
  FolderResult out;
  for (const auto& f : files) {
    try {
      const std::vector<char> raw = read_file(f.string());
      std::string stored_name;
      add_reference(m, std::string(raw.begin(), raw.end()), f.filename().string(), "folder", stored_name);
      ++out.enrolled;
    } catch (const Error& e) {
      out.skipped.push_back({f.string(), e.what()});
    }
  }
  auto idx = index(m);
  out.n_references = static_cast<int64_t>(idx->refs.size());
  out.threshold = idx->threshold;
  return out;
}

std::shared_ptr<const MachineIndex> Service::build_index(const MachineKey& m, int64_t generation) {
  auto idx = std::make_shared<MachineIndex>();
  idx->generation = generation;
  std::vector<ReferenceRecord> refs = store_.references(m);
  const size_t dim = static_cast<size_t>(backend_.dim());
  const std::string identity = backend_.identity();
  for (auto& r : refs) {
    // A reference embedded by another backend (the service restarted with another model) is
    // embedded again from its audio, and the new embedding is stored; one whose audio is gone is
    // left out.
    if (r.backend_identity != identity || r.embedding.size() != dim) {
      try {
        r.embedding = embed_file(r.audio_path);
      } catch (const Error&) {
        continue;
      }
      store_.update_embedding(r.id, identity, r.embedding);
      r.backend_identity = identity;
    }
    idx->matrix.insert(idx->matrix.end(), r.embedding.begin(), r.embedding.end());
    r.embedding.clear();
    idx->refs.push_back(std::move(r));
  }
  const size_t n = idx->refs.size();
  idx->threshold = std::nan("");
  if (n == 0) return idx;
  if (backend_.standardise_per_group()) {
    idx->standardisation = Standardisation::fit(idx->matrix, n, dim);
    idx->standardisation->apply(idx->matrix, n);
  }
  if (n >= 2) {
    const KnnResult loo =
        knn_search(idx->matrix.data(), static_cast<int64_t>(n), idx->matrix.data(), static_cast<int64_t>(n),
                   static_cast<int64_t>(dim), k_, /*leave_one_out=*/true, backend_.distance_order());
    if (loo.k > 0)
      if (auto t =
              gamma_threshold(std::vector<double>(loo.mean_distance.begin(), loo.mean_distance.end()), kGammaQuantile))
        idx->threshold = *t;
  }
  return idx;
}

std::shared_ptr<const MachineIndex> Service::index(const MachineKey& m) {
  const int64_t generation = store_.reference_generation(m);
  {
    std::lock_guard lock(index_mu_);
    auto it = indexes_.find(m);
    if (it != indexes_.end() && it->second->generation == generation) return it->second;
  }
  auto idx = build_index(m, generation);
  std::lock_guard lock(index_mu_);
  auto& slot = indexes_[m];
  if (!slot || slot->generation <= generation) slot = idx;
  metrics_.set("asdcap_machine_threshold", {{"type", m.type}, {"id", m.id}}, idx->threshold);
  return idx;
}

ScoreResult Service::submit(const MachineKey& m, const std::string& bytes, const std::string& name,
                            const std::string& idempotency_key) {
  const auto t0 = Clock::now();
  auto idx = index(m);
  if (idx->refs.empty())
    throw HttpError(409, "machine " + m.type + "/" + m.id + " has no references: enrol normal clips first");
  StoredClip clip = store_audio(m, "clips", bytes);
  const std::string& path = clip.path;
  ScoreResult out;
  EventRecord& e = out.event;
  int64_t id = 0;
  try {
    std::vector<float> q = std::move(clip.embedding);
    if (idx->standardisation) idx->standardisation->apply(q, 1);
    const size_t dim = static_cast<size_t>(backend_.dim());
    const KnnResult knn = knn_search(q.data(), 1, idx->matrix.data(), static_cast<int64_t>(idx->refs.size()),
                                     static_cast<int64_t>(dim), k_, /*leave_one_out=*/false, backend_.distance_order());
    e.machine = m;
    e.clip_name = name.empty() ? fs::path(path).filename().string() : name;
    e.audio_path = path;
    e.score = knn.mean_distance[0];
    e.threshold = idx->threshold;
    e.label = std::isfinite(e.threshold) && e.score > e.threshold ? "anomaly" : "normal";
    nlohmann::json nb = nlohmann::json::array();
    for (int t = 0; t < knn.k; ++t) {
      const ReferenceRecord& r = idx->refs[static_cast<size_t>(knn.index[static_cast<size_t>(t)])];
      nb.push_back({{"name", r.name}, {"distance", knn.distance[static_cast<size_t>(t)]}, {"reference_id", r.id}});
    }
    // Reference names come from uploads and file names: bytes that are not UTF-8 are replaced.
    e.neighbors_json = nb.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    e.explanation_state = explain_ && e.label == "anomaly" ? "pending" : "";
    e.idempotency_key = idempotency_key;
    const auto [stored_id, created] = store_.add_event(e);
    id = stored_id;
    out.created = created;
  } catch (...) {
    // Nothing refers to the file: no event was stored.
    std::error_code ec;
    fs::remove(path, ec);
    throw;
  }
  if (!out.created) {
    // The earlier submission with this key holds its own copy of the audio.
    std::error_code ec;
    fs::remove(path, ec);
  }
  auto stored = store_.event(id);
  if (!stored) throw IoError(store_.describe() + ": event " + std::to_string(id) + " could not be read back");
  e = *stored;
  if (!out.created) return out;
  const Labels labels = {{"type", m.type}, {"id", m.id}};
  metrics_.add("asdcap_clips_scored_total", labels);
  if (e.label == "anomaly") metrics_.add("asdcap_clips_flagged_total", labels);
  metrics_.set("asdcap_machine_last_score", labels, e.score);
  metrics_.observe("asdcap_score_duration_seconds", {}, std::chrono::duration<double>(Clock::now() - t0).count());
  return out;
}

std::optional<ReferenceRecord> Service::reference(int64_t reference_id) {
  auto find_in = [&](const MachineIndex& idx) -> std::optional<ReferenceRecord> {
    for (const auto& r : idx.refs)
      if (r.id == reference_id) return r;
    return std::nullopt;
  };
  {
    std::lock_guard lock(index_mu_);
    for (const auto& [m, idx] : indexes_)
      if (auto r = find_in(*idx)) return r;
  }
  for (const auto& s : store_.machines())
    if (auto r = find_in(*index(s.machine))) return r;
  return std::nullopt;
}

std::optional<EventRecord> Service::false_alarm(int64_t event_id) {
  auto e = store_.event(event_id);
  if (!e) return std::nullopt;
  ReferenceRecord r;
  r.machine = e->machine;
  r.name = e->clip_name;
  r.audio_path = e->audio_path;
  r.source = "false_alarm";
  r.backend_identity = backend_.identity();
  r.embedding = embed_file(e->audio_path);
  if (!store_.mark_false_alarm(event_id, r)) return std::nullopt;
  index(e->machine);
  return store_.event(event_id);
}

}  // namespace asdcap::serve
