// run_explain over a run folder of the synthetic dataset: records as docs/explain.md describes them, the offline
// explainer naming the injected fault, the OpenAI back end through a loopback server with
// failures (nothing lost), answer reuse, unreadable clips.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>

#include "asdcap/error.hpp"
#include "asdcap/explain.hpp"
#include "asdcap/run.hpp"
#include "core/files.hpp"
#include "explain_fixture.hpp"
#include "fake_llm_server.hpp"

using namespace asdcap;
using asdcap::test::FakeLlmServer;
namespace fs = std::filesystem;

namespace {

const std::string kKey = "sk-run-test-KEY-9f8e7d6c5b4a";

std::vector<nlohmann::json> read_jsonl(const std::string& path) {
  std::vector<nlohmann::json> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) out.push_back(nlohmann::json::parse(line));
  return out;
}

// The fault families a maintenance engineer would recognise; the explainer's first-named
// difference must belong to the injected fault's family.
const std::map<std::string, std::set<std::string>>& fault_features() {
  static const std::map<std::string, std::set<std::string>> m = {
      {"bearing_whine", {"tone_db"}},
      {"knocking", {"impulse_rate", "impulse_db", "click_strength", "rattle_pct", "burst_rate", "burst_db"}},
      {"rattling", {"impulse_rate", "impulse_db", "click_strength", "rattle_pct", "burst_rate", "burst_db"}},
      {"imbalance", {"vibration_pct", "hum_db", "shaft_db"}},
      {"clogging", {"noise_db", "hum_noise_db"}},  // the flow noise, alone or against the motor hum
      {"dropout", {"dropout_pct", "dropout_count"}},
  };
  return m;
}

// "0.81 2.14": times as the prompts write them (two decimals, space-separated).
std::string times_text(const nlohmann::json& times) {
  std::string s;
  for (const auto& t : times) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2f", t.get<double>());
    if (!s.empty()) s += ' ';
    s += buf;
  }
  return s;
}

// The anomalous clip's line of the acoustic prompt's CSV: the line after the first header.
std::string anomalous_csv_line(const std::string& prompt, const std::string& header_end) {
  const size_t at = prompt.find(header_end + "\n");
  if (at == std::string::npos) return "";
  const size_t from = at + header_end.size() + 1;
  return prompt.substr(from, prompt.find('\n', from) - from);
}

ExplainOptions base_options(const std::string& dir) {
  ExplainOptions o;
  o.out_dir = dir;
  o.all_flagged = true;
  return o;
}

// The top clip of each machine/ID explained through `server`.
ExplainOptions openai_options(const std::string& dir, const FakeLlmServer& server) {
  ExplainOptions o = base_options(dir);
  o.all_flagged = false;
  o.top = 1;
  o.llm = "openai";
  o.llm_options.base_url = server.base_url();
  o.llm_options.api_key = kKey;
  o.llm_options.model = "fake-model";
  o.llm_options.timeout_s = 2;
  return o;
}

}  // namespace

