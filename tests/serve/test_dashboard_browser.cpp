// The dashboard in Debian's headless Chromium against the real `asdcap serve`: a temp data folder
// and token file, references enrolled and clips scored over HTTP, then the rendered DOM of the
// fleet view, a machine's timeline and an event view is read back. Skipped only when Chromium is
// not installed (scripts/setup.sh installs it). Screenshots land in the build folder.
#include <gtest/gtest.h>

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

#include "serve/serve_process.hpp"
#include "support/golden_model.hpp"

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

int run(const std::string& cmd) {
  const int rc = std::system(cmd.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

// Headless Chromium in a fresh profile; `args` ends with the quoted URL. Returns the exit code.
// Timers run on virtual time: `budget_ms` of it, paused while network fetches are pending.
int chromium(const std::string& profile, const std::string& args, const std::string& out, int budget_ms = 8000) {
  fs::remove_all(profile);
  fs::create_directories(profile);
  return run(std::string(kChromium) +
             " --headless=new --no-sandbox --disable-gpu --disable-quic --no-first-run"
             " --disable-background-networking --disable-component-update --disable-sync --disable-dev-shm-usage"
             " --hide-scrollbars --virtual-time-budget=" +
             std::to_string(budget_ms) + " --user-data-dir=" + profile + " " + args + " > " + out + " 2> " + out +
             ".err");
}

std::string dump_dom(const std::string& root, const std::string& url) {
  const std::string out = root + "/dom.html";
  EXPECT_EQ(chromium(root + "/profile", "--dump-dom '" + url + "'", out), 0) << slurp(out + ".err");
  return slurp(out);
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

  asdcap::test::ServeProcess server(root + "/data", {"--token-file", token_file, "--backend", "acoustic"});
  ASSERT_GT(server.port(), 0) << server.log();
  ASSERT_EQ(server.token(), kToken);
  auto client = server.client();
  httplib::Client& cli = *client;
  cli.set_read_timeout(120, 0);
  const httplib::Headers auth = {{"Authorization", std::string("Bearer ") + kToken}};

  // Two machines enrolled with synthetic normal fan clips; one fault clip for the first.
  double fan_threshold = 0;
  for (int i = 0; i < 6; ++i) {
    const std::string name = "normal_" + std::to_string(i) + ".wav";
    auto r = cli.Post(("/v1/machines/fan/id_00/references?name=" + name).c_str(), auth,
                      asdcap::test::machine_wav(uint32_t(i), false), "audio/wav");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 201) << r->body;
    const json reply = json::parse(r->body);  // the threshold stays null until there are enough references
    if (reply.at("threshold").is_number()) fan_threshold = reply.at("threshold").get<double>();
  }
  for (int i = 0; i < 5; ++i) {
    const std::string name = "normal_" + std::to_string(i) + ".wav";
    auto r = cli.Post(("/v1/machines/pump/id_02/references?name=" + name).c_str(), auth,
                      asdcap::test::machine_wav(uint32_t(20 + i), false), "audio/wav");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 201) << r->body;
  }
  auto score = [&](const std::string& machine, const std::string& name, bool anomalous, uint32_t seed) {
    auto r = cli.Post(("/v1/machines/" + machine + "/clips?name=" + name).c_str(), auth,
                      asdcap::test::machine_wav(seed, anomalous), "audio/wav");
    EXPECT_TRUE(r);
    EXPECT_EQ(r ? r->status : 0, 201) << (r ? r->body : "no response");
    return r ? json::parse(r->body) : json::object();
  };
  size_t fan_flagged = 0;
  fan_flagged += score("fan/id_00", "normal_100.wav", false, 1000).value("label", "") == "anomaly";
  fan_flagged += score("fan/id_00", "normal_101.wav", false, 1001).value("label", "") == "anomaly";
  const bool pump_flagged = score("pump/id_02", "normal_200.wav", false, 1002).value("label", "") == "anomaly";
  const json flagged = score("fan/id_00", "anomaly_102.wav", true, 78);
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
  // The pump's state follows the server's label for its one clip.
  EXPECT_NE(fleet.find(std::string("card machine ") + (pump_flagged ? "st-alarm" : "st-ok") +
                       "\" href=\"#machine=pump/id_02\""),
            std::string::npos);
  const json fan = json::parse(cli.Get("/v1/machines/fan/id_00")->body);
  EXPECT_NE(fleet.find("threshold " + fixed3(fan.at("threshold").get<double>())), std::string::npos);
  EXPECT_NE(fleet.find("data-event=\"" + eid + "\""), std::string::npos);
  EXPECT_NE(fleet.find("class=\"live on\""), std::string::npos) << "the live indicator";
  EXPECT_GT(fan_threshold, 0.0);

  // The fan's timeline: three points, the flagged ones marked, a threshold line.
  const std::string machine = dump_dom(root, base + "#machine=fan/id_00");
  EXPECT_NE(machine.find("data-view=\"machine\""), std::string::npos) << machine;
  EXPECT_NE(machine.find("class=\"thr\" d=\"M"), std::string::npos);
  EXPECT_EQ(count(machine, "<circle"), 3u);
  EXPECT_EQ(count(machine, "class=\"an\""), 1u + fan_flagged);
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

// A page of the test's own, served from the same origin as the dashboard (a small forwarding server
// in front of `asdcap serve`), drives the dashboard in frames: it clicks Acknowledge on one event
// and "False alarm" on another, then submits a clip itself and waits for the machine's timeline,
// loaded before, to show it without a reload. Its findings are read from the dumped DOM; the
// server's state is checked through the API.
const char* kHarness = R"HTML(<!doctype html><html><body><script>
const A = "@A@", B = "@B@", TOKEN = "@TOKEN@";
localStorage.setItem("asdcap-token", TOKEN);
const out = (k, v) => { const p = document.createElement("p"); p.id = k; p.textContent = String(v); document.body.appendChild(p); };
const sleep = ms => new Promise(r => setTimeout(r, ms));
async function until(f, ms) { for (let t = 0; t < ms; t += 100) { try { const v = f(); if (v) return v; } catch (e) {} await sleep(100); } return ""; }
function frame(src) { const f = document.createElement("iframe"); f.style.width = "1200px"; f.style.height = "800px"; f.src = src; document.body.appendChild(f); return f; }
const button = (doc, text) => [...doc.querySelectorAll("button")].find(b => b.textContent.startsWith(text));
const status = doc => doc.querySelector(".facts .status").textContent;
(async () => {
  try {
    const ev = frame("/#event=" + A);
    const ack = await until(() => button(ev.contentDocument, "Acknowledge"), 10000);
    out("ack-enabled", ack && !ack.disabled);
    out("status-before", status(ev.contentDocument));
    ack.click();
    out("ack-status", await until(() => button(ev.contentDocument, "Acknowledge").disabled && status(ev.contentDocument), 10000));
    ev.contentWindow.location.hash = "event=" + B;
    await until(() => ev.contentDocument.querySelector("h2").textContent.startsWith("Event #" + B), 10000);
    button(ev.contentDocument, "False alarm").click();
    out("fa-status", await until(() => button(ev.contentDocument, "False alarm").disabled && status(ev.contentDocument), 10000));

    const tl = frame("/#machine=fan/id_00");
    const before = await until(() => tl.contentDocument.querySelectorAll("circle").length, 10000);
    out("circles-before", before);
    const wav = await (await fetch("/v1/events/" + A + "/audio")).arrayBuffer();
    const r = await fetch("/v1/machines/fan/id_00/clips?name=live.wav",
                          {method: "POST", headers: {"Authorization": "Bearer " + TOKEN, "Content-Type": "audio/wav"}, body: wav});
    const live = (await r.json()).event_id;
    out("live-id", live);
    out("live-shown", await until(() => tl.contentDocument.querySelector('[aria-label^="event ' + live + ',"]') && "yes", 15000));
    out("circles-after", tl.contentDocument.querySelectorAll("circle").length);
  } catch (e) { out("error", e.message); }
  out("done", "yes");
})();
</script></body></html>)HTML";

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size()))
    s.replace(at, from.size(), to);
  return s;
}

