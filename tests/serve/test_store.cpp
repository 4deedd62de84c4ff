// Store conformance: the same behaviour from the SQLite store (a temporary file) and the PostgreSQL
// store (ASDCAP_TEST_POSTGRES_URL, each test in its own fresh schema). Without that variable the
// PostgreSQL cases skip, unless ASDCAP_REQUIRE_POSTGRES=1 (CI), where they fail.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <regex>
#include <set>
#include <thread>

#include "asdcap/error.hpp"
#include "pg_test_support.hpp"
#include "serve/store.hpp"

namespace asdcap::serve {
namespace {

namespace fs = std::filesystem;
using test::PgSchema;
using test::unique_name;

class StoreTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "sqlite") {
      dir_ = fs::temp_directory_path() / unique_name("asdcap_store_");
      fs::create_directories(dir_);
      url_ = "sqlite:" + (dir_ / "db.sqlite").string();
    } else {
      const std::string base = test::postgres_test_url();
      if (base.empty()) {
        if (test::postgres_required()) FAIL() << "ASDCAP_REQUIRE_POSTGRES=1 but ASDCAP_TEST_POSTGRES_URL is not set";
        GTEST_SKIP() << "no PostgreSQL server: set ASDCAP_TEST_POSTGRES_URL (scripts/pg_throwaway.sh start)";
      }
      schema_ = std::make_unique<PgSchema>(base);
      ASSERT_EQ(schema_->error(), "") << "cannot create a test schema at " << base;
      url_ = schema_->url();
    }
    store_ = open_store(url_);
  }
  void TearDown() override {
    store_.reset();
    schema_.reset();
    if (!dir_.empty()) {
      std::error_code ec;
      fs::remove_all(dir_, ec);
    }
  }

  // Sets the stored schema version behind the store's back.
  void set_stored_version(int v) {
    const std::string sql = "UPDATE schema_version SET version = " + std::to_string(v);
    if (GetParam() == "sqlite") {
      sqlite3* db = nullptr;
      ASSERT_EQ(sqlite3_open((dir_ / "db.sqlite").string().c_str(), &db), SQLITE_OK);
      EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
      sqlite3_close(db);
    } else {
      ASSERT_EQ(test::pg_run(url_, sql), "");
    }
  }

  static EventRecord event(const MachineKey& m, double score, const std::string& label, const std::string& key = "",
                           const std::string& explanation = "") {
    EventRecord e;
    e.machine = m;
    e.clip_name = "clip_" + std::to_string(score) + ".wav";
    e.audio_path = "/data/" + e.clip_name;
    e.score = score;
    e.threshold = 0.5;
    e.label = label;
    e.neighbors_json = R"([{"name":"a","distance":0.25,"reference_id":1}])";
    e.idempotency_key = key;
    e.explanation_state = explanation;
    return e;
  }
  static ReferenceRecord reference(const MachineKey& m, const std::string& name, std::vector<float> emb = {1, 2, 3}) {
    ReferenceRecord r;
    r.machine = m;
    r.name = name;
    r.audio_path = "/data/" + name;
    r.source = "upload";
    r.backend_identity = "acoustic v1";
    r.embedding = std::move(emb);
    return r;
  }

  std::string url_;
  std::unique_ptr<PgSchema> schema_;
  fs::path dir_;
  std::unique_ptr<Store> store_;
};

const std::regex kIso(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z)");
const MachineKey kFan{"fan", "id_00"}, kPump{"pump", "id_02"};

TEST_P(StoreTest, SchemaVersionIsCurrentAndStable) {
  const int v = store_->schema_version();
  EXPECT_GE(v, 1);
  store_.reset();
  store_ = open_store(url_);  // reopening migrates nothing and keeps the data
  EXPECT_EQ(store_->schema_version(), v);
  EXPECT_EQ(store_->describe().find("password"), std::string::npos);
}

TEST_P(StoreTest, NewerSchemaIsAFormatError) {
  const int v = store_->schema_version();
  store_.reset();
  set_stored_version(v + 1);
  EXPECT_THROW(open_store(url_), FormatError);
}

