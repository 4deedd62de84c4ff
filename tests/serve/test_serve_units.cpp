// The service's small parts: machine names, watched paths, the token comparison, the metrics
// registry's text format, the standardisation shared with detection, and the explainer's bounded
// cache of reference evidence.
#include <gtest/gtest.h>

#include <sqlite3.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "asdcap/backend.hpp"
#include "audio/wav_encode.hpp"
#include "detect/standardise.hpp"
#include "serve/explainer_worker.hpp"
#include "serve/http_api.hpp"
#include "serve/http_error.hpp"
#include "serve/metrics.hpp"
#include "serve/service.hpp"
#include "serve/store.hpp"
#include "serve/watch.hpp"
#include "support/golden_model.hpp"

namespace asdcap::serve {
namespace {

TEST(ServeNames, MachineNamesCannotEscapeTheDataFolder) {
  for (const char* ok : {"fan", "id_00", "Pump-3", "a", "x.y", "0abc"}) EXPECT_TRUE(valid_machine_name(ok)) << ok;
  for (const char* bad : {"", "..", ".", ".hidden", "a/b", "a\\b", "-x", "_x", "a b", "é", "a\nb", "..%2F"})
    EXPECT_FALSE(valid_machine_name(bad)) << bad;
  EXPECT_TRUE(valid_machine_name(std::string(64, 'a')));
  EXPECT_FALSE(valid_machine_name(std::string(65, 'a')));
}

TEST(ServeWatch, MachineOfAWatchedFile) {
  EXPECT_EQ(watched_machine("fan/id_00/clip.wav"), (MachineKey{"fan", "id_00"}));
  EXPECT_EQ(watched_machine("pump/line-3/x.flac"), (MachineKey{"pump", "line-3"}));
  EXPECT_EQ(watched_machine("fan/test/anomaly_id_02_00000001.wav"), (MachineKey{"fan", "id_02"}));
  EXPECT_EQ(watched_machine("fan/train/normal_id_04_00000000.wav"), (MachineKey{"fan", "id_04"}));
  EXPECT_EQ(watched_machine("slider/source_test/section_00_id_06_normal.wav"), (MachineKey{"slider", "id_06"}));
  EXPECT_FALSE(watched_machine("fan/test/clip.wav"));  // a split folder without an id in the name
  EXPECT_FALSE(watched_machine("clip.wav"));
  EXPECT_FALSE(watched_machine("fan/clip.wav"));
  EXPECT_FALSE(watched_machine("a/b/c/clip.wav"));
  EXPECT_FALSE(watched_machine(".x/id_00/clip.wav"));
}

TEST(ServeToken, ComparisonNeedsTheWholeToken) {
  EXPECT_TRUE(secrets_equal("abc123", "abc123"));
  EXPECT_FALSE(secrets_equal("abc12", "abc123"));
  EXPECT_FALSE(secrets_equal("abc1234", "abc123"));
  EXPECT_FALSE(secrets_equal("abc124", "abc123"));
  EXPECT_FALSE(secrets_equal("", ""));  // no token configured: nothing matches
  EXPECT_FALSE(secrets_equal(std::string("abc\0"
                                         "123",
                                         7),
                             "abc"));  // a NUL inside the token
}

TEST(ServeMetrics, PrometheusTextFormat) {
  Metrics m;
  m.declare("jobs_total", "Jobs done.", "counter");
  m.declare("depth", "Queue depth.", "gauge");
  m.declare("latency_seconds", "Latency.", "histogram", {0.1, 1});
  m.add("jobs_total", {{"type", "fan"}, {"id", "a\"b\\c\nd"}});
  m.add("jobs_total", {{"type", "fan"}, {"id", "a\"b\\c\nd"}}, 2);
  m.set("depth", {}, 7);
  m.set("depth", {}, 3);
  m.observe("latency_seconds", {{"route", "/x"}}, 0.05);
  m.observe("latency_seconds", {{"route", "/x"}}, 0.5);
  m.observe("latency_seconds", {{"route", "/x"}}, 0.1);
  m.observe("latency_seconds", {{"route", "/x"}}, 30);
  const std::string expected =
      "# HELP depth Queue depth.\n"
      "# TYPE depth gauge\n"
      "depth 3\n"
      "# HELP jobs_total Jobs done.\n"
      "# TYPE jobs_total counter\n"
      "jobs_total{type=\"fan\",id=\"a\\\"b\\\\c\\nd\"} 3\n"
      "# HELP latency_seconds Latency.\n"
      "# TYPE latency_seconds histogram\n"
      "latency_seconds_bucket{route=\"/x\",le=\"0.1\"} 2\n"
      "latency_seconds_bucket{route=\"/x\",le=\"1\"} 3\n"
      "latency_seconds_bucket{route=\"/x\",le=\"+Inf\"} 4\n"
      "latency_seconds_sum{route=\"/x\"} 30.65\n"
      "latency_seconds_count{route=\"/x\"} 4\n";
  EXPECT_EQ(m.render(), expected);
  EXPECT_THROW(m.add("undeclared", {}), Error);
  m.set("depth", {}, std::nan(""));
  EXPECT_NE(m.render().find("depth NaN\n"), std::string::npos);
}

TEST(ServeStandardise, QueryAppliedWithTheReferencesFit) {
  // Two dimensions: one varying (sd 1 around mean 2), one constant (floored deviation).
  const std::vector<float> refs = {1, 5, 3, 5, 2, 5, 2, 5};
  std::vector<float> fitted = refs, query = {4, 6};
  const auto s = Standardisation::fit(fitted, 4, 2);
  s.apply(fitted, 4);
  s.apply(query, 1);
  const double sd = std::sqrt(0.5);  // population sd of {1, 3, 2, 2}
  EXPECT_NEAR(fitted[0], (1 - 2) / sd, 1e-6);
  EXPECT_NEAR(fitted[1], 0, 1e-6);
  EXPECT_NEAR(query[0], (4 - 2) / sd, 1e-5);
  EXPECT_NEAR(query[1], 1 / std::max(1e-3, 0.1 * sd), 1e-3);  // the floor: a tenth of the median deviation
  // The batch form (detection's) gives the same numbers.
  std::vector<float> r2 = refs, q2 = {4, 6};
  standardise(r2, 4, q2, 1, 2);
  EXPECT_EQ(r2, fitted);
  EXPECT_EQ(q2, query);
}

// The SQLite file is created and migrated on open; a file from a newer asdcap is refused, untouched.
TEST(ServeSqlite, SchemaVersionedAndNewerRefused) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("asdcap_serve_units_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  const std::string path = (dir / "sub" / "db.sqlite").string();
  {
    auto store = open_store("sqlite:" + path);
    EXPECT_EQ(store->schema_version(), 1);
    EXPECT_EQ(store->describe(), "sqlite:" + path);
    store->ensure_machine({"fan", "id_00"});
  }
  EXPECT_EQ(open_store(path)->machines().size(), 1u);  // a bare path is a SQLite file too
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "UPDATE schema_version SET version = 99", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  EXPECT_THROW(open_store("sqlite:" + path), FormatError);
  EXPECT_THROW(open_store("mysql://x/y"), InvalidArgument);
  EXPECT_THROW(open_store(""), InvalidArgument);
  EXPECT_THROW(open_store("sqlite:" + path + "/below-a-file.sqlite"), IoError);
  fs::remove_all(dir);
}

// The acoustic backend under another identity (as after a restart with another model), counting
// the clips it embeds.
class RenamedBackend final : public EmbeddingBackend {
 public:
  explicit RenamedBackend(std::string identity)
      : inner_(make_backend("acoustic", {})), identity_(std::move(identity)) {}
  std::string name() const override { return inner_->name(); }
  std::string identity() const override { return identity_; }
  int dim() const override { return inner_->dim(); }
  int sample_rate() const override { return inner_->sample_rate(); }
  CropPolicy default_crop() const override { return inner_->default_crop(); }
  bool standardise_per_group() const override { return inner_->standardise_per_group(); }
  int distance_order() const override { return inner_->distance_order(); }
  std::vector<float> embed(const std::vector<float>& signal, const CropPolicy& crop) override {
    ++embedded;
    return inner_->embed(signal, crop);
  }
  int embedded = 0;

