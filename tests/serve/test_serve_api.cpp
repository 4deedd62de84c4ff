// The HTTP API against a real `asdcap serve` process on loopback, with the SQLite store.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <mutex>
#include <regex>
#include <set>
#include <thread>

#include "cli/cli_runner.hpp"
#include "serve_process.hpp"

namespace asdcap::test {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// Enrols n normal clips (seeds seed0..seed0+n-1) and returns the last reply.
ServeProcess::Reply enrol(const ServeProcess& s, const std::string& machine, int n, uint32_t seed0 = 1000) {
  ServeProcess::Reply last;
  for (int i = 0; i < n; ++i) {
    last = s.post_audio("/v1/machines/" + machine + "/references?name=ref" + std::to_string(i),
                        machine_wav(seed0 + static_cast<uint32_t>(i), false));
    EXPECT_EQ(last.status, 201) << last.body;
  }
  return last;
}

size_t count_events(const ServeProcess& s, const std::string& query = "") {
  auto r = s.get("/v1/events?limit=1000" + query);
  EXPECT_EQ(r.status, 200) << r.body;
  return r.json["events"].size();
}

int64_t count_references(const ServeProcess& s, const std::string& machine) {
  auto r = s.get("/v1/machines/" + machine);
  if (r.status == 404) return 0;
  EXPECT_EQ(r.status, 200) << r.body;
  return r.json["n_references"].get<int64_t>();
}

// Polls GET /v1/events/{id} until its explanation is no longer pending (at most `seconds`).
Json wait_explained(const ServeProcess& s, int64_t id, int seconds = 60) {
  const auto deadline = Clock::now() + std::chrono::seconds(seconds);
  Json e;
  while (Clock::now() < deadline) {
    e = s.get("/v1/events/" + std::to_string(id)).json;
    if (e.is_object() && e["explanation_state"] != "pending") return e;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return e;
}

TEST(ServeApi, EnrolScoreListAndExplain) {
  TempDir tmp;
  ServeProcess s(tmp / "data");
  EXPECT_EQ(s.get("/healthz").json["status"], "ok");

  // Threshold: none with one reference, a number from two on.
  auto first = s.post_audio("/v1/machines/fan/id_00/references?name=first", machine_wav(1, false));
  ASSERT_EQ(first.status, 201) << first.body;
  EXPECT_EQ(first.json["name"], "first");
  EXPECT_EQ(first.json["n_references"], 1);
  EXPECT_TRUE(first.json["threshold"].is_null());
  auto last = enrol(s, "fan/id_00", 15);
  EXPECT_EQ(last.json["n_references"], 16);
  ASSERT_TRUE(last.json["threshold"].is_number()) << last.body;
  const double threshold = last.json["threshold"];

  // A copy of a reference: its nearest neighbour is that reference, at distance 0, and it is normal.
  auto normal = s.post_audio("/v1/machines/fan/id_00/clips?name=normal.wav", machine_wav(1000, false));
  ASSERT_EQ(normal.status, 201) << normal.body;
  EXPECT_EQ(normal.json["label"], "normal") << normal.body;
  EXPECT_EQ(normal.json["clip_name"], "normal.wav");
  EXPECT_DOUBLE_EQ(normal.json["threshold"].get<double>(), threshold);
  EXPECT_LE(normal.json["score"].get<double>(), threshold);
  ASSERT_EQ(normal.json["neighbors"].size(), 4u);  // --k 4
  EXPECT_EQ(normal.json["neighbors"][0]["name"], "ref0");
  EXPECT_NEAR(normal.json["neighbors"][0]["distance"].get<double>(), 0.0, 1e-3);
  double previous = 0, sum = 0;
  for (const auto& n : normal.json["neighbors"]) {
    EXPECT_TRUE(n["name"].get<std::string>().rfind("ref", 0) == 0 || n["name"] == "first") << n;
    EXPECT_GE(n["distance"].get<double>(), previous);  // nearest first
    previous = n["distance"];
    sum += previous;
    EXPECT_GT(n["reference_id"].get<int64_t>(), 0);
  }
  EXPECT_NEAR(normal.json["score"].get<double>(), sum / 4, 1e-9);  // the mean distance to the k nearest
  EXPECT_TRUE(normal.json["explanation_state"].is_null());

  auto anomaly = s.post_audio("/v1/machines/fan/id_00/clips?name=whine.wav", machine_wav(78, true));
  ASSERT_EQ(anomaly.status, 201) << anomaly.body;
  EXPECT_EQ(anomaly.json["label"], "anomaly") << anomaly.body;
  EXPECT_GT(anomaly.json["score"].get<double>(), threshold);
  EXPECT_EQ(anomaly.json["explanation_state"], "pending");
  const int64_t anomaly_id = anomaly.json["event_id"];

  // Lists and filters.
  EXPECT_EQ(count_events(s), 2u);
  auto flagged = s.get("/v1/events?machine=fan&id=id_00&label=anomaly");
  ASSERT_EQ(flagged.json["events"].size(), 1u);
  EXPECT_EQ(flagged.json["events"][0]["event_id"], anomaly_id);
  EXPECT_EQ(count_events(s, "&machine=pump"), 0u);
  EXPECT_EQ(count_events(s, "&label=normal"), 1u);
  auto newest = s.get("/v1/events?limit=1");
  EXPECT_EQ(newest.json["events"][0]["event_id"], anomaly_id);  // newest first
  auto scores = s.get("/v1/machines/fan/id_00/scores");
  ASSERT_EQ(scores.json["scores"].size(), 2u);
  EXPECT_EQ(scores.json["scores"][0]["event_id"], normal.json["event_id"]);  // oldest first
  auto machines = s.get("/v1/machines").json["machines"];
  ASSERT_EQ(machines.size(), 1u);
  EXPECT_EQ(machines[0]["n_references"], 16);
  EXPECT_EQ(machines[0]["n_events"], 2);
  EXPECT_EQ(machines[0]["n_anomalies"], 1);
  EXPECT_EQ(machines[0]["n_unacknowledged"], 1);
  EXPECT_EQ(machines[0]["last_label"], "anomaly");
  auto machine = s.get("/v1/machines/fan/id_00").json;
  ASSERT_EQ(machine["references"].size(), 16u);
  EXPECT_EQ(machine["references"][0]["name"], "first");
  EXPECT_EQ(machine["references"][0]["source"], "upload");
  auto updates = s.get("/v1/updates?after=" + normal.json["event_id"].dump()).json;
  EXPECT_EQ(updates["last_event_id"], anomaly_id);
  ASSERT_EQ(updates["events"].size(), 1u);

  // The stored audio is the uploaded file; the spectrogram is a PNG.
  const std::string wav = machine_wav(78, true);
  auto audio = s.get("/v1/events/" + std::to_string(anomaly_id) + "/audio");
  EXPECT_EQ(audio.status, 200);
  EXPECT_EQ(audio.body, wav);
  EXPECT_EQ(audio.content_type, "audio/wav");
  auto png = s.get("/v1/events/" + std::to_string(anomaly_id) + "/spectrogram.png");
  ASSERT_EQ(png.status, 200);
  EXPECT_EQ(png.body.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  const int64_t rid = machine["references"][0]["reference_id"];
  EXPECT_EQ(s.get("/v1/references/" + std::to_string(rid) + "/audio").body, machine_wav(1, false));
  EXPECT_EQ(s.get("/v1/references/" + std::to_string(rid) + "/spectrogram.png").status, 200);
  EXPECT_EQ(s.get("/v1/references/99999/audio").status, 404);

  // The explanation names what differs, with the evidence behind it.
  Json e = wait_explained(s, anomaly_id);
  ASSERT_EQ(e["explanation_state"], "done") << e.dump();
  const Json& x = e["explanation"];
  EXPECT_EQ(x["method"], "acoustic");
  const std::string text = x["text"];
  EXPECT_EQ(text.rfind("This sound is", 0), 0u) << text;
  EXPECT_FALSE(x["named"].empty()) << x.dump();
  EXPECT_FALSE(x["evidence"].empty());
  EXPECT_EQ(x["neighbors"].size(), 4u);
  // The event listing does not carry explanations.
  EXPECT_FALSE(flagged.json["events"][0].contains("explanation"));

  EXPECT_NE(s.get("/").body.find("<html"), std::string::npos);
  EXPECT_EQ(s.terminate(), 0);  // SIGTERM: a clean stop
}

TEST(ServeApi, IdempotencyKeyGivesTheSameEvent) {
  TempDir tmp;
  ServeProcess s(tmp / "data");
  enrol(s, "pump/id_02", 4);
  const httplib::Headers key = {{"Idempotency-Key", "clip-42"}};
  auto a = s.post_audio("/v1/machines/pump/id_02/clips", machine_wav(5, false), key);
  auto b = s.post_audio("/v1/machines/pump/id_02/clips", machine_wav(5, false), key);
  ASSERT_EQ(a.status, 201) << a.body;
  ASSERT_EQ(b.status, 200) << b.body;
  EXPECT_EQ(a.json, b.json);
  EXPECT_EQ(count_events(s), 1u);
  // The key is per machine; without a key every submission is an event.
  enrol(s, "pump/id_04", 2);
  EXPECT_EQ(s.post_audio("/v1/machines/pump/id_04/clips", machine_wav(5, false), key).status, 201);
  EXPECT_EQ(s.post_audio("/v1/machines/pump/id_02/clips", machine_wav(5, false)).status, 201);
  EXPECT_EQ(count_events(s), 3u);
  // One audio file per event: the repeated submission's copy was not kept.
  size_t files = 0;
  for (const auto& f : fs::recursive_directory_iterator(tmp / "data/audio/pump/id_02/clips"))
    files += f.is_regular_file() ? 1 : 0;
  EXPECT_EQ(files, 2u);
}

TEST(ServeApi, AcknowledgeAndFalseAlarm) {
  TempDir tmp;
  ServeProcess s(tmp / "data");
  const double threshold = enrol(s, "valve/id_00", 6).json["threshold"];
  auto anomaly = s.post_audio("/v1/machines/valve/id_00/clips?name=odd", machine_wav(9, true));
  ASSERT_EQ(anomaly.json["label"], "anomaly") << anomaly.body;
  auto normal = s.post_audio("/v1/machines/valve/id_00/clips", machine_wav(10, false));
  const std::string aid = anomaly.json["event_id"].dump(), nid = normal.json["event_id"].dump();

  auto ack = s.post("/v1/events/" + nid + "/acknowledge", "", "application/json");
  ASSERT_EQ(ack.status, 200) << ack.body;
  EXPECT_EQ(ack.json["status"], "acknowledged");
  EXPECT_EQ(count_events(s, "&status=acknowledged"), 1u);

  auto fa = s.post("/v1/events/" + aid + "/false-alarm", "", "application/json");
  ASSERT_EQ(fa.status, 200) << fa.body;
  EXPECT_EQ(fa.json["status"], "false_alarm");
  auto m = s.get("/v1/machines/valve/id_00").json;
  EXPECT_EQ(m["n_references"], 7);
  EXPECT_EQ(m["references"].back()["source"], "false_alarm");
  EXPECT_EQ(m["references"].back()["name"], "odd");
  ASSERT_TRUE(m["threshold"].is_number());
  EXPECT_NE(m["threshold"].get<double>(), threshold);
  // Marking twice adds the clip once.
  EXPECT_EQ(s.post("/v1/events/" + aid + "/false-alarm", "", "application/json").status, 200);
  EXPECT_EQ(count_references(s, "valve/id_00"), 7);
  // The same whine again is now close to a reference.
  auto again = s.post_audio("/v1/machines/valve/id_00/clips", machine_wav(9, true));
  EXPECT_EQ(again.json["neighbors"][0]["name"], "odd") << again.body;

  EXPECT_EQ(s.post("/v1/events/424242/acknowledge", "", "application/json").status, 404);
  EXPECT_EQ(s.post("/v1/events/424242/false-alarm", "", "application/json").status, 404);
  EXPECT_EQ(s.get("/v1/events/424242").status, 404);
  EXPECT_EQ(s.get("/v1/events/abc").status, 400);
}

// Every bad request gets a clear 4xx with a one-line {"error"} and changes nothing.
TEST(ServeApi, BadInputsChangeNothing) {
  TempDir tmp;
  ServeProcess s(tmp / "data", {"--max-upload-mb", "1"});
  enrol(s, "fan/id_00", 3);
  s.post_audio("/v1/machines/fan/id_00/clips", machine_wav(3, false));
  auto unchanged = [&] {
    EXPECT_EQ(count_events(s), 1u);
    EXPECT_EQ(count_references(s, "fan/id_00"), 3);
    EXPECT_EQ(s.get("/v1/machines").json["machines"].size(), 1u);
  };
  auto check = [&](const ServeProcess::Reply& r, int status, const std::string& says) {
    EXPECT_EQ(r.status, status) << r.body;
    ASSERT_TRUE(r.json.is_object()) << r.body;
    const std::string error = r.json.value("error", "");
    EXPECT_NE(error.find(says), std::string::npos) << error;
    EXPECT_EQ(r.body.find('\n'), std::string::npos);
    unchanged();
  };
  const std::string wav = machine_wav(4, false);
  check(s.post_audio("/v1/machines/fan/id_00/clips", "RIFF....this is not audio at all"), 422, "audio");
  check(s.post_audio("/v1/machines/fan/id_00/references", "plain text"), 422, "audio");
  check(s.post_audio("/v1/machines/fan/id_00/clips", ""), 400, "empty");
  check(s.post_audio("/v1/machines/fan/id_00/clips", std::string(3 << 20, 'x')), 413, "too large");
  check(s.post_audio("/v1/machines/..%2F..%2Fetc/id_00/clips", wav), 400, "invalid machine");
  check(s.post_audio("/v1/machines/fan/..%2F../clips", wav), 400, "invalid machine");
  check(s.post_audio("/v1/machines/.hidden/id_00/references", wav), 400, "invalid machine");
  check(s.post_audio("/v1/machines/" + std::string(65, 'a') + "/id_00/clips", wav), 400, "invalid machine");
  check(s.post("/v1/machines/fan/id_00/clips", wav, "audio/wav", {{"Authorization", "Bearer wrong"}}, false), 401,
        "token");
  check(s.post("/v1/machines/fan/id_00/clips", wav, "audio/wav", {}, false), 401, "token");
  check(s.post("/v1/machines/fan/id_00/references/folder", "{\"path\": ", "application/json"), 400, "JSON");
  check(s.post("/v1/machines/fan/id_00/references/folder", "[1, 2]", "application/json"), 400, "JSON");
  check(s.post("/v1/machines/fan/id_00/references/folder", "{\"path\": \"/nonexistent\"}", "application/json"), 400,
        "not a folder");
  check(s.post("/v1/machines/fan/id_00/clips", wav, "text/plain"), 415, "Content-Type");
  check(s.post("/v1/machines/fan/id_00/references/folder", "{}", "text/plain"), 415, "Content-Type");
  check(s.post_audio("/v1/machines/pump/id_00/clips", wav), 409, "no references");
  check(s.get("/v1/events?label=weird"), 400, "label");
  check(s.get("/v1/nothing"), 404, "no such endpoint");
  // The token never appears in the log.
  EXPECT_EQ(s.log().find(s.token()), std::string::npos);
}

TEST(ServeApi, FolderEnrolmentSkipsWhatIsNotAudio) {
  TempDir tmp;
  for (int i = 0; i < 3; ++i) write_bytes(tmp / ("refs/n" + std::to_string(i) + ".wav"), machine_wav(200 + i, false));
  write_bytes(tmp / "refs/broken.wav", "not a wav");
  write_bytes(tmp / "refs/notes.txt", "ignored");
  ServeProcess s(tmp / "data");
  auto r = s.post("/v1/machines/gearbox/g1/references/folder", Json{{"path", tmp / "refs"}}.dump(), "application/json");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json["enrolled"], 3);
  ASSERT_EQ(r.json["skipped"].size(), 1u);
  EXPECT_NE(r.json["skipped"][0]["file"].get<std::string>().find("broken.wav"), std::string::npos);
  EXPECT_EQ(r.json["n_references"], 3);
  EXPECT_TRUE(r.json["threshold"].is_number());
  EXPECT_EQ(s.get("/v1/machines/gearbox/g1").json["references"][0]["source"], "folder");
}

// The value of one sample line of the Prometheus text ("name{labels} value"), or -1 when absent.
double sample(const std::string& text, const std::string& series) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(series + " ", 0) == 0) return std::stod(line.substr(series.size() + 1));
  return -1;
}