TEST_P(StoreTest, MachinesAndTheirSummaries) {
  store_->ensure_machine(kPump);
  store_->ensure_machine(kFan);
  store_->ensure_machine(kFan);
  auto ms = store_->machines();
  ASSERT_EQ(ms.size(), 2u);
  EXPECT_EQ(ms[0].machine, kFan);  // ordered by type, id
  EXPECT_EQ(ms[1].machine, kPump);
  EXPECT_EQ(ms[0].n_events, 0);
  EXPECT_FALSE(ms[0].last_score.has_value());

  store_->add_reference(reference(kFan, "r1.wav"));
  store_->add_event(event(kFan, 0.25, "normal"));
  store_->add_event(event(kFan, 0.75, "anomaly"));
  const auto acked = store_->add_event(event(kFan, 0.875, "anomaly")).first;
  store_->acknowledge(acked);
  store_->add_event(event(kFan, 0.125, "normal"));
  ms = store_->machines();
  ASSERT_EQ(ms.size(), 2u);
  EXPECT_EQ(ms[0].n_references, 1);
  EXPECT_EQ(ms[0].n_events, 4);
  EXPECT_EQ(ms[0].n_anomalies, 2);
  EXPECT_EQ(ms[0].n_unacknowledged_anomalies, 1);
  ASSERT_TRUE(ms[0].last_score.has_value());
  EXPECT_EQ(*ms[0].last_score, 0.125);
  ASSERT_TRUE(ms[0].last_threshold.has_value());
  EXPECT_EQ(*ms[0].last_threshold, 0.5);
  EXPECT_EQ(ms[0].last_label, "normal");
  EXPECT_TRUE(std::regex_match(ms[0].last_event_at, kIso)) << ms[0].last_event_at;
  EXPECT_EQ(ms[1].n_events, 0);
}

TEST_P(StoreTest, ReferencesRoundTripBitExact) {
  std::vector<float> emb = {0.0f, -0.0f, 1.0f / 3.0f, 1e-42f /* subnormal */, -3.4e38f, 123456.789f};
  emb.push_back(std::numeric_limits<float>::infinity());
  for (int i = 0; i < 500; ++i) emb.push_back(std::sin(static_cast<float>(i)) * 1e-3f);
  const int64_t g0 = store_->reference_generation(kFan);
  const int64_t a = store_->add_reference(reference(kFan, "a.wav", emb));
  const int64_t g1 = store_->reference_generation(kFan);
  const int64_t b = store_->add_reference(reference(kFan, "b.wav", {-1.5f}));
  const int64_t g2 = store_->reference_generation(kFan);
  EXPECT_GT(g1, g0);
  EXPECT_GT(g2, g1);
  EXPECT_GT(b, a);
  EXPECT_EQ(store_->reference_generation(kPump), store_->reference_generation(kPump));
  const auto refs = store_->references(kFan);
  ASSERT_EQ(refs.size(), 2u);
  EXPECT_EQ(refs[0].id, a);
  EXPECT_EQ(refs[0].name, "a.wav");
  EXPECT_EQ(refs[0].audio_path, "/data/a.wav");
  EXPECT_EQ(refs[0].source, "upload");
  EXPECT_EQ(refs[0].backend_identity, "acoustic v1");
  EXPECT_EQ(refs[0].machine, kFan);
  ASSERT_EQ(refs[0].embedding.size(), emb.size());
  EXPECT_EQ(std::memcmp(refs[0].embedding.data(), emb.data(), emb.size() * sizeof(float)), 0);
  EXPECT_TRUE(std::regex_match(refs[0].created_at, kIso)) << refs[0].created_at;
  EXPECT_EQ(refs[1].embedding, std::vector<float>{-1.5f});
  EXPECT_TRUE(store_->references(kPump).empty());
}

TEST_P(StoreTest, UpdateEmbeddingKeepsTheGenerationAndAcceptsAnEmptyOne) {
  const int64_t a = store_->add_reference(reference(kFan, "a.wav", {1, 2, 3}));
  const int64_t b = store_->add_reference(reference(kFan, "b.wav", {4, 5, 6}));
  const int64_t g = store_->reference_generation(kFan);
  EXPECT_TRUE(store_->update_embedding(a, "msclap 2023", {0.5f, -0.25f}));
  EXPECT_EQ(store_->reference_generation(kFan), g);  // the same clips: indexes need not reload for it
  auto refs = store_->references(kFan);
  ASSERT_EQ(refs.size(), 2u);
  EXPECT_EQ(refs[0].backend_identity, "msclap 2023");
  EXPECT_EQ(refs[0].embedding, (std::vector<float>{0.5f, -0.25f}));
  EXPECT_EQ(refs[1].id, b);  // the other reference untouched
  EXPECT_EQ(refs[1].backend_identity, "acoustic v1");
  EXPECT_EQ(refs[1].embedding, (std::vector<float>{4, 5, 6}));
  // An empty embedding is stored as an empty one (not refused as a missing value).
  EXPECT_TRUE(store_->update_embedding(b, "other", {}));
  EXPECT_TRUE(store_->references(kFan)[1].embedding.empty());
  EXPECT_NO_THROW(store_->add_reference(reference(kPump, "empty.wav", {})));
  ASSERT_EQ(store_->references(kPump).size(), 1u);
  EXPECT_TRUE(store_->references(kPump)[0].embedding.empty());
  EXPECT_FALSE(store_->update_embedding(b + 1000, "x", {1}));  // no such reference
}

