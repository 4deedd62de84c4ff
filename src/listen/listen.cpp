// run_listen: a recording loop on the caller's thread and a sender thread between them a queue of
// clips (in memory, or backed by the spool folder).
#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "asdcap/error.hpp"
#include "asdcap/listen.hpp"
#include "audio/wav_encode.hpp"
#include "listen/spool.hpp"
#include "listen/submit.hpp"

namespace asdcap {

namespace {

using Clock = std::chrono::steady_clock;
using listen::Delivery;

// The names serve accepts for machines: [A-Za-z0-9][A-Za-z0-9_.-]{0,63}. Checked here too, as
// they become folder names of the spool.
bool machine_name_ok(const std::string& s) {
  if (s.empty() || s.size() > 64 || !std::isalnum(static_cast<unsigned char>(s[0]))) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-';
  });
}

// A clip's name from the wall-clock time its recording starts: "20261204T100003.123456Z.wav".
std::string clip_name_now() {
  const auto now = std::chrono::system_clock::now();
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count();
  const std::time_t t = static_cast<std::time_t>(us / 1000000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  const size_t n = std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%S", &tm);
  char frac[16];
  std::snprintf(frac, sizeof frac, ".%06lldZ.wav", static_cast<long long>(us % 1000000));
  return std::string(buf, n) + frac;
}

// "20261204T100003.123456Z.wav" -> "2026-12-04T10:00:03Z"; a name of another shape is returned as is.
std::string recorded_at(const std::string& name) {
  if (name.size() < 15 || name[8] != 'T') return name;
  return name.substr(0, 4) + "-" + name.substr(4, 2) + "-" + name.substr(6, 2) + "T" + name.substr(9, 2) + ":" +
         name.substr(11, 2) + ":" + name.substr(13, 2) + "Z";
}

std::string plural(long long n, const char* what) { return std::to_string(n) + " " + what + (n == 1 ? "" : "s"); }

struct Clip {
  std::string name;
  std::string wav;  // empty when the clip is in the spool folder
};

enum class Phase {
  Recording,  // clips still come
  Draining,   // every clip recorded; deliver them all, however long the server is down
  Final,      // cancelled: deliver while the server takes them, then stop
};

class Listener {
 public:
  Listener(const ListenOptions& o, const listen::Endpoint& server, const std::function<bool()>& cancelled)
      : o_(o),
        server_(server),
        cancelled_(cancelled),
        spool_(o.spool_dir.empty() ? "" : o.spool_dir + "/" + o.machine_type + "/" + o.machine_id) {
    if (spool_.enabled()) {
      const std::vector<std::string> names = spool_.waiting();
      for (const auto& name : names) queue_.push_back({name, ""});
      if (!names.empty())
        log(plural(static_cast<long long>(names.size()), "clip") + " from an earlier run in " + spool_.dir());
    }
  }

  ListenSummary run(CaptureSource& source) {
    std::thread sender([this] { send_loop(); });
    std::exception_ptr error;
    try {
      record(source);
    } catch (...) {
      error = std::current_exception();
    }
    {
      std::unique_lock lk(m_);
      phase_ = error || cancelled_() ? Phase::Final : Phase::Draining;
      cv_.notify_all();
      // While the queue drains the caller may still cancel (Ctrl-C while the server is down).
      while (!sender_done_) {
        cv_.wait_for(lk, std::chrono::milliseconds(100));
        if (phase_ == Phase::Draining && cancelled_()) {
          phase_ = Phase::Final;
          cv_.notify_all();
        }
      }
    }
    sender.join();
    if (error) std::rethrow_exception(error);
    if (sender_error_) std::rethrow_exception(sender_error_);
    summary_.undelivered = static_cast<long long>(queue_.size());
    if (!unauthorized_.empty()) throw NetworkError(unauthorized_);
    return summary_;
  }

 private:
  void log(const std::string& line) const {
    if (o_.log) o_.log(line);
  }

  bool stop_recording() {
    std::lock_guard lk(m_);
    return sender_done_ || cancelled_();
  }

  // Waits until `until` (pacing a source faster than real time); false when stopped meanwhile.
  bool wait_until(Clock::time_point until) {
    while (Clock::now() < until) {
      if (stop_recording()) return false;
      std::this_thread::sleep_for(std::min<Clock::duration>(until - Clock::now(), std::chrono::milliseconds(50)));
    }
    return true;
  }

  void record(CaptureSource& source) {
    const auto frames = static_cast<size_t>(std::llround(o_.every_s * source.rate()));
    if (frames == 0) throw InvalidArgument("a clip of " + std::to_string(o_.every_s) + " s has no samples");
    std::vector<int16_t> pcm(frames * static_cast<size_t>(source.channels()));
    const Clock::time_point start = Clock::now();
    const auto every = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o_.every_s));
    for (long long k = 0; o_.count == 0 || k < o_.count; ++k) {
      if (stop_recording()) return;
      if (o_.pace && k > 0 && !wait_until(start + k * every)) return;
      Clip clip{clip_name_now(), ""};
      source.read(pcm.data(), frames);  // a cancel during the clip lets it finish
      clip.wav = audio::wav_pcm16(pcm.data(), frames, source.channels(), source.rate());
      if (spool_.enabled()) {
        spool_.store(clip.name, clip.wav);  // on disk before it is queued
        clip.wav.clear();
      }
      std::lock_guard lk(m_);
      ++summary_.recorded;
      queue_.push_back(std::move(clip));
      if (!spool_.enabled() && queue_.size() > std::max<size_t>(o_.max_queued, 1)) {
        log("queue full (" + std::to_string(o_.max_queued) + " clips): dropped the clip recorded at " +
            recorded_at(queue_.front().name) + "; --spool DIR keeps every clip");
        queue_.pop_front();
        ++summary_.dropped;
      }
      cv_.notify_all();
    }
  }

  void send_loop() {
    try {
      send_all();
    } catch (...) {
      std::lock_guard lk(m_);
      sender_error_ = std::current_exception();
    }
    std::lock_guard lk(m_);
    sender_done_ = true;
    cv_.notify_all();
  }

  void send_all() {
    auto backoff = std::chrono::duration<double>(o_.retry_initial_s);
    bool outage = false;
    std::unique_lock lk(m_);
    for (;;) {
      cv_.wait(lk, [&] { return !queue_.empty() || phase_ != Phase::Recording; });
      if (queue_.empty()) return;  // recording has ended and everything is delivered
      const Clip clip = queue_.front();
      lk.unlock();
      const std::string wav = clip.wav.empty() ? spool_.load(clip.name) : clip.wav;
      const listen::ClipRequest request{o_.machine_type, o_.machine_id, o_.token, clip.name, &wav, o_.timeout_s};
      listen::Answer answer = listen::submit_clip(server_, request);
      answer.outcome.recorded_at = recorded_at(clip.name);
      if (answer.delivery == Delivery::Scored) spool_remove(clip.name);
      if (answer.delivery == Delivery::Refused && spool_.enabled()) spool_.reject(clip.name);
      lk.lock();
      if (answer.delivery == Delivery::Unauthorized) {
        unauthorized_ = answer.problem;
        return;
      }
      if (answer.delivery == Delivery::Retry) {
        if (!outage)
          log(answer.problem + "; " + plural(static_cast<long long>(queue_.size()), "clip") +
              " waiting, sent again when it answers");
        outage = true;
        if (phase_ == Phase::Final) return;  // cancelled and the server is down: the rest stays queued
        cv_.wait_for(lk, backoff, [&] { return phase_ == Phase::Final; });
        backoff = std::min(backoff * 2, std::chrono::duration<double>(o_.retry_max_s));
        continue;
      }
      if (outage)
        log("the server answers again; " + plural(static_cast<long long>(queue_.size()), "clip") + " waiting");
      outage = false;
      backoff = std::chrono::duration<double>(o_.retry_initial_s);
      // The recorder may have dropped the clip from a full queue while it was being sent.
      if (!queue_.empty() && queue_.front().name == clip.name) queue_.pop_front();
      ++(answer.delivery == Delivery::Scored ? summary_.scored : summary_.refused);
      lk.unlock();
      if (o_.on_clip) o_.on_clip(answer.outcome);
      lk.lock();
    }
  }

  void spool_remove(const std::string& name) const {
    if (spool_.enabled()) spool_.remove(name);
  }

  const ListenOptions& o_;
  const listen::Endpoint server_;
  const std::function<bool()>& cancelled_;
  const listen::Spool spool_;
  std::mutex m_;
  std::condition_variable cv_;
  std::deque<Clip> queue_;
  Phase phase_ = Phase::Recording;
  bool sender_done_ = false;
  std::exception_ptr sender_error_;
  std::string unauthorized_;
  ListenSummary summary_;
};

}  // namespace