TEST(ServeApi, MetricsCountWhatHappened) {
  TempDir tmp;
  ServeProcess s(tmp / "data");
  enrol(s, "fan/id_00", 5);
  int flagged = 0;
  for (int i = 0; i < 4; ++i)
    flagged += s.post_audio("/v1/machines/fan/id_00/clips", machine_wav(60 + i, i == 3)).json["label"] == "anomaly";
  EXPECT_GE(flagged, 1);
  s.post("/v1/machines/fan/id_00/clips", "x", "audio/wav", {}, false);
  auto r = s.get("/metrics");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type.rfind("text/plain", 0), 0u);
  const std::string& m = r.body;
  // Every line is a comment or "name[{labels}] value".
  const std::regex line_re(R"(^(#.*|[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-z_]+="([^"\\]|\\.)*",?)+\})? [-+0-9.eEInfNa]+)$)");
  std::istringstream in(m);
  std::string line;
  while (std::getline(in, line)) EXPECT_TRUE(std::regex_match(line, line_re)) << line;
  EXPECT_EQ(sample(m, R"(asdcap_clips_scored_total{type="fan",id="id_00"})"), 4);
  EXPECT_EQ(sample(m, R"(asdcap_clips_flagged_total{type="fan",id="id_00"})"), flagged);
  EXPECT_EQ(sample(m, R"(asdcap_http_requests_total{route="/v1/machines/{type}/{id}/clips",code="201"})"), 4);
  EXPECT_EQ(sample(m, R"(asdcap_http_requests_total{route="/v1/machines/{type}/{id}/clips",code="401"})"), 1);
  EXPECT_EQ(sample(m, R"(asdcap_http_requests_total{route="/v1/machines/{type}/{id}/references",code="201"})"), 5);
  EXPECT_EQ(sample(m, "asdcap_score_duration_seconds_count"), 4);
  EXPECT_EQ(sample(m, R"(asdcap_score_duration_seconds_bucket{le="+Inf"})"), 4);
  EXPECT_EQ(sample(m, R"(asdcap_request_duration_seconds_count{route="/v1/machines/{type}/{id}/clips"})"), 5);
  EXPECT_GT(sample(m, R"(asdcap_machine_threshold{type="fan",id="id_00"})"), 0);
  EXPECT_GT(sample(m, R"(asdcap_machine_last_score{type="fan",id="id_00"})"), 0);
  EXPECT_GE(sample(m, "asdcap_explanation_queue_depth"), 0);
}

