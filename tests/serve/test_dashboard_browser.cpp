// The dashboard in Debian's headless Chromium against the real `asdcap serve`: a temp data folder
// and token file, references enrolled and clips scored over HTTP, then the rendered DOM of the
// fleet view, a machine's timeline and an event view is read back. Skipped only when Chromium is
// not installed (scripts/setup.sh installs it). Screenshots land in the build folder.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <httplib.h>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>

#include "report/fixture.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const char* kChromium = "/usr/bin/chromium";
const char* kToken = "dashboard-browser-test-token";

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

// `asdcap serve` on 127.0.0.1:0, its stderr in a file; stopped (SIGTERM, then SIGKILL) on scope exit.
class ServerProcess {
 public:
  ServerProcess(const std::string& data, const std::string& token_file) : log_(data + "-stderr.log") {
    pid_ = fork();
    if (pid_ == 0) {
      const int fd = open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      if (fd >= 0) dup2(fd, 2);
      execl(ASDCAP_CLI, "asdcap", "serve", "--listen", "127.0.0.1:0", "--data", data.c_str(), "--token-file",
            token_file.c_str(), "--backend", "acoustic", static_cast<char*>(nullptr));
      _exit(127);
    }
    const std::string marker = "listening on http://";
    for (int i = 0; i < 600 && port_ == 0; ++i) {
      const std::string err = slurp(log_);
      const size_t at = err.find(marker);
      if (at != std::string::npos) {
        const size_t eol = err.find('\n', at);
        if (eol == std::string::npos) continue;
        const std::string hostport = err.substr(at + marker.size(), eol - at - marker.size());
        port_ = std::atoi(hostport.substr(hostport.rfind(':') + 1).c_str());
        break;
      }
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  ~ServerProcess() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    for (int i = 0; i < 100; ++i) {
      if (waitpid(pid_, nullptr, WNOHANG) == pid_) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;
  int port() const { return port_; }
  std::string log() const { return slurp(log_); }

 private:
  std::string log_;
  pid_t pid_ = -1;
  int port_ = 0;
};

int run(const std::string& cmd) {
  const int rc = std::system(cmd.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

// Headless Chromium in a fresh profile; `args` ends with the quoted URL. Returns the exit code.
int chromium(const std::string& profile, const std::string& args, const std::string& out) {
  fs::remove_all(profile);
  fs::create_directories(profile);
  return run(std::string(kChromium) +
             " --headless=new --no-sandbox --disable-gpu --disable-quic --no-first-run"
             " --disable-background-networking --disable-component-update --disable-sync --disable-dev-shm-usage"
             " --hide-scrollbars --virtual-time-budget=8000 --user-data-dir=" +
             profile + " " + args + " > " + out + " 2> " + out + ".err");
}

std::string dump_dom(const std::string& root, const std::string& url) {
  const std::string out = root + "/dom.html";
  EXPECT_EQ(chromium(root + "/profile", "--dump-dom '" + url + "'", out), 0) << slurp(out + ".err");
  return slurp(out);
}

std::string wav_bytes(const std::string& dir, const std::string& name, double hz, bool knock, uint32_t seed) {
  const std::string path = dir + "/" + name;
  asdcap::test::write_wav16(path, asdcap::test::tone(hz, 2.0, 16000, knock, seed), 16000);
  return slurp(path);
}

std::string fixed3(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.3f", v);
  return buf;
}

size_t count(const std::string& hay, const std::string& needle) {
  size_t n = 0;
  for (size_t at = hay.find(needle); at != std::string::npos; at = hay.find(needle, at + 1)) ++n;
  return n;
}

TEST(DashboardBrowser, ShowsFleetTimelineAndEventFromTheRealServer) {
  if (!fs::exists(kChromium)) GTEST_SKIP() << kChromium << " is not installed";
  const std::string root = (fs::temp_directory_path() / ("asdcap-dashboard-" + std::to_string(getpid()))).string();
  fs::remove_all(root);
  fs::create_directories(root + "/clips");
  const std::string token_file = root + "/token";
  std::ofstream(token_file) << kToken << "\n";
  fs::permissions(token_file, fs::perms::owner_read | fs::perms::owner_write);

  ServerProcess server(root + "/data", token_file);
  ASSERT_GT(server.port(), 0) << server.log();
  httplib::Client cli("127.0.0.1", server.port());
  cli.set_read_timeout(120, 0);
  const httplib::Headers auth = {{"Authorization", std::string("Bearer ") + kToken}};

  // Two machines: a fan with a 440 Hz hum and a pump with a 300 Hz hum.
  double fan_threshold = 0;
  for (int i = 0; i < 6; ++i) {
    const std::string name = "normal_" + std::to_string(i) + ".wav";
    auto r = cli.Post(("/v1/machines/fan/id_00/references?name=" + name).c_str(), auth,
                      wav_bytes(root + "/clips", "fan-" + name, 440, false, uint32_t(i)), "audio/wav");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 201) << r->body;
    fan_threshold = json::parse(r->body).at("threshold").get<double>();
  }
  for (int i = 0; i < 5; ++i) {
    const std::string name = "normal_" + std::to_string(i) + ".wav";
    auto r = cli.Post(("/v1/machines/pump/id_02/references?name=" + name).c_str(), auth,
                      wav_bytes(root + "/clips", "pump-" + name, 300, false, uint32_t(20 + i)), "audio/wav");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 201) << r->body;
  }
  auto score = [&](const std::string& machine, const std::string& name, double hz, bool knock, uint32_t seed) {
    auto r = cli.Post(("/v1/machines/" + machine + "/clips?name=" + name).c_str(), auth,
                      wav_bytes(root + "/clips", name, hz, knock, seed), "audio/wav");
    EXPECT_TRUE(r);
    EXPECT_EQ(r ? r->status : 0, 201) << (r ? r->body : "no response");
    return r ? json::parse(r->body) : json::object();
  };
  score("fan/id_00", "normal_100.wav", 440, false, 100);
  score("fan/id_00", "normal_101.wav", 440, false, 101);
  score("pump/id_02", "normal_200.wav", 300, false, 200);
  const json flagged = score("fan/id_00", "anomaly_102.wav", 440, true, 102);
  ASSERT_EQ(flagged.value("label", ""), "anomaly") << flagged.dump();
  // The event id is a number or a string, as the server sends it.
  const std::string eid =
      flagged.at("event_id").is_string() ? flagged.at("event_id").get<std::string>() : flagged.at("event_id").dump();
  const std::string base = "http://127.0.0.1:" + std::to_string(server.port()) + "/";

  // Fleet view: both machines, the fan flagged and unacknowledged, its threshold, the flagged event.
  const std::string fleet = dump_dom(root, base);
  EXPECT_NE(fleet.find("data-view=\"fleet\""), std::string::npos) << fleet;
  EXPECT_NE(fleet.find("data-machine=\"fan/id_00\""), std::string::npos);
  EXPECT_NE(fleet.find("data-machine=\"pump/id_02\""), std::string::npos);
  EXPECT_NE(fleet.find("card machine st-alarm\" href=\"#machine=fan/id_00\""), std::string::npos);
  EXPECT_NE(fleet.find("card machine st-ok\" href=\"#machine=pump/id_02\""), std::string::npos);
  const json fan = json::parse(cli.Get("/v1/machines/fan/id_00")->body);
  EXPECT_NE(fleet.find("threshold " + fixed3(fan.at("threshold").get<double>())), std::string::npos);
  EXPECT_NE(fleet.find("data-event=\"" + eid + "\""), std::string::npos);
  EXPECT_NE(fleet.find("class=\"live on\""), std::string::npos) << "the live indicator";
  EXPECT_GT(fan_threshold, 0.0);

  // The fan's timeline: four points, one flagged, a threshold line.
  const std::string machine = dump_dom(root, base + "#machine=fan/id_00");
  EXPECT_NE(machine.find("data-view=\"machine\""), std::string::npos) << machine;
  EXPECT_NE(machine.find("class=\"thr\" d=\"M"), std::string::npos);
  EXPECT_EQ(count(machine, "<circle"), 3u + 1u);
  EXPECT_EQ(count(machine, "class=\"an\""), 1u);
  EXPECT_NE(machine.find("aria-label=\"event " + eid + ","), std::string::npos);

  // The event view (deep link): the clip's and the neighbours' spectrograms and audio, the state.
  const std::string event = dump_dom(root, base + "#event=" + eid);
  EXPECT_NE(event.find("data-view=\"event\""), std::string::npos) << event;
  EXPECT_NE(event.find("src=\"/v1/events/" + eid + "/spectrogram.png\""), std::string::npos);
  EXPECT_NE(event.find("src=\"/v1/events/" + eid + "/audio\""), std::string::npos);
  ASSERT_FALSE(flagged.at("neighbors").empty());
  for (const json& n : flagged.at("neighbors")) {
    const std::string rid =
        n.at("reference_id").is_string() ? n.at("reference_id").get<std::string>() : n.at("reference_id").dump();
    EXPECT_NE(event.find("src=\"/v1/references/" + rid + "/spectrogram.png\""), std::string::npos) << rid;
    EXPECT_NE(event.find("d = " + fixed3(n.at("distance").get<double>())), std::string::npos);
  }
  EXPECT_NE(event.find("threshold <b class=\"thr\">" + fixed3(flagged.at("threshold").get<double>())),
            std::string::npos);
  // The explanation's state as the server reported it just before or just after the page was read.
  const std::string state_before = flagged.value("explanation_state", "");
  const std::string state_after =
      json::parse(cli.Get(("/v1/events/" + eid).c_str())->body).value("explanation_state", "");
  ASSERT_FALSE(state_after.empty());
  EXPECT_TRUE(event.find("data-explanation-state=\"" + state_before + "\"") != std::string::npos ||
              event.find("data-explanation-state=\"" + state_after + "\"") != std::string::npos)
      << state_before << " / " << state_after;
  EXPECT_NE(event.find(">Acknowledge</button>"), std::string::npos);
  auto png = cli.Get(("/v1/events/" + eid + "/spectrogram.png").c_str());
  ASSERT_TRUE(png);
  EXPECT_EQ(png->body.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));

  // Screenshots for a look at the layout (the build folder).
  for (const auto& [file, url] : {std::pair<std::string, std::string>{"dashboard-fleet.png", base},
                                  {"dashboard-event.png", base + "#event=" + eid}}) {
    const std::string shot = std::string(ASDCAP_BUILD_DIR) + "/" + file;
    fs::remove(shot);
    EXPECT_EQ(chromium(root + "/profile", "--window-size=1280,900 --screenshot=" + shot + " '" + url + "'",
                       root + "/shot.log"),
              0);
    EXPECT_GT(fs::exists(shot) ? fs::file_size(shot) : 0, 10000u) << shot;
  }
  fs::remove_all(root);
}

}  // namespace