TEST(ExplainRun, AcousticEndToEndWithoutModel) {
  const std::string dir = asdcap::test::fresh_run_dir("e2e");
  ExplainOptions o = base_options(dir);
  o.all_flagged = false;
  o.top = 3;
  o.methods = {"all"};
  const ExplainSummary s = run_explain(o);
  EXPECT_GT(s.n_flagged, 0);
  EXPECT_EQ(s.unavailable.size(), 3u);  // text, zeroshot, combined need a model
  const auto records = read_jsonl(s.explanations_path);
  ASSERT_EQ(static_cast<int>(records.size()), s.n_explained);
  std::map<std::string, int> per_id;
  int crackles = 0;  // records whose crackle moments have times
  for (const auto& r : records) {
    ++per_id[r["machine"].get<std::string>() + "/" + r["id"].get<std::string>()];
    for (const char* key : {"file", "path", "machine", "id", "score", "threshold", "label", "neighbors", "captions",
                            "similarity", "evidence", "methods", "timings"})
      EXPECT_TRUE(r.contains(key)) << key;
    EXPECT_EQ(r["neighbors"].size(), 4u);
    EXPECT_GE(r["score"].get<double>(), r["threshold"].get<double>());
    EXPECT_TRUE(r["captions"]["anomalous"].is_null());
    EXPECT_NE(r["captions"]["missing_reason"].get<std::string>().find("no model"), std::string::npos);
    EXPECT_NE(r["similarity"]["missing_reason"].get<std::string>().find("no model"), std::string::npos);
    EXPECT_EQ(r["similarity"]["texts"].size(), 8u);
    const auto& features = r["evidence"]["features"];
    ASSERT_FALSE(features.empty());
    for (const auto& f : features) {
      for (const char* key : {"key", "name", "unit", "anomalous", "neighbors", "z"})
        EXPECT_TRUE(f.contains(key)) << key;
      EXPECT_EQ(f["neighbors"].size(), 4u);
    }
    for (const char* m : {"text", "zeroshot", "combined"}) {
      EXPECT_TRUE(r["methods"][m]["answer"].is_null());
      EXPECT_TRUE(r["methods"][m]["missing_reason"].is_string());
    }
    const auto& ac = r["methods"]["acoustic"];
    EXPECT_EQ(ac["backend"], "offline");
    EXPECT_TRUE(ac["error"].is_null());
    EXPECT_EQ(ac["answer"].get<std::string>().rfind("This sound is", 0), 0u);
    EXPECT_NE(ac["prompt"].get<std::string>().find("The measured acoustic features of the anomalous sound of " +
                                                   r["machine"].get<std::string>()),
              std::string::npos);
    // The CSV ends with the times of the clip's short events, then those of its crackle moments in
    // the band it is compared in: the same as the record's.
    nlohmann::json crackle_times = nlohmann::json::array();
    for (const auto& f : features)
      if (f["key"] == "crackle_db" && f.contains("times")) crackle_times = f["times"];
    crackles += crackle_times.empty() ? 0 : 1;
    const std::string line = anomalous_csv_line(
        ac["prompt"], "Times of those short events (s), Times of the crackle moments in that band (s),");
    const std::string tail = ", " + times_text(r["evidence"]["burst_times"]) + ", " + times_text(crackle_times) + ",";
    ASSERT_GE(line.size(), tail.size()) << ac["prompt"];
    EXPECT_EQ(line.substr(line.size() - tail.size()), tail);
  }
  EXPECT_GT(crackles, 0);
  for (const auto& [id, n] : per_id) EXPECT_LE(n, 3) << id;
  EXPECT_FALSE(fs::exists(fs::path(dir) / "explanations.partial.jsonl"));
  fs::remove_all(dir);
}

TEST(ExplainRun, OfflineExplainerNamesTheInjectedFault) {
  const std::string dir = asdcap::test::fresh_run_dir("faults");
  const auto faults = asdcap::test::fixture_faults();
  const ExplainSummary s = run_explain(base_options(dir));
  int total = 0, first_right = 0, any_right = 0;
  std::map<std::string, std::pair<int, int>> per_fault;
  for (const auto& r : read_jsonl(s.explanations_path)) {
    auto it = faults.find(r["file"].get<std::string>());
    ASSERT_NE(it, faults.end()) << r["file"];
    if (it->second == "none") continue;  // a normal clip flagged by mistake: nothing to name
    const auto& expected = fault_features().at(it->second);
    const auto& named = r["methods"]["acoustic"]["named"];
    ++total;
    ++per_fault[it->second].second;
    if (!named.empty() && expected.count(named[0].get<std::string>())) {
      ++first_right;
      ++per_fault[it->second].first;
    }
    for (const auto& n : named) {
      if (expected.count(n.get<std::string>())) {
        ++any_right;
        break;
      }
    }
    if (std::getenv("ASDCAP_EXPLAIN_VERBOSE"))
      std::printf("%-9s %-14s %s\n", r["machine"].get<std::string>().c_str(), it->second.c_str(),
                  r["methods"]["acoustic"]["answer"].get<std::string>().c_str());
  }
  for (const auto& [fault, counts] : per_fault)
    std::printf("fault %-14s first-named right %d/%d\n", fault.c_str(), counts.first, counts.second);
  std::printf("flagged faulty clips: %d, fault named first: %d (%.0f%%), named at all: %d (%.0f%%)\n", total,
              first_right, 100.0 * first_right / std::max(total, 1), any_right, 100.0 * any_right / std::max(total, 1));
  ASSERT_GE(total, 30);
  EXPECT_GE(first_right, 0.75 * total);  // measured: 64 of 80 (80 %)
  fs::remove_all(dir);
}