// kill -9 during a burst of submissions: after a restart on the same data folder every
// acknowledged (201) clip is there exactly once with its audio, and the explanation jobs the killed
// process left finish.
TEST(ServeApi, CrashDuringBurstLosesNothingAcknowledged) {
  TempDir tmp;
  std::map<std::string, int64_t> acknowledged;  // idempotency key -> event id
  {
    ServeProcess s(tmp / "data", {"--explain-lease", "2"});
    enrol(s, "fan/id_00", 4);
    std::mutex mu;
    std::atomic<bool> stop{false};
    std::atomic<int> sent{0};
    std::thread burst([&] {
      auto c = s.client();
      c->set_read_timeout(5, 0);
      for (int i = 0; i < 400 && !stop; ++i) {
        const std::string key = "burst-" + std::to_string(i);
        auto r = c->Post("/v1/machines/fan/id_00/clips",
                         {{"Authorization", "Bearer " + s.token()}, {"Idempotency-Key", key}},
                         machine_wav(5000 + static_cast<uint32_t>(i), i % 2 == 1), "audio/wav");
        ++sent;
        if (r && r->status == 201) {
          std::lock_guard lock(mu);
          acknowledged[key] = Json::parse(r->body)["event_id"].get<int64_t>();
        }
      }
    });
    while (sent < 12) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    s.kill9();
    stop = true;
    burst.join();
  }
  ASSERT_GE(acknowledged.size(), 10u);
  ServeProcess s(tmp / "data", {"--explain-lease", "2"});
  auto events = s.get("/v1/events?limit=1000").json["events"];
  std::map<int64_t, int> seen;
  for (const auto& e : events) ++seen[e["event_id"].get<int64_t>()];
  for (const auto& [key, id] : acknowledged) {
    EXPECT_EQ(seen[id], 1) << key;
    EXPECT_EQ(s.get("/v1/events/" + std::to_string(id) + "/audio").status, 200) << key;
  }
  // A client that did not hear back retries with its key: no second event.
  for (const auto& [key, id] : acknowledged) {
    auto r = s.post_audio("/v1/machines/fan/id_00/clips", machine_wav(0, false), {{"Idempotency-Key", key}});
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.json["event_id"], id);
    break;
  }
  EXPECT_EQ(s.get("/v1/events?limit=1000").json["events"].size(), events.size());
  // Every flagged clip ends explained, those the killed process had claimed too.
  for (const auto& e : events) {
    if (e["label"] != "anomaly") continue;
    Json done = wait_explained(s, e["event_id"].get<int64_t>(), 90);
    EXPECT_EQ(done["explanation_state"], "done") << done.dump();
  }
}

