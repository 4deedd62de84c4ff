// The page: summary cards, the Table I-like overview, per-ID score charts, one Fig. 3-like figure per
// explained clip, and what is missing and why.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <set>

#include "page.hpp"
#include "report/colormap.hpp"

namespace asdcap::report {
namespace {

using Kind = ResultRow::Kind;

std::string percent(std::optional<double> v) {
  if (!v || !std::isfinite(*v)) return "&ndash;";
  char b[32];
  std::snprintf(b, sizeof b, "%.2f", *v <= 1.0 ? *v * 100 : *v);
  return b;
}

double as_fraction(double v) { return v <= 1.0 ? v : v / 100; }

// A metric of results.csv, none when it is not available.
std::optional<double> known(double v) { return std::isfinite(v) ? std::optional<double>(v) : std::nullopt; }

std::string card(const std::string& cls, const std::string& key, const std::string& value, const std::string& detail) {
  return "<div class=\"card " + cls + "\"><div class=\"k\">" + key + "</div><div class=\"v\">" + value +
         "</div><div class=\"d\">" + detail + "</div></div>";
}

std::string method_title(const std::string& key) {
  if (key == "text") return "Text-decoder method";
  if (key == "zeroshot") return "Zero-shot method";
  if (key == "combined") return "Combined method";
  if (key == "acoustic") return "Acoustic-evidence method";
  return key;
}

std::string audio_tag(const ClipView* v) {
  if (!v || v->audio_src.empty()) return "";
  return "<audio controls preload=\"none\" src=\"" + html_escape(v->audio_src) + "\"></audio>";
}

struct Counts {
  long scored = 0, flagged = 0;
};

std::string summary_section(const PageInput& in, const Counts& c) {
  const RunData& run = *in.run;
  std::set<std::pair<std::string, std::string>> ids;
  std::set<std::string> machines;
  const ResultRow* best = nullptr;
  const ResultRow* worst = nullptr;
  const ResultRow* overall = nullptr;
  for (const auto& r : run.results) {
    if (r.kind == Kind::Overall) overall = &r;
    if (r.kind != Kind::Id) continue;
    ids.insert({r.machine, r.id});
    machines.insert(r.machine);
    if (!known(r.auc)) continue;
    if (!best || r.auc > best->auc) best = &r;
    if (!worst || r.auc < worst->auc) worst = &r;
  }
  for (const auto& cl : run.clips) ids.insert({cl.machine, cl.id}), machines.insert(cl.machine);
  std::string s = "<section class=\"cards\" id=\"summary\">";
  s += card("", "Clips scored", std::to_string(c.scored),
            std::to_string(ids.size()) + " machine IDs of " + std::to_string(machines.size()) + " machine types");
  char pct[32];
  std::snprintf(pct, sizeof pct, "%.0f%%", c.scored ? 100.0 * double(c.flagged) / double(c.scored) : 0.0);
  s += card("warm flag", "Flagged anomalous", std::to_string(c.flagged), std::string(pct) + " of scored clips");
  if (overall)
    s += card("", "Overall AUC", percent(known(overall->auc)) + "<small>%</small>",
              "pAUC " + percent(known(overall->pauc)) + "%");
  if (best)
    s += card("cool", "Best machine ID", percent(known(best->auc)) + "<small>%</small>",
              html_escape(best->machine + " " + best->id) + " (AUC)");
  if (worst && worst != best)
    s += card("warm", "Worst machine ID", percent(known(worst->auc)) + "<small>%</small>",
              html_escape(worst->machine + " " + worst->id) + " (AUC)");
  s += card("", "Explained", std::to_string(run.explanations.size()),
            in.figures_are_fallback ? "explain not run yet" : std::to_string(in.figures.size()) + " drawn below");
  if (!run.skipped.empty() || !run.problems.empty())
    s += card("", "Skipped", std::to_string(run.skipped.size()), "<a href=\"#missing\">files left out, and why</a>");
  return s + "</section>";
}

std::string overview_section(const PageInput& in, const std::map<std::pair<std::string, std::string>, long>& flagged) {
  const RunData& run = *in.run;
  std::string s = "<section id=\"overview\"><h2>Detection results</h2>";
  if (run.results.empty())
    return s + "<p class=\"note missing\">No results table: results.csv is missing or empty.</p></section>";
  s += "<p class=\"lead\">AUC and pAUC (FPR &le; 0.1, McClish-standardised) per machine type and ID, with the "
       "per-machine averages, as in Table I of the papers. Clips scoring above the threshold are flagged.</p>";
  s += "<div class=\"scroll\"><table class=\"results\"><thead><tr><th class=\"l\">Machine</th><th class=\"l\">ID</th>"
       "<th>AUC (%)</th><th>pAUC (%)</th><th>Threshold</th><th class=\"l\">Rule</th><th>Normal</th><th>Anomalous</th>"
       "<th>Flagged</th></tr></thead><tbody>";
  std::string last_machine;
  for (const auto& r : run.results) {
    const char* cls = r.kind == Kind::Id ? "row-id" : r.kind == Kind::Average ? "row-average" : "row-overall";
    std::string bar;
    if (known(r.auc)) {
      const double a = as_fraction(r.auc);
      const char* tone = a >= 0.8 ? " hi" : a < 0.6 ? " lo" : "";
      char w[32];
      std::snprintf(w, sizeof w, "%.0f", std::clamp(a, 0.0, 1.0) * 60);
      bar = "<span class=\"bar" + std::string(tone) + "\" style=\"width:" + w + "px\"></span>";
    }
    std::string machine = r.kind == Kind::Id && r.machine == last_machine ? "" : html_escape(r.machine);
    if (r.kind == Kind::Id) last_machine = r.machine;
    std::string id = r.kind == Kind::Average ? "Average" : r.kind == Kind::Overall ? "All" : html_escape(r.id);
    std::string nflag = "";
    if (r.kind == Kind::Id) {
      auto it = flagged.find({r.machine, r.id});
      nflag = it == flagged.end() ? "&ndash;" : std::to_string(it->second);
    }
    s += "<tr class=\"" + std::string(cls) + "\"><td class=\"l\">" + machine + "</td><td class=\"l\">" + id +
         "</td><td class=\"auc\">" + percent(known(r.auc)) + bar + "</td><td>" + percent(known(r.pauc)) + "</td><td>" +
         (known(r.threshold) ? format_number(r.threshold, 4) : std::string("&ndash;")) + "</td><td class=\"l\">" +
         html_escape(r.threshold_rule) + "</td><td>" + std::to_string(r.n_normal) + "</td><td>" +
         std::to_string(r.n_anomaly) + "</td><td>" + nflag + "</td></tr>";
  }
  return s + "</tbody></table></div></section>";
}

std::string machines_section(const PageInput& in) {
  const RunData& run = *in.run;
  std::vector<std::pair<std::string, std::string>> order;
  std::map<std::pair<std::string, std::string>, const ResultRow*> rows;
  for (const auto& r : run.results)
    if (r.kind == Kind::Id && !rows.count({r.machine, r.id}))
      rows[{r.machine, r.id}] = &r, order.push_back({r.machine, r.id});
  std::map<std::pair<std::string, std::string>, std::vector<const ScoredClip*>> clips;
  for (const auto& c : run.clips) {
    if (!clips.count({c.machine, c.id}) && !rows.count({c.machine, c.id})) order.push_back({c.machine, c.id});
    clips[{c.machine, c.id}].push_back(&c);
  }
  std::string s = "<section id=\"machines\"><h2>Score distributions</h2>";
  if (run.clips.empty())
    return s + "<p class=\"note missing\">No per-clip scores: neighbors.jsonl is missing or empty.</p></section>";
  s += "<p class=\"lead\">Anomaly scores of the test clips of each machine ID, with the decision threshold, and the "
       "ROC curve (shaded: the pAUC region, dot: the threshold's operating point).</p>";
  std::string current;
  for (const auto& key : order) {
    if (key.first != current) {
      if (!current.empty()) s += "</div>";
      current = key.first;
      s += "<h3 id=\"m-" + html_escape(current) + "\">" + html_escape(current) + "</h3><div class=\"grid2\">";
    }
    std::vector<double> normal, anomaly, unlabeled, scores;
    std::vector<bool> labels;
    std::optional<double> threshold;
    for (const auto* c : clips[key]) {
      if (std::isfinite(c->threshold)) threshold = c->threshold;
      if (!c->label)
        unlabeled.push_back(c->score);
      else if (*c->label == "anomaly")
        anomaly.push_back(c->score);
      else
        normal.push_back(c->score);
      if (c->label && std::isfinite(c->score)) scores.push_back(c->score), labels.push_back(*c->label == "anomaly");
    }
    const ResultRow* r = rows.count(key) ? rows[key] : nullptr;
    if (r && known(r->threshold)) threshold = r->threshold;
    s += "<div class=\"idcard\"><h4>" + html_escape(key.first + " " + key.second) + " <span>AUC " +
         percent(r ? known(r->auc) : std::nullopt) + "% &middot; pAUC " + percent(r ? known(r->pauc) : std::nullopt) +
         "% &middot; " + std::to_string(clips[key].size()) + " test clips</span></h4><div class=\"charts\">" +
         svg_score_distribution(normal, anomaly, unlabeled, threshold) + svg_roc(scores, labels, threshold) +
         "</div></div>";
  }
  return s + "</div></section>";
}

// show_caption false: the figure says once why no clip has a caption.
std::string panel(const PageInput& in, bool anomalous, const std::string& who, const std::string& detail,
                  const std::string& file, const std::string& path, const std::optional<std::string>& caption,
                  const std::string& caption_missing, bool show_caption) {
  const auto it = in.views.find(clip_path(*in.run, file, path));
  const ClipView* v = it == in.views.end() ? nullptr : &it->second;
  std::string s = std::string("<div class=\"panel") + (anomalous ? " anomalous" : "") + "\"><div class=\"who\">" + who +
                  "<span>" + detail + "</span></div>";
  if (v && !v->panel_html.empty())
    s += v->panel_html;
  else
    s += "<div class=\"nospec\">no spectrogram: " + html_escape(v ? v->missing_reason : "clip not found") + "</div>";
  if (caption)
    s += "<div class=\"caption\">" + html_escape(*caption) + "</div>";
  else if (show_caption)
    s += "<div class=\"caption none\">no caption: " + html_escape(caption_missing) + "</div>";
  s += "<div class=\"fname\">" + html_escape(file.empty() ? path : file) + "</div>" + audio_tag(v) + "</div>";
  return s;
}

std::string figure(const PageInput& in, const ExplanationRecord& e, size_t index) {
  std::string s = "<figure class=\"clip\" id=\"clip-" + std::to_string(index + 1) + "\"><header><h3>" +
                  html_escape(e.machine + " " + e.id) + " &middot; " + html_escape(e.file) + "</h3>";
  const bool over = std::isfinite(e.score) && std::isfinite(e.threshold) && e.score > e.threshold;
  s += "<span class=\"pill" + std::string(over ? " warm" : "") + "\">score " + format_number(e.score, 4) +
       (std::isfinite(e.threshold)
            ? std::string(over ? " &gt; " : " &le; ") + "threshold " + format_number(e.threshold, 4)
            : "") +
       "</span>";
  if (e.label)
    s += "<span class=\"pill " + std::string(*e.label == "anomaly" ? "warm" : "cool") +
         "\">ground truth: " + html_escape(*e.label == "anomaly" ? "anomalous" : *e.label) + "</span>";
  s += "</header><div class=\"panels\">";
  const std::string cap_missing = e.captions.missing_reason.value_or("the captioner gave none");
  bool any_caption = e.captions.anomalous.has_value();
  for (const auto& c : e.captions.neighbors) any_caption = any_caption || c.has_value();
  s += panel(in, true, "Anomalous clip", "", e.file, e.path, e.captions.anomalous, cap_missing, any_caption);
  for (size_t i = 0; i < e.neighbors.size(); ++i) {
    const auto& n = e.neighbors[i];
    std::optional<std::string> cap = i < e.captions.neighbors.size() ? e.captions.neighbors[i] : std::nullopt;
    s += panel(in, false, "Normal #" + std::to_string(i + 1), "d = " + format_number(n.distance, 3), n.file, n.path,
               cap, cap_missing, any_caption);
  }
  s += "</div>";
  if (!any_caption) s += "<p class=\"absent\"><b>No captions:</b> " + html_escape(cap_missing) + "</p>";
  if (!e.methods.empty()) {
    s += "<div class=\"methods\">";
    for (const auto& [key, m] : e.methods) {
      std::string meta = m.backend;
      if (m.model) meta += (meta.empty() ? "" : ", ") + *m.model;
      s += "<div class=\"method" + std::string(m.answer ? "" : " error") + "\"><div class=\"name\">" +
           html_escape(method_title(key)) + " <span>" + html_escape(meta) + "</span></div><p>";
      if (m.answer)
        s += html_escape(*m.answer);
      else
        s += "no difference caption: " + html_escape(m.error.value_or("the method produced no answer"));
      s += "</p></div>";
    }
    s += "</div>";
  } else if (!in.figures_are_fallback) {
    s += "<p class=\"note missing\">No difference captions in this record.</p>";
  }
  std::string charts;
  const SimilarityRecord& sim = e.similarity;
  if (!sim.texts.empty() && sim.anomalous && !sim.anomalous->empty())
    charts += "<div><h4>Zero-shot similarity to the reference texts</h4>" +
              svg_similarity(sim.texts, *sim.anomalous, sim.neighbors) + "</div>";
  else if (sim.missing_reason)
    s +=
        "<p class=\"absent\"><b>Zero-shot similarities not available:</b> " + html_escape(*sim.missing_reason) + "</p>";
  if (!e.evidence.empty()) charts += "<div><h4>Acoustic evidence</h4>" + svg_evidence(e.evidence) + "</div>";
  if (!charts.empty()) s += "<div class=\"evidence\">" + charts + "</div>";
  return s + "</figure>";
}

std::string colormap_gradient() {
  const auto& map = sequential_colormap();
  std::string g = "linear-gradient(90deg";
  for (int i = 0; i < 256; i += 51) {
    char b[40];
    std::snprintf(b, sizeof b, ",#%02x%02x%02x", map[size_t(i)].r, map[size_t(i)].g, map[size_t(i)].b);
    g += b;
  }
  return g + ")";
}

std::string explained_section(const PageInput& in) {
  const RunData& run = *in.run;
  std::string s = "<section id=\"explained\"><h2>Explained clips</h2>";
  if (in.figures_are_fallback) {
    s += "<p class=\"note\">No explanations yet (explanations.jsonl not found): run <code>asdcap explain --out " +
         html_escape(run.dir) +
         "</code>. Shown instead: the highest-scoring flagged clip of each machine ID with its "
         "nearest normal clips.</p>";
  } else {
    s +=
        "<p class=\"lead\">For each flagged clip, as in Fig. 3 of the papers: the log-mel spectrogram of the anomalous "
        "clip and of its k nearest normal clips, each clip's caption (black box), the difference caption of each "
        "method, "
        "and the evidence behind them.</p>";
  }
  if (in.figures.empty())
    return s + "<p class=\"note missing\">No clip to show: nothing was flagged or explained.</p></section>";
  s += "<div class=\"legend\"><span><i style=\"background:#e8590c\"></i>anomalous clip</span><span><i "
       "style=\"background:"
       "#1c7ed6\"></i>nearest normal clips (d: embedding distance)</span><span>level: quiet<span class=\"cmap\" "
       "style=\"background:" +
       colormap_gradient() + "\"></span>loud (dB, one scale per machine ID)</span></div>";
  for (size_t i = 0; i < in.figures.size(); ++i) s += figure(in, in.figures[i], i);
  if (!in.not_drawn.empty()) {
    s += "<h3>" + std::to_string(in.not_drawn.size()) +
         " more explained clips</h3><p class=\"lead\">Not drawn "
         "(the report draws at most " +
         std::to_string(in.options->max_figures) +
         "; raise <code>--max-figures</code>).</p>"
         "<div class=\"scroll\"><table><thead><tr><th class=\"l\">Machine</th><th class=\"l\">ID</th><th "
         "class=\"l\">File</th>"
         "<th>Score</th><th class=\"l\">Difference caption</th></tr></thead><tbody>";
    for (const auto& e : in.not_drawn) {
      std::string answer;
      for (const auto& [k, m] : e.methods)
        if (m.answer) {
          answer = *m.answer;
          if (k == "combined") break;
        }
      s += "<tr><td class=\"l\">" + html_escape(e.machine) + "</td><td class=\"l\">" + html_escape(e.id) +
           "</td><td class=\"path\">" + html_escape(e.file) + "</td><td>" + format_number(e.score, 4) +
           "</td><td class=\"reason\">" + html_escape(answer) + "</td></tr>";
    }
    s += "</tbody></table></div>";
  }
  return s + "</section>";
}

std::string missing_section(const RunData& run) {
  if (run.skipped.empty() && run.problems.empty()) return "";
  std::string s = "<section id=\"missing\"><h2>What is missing, and why</h2>";
  if (!run.problems.empty()) {
    s += "<ul class=\"problems\">";
    for (const auto& p : run.problems) s += "<li>" + html_escape(p) + "</li>";
    s += "</ul>";
  }
  if (!run.skipped.empty()) {
    s += "<p class=\"lead\">" + std::to_string(run.skipped.size()) +
         " files were left out (skipped.jsonl); the rest of the run is unaffected.</p><div class=\"scroll\"><table "
         "class=\"skipped\"><thead><tr><th class=\"l\">File</th><th class=\"l\">Stage</th><th "
         "class=\"l\">Reason</th></tr>"
         "</thead><tbody>";
    for (const auto& k : run.skipped)
      s += "<tr><td class=\"path\">" + html_escape(k.path) + "</td><td class=\"l\">" + html_escape(k.stage) +
           "</td><td class=\"reason\">" + html_escape(k.reason) + "</td></tr>";
    s += "</tbody></table></div>";
  }
  return s + "</section>";
}

}  // namespace

std::string render_page(const PageInput& in) {
  const RunData& run = *in.run;
  Counts counts;
  std::map<std::pair<std::string, std::string>, long> flagged;
  for (const auto& c : run.clips) {
    ++counts.scored;
    if (c.decision == 1) ++counts.flagged, ++flagged[{c.machine, c.id}];
  }
  if (run.clips.empty())
    for (const auto& r : run.results)
      if (r.kind == Kind::Id) counts.scored += r.n_normal + r.n_anomaly;

  std::string sub = html_escape(run.dir);
  const RunSettings settings = run.settings.value_or(RunSettings{});
  if (!settings.backend.empty()) sub += " &middot; backend " + html_escape(settings.backend);
  if (settings.k > 0) sub += " &middot; k = " + std::to_string(settings.k);
  if (!settings.created.empty()) sub += " &middot; " + html_escape(settings.created);

  std::string h =
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
      "<title>asdcap report</title><style>" +
      page_css() + "</style></head><body>";
  h += "<header class=\"top\"><div class=\"wrap\"><h1>Machine sound anomalies: detections and explanations</h1><p>" +
       sub + "</p></div></header><main>";
  h += summary_section(in, counts);
  h += "<nav class=\"toc\"><a href=\"#overview\">Detection results</a><a href=\"#machines\">Score distributions</a>"
       "<a href=\"#explained\">Explained clips</a>";
  if (!run.skipped.empty() || !run.problems.empty()) h += "<a href=\"#missing\">Missing and why</a>";
  h += "</nav>";
  h += overview_section(in, flagged);
  h += machines_section(in);
  std::string explained = explained_section(in);
  const std::string shared_images = share_repeated_images(explained);
  if (!shared_images.empty()) h += "<style>" + shared_images + "</style>";
  h += explained;
  h += missing_section(run);
  std::time_t now = std::time(nullptr);
  char stamp[64];
  std::strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M UTC", std::gmtime(&now));
  h += "</main><footer>asdcap " + html_escape(settings.asdcap_version) + " &middot; report written " + stamp +
       " &middot; self-contained: no network access needed</footer>";
  // Lets a headless browser test tell broken images apart (read back from the dumped DOM).
  h += "<script>addEventListener('load',function(){var ok=0,bad=0;for(var i of document.images)"
       "(i.complete&&i.naturalWidth>0)?ok++:bad++;document.body.dataset.imagesOk=ok;document.body.dataset.imagesBroken="
       "bad;});"
       "</script></body></html>\n";
  return h;
}

}  // namespace asdcap::report
