// The papers' CLAP-based methods end to end with the golden tiny model (random weights, so the
// captions are gibberish, but every path runs): "Sounds like" captions, similarities to the 8
// reference texts, prompts built from exactly what the record holds, answers from the offline
// explainer and from a loopback OpenAI-compatible server.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "asdcap/caption.hpp"
#include "asdcap/explain.hpp"
#include "asdcap/model_file.hpp"
#include "asdcap/prompts.hpp"
#include "asdcap/run.hpp"
#include "core/files.hpp"
#include "explain_fixture.hpp"
#include "fake_llm_server.hpp"
#include "support/golden_model.hpp"

using namespace asdcap;
using asdcap::test::FakeLlmServer;
namespace fs = std::filesystem;

namespace {

std::vector<nlohmann::json> read_jsonl(const std::string& path) {
  std::vector<nlohmann::json> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) out.push_back(nlohmann::json::parse(line));
  return out;
}

std::vector<std::vector<double>> matrix(const nlohmann::json& j) { return j.get<std::vector<std::vector<double>>>(); }

// A run folder reduced to one machine/ID (one flagged clip with --top 1), to keep the tiny
// model's work small.
std::string one_id_run_dir(const std::string& name) {
  const std::string dir = asdcap::test::fresh_run_dir(name);
  const std::string path = dir + "/neighbors.jsonl";
  std::string kept;
  for (const auto& r : read_jsonl(path))
    if (r["machine"] == "valve" && r["id"] == "id_00") kept += r.dump() + "\n";
  std::ofstream(path, std::ios::trunc) << kept;
  return dir;
}

}  // namespace

TEST(ExplainClap, AllFourMethodsWithTheGoldenModel) {
  const std::string model = golden_model_path(true);
  const std::string dir = one_id_run_dir("clap");
  FakeLlmServer server([](const httplib::Request&, httplib::Response& res, int call, FakeLlmServer&) {
    res.set_content(FakeLlmServer::completion("This sound is reply " + std::to_string(call) + "."), "application/json");
  });
  ExplainOptions o;
  o.out_dir = dir;
  o.model_path = model;
  o.top = 1;
  o.llm = "openai";
  o.llm_options.base_url = server.base_url();
  o.llm_options.model = "fake-model";
  o.combined_evidence = true;
  const ExplainSummary s = run_explain(o);
  EXPECT_TRUE(s.unavailable.empty());
  EXPECT_EQ(s.methods, (std::vector<std::string>{"text", "zeroshot", "combined", "acoustic"}));
  const auto records = read_jsonl(s.explanations_path);
  ASSERT_EQ(records.size(), 1u);
  const PromptTemplates t = PromptTemplates::defaults();
  std::vector<std::string> sent;
  for (const auto& q : server.requests()) sent.push_back(nlohmann::json::parse(q.body)["messages"][0]["content"]);
  ASSERT_EQ(sent.size(), 4 * records.size());
  size_t next = 0;
  for (const auto& r : records) {
    const auto& cap = r["captions"];
    ASSERT_TRUE(cap["anomalous"].is_string()) << cap.dump();
    EXPECT_EQ(cap["anomalous"].get<std::string>().rfind("Sounds like", 0), 0u) << cap["anomalous"];
    ASSERT_EQ(cap["neighbors"].size(), 4u);
    const auto normal_captions = cap["neighbors"].get<std::vector<std::string>>();
    for (const auto& c : normal_captions) EXPECT_EQ(c.rfind("Sounds like", 0), 0u) << c;

    const auto& sim = r["similarity"];
    ASSERT_TRUE(sim["missing_reason"].is_null()) << sim["missing_reason"];
    const auto texts = sim["texts"].get<std::vector<std::string>>();
    EXPECT_EQ(texts, default_reference_texts());
    const auto a = sim["anomalous"].get<std::vector<double>>();
    const auto n = matrix(sim["neighbors"]);
    ASSERT_EQ(a.size(), 8u);
    ASSERT_EQ(n.size(), 4u);
    for (double v : a) EXPECT_LE(std::fabs(v), 1.0 + 1e-6);

    const std::string machine = r["machine"];
    const auto& m = r["methods"];
    EXPECT_EQ(m["text"]["prompt"], build_text_prompt(t, machine, cap["anomalous"], normal_captions));
    EXPECT_EQ(m["zeroshot"]["prompt"], build_zeroshot_prompt(t, machine, texts, a, n));
    EXPECT_NE(
        m["combined"]["prompt"].get<std::string>().find("caption, Vibration, High-frequency Squealing or Screeching"),
        std::string::npos);
    for (const char* method : {"text", "zeroshot", "combined", "acoustic"}) {
      EXPECT_EQ(m[method]["prompt"], sent[next]) << method;  // sent byte for byte, in method order
      EXPECT_EQ(m[method]["answer"], "This sound is reply " + std::to_string(++next) + ".");
    }
  }

  // The offline explainer on the same folder: every method answers "This sound is ...".
  o.llm = "offline";
  for (const auto& r : read_jsonl(run_explain(o).explanations_path))
    for (const char* method : {"text", "zeroshot", "combined", "acoustic"})
      EXPECT_EQ(r["methods"][method]["answer"].get<std::string>().rfind("This sound is", 0), 0u) << method;
  fs::remove_all(dir);
}