// A job claimed by a process that died stays with it until its lease expires, then another worker
// takes it up and finishes it.
TEST(ServeApi, ExpiredLeaseOfADeadWorkerIsTakenUp) {
  TempDir tmp;
  int64_t id = 0;
  {
    ServeProcess s(tmp / "data");
    enrol(s, "fan/id_00", 5);
    auto a = s.post_audio("/v1/machines/fan/id_00/clips", machine_wav(41, true));
    ASSERT_EQ(a.json["label"], "anomaly") << a.body;
    id = a.json["event_id"];
    ASSERT_EQ(wait_explained(s, id)["explanation_state"], "done");
  }
  // As a killed process leaves it: the event pending, its job claimed for 4 more seconds.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((tmp / "data/asdcap.sqlite").c_str(), &db), SQLITE_OK);
  const auto until = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count() + 4;
  const std::string sql =
      "UPDATE events SET explanation_state = 'pending', explanation_json = '' WHERE id = " + std::to_string(id) +
      "; INSERT INTO jobs (event_id, worker, claimed_until, attempts) VALUES (" + std::to_string(id) +
      ", 'gone:1/0', " + std::to_string(until) + ", 1);";
  ASSERT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
  sqlite3_close(db);
  ServeProcess s(tmp / "data");
  std::this_thread::sleep_for(std::chrono::seconds(1));
  EXPECT_EQ(s.get("/v1/events/" + std::to_string(id)).json["explanation_state"], "pending");  // still leased
  Json e = wait_explained(s, id, 30);
  EXPECT_EQ(e["explanation_state"], "done") << e.dump();
  EXPECT_EQ(e["explanation"]["method"], "acoustic");
}