// --machine-parts reaches the offline explainer: the fixture's explanations suggest causes by
// the machines' names (a blocked flow, an unbalanced rotor); declared without parts, none does.
TEST(ExplainRun, DeclaredMachinePartsReachTheExplanations) {
  const std::string dir = asdcap::test::fresh_run_dir("parts");
  ExplainOptions o = base_options(dir);
  const auto causes = [&] {
    const ExplainSummary s = run_explain(o);
    int n = 0;
    for (const auto& r : read_jsonl(s.explanations_path)) {
      const std::string answer = r["methods"]["acoustic"]["answer"].get<std::string>();
      for (const char* cause : {"as from", "as when", "as if", "flow"})
        if (answer.find(cause) != std::string::npos) {
          ++n;
          break;
        }
      o.machine_parts[r["machine"].get<std::string>()] = MachineParts{false, false, false};
    }
    return n;
  };
  EXPECT_GT(causes(), 0);
  EXPECT_EQ(causes(), 0);
  fs::remove_all(dir);
}

TEST(ExplainRun, OpenAiBackendFailuresLoseNothing) {
  const std::string dir = asdcap::test::fresh_run_dir("openai");
  // Request 1: malformed JSON; 2: 429 then (3) fine; 4: 500 until retries run out (4, 5); then fine.
  FakeLlmServer server([](const httplib::Request&, httplib::Response& res, int call, FakeLlmServer&) {
    if (call == 1) {
      res.set_content("{\"choices\": [", "application/json");
    } else if (call == 2) {
      res.status = 429;
      res.set_header("Retry-After", "0");
    } else if (call == 4 || call == 5) {
      res.status = 500;
    } else {
      res.set_content(FakeLlmServer::completion("This sound is answer " + std::to_string(call) + "."),
                      "application/json");
    }
  });
  ExplainOptions o = openai_options(dir, server);
  o.llm_options.max_retries = 1;
  o.llm_options.backoff_s = 0.001;
  const ExplainSummary s = run_explain(o);
  const auto records = read_jsonl(s.explanations_path);
  ASSERT_GE(records.size(), 4u);
  ASSERT_EQ(static_cast<int>(records.size()), s.n_explained);
  EXPECT_EQ(s.n_errors, 2);
  EXPECT_EQ(s.n_llm_requests, static_cast<int>(records.size()));  // one per record (retries not counted)
  EXPECT_NE(s.first_llm_error.find("malformed"), std::string::npos);
  EXPECT_EQ(s.first_llm_error.find(kKey), std::string::npos);
  const auto reqs = server.requests();
  EXPECT_EQ(reqs.size(), records.size() + 2);  // one 429 retry, one 500 retry
  // Record 0: malformed; 1: answered on the retry after 429; 2: 500 twice; the rest answered.
  EXPECT_NE(records[0]["methods"]["acoustic"]["error"].get<std::string>().find("malformed"), std::string::npos);
  EXPECT_TRUE(records[0]["methods"]["acoustic"]["answer"].is_null());
  EXPECT_EQ(records[1]["methods"]["acoustic"]["answer"], "This sound is answer 3.");
  EXPECT_EQ(records[1]["methods"]["acoustic"]["attempts"], 2);
  EXPECT_NE(records[2]["methods"]["acoustic"]["error"].get<std::string>().find("HTTP 500"), std::string::npos);
  for (size_t i = 3; i < records.size(); ++i)
    EXPECT_EQ(records[i]["methods"]["acoustic"]["answer"], "This sound is answer " + std::to_string(i + 3) + ".");
  // Every prompt the server saw is the one recorded, byte for byte.
  std::set<std::string> recorded;
  for (const auto& r : records) {
    EXPECT_EQ(r["methods"]["acoustic"]["backend"], "openai");
    EXPECT_EQ(r["methods"]["acoustic"]["model"], "fake-model");
    recorded.insert(r["methods"]["acoustic"]["prompt"].get<std::string>());
  }
  for (const auto& q : reqs) {
    EXPECT_EQ(q.authorization, "Bearer " + kKey);
    EXPECT_TRUE(recorded.count(nlohmann::json::parse(q.body)["messages"][0]["content"].get<std::string>()));
  }
  // The key is in no output file.
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.is_regular_file() && e.path().extension() != ".sqlite") {
      EXPECT_EQ(read_text_file(e.path().string()).find(kKey), std::string::npos) << e.path();
    }
  }

  // A second run asks again only for what failed; earlier answers are reused.
  const ExplainSummary again = run_explain(o);
  EXPECT_EQ(again.n_reused, static_cast<int>(records.size()) - 2);
  EXPECT_EQ(server.requests().size(), reqs.size() + 2);
  EXPECT_EQ(again.n_errors, 0);
  EXPECT_EQ(again.n_llm_requests, 2);

  // An interrupted run leaves its partial file, the last append cut short: the next run reuses
  // every complete record's answer from it and asks again only for the cut one.
  const std::string final_path = (fs::path(dir) / "explanations.jsonl").string();
  std::string text = read_text_file(final_path);
  fs::remove(final_path);
  text.resize(text.size() - 30);
  write_file_atomic((fs::path(dir) / "explanations.partial.jsonl").string(), text);
  const size_t requests_before = server.requests().size();
  const ExplainSummary resumed = run_explain(o);
  EXPECT_EQ(resumed.n_reused, static_cast<int>(records.size()) - 1);
  EXPECT_EQ(resumed.n_llm_requests, 1);
  EXPECT_EQ(server.requests().size(), requests_before + 1);
  EXPECT_EQ(read_jsonl(final_path).size(), records.size());
  EXPECT_FALSE(fs::exists(fs::path(dir) / "explanations.partial.jsonl"));
  fs::remove_all(dir);
}

