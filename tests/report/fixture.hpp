// A small hand-made run folder for the report tests: three machine IDs, short WAV clips, and the
// JSON/CSV files detect and explain write, including skipped files, a clip without captions and a
// clip whose audio has disappeared.
#pragma once
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace asdcap::test {

inline void write_wav16(const std::string& path, const std::vector<float>& x, int rate) {
  std::ofstream f(path, std::ios::binary);
  auto u32 = [&](uint32_t v) { f.write(reinterpret_cast<const char*>(&v), 4); };
  auto u16 = [&](uint16_t v) { f.write(reinterpret_cast<const char*>(&v), 2); };
  f.write("RIFF", 4), u32(uint32_t(36 + x.size() * 2)), f.write("WAVEfmt ", 8);
  u32(16), u16(1), u16(1), u32(uint32_t(rate)), u32(uint32_t(rate * 2)), u16(2), u16(16);
  f.write("data", 4), u32(uint32_t(x.size() * 2));
  for (float v : x) u16(static_cast<uint16_t>(static_cast<int16_t>(std::lround(v * 32000))));
}

// A hum at `hz` with a little deterministic noise; `knock` adds periodic clicks.
inline std::vector<float> tone(double hz, double seconds, int rate, bool knock, uint32_t seed) {
  std::vector<float> x(static_cast<size_t>(seconds * rate));
  uint32_t s = seed * 2654435761u + 1;
  for (size_t i = 0; i < x.size(); ++i) {
    s = s * 1664525u + 1013904223u;
    double noise = (double(s >> 8) / double(1u << 24) - 0.5) * 0.05;
    double v = 0.3 * std::sin(2 * M_PI * hz * double(i) / rate) + noise;
    if (knock && (i % (rate / 4)) < 200) v += 0.5 * std::sin(2 * M_PI * 3000 * double(i) / rate);
    x[i] = static_cast<float>(std::clamp(v, -1.0, 1.0));
  }
  return x;
}

struct FixtureRun {
  std::string dir, data;
  int n_ids = 3;       // machine IDs in results.csv
  int n_machines = 2;  // machine types (each gets an "average" row) + 1 "overall"
  int n_explained = 3;
};

inline FixtureRun make_fixture_run(const std::string& root) {
  namespace fs = std::filesystem;
  using nlohmann::json;
  FixtureRun f;
  fs::remove_all(root);
  f.dir = root + "/run";
  f.data = root + "/data";
  fs::create_directories(f.dir);
  const int rate = 16000;
  struct Id {
    std::string machine, id;
    double hz;
  };
  const std::vector<Id> ids = {{"fan", "id_00", 220}, {"fan", "id_02", 330}, {"pump", "id_00", 110}};
  std::ofstream neighbors(f.dir + "/neighbors.jsonl");
  std::vector<json> test_clips;
  for (const auto& m : ids) {
    const std::string folder = f.data + "/" + m.machine;
    fs::create_directories(folder + "/train");
    fs::create_directories(folder + "/test");
    std::vector<std::string> train;
    for (int i = 0; i < 4; ++i) {
      std::string file = m.machine + "/train/normal_" + m.id + "_0000000" + std::to_string(i) + ".wav";
      write_wav16(f.data + "/" + file, tone(m.hz, 1.0, rate, false, uint32_t(i)), rate);
      train.push_back(file);
    }
    for (int i = 0; i < 6; ++i) {
      const bool anomaly = i >= 3;
      std::string file =
          m.machine + "/test/" + (anomaly ? "anomaly_" : "normal_") + m.id + "_0000001" + std::to_string(i) + ".wav";
      write_wav16(f.data + "/" + file, tone(m.hz, 1.0, rate, anomaly, uint32_t(10 + i)), rate);
      const double score = anomaly ? 2.0 + 0.4 * i : 1.0 + 0.3 * i;
      json nb = json::array();
      for (int k = 0; k < 2; ++k)
        nb.push_back({{"file", train[size_t(k)]},
                      {"path", f.data + "/" + train[size_t(k)]},
                      {"distance", score - 0.1 + 0.05 * k}});
      json line = {{"file", file},         {"path", f.data + "/" + file},
                   {"machine", m.machine}, {"id", m.id},
                   {"split", "test"},      {"label", anomaly ? "anomaly" : "normal"},
                   {"domain", nullptr},    {"score", score},
                   {"threshold", 2.2},     {"decision", score > 2.2 ? 1 : 0},
                   {"neighbors", nb}};
      neighbors << line.dump() << "\n";
      if (anomaly && i == 5) test_clips.push_back(line);
    }
  }
  neighbors.close();
  std::ofstream(f.dir + "/results.csv") << "machine,id,auc,pauc,threshold,threshold_rule,n_normal,n_anomaly\n"
                                           "fan,id_00,0.9125,0.7431,2.2,roc_closest,3,3\n"
                                           "fan,id_02,0.5550,0.5,2.2,roc_closest,3,3\n"
                                           "fan,average,0.73375,0.62155,,,6,6\n"
                                           "pump,id_00,1.0,1.0,2.2,roc_closest,3,3\n"
                                           "pump,average,1.0,1.0,,,3,3\n"
                                           "overall,all,0.8225,0.7477,,,9,9\n";
  std::ofstream(f.dir + "/run.json") << json{
      {"asdcap_version", "0.1.0"},
      {"data_root", f.data},
      {"backend", "acoustic"},
      {"k", 2},
      {"created", "2026-11-23T14:00:00Z"}}.dump();
  std::ofstream(f.dir + "/skipped.jsonl") << json{{"path", f.data + "/fan/test/anomaly_id_00_broken.wav"},
                                                  {"stage", "detect"},
                                                  {"reason", "not a sound file: the RIFF header is truncated"}}
                                                 .dump()
                                          << "\n"
                                          << json{{"path", f.data + "/pump/test/anomaly_id_00_00000015.wav"},
                                                  {"stage", "explain"},
                                                  {"reason", "LLM server timed out after 60 s"}}
                                                 .dump()
                                          << "\n";

  // Explanation 1: complete. 2: no captions, no similarities, a method that failed. 3: audio deleted.
  std::ofstream ex(f.dir + "/explanations.jsonl");
  const json texts = {"Low-frequency humming", "Popping and knocking sounds", "Vibration"};
  for (size_t n = 0; n < test_clips.size(); ++n) {
    json e = test_clips[n];
    e.erase("split"), e.erase("decision"), e.erase("domain");
    if (n == 0) {
      e["captions"] = {{"anomalous", "Sounds like a fan with a knocking noise"},
                       {"neighbors", {"Sounds like a fan running", "Sounds like a steady fan"}},
                       {"missing_reason", nullptr}};
      e["similarity"] = {{"texts", texts},
                         {"anomalous", {0.12, 0.31, 0.05}},
                         {"neighbors", {{0.2, 0.1, 0.04}, {0.22, 0.08, 0.06}}},
                         {"missing_reason", nullptr}};
      e["evidence"] = {{"features",
                        {{{"key", "impulse_rate"},
                          {"name", "Knocks per second"},
                          {"unit", "per second"},
                          {"anomalous", 4.0},
                          {"neighbors", {0.0, 0.1}},
                          {"z", 8.5}},
                         {{"key", "low_db"},
                          {"name", "Low-frequency level"},
                          {"unit", "dB"},
                          {"anomalous", -20.0},
                          {"neighbors", {-19.5, -20.5}},
                          {"z", 0.1}},
                         {{"key", "crackle_db"},
                          {"name", "Crackle"},
                          {"unit", "dB"},
                          {"anomalous", 2.5},
                          {"neighbors", {0.7, 0.8}},
                          {"z", 6.0},
                          {"strength", 6.0},
                          {"times", {0.3, 0.6}}}}}};
      e["methods"] = {{"text",
                       {{"prompt", "p"},
                        {"answer", "This sound is knocking, unlike the steady normal fan."},
                        {"backend", "offline"},
                        {"model", nullptr},
                        {"error", nullptr},
                        {"seconds", 0.01}}},
                      {"combined",
                       {{"prompt", "p"},
                        {"answer", "This sound is a fan with added knocks."},
                        {"backend", "offline"},
                        {"model", nullptr},
                        {"error", nullptr},
                        {"seconds", 0.01}}}};
    } else {
      e["captions"] = {{"anomalous", nullptr},
                       {"neighbors", {nullptr, nullptr}},
                       {"missing_reason", "the model file has no caption decoder (clapcap)"}};
      e["similarity"] = {{"texts", json::array()},
                         {"anomalous", json::array()},
                         {"neighbors", json::array()},
                         {"missing_reason", "the acoustic backend has no text encoder"}};
      e["evidence"] = {{"features", json::array()}};
      e["methods"] = {{"text",
                       {{"prompt", nullptr},
                        {"answer", nullptr},
                        {"backend", "openai"},
                        {"model", "gpt-4"},
                        {"error", "connection refused by localhost:8080"},
                        {"seconds", 0.0}}}};
    }
    ex << e.dump() << "\n";
  }
  ex.close();
  // The third explained clip's audio has been deleted since the run.
  fs::remove(test_clips[2]["path"].get<std::string>());
  return f;
}

}  // namespace asdcap::test