TEST(ServeApi, WatchScoresNewFilesOnce) {
  TempDir tmp;
  fs::create_directories(tmp / "watch");
  write_bytes(tmp / "refs/a.wav", machine_wav(1, false));
  write_bytes(tmp / "refs/b.wav", machine_wav(2, false));
  write_bytes(tmp / "refs/c.wav", machine_wav(3, false));
  auto wait_events = [](const ServeProcess& s, size_t n) {
    const auto deadline = Clock::now() + std::chrono::seconds(30);
    while (Clock::now() < deadline && count_events(s) < n) std::this_thread::sleep_for(std::chrono::milliseconds(200));
    return count_events(s);
  };
  {
    ServeProcess s(tmp / "data", {"--watch", tmp / "watch"});
    for (const std::string m : {"fan/id_00", "pump/id_02"})
      ASSERT_EQ(
          s.post("/v1/machines/" + m + "/references/folder", Json{{"path", tmp / "refs"}}.dump(), "application/json")
              .status,
          200);
    write_bytes(tmp / "watch/fan/id_00/clip1.wav", machine_wav(11, false));
    write_bytes(tmp / "watch/pump/test/anomaly_id_02_00000001.wav", machine_wav(12, true));
    write_bytes(tmp / "watch/fan/id_00/notes.txt", "ignored");
    write_bytes(tmp / "watch/fan/id_00/broken.wav", "not audio");
    ASSERT_EQ(wait_events(s, 2), 2u) << s.log();
    auto fan = s.get("/v1/events?machine=fan&id=id_00").json["events"];
    ASSERT_EQ(fan.size(), 1u);
    EXPECT_EQ(fan[0]["clip_name"], "clip1.wav");
    auto pump = s.get("/v1/events?machine=pump&id=id_02").json["events"];
    ASSERT_EQ(pump.size(), 1u);
    EXPECT_EQ(pump[0]["label"], "anomaly");
    EXPECT_NE(s.log().find("broken.wav"), std::string::npos);
  }
  // A restart scores only the file that is new.
  ServeProcess s(tmp / "data", {"--watch", tmp / "watch"});
  write_bytes(tmp / "watch/fan/id_00/clip2.wav", machine_wav(13, false));
  EXPECT_EQ(wait_events(s, 3), 3u) << s.log();
  std::this_thread::sleep_for(std::chrono::seconds(4));
  EXPECT_EQ(count_events(s), 3u);
}

