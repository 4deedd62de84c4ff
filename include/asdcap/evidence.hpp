// Acoustic evidence: interpretable measurements of a clip that mirror the papers' reference texts
// (low-frequency humming, high-frequency squealing, knocking, rhythmic clicking, grinding,
// irregular patterns, unexpected silence), each in physical units, and their comparison between
// an anomalous clip and its k nearest normal clips.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace asdcap {

struct FeatureSpec {
  std::string key;        // stable identifier, e.g. "tone_db"
  std::string name;       // plain words, e.g. "High-frequency tonal peak above 2 kHz"
  std::string unit;       // e.g. "dB", "Hz", "per second", "%"
  int decimals;           // how values are written into prompts
  double spread_floor;    // lower bound of the references' spread used for z-scores...
  double relative_floor;  // ...and as a fraction of the references' mean magnitude (0: none)
  bool scored;            // false: descriptive only (e.g. a frequency), no z-score
  double resolution;      // smallest difference worth naming (below it a difference is measurement noise)
};

// The features, in the order of every value vector below.
const std::vector<FeatureSpec>& evidence_features();
// Index of a feature key in evidence_features(); throws Error for an unknown key.
size_t evidence_index(const std::string& key);

// A feature measured as its largest value over a parameter (a band, a rate, a period), with its
// value at every step of that parameter: compare_evidence measures a reference where the anomalous
// clip's own maximum lies, so that what the normal sound has elsewhere (events in another band, a
// rhythm or a modulation at another rate) does not mask a new one.
struct FeatureProfile {
  double first = 0, step = 1;  // the parameter of a row's i-th value is first + i x step
  std::vector<double> values;  // in the feature's unit; rows of `columns` values one after another
  double at = 0;               // the parameter of the clip's own value (its maximum)
  double tolerance = 0;        // relative: a reference counts over at x (1 +- tolerance), at least +-half a step
  size_t columns = 0;          // values per row; 0: one row (all of values)
  size_t row = 0;              // the row of the clip's own value (e.g. a band); a reference is read in the same row
  // True: compare_evidence reads the clip in the row where it stands furthest above its references
  // (e.g. the band where new events appear, not the one where the normal sound has its own).
  bool row_by_references = false;
};

struct ClipEvidence {
  std::vector<double> values;       // one per evidence_features()
  std::vector<double> burst_times;  // seconds: the short events counted by burst_rate, in time order
  // By feature key: burst_rate over the octave bands it searches (by index), click_strength over
  // the transients' period (s), vibration_pct and shaft_db over frequency (Hz), impact_db over the
  // rate (Hz), one row per view and half-octave band, impact_sync likewise per octave band,
  // crackle_db per octave band (one value each; crackle_hz holds the bands' centres and
  // crackle_times each band's loud moments, kCrackleMoments columns in seconds, -1 where fewer).
  std::map<std::string, FeatureProfile> profiles;
};

// Measures a mono signal at `sample_rate` (any rate >= 8000; features above 2 kHz use the band up
// to 0.9 x Nyquist). Throws FormatError for signals shorter than 0.5 s.
ClipEvidence measure_evidence(const float* samples, int64_t n, int sample_rate);
// Decodes the file (channels averaged) at its own rate and measures it. Throws IoError/FormatError.
ClipEvidence measure_evidence_file(const std::string& path);

struct EvidenceRow {
  const FeatureSpec* spec;
  double anomalous;
  std::vector<double> neighbors;
  double reference_mean;
  std::optional<double> z;  // (anomalous - mean) / max(sample std, floors); none if !scored
  // Against the whole reference set (the normal clips retrieved for any clip of the machine ID),
  // when it has at least 5 clips: (anomalous - median) / max(1.4826 x MAD, floors), and the
  // percentage of the set below the clip (ties count half).
  std::optional<double> z_all, percentile;
  // What the explainer ranks by: z, but 0 when the difference is below the feature's resolution or
  // the whole set disagrees in sign, and never larger in magnitude than z_all.
  double strength = 0;
  // Seconds into the clip where a feature made of moments (crackle_db) has them, in time order,
  // and the same for each neighbour (in the row the anomalous clip is read in, e.g. its band).
  std::vector<double> times;
  std::vector<std::vector<double>> neighbor_times;
};

// `pool`: the whole reference set of the clip's machine ID (may be empty).
std::vector<EvidenceRow> compare_evidence(const ClipEvidence& anomalous, const std::vector<ClipEvidence>& neighbors,
                                          const std::vector<ClipEvidence>& pool = {});

// A value with the feature's decimals ("-23.4", "0.312").
std::string format_feature(const FeatureSpec& spec, double value);
// "name (unit)" as a CSV header.
std::string feature_header(const FeatureSpec& spec);

}  // namespace asdcap
