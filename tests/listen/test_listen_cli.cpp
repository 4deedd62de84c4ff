// `asdcap listen` itself: ALSA's null PCM (silence, no hardware needed) recorded and submitted to a
// real `asdcap serve` process on loopback; a missing device, a bad --every, a machine without
// references, a wrong token; and a server that is down when listening starts.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cli/cli_runner.hpp"
#include "serve/serve_process.hpp"

namespace fs = std::filesystem;
using asdcap::test::CliResult;
using asdcap::test::run_cli;
using asdcap::test::ServeProcess;
using asdcap::test::TempDir;

namespace {

const char* kToken = "listen-test-token";

std::string token_file(const TempDir& dir) {
  const std::string path = dir / "token";
  asdcap::test::write_bytes(path, std::string(kToken) + "\n");
  return path;
}

void enrol(const ServeProcess& server, int n) {
  for (int i = 0; i < n; ++i) {
    const auto r = server.post_audio("/v1/machines/fan/id_00/references?name=ref" + std::to_string(i) + ".wav",
                                     asdcap::test::machine_wav(static_cast<uint32_t>(10 + i), false, 1.0));
    ASSERT_EQ(r.status, 201) << r.body;
  }
}

std::vector<std::string> listen_args(int port, const std::string& token, const std::string& count) {
  return {"listen",
          "--device",
          "null",
          "--machine",
          "fan",
          "--id",
          "id_00",
          "--every",
          "1s",
          "--server",
          "http://127.0.0.1:" + std::to_string(port),
          "--token-file",
          token,
          "--count",
          count};
}

size_t lines(const std::string& s) { return static_cast<size_t>(std::count(s.begin(), s.end(), '\n')); }

// The event ids printed by listen, one per line: "TIME  score S  threshold T  LABEL  event ID".
std::vector<long long> printed_events(const std::string& out) {
  std::vector<long long> ids;
  const std::regex line(
      R"(^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ  score -?[0-9.]+  threshold ([0-9.]+|none)  (normal|anomaly) *  event (\d+)$)");
  std::istringstream in(out);
  for (std::string l; std::getline(in, l);) {
    std::smatch m;
    if (std::regex_match(l, m, line)) ids.push_back(std::stoll(m[3].str()));
  }
  return ids;
}

// `asdcap ARGS...` started in the background, stdout and stderr into files.
class Child {
 public:
  Child(const std::vector<std::string>& args, const std::string& out, const std::string& err) {
    pid_ = ::fork();
    if (pid_ == 0) {
      std::vector<std::string> all = {ASDCAP_CLI};
      all.insert(all.end(), args.begin(), args.end());
      std::vector<char*> argv;
      for (auto& a : all) argv.push_back(a.data());
      argv.push_back(nullptr);
      const int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      const int e = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(o, 1);
      ::dup2(e, 2);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
  }
  ~Child() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  void signal(int sig) const { ::kill(pid_, sig); }
  int wait() {  // the exit code; -1 when killed by a signal
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

 private:
  pid_t pid_ = -1;
};

size_t wav_files(const std::string& dir) {
  size_t n = 0;
  if (fs::is_directory(dir))
    for (const auto& e : fs::directory_iterator(dir)) n += e.is_regular_file() && e.path().extension() == ".wav";
  return n;
}

}  // namespace

TEST(ListenCli, RecordsTheNullDeviceAndEveryClipBecomesAnEvent) {
  TempDir dir;
  const std::string token = token_file(dir);
  ServeProcess server(dir / "data", {"--token-file", token, "--explain", "none"});
  enrol(server, 4);
  const CliResult r = run_cli(listen_args(server.port(), token, "3"));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  EXPECT_EQ(lines(r.out), 3u) << r.out;
  const std::vector<long long> printed = printed_events(r.out);
  ASSERT_EQ(printed.size(), 3u) << r.out;

  const auto events = server.get("/v1/events?machine=fan&id=id_00");
  ASSERT_EQ(events.status, 200);
  ASSERT_EQ(events.json["events"].size(), 3u) << events.body;
  std::set<long long> stored;
  for (const auto& e : events.json["events"]) {
    stored.insert(e["event_id"].get<long long>());
    EXPECT_TRUE(e["score"].is_number()) << e.dump();
    // One second of ALSA's null device: 16,000 frames of silence, mono 16-bit.
    const auto audio = server.get("/v1/events/" + std::to_string(e["event_id"].get<long long>()) + "/audio");
    ASSERT_EQ(audio.status, 200);
    ASSERT_EQ(audio.body.size(), 44u + 32000u);
    EXPECT_EQ(audio.body.substr(0, 4), "RIFF");
    EXPECT_EQ(audio.body.find_first_not_of('\0', 44), std::string::npos) << "silence";
  }
  EXPECT_EQ(stored, std::set<long long>(printed.begin(), printed.end()));
}

TEST(ListenCli, AMissingDeviceIsOneLineNamingIt) {
  TempDir dir;
  std::vector<std::string> args = listen_args(1, token_file(dir), "1");
  args[2] = "asdcap_no_such_pcm";
  const CliResult r = run_cli(args);
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(lines(r.err), 1u) << r.err;
  EXPECT_NE(r.err.find("ALSA device 'asdcap_no_such_pcm'"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("No such file or directory"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("ALSA lib"), std::string::npos) << "ALSA's own messages are silenced: " << r.err;
  EXPECT_EQ(r.out, "");
}

TEST(ListenCli, BadFlagsAreUsageErrors) {
  TempDir dir;
  const std::string token = token_file(dir);
  for (const char* every : {"0s", "10x", "-1s", "2d"}) {
    std::vector<std::string> args = listen_args(1, token, "1");
    args[8] = every;
    const CliResult r = run_cli(args);
    EXPECT_EQ(r.code, 2) << every << ": " << r.err;
    EXPECT_NE(r.err.find("--every"), std::string::npos) << r.err;
    EXPECT_EQ(lines(r.err), 1u) << r.err;
  }
  std::vector<std::string> args = listen_args(1, token, "1");
  args[10] = "localhost:8080";  // no scheme
  EXPECT_EQ(run_cli(args).code, 2);
  args = listen_args(1, token, "1");
  args[4] = "../fan";
  EXPECT_EQ(run_cli(args).code, 2);
  args = listen_args(1, dir / "missing-token", "1");
  const CliResult missing = run_cli(args);
  EXPECT_EQ(missing.code, 1);
  EXPECT_NE(missing.err.find("missing-token"), std::string::npos) << missing.err;
  const CliResult help = run_cli({"listen", "--help"});
  EXPECT_EQ(help.code, 0);
  EXPECT_NE(help.out.find("--spool"), std::string::npos);
}

TEST(ListenCli, RefusalsAreReportedAndTheExitCodeSaysSo) {
  TempDir dir;
  const std::string token = token_file(dir);
  ServeProcess server(dir / "data", {"--token-file", token, "--explain", "none"});
  // No references for this machine yet: 409, reported, not retried.
  std::vector<std::string> args = listen_args(server.port(), token, "2");
  args[6] = "id_09";
  const CliResult r = run_cli(args);
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_NE(r.err.find("refused by the server (HTTP 409"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("2 of 2 clip(s) not scored"), std::string::npos) << r.err;

  // A wrong token ends the run at the first answer.
  const std::string wrong = dir / "wrong";
  asdcap::test::write_bytes(wrong, "not-the-token\n");
  const CliResult w = run_cli(listen_args(server.port(), wrong, "0"));
  EXPECT_EQ(w.code, 1);
  EXPECT_NE(w.err.find("refused the token (HTTP 401"), std::string::npos) << w.err;
  EXPECT_EQ(w.err.find("not-the-token"), std::string::npos) << "the token is never printed";
}

TEST(ListenCli, ClipsRecordedWhileTheServerIsDownAreDeliveredWhenItIsUp) {
  TempDir dir;
  const std::string token = token_file(dir);
  int port = 0;
  {
    ServeProcess first(dir / "data", {"--token-file", token, "--explain", "none"});
    enrol(first, 4);
    port = first.port();
    ASSERT_EQ(first.terminate(), 0);
  }
  CliResult r;
  std::thread listener([&] { r = run_cli(listen_args(port, token, "3")); });
  // Two clips are recorded (and fail to reach the server) before it comes back on the same port.
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  ServeProcess second(dir / "data",
                      {"--token-file", token, "--explain", "none", "--listen", "127.0.0.1:" + std::to_string(port)});
  listener.join();
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("no answer from"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("answers again"), std::string::npos) << r.err;
  EXPECT_EQ(printed_events(r.out).size(), 3u) << r.out;
  const auto events = second.get("/v1/events?machine=fan&id=id_00");
  ASSERT_EQ(events.status, 200);
  EXPECT_EQ(events.json["events"].size(), 3u) << events.body;
}

TEST(ListenCli, CtrlCWhileTheServerIsDownKeepsTheClipsInTheSpoolForTheNextRun) {
  TempDir dir;
  const std::string token = token_file(dir);
  int port = 0;
  {
    ServeProcess first(dir / "data", {"--token-file", token, "--explain", "none"});
    enrol(first, 4);
    port = first.port();
    ASSERT_EQ(first.terminate(), 0);
  }
  const std::string spool = dir / "spool";
  std::vector<std::string> args = listen_args(port, token, "0");  // until Ctrl-C
  args.push_back("--spool");
  args.push_back(spool);
  Child listener(args, dir / "out", dir / "err");
  std::this_thread::sleep_for(std::chrono::milliseconds(1600));
  listener.signal(SIGINT);
  ASSERT_EQ(listener.wait(), 0) << asdcap::test::slurp(dir / "err");
  const std::string err = asdcap::test::slurp(dir / "err");
  EXPECT_NE(err.find("not yet delivered, kept in " + spool), std::string::npos) << err;
  EXPECT_EQ(asdcap::test::slurp(dir / "out"), "");
  const size_t kept = wav_files(spool + "/fan/id_00");
  ASSERT_GE(kept, 1u) << err;

  // The next run, with the server up, sends the kept clips before its own.
  ServeProcess second(dir / "data",
                      {"--token-file", token, "--explain", "none", "--listen", "127.0.0.1:" + std::to_string(port)});
  args = listen_args(port, token, "1");
  args.push_back("--spool");
  args.push_back(spool);
  const CliResult r = run_cli(args);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(printed_events(r.out).size(), kept + 1) << r.out;
  EXPECT_EQ(wav_files(spool + "/fan/id_00"), 0u);
  EXPECT_EQ(wav_files(spool + "/fan/id_00/rejected"), 0u);
  const auto events = second.get("/v1/events?machine=fan&id=id_00");
  EXPECT_EQ(events.json["events"].size(), kept + 1) << events.body;
}