TEST_P(StoreTest, EventsRoundTripFilterAndPage) {
  EventRecord e = event(kFan, 0.1 + 0.2, "anomaly", "", "pending");
  e.clip_name = "it's \"quoted\"; DROP TABLE events; --.wav";
  e.explanation_json = "";
  const auto [id, inserted] = store_->add_event(e);
  EXPECT_TRUE(inserted);
  const auto got = store_->event(id);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->machine, kFan);
  EXPECT_EQ(got->clip_name, e.clip_name);
  EXPECT_EQ(got->audio_path, e.audio_path);
  EXPECT_EQ(got->score, 0.1 + 0.2);  // the double exactly
  EXPECT_EQ(got->threshold, 0.5);
  EXPECT_EQ(got->label, "anomaly");
  EXPECT_EQ(got->neighbors_json, e.neighbors_json);
  EXPECT_EQ(got->status, "new");
  EXPECT_EQ(got->explanation_state, "pending");
  EXPECT_TRUE(std::regex_match(got->created_at, kIso)) << got->created_at;
  EXPECT_FALSE(store_->event(id + 1000));

  std::vector<int64_t> ids = {id};
  for (int i = 1; i < 10; ++i)
    ids.push_back(store_->add_event(event(i % 2 ? kPump : kFan, i / 10.0, i % 3 ? "normal" : "anomaly")).first);
  auto all = store_->events({});
  ASSERT_EQ(all.size(), 10u);
  for (size_t i = 0; i < all.size(); ++i) EXPECT_EQ(all[i].id, ids[9 - i]);  // newest first

  EventFilter f;
  f.machine = kFan;
  auto fan = store_->events(f);
  EXPECT_EQ(fan.size(), 5u);
  for (const auto& x : fan) EXPECT_EQ(x.machine, kFan);
  f = {};
  f.machine_type = "pump";
  EXPECT_EQ(store_->events(f).size(), 5u);
  f = {};
  f.label = "anomaly";
  EXPECT_EQ(store_->events(f).size(), 4u);  // the first, and i = 3, 6, 9
  store_->acknowledge(ids[3]);
  f = {};
  f.status = "acknowledged";
  ASSERT_EQ(store_->events(f).size(), 1u);
  EXPECT_EQ(store_->events(f)[0].id, ids[3]);

  // Paging: 4 at a time, newest first, below the last seen id.
  std::vector<int64_t> paged;
  f = {};
  f.limit = 4;
  for (;;) {
    const auto page = store_->events(f);
    if (page.empty()) break;
    for (const auto& x : page) paged.push_back(x.id);
    f.before_id = page.back().id;
  }
  EXPECT_EQ(paged, std::vector<int64_t>(ids.rbegin(), ids.rend()));

  // Time window: everything since the first event's time; nothing before it.
  f = {};
  f.since = got->created_at;
  EXPECT_EQ(store_->events(f).size(), 10u);
  f = {};
  f.until = got->created_at;
  EXPECT_EQ(store_->events(f).size(), 0u);
  f = {};
  f.since = "2000-01-01T00:00:00.000000Z";
  f.until = "2000-01-02T00:00:00.000000Z";
  EXPECT_EQ(store_->events(f).size(), 0u);
}

TEST_P(StoreTest, NanThresholdRoundTrips) {
  EventRecord e = event(kFan, 0.5, "normal");
  e.threshold = std::nan("");
  const auto id = store_->add_event(e).first;
  EXPECT_TRUE(std::isnan(store_->event(id)->threshold));
  const auto ms = store_->machines();
  ASSERT_EQ(ms.size(), 1u);
  EXPECT_FALSE(ms[0].last_threshold.has_value());
  EXPECT_EQ(ms[0].last_score, 0.5);
}