TEST(ServeCli, UsageAndStartupErrors) {
  auto help = run_cli({"serve", "--help"});
  EXPECT_EQ(help.code, 0);
  for (const char* flag : {"--listen", "--data", "--store", "--model", "--backend", "--k", "--token-file", "--watch",
                           "--explain", "--llm", "--threads", "--tls-cert", "--tls-key", "--max-upload-mb"})
    EXPECT_NE(help.out.find(flag), std::string::npos) << flag;
  TempDir tmp;
  EXPECT_EQ(run_cli({"serve", "--data", tmp / "d", "--k", "0"}).code, 2);
  EXPECT_EQ(run_cli({"serve", "--data", tmp / "d", "--backend", "nope"}).code, 2);
  EXPECT_EQ(run_cli({"serve", "--data", tmp / "d", "--backend", "msclap"}).code, 2);  // needs --model
  EXPECT_EQ(run_cli({"serve", "--data", tmp / "d", "--llm", "openai"}).code, 2);      // needs --llm-model
  EXPECT_EQ(run_cli({"serve", "--data", tmp / "d", "--tls-cert", "x.pem"}).code, 2);
  auto bad_listen = run_cli({"serve", "--data", tmp / "d", "--listen", "localhost"});
  EXPECT_EQ(bad_listen.code, 2) << bad_listen.err;
  EXPECT_NE(bad_listen.err.find("--listen"), std::string::npos);
  auto store = run_cli({"serve", "--data", tmp / "d", "--store", "mysql://x"});
  EXPECT_EQ(store.code, 2) << store.err;
  // No PostgreSQL in this build, or no server at that address: a runtime error either way.
  auto pg = run_cli(
      {"serve", "--data", tmp / "d", "--listen", "127.0.0.1:0", "--store", "postgresql://nobody@127.0.0.1:1/none"});
  EXPECT_EQ(pg.code, 1) << pg.err;
  auto empty_token = run_cli({"serve", "--data", tmp / "d", "--token-file", "/dev/null"});
  EXPECT_EQ(empty_token.code, 2) << empty_token.err;
  auto no_watch = run_cli({"serve", "--data", tmp / "d", "--listen", "127.0.0.1:0", "--watch", tmp / "missing"});
  EXPECT_EQ(no_watch.code, 1) << no_watch.err;
  EXPECT_NE(no_watch.err.find("--watch"), std::string::npos);
}

