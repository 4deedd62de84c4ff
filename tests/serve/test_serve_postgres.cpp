// A fleet: two real `asdcap serve` processes on one PostgreSQL database (ASDCAP_TEST_POSTGRES_URL,
// a fresh schema). Clips submitted to either server from several client threads all end up stored
// exactly once, and each flagged clip's explanation is made exactly once, by one of the servers.
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <mutex>
#include <regex>
#include <set>
#include <thread>

#include "pg_test_support.hpp"
#include "serve_process.hpp"

namespace asdcap::test {
namespace {

using Clock = std::chrono::steady_clock;

// Sum of a Prometheus counter's samples whose line starts with `prefix`.
double metric_sum(const ServeProcess& s, const std::string& prefix) {
  const auto r = s.get("/metrics");
  EXPECT_EQ(r.status, 200);
  double sum = 0;
  size_t pos = 0;
  while (pos < r.body.size()) {
    size_t end = r.body.find('\n', pos);
    if (end == std::string::npos) end = r.body.size();
    const std::string line = r.body.substr(pos, end - pos);
    if (line.rfind(prefix, 0) == 0) sum += std::stod(line.substr(line.rfind(' ') + 1));
    pos = end + 1;
  }
  return sum;
}

TEST(ServePostgres, TwoServersOneDatabaseNothingLostOrDoubled) {
  const std::string base = postgres_test_url();
  if (base.empty()) {
    if (postgres_required()) FAIL() << "ASDCAP_REQUIRE_POSTGRES=1 but ASDCAP_TEST_POSTGRES_URL is not set";
    GTEST_SKIP() << "no PostgreSQL server: set ASDCAP_TEST_POSTGRES_URL (scripts/pg_throwaway.sh start)";
  }
  PgSchema schema(base);
  ASSERT_EQ(schema.error(), "");
  TempDir tmp;
  write_bytes(tmp / "token", "fleet-token\n");
  const std::vector<std::string> common = {"--store",   schema.url(), "--token-file",    tmp / "token",
                                           "--explain", "acoustic",   "--explain-lease", "30"};
  ServeProcess a(tmp / "a", common), b(tmp / "b", common);
  const std::vector<const ServeProcess*> servers = {&a, &b};

  // References enrolled on a; b scores against them too (its index follows the store).
  const std::vector<std::string> machines = {"fan/id_00", "fan/id_02"};
  for (const auto& m : machines)
    for (int i = 0; i < 4; ++i) {
      auto r = a.post_audio("/v1/machines/" + m + "/references?name=ref" + std::to_string(i),
                            machine_wav(100 + static_cast<uint32_t>(i), false, 1.0));
      ASSERT_EQ(r.status, 201) << r.body;
    }

  // A few distinct 1 s clips, reused; one in 25 from a faulty fan.
  std::vector<std::string> normal, faulty;
  for (uint32_t i = 0; i < 8; ++i) normal.push_back(machine_wav(2000 + i, false, 1.0));
  for (uint32_t i = 0; i < 2; ++i) faulty.push_back(machine_wav(3000 + i, true, 1.0));

  constexpr int kClips = 1000, kClients = 4;
  std::mutex mu;
  std::map<std::string, int64_t> acknowledged;  // idempotency key -> event id
  std::vector<std::string> failures;
  std::vector<std::thread> clients;
  for (int t = 0; t < kClients; ++t)
    clients.emplace_back([&, t] {
      std::vector<std::unique_ptr<httplib::Client>> conns;
      for (const auto* s : servers) conns.push_back(s->client());
      for (int i = t; i < kClips; i += kClients) {
        std::string key = "clip-";
        key += std::to_string(i);
        const std::string& wav = i % 25 == 0 ? faulty[static_cast<size_t>(i / 25) % faulty.size()]
                                             : normal[static_cast<size_t>(i) % normal.size()];
        auto r = conns[static_cast<size_t>(i) % 2]->Post(
            "/v1/machines/" + machines[static_cast<size_t>(i / 2) % 2] + "/clips",
            {{"Authorization", "Bearer fleet-token"}, {"Idempotency-Key", key}}, wav, "audio/wav");
        std::lock_guard lock(mu);
        if (r && r->status == 201)
          acknowledged[key] = nlohmann::json::parse(r->body)["event_id"].get<int64_t>();
        else
          failures.push_back(key + ": " + (r ? std::to_string(r->status) + " " + r->body : std::string("no reply")));
      }
    });
  for (auto& c : clients) c.join();
  EXPECT_TRUE(failures.empty()) << failures.size() << " failed, e.g. " << failures.front();
  ASSERT_EQ(acknowledged.size(), static_cast<size_t>(kClips));

  // The same key again, at the other server: the same event, nothing new.
  for (int i = 0; i < 20; ++i) {
    const std::string key = "clip-" + std::to_string(i * 37);
    auto r = servers[static_cast<size_t>(i * 37 + 1) % 2]->post_audio(
        "/v1/machines/" + machines[static_cast<size_t>(i * 37 / 2) % 2] + "/clips", normal[0],
        {{"Idempotency-Key", key}});
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.json["event_id"], acknowledged[key]) << key;
  }

  // Every acknowledged event exactly once, seen the same from either server (paged, newest first).
  std::set<int64_t> expected;
  for (const auto& [key, id] : acknowledged) expected.insert(id);
  std::vector<int64_t> anomalies;
  for (const auto* s : servers) {
    std::multiset<int64_t> seen;
    std::string query = "/v1/events?limit=300";
    for (;;) {
      auto r = s->get(query);
      ASSERT_EQ(r.status, 200) << r.body;
      const auto& page = r.json["events"];
      if (page.empty()) break;
      for (const auto& e : page) {
        seen.insert(e["event_id"].get<int64_t>());
        if (s == &a && e["label"] == "anomaly") anomalies.push_back(e["event_id"].get<int64_t>());
      }
      query = "/v1/events?limit=300&before=" + std::to_string(page.back()["event_id"].get<int64_t>());
    }
    EXPECT_EQ(seen.size(), expected.size());
    EXPECT_EQ(std::set<int64_t>(seen.begin(), seen.end()), expected);
  }
  ASSERT_FALSE(anomalies.empty());

  // Each flagged clip explained once: all done, and both servers together made exactly that many.
  const auto deadline = Clock::now() + std::chrono::seconds(60);
  size_t done = 0;
  for (const int64_t id : anomalies) {
    nlohmann::json e;
    while (Clock::now() < deadline) {
      e = b.get("/v1/events/" + std::to_string(id)).json;
      if (e.is_object() && e["explanation_state"] != "pending") break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    EXPECT_EQ(e["explanation_state"], "done") << e.dump();
    done += e["explanation_state"] == "done";
  }
  const double made = metric_sum(a, "asdcap_explanations_total") + metric_sum(b, "asdcap_explanations_total");
  EXPECT_EQ(made, static_cast<double>(anomalies.size()));
  EXPECT_EQ(done, anomalies.size());
}

}  // namespace
}  // namespace asdcap::test
