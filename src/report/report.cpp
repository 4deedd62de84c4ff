// build_report: read the run, render the spectrograms of the clips shown (each clip once, in
// parallel), write the page atomically.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <tuple>

#include "asdcap/audio.hpp"
#include "asdcap/error.hpp"
#include "core/files.hpp"
#include "core/parallel.hpp"
#include "core/progress.hpp"
#include "page.hpp"
#include "report/png.hpp"

namespace asdcap {
namespace report {
namespace fs = std::filesystem;

namespace {

constexpr double kMaxSpectrogramSeconds = 30.0;  // longer clips are drawn up to here
constexpr double kMaxEmbeddedSeconds = 10.0;
constexpr int kEmbedRate = 16000;

// Centre frequency (Hz, at 44.1 kHz) of each mel band of the filter bank the embeddings use.
std::vector<double> mel_band_centres() {
  const auto& w = builtin_mel_filters();
  const int bins = static_cast<int>(w.size()) / kMelBins;
  std::vector<double> hz(kMelBins, 0.0);
  for (int m = 0; m < kMelBins; ++m) {
    double sw = 0, swf = 0;
    for (int k = 0; k < bins; ++k) {
      const double v = w[static_cast<size_t>(k) * kMelBins + static_cast<size_t>(m)];
      sw += v, swf += v * k * double(kSampleRate) / double(kFftSize);
    }
    hz[size_t(m)] = sw > 0 ? swf / sw : 0;
  }
  return hz;
}

std::string wav16(const std::vector<float>& x, int rate) {
  auto u32 = [](std::string& s, uint32_t v) {
    for (int i = 0; i < 4; ++i) s.push_back(char((v >> (8 * i)) & 255));
  };
  auto u16 = [](std::string& s, uint16_t v) { s.push_back(char(v & 255)), s.push_back(char(v >> 8)); };
  std::string s = "RIFF";
  const uint32_t data = static_cast<uint32_t>(x.size() * 2);
  u32(s, 36 + data);
  s += "WAVEfmt ";
  u32(s, 16), u16(s, 1), u16(s, 1), u32(s, uint32_t(rate)), u32(s, uint32_t(rate) * 2), u16(s, 2), u16(s, 16);
  s += "data";
  u32(s, data);
  for (float v : x)
    u16(s, static_cast<uint16_t>(static_cast<int16_t>(std::lround(std::clamp(v, -1.0f, 1.0f) * 32767.0f))));
  return s;
}

// Relative URL of `path` from the report's folder, percent-encoded.
std::string relative_url(const std::string& dir, const std::string& path) {
  std::error_code ec;
  fs::path rel = fs::relative(fs::absolute(path, ec), fs::absolute(dir, ec), ec);
  std::string p = ec || rel.empty() ? "file://" + fs::absolute(path, ec).generic_string() : rel.generic_string();
  std::string out;
  for (unsigned char c : p) {
    if (std::isalnum(c) || std::strchr("-._~/:", c))
      out += static_cast<char>(c);
    else {
      char b[4];
      std::snprintf(b, sizeof b, "%%%02X", c);
      out += b;
    }
  }
  return out;
}

struct Job {
  std::string path, group;
  std::vector<float> db;
  int frames = 0;
  double seconds = 0;
  std::string wav, error;
};

// `threads`: the log-mel's (serial when clips are rendered in parallel).
void render_job(Job& job, bool embed_audio, int threads) {
  try {
    std::error_code ec;
    if (!fs::exists(job.path, ec)) throw IoError("file not found: " + job.path);
    std::vector<float> x = load_audio_44k(job.path);
    const size_t cap = static_cast<size_t>(kMaxSpectrogramSeconds * kSampleRate);
    if (x.size() > cap) x.resize(cap);
    job.seconds = double(x.size()) / kSampleRate;
    job.db = log_mel(threads, x.data(), static_cast<int64_t>(x.size()));
    job.frames = static_cast<int>(job.db.size() / kMelBins);
    if (embed_audio) {
      x.resize(std::min(x.size(), static_cast<size_t>(kMaxEmbeddedSeconds * kSampleRate)));
      job.wav = wav16(resample(x, kSampleRate, kEmbedRate), kEmbedRate);
    }
  } catch (const std::exception& e) {
    job.error = e.what();
    job.db.clear();
  }
}

std::pair<double, double> db_range(const std::vector<const Job*>& jobs) {
  std::vector<const std::vector<float>*> dbs;
  for (const Job* j : jobs) dbs.push_back(&j->db);
  return spectrogram_db_range(dbs);
}

ExplanationRecord from_scored(const ScoredClip& c) {
  ExplanationRecord e;
  e.file = c.file, e.path = c.path, e.machine = c.machine, e.id = c.id, e.label = c.label;
  e.score = c.score, e.threshold = c.threshold, e.neighbors = c.neighbors;
  e.captions.missing_reason = "explain has not been run";
  return e;
}

}  // namespace

std::string clip_path(const RunData& run, const std::string& file, const std::string& path) {
  if (!path.empty()) return path;
  const std::string root = run.settings ? run.settings->data_root : std::string();
  return root.empty() ? file : (fs::path(root) / file).string();
}

}  // namespace report

std::string build_report(const ReportOptions& options) {
  using namespace report;
  RunData run = load_run(options.out_dir);
  PageInput in;
  in.run = &run;
  in.options = &options;

  // Which clips become figures: explained ones (highest scores first per machine ID), or without
  // explanations the top flagged clip of each machine ID.
  std::vector<ExplanationRecord> all = run.explanations;
  if (!run.has_explanations) {
    in.figures_are_fallback = true;
    std::map<std::pair<std::string, std::string>, const ScoredClip*> top;
    for (const auto& c : run.clips)
      if (c.decision == 1 && (!top.count({c.machine, c.id}) || c.score > top[{c.machine, c.id}]->score))
        top[{c.machine, c.id}] = &c;
    for (const auto& [key, c] : top) all.push_back(from_scored(*c));
  }
  std::stable_sort(all.begin(), all.end(), [](const ExplanationRecord& a, const ExplanationRecord& b) {
    return std::tie(a.machine, a.id) != std::tie(b.machine, b.id)
               ? std::tie(a.machine, a.id) < std::tie(b.machine, b.id)
               : a.score > b.score;
  });
  const size_t limit = static_cast<size_t>(std::max(0, options.max_figures));
  if (all.size() > limit) {
    // Keep the highest-scoring clips overall, shown in machine ID order.
    std::vector<size_t> idx(all.size());
    for (size_t i = 0; i < idx.size(); ++i) idx[i] = i;
    std::stable_sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return all[a].score > all[b].score; });
    std::vector<bool> keep(all.size(), false);
    for (size_t i = 0; i < limit; ++i) keep[idx[i]] = true;
    for (size_t i = 0; i < all.size(); ++i) (keep[i] ? in.figures : in.not_drawn).push_back(std::move(all[i]));
  } else {
    in.figures = std::move(all);
  }

  // One render job per distinct clip.
  std::vector<Job> jobs;
  std::map<std::string, size_t> job_of;
  auto want = [&](const std::string& file, const std::string& path, const std::string& group) {
    const std::string p = clip_path(run, file, path);
    if (p.empty() || job_of.count(p)) return;
    job_of[p] = jobs.size();
    jobs.push_back({p, group, {}, 0, 0, {}, {}});
  };
  for (const auto& e : in.figures) {
    want(e.file, e.path, e.machine + "\n" + e.id);
    for (const auto& n : e.neighbors) want(n.file, n.path, e.machine + "\n" + e.id);
  }
  {
    Progress progress("report: clips", static_cast<int64_t>(jobs.size()));
    parallel_for(options.threads, static_cast<int64_t>(jobs.size()), [&](int64_t i) {
      render_job(jobs[static_cast<size_t>(i)], options.embed_audio, options.threads);
      progress.tick();
    });
  }

  // A shared colour scale per machine ID, so clips of one figure are comparable.
  std::map<std::string, std::vector<const Job*>> groups;
  for (const auto& j : jobs) groups[j.group].push_back(&j);
  const std::vector<double> band_hz = jobs.empty() ? std::vector<double>{} : mel_band_centres();
  // Clip path -> times of its short events, marked where the clip has clearly more or stronger
  // short events than its references (ranking strength 2 or more), and likewise of its crackle.
  std::map<std::string, std::vector<double>> events;
  for (const auto& e : in.figures)
    for (const auto& f : e.evidence) {
      if (!f.strength || *f.strength < 2.0) continue;
      std::vector<double>& marks = events[clip_path(run, e.file, e.path)];
      if (f.key == "burst_rate" || f.key == "burst_db")
        marks.insert(marks.end(), e.burst_times.begin(), e.burst_times.end());
      if (f.key == "crackle_db") marks.insert(marks.end(), f.times.begin(), f.times.end());
    }
  for (auto& [path, marks] : events) {
    std::sort(marks.begin(), marks.end());
    marks.erase(std::unique(marks.begin(), marks.end()), marks.end());
  }
  for (const auto& [group, members] : groups) {
    const auto [lo, hi] = db_range(members);
    for (const Job* j : members) {
      ClipView v;
      if (j->error.empty()) {
        v.panel_html = spectrogram_panel(j->db, j->frames, kMelBins, j->seconds, band_hz, lo, hi,
                                         "log-mel spectrogram of " + fs::path(j->path).filename().string(),
                                         events.count(j->path) ? events[j->path] : std::vector<double>{});
        v.seconds = j->seconds;
      } else {
        v.missing_reason = j->error;
      }
      if (options.embed_audio && !j->wav.empty())
        v.audio_src = data_uri("audio/wav", j->wav);
      else if (!options.embed_audio && j->error.empty())
        v.audio_src = relative_url(options.out_dir, j->path);
      in.views[j->path] = std::move(v);
    }
  }

  const std::string out = (fs::path(options.out_dir) / "report.html").string();
  write_file_atomic(out, render_page(in));
  return out;
}

}  // namespace asdcap
