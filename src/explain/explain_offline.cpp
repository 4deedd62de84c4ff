// The built-in explainer: ranks what differs between the anomalous clip and its references and
// writes one "This sound is ..." sentence of at most 40 words.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <map>
#include <numeric>
#include <set>
#include <sstream>

#include "asdcap/error.hpp"
#include "asdcap/llm.hpp"

namespace asdcap {

namespace {

constexpr int kMaxWords = 40;
constexpr double kNameThreshold = 2.5;  // weighted |strength| needed to name a difference
// Beyond this strength a difference is clearly outside the references either way: larger ones do
// not outrank a more specific feature (the weights decide among them).
constexpr double kStrengthCap = 5.0;

struct Candidate {
  double score;
  std::string group;        // one phrase per group (e.g. both drop-out features)
  std::string key;          // recorded in OfflineAnswer::named
  std::string is_phrase;    // completes "This sound is ..."
  std::string verb_phrase;  // completes "..., and it ..." style lists ("has ...", "hums ...")
};

std::string fmt(const char* format, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

// Whole decibels, or tenths below 2 dB so that a small named difference never reads as zero.
std::string unsigned_db(double v) { return fmt(std::fabs(v) < 1.95 ? "%.1f" : "%.0f", std::fabs(v)); }

std::string signed_db(double v) { return (v >= 0 ? "+" : "-") + unsigned_db(v) + " dB"; }

// A clip's value and its references', with `decimals` decimals or up to two more when two
// different values would read alike ("5.2" and "4.6", not "5" and "5"). `sign` writes a + on values
// of 0 and up.
std::pair<std::string, std::string> distinct(double a, double b, int decimals, bool sign = false) {
  const auto text = [&](double v, int d) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.*f", d, std::fabs(v));
    const bool zero = std::string(buf).find_first_not_of("0.") == std::string::npos;
    std::string out = v < 0 && !zero ? "-" : sign ? "+" : "";
    out += buf;
    return out;
  };
  std::string x, y;
  for (int d = decimals; d <= decimals + 2; ++d) {
    x = text(a, d);
    y = text(b, d);
    if (x != y) break;
  }
  return {x, y};
}

// "5.2% vs 4.6%"
std::string versus(double a, double b, int decimals, const std::string& unit) {
  const auto [x, y] = distinct(a, b, decimals);
  return x + unit + " vs " + y + unit;
}

// Two levels in dB, signed: tenths when either is under 2 dB (as unsigned_db writes them), or when
// whole decibels would read alike.
std::pair<std::string, std::string> distinct_db(double a, double b) {
  return distinct(a, b, std::min(std::fabs(a), std::fabs(b)) < 1.95 ? 1 : 0, true);
}

// "+14 dB over the normal references" / "9 dB below the normal references"
std::string vs_refs(double v) {
  return v >= 0 ? signed_db(v) + " over the normal references" : unsigned_db(v) + " dB below the normal references";
}

// "at 0.8 s, 2.1 s and 3.4 s" / "at 0.8 s, 2.1 s, 3.4 s, ..." (at most four times).
std::string at_times(const std::vector<double>& times) {
  std::string s = "at ";
  const size_t shown = std::min<size_t>(times.size(), 4);
  for (size_t i = 0; i < shown; ++i) {
    if (i) s += (i + 1 == shown && times.size() == shown) ? " and " : ", ";
    s += fmt("%.1f", times[i]) + " s";
  }
  if (times.size() > shown) s += ", ...";
  return s;
}

std::string frequency(double hz) {
  if (hz >= 1000) return fmt("%.1f", hz / 1000) + " kHz";
  return fmt("%.0f", hz) + " Hz";
}

std::string times_per_second(double rate) {
  const double r = rate < 3 ? std::round(rate * 2) / 2 : std::round(rate);
  return "about " + fmt(r == std::floor(r) ? "%.0f" : "%.1f", r) + " times per second";
}

}  // namespace

MachineParts machine_parts_from_name(const std::string& type) {
  std::string m = type;
  for (char& ch : m) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (m.empty()) return {};
  const auto has = [&](std::initializer_list<const char*> words) {
    for (const char* w : words)
      if (m.find(w) != std::string::npos) return true;
    return false;
  };
  return {has({"fan", "pump", "valve", "blower", "compressor", "vacuum", "dryer"}), !has({"valve", "slide"}),
          has({"gear"})};
}

MachineParts parse_machine_parts(const std::string& list) {
  const std::string what = "machine parts \"" + list + "\"";
  if (list == "none") return {false, false, false};
  MachineParts p{false, false, false};
  std::set<std::string> seen;
  std::string::size_type start = 0;
  while (true) {
    const auto comma = list.find(',', start);
    const std::string part = list.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (!seen.insert(part).second) throw InvalidArgument(what + ": \"" + part + "\" given twice");
    if (part == "flow")
      p.flow = true;
    else if (part == "rotor")
      p.rotor = true;
    else if (part == "gears")
      p.gears = true;
    else
      throw InvalidArgument(what + ": \"" + part + "\" is not one of flow, rotor, gears (or none alone)");
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return p;
}

namespace {

const EvidenceRow* find_row(const std::vector<EvidenceRow>& rows, const std::string& key) {
  for (const auto& r : rows)
    if (r.spec->key == key) return &r;
  return nullptr;
}

double median_of(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Generic features (overall level, spectral shape, irregularity) change with almost any fault;
// the specific ones say what the fault is, so they win ties.
double feature_weight(const std::string& key) {
  static const std::map<std::string, double> weights = {
      {"level_db", 0.5}, {"flatness", 0.5},   {"centroid_hz", 0.5},   {"irregularity", 0.4}, {"hum_db", 0.9},
      {"grind_db", 0.8}, {"impulse_db", 0.8}, {"dropout_count", 0.9}, {"burst_db", 0.8},     {"shaft_db", 0.9}};
  auto it = weights.find(key);
  return it == weights.end() ? 1.0 : it->second;
}

// Short events or periodic impacts that clearly exceed the references' (strength 2 or more) and
// recur at the rate of the level modulation, or clear drop-outs, are what modulates the level: the
// modulation is those events (named by their own features), not a swell and fade of the whole sound.
bool modulation_is_the_events(const std::vector<EvidenceRow>& rows, double modulation_hz) {
  bool events = false;
  // (Not impact_sync: the synchronous average also sees the faint higher harmonics of a strong swell.)
  for (const char* key : {"impulse_rate", "burst_rate", "click_strength", "impact_db"}) {
    const EvidenceRow* r = find_row(rows, key);
    if (r && r->strength >= 2.0) events = true;
  }
  // Drop-outs modulate the level at whatever rate they recur.
  const EvidenceRow* dropouts = find_row(rows, "dropout_pct");
  if (dropouts && dropouts->strength >= 2.0) return true;
  if (!events || modulation_hz <= 0) return false;
  for (const char* key : {"click_rate", "burst_period_hz", "impact_hz"}) {
    const EvidenceRow* r = find_row(rows, key);
    if (r && r->anomalous > 0 && std::fabs(modulation_hz - r->anomalous) <= 0.25 * r->anomalous) return true;
  }
  return false;
}

// True when the feature `key` is clearly up (weighted strength at the naming threshold) and its rate
// `hz_key` lies within `tolerance` x `hz` of `hz`.
bool clear_at_rate(const std::vector<EvidenceRow>& rows, const char* key, const char* hz_key, double hz,
                   double tolerance = 0.1) {
  const EvidenceRow* r = find_row(rows, key);
  const EvidenceRow* rate = find_row(rows, hz_key);
  return r && rate && hz > 0 && r->strength * feature_weight(key) >= kNameThreshold &&
         std::fabs(rate->anomalous - hz) <= tolerance * hz;
}

// A clear swell of the whole sound (vibration_pct, strength 2 or more) raises a band's loudest
// 50-ms moments by up to the swell's peak level over the references', 20 log10((1 + m) / (1 + m_ref))
// dB for modulation depths m: a crackle that stands no further above the references than that is
// the swell (named by the vibration), not bursts of its own.
bool crackle_is_the_swell(const std::vector<EvidenceRow>& rows, double crackle_over_references_db) {
  const EvidenceRow* swell = find_row(rows, "vibration_pct");
  if (!swell || swell->strength < 2.0) return false;
  const double peak_db =
      20 * std::log10((1 + swell->anomalous / 100) / std::max(1e-9, 1 + swell->reference_mean / 100));
  return crackle_over_references_db <= peak_db;
}

// Clear sharp knocks (impulse_rate) and a clear rhythm of transients (click_strength) whose rate
// lies within half the knocks' rate of theirs are the same knocks, the rhythm's loudest beats: one
// phrase names them (group "knocks"), not two rates. A rattle at another rate is named beside it.
bool knocks_are_the_rhythm(const std::vector<EvidenceRow>& rows) {
  const EvidenceRow* knocks = find_row(rows, "impulse_rate");
  return knocks && knocks->strength * feature_weight("impulse_rate") >= kNameThreshold &&
         clear_at_rate(rows, "click_strength", "click_rate", knocks->anomalous, 0.5);
}

void evidence_candidates(const std::vector<EvidenceRow>& rows, const std::vector<double>* burst_times,
                         const MachineParts& parts, std::vector<Candidate>& out) {
  const std::string background = parts.flow ? "flow noise" : "broadband noise";
  const bool knocks_rhythm = knocks_are_the_rhythm(rows);
  for (const auto& row : rows) {
    if (!row.z || row.strength == 0) continue;  // descriptive, or no difference beyond resolution
    const double z = row.strength;
    const std::string& key = row.spec->key;
    const double d = row.anomalous - row.reference_mean;
    const bool up = z > 0;
    Candidate c{std::min(std::fabs(z), kStrengthCap) * feature_weight(key), key, key, "", ""};
    // Losing silences or transients the normal sound has is rarely what a fault does.
    if (!up && (key == "dropout_pct" || key == "dropout_count" || key == "impulse_rate" || key == "burst_rate" ||
                key == "sideband_db" || key == "impact_db" || key == "impact_sync" || key == "crackle_db"))
      c.score *= 0.3;
    if (key == "level_db") {
      c.is_phrase = std::string(up ? "louder" : "quieter") + " overall (" + vs_refs(d) + ")";
      c.verb_phrase = std::string("is ") + (up ? "louder" : "quieter") + " overall (" + signed_db(d) + ")";
    } else if (key == "hum_db") {
      c.is_phrase = up ? "heavier in steady low-frequency hum below 200 Hz (" + vs_refs(d) + ")"
                       : "lighter in low-frequency hum below 200 Hz (" + vs_refs(d) + ")";
      c.verb_phrase = up ? "hums or vibrates more below 200 Hz (" + signed_db(d) + ")"
                         : "has less low-frequency hum (" + signed_db(d) + ")";
    } else if (key == "vibration_pct") {
      const EvidenceRow* hz = find_row(rows, "vibration_hz");
      if (up && hz && modulation_is_the_events(rows, hz->anomalous)) continue;
      const std::string rate = hz ? " at about " + fmt("%.0f", hz->anomalous) + " Hz" : "";
      const std::string cmp = "(modulation " + versus(row.anomalous, row.reference_mean, 0, "%") + ")";
      c.is_phrase = up ? "pulsating with a strong vibration" + rate + " " + cmp +
                             (parts.rotor ? ", as from an unbalanced rotor" : "")
                       : "steadier, with less vibration " + cmp;
      c.verb_phrase = up ? "vibrates" + rate + " " + cmp : "vibrates less " + cmp;
    } else if (key == "noise_db") {
      c.is_phrase = up ? "noisier across the band (broadband noise " + vs_refs(d) + ")"
                    : parts.flow
                        ? "much lower in broadband flow noise (" + vs_refs(d) + "), as from a clogged or blocked flow"
                        : "much lower in broadband noise (" + vs_refs(d) + ")";
      c.verb_phrase = up           ? "has more broadband noise (" + signed_db(d) + ")"
                      : parts.flow ? "has less flow noise (" + signed_db(d) + "), as if clogged"
                                   : "has less broadband noise (" + signed_db(d) + ")";
    } else if (key == "tone_db") {
      const EvidenceRow* hz = find_row(rows, "tone_hz");
      const double f = hz ? (up ? hz->anomalous : median_of(hz->neighbors)) : 0;
      c.is_phrase = up ? "louder in a high-pitched tone near " + frequency(f) + " (" + vs_refs(d) + ")"
                       : "missing the high-pitched tone the normal sounds have near " + frequency(f);
      c.verb_phrase = up ? "has a high-pitched whine near " + frequency(f) + " (" + signed_db(d) + ")"
                         : "lacks the normal high-pitched tone near " + frequency(f);
    } else if (key == "impulse_rate" || key == "impulse_db") {
      const EvidenceRow* rate = find_row(rows, "impulse_rate");
      const double r = rate ? rate->anomalous : 0;
      if (up) {
        const std::string what = r >= 10 ? "rapid rattling or knocking " : "sharp knocks ";
        c.is_phrase = "punctuated by " + what + times_per_second(r) +
                      " (normal references: " + fmt("%.1f", rate ? rate->reference_mean : 0) + ")";
        c.verb_phrase = "has " + what + times_per_second(r);
        if (key == "impulse_db") {
          c.is_phrase = "marked by stronger knocks or impacts (peaks " + vs_refs(d) + ")";
          c.verb_phrase = "has stronger knocks or impacts (" + signed_db(d) + " peaks)";
        }
      } else {
        c.is_phrase = "smoother, with fewer sharp transients than the normal references";
        c.verb_phrase = "has fewer sharp transients";
      }
      c.group = "impulses";
      if (key == "impulse_rate" && up && knocks_rhythm) c.group = "knocks";
    } else if (key == "burst_rate" || key == "burst_db") {
      const EvidenceRow* rate = find_row(rows, "burst_rate");
      const EvidenceRow* level = find_row(rows, "burst_db");
      const EvidenceRow* band = find_row(rows, "burst_hz");
      const EvidenceRow* regular = find_row(rows, "burst_regularity");
      const EvidenceRow* period = find_row(rows, "burst_period_hz");
      const double r = rate ? rate->anomalous : 0, lvl = level ? level->anomalous : 0;
      const std::string near = band ? " near " + frequency(band->anomalous) : "";
      const std::string refs = "(normal references: " + fmt("%.1f", rate ? rate->reference_mean : 0) + " per second)";
      const bool periodic = regular && period && regular->anomalous >= 0.5 && period->anomalous > 0;
      const size_t n = burst_times ? burst_times->size() : 0;
      if (!up) {
        c.is_phrase = "calmer, with fewer short bursts than the normal references " + refs;
        c.verb_phrase = "has fewer short bursts " + refs;
      } else if (periodic) {
        const std::string what = "short ticks or impacts" + near + " " + times_per_second(period->anomalous) + ", " +
                                 unsigned_db(lvl) + " dB over the background";
        c.is_phrase = "marked by " + what + " " + refs;
        c.verb_phrase = "has " + what;
      } else {
        const std::string when = n ? " " + at_times(*burst_times) : "";
        const std::string what = fmt("%.0f", static_cast<double>(n ? n : std::lround(r))) + " short bursts" + near +
                                 when + " (" + unsigned_db(lvl) + " dB over the background, " + fmt("%.1f", r) +
                                 " per second)";
        c.is_phrase = "interrupted by " + what + ", as crackle or random impacts";
        c.verb_phrase = "has " + what;
      }
      if (key == "burst_db" && up) {
        c.is_phrase = "marked by short events standing " + unsigned_db(lvl) + " dB over the background" + near +
                      " (normal references: " + unsigned_db(level ? level->reference_mean : 0) + " dB)";
        c.verb_phrase = "has stronger short events (" + unsigned_db(lvl) + " dB over the background)";
      }
      c.group = "impulses";
    } else if (key == "sideband_db") {
      const EvidenceRow* spacing = find_row(rows, "sideband_hz");
      const EvidenceRow* carrier = find_row(rows, "carrier_hz");
      // Sidebands at the rate of a clear modulation of the whole sound, or of a clear shaft tone,
      // are that modulation seen on one tone: named after it.
      if (up && spacing &&
          (clear_at_rate(rows, "vibration_pct", "vibration_hz", spacing->anomalous) ||
           clear_at_rate(rows, "shaft_db", "shaft_hz", spacing->anomalous)))
        c.score = std::min(c.score, kNameThreshold);
      const std::string around = "sidebands " + fmt("%.0f", spacing ? spacing->anomalous : 0) +
                                 " Hz apart around its " + frequency(carrier ? carrier->anomalous : 0) + " tone (" +
                                 fmt("%.0f", row.anomalous) + " dBc" +
                                 // -60 dBc: no sidebands stand out
                                 (row.reference_mean <= -59.5 ? ", none in the normal references)"
                                                              : " vs " + fmt("%.0f", row.reference_mean) + " dBc)");
      c.is_phrase = up ? "modulated, with " + around +
                             (parts.gears   ? ", as from gear wear or a shaft-rate modulation"
                              : parts.rotor ? ", as from a shaft-rate modulation"
                                            : "")
                       : "cleaner around its main tone, with weaker " + around;
      c.verb_phrase = up ? "has " + around : "has weaker " + around;
    } else if (key == "shaft_db") {
      const EvidenceRow* hz = find_row(rows, "shaft_hz");
      const std::string tone =
          "a low tone at " + fmt("%.0f", hz ? hz->anomalous : 0) + " Hz with its harmonics (" + vs_refs(d) + ")";
      c.is_phrase =
          up ? "heavier in " + tone + (parts.rotor ? ", as from an unbalanced shaft" : "") : "lighter in " + tone;
      c.verb_phrase = up ? "has " + tone : "has less of " + tone;
      c.group = "shaft";
    } else if (key == "hum_noise_db") {
      // The ratio is for a change too subtle for either part: when the flow noise alone clearly
      // collapses, that is named directly and the ratio only follows it.
      const EvidenceRow* noise = find_row(rows, "noise_db");
      if (up && noise && noise->strength <= -kNameThreshold) c.score = std::min(c.score, kNameThreshold);
      const EvidenceRow* hz = find_row(rows, "hum_noise_hz");
      const std::string hum = "motor hum at " + fmt("%.0f", hz ? hz->anomalous : 0) + " Hz";
      const std::string over = " over its " + background + " (";
      c.is_phrase = up ? "heavier in " + hum + over + vs_refs(d) + ")" + (parts.flow ? ", as when the flow drops" : "")
                       : "lighter in " + hum + over + vs_refs(d) + ")";
      c.verb_phrase =
          up ? "has more " + hum + over + signed_db(d) + ")" : "has less " + hum + over + signed_db(d) + ")";
      c.group = "hum_noise";
    } else if (key == "click_strength") {
      const EvidenceRow* rate = find_row(rows, "click_rate");
      const double r = rate ? rate->anomalous : 0;
      const std::string how = r < 10 ? "knocking" : "rattling or clicking";
      c.is_phrase = up ? how + " rhythmically " + times_per_second(r) + " (periodicity " +
                             versus(row.anomalous, row.reference_mean, 2, "") + ")"
                       : "less rhythmic than the normal references";
      c.verb_phrase =
          up ? (r < 10 ? "knocks" : "rattles or clicks") + std::string(" rhythmically ") + times_per_second(r)
             : "is less rhythmic";
      c.group = up && knocks_rhythm ? "knocks" : "click";
    } else if (key == "rattle_pct") {
      const EvidenceRow* hz = find_row(rows, "rattle_hz");
      const double r = hz ? hz->anomalous : 0;
      const std::string cmp = "(rattle " + versus(row.anomalous, row.reference_mean, 0, "%") + ")";
      c.is_phrase = up ? "rattling or clicking rhythmically " + times_per_second(r) + " in the high frequencies " + cmp
                       : "less rattly than the normal references " + cmp;
      c.verb_phrase = up ? "rattles or clicks rhythmically " + times_per_second(r) : "rattles less";
      c.group = "click";
    } else if (key == "impact_db") {
      const EvidenceRow* hz = find_row(rows, "impact_hz");
      const EvidenceRow* band = find_row(rows, "impact_band_hz");
      const std::string near = band ? " near " + frequency(band->anomalous) : "";
      const auto [line, usual] = distinct_db(row.anomalous, row.reference_mean);
      const std::string cmp = "(envelope line " + line + " dB vs " + usual + " dB normally)";
      const std::string what = "ticks or impacts" + near + " " + times_per_second(hz ? hz->anomalous : 0);
      c.is_phrase = up ? "marked by periodic " + what + " " + cmp : "less marked by periodic ticks than its references";
      c.verb_phrase = up ? "has periodic " + what + " " + cmp : "has fewer periodic ticks";
      c.group = "click";
    } else if (key == "crackle_db") {
      if (up && crackle_is_the_swell(rows, d)) continue;
      const EvidenceRow* band = find_row(rows, "crackle_hz");
      const std::string near = band ? " near " + frequency(band->anomalous) : "";
      const std::string when = row.times.empty() ? "" : " " + at_times(row.times);
      const auto [bursts, usual] = distinct_db(row.anomalous, row.reference_mean);
      const std::string cmp = "(bursts " + bursts + " dB over the band's level vs " + usual + " dB normally)";
      c.is_phrase = up ? "crackling" + near + when + " " + cmp : "steadier" + near + " than its references " + cmp;
      c.verb_phrase = up ? "crackles" + near + when + " " + cmp : "is steadier" + near;
      c.group = "impulses";
    } else if (key == "impact_sync") {
      const EvidenceRow* hz = find_row(rows, "impact_sync_hz");
      const EvidenceRow* band = find_row(rows, "impact_sync_band_hz");
      const std::string near = band ? " near " + frequency(band->anomalous) : "";
      const std::string cmp =
          "(synchronous average " + versus(row.anomalous, row.reference_mean, 0, "") + " sigma normally)";
      const std::string what = "impacts" + near + " " + times_per_second(hz ? hz->anomalous : 0);
      c.is_phrase =
          up ? "marked by faint periodic " + what + " " + cmp : "less marked by periodic impacts than its references";
      c.verb_phrase = up ? "has faint periodic " + what + " " + cmp : "has fewer periodic impacts";
      c.group = "click";
    } else if (key == "grind_db") {
      c.is_phrase = up ? "noisier, with broadband grinding or hiss above 4 kHz (" + vs_refs(d) + ")"
                       : "duller, with less noise above 4 kHz (" + vs_refs(d) + ")";
      c.verb_phrase = up ? "has more broadband grinding noise above 4 kHz (" + signed_db(d) + ")"
                         : "has less noise above 4 kHz (" + signed_db(d) + ")";
      c.group = "grind";
    } else if (key == "flatness") {
      c.is_phrase = up ? "more noise-like, grinding or hissing, above 2 kHz" : "more tonal above 2 kHz";
      c.verb_phrase = up ? "sounds more like grinding or hiss above 2 kHz" : "sounds more tonal above 2 kHz";
      c.group = "grind";
    } else if (key == "centroid_hz") {
      const std::string cmp =
          "(spectral centre " + frequency(row.anomalous) + " vs " + frequency(row.reference_mean) + ")";
      c.is_phrase =
          up ? "brighter, shifted to higher pitch " + cmp : "duller or muffled, shifted to lower pitch " + cmp;
      c.verb_phrase = up ? "sounds brighter " + cmp : "sounds muffled " + cmp;
    } else if (key == "irregularity") {
      c.is_phrase = up ? "more irregular in loudness over time (variation " +
                             versus(row.anomalous, row.reference_mean, 2, "") + ")"
                       : "steadier in loudness than the normal references";
      c.verb_phrase = up ? "is more irregular over time" : "is steadier over time";
    } else if (key == "dropout_pct" || key == "dropout_count") {
      const EvidenceRow* pct = find_row(rows, "dropout_pct");
      const EvidenceRow* count = find_row(rows, "dropout_count");
      const double n = count ? count->anomalous : 0, p = pct ? pct->anomalous : 0;
      const std::string what =
          fmt("%.0f", n) + (n == 1 ? " time" : " times") + " (" + fmt("%.0f", p) + "% of the time)";
      c.is_phrase =
          up ? "interrupted by drop-outs to near silence " + what : "free of the short silences the normal sounds have";
      c.verb_phrase = up ? "cuts out to near silence " + what : "has fewer short silences";
      c.group = "dropouts";
    } else {
      continue;
    }
    out.push_back(std::move(c));
  }
}

void similarity_candidates(const std::vector<std::string>& texts, const std::vector<double>& a,
                           const std::vector<std::vector<double>>& normals, std::vector<Candidate>& out) {
  for (size_t t = 0; t < texts.size() && t < a.size(); ++t) {
    std::vector<double> v;
    for (const auto& row : normals)
      if (t < row.size()) v.push_back(row[t]);
    if (v.empty()) continue;
    const double mean = std::accumulate(v.begin(), v.end(), 0.0) / v.size();
    double var = 0;
    for (double x : v) var += (x - mean) * (x - mean);
    const double sd = v.size() > 1 ? std::sqrt(var / (v.size() - 1)) : 0.0;
    const double z = (a[t] - mean) / std::max(sd, 0.01);
    const std::string cmp = "(" + versus(a[t], mean, 2, "") + ")";
    const std::string quoted = "\"" + texts[t] + "\"";
    Candidate c{std::fabs(z), "text:" + texts[t], "text:" + texts[t], "", ""};
    c.is_phrase =
        std::string(z > 0 ? "closer to " : "further from ") + quoted + " " + cmp + " than its normal references";
    c.verb_phrase = std::string(z > 0 ? "matches " : "matches less ") + quoted + " " + cmp;
    out.push_back(std::move(c));
  }
}

std::vector<std::string> content_words(const std::string& caption) {
  static const std::set<std::string> stop = {"a",     "an",    "the", "and", "or",   "of",   "in",     "on",   "with",
                                             "is",    "are",   "it",  "its", "to",   "as",   "sounds", "like", "sound",
                                             "being", "while", "by",  "at",  "from", "that", "this",   "some", "there"};
  std::vector<std::string> words;
  std::string w;
  for (char ch : caption + " ") {
    if (std::isalpha(static_cast<unsigned char>(ch))) {
      w += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    } else if (!w.empty()) {
      if (!stop.count(w)) words.push_back(w);
      w.clear();
    }
  }
  return words;
}

// Words of the anomalous caption that none of the normal captions uses.
void caption_candidates(const std::string& anomalous, const std::vector<std::string>& normals,
                        std::vector<Candidate>& out) {
  std::set<std::string> normal_words;
  for (const auto& n : normals)
    for (const auto& w : content_words(n)) normal_words.insert(w);
  std::vector<std::string> fresh;
  for (const auto& w : content_words(anomalous))
    if (!normal_words.count(w) && std::find(fresh.begin(), fresh.end(), w) == fresh.end()) fresh.push_back(w);
  if (fresh.empty()) return;
  if (fresh.size() > 3) fresh.resize(3);
  std::string list;
  for (size_t i = 0; i < fresh.size(); ++i) list += (i ? ", " : "") + fresh[i];
  // New words are a strong, but not measured, hint: rank them like a clear z-score.
  out.push_back({3.0 + fresh.size() * 0.1, "caption", "caption",
                 "described with words its normal references lack (" + list + ")",
                 "is described with new words (" + list + ")"});
}

}  // namespace

int count_words(const std::string& sentence) {
  std::istringstream in(sentence);
  int n = 0;
  for (std::string w; in >> w;) ++n;
  return n;
}

OfflineAnswer explain_offline(const OfflineInput& in) {
  std::vector<Candidate> candidates;
  if (in.evidence)
    evidence_candidates(*in.evidence, in.burst_times, in.parts ? *in.parts : machine_parts_from_name(in.machine),
                        candidates);
  if (in.texts && in.anomalous_similarity && in.normal_similarity)
    similarity_candidates(*in.texts, *in.anomalous_similarity, *in.normal_similarity, candidates);
  if (in.anomalous_caption && in.normal_captions)
    caption_candidates(*in.anomalous_caption, *in.normal_captions, candidates);
  std::stable_sort(candidates.begin(), candidates.end(),
                   [](const Candidate& a, const Candidate& b) { return a.score > b.score; });

  std::vector<const Candidate*> chosen;
  std::set<std::string> groups;
  for (const auto& c : candidates) {
    if (c.score < kNameThreshold) break;
    if (groups.insert(c.group).second) chosen.push_back(&c);
  }

  OfflineAnswer out;
  if (chosen.empty()) {
    if (in.anomalous_caption && in.normal_captions && candidates.empty()) {
      out.answer = "This sound is described like its normal references, so the captions show no clear difference.";
      return out;
    }
    out.answer =
        "This sound is flagged by the detector, but none of the measured features differs clearly from its normal "
        "references.";
    return out;
  }
  // Add phrases, strongest first, up to three while the sentence stays within the limit (a phrase
  // too long for what is left gives way to the next, shorter one).
  std::vector<const Candidate*> used;
  std::string sentence;
  for (const Candidate* c : chosen) {
    if (used.size() == 3) break;
    used.push_back(c);
    std::string s = "This sound is " + used[0]->is_phrase;
    for (size_t i = 1; i < used.size(); ++i) s += (i + 1 == used.size() ? " and " : ", ") + used[i]->verb_phrase;
    s += ".";
    if (count_words(s) > kMaxWords) {
      used.pop_back();
      if (used.empty()) {
        sentence = "This sound is " + c->is_phrase;  // truncated below
        break;
      }
      continue;
    }
    sentence = s;
  }
  if (count_words(sentence) > kMaxWords) {
    std::istringstream words(sentence);
    std::string w, cut;
    for (int i = 0; i < kMaxWords && words >> w; ++i) cut += (i ? " " : "") + w;
    sentence = cut + (cut.back() == '.' ? "" : ".");
  }
  out.answer = sentence;
  for (const Candidate* c : used) out.named.push_back(c->key);
  if (used.empty() && !chosen.empty()) out.named.push_back(chosen.front()->key);
  return out;
}

}  // namespace asdcap