// The text of <p id="ID"> in the dumped harness page ("" when absent).
std::string finding(const std::string& dom, const std::string& id) {
  const std::string open = "<p id=\"" + id + "\">";
  const size_t at = dom.find(open);
  if (at == std::string::npos) return "";
  const size_t from = at + open.size();
  return dom.substr(from, dom.find("</p>", from) - from);
}

TEST(DashboardBrowser, ButtonsAndLiveUpdatesReachTheServer) {
  if (!fs::exists(kChromium)) GTEST_SKIP() << kChromium << " is not installed";
  const std::string root = (fs::temp_directory_path() / ("asdcap-dashboard-ui-" + std::to_string(getpid()))).string();
  fs::remove_all(root);
  fs::create_directories(root);
  const std::string token_file = root + "/token";
  std::ofstream(token_file) << kToken << "\n";
  asdcap::test::ServeProcess server(root + "/data", {"--token-file", token_file, "--explain", "none"});
  for (int i = 0; i < 6; ++i) {
    const auto r = server.post_audio("/v1/machines/fan/id_00/references?name=normal_" + std::to_string(i) + ".wav",
                                     asdcap::test::machine_wav(uint32_t(i), false));
    ASSERT_EQ(r.status, 201) << r.body;
  }
  const auto a = server.post_audio("/v1/machines/fan/id_00/clips?name=a.wav", asdcap::test::machine_wav(78, true));
  const auto b = server.post_audio("/v1/machines/fan/id_00/clips?name=b.wav", asdcap::test::machine_wav(79, true));
  ASSERT_EQ(a.status, 201) << a.body;
  ASSERT_EQ(b.status, 201) << b.body;
  const std::string ea = a.json.at("event_id").dump(), eb = b.json.at("event_id").dump();

  // Same origin as the dashboard: the harness page, and everything else forwarded to the server.
  httplib::Server front;
  const std::string harness = replace_all(replace_all(replace_all(kHarness, "@A@", ea), "@B@", eb), "@TOKEN@", kToken);
  front.Get("/harness",
            [&](const httplib::Request&, httplib::Response& res) { res.set_content(harness, "text/html"); });
  auto forward = [&](const httplib::Request& req, httplib::Response& res) {
    auto c = server.client();
    httplib::Headers h;
    if (req.has_header("Authorization")) h.emplace("Authorization", req.get_header_value("Authorization"));
    const auto r = req.method == "POST"
                       ? c->Post(req.target.c_str(), h, req.body, req.get_header_value("Content-Type").c_str())
                       : c->Get(req.target.c_str(), h);
    if (!r) {
      res.status = 502;
      return;
    }
    res.status = r->status;
    res.set_content(r->body, r->get_header_value("Content-Type").c_str());
  };
  front.Get(".*", forward);
  front.Post(".*", forward);
  const int port = front.bind_to_any_port("127.0.0.1");
  std::thread front_thread([&] { front.listen_after_bind(); });
  while (!front.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));

  const std::string out = root + "/harness.html";
  const int rc =
      chromium(root + "/profile", "--dump-dom 'http://127.0.0.1:" + std::to_string(port) + "/harness'", out, 60000);
  front.stop();
  front_thread.join();
  ASSERT_EQ(rc, 0) << slurp(out + ".err");
  const std::string dom = slurp(out);
  ASSERT_EQ(finding(dom, "done"), "yes") << dom;
  EXPECT_EQ(finding(dom, "error"), "") << dom;

  // Acknowledge: the button, then the server.
  EXPECT_EQ(finding(dom, "ack-enabled"), "true");
  EXPECT_EQ(finding(dom, "status-before"), "new");
  EXPECT_EQ(finding(dom, "ack-status"), "acknowledged") << dom;
  EXPECT_EQ(server.get("/v1/events/" + ea).json.value("status", ""), "acknowledged");
  // False alarm: the event, and its clip among the machine's references.
  EXPECT_EQ(finding(dom, "fa-status"), "false_alarm") << dom;
  EXPECT_EQ(server.get("/v1/events/" + eb).json.value("status", ""), "false_alarm");
  const auto fan = server.get("/v1/machines/fan/id_00");
  EXPECT_EQ(fan.json.value("n_references", 0), 7) << fan.body;
  // The clip submitted after the timeline was loaded appears in it without a reload.
  const std::string live = finding(dom, "live-id");
  ASSERT_FALSE(live.empty()) << dom;
  EXPECT_EQ(server.get("/v1/events/" + live).status, 200);
  EXPECT_EQ(finding(dom, "circles-before"), "2") << dom;
  EXPECT_EQ(finding(dom, "live-shown"), "yes") << dom;
  EXPECT_EQ(finding(dom, "circles-after"), "3") << dom;
  fs::remove_all(root);
}

