// Requests that once broke a real `asdcap serve` (found by fuzzing its HTTP API): each is sent to a
// real server process on loopback, which must answer it as a client error and keep serving.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sndfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "cli/cli_runner.hpp"
#include "serve_process.hpp"

namespace asdcap::test {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// A 16-bit mono WAV whose header declares `rate` Hz, with `frames` samples of a ramp.
std::string wav_at_rate(uint32_t rate, uint32_t frames) {
  auto u32 = [](std::string& s, uint32_t v) {
    for (int i = 0; i < 4; ++i) s += static_cast<char>((v >> (8 * i)) & 0xff);
  };
  auto u16 = [](std::string& s, uint16_t v) {
    s += static_cast<char>(v & 0xff);
    s += static_cast<char>(v >> 8);
  };
  std::string data;
  for (uint32_t i = 0; i < frames; ++i) u16(data, static_cast<uint16_t>((i * 97) & 0x3fff));
  std::string s = "RIFF";
  u32(s, static_cast<uint32_t>(36 + data.size()));
  s += "WAVEfmt ";
  u32(s, 16);
  u16(s, 1);  // PCM
  u16(s, 1);  // mono
  u32(s, rate);
  u32(s, rate * 2);
  u16(s, 2);
  u16(s, 16);
  s += "data";
  u32(s, static_cast<uint32_t>(data.size()));
  return s + data;
}

size_t stored_clips(const std::string& data_dir) {
  size_t n = 0;
  std::error_code ec;
  if (!fs::is_directory(fs::path(data_dir) / "audio")) return 0;
  for (const auto& e : fs::recursive_directory_iterator(fs::path(data_dir) / "audio", ec))
    if (e.is_regular_file()) ++n;
  return n;
}

// A reference named with bytes that are not UTF-8 (?name=%FF%FE...) made every later clip of its
// machine fail with 500 (the neighbour list could not be written as JSON); the same for folder
// enrolment of a file whose name is not UTF-8.
TEST(ServeHostile, ReferenceNamesThatAreNotUtf8DoNotBreakScoring) {
  TempDir tmp;
  ServeProcess s(tmp / "data");
  for (int i = 0; i < 3; ++i) {
    auto r = s.post_audio("/v1/machines/fan/id_00/references?name=%FF%FEref" + std::to_string(i),
                          machine_wav(300 + static_cast<uint32_t>(i), false));
    ASSERT_EQ(r.status, 201) << r.body;
  }
  auto clip = s.post_audio("/v1/machines/fan/id_00/clips?name=%C3%28clip", machine_wav(300, false));
  ASSERT_EQ(clip.status, 201) << clip.body;
  ASSERT_EQ(clip.json["neighbors"].size(), 3u);
  EXPECT_EQ(clip.json["neighbors"][0]["name"], "\xEF\xBF\xBD\xEF\xBF\xBDref0");  // U+FFFD twice
  const std::string id = clip.json["event_id"].dump();
  EXPECT_EQ(s.get("/v1/events/" + id).status, 200);
  EXPECT_EQ(s.get("/v1/events?limit=10").json["events"].size(), 1u);

  for (int i = 0; i < 3; ++i)
    write_bytes(tmp / ("refs/\xff" + std::to_string(i) + ".wav"), machine_wav(400 + static_cast<uint32_t>(i), false));
  auto folder =
      s.post("/v1/machines/pump/p1/references/folder", Json{{"path", tmp / "refs"}}.dump(), "application/json");
  ASSERT_EQ(folder.status, 200) << folder.body;
  EXPECT_EQ(folder.json["enrolled"], 3);
  auto pump = s.post_audio("/v1/machines/pump/p1/clips", machine_wav(401, false));
  EXPECT_EQ(pump.status, 201) << pump.body;
}

// A 244-byte WAV declaring 2,000,000,001 Hz asked the resampler for a filter of billions of taps
// (gigabytes, minutes); a 2-kB WAV at 1 Hz became 88 million samples at 44.1 kHz, and a longer one
// exhausted the server's memory. Both are refused at once with 422, and nothing is stored.
TEST(ServeHostile, SampleRatesThatWouldExhaustTheServerAreRefused) {
  TempDir tmp;
  ServeProcess s(tmp / "data");
  for (int i = 0; i < 3; ++i)
    ASSERT_EQ(
        s.post_audio("/v1/machines/fan/id_00/references", machine_wav(500 + static_cast<uint32_t>(i), false)).status,
        201);
  const size_t before = stored_clips(tmp / "data");
  struct Case {
    std::string wav, says;
  };
  const Case cases[] = {{wav_at_rate(2000000001u, 100), "sample rate 2000000001 Hz"},
                        {wav_at_rate(4000000u, 100), "sample rate 4000000 Hz"},
                        {wav_at_rate(1u, 1000), "at most 600 s"},
                        {wav_at_rate(50u, 40000), "at most 600 s"}};
  for (const auto& c : cases) {
    for (const char* route : {"/v1/machines/fan/id_00/clips", "/v1/machines/fan/id_00/references"}) {
      const auto t0 = Clock::now();
      auto r = s.post_audio(route, c.wav);
      const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
      EXPECT_EQ(r.status, 422) << route << ": " << r.body;
      EXPECT_NE(r.json.value("error", "").find(c.says), std::string::npos) << r.body;
      EXPECT_LT(seconds, 5.0) << route << " took " << seconds << " s";
    }
  }
  EXPECT_EQ(stored_clips(tmp / "data"), before);
  EXPECT_EQ(s.get("/v1/machines/fan/id_00").json["n_references"], 3);
  EXPECT_EQ(s.get("/v1/events").json["events"].size(), 0u);
  // Ordinary low and high rates are still taken: 8 kHz and 96 kHz, 1 s each.
  EXPECT_EQ(s.post_audio("/v1/machines/fan/id_00/clips", wav_at_rate(8000, 8000)).status, 201);
  EXPECT_EQ(s.post_audio("/v1/machines/fan/id_00/clips", wav_at_rate(96000, 96000)).status, 201);
  EXPECT_EQ(s.get("/healthz").status, 200);
}

namespace {

// A mono 16-bit FLAC of `seconds` of silence at `rate` Hz (a few hundred kB for hours).
std::string silent_flac(const fs::path& path, int rate, int64_t seconds) {
  SF_INFO info{};
  info.samplerate = rate;
  info.channels = 1;
  info.format = SF_FORMAT_FLAC | SF_FORMAT_PCM_16;
  SNDFILE* f = sf_open(path.c_str(), SFM_WRITE, &info);
  if (!f) return {};
  const std::vector<short> zeros(static_cast<size_t>(rate) * 60, 0);
  for (int64_t minute = 0; minute < seconds / 60; ++minute)
    sf_write_short(f, zeros.data(), static_cast<sf_count_t>(zeros.size()));
  sf_close(f);
  return slurp(path.string());
}

// The server's peak resident memory so far (VmHWM), in bytes.
int64_t peak_memory(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string key;
  int64_t kib = -1;
  while (in >> key) {
    if (key == "VmHWM:") {
      in >> kib;
      break;
    }
    in.ignore(1 << 16, '\n');
  }
  return kib * 1024;
}

}  // namespace

// A 300-kB FLAC holding 2 hours of silence at 16 kHz was decoded whole (460 MB of samples) before
// the 600-s limit was checked. It is refused with 422 while being decoded: at once when its header
// declares its length, and after at most 600 s of it when the header leaves the length unknown;
// the server's peak memory does not grow by the decoded size, and nothing is stored.
TEST(ServeHostile, CompressedHoursOfSilenceAreRefusedUndecoded) {
  TempDir tmp;
  const std::string declared = silent_flac(tmp / "silence.flac", 16000, 2 * 3600);
  ASSERT_GT(declared.size(), 1000u);
  ASSERT_LT(declared.size(), 4u << 20) << "not a compressed bomb";
  std::string unknown_length = declared;  // STREAMINFO's total sample count set to 0
  unknown_length[21] = static_cast<char>(unknown_length[21] & 0xf0);
  for (int i = 22; i < 26; ++i) unknown_length[i] = 0;
  ServeProcess s(tmp / "data");
  for (int i = 0; i < 3; ++i)
    ASSERT_EQ(
        s.post_audio("/v1/machines/fan/id_00/references", machine_wav(900 + static_cast<uint32_t>(i), false)).status,
        201);
  const size_t stored = stored_clips(tmp / "data");
  const int64_t peak_before = peak_memory(s.pid());
  ASSERT_GT(peak_before, 0);
  for (const std::string* flac : std::vector<const std::string*>{&declared, &unknown_length}) {
    for (const char* route : {"/v1/machines/fan/id_00/clips", "/v1/machines/fan/id_00/references"}) {
      const auto t0 = Clock::now();
      auto r = s.post(route, *flac, "audio/flac");
      const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
      EXPECT_EQ(r.status, 422) << route << ": " << r.body;
      EXPECT_NE(r.json.value("error", "").find("at most 600 s are decoded"), std::string::npos) << r.body;
      EXPECT_LT(seconds, 10.0) << route << " took " << seconds << " s";
    }
  }
  const int64_t grown = peak_memory(s.pid()) - peak_before;
  EXPECT_LT(grown, int64_t{150} << 20) << "peak memory grew by " << (grown >> 20) << " MB";
  EXPECT_EQ(stored_clips(tmp / "data"), stored);
  EXPECT_EQ(s.get("/v1/events").json["events"].size(), 0u);
  EXPECT_EQ(s.get("/healthz").status, 200);
}

// Fuzzing the folder route with {"path": "/"} walked the whole file system in one request (and
// enrolled every WAV on it). --folder-root confines the route to one folder.
TEST(ServeHostile, FolderRootConfinesFolderEnrolment) {
  TempDir tmp;
  for (int i = 0; i < 2; ++i)
    write_bytes(tmp / ("root/refs/n" + std::to_string(i) + ".wav"), machine_wav(600 + static_cast<uint32_t>(i), false));
  write_bytes(tmp / "outside/n.wav", machine_wav(610, false));
  fs::create_symlink(tmp / "outside", tmp / "root/escape");
  ServeProcess s(tmp / "data", {"--folder-root", tmp / "root"});
  auto folder = [&](const std::string& path) {
    return s.post("/v1/machines/fan/id_00/references/folder", Json{{"path", path}}.dump(), "application/json");
  };
  auto inside = folder("refs");  // relative: from the root
  ASSERT_EQ(inside.status, 200) << inside.body;
  EXPECT_EQ(inside.json["enrolled"], 2);
  EXPECT_EQ(folder(tmp / "root/refs").status, 200);  // absolute, inside
  for (const std::string& path : {std::string("../outside"), tmp / "outside", std::string("/"), std::string("escape"),
                                  tmp / "root/refs/../../outside"}) {
    auto r = folder(path);
    EXPECT_EQ(r.status, 403) << path << ": " << r.body;
    EXPECT_NE(r.json.value("error", "").find("--folder-root"), std::string::npos) << r.body;
  }
  EXPECT_EQ(folder("missing").status, 400);
  EXPECT_EQ(s.get("/v1/machines/fan/id_00").json["n_references"], 4);
}

// Sends `request` on a new connection to 127.0.0.1:port in one write, closes the writing side,
// and returns everything the server answers until it closes.
std::string raw_exchange(int port, const std::string& request) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string answer;
  if (fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      ::send(fd, request.data(), request.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(request.size())) {
    ::shutdown(fd, SHUT_WR);
    char buf[4096];
    for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) answer.append(buf, static_cast<size_t>(n));
  }
  if (fd >= 0) ::close(fd);
  return answer;
}