TEST_P(StoreTest, IdempotencyKeyIsUniquePerMachine) {
  const auto [a, a_new] = store_->add_event(event(kFan, 0.25, "normal", "key-1", "pending"));
  const auto [b, b_new] = store_->add_event(event(kFan, 0.75, "anomaly", "key-1", "pending"));
  EXPECT_TRUE(a_new);
  EXPECT_FALSE(b_new);
  EXPECT_EQ(a, b);
  EXPECT_EQ(store_->event(a)->score, 0.25);
  EXPECT_EQ(store_->queue_depth(), 1);  // the repeat queued no job
  const auto [c, c_new] = store_->add_event(event(kPump, 0.25, "normal", "key-1"));
  EXPECT_TRUE(c_new);
  EXPECT_NE(c, a);
  // No key: never deduplicated.
  EXPECT_NE(store_->add_event(event(kFan, 0.25, "normal")).first, store_->add_event(event(kFan, 0.25, "normal")).first);
  EXPECT_EQ(store_->events({}).size(), 4u);
}

TEST_P(StoreTest, AcknowledgeAndFalseAlarmAreIdempotent) {
  store_->add_reference(reference(kFan, "r.wav"));
  const auto id = store_->add_event(event(kFan, 0.9, "anomaly")).first;
  EXPECT_FALSE(store_->acknowledge(id + 100));
  EXPECT_TRUE(store_->acknowledge(id));
  EXPECT_TRUE(store_->acknowledge(id));
  EXPECT_EQ(store_->event(id)->status, "acknowledged");

  const int64_t g = store_->reference_generation(kFan);
  auto as_ref = reference(kFan, "clip.wav", {4, 5, 6});
  as_ref.source = "false_alarm";
  EXPECT_FALSE(store_->mark_false_alarm(id + 100, as_ref));
  EXPECT_EQ(store_->references(kFan).size(), 1u);
  EXPECT_TRUE(store_->mark_false_alarm(id, as_ref));
  EXPECT_TRUE(store_->mark_false_alarm(id, as_ref));
  EXPECT_EQ(store_->event(id)->status, "false_alarm");
  const auto refs = store_->references(kFan);
  ASSERT_EQ(refs.size(), 2u);
  EXPECT_EQ(refs[1].source, "false_alarm");
  EXPECT_EQ(refs[1].embedding, (std::vector<float>{4, 5, 6}));
  EXPECT_GT(store_->reference_generation(kFan), g);
}

TEST_P(StoreTest, JobsClaimLeaseExpireFinish) {
  EXPECT_FALSE(store_->claim_job("w", 60));
  const auto e1 = store_->add_event(event(kFan, 0.9, "anomaly", "", "pending")).first;
  const auto e2 = store_->add_event(event(kFan, 0.8, "anomaly", "", "pending")).first;
  store_->add_event(event(kFan, 0.1, "normal"));  // no job
  EXPECT_EQ(store_->queue_depth(), 2);

  const auto j1 = store_->claim_job("w1", 60);
  ASSERT_TRUE(j1);
  EXPECT_EQ(j1->event_id, e1);  // oldest first
  EXPECT_EQ(j1->attempts, 1);
  const auto j2 = store_->claim_job("w2", 0);  // a lease that is over at once
  ASSERT_TRUE(j2);
  EXPECT_EQ(j2->event_id, e2);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  // j1 is leased; j2's lease expired (its worker died): claimable again, one more attempt.
  const auto j2b = store_->claim_job("w3", 60);
  ASSERT_TRUE(j2b);
  EXPECT_EQ(j2b->id, j2->id);
  EXPECT_EQ(j2b->attempts, 2);
  EXPECT_FALSE(store_->claim_job("w4", 60));

  store_->finish_job(*j1, true, R"({"method":"acoustic","text":"t"})");
  store_->finish_job(*j2b, false, R"({"error":"boom"})");
  EXPECT_EQ(store_->queue_depth(), 0);
  EXPECT_EQ(store_->event(e1)->explanation_state, "done");
  EXPECT_EQ(store_->event(e1)->explanation_json, R"({"method":"acoustic","text":"t"})");
  EXPECT_EQ(store_->event(e2)->explanation_state, "failed");
  EXPECT_EQ(store_->event(e2)->explanation_json, R"({"error":"boom"})");
  EXPECT_FALSE(store_->claim_job("w", 60));
}