// The CLI: when every LLM request fails (nothing listens on the port), explain still writes every
// record with its error, but exits 1 with one line naming the failure and where the records are.
TEST(ExplainRun, CliExitsOneWhenEveryLlmRequestFails) {
  const std::string dir = asdcap::test::fresh_run_dir("cli-unreachable");
  const std::string cmd = "ASDCAP_NO_PROGRESS=1 OPENAI_API_KEY=" + kKey + " OPENAI_BASE_URL=http://127.0.0.1:9/v1 '" +
                          std::string(ASDCAP_CLI) + "' explain --out '" + dir +
                          "' --llm openai --llm-model m --llm-retries 0 --llm-timeout 2 --top 1 "
                          "--quiet >'" +
                          dir + "/stdout.txt' 2>'" + dir + "/stderr.txt'";
  const int status = std::system(cmd.c_str());
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 1);
  const std::string err = read_text_file(dir + "/stderr.txt");
  EXPECT_NE(err.find("asdcap: error: explain: all "), std::string::npos) << err;
  EXPECT_NE(err.find("LLM requests failed"), std::string::npos) << err;
  EXPECT_EQ(err.find(kKey), std::string::npos);
  const auto records = read_jsonl(dir + "/explanations.jsonl");
  ASSERT_FALSE(records.empty());
  for (const auto& r : records) EXPECT_TRUE(r["methods"]["acoustic"]["error"].is_string());
  fs::remove_all(dir);
}