TEST(ExplainClap, ClapOnlyModelHasNoCaptions) {
  const std::string model = golden_model_path(false);
  const std::string dir = one_id_run_dir("claponly");
  ExplainOptions o;
  o.out_dir = dir;
  o.model_path = model;
  o.top = 1;
  o.methods = {"all"};
  const ExplainSummary s = run_explain(o);
  EXPECT_EQ(s.unavailable.count("text"), 1u);
  EXPECT_EQ(s.unavailable.count("combined"), 1u);
  EXPECT_EQ(s.unavailable.count("zeroshot"), 0u);
  for (const auto& r : read_jsonl(s.explanations_path)) {
    EXPECT_TRUE(r["methods"]["text"]["answer"].is_null());
    EXPECT_TRUE(r["methods"]["text"]["missing_reason"].is_string());
    EXPECT_TRUE(r["methods"]["zeroshot"]["answer"].is_string());
  }
  fs::remove_all(dir);
}

// Captions are computed in batches across clips (the clip's files, then those of the clips after it);
// each must equal the one-at-a-time caption of that file (Captioner::caption_signal, which the caption
// golden tests check against msclap), whatever batch it fell into.
TEST(ExplainClap, BatchedCaptionsEqualOneAtATime) {
  const std::string model = golden_model_path(true);
  const std::string dir = one_id_run_dir("batched");
  ExplainOptions o;
  o.out_dir = dir;
  o.model_path = model;
  o.methods = {"text"};
  o.top = 3;
  const ExplainSummary s = run_explain(o);
  const auto records = read_jsonl(s.explanations_path);
  ASSERT_GE(records.size(), 3u);  // several clips, so batches span clips

  const RunSettings run = read_run_settings(dir);
  const CropPolicy crop = CropPolicy::parse(run.crop);
  Captioner captioner(ModelFile::open(model));
  CaptionOptions opts;
  opts.prompt = o.caption_prompt;
  std::map<std::string, std::string> alone;
  auto one_at_a_time = [&](const std::string& path) {
    auto it = alone.find(path);
    if (it != alone.end()) return it->second;
    const ClipCrop c = resolve_clip_crop(crop, sha256_file(path));
    return alone[path] = captioner.caption_signal(load_audio_44k(path), c.policy, opts).caption;
  };
  for (const auto& r : records) {
    const auto& cap = r["captions"];
    ASSERT_TRUE(cap["anomalous"].is_string()) << cap.dump();
    EXPECT_EQ(cap["anomalous"].get<std::string>(), one_at_a_time(r["path"].get<std::string>())) << r["path"];
    ASSERT_EQ(cap["neighbors"].size(), r["neighbors"].size());
    for (size_t i = 0; i < r["neighbors"].size(); ++i) {
      const std::string path = r["neighbors"][i]["path"];
      EXPECT_EQ(cap["neighbors"][i].get<std::string>(), one_at_a_time(path)) << path;
    }
  }
  EXPECT_GT(alone.size(), 5u);  // more files than one clip has: the first batch held later clips' files
  fs::remove_all(dir);
}