TEST_P(StoreTest, ConcurrentClaimersNeverShareAJob) {
  constexpr int kJobs = 60, kWorkers = 4;
  for (int i = 0; i < kJobs; ++i) store_->add_event(event(kFan, i, "anomaly", "", "pending"));
  std::vector<std::vector<Job>> got(kWorkers);
  std::vector<std::string> errors(kWorkers);
  std::vector<std::thread> threads;
  for (int w = 0; w < kWorkers; ++w)
    threads.emplace_back([&, w] {
      try {
        auto own = open_store(url_);  // each worker its own store, as separate processes would
        const std::string worker = "worker " + std::to_string(w);
        while (auto j = own->claim_job(worker, 600)) {
          got[w].push_back(*j);
          own->finish_job(*j, true, "{}");
        }
      } catch (const std::exception& ex) {
        errors[w] = ex.what();
      }
    });
  for (auto& t : threads) t.join();
  std::set<int64_t> jobs, events;
  size_t total = 0;
  for (int w = 0; w < kWorkers; ++w) {
    EXPECT_EQ(errors[w], "");
    for (const auto& j : got[w]) {
      jobs.insert(j.id);
      events.insert(j.event_id);
      EXPECT_EQ(j.attempts, 1);
    }
    total += got[w].size();
  }
  EXPECT_EQ(total, static_cast<size_t>(kJobs));
  EXPECT_EQ(jobs.size(), static_cast<size_t>(kJobs));
  EXPECT_EQ(events.size(), static_cast<size_t>(kJobs));
  EXPECT_EQ(store_->queue_depth(), 0);
}

TEST_P(StoreTest, ConcurrentIdempotentSubmissionsMakeOneEvent) {
  constexpr int kThreads = 4, kKeys = 25;
  std::vector<std::string> errors(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      try {
        auto own = open_store(url_);
        for (int k = 0; k < kKeys; ++k) {
          std::string key = "key ";
          key += std::to_string(k);
          own->add_event(event(kFan, t, "normal", key, "pending"));
        }
      } catch (const std::exception& ex) {
        errors[t] = ex.what();
      }
    });
  for (auto& t : threads) t.join();
  for (const auto& e : errors) EXPECT_EQ(e, "");
  EventFilter f;
  f.limit = 1000;
  EXPECT_EQ(store_->events(f).size(), static_cast<size_t>(kKeys));
  EXPECT_EQ(store_->queue_depth(), kKeys);
}

TEST_P(StoreTest, StoresOpeningTogetherMigrateOnce) {
  // A second, empty database (SQLite: another file; PostgreSQL: the next fresh schema) opened by
  // several stores at once, as servers starting together would.
  std::string url = url_;
  std::unique_ptr<PgSchema> other;
  if (GetParam() == "sqlite") {
    url = "sqlite:" + (dir_ / "together.sqlite").string();
  } else {
    other = std::make_unique<PgSchema>(test::postgres_test_url());
    ASSERT_EQ(other->error(), "");
    url = other->url();
  }
  constexpr int kOpeners = 4;
  std::vector<std::string> errors(kOpeners);
  std::vector<int> versions(kOpeners, -1);
  std::vector<std::thread> threads;
  for (int i = 0; i < kOpeners; ++i)
    threads.emplace_back([&, i] {
      try {
        auto s = open_store(url);
        versions[i] = s->schema_version();
        s->ensure_machine(kFan);
      } catch (const std::exception& ex) {
        errors[i] = ex.what();
      }
    });
  for (auto& t : threads) t.join();
  for (int i = 0; i < kOpeners; ++i) {
    EXPECT_EQ(errors[i], "");
    EXPECT_EQ(versions[i], store_->schema_version());
  }
  EXPECT_EQ(open_store(url)->machines().size(), 1u);
}

TEST_P(StoreTest, ReconnectsAfterABrokenConnection) {
  if (GetParam() != "postgres") GTEST_SKIP() << "a PostgreSQL connection only";
  // The store's own connections are recognisable by their application name.
  const std::string app = unique_name("asdcap_test_app_");
  auto s = open_store(url_ + "&application_name=" + app);
  s->add_event(event(kFan, 0.5, "normal"));
  ASSERT_EQ(test::pg_run(
                url_, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '" + app + "'"),
            "");
  EXPECT_EQ(s->events({}).size(), 1u);  // on a new connection
  s->add_event(event(kFan, 0.25, "normal"));
  EXPECT_EQ(s->events({}).size(), 2u);
}

INSTANTIATE_TEST_SUITE_P(Stores, StoreTest, ::testing::Values("sqlite", "postgres"),
                         [](const auto& p) { return p.param; });

TEST(PostgresStore, BadUrlIsAnIoErrorWithoutThePassword) {
  for (const std::string url : {"postgresql://alice:s3cretpw@/nodb?host=/nonexistent-asdcap-dir",
                                "postgres://alice@/nodb?host=/nonexistent-asdcap-dir&password=s3cretpw"}) {
    try {
      open_store(url);
      ADD_FAILURE() << "no error for " << url;
    } catch (const IoError& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("alice"), std::string::npos) << what;
      EXPECT_NE(what.find("nodb"), std::string::npos) << what;
      EXPECT_EQ(what.find("s3cretpw"), std::string::npos) << what;
    }
  }
}

}  // namespace
}  // namespace asdcap::serve
