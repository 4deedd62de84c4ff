// asdcap listen: records fixed-length clips from a capture source (an ALSA device, or any other
// CaptureSource) and submits each to an `asdcap serve` server as a WAV body. Clips the server
// cannot take yet (unreachable, 5xx) wait in a queue (bounded in memory, or a spool folder on
// disk) and are resubmitted with backoff while recording goes on. See docs/serve.md, "listen".
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace asdcap {

// A source of interleaved signed 16-bit PCM frames at a fixed rate.
class CaptureSource {
 public:
  virtual ~CaptureSource() = default;
  virtual int rate() const = 0;
  virtual int channels() const = 0;
  // What the source is, for messages (e.g. "ALSA device 'hw:1,0'").
  virtual std::string describe() const = 0;
  // Fills `out` with exactly `frames` frames (frames * channels() samples), blocking until they
  // are recorded. Throws IoError naming the source when it fails.
  virtual void read(int16_t* out, size_t frames) = 0;
};

// Opens ALSA PCM `device` (e.g. "default", "hw:1,0", "plughw:1", "null") for capture at `rate` Hz
// with `channels` channels (ALSA converts when the hardware differs). ALSA's own diagnostics on
// stderr are silenced for the whole process (snd_lib_error_set_handler); every failure is an
// IoError of one line naming the device. Throws InvalidArgument for a rate or channel count out
// of range.
std::unique_ptr<CaptureSource> open_alsa_capture(const std::string& device, int rate, int channels);

// "10s", "500ms", "2m", "1h", "1.5s" or a bare number of seconds; InvalidArgument naming the text
// unless it is a positive duration of at most a day.
double parse_duration_seconds(const std::string& text);

// The server's answer for one clip.
struct ClipOutcome {
  std::string name;         // the clip's name on the server, e.g. "20261204T100003.123456Z.wav"
  std::string recorded_at;  // when its recording started, UTC ISO 8601 to the second
  bool scored = false;      // false: refused by the server (4xx); `error` says why
  int http_status = 0;
  long long event_id = -1;
  double score = 0;
  std::optional<double> threshold;  // none while the machine has no threshold
  std::string label;                // "normal" | "anomaly"
  std::string error;
};

struct ListenOptions {
  std::string server;  // http://HOST:PORT or https://HOST:PORT, optionally with a path prefix
  std::string machine_type, machine_id;
  std::string token;    // the bearer token of the server's write requests
  double every_s = 10;  // clip length; one clip follows the other without a gap
  long long count = 0;  // clips to record; 0: until cancelled
  // Empty: undelivered clips wait in memory, at most `max_queued` (the oldest is dropped, and
  // reported, beyond). Otherwise each clip is written atomically to
  // SPOOL/<type>/<id>/<name> before it is submitted and removed once the server has it; clips left
  // there by an earlier run are submitted first; refused clips move to .../rejected/.
  std::string spool_dir;
  size_t max_queued = 100;
  double retry_initial_s = 1, retry_max_s = 30;  // backoff between attempts while the server is down
  double timeout_s = 60;                         // per request
  // A source faster than real time (ALSA's null device) is slowed to one clip per `every_s`.
  bool pace = true;
  std::function<void(const ClipOutcome&)> on_clip;  // each clip's answer, in submission order
  std::function<void(const std::string&)> log;      // outages, recoveries, dropped clips
};

struct ListenSummary {
  long long recorded = 0;     // clips recorded in this run
  long long scored = 0;       // clips the server scored (including clips spooled by an earlier run)
  long long refused = 0;      // clips the server refused (4xx)
  long long dropped = 0;      // clips dropped from a full in-memory queue
  long long undelivered = 0;  // clips still waiting when the run ended (kept in the spool folder, if any)
};

// Throws InvalidArgument naming the value unless the machine names, clip length, count, token and
// server URL are usable (run_listen checks the same before it records).
void check_listen_options(const ListenOptions& options);

// Records and submits clips until `count` clips are recorded and every one of them is delivered,
// or until `cancelled` returns true (checked between clips and while waiting): the clip being
// recorded is finished, then every waiting clip gets one more attempt. A 401 or 403 answer (the
// token) ends the run with NetworkError; the clip stays queued. Throws InvalidArgument for bad
// options (naming the flag's value), IoError when the source or the spool folder fails.
ListenSummary run_listen(CaptureSource& source, const ListenOptions& options, const std::function<bool()>& cancelled);

}  // namespace asdcap