// cpp-httplib bounds only a Content-Length body by --max-upload-mb: 194 kB of gzip (Content-Encoding)
// made the server hold a 200-MB body, and a chunked body (Transfer-Encoding) was read to its end
// whatever its size, both before the token was checked. Such requests are now refused unread.
TEST(ServeHostile, ChunkedAndCompressedBodiesAreRefusedUnread) {
  TempDir tmp;
  ServeProcess s(tmp / "data", {"--max-upload-mb", "1"});
  const std::string zeros(20 << 20, '\0');
  for (const bool with_token : {false, true}) {
    auto cli = s.client();
    cli->set_compress(true);  // 20 MB of zeros sent as about 20 kB of gzip (Content-Encoding: gzip)
    httplib::Headers h;
    if (with_token) h.emplace("Authorization", "Bearer " + s.token());
    auto r = cli->Post("/v1/machines/fan/id_00/references", h, zeros, "audio/wav");
    ASSERT_TRUE(r) << httplib::to_string(r.error());
    EXPECT_EQ(r->status, 415) << r->body;
    EXPECT_NE(r->body.find("Content-Encoding"), std::string::npos) << r->body;

    std::string chunks;
    for (int i = 0; i < 64; ++i) chunks += "400\r\n" + zeros.substr(0, 1024) + "\r\n";
    const std::string answer =
        raw_exchange(s.port(), "POST /v1/machines/fan/id_00/clips HTTP/1.1\r\nHost: x\r\nContent-Type: audio/wav\r\n" +
                                   std::string(with_token ? "Authorization: Bearer " + s.token() + "\r\n" : "") +
                                   "Transfer-Encoding: chunked\r\n\r\n" + chunks + "0\r\n\r\n");
    EXPECT_EQ(answer.rfind("HTTP/1.1 411 ", 0), 0u) << answer.substr(0, 300);
    EXPECT_NE(answer.find("Content-Length"), std::string::npos) << answer.substr(0, 300);
  }
  EXPECT_EQ(stored_clips(tmp / "data"), 0u);
  EXPECT_EQ(s.get("/healthz").status, 200);
  // An ordinary upload is still taken.
  EXPECT_EQ(s.post_audio("/v1/machines/fan/id_00/references", machine_wav(700, false)).status, 201);
}

TEST(ServeHostile, FolderRootMustBeAFolder) {
  TempDir tmp;
  auto help = run_cli({"serve", "--help"});
  EXPECT_NE(help.out.find("--folder-root"), std::string::npos);
  auto missing = run_cli({"serve", "--data", tmp / "d", "--listen", "127.0.0.1:0", "--folder-root", tmp / "missing"});
  EXPECT_EQ(missing.code, 2) << missing.err;
  EXPECT_NE(missing.err.find("--folder-root"), std::string::npos) << missing.err;
}

}  // namespace
}  // namespace asdcap::test