TEST(ServeCli, TokenFileIsUsedAndGeneratedPrivately) {
  TempDir tmp;
  {
    ServeProcess s(tmp / "data");
    EXPECT_EQ(fs::status(tmp / "data/token").permissions() & fs::perms::all,
              fs::perms::owner_read | fs::perms::owner_write);
    EXPECT_EQ(s.token().size(), 64u);
  }
  write_bytes(tmp / "tok", "s3cret-token\n");
  ServeProcess s(tmp / "data2", {"--token-file", tmp / "tok"});
  EXPECT_EQ(s.token(), "s3cret-token");
  EXPECT_EQ(s.post_audio("/v1/machines/fan/id_00/references", machine_wav(1, false)).status, 201);
  EXPECT_FALSE(fs::exists(tmp / "data2/token"));
}

// --llm openai: the acoustic prompt goes to an OpenAI-compatible server (a stand-in on loopback) and
// its answer becomes the explanation; the API key never reaches the log.
TEST(ServeApi, ExplanationsFromAnOpenAiCompatibleServer) {
  httplib::Server llm;
  std::mutex mu;
  std::vector<std::pair<std::string, std::string>> requests;  // Authorization, body
  llm.Post("/v1/chat/completions", [&](const httplib::Request& req, httplib::Response& res) {
    {
      std::lock_guard lock(mu);
      requests.push_back({req.get_header_value("Authorization"), req.body});
    }
    res.set_content(R"({"model":"stand-in-1","choices":[{"message":{"role":"assistant",)"
                    R"("content":"This sound has a bearing whine."}}]})",
                    "application/json");
  });
  const int llm_port = llm.bind_to_any_port("127.0.0.1");
  std::thread llm_thread([&] { llm.listen_after_bind(); });
  ::setenv("OPENAI_BASE_URL", ("http://127.0.0.1:" + std::to_string(llm_port) + "/v1").c_str(), 1);
  ::setenv("OPENAI_API_KEY", "sk-serve-test-secret", 1);
  {
    TempDir tmp;
    ServeProcess s(tmp / "data", {"--llm", "openai", "--llm-model", "m1"});
    enrol(s, "fan/id_00", 6);
    auto a = s.post_audio("/v1/machines/fan/id_00/clips", machine_wav(31, true));
    ASSERT_EQ(a.json["label"], "anomaly") << a.body;
    Json e = wait_explained(s, a.json["event_id"].get<int64_t>());
    ASSERT_EQ(e["explanation_state"], "done") << e.dump();
    EXPECT_EQ(e["explanation"]["text"], "This sound has a bearing whine.");
    EXPECT_EQ(e["explanation"]["llm"], "openai");
    EXPECT_EQ(e["explanation"]["model"], "stand-in-1");
    std::lock_guard lock(mu);
    ASSERT_EQ(requests.size(), 1u);
    EXPECT_EQ(requests[0].first, "Bearer sk-serve-test-secret");
    const Json body = Json::parse(requests[0].second);
    EXPECT_EQ(body["model"], "m1");
    const std::string prompt = body["messages"][0]["content"];
    EXPECT_EQ(prompt, e["explanation"]["prompt"].get<std::string>());  // the acoustic prompt, recorded
    EXPECT_NE(prompt.find("(dBFS)"), std::string::npos) << prompt;     // its evidence table
    EXPECT_EQ(s.log().find("sk-serve-test-secret"), std::string::npos);
  }
  ::unsetenv("OPENAI_BASE_URL");
  ::unsetenv("OPENAI_API_KEY");
  llm.stop();
  llm_thread.join();
}

TEST(ServeCli, ServesHttpsWithTlsCertAndKey) {
  TempDir tmp;
  const std::string cert = tmp / "cert.pem", key = tmp / "key.pem";
  const std::string cmd = "openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -days 1 -keyout " +
                          shell_quote(key) + " -out " + shell_quote(cert) + " >/dev/null 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << "openssl could not make a test certificate";
  ServeProcess s(tmp / "data", {"--tls-cert", cert, "--tls-key", key});
  EXPECT_NE(s.log().find("listening on https://127.0.0.1:"), std::string::npos) << s.log();
  httplib::SSLClient c("127.0.0.1", s.port());
  c.enable_server_certificate_verification(false);
  auto r = c.Get("/healthz");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  auto w = c.Post("/v1/machines/fan/id_00/references", {{"Authorization", "Bearer " + s.token()}},
                  machine_wav(1, false), "audio/wav");
  ASSERT_TRUE(w);
  EXPECT_EQ(w->status, 201) << w->body;
  // Plain HTTP gets no answer from the TLS port.
  auto plain = s.get("/healthz");
  EXPECT_NE(plain.status, 200);
}

}  // namespace
}  // namespace asdcap::test
