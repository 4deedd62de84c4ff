// asdcap listen: records fixed-length clips from an ALSA device and submits each to `asdcap serve`.
#include <csignal>
#include <cstdio>
#include <memory>
#include <string>

#include "asdcap/error.hpp"
#include "asdcap/listen.hpp"
#include "command.hpp"
#include "options.hpp"
#include "training.hpp"

namespace {

struct ListenFlags {
  asdcap::ListenOptions opts;
  std::string device, every = "10s", token_file = "asdcap-serve-data/token";
  int rate = 16000, channels = 1;
};

std::string trim(std::string s) {
  const char* ws = " \t\r\n";
  s.erase(0, s.find_first_not_of(ws) == std::string::npos ? s.size() : s.find_first_not_of(ws));
  s.erase(s.find_last_not_of(ws) + 1);
  return s;
}

std::string read_token(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) throw asdcap::IoError("--token-file " + path + ": cannot read it (asdcap serve writes DATA/token)");
  std::string text;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) text.append(buf, n);
  std::fclose(f);
  text = trim(text);
  if (text.empty()) throw asdcap::IoError("--token-file " + path + ": the file is empty");
  return text;
}

void print_clip(const asdcap::ClipOutcome& c) {
  if (!c.scored) {
    std::fprintf(stderr, "listen: %s: refused by the server (%s)\n", c.recorded_at.c_str(), c.error.c_str());
  } else if (!c.error.empty()) {
    std::fprintf(stderr, "listen: %s: delivered, but %s\n", c.recorded_at.c_str(), c.error.c_str());
  } else {
    char threshold[32] = "none";
    if (c.threshold) std::snprintf(threshold, sizeof threshold, "%.4f", *c.threshold);
    std::printf("%s  score %.4f  threshold %s  %-7s  event %lld\n", c.recorded_at.c_str(), c.score, threshold,
                c.label.c_str(), c.event_id);
  }
  std::fflush(stdout);
  std::fflush(stderr);
}

void setup(CLI::App& app) {
  auto f = std::make_shared<ListenFlags>();
  auto* sub = app.add_subcommand(
      "listen", "Record fixed-length clips from a microphone (ALSA) and submit each to asdcap serve (docs/serve.md)");
  sub->add_option("--device", f->device, "ALSA capture device: default, hw:1,0, plughw:1, null (silence), ...")
      ->required();
  sub->add_option("--machine", f->opts.machine_type, "Machine type the clips belong to (e.g. fan)")->required();
  sub->add_option("--id", f->opts.machine_id, "Machine id (e.g. id_00)")->required();
  sub->add_option("--every", f->every, "Clip length: one clip after the other, e.g. 10s, 500ms, 1m")
      ->capture_default_str();
  sub->add_option("--server", f->opts.server, "The asdcap serve server: http(s)://HOST:PORT")->required();
  sub->add_option("--token-file", f->token_file, "File holding the server's bearer token (serve's DATA/token)")
      ->capture_default_str()
      ->type_name("FILE");
  sub->add_option("--rate", f->rate, "Sample rate of the recording in Hz")
      ->capture_default_str()
      ->check(CLI::Range(1000, 384000));
  sub->add_option("--channels", f->channels, "Channels recorded (the server averages them)")
      ->capture_default_str()
      ->check(CLI::Range(1, 32));
  sub->add_option("--count", f->opts.count, "Clips to record, then wait until each is delivered; 0: until Ctrl-C")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  sub->add_option("--spool", f->opts.spool_dir,
                  "Keep every clip on disk (DIR/TYPE/ID/) until the server has it; the next run sends what is left")
      ->type_name("DIR");
  sub->add_option("--queue", f->opts.max_queued,
                  "Without --spool: clips kept in memory while the server is down (the oldest dropped beyond)")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000));
  sub->callback([f] {
    asdcap::ListenOptions opts = f->opts;
    opts.every_s = asdcap::cli::rethrow_for_flag("--every", [&] { return asdcap::parse_duration_seconds(f->every); });
    opts.token = "-";  // checked with the rest; the real token is read below
    asdcap::cli::rethrow_for_flags([&] { asdcap::check_listen_options(opts); });
    opts.token = read_token(f->token_file);
    opts.on_clip = print_clip;
    opts.log = [](const std::string& line) {
      std::fprintf(stderr, "listen: %s\n", line.c_str());
      std::fflush(stderr);
    };
    std::signal(SIGPIPE, SIG_IGN);
    // Ctrl-C (or SIGTERM): the clip being recorded is finished and sent; a second Ctrl-C ends the
    // process at once.
    const asdcap::cli::InterruptRequest interrupt;
    struct sigaction term {};
    term.sa_handler = [](int) { asdcap::cli::g_interrupted = 1; };
    sigemptyset(&term.sa_mask);
    sigaction(SIGTERM, &term, nullptr);
    const auto source = asdcap::open_alsa_capture(f->device, f->rate, f->channels);
    const asdcap::ListenSummary s = asdcap::run_listen(*source, opts, &asdcap::cli::InterruptRequest::requested);
    if (s.undelivered > 0 && !opts.spool_dir.empty())
      std::fprintf(stderr, "listen: %lld clip(s) not yet delivered, kept in %s for the next run\n", s.undelivered,
                   opts.spool_dir.c_str());
    const long long lost = s.dropped + s.refused + (opts.spool_dir.empty() ? s.undelivered : 0);
    if (lost > 0)
      throw asdcap::NetworkError(std::to_string(lost) + " of " + std::to_string(s.recorded) + " clip(s) not scored (" +
                                 std::to_string(s.refused) + " refused, " + std::to_string(s.dropped) +
                                 " dropped from the full queue, " +
                                 std::to_string(opts.spool_dir.empty() ? s.undelivered : 0) + " undelivered)");
  });
}

}  // namespace

ASDCAP_REGISTER_COMMAND(47, setup)
