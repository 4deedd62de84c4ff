#include "serve/watch.hpp"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <regex>
#include <vector>

#include "core/files.hpp"
#include "serve/http_error.hpp"
#include "serve/service.hpp"

namespace asdcap::serve {
namespace fs = std::filesystem;

namespace {

const std::string kKeyPrefix = "watch:";

bool is_split(const std::string& s) {
  return s == "train" || s == "test" || s == "source_test" || s == "target_test" || s == "supplemental";
}

std::vector<std::string> split_path(const std::string& rel) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= rel.size()) {
    const size_t slash = rel.find('/', start);
    parts.push_back(rel.substr(start, slash == std::string::npos ? std::string::npos : slash - start));
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  return parts;
}

}  // namespace

std::optional<MachineKey> watched_machine(const std::string& relative) {
  const std::vector<std::string> parts = split_path(relative);
  if (parts.size() != 3) return std::nullopt;
  MachineKey m;
  if (is_split(parts[1])) {
    static const std::regex id_re("(?:^|_)(id_[0-9]+)(?:_|\\.|$)");
    std::smatch match;
    if (!std::regex_search(parts[2], match, id_re)) return std::nullopt;
    m = {parts[0], match[1].str()};
  } else {
    m = {parts[0], parts[1]};
  }
  if (!valid_machine_name(m.type) || !valid_machine_name(m.id)) return std::nullopt;
  return m;
}

Watcher::Watcher(Service& service, std::string dir, double interval_s, std::function<void(const std::string&)> log,
                 std::function<void()> on_flagged)
    : service_(service),
      dir_(std::move(dir)),
      interval_s_(interval_s),
      log_(std::move(log)),
      on_flagged_(std::move(on_flagged)) {
  std::error_code ec;
  if (!fs::is_directory(dir_, ec)) throw IoError(dir_ + ": --watch needs an existing folder");
}

Watcher::~Watcher() { stop(); }

void Watcher::say(const std::string& line) {
  if (log_) log_("watch: " + line);
}

void Watcher::load_processed() {
  for (const auto& s : service_.store().machines()) {
    EventFilter f;
    f.machine = s.machine;
    f.limit = 1000;
    for (;;) {
      const std::vector<EventRecord> page = service_.store().events(f);
      for (const auto& e : page)
        if (e.idempotency_key.rfind(kKeyPrefix, 0) == 0) processed_.insert(e.idempotency_key.substr(kKeyPrefix.size()));
      if (page.size() < static_cast<size_t>(f.limit)) break;
      f.before_id = page.back().id;
    }
  }
}

void Watcher::start() {
  load_processed();
  thread_ = std::thread([this] {
    while (!stopping_) {
      try {
        poll();
      } catch (const std::exception& e) {
        say(e.what());
      }
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, std::chrono::duration<double>(interval_s_), [this] { return stopping_.load(); });
    }
  });
}

void Watcher::stop() {
  stopping_ = true;
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

int Watcher::poll() {
  std::vector<std::pair<std::string, fs::path>> ready;  // relative, full
  std::set<std::string> present;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir_, fs::directory_options::skip_permission_denied, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (stopping_) return 0;
    std::error_code fe;
    if (!it->is_regular_file(fe)) continue;
    std::string ext = it->path().extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
    if (ext != ".wav" && ext != ".flac") continue;
    const std::string rel = fs::relative(it->path(), dir_, fe).generic_string();
    if (fe || processed_.count(rel)) continue;
    present.insert(rel);
    const uintmax_t size = it->file_size(fe);
    const auto mtime = static_cast<int64_t>(it->last_write_time(fe).time_since_epoch().count());
    Seen& s = seen_[rel];
    if (s.size == size && s.mtime == mtime)
      ++s.stable;
    else
      s = {size, mtime, 0};
    if (s.stable >= 2) ready.push_back({rel, it->path()});
  }
  for (auto it = seen_.begin(); it != seen_.end();) it = present.count(it->first) ? std::next(it) : seen_.erase(it);
  std::sort(ready.begin(), ready.end());
  int scored = 0;
  for (const auto& [rel, full] : ready) {
    if (stopping_) break;
    const auto machine = watched_machine(rel);
    if (!machine) {
      if (reported_.insert(rel).second) say(rel + ": not under <type>/<id>/ (nor a DCASE name): ignored");
      continue;
    }
    try {
      const std::vector<char> raw = read_file(full.string());
      const ScoreResult r =
          service_.submit(*machine, std::string(raw.begin(), raw.end()), full.filename().string(), kKeyPrefix + rel);
      processed_.insert(rel);
      seen_.erase(rel);
      ++scored;
      if (r.created && r.event.explanation_state == "pending" && on_flagged_) on_flagged_();
    } catch (const FormatError& e) {
      // Not audio (or not decodable): it will not become so by waiting.
      processed_.insert(rel);
      seen_.erase(rel);
      say(rel + ": " + e.what());
    } catch (const Error& e) {
      // No references yet, or the store unreachable: tried again on the next polls, reported once.
      if (reported_.insert(rel).second) say(rel + ": " + e.what());
    }
  }
  return scored;
}

}  // namespace asdcap::serve