// With explain's CLAP methods (the golden tiny msclap model) the event view shows the captions of
// the clip and of each neighbour under their spectrograms, and every method's answer.
TEST(DashboardBrowser, EventViewShowsTheCaptionsOfClipAndNeighbours) {
  if (!fs::exists(kChromium)) GTEST_SKIP() << kChromium << " is not installed";
  const std::string root = (fs::temp_directory_path() / ("asdcap-dashcap-" + std::to_string(getpid()))).string();
  fs::remove_all(root);
  fs::create_directories(root);
  asdcap::test::ServeProcess server(root + "/data",
                                    {"--explain", "text,acoustic", "--explain-model", golden_model_path(true)});
  for (int i = 0; i < 6; ++i)
    ASSERT_EQ(server
                  .post_audio("/v1/machines/fan/id_00/references?name=normal_" + std::to_string(i) + ".wav",
                              asdcap::test::machine_wav(uint32_t(i), false))
                  .status,
              201);
  const auto flagged =
      server.post_audio("/v1/machines/fan/id_00/clips?name=anomaly.wav", asdcap::test::machine_wav(78, true));
  ASSERT_EQ(flagged.json.value("label", ""), "anomaly") << flagged.body;
  const std::string eid = flagged.json.at("event_id").dump();
  json e = json::object();
  for (int i = 0; i < 1200 && e.value("explanation_state", "pending") == "pending"; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    e = server.get("/v1/events/" + eid).json;
  }
  ASSERT_EQ(e.value("explanation_state", ""), "done") << e.dump();
  const json& captions = e.at("explanation").at("record").at("captions");
  const std::string event = dump_dom(root, "http://127.0.0.1:" + std::to_string(server.port()) + "/#event=" + eid);
  EXPECT_NE(event.find("data-view=\"event\""), std::string::npos) << event;
  // Each caption in its own figure, the clip's first (the page escapes <, > and & in text).
  auto escaped = [](const std::string& t) {
    std::string out;
    for (char c : t) out += c == '<' ? "&lt;" : c == '>' ? "&gt;" : c == '&' ? "&amp;" : std::string(1, c);
    return out;
  };
  EXPECT_EQ(count(event, "class=\"caption\""), 1u + captions.at("neighbors").size()) << event;
  size_t at = 0;
  for (const std::string& text :
       {captions.at("anomalous").get<std::string>(), captions.at("neighbors").at(0).get<std::string>()}) {
    at = event.find("class=\"caption\">\u201c" + escaped(text) + "\u201d</p>", at);
    EXPECT_NE(at, std::string::npos) << text << "\n" << event;
  }
  for (const char* method : {"text", "acoustic"})
    EXPECT_NE(event.find("data-method=\"" + std::string(method) + "\""), std::string::npos) << method;
  fs::remove_all(root);
}

}  // namespace
