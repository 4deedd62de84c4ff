// run_explain: the flagged clips of a run folder -> explanations.jsonl.
#include "asdcap/explain.hpp"

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <set>

#include "asdcap/error.hpp"
#include "asdcap/evidence.hpp"
#include "asdcap/files.hpp"
#include "asdcap/progress.hpp"
#include "clap_methods.hpp"
#include "core/parallel.hpp"
#include "run_inputs.hpp"
#if ASDCAP_EXPLAIN_HAVE_DETECT
#include "asdcap/detect.hpp"
#endif

namespace asdcap {

namespace fs = std::filesystem;
using nlohmann::ordered_json;
using namespace explain_detail;

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

const std::vector<std::string> kAllMethods = {"text", "zeroshot", "combined", "acoustic"};

bool needs_captions(const std::string& m) { return m == "text" || m == "combined"; }
bool needs_similarity(const std::string& m) { return m == "zeroshot" || m == "combined"; }

struct EvidenceResult {
  std::optional<ClipEvidence> value;
  std::string error;
};

// Measures every distinct file once, in parallel.
std::map<std::string, EvidenceResult> measure_all(const std::vector<ScoredClip>& clips, int threads) {
  std::vector<std::string> paths;
  std::set<std::string> seen;
  for (const auto& c : clips) {
    if (seen.insert(c.path).second) paths.push_back(c.path);
    for (const auto& n : c.neighbors)
      if (seen.insert(n.path).second) paths.push_back(n.path);
  }
  std::vector<EvidenceResult> results(paths.size());
  parallel_for(threads, static_cast<int64_t>(paths.size()), [&](int64_t i) {
    try {
      results[static_cast<size_t>(i)].value = measure_evidence_file(paths[static_cast<size_t>(i)]);
    } catch (const std::exception& e) {
      results[static_cast<size_t>(i)].error = e.what();
    }
  });
  std::map<std::string, EvidenceResult> out;
  for (size_t i = 0; i < paths.size(); ++i) out[paths[i]] = std::move(results[i]);
  return out;
}

ordered_json evidence_json(const std::vector<EvidenceRow>& rows, const std::vector<bool>& neighbor_ok) {
  ordered_json features = ordered_json::array();
  for (const auto& r : rows) {
    ordered_json nb = ordered_json::array();
    size_t next = 0;
    for (bool ok : neighbor_ok) nb.push_back(ok ? ordered_json(r.neighbors[next++]) : ordered_json());
    features.push_back({{"key", r.spec->key},
                        {"name", r.spec->name},
                        {"unit", r.spec->unit},
                        {"anomalous", r.anomalous},
                        {"neighbors", nb},
                        {"z", r.z ? ordered_json(*r.z) : ordered_json()},
                        {"reference_mean", r.reference_mean}});
  }
  return features;
}

// CSV cells of the evidence table (anomalous row and one row per available neighbour).
struct EvidenceCells {
  std::vector<std::string> headers, anomalous;
  std::vector<std::vector<std::string>> normals;
};
EvidenceCells evidence_cells(const std::vector<EvidenceRow>& rows) {
  EvidenceCells cells;
  const size_t k = rows.empty() ? 0 : rows[0].neighbors.size();
  cells.normals.resize(k);
  for (const auto& r : rows) {
    cells.headers.push_back(feature_header(*r.spec));
    cells.anomalous.push_back(format_feature(*r.spec, r.anomalous));
    for (size_t i = 0; i < k; ++i) cells.normals[i].push_back(format_feature(*r.spec, r.neighbors[i]));
  }
  return cells;
}

void write_jsonl(const std::string& path, const std::vector<ordered_json>& records) {
  write_file_atomic(path, [&](std::FILE* f) {
    for (const auto& r : records) {
      const std::string line = r.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
      if (std::fwrite(line.data(), 1, line.size(), f) != line.size()) throw IoError(path + ": write failed");
    }
  });
}

// skipped.jsonl keeps detection's lines and this run's explain lines (earlier explain lines go).
void update_skipped(const std::string& path, const std::vector<ordered_json>& explain_lines) {
  std::vector<ordered_json> lines;
  std::vector<std::string> raw_kept;
  if (std::ifstream in(path); in) {
    std::string line;
    while (std::getline(in, line)) {
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      try {
        const auto j = nlohmann::json::parse(line);
        if (j.contains("stage") && j["stage"] == "explain") continue;
      } catch (const nlohmann::json::exception&) {
      }
      raw_kept.push_back(line);
    }
  }
  if (raw_kept.empty() && explain_lines.empty() && !fs::exists(path)) return;
  write_file_atomic(path, [&](std::FILE* f) {
    for (const auto& l : raw_kept) std::fprintf(f, "%s\n", l.c_str());
    for (const auto& j : explain_lines) std::fprintf(f, "%s\n", j.dump().c_str());
  });
}

// The answer an earlier run got for exactly this prompt from the same back end and model.
std::optional<ordered_json> reusable_answer(const std::map<std::string, ordered_json>& previous,
                                            const std::string& path, const std::string& method,
                                            const std::string& prompt, const std::string& backend,
                                            const std::string& model) {
  auto it = previous.find(path);
  if (it == previous.end()) return std::nullopt;
  const auto& rec = it->second;
  if (!rec.contains("methods") || !rec["methods"].contains(method)) return std::nullopt;
  const auto& m = rec["methods"][method];
  auto is = [&](const char* key, const std::string& v) { return m.contains(key) && m[key].is_string() && m[key] == v; };
  if (!is("prompt", prompt) || !is("backend", backend) || !is("model", model)) return std::nullopt;
  if (!m.contains("answer") || !m["answer"].is_string() || (m.contains("error") && !m["error"].is_null()))
    return std::nullopt;
  return m;
}

}  // namespace