TEST(ExplainRun, UnreadableClipIsSkippedAndListed) {
  const std::string dir = asdcap::test::fresh_run_dir("skip");
  // Point the first flagged clip of neighbors.jsonl at a broken copy.
  const std::string broken = (fs::path(dir) / "broken.wav").string();
  write_file_atomic(broken, std::string("RIFF\x10\x00\x00\x00WAVEjunk", 16));
  const std::string npath = (fs::path(dir) / "neighbors.jsonl").string();
  std::vector<nlohmann::json> rows = read_jsonl(npath);
  std::string target;
  for (auto& r : rows) {
    if (r["decision"] == 1 && target.empty()) {
      target = r["path"];
      r["path"] = broken;
    }
  }
  ASSERT_FALSE(target.empty());
  std::string text;
  for (const auto& r : rows) text += r.dump() + "\n";
  text += "{not json\n";  // a damaged line is ignored, not fatal
  write_file_atomic(npath, text);
  const ExplainSummary s = run_explain(base_options(dir));
  EXPECT_EQ(s.n_skipped, 1);
  bool listed = false;
  for (const auto& j : read_jsonl((fs::path(dir) / "skipped.jsonl").string()))
    if (j["path"] == broken && j["stage"] == "explain") listed = true;
  EXPECT_TRUE(listed);
  EXPECT_EQ(s.n_explained + s.n_skipped, s.n_flagged);
  // Running again does not duplicate the explain lines.
  run_explain(base_options(dir));
  int count = 0;
  for (const auto& j : read_jsonl((fs::path(dir) / "skipped.jsonl").string()))
    if (j["stage"] == "explain") ++count;
  EXPECT_EQ(count, 1);
  fs::remove_all(dir);
}

TEST(ExplainRun, OptionErrors) {
  const std::string dir = asdcap::test::fresh_run_dir("errors");
  ExplainOptions o = base_options(dir);
  o.methods = {"texts"};
  EXPECT_THROW(run_explain(o), InvalidArgument);
  o = base_options(dir);
  o.llm = "gpt";
  EXPECT_THROW(run_explain(o), InvalidArgument);
  o = base_options(dir);
  o.llm = "openai";  // no model name
  try {
    run_explain(o);
    ADD_FAILURE();
  } catch (const InvalidArgument& e) {
    EXPECT_EQ(std::string(e.what()).find("--"), std::string::npos) << e.what();  // names no flag
  }
  EXPECT_EQ(parse_methods("all"), (std::vector<std::string>{"text", "zeroshot", "combined", "acoustic"}));
  EXPECT_EQ(parse_methods("acoustic,text"), (std::vector<std::string>{"acoustic", "text"}));
  fs::remove_all(dir);
}

// explain explains a run: without detection results it says to run detection first.
TEST(ExplainRun, WithoutDetectionResultsFailsAndSaysWhatToRun) {
  const fs::path dir = fs::temp_directory_path() / ("asdcap-explain-nodetect-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  ExplainOptions o;
  o.out_dir = dir.string();
  o.data_root = asdcap::test::fixture_data_root();
  try {
    run_explain(o);
    FAIL() << "explain ran without detection results";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("has no detection results"), std::string::npos) << what;
    EXPECT_NE(what.find("run `asdcap detect` on it first, or `asdcap demo`"), std::string::npos) << what;
  }
  EXPECT_FALSE(fs::exists(dir / "results.csv"));
  EXPECT_FALSE(fs::exists(dir / "explanations.jsonl"));
  fs::remove_all(dir);
}