 private:
  std::unique_ptr<EmbeddingBackend> inner_;
  std::string identity_;
};

TEST(ServeService, ReferencesOfAnotherBackendAreEmbeddedAgainOnce) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("asdcap_serve_reembed_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  const MachineKey fan{"fan", "id_00"};
  std::mt19937 rng(3);
  std::normal_distribution<float> noise(0.0f, 0.1f);
  Metrics metrics;
  metrics.declare("asdcap_machine_threshold", "the machine's threshold", "gauge");
  {
    auto store = open_store("sqlite:" + (dir / "db.sqlite").string());
    RenamedBackend before("before");
    Service service(*store, before, metrics, dir.string(), 2, false);
    for (int i = 0; i < 3; ++i) {
      std::vector<float> x(16000);
      for (auto& v : x) v = noise(rng);
      service.enrol(fan, audio::wav_pcm16(x.data(), x.size(), 16000), "ref" + std::to_string(i) + ".wav", "upload");
    }
    EXPECT_EQ(before.embedded, 3);
  }
  const int64_t generation = open_store("sqlite:" + (dir / "db.sqlite").string())->reference_generation(fan);
  for (int restart = 0; restart < 2; ++restart) {
    auto store = open_store("sqlite:" + (dir / "db.sqlite").string());
    RenamedBackend after("after");
    Service service(*store, after, metrics, dir.string(), 2, false);
    EXPECT_EQ(service.index(fan)->refs.size(), 3u);
    // The first service under the new identity embeds the references once and stores them; the next
    // one finds them embedded.
    EXPECT_EQ(after.embedded, restart == 0 ? 3 : 0) << "restart " << restart;
    for (const auto& r : store->references(fan)) {
      EXPECT_EQ(r.backend_identity, "after");
      EXPECT_EQ(r.embedding.size(), static_cast<size_t>(after.dim()));
    }
    EXPECT_EQ(store->reference_generation(fan), generation);
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace asdcap::serve

namespace asdcap::serve {
namespace {

// A 2-s 16-kHz clip: a 120-Hz hum in noise, with `ticks` short clicks per second.
std::string clip_file(const std::filesystem::path& dir, const std::string& name, unsigned seed, int ticks) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> noise(0.f, 0.02f);
  std::vector<float> x(32000);
  for (size_t i = 0; i < x.size(); ++i) x[i] = 0.1f * std::sin(2 * 3.14159265f * 120.f * i / 16000.f) + noise(rng);
  for (int t = 0; t < 2 * ticks; ++t)
    for (size_t i = 0; i < 40; ++i) x[t * 16000 / ticks + 100 + i] += 0.6f * (i % 2 ? 1.f : -1.f);
  const std::string path = (dir / name).string();
  std::ofstream(path, std::ios::binary) << audio::wav_pcm16(x.data(), x.size(), 16000);
  return path;
}

// A fan with three reference clips (seeds ref_seed..ref_seed + 2, no clicks) and one flagged event
// (seed event_seed, 25 clicks per second) whose neighbours they are, in a fresh SQLite store under a
// temporary folder removed with the value.
struct FlaggedEvent {
  std::filesystem::path dir;
  std::unique_ptr<Store> store;
  EventRecord event;
  ~FlaggedEvent() { std::filesystem::remove_all(dir); }
};

std::unique_ptr<FlaggedEvent> flagged_event(const std::string& tag, unsigned ref_seed, unsigned event_seed) {
  namespace fs = std::filesystem;
  auto f = std::make_unique<FlaggedEvent>();
  f->dir = fs::temp_directory_path() / ("asdcap_serve_" + tag + "_" + std::to_string(::getpid()));
  fs::remove_all(f->dir);
  fs::create_directories(f->dir);
  f->store = open_store("sqlite:" + (f->dir / "db.sqlite").string());
  const MachineKey fan{"fan", "id_00"};
  f->store->ensure_machine(fan);
  nlohmann::json neighbors = nlohmann::json::array();
  for (unsigned i = 0; i < 3; ++i) {
    ReferenceRecord r;
    r.machine = fan;
    r.name = "normal_" + std::to_string(i) + ".wav";
    r.audio_path = clip_file(f->dir, r.name, ref_seed + i, 0);
    r.source = "upload";
    r.backend_identity = "test";
    r.embedding = {0.f, 1.f};
    const int64_t id = f->store->add_reference(r);
    neighbors.push_back({{"name", r.name}, {"distance", 1.0 + i}, {"reference_id", id}});
  }
  EventRecord& e = f->event;
  e.machine = fan;
  e.clip_name = "clicking.wav";
  e.audio_path = clip_file(f->dir, e.clip_name, event_seed, 25);
  e.score = 5, e.threshold = 2, e.label = "anomaly";
  e.neighbors_json = neighbors.dump();
  e.id = f->store->add_event(e).first;
  return f;
}

// Explains `e` twice with room for one reference clip, then once with room for 4096: the bounded
// worker keeps one clip (`cached`), the unbounded one `unbounded_count`, and every explanation's
// `answers` are the same. Returns the first explanation.
template <class Answers>
std::string expect_bounded_like_unbounded(Store& store, const EventRecord& e, ExplainerOptions options,
                                          size_t (ExplainerWorker::*cached)(), const Answers& answers,
                                          size_t unbounded_count) {
  Metrics metrics;
  options.reference_cache_clips = 1;
  ExplainerWorker small(store, metrics, options);
  const std::string a = small.explain(e);
  EXPECT_EQ((small.*cached)(), 1u);
  EXPECT_EQ(answers(small.explain(e)), answers(a));  // the dropped ones measured or computed again: the same
  EXPECT_EQ((small.*cached)(), 1u);
  options.reference_cache_clips = 4096;
  ExplainerWorker large(store, metrics, options);
  EXPECT_EQ(answers(large.explain(e)), answers(a));
  EXPECT_EQ((large.*cached)(), unbounded_count);
  return a;
}

// The references' evidence kept between explanations is bounded: with room for one clip, explaining
// against three references keeps one, and the explanation is the one an unbounded cache gives.
TEST(ServeExplainer, ReferenceEvidenceCacheIsBounded) {
  const auto f = flagged_event("cache", 10, 99);
  // What the explanation says and which measured differences it names (its timings vary).
  const auto answers = [](const std::string& json) {
    const auto j = nlohmann::json::parse(json);
    return j.at("text").get<std::string>() + " | " + j.at("named").dump() + " | " + j.at("evidence").dump();
  };
  ExplainerOptions options;
  options.explain.methods = {"acoustic"};
  const std::string a =
      expect_bounded_like_unbounded(*f->store, f->event, options, &ExplainerWorker::cached_reference_clips, answers, 3);
  EXPECT_NE(answers(a).find("clicks rhythmically about 25 times per second"), std::string::npos) << a;
}

// The references' captions and audio embeddings kept between explanations (CLAP methods, golden tiny
// model) are bounded the same way: with room for one clip, three references leave one remembered,
// and every explanation is the one an unbounded stage gives.
TEST(ServeExplainer, ReferenceCaptionsAndEmbeddingsAreBounded) {
  const auto f = flagged_event("clap_cache", 20, 98);
  const auto answers = [](const std::string& json) {
    const auto j = nlohmann::json::parse(json);
    return j.at("text").get<std::string>() + " | " + j.at("record").at("captions").dump() + " | " +
           j.at("record").at("similarity").dump();
  };
  ExplainerOptions options;
  options.explain.methods = {"text", "zeroshot"};
  options.explain.model_path = golden_model_path(true);
  options.explain.threads = 1;
  // The references, not the explained clip, are remembered.
  expect_bounded_like_unbounded(*f->store, f->event, options, &ExplainerWorker::cached_clap_clips, answers, 3);
}

}  // namespace
}  // namespace asdcap::serve