std::vector<std::string> parse_methods(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find(',', start);
    if (end == std::string::npos) end = text.size();
    const std::string m = text.substr(start, end - start);
    if (m == "all") {
      for (const auto& a : kAllMethods)
        if (std::find(out.begin(), out.end(), a) == out.end()) out.push_back(a);
    } else if (std::find(kAllMethods.begin(), kAllMethods.end(), m) != kAllMethods.end()) {
      if (std::find(out.begin(), out.end(), m) == out.end()) out.push_back(m);
    } else {
      throw UsageError("unknown method \"" + m + "\" (expected text, zeroshot, combined, acoustic or all)");
    }
    start = end + 1;
  }
  return out;
}

ExplainSummary run_explain(const ExplainOptions& o) {
  if (o.out_dir.empty()) throw UsageError("explain: no output folder (--out DIR)");
  if (o.llm != "offline" && o.llm != "openai")
    throw UsageError("explain: unknown LLM back end \"" + o.llm + "\" (expected offline or openai)");
  if (!o.all_flagged && o.top < 1) throw UsageError("explain: --top must be at least 1");
  for (const auto& m : o.methods) parse_methods(m);
  const std::vector<std::string> texts = o.texts.empty() ? default_reference_texts() : o.texts;
  auto log = [&](const std::string& line) {
    if (o.log) o.log(line);
  };

  ExplainSummary summary;
  const fs::path dir(o.out_dir);
  const std::string neighbors_path = (dir / "neighbors.jsonl").string();
  if (!fs::exists(neighbors_path)) {
    if (o.data_root.empty())
      throw UsageError(o.out_dir + " has no detection results (neighbors.jsonl); give --data ROOT to run detection");
#if ASDCAP_EXPLAIN_HAVE_DETECT
    DetectOptions d;
    d.data_root = o.data_root;
    d.out_dir = o.out_dir;
    d.model_path = o.model_path;
    d.backend = !o.detect_backend.empty() ? o.detect_backend : (o.model_path.empty() ? "acoustic" : "msclap");
    d.threads = o.threads;
    log("explain: no detection results in " + o.out_dir + ", running detection (" + d.backend + ")");
    run_detect(d);
    summary.ran_detection = true;
#else
    throw Error("explain: this asdcap was built without detection; run `asdcap detect` first");
#endif
  }
  const RunSettings settings = read_run_settings((dir / "run.json").string());
  std::vector<int> bad_lines;
  const std::vector<ScoredClip> scored = read_neighbors(neighbors_path, &bad_lines);
  if (!bad_lines.empty())
    log("explain: " + std::to_string(bad_lines.size()) + " unreadable line(s) in " + neighbors_path + " ignored");
  std::vector<ScoredClip> chosen = select_flagged(scored, o.all_flagged ? 0 : o.top, &summary.n_flagged);
  // A dataset that moved since detection: find the clips under --data by their relative names.
  const std::string root = !o.data_root.empty() ? o.data_root : settings.data_root;
  auto relocate = [&](std::string& path, const std::string& rel) {
    if (root.empty() || rel.empty() || fs::exists(path)) return;
    const fs::path moved = fs::path(root) / rel;
    if (fs::exists(moved)) path = moved.string();
  };
  for (auto& c : chosen) {
    relocate(c.path, c.file);
    for (auto& n : c.neighbors) relocate(n.path, n.file);
  }

  // Methods and what they need.
  std::vector<std::string> methods;
  for (const auto& m : o.methods)
    for (const auto& x : parse_methods(m))
      if (std::find(methods.begin(), methods.end(), x) == methods.end()) methods.push_back(x);
  if (methods.empty()) methods = o.model_path.empty() ? std::vector<std::string>{"acoustic"} : kAllMethods;
  summary.methods = methods;
  bool want_clap = false;
  for (const auto& m : methods) want_clap |= needs_captions(m) || needs_similarity(m);

  std::unique_ptr<ClapMethods> clap;
  std::string caption_missing, similarity_missing;
  if (want_clap) {
    if (o.model_path.empty()) {
      caption_missing = "no model: captions need CLAP's captioner (--model MODEL)";
      similarity_missing = "no model: similarities need CLAP's audio and text encoders (--model MODEL)";
    } else {
      clap = std::make_unique<ClapMethods>(o.model_path, settings.crop, settings.channels,
                                           (dir / "cache.sqlite").string(), o.threads);
      caption_missing = clap->caption_missing();
      similarity_missing = clap->similarity_missing();
    }
  }
  auto method_missing = [&](const std::string& m) -> std::string {
    if (needs_captions(m) && !caption_missing.empty()) return caption_missing;
    if (needs_similarity(m) && !similarity_missing.empty()) return similarity_missing;
    return "";
  };
  for (const auto& m : methods)
    if (auto why = method_missing(m); !why.empty()) summary.unavailable[m] = why;

  std::unique_ptr<OpenAiClient> client;
  if (o.llm == "openai") {
    if (o.llm_options.model.empty()) throw UsageError("explain: --llm openai needs --llm-model NAME");
    client = std::make_unique<OpenAiClient>(o.llm_options);
  }
  const std::string backend_model = o.llm == "openai" ? o.llm_options.model : "asdcap-offline-1";

  const std::string final_path = (dir / "explanations.jsonl").string();
  const std::string partial_path = (dir / "explanations.partial.jsonl").string();
  const auto previous = o.reuse_answers ? read_previous_records({final_path, partial_path})
                                        : std::map<std::string, ordered_json>{};

  log("explain: " + std::to_string(chosen.size()) + " of " + std::to_string(summary.n_flagged) +
      " flagged clips, methods:" + [&] { std::string s; for (auto& m : methods) s += " " + m; return s; }());
  const auto t_evidence = Clock::now();
  const auto evidence = measure_all(chosen, o.threads);
  const double evidence_seconds = since(t_evidence);

  std::map<std::string, std::pair<std::string, std::string>> caption_memo;  // path -> (caption, error)
  std::map<std::string, std::pair<std::vector<float>, std::string>> embedding_memo;
  std::vector<ordered_json> records, skipped;
  Progress progress("explain", static_cast<int64_t>(chosen.size()));

  for (const auto& clip : chosen) {
    const auto t_clip = Clock::now();
    const EvidenceResult& own = evidence.at(clip.path);
    if (!own.value) {
      skipped.push_back({{"path", clip.path}, {"stage", "explain"}, {"reason", own.error}});
      ++summary.n_skipped;
      log("explain: skipped " + clip.path + ": " + own.error);
      progress.tick();
      continue;
    }
    ordered_json rec;
    rec["file"] = clip.file;
    rec["path"] = clip.path;
    rec["machine"] = clip.machine;
    rec["id"] = clip.id;
    rec["score"] = clip.score;
    rec["threshold"] = clip.threshold;
    rec["label"] = clip.label;
    rec["domain"] = clip.domain;
    rec["neighbors"] = ordered_json::array();
    for (const auto& n : clip.neighbors)
      rec["neighbors"].push_back({{"file", n.file}, {"path", n.path}, {"distance", n.distance}});

    // Acoustic evidence against the neighbours that could be read.
    std::vector<ClipEvidence> refs;
    std::vector<bool> ok;
    ordered_json unreadable = ordered_json::array();
    for (const auto& n : clip.neighbors) {
      const EvidenceResult& r = evidence.at(n.path);
      ok.push_back(r.value.has_value());
      if (r.value) refs.push_back(*r.value);
      else unreadable.push_back({{"path", n.path}, {"reason", r.error}});
    }
    const std::vector<EvidenceRow> rows = compare_evidence(*own.value, refs);
    rec["evidence"] = {{"features", evidence_json(rows, ok)}, {"unreadable_neighbors", unreadable}};

    // Captions ("Sounds like ...") of the clip and its neighbours.
    // Why a record has no captions / similarities when its methods did not need them.
    const std::string not_needed = o.model_path.empty()
                                       ? "no model: captions and similarities need a CLAP model file (--model MODEL)"
                                       : "not needed by the chosen --method";
    bool want_captions = false, want_similarity = false;
    for (const auto& m : methods) {
      want_captions |= needs_captions(m);
      want_similarity |= needs_similarity(m);
    }
    std::optional<std::string> anomalous_caption;
    std::vector<std::string> normal_captions;
    std::string caption_error = caption_missing;
    const auto t_captions = Clock::now();
    if (want_captions && clap && caption_missing.empty()) {
      auto caption_of = [&](const std::string& path) -> const std::pair<std::string, std::string>& {
        auto it = caption_memo.find(path);
        if (it != caption_memo.end()) return it->second;
        std::pair<std::string, std::string> r;
        try {
          r.first = clap->caption(path, o.caption_prompt);
        } catch (const std::exception& e) {
          r.second = path + ": " + e.what();
        }
        return caption_memo[path] = r;
      };
      caption_error.clear();
      const auto& a = caption_of(clip.path);
      if (a.second.empty()) anomalous_caption = a.first;
      else caption_error = a.second;
      for (const auto& n : clip.neighbors) {
        const auto& c = caption_of(n.path);
        if (!c.second.empty() && caption_error.empty()) caption_error = c.second;
        normal_captions.push_back(c.first);
      }
      if (!caption_error.empty()) anomalous_caption.reset();
    }
    const double caption_seconds = since(t_captions);
    if (want_captions) {
      ordered_json nb = anomalous_caption ? ordered_json(normal_captions) : ordered_json::array();
      rec["captions"] = {{"anomalous", anomalous_caption ? ordered_json(*anomalous_caption) : ordered_json()},
                         {"neighbors", nb},
                         {"prompt", o.caption_prompt},
                         {"missing_reason", caption_error.empty() ? ordered_json() : ordered_json(caption_error)}};
    } else {
      rec["captions"] = {{"anomalous", nullptr}, {"neighbors", ordered_json::array()}, {"missing_reason", not_needed}};
    }

    // Zero-shot similarities.
    std::optional<std::vector<double>> anomalous_sim;
    std::vector<std::vector<double>> normal_sims;
    std::string similarity_error = similarity_missing;
    const auto t_similarity = Clock::now();
    if (want_similarity && clap && similarity_missing.empty()) {
      similarity_error.clear();
      auto embedding_of = [&](const std::string& path) -> const std::pair<std::vector<float>, std::string>& {
        auto it = embedding_memo.find(path);
        if (it != embedding_memo.end()) return it->second;
        std::pair<std::vector<float>, std::string> r;
        try {
          r.first = clap->audio_embedding(path);
        } catch (const std::exception& e) {
          r.second = path + ": " + e.what();
        }
        return embedding_memo[path] = r;
      };
      std::vector<std::string> paths{clip.path};
      for (const auto& n : clip.neighbors) paths.push_back(n.path);
      std::vector<std::vector<float>> audio;
      for (const auto& p : paths) {
        const auto& e = embedding_of(p);
        if (!e.second.empty() && similarity_error.empty()) similarity_error = e.second;
        audio.push_back(e.first);
      }
      if (similarity_error.empty()) {
        try {
          auto sims = clap->similarities(audio, texts);
          anomalous_sim = sims[0];
          normal_sims.assign(sims.begin() + 1, sims.end());
        } catch (const std::exception& e) {
          similarity_error = e.what();
        }
      }
    }
    const double similarity_seconds = since(t_similarity);
    if (want_similarity) {
      rec["similarity"] = {{"texts", texts},
                           {"anomalous", anomalous_sim ? ordered_json(*anomalous_sim) : ordered_json()},
                           {"neighbors", anomalous_sim ? ordered_json(normal_sims) : ordered_json::array()},
                           {"missing_reason", similarity_error.empty() ? ordered_json() : ordered_json(similarity_error)}};
    } else {
      rec["similarity"] = {{"texts", texts}, {"anomalous", nullptr}, {"neighbors", ordered_json::array()},
                           {"missing_reason", not_needed}};
    }

    // The methods: prompt -> answer.
    const EvidenceCells cells = evidence_cells(rows);
    ordered_json method_records = ordered_json::object();
    ExplainedClip brief{clip.file, clip.machine, clip.id, clip.score, {}, {}};
    double llm_seconds = 0;
    for (const auto& m : methods) {
      ordered_json mr = {{"prompt", nullptr}, {"answer", nullptr}, {"backend", o.llm}, {"model", backend_model},
                         {"error", nullptr}, {"seconds", 0.0}};
      std::string missing = method_missing(m);
      if (missing.empty() && needs_captions(m) && !anomalous_caption) missing = caption_error;
      if (missing.empty() && needs_similarity(m) && !anomalous_sim) missing = similarity_error;
      if (!missing.empty()) {
        mr["missing_reason"] = missing;
        brief.errors[m] = "unavailable: " + missing;
        method_records[m] = mr;
        continue;
      }
      std::string prompt;
      OfflineInput input;
      const std::vector<EvidenceRow>* combined_rows = o.combined_evidence ? &rows : nullptr;
      ExtraColumns extra;
      if (m == "text") {
        prompt = build_text_prompt(o.templates, clip.machine, *anomalous_caption, normal_captions);
        input.anomalous_caption = &*anomalous_caption;
        input.normal_captions = &normal_captions;
      } else if (m == "zeroshot") {
        prompt = build_zeroshot_prompt(o.templates, clip.machine, texts, *anomalous_sim, normal_sims);
      } else if (m == "combined") {
        if (combined_rows) {
          // Only the neighbours with evidence line up with the CSV rows; a neighbour without
          // evidence gets empty cells.
          extra.headers = cells.headers;
          extra.anomalous = cells.anomalous;
          size_t next = 0;
          for (bool good : ok)
            extra.normals.push_back(good ? cells.normals[next++] : std::vector<std::string>(cells.headers.size()));
        }
        prompt = build_combined_prompt(o.templates, clip.machine, texts, *anomalous_caption, *anomalous_sim,
                                       normal_captions, normal_sims, combined_rows ? &extra : nullptr);
        input.anomalous_caption = &*anomalous_caption;
        input.normal_captions = &normal_captions;
        input.evidence = combined_rows;
      } else {
        prompt = build_acoustic_prompt(o.templates, clip.machine, cells.headers, cells.anomalous, cells.normals);
        input.evidence = &rows;
      }
      if (needs_similarity(m)) {
        input.texts = &texts;
        input.anomalous_similarity = &*anomalous_sim;
        input.normal_similarity = &normal_sims;
      }
      mr["prompt"] = prompt;
      const auto t_method = Clock::now();
      if (!client) {
        const OfflineAnswer a = explain_offline(input);
        mr["answer"] = a.answer;
        mr["named"] = a.named;
      } else if (auto old = reusable_answer(previous, clip.path, m, prompt, "openai", o.llm_options.model)) {
        mr["answer"] = (*old)["answer"];
        mr["reused"] = true;
        ++summary.n_reused;
      } else {
        try {
          ++summary.n_llm_requests;
          const LlmReply reply = client->complete(prompt);
          mr["answer"] = reply.answer;
          mr["model"] = reply.model;
          mr["attempts"] = reply.attempts;
        } catch (const Error& e) {
          mr["error"] = redact_secret(e.what(), o.llm_options.api_key);
          if (summary.first_llm_error.empty()) summary.first_llm_error = mr["error"].get<std::string>();
          ++summary.n_errors;
        }
      }
      mr["seconds"] = since(t_method);
      llm_seconds += mr["seconds"].get<double>();
      if (mr["answer"].is_string()) brief.answers[m] = mr["answer"].get<std::string>();
      else if (mr["error"].is_string()) brief.errors[m] = mr["error"].get<std::string>();
      method_records[m] = mr;
    }
    rec["methods"] = method_records;
    rec["timings"] = {{"evidence_s_all_clips", evidence_seconds},
                      {"captions_s", caption_seconds},
                      {"similarity_s", similarity_seconds},
                      {"llm_s", llm_seconds},
                      {"total_s", since(t_clip)}};
    records.push_back(std::move(rec));
    summary.clips.push_back(std::move(brief));
    write_jsonl(partial_path, records);  // a checkpoint: an interrupted run keeps its answers
    progress.tick();
  }

  write_jsonl(final_path, records);
  std::error_code ec;
  fs::remove(partial_path, ec);
  update_skipped((dir / "skipped.jsonl").string(), skipped);
  summary.n_explained = static_cast<int>(records.size());
  summary.explanations_path = final_path;
  return summary;
}

}  // namespace asdcap