double parse_duration_seconds(const std::string& text) {
  const char* begin = text.c_str();
  char* end = nullptr;
  const double v = std::strtod(begin, &end);
  const std::string unit = end == begin ? "?" : std::string(end);
  const double scale = unit.empty() || unit == "s" ? 1
                       : unit == "ms"              ? 1e-3
                       : unit == "m"               ? 60
                       : unit == "h"               ? 3600
                                                   : -1;
  const double seconds = v * scale;
  if (scale < 0 || !std::isfinite(seconds) || seconds <= 0 || seconds > 86400 ||
      std::isspace(static_cast<unsigned char>(text[0])))
    throw InvalidArgument("'" + text + "' is not a duration such as 10s, 500ms, 2m or 1h (more than 0, at most 24h)");
  return seconds;
}

void check_listen_options(const ListenOptions& options) {
  if (!machine_name_ok(options.machine_type))
    throw InvalidArgument("machine type '" + options.machine_type + "' is not [A-Za-z0-9][A-Za-z0-9_.-]{0,63}");
  if (!machine_name_ok(options.machine_id))
    throw InvalidArgument("machine id '" + options.machine_id + "' is not [A-Za-z0-9][A-Za-z0-9_.-]{0,63}");
  if (!(options.every_s > 0) || options.every_s > 86400)
    throw InvalidArgument("clip length " + std::to_string(options.every_s) + " s is out of range");
  if (options.count < 0) throw InvalidArgument("clip count " + std::to_string(options.count) + " is negative");
  if (options.token.empty()) throw InvalidArgument("the bearer token is empty");
  if (!(options.retry_initial_s > 0) || !(options.retry_max_s >= options.retry_initial_s) || !(options.timeout_s > 0))
    throw InvalidArgument(
        "retry delays and the request timeout must be positive (and the first delay at most the last)");
  listen::parse_server_url(options.server);
}

ListenSummary run_listen(CaptureSource& source, const ListenOptions& options, const std::function<bool()>& cancelled) {
  check_listen_options(options);
  const listen::Endpoint server = listen::parse_server_url(options.server);
  Listener listener(options, server, cancelled);
  return listener.run(source);
}

}  // namespace asdcap