// While detect (or another explain) writes the folder, explain fails at once.
TEST(ExplainRun, SecondWriterFailsAtOnce) {
  const std::string dir = asdcap::test::fresh_run_dir("locked");
  const RunLock held(dir);
  EXPECT_THROW(run_explain(base_options(dir)), IoError);
  EXPECT_FALSE(fs::exists(fs::path(dir) / "explanations.jsonl"));
  fs::remove_all(dir);
}

// A run folder written by asdcap 0.1.0 before schema versions (committed by hand in that format:
// no "schema", the cache key "random@content-sha256" as "crop", clips under a root that no longer
// exists) is explained with the clips found under the dataset's new root.
TEST(ExplainRun, ExplainsASchema1RunFolder) {
  const fs::path dir = fs::temp_directory_path() / ("asdcap-explain-schema1-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::copy(fs::path(ASDCAP_RUN_TEST_DATA) / "schema1-run", dir, fs::copy_options::recursive);
  ExplainOptions o = base_options(dir.string());
  o.data_root = asdcap::test::fixture_data_root();
  const ExplainSummary s = run_explain(o);
  EXPECT_EQ(s.n_flagged, 2);
  EXPECT_EQ(s.n_explained, 2);
  EXPECT_EQ(s.n_skipped, 0);
  const auto records = read_jsonl(s.explanations_path);
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0]["file"], "fan/test/anomaly_id_00_00000000.wav");
  EXPECT_EQ(records[0]["path"], o.data_root + "/fan/test/anomaly_id_00_00000000.wav");
  EXPECT_EQ(records[0]["score"], 40.25);
  EXPECT_EQ(records[0]["neighbors"].size(), 2u);
  EXPECT_EQ(records[0]["schema"], kRunSchema);
  EXPECT_EQ(records[0]["methods"]["acoustic"]["answer"].get<std::string>().rfind("This sound is", 0), 0u);
  // Detection's entry of skipped.jsonl stays.
  std::vector<std::string> problems;
  const auto skipped = read_skipped(dir.string(), &problems);
  ASSERT_EQ(skipped.size(), 1u);
  EXPECT_EQ(skipped[0].stage, "detect");
  fs::remove_all(dir);
}

// Servers report dated model names ("gpt-4o" answered by "gpt-4o-2024-08-06"): a rerun still
// reuses every answer, because reuse is keyed on what asdcap sent; a changed parameter asks again.
TEST(ExplainRun, AnswerReuseIsKeyedOnTheRequestNotTheReportedModel) {
  const std::string dir = asdcap::test::fresh_run_dir("reuse-dated");
  FakeLlmServer server([](const httplib::Request&, httplib::Response& res, int call, FakeLlmServer&) {
    res.set_content(
        FakeLlmServer::completion("This sound is answer " + std::to_string(call) + ".", "fake-model-2024-08-06"),
        "application/json");
  });
  ExplainOptions o = openai_options(dir, server);
  const ExplainSummary first = run_explain(o);
  ASSERT_GT(first.n_llm_requests, 0);
  for (const auto& r : read_jsonl(first.explanations_path)) {
    EXPECT_EQ(r["methods"]["acoustic"]["model"], "fake-model-2024-08-06");
    EXPECT_EQ(r["methods"]["acoustic"]["request"], R"({"max_tokens":1024,"model":"fake-model"})");
  }
  const ExplainSummary again = run_explain(o);
  EXPECT_EQ(again.n_llm_requests, 0);
  EXPECT_EQ(again.n_reused, first.n_llm_requests);
  o.llm_options.temperature = 0.2;
  const ExplainSummary changed = run_explain(o);
  EXPECT_EQ(changed.n_reused, 0);
  EXPECT_EQ(changed.n_llm_requests, first.n_llm_requests);
  fs::remove_all(dir);
}
