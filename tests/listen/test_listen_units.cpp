// run_listen with a synthetic capture source against a stand-in HTTP server whose answers the test
// scripts (503, 400, 401, or nothing listening): what is retried, what is reported, what stays in
// the spool folder, and the bytes that reach the server.
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sndfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "asdcap/error.hpp"
#include "asdcap/listen.hpp"
#include "audio/wav_encode.hpp"
#include "serve/serve_process.hpp"

namespace fs = std::filesystem;
using asdcap::test::TempDir;

namespace {

// Samples 0, 1, 2, ... over every clip (wrapping at 16 bits), so each clip's content is known.
// `on_read(k)` runs as clip k is read (k from 0).
class RampSource : public asdcap::CaptureSource {
 public:
  explicit RampSource(int rate = 8000, int channels = 1) : rate_(rate), channels_(channels) {}
  int rate() const override { return rate_; }
  int channels() const override { return channels_; }
  std::string describe() const override { return "ramp"; }
  void read(int16_t* out, size_t frames) override {
    if (on_read) on_read(reads);
    ++reads;
    for (size_t i = 0; i < frames * static_cast<size_t>(channels_); ++i) out[i] = static_cast<int16_t>(next_++);
  }
  std::function<void(int)> on_read;
  int reads = 0;

 private:
  int rate_, channels_;
  uint16_t next_ = 0;
};

// Decodes WAV bytes with libsndfile: the samples, and the rate and channel count.
struct Decoded {
  int rate = 0, channels = 0;
  std::vector<int16_t> samples;
};
Decoded decode_wav(const std::string& bytes, const std::string& tmp_path) {
  asdcap::test::write_bytes(tmp_path, bytes);
  SF_INFO info{};
  SNDFILE* f = sf_open(tmp_path.c_str(), SFM_READ, &info);
  if (!f) throw std::runtime_error(std::string("libsndfile: ") + sf_strerror(nullptr));
  Decoded d;
  d.rate = info.samplerate;
  d.channels = info.channels;
  d.samples.resize(static_cast<size_t>(info.frames * info.channels));
  sf_readf_short(f, d.samples.data(), info.frames);
  sf_close(f);
  return d;
}

// A stand-in for `asdcap serve`'s clip endpoint on 127.0.0.1: `status(n)` is the status of the n-th
// request (from 0); 2xx answers carry an event.
class StandIn {
 public:
  struct Request {
    std::string path, authorization, key, body;
  };
  explicit StandIn(std::function<int(int)> status) : status_(std::move(status)) {
    server_.Post(R"(/v1/machines/([^/]+)/([^/]+)/clips)", [this](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard lk(m_);
      const int n = static_cast<int>(requests_.size());
      requests_.push_back({req.path + "?name=" + req.get_param_value("name"), req.get_header_value("Authorization"),
                           req.get_header_value("Idempotency-Key"), req.body});
      res.status = status_(n);
      if (res.status < 300)
        res.set_content(
            nlohmann::json{{"event_id", 100 + n}, {"score", 1.25 * n}, {"threshold", nullptr}, {"label", "normal"}}
                .dump(),
            "application/json");
      else
        res.set_content(R"({"error":"scripted answer"})", "application/json");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~StandIn() {
    server_.stop();
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::vector<Request> requests() {
    std::lock_guard lk(m_);
    return requests_;
  }

 private:
  std::function<int(int)> status_;
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  std::mutex m_;
  std::vector<Request> requests_;
};

// A loopback port nothing listens on (bound, then released).
int closed_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

asdcap::ListenOptions options(const std::string& server, long long count) {
  asdcap::ListenOptions o;
  o.server = server;
  o.machine_type = "fan";
  o.machine_id = "id_00";
  o.token = "secret-token";
  o.every_s = 0.25;  // 2000 frames at 8 kHz
  o.count = count;
  o.pace = false;
  o.retry_initial_s = 0.05;
  o.retry_max_s = 0.2;
  o.timeout_s = 5;
  return o;
}

const auto never = [] { return false; };

}  // namespace

TEST(ListenUnits, ParsesDurations) {
  EXPECT_DOUBLE_EQ(asdcap::parse_duration_seconds("10s"), 10);
  EXPECT_DOUBLE_EQ(asdcap::parse_duration_seconds("500ms"), 0.5);
  EXPECT_DOUBLE_EQ(asdcap::parse_duration_seconds("2m"), 120);
  EXPECT_DOUBLE_EQ(asdcap::parse_duration_seconds("1h"), 3600);
  EXPECT_DOUBLE_EQ(asdcap::parse_duration_seconds("1.5"), 1.5);
  for (const char* bad : {"", "s", "0s", "-1s", "10x", "abc", "25h", " 1s", "nan", "inf", "1 s"})
    EXPECT_THROW(asdcap::parse_duration_seconds(bad), asdcap::InvalidArgument) << bad;
}

TEST(ListenUnits, WavBytesDecodeToTheSamples) {
  TempDir tmp;
  const std::vector<int16_t> stereo = {0, -1, 32767, -32768, 1234, -4321};
  const Decoded d = decode_wav(asdcap::audio::wav_pcm16(stereo.data(), 3, 2, 22050), tmp / "a.wav");
  EXPECT_EQ(d.rate, 22050);
  EXPECT_EQ(d.channels, 2);
  EXPECT_EQ(d.samples, stereo);
}

TEST(ListenUnits, RefusesBadOptions) {
  RampSource src;
  auto check = [&](const std::function<void(asdcap::ListenOptions&)>& spoil) {
    asdcap::ListenOptions o = options("http://127.0.0.1:9", 1);
    spoil(o);
    EXPECT_THROW(asdcap::run_listen(src, o, never), asdcap::InvalidArgument);
  };
  check([](auto& o) { o.machine_type = "../etc"; });
  check([](auto& o) { o.machine_id = ""; });
  check([](auto& o) { o.server = "ftp://host"; });
  check([](auto& o) { o.server = "127.0.0.1:8080"; });
  check([](auto& o) { o.server = "http://"; });
  check([](auto& o) { o.token = ""; });
  check([](auto& o) { o.every_s = 0; });
  check([](auto& o) { o.retry_initial_s = 0; });
  check([](auto& o) { o.retry_max_s = 0.01; });
  check([](auto& o) { o.timeout_s = 0; });
  EXPECT_EQ(src.reads, 0);  // nothing recorded
}

TEST(ListenUnits, RetriesServerErrorsAndDeliversEveryClipOnceInOrder) {
  // The first three requests fail (503, 500, 502), every later one is scored.
  StandIn server([](int n) {
    const int fails[] = {503, 500, 502};
    return n < 3 ? fails[n] : 201;
  });
  RampSource src;
  std::vector<asdcap::ClipOutcome> outcomes;
  std::vector<std::string> log;
  asdcap::ListenOptions o = options(server.url(), 3);
  o.on_clip = [&](const asdcap::ClipOutcome& c) { outcomes.push_back(c); };
  o.log = [&](const std::string& line) { log.push_back(line); };
  const asdcap::ListenSummary s = asdcap::run_listen(src, o, never);
  EXPECT_EQ(s.recorded, 3);
  EXPECT_EQ(s.scored, 3);
  EXPECT_EQ(s.refused + s.dropped + s.undelivered, 0);

  const auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 6u);  // 3 failures of the first clip, then one request per clip
  for (int i = 0; i < 3; ++i) EXPECT_EQ(reqs[i].body, reqs[3].body) << "a retry sends the same clip";
  for (int i = 0; i < 3; ++i) EXPECT_EQ(reqs[i].key, reqs[3].key) << "a retry keeps the idempotency key";
  EXPECT_NE(reqs[3].key, reqs[4].key);
  EXPECT_NE(reqs[4].key, reqs[5].key);
  TempDir tmp;
  for (int clip = 0; clip < 3; ++clip) {
    const auto& r = reqs[3 + clip];
    EXPECT_EQ(r.authorization, "Bearer secret-token");
    EXPECT_EQ(r.path.rfind("/v1/machines/fan/id_00/clips?name=", 0), 0u) << r.path;
    EXPECT_EQ(r.key, "listen:" + r.path.substr(r.path.find("name=") + 5));
    const Decoded d = decode_wav(r.body, tmp / "clip.wav");
    EXPECT_EQ(d.rate, 8000);
    EXPECT_EQ(d.channels, 1);
    ASSERT_EQ(d.samples.size(), 2000u);
    for (size_t i = 0; i < d.samples.size(); i += 97)
      ASSERT_EQ(d.samples[i], static_cast<int16_t>(clip * 2000 + static_cast<int>(i))) << "clip " << clip;
  }
  ASSERT_EQ(outcomes.size(), 3u);
  for (int clip = 0; clip < 3; ++clip) {
    EXPECT_TRUE(outcomes[clip].scored);
    EXPECT_EQ(outcomes[clip].event_id, 103 + clip);
    EXPECT_DOUBLE_EQ(outcomes[clip].score, 1.25 * (3 + clip));
    EXPECT_FALSE(outcomes[clip].threshold.has_value());
    EXPECT_EQ(outcomes[clip].label, "normal");
    EXPECT_EQ(outcomes[clip].recorded_at.size(), 20u) << outcomes[clip].recorded_at;  // 2026-12-04T10:00:03Z
  }
  // One line when the outage starts (naming the status), one when it ends.
  ASSERT_EQ(log.size(), 2u);
  EXPECT_NE(log[0].find("HTTP 503"), std::string::npos) << log[0];
  EXPECT_NE(log[1].find("answers again"), std::string::npos) << log[1];
}

TEST(ListenUnits, AClientErrorIsReportedAndNotRetried) {
  StandIn server([](int n) { return n == 1 ? 409 : 201; });
  RampSource src;
  std::vector<asdcap::ClipOutcome> outcomes;
  asdcap::ListenOptions o = options(server.url(), 3);
  o.on_clip = [&](const asdcap::ClipOutcome& c) { outcomes.push_back(c); };
  const asdcap::ListenSummary s = asdcap::run_listen(src, o, never);
  EXPECT_EQ(server.requests().size(), 3u);
  EXPECT_EQ(s.scored, 2);
  EXPECT_EQ(s.refused, 1);
  ASSERT_EQ(outcomes.size(), 3u);
  EXPECT_FALSE(outcomes[1].scored);
  EXPECT_EQ(outcomes[1].http_status, 409);
  EXPECT_NE(outcomes[1].error.find("scripted answer"), std::string::npos) << outcomes[1].error;
}

TEST(ListenUnits, AWrongTokenStopsTheRunAndKeepsTheClipInTheSpool) {
  StandIn server([](int) { return 401; });
  TempDir spool;
  RampSource src;
  asdcap::ListenOptions o = options(server.url(), 0);  // would record forever
  o.spool_dir = spool.path();
  EXPECT_THROW(asdcap::run_listen(src, o, never), asdcap::NetworkError);
  EXPECT_EQ(server.requests().size(), 1u);
  EXPECT_GE(src.reads, 1);
  size_t kept = 0;
  for (const auto& e : fs::directory_iterator(spool / "fan/id_00"))
    if (e.is_regular_file()) ++kept;
  EXPECT_GE(kept, 1u);
}

TEST(ListenUnits, TheSpoolKeepsUndeliveredClipsForTheNextRun) {
  TempDir spool;
  RampSource src;
  std::atomic<bool> stop{false};
  src.on_read = [&](int k) {
    if (k == 1) stop = true;  // Ctrl-C while the second clip is recorded
  };
  asdcap::ListenOptions o = options("http://127.0.0.1:" + std::to_string(closed_port()), 0);
  o.spool_dir = spool.path();
  const asdcap::ListenSummary first = asdcap::run_listen(src, o, [&] { return stop.load(); });
  EXPECT_EQ(first.recorded, 2);  // the clip being recorded at Ctrl-C is finished
  EXPECT_EQ(first.scored, 0);
  EXPECT_EQ(first.undelivered, 2);
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(spool / "fan/id_00"))
    if (e.is_regular_file()) names.push_back(e.path().filename().string());
  ASSERT_EQ(names.size(), 2u);

  // The next run (cancelled at once: it records nothing) sends what the first one left.
  StandIn server([](int) { return 201; });
  o.server = server.url();
  const asdcap::ListenSummary second = asdcap::run_listen(src, o, [] { return true; });
  EXPECT_EQ(second.recorded, 0);
  EXPECT_EQ(second.scored, 2);
  EXPECT_EQ(second.undelivered, 0);
  const auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 2u);
  std::sort(names.begin(), names.end());
  EXPECT_EQ(reqs[0].key, "listen:" + names[0]);
  EXPECT_EQ(reqs[1].key, "listen:" + names[1]);
  TempDir tmp;
  EXPECT_EQ(decode_wav(reqs[1].body, tmp / "b.wav").samples.size(), 2000u) << "the interrupted clip is complete";
  EXPECT_TRUE(fs::is_empty(spool / "fan/id_00/rejected"));
  size_t left = 0;
  for (const auto& e : fs::directory_iterator(spool / "fan/id_00")) left += e.is_regular_file() ? 1 : 0;
  EXPECT_EQ(left, 0u);
}

TEST(ListenUnits, RefusedClipsMoveToTheSpoolsRejectedFolder) {
  StandIn server([](int) { return 422; });
  TempDir spool;
  RampSource src;
  asdcap::ListenOptions o = options(server.url(), 2);
  o.spool_dir = spool.path();
  const asdcap::ListenSummary s = asdcap::run_listen(src, o, never);
  EXPECT_EQ(s.refused, 2);
  size_t rejected = 0;
  for (const auto& e : fs::directory_iterator(spool / "fan/id_00/rejected")) rejected += e.is_regular_file() ? 1 : 0;
  EXPECT_EQ(rejected, 2u);
}

TEST(ListenUnits, AFullMemoryQueueDropsTheOldestClipAndSaysSo) {
  RampSource src;
  std::atomic<bool> stop{false};
  src.on_read = [&](int k) {
    if (k == 4) stop = true;
  };
  std::vector<std::string> log;
  std::mutex m;
  asdcap::ListenOptions o = options("http://127.0.0.1:" + std::to_string(closed_port()), 0);
  o.max_queued = 2;
  o.log = [&](const std::string& line) {
    std::lock_guard lk(m);
    log.push_back(line);
  };
  const asdcap::ListenSummary s = asdcap::run_listen(src, o, [&] { return stop.load(); });
  EXPECT_EQ(s.recorded, 5);
  EXPECT_EQ(s.dropped, 3);
  EXPECT_EQ(s.undelivered, 2);
  size_t full = 0;
  for (const auto& l : log) full += l.find("queue full") != std::string::npos ? 1 : 0;
  EXPECT_EQ(full, 3u);
}

TEST(ListenUnits, PacesASourceFasterThanRealTime) {
  StandIn server([](int) { return 201; });
  RampSource src;
  asdcap::ListenOptions o = options(server.url(), 3);
  o.pace = true;
  const auto t0 = std::chrono::steady_clock::now();
  asdcap::run_listen(src, o, never);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_GE(s, 0.5);  // clips start at 0, 0.25 and 0.5 s
}
