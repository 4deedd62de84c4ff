// Explanations with `asdcap explain`'s CLAP methods through a real `asdcap serve` process: with the
// golden tiny msclap model a flagged clip's explanation is the record `asdcap explain` writes for
// the same clip and neighbours, and a method without its model is refused at start.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include "asdcap/run.hpp"
#include "cli/cli_runner.hpp"
#include "serve_process.hpp"
#include "support/golden_model.hpp"

namespace asdcap::test {
namespace {

namespace fs = std::filesystem;

// Rows of a query on the server's SQLite store, every column as text.
std::vector<std::vector<std::string>> query(const std::string& db_path, const std::string& sql) {
  sqlite3* db = nullptr;
  std::vector<std::vector<std::string>> rows;
  EXPECT_EQ(sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
  while (st && sqlite3_step(st) == SQLITE_ROW) {
    std::vector<std::string> row;
    for (int i = 0; i < sqlite3_column_count(st); ++i) {
      const auto* text = sqlite3_column_text(st, i);
      row.emplace_back(text ? reinterpret_cast<const char*>(text) : "");
    }
    rows.push_back(std::move(row));
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return rows;
}

// An explanation record without what differs from run to run: the time each part took.
Json without_timings(Json r) {
  r.erase("timings");
  for (auto& [name, m] : r["methods"].items()) m.erase("seconds");
  return r;
}

TEST(ServeExplain, ClapMethodsGiveTheRecordOfAsdcapExplain) {
  const std::string model = golden_model_path(true);
  TempDir tmp;
  // Scored by the acoustic backend, explained with every method of explain and the tiny model.
  ServeProcess s(tmp / "data", {"--explain", "all", "--explain-model", model});
  for (int i = 0; i < 6; ++i)
    ASSERT_EQ(s.post_audio("/v1/machines/fan/id_00/references?name=ref" + std::to_string(i) + ".wav",
                           machine_wav(2000 + static_cast<uint32_t>(i), false))
                  .status,
              201);
  auto a = s.post_audio("/v1/machines/fan/id_00/clips?name=whine.wav", machine_wav(31, true));
  ASSERT_EQ(a.status, 201) << a.body;
  ASSERT_EQ(a.json["label"], "anomaly") << a.body;
  const int64_t event_id = a.json["event_id"];
  Json e;
  for (int i = 0; i < 1200; ++i) {
    e = s.get("/v1/events/" + std::to_string(event_id)).json;
    if (e.is_object() && e["explanation_state"] != "pending") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_EQ(e["explanation_state"], "done") << e.dump() << s.log();
  const Json& x = e["explanation"];
  EXPECT_EQ(x["method"], "text");  // the first method that answered
  const Json served = x["record"];
  ASSERT_TRUE(served.is_object()) << x.dump();

  // The same clip and neighbours as a run folder (paths from the server's store), explained by
  // `asdcap explain`: one flagged clip, and one unflagged row whose neighbours are every reference,
  // so that explain ranks the evidence against the same reference set as serve does.
  const std::string db = tmp / "data/asdcap.sqlite";
  std::map<int64_t, std::pair<std::string, std::string>> refs;  // id -> (name, path)
  for (const auto& r : query(db, "SELECT id, name, audio_path FROM refs ORDER BY id"))
    refs[std::stoll(r[0])] = {r[1], r[2]};
  ASSERT_EQ(refs.size(), 6u);
  const auto ev = query(db, "SELECT audio_path FROM events WHERE id = " + std::to_string(event_id));
  ASSERT_EQ(ev.size(), 1u);
  ScoredClip flagged;
  flagged.file = "whine.wav";
  flagged.path = ev[0][0];
  flagged.machine = "fan";
  flagged.id = "id_00";
  flagged.label = "anomaly";
  flagged.score = e["score"];
  flagged.threshold = e["threshold"];
  flagged.decision = 1;
  for (const auto& n : e["neighbors"]) {
    const auto& [name, path] = refs.at(n["reference_id"].get<int64_t>());
    flagged.neighbors.push_back({name, path, n["distance"].get<double>()});
  }
  ASSERT_EQ(flagged.neighbors.size(), 4u);
  ScoredClip pool = flagged;
  pool.file = "pool.wav";
  pool.decision = 0;
  pool.neighbors.clear();
  for (const auto& [id, r] : refs) pool.neighbors.push_back({r.first, r.second, 1.0});
  const std::string run = tmp / "run";
  RunSettings settings;
  settings.data_root = tmp / "data";
  settings.backend = "acoustic";
  settings.k = 4;
  settings.crop = "random";
  settings.cache_key = "random@content-sha256";
  settings.channels = "mean";
  settings.machines = {"fan"};
  settings.created = "2026-12-04T00:00:00Z";
  fs::create_directories(run);
  publish_detection_run(run, settings, {}, {flagged, pool}, {});
  const auto cli = run_cli(
      {"explain", "--out", run, "--model", model, "--method", "all", "--top", "1", "--threads", "2", "--quiet"});
  ASSERT_EQ(cli.code, 0) << cli.err;
  std::ifstream in(run + "/explanations.jsonl");
  std::string line;
  ASSERT_TRUE(std::getline(in, line));
  const Json explained = Json::parse(line);

  // Both have captions of the clip and its 4 neighbours, and the similarities to the 8 texts...
  const Json& captions = served["captions"];
  ASSERT_TRUE(captions["anomalous"].is_string()) << captions.dump();
  EXPECT_EQ(captions["anomalous"].get<std::string>().rfind("Sounds like", 0), 0u);
  EXPECT_EQ(captions["neighbors"].size(), 4u);
  ASSERT_TRUE(served["similarity"]["anomalous"].is_array()) << served["similarity"].dump();
  EXPECT_EQ(served["similarity"]["anomalous"].size(), 8u);
  EXPECT_EQ(served["similarity"]["neighbors"].size(), 4u);
  for (const char* method : {"text", "zeroshot", "combined", "acoustic"})
    EXPECT_TRUE(served["methods"][method]["answer"].is_string()) << method << ": " << served["methods"][method];
  // ...and are the same record, answers and prompts included.
  EXPECT_EQ(without_timings(served), without_timings(explained))
      << "serve:   " << without_timings(served).dump() << "\nexplain: " << without_timings(explained).dump();
  EXPECT_EQ(x["text"], served["methods"]["text"]["answer"]);
}

TEST(ServeExplain, MethodWithoutItsModelIsRefusedAtStart) {
  TempDir tmp;
  for (const char* method : {"text", "zeroshot", "combined", "all", "acoustic,zeroshot"}) {
    const auto r = run_cli({"serve", "--data", tmp / "d", "--listen", "127.0.0.1:0", "--explain", method});
    EXPECT_EQ(r.code, 2) << method << ": " << r.err;
    EXPECT_NE(r.err.find("--explain-model"), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;  // one line
    EXPECT_FALSE(fs::exists(tmp / "d")) << method;                        // nothing written
  }
  // The text method needs the captioner: a CLAP-only model is refused, naming what it lacks.
  const auto no_captioner = run_cli({"serve", "--data", tmp / "d", "--listen", "127.0.0.1:0", "--explain", "text",
                                     "--explain-model", golden_model_path(false)});
  EXPECT_EQ(no_captioner.code, 2) << no_captioner.err;
  EXPECT_NE(no_captioner.err.find("captioner"), std::string::npos) << no_captioner.err;
  EXPECT_FALSE(fs::exists(tmp / "d"));  // refused before the data folder is made
  // An unknown method is a usage error too.
  EXPECT_EQ(run_cli({"serve", "--data", tmp / "d", "--listen", "127.0.0.1:0", "--explain", "gibberish"}).code, 2);
}

}  // namespace
}  // namespace asdcap::test
