// The offline explainer: one "This sound is ..." sentence, at most 40 words, naming the
// strongest differences in plain words.
#include <gtest/gtest.h>

#include <algorithm>
#include <optional>

#include "asdcap/error.hpp"
#include "asdcap/evidence.hpp"
#include "asdcap/llm.hpp"
#include "evidence_values.hpp"

using namespace asdcap;
using asdcap::test::with_values;

namespace {

// Evidence where every feature equals the references except the given ones.
std::vector<EvidenceRow> rows_with(const std::vector<std::pair<std::string, double>>& anomalous_values,
                                   const std::vector<std::pair<std::string, double>>& reference_values = {}) {
  const size_t n = evidence_features().size();
  ClipEvidence a = with_values(n, 1.0);
  std::vector<ClipEvidence> refs(4, with_values(n, 1.0));
  for (const auto& [k, v] : reference_values)
    for (auto& r : refs) r.values[evidence_index(k)] = v;
  for (const auto& [k, v] : anomalous_values) a.values[evidence_index(k)] = v;
  return compare_evidence(a, refs);
}

void expect_well_formed(const std::string& s) {
  EXPECT_EQ(s.rfind("This sound is ", 0), 0u) << s;
  EXPECT_LE(count_words(s), 40) << s;
  EXPECT_EQ(s.back(), '.') << s;
}

// The offline explainer's answer for the evidence alone, checked to be one well-formed sentence.
OfflineAnswer explain_rows(const std::vector<EvidenceRow>& rows, const std::string& machine = "") {
  OfflineInput in;
  in.evidence = &rows;
  in.machine = machine;
  OfflineAnswer a = explain_offline(in);
  expect_well_formed(a.answer);
  return a;
}

}  // namespace

TEST(ExplainOffline, NamesToneWithFrequencyAndLevel) {
  const auto rows = rows_with({{"tone_db", 20.0}, {"tone_hz", 3210.0}, {"impulse_rate", 4.2}},
                              {{"tone_db", 6.0}, {"tone_hz", 1000.0}, {"impulse_rate", 0.0}});
  const OfflineAnswer a = explain_rows(rows);
  ASSERT_EQ(a.named.size(), 2u);
  EXPECT_EQ(a.named[0], "tone_db");  // both beyond the cap (5): the order of the features decides
  EXPECT_EQ(a.named[1], "impulse_rate");
  EXPECT_EQ(a.answer,
            "This sound is louder in a high-pitched tone near 3.2 kHz (+14 dB over the normal references) and "
            "has sharp knocks about 4 times per second.");
  EXPECT_EQ(explain_rows(rows).answer, a.answer);  // deterministic
}

TEST(ExplainOffline, NothingStandsOut) {
  const auto rows = rows_with({{"level_db", 1.5}});
  const OfflineAnswer a = explain_rows(rows);
  EXPECT_TRUE(a.named.empty());
  EXPECT_EQ(a.answer,
            "This sound is flagged by the detector, but none of the measured features differs clearly from its "
            "normal references.");
}

// A difference below the feature's resolution is never named, however small the references' spread.
TEST(ExplainOffline, SubResolutionDifferenceIsNotNamed) {
  const auto rows = rows_with({{"impulse_db", 1.3}, {"burst_rate", 1.1}});
  OfflineInput in;
  in.evidence = &rows;
  const OfflineAnswer a = explain_offline(in);
  EXPECT_TRUE(a.named.empty()) << a.answer;
  EXPECT_EQ(a.answer.find("+0 dB"), std::string::npos) << a.answer;
}

// Random short events are named with their count, times and level over the background.
TEST(ExplainOffline, BurstsAreNamedWithTheirTimes) {
  const auto rows = rows_with({{"burst_rate", 2.0}, {"burst_db", 4.2}, {"burst_hz", 4000.0}, {"burst_regularity", 0.1}},
                              {{"burst_rate", 0.2}});
  const std::vector<double> times = {0.31, 0.82, 1.5, 2.25, 3.0, 3.6, 4.1, 4.4, 4.7, 4.9};
  OfflineInput in;
  in.evidence = &rows;
  in.burst_times = &times;
  const OfflineAnswer a = explain_offline(in);
  expect_well_formed(a.answer);
  ASSERT_EQ(a.named.size(), 1u);
  EXPECT_EQ(a.named[0], "burst_rate");
  EXPECT_EQ(a.answer,
            "This sound is interrupted by 10 short bursts near 4.0 kHz at 0.3 s, 0.8 s, 1.5 s, 2.2 s, ... (4 dB over "
            "the background, 2.0 per second), as crackle or random impacts.");
}

TEST(ExplainOffline, ManyDifferencesStayWithinFortyWords) {
  const auto rows = rows_with({{"tone_db", 30},
                               {"impulse_rate", 20},
                               {"dropout_pct", 30},
                               {"dropout_count", 5},
                               {"vibration_pct", 60},
                               {"hum_db", 15},
                               {"noise_db", -20},
                               {"level_db", 10}});
  const OfflineAnswer a = explain_rows(rows);
  EXPECT_GE(a.named.size(), 2u);
  EXPECT_LE(a.named.size(), 3u);
}

TEST(ExplainOffline, DropoutsAndClogging) {
  auto rows = rows_with({{"dropout_pct", 12.0}, {"dropout_count", 4}}, {{"dropout_pct", 0}, {"dropout_count", 0}});
  OfflineInput in;
  in.evidence = &rows;
  OfflineAnswer a = explain_offline(in);
  expect_well_formed(a.answer);
  ASSERT_FALSE(a.named.empty());
  EXPECT_EQ(a.named[0], "dropout_pct");
  EXPECT_NE(a.answer.find("drop-outs to near silence 4 times (12% of the time)"), std::string::npos) << a.answer;

  rows = rows_with({{"noise_db", -40.0}}, {{"noise_db", -31.0}});
  in.machine = "pump";
  a = explain_offline(in);
  ASSERT_FALSE(a.named.empty());
  EXPECT_EQ(a.named[0], "noise_db");
  EXPECT_NE(a.answer.find("much lower in broadband flow noise (9 dB below the normal references), as from a clogged"),
            std::string::npos)
      << a.answer;
}

// A blocked flow is a cause only for machines that move air or liquid: the same collapse of the
// broadband noise of a gearbox, or of a machine of unknown type, is named without it.
TEST(ExplainOffline, FlowWordsOnlyForMachinesThatMoveAirOrLiquid) {
  const auto rows = rows_with({{"noise_db", -40.0}}, {{"noise_db", -31.0}});
  for (const char* machine : {"fan", "pump", "valve", "AirCompressor", "HairDryer", "Vacuum"})
    EXPECT_NE(
        explain_rows(rows, machine).answer.find("flow noise (9 dB below the normal references), as from a clogged"),
        std::string::npos)
        << machine;
  for (const char* machine : {"gearbox", "slider", "ToyCar", "bearing", ""}) {
    const OfflineAnswer a = explain_rows(rows, machine);
    ASSERT_EQ(a.named, std::vector<std::string>{"noise_db"}) << machine;
    EXPECT_EQ(a.answer, "This sound is much lower in broadband noise (9 dB below the normal references).") << machine;
  }
  const auto hum =
      rows_with({{"hum_noise_db", 4.0}, {"hum_noise_hz", 100.0}}, {{"hum_noise_db", 1.0}, {"hum_noise_hz", 100.0}});
  EXPECT_EQ(
      explain_rows(hum, "gearbox").answer,
      "This sound is heavier in motor hum at 100 Hz over its broadband noise (+3 dB over the normal references).");
  EXPECT_NE(explain_rows(hum, "pump")
                .answer.find("over its flow noise (+3 dB over the normal references), as when the "
                             "flow drops"),
            std::string::npos);
}

// Knocks 6 times a second modulate the level at 6 Hz: that modulation is the knocks, named as such,
// not a vibration; the same modulation without clear events is a vibration.
TEST(ExplainOffline, ModulationAtTheRateOfClearEventsIsTheEvents) {
  auto rows = rows_with({{"vibration_pct", 25.0},
                         {"vibration_hz", 6.0},
                         {"impulse_rate", 6.0},
                         {"click_strength", 0.6},
                         {"click_rate", 6.1}},
                        {{"vibration_pct", 3.0}, {"impulse_rate", 0.0}, {"click_strength", 0.0}});
  OfflineInput in;
  in.evidence = &rows;
  OfflineAnswer a = explain_offline(in);
  expect_well_formed(a.answer);
  ASSERT_FALSE(a.named.empty());
  EXPECT_EQ(std::count(a.named.begin(), a.named.end(), "vibration_pct"), 0) << a.answer;
  rows = rows_with({{"vibration_pct", 25.0}, {"vibration_hz", 25.0}}, {{"vibration_pct", 3.0}});
  a = explain_offline(in);
  ASSERT_FALSE(a.named.empty());
  EXPECT_EQ(a.named[0], "vibration_pct");
}

// The motor hum over the flow noise, with its frequency.
TEST(ExplainOffline, MotorHumOverFlowNoise) {
  const auto rows =
      rows_with({{"hum_noise_db", 4.0}, {"hum_noise_hz", 100.0}}, {{"hum_noise_db", 1.0}, {"hum_noise_hz", 100.0}});
  const OfflineAnswer a = explain_rows(rows, "pump");
  ASSERT_EQ(a.named.size(), 1u);
  EXPECT_EQ(a.named[0], "hum_noise_db");
  EXPECT_NE(a.answer.find("motor hum at 100 Hz over its flow noise (+3 dB over the normal references)"),
            std::string::npos)
      << a.answer;
}

// The causes follow the machine type: an unbalanced rotor or shaft only for machines with one
// (not a valve or a slide rail), gear wear only for a gearbox (or an unknown type, hedged).
TEST(ExplainOffline, CausesFollowTheMachineType) {
  const auto swell = rows_with({{"vibration_pct", 25.0}, {"vibration_hz", 25.0}}, {{"vibration_pct", 3.0}});
  const auto shaft = rows_with({{"shaft_db", 12.0}, {"shaft_hz", 20.0}}, {{"shaft_db", 2.0}});
  const auto sidebands = rows_with({{"sideband_db", -18.0}, {"sideband_hz", 25.0}, {"carrier_hz", 780.0}},
                                   {{"sideband_db", -60.0}, {"carrier_hz", 780.0}});
  const auto names = [](const std::vector<EvidenceRow>& rows, const std::string& machine, const std::string& cause) {
    return explain_rows(rows, machine).answer.find(cause) != std::string::npos;
  };
  for (const char* machine : {"fan", "gearbox", "ToyCar", ""}) {
    EXPECT_TRUE(names(swell, machine, "(modulation 25% vs 3%), as from an unbalanced rotor.")) << machine;
    EXPECT_TRUE(names(shaft, machine, "as from an unbalanced shaft")) << machine;
  }
  for (const char* machine : {"valve", "slider"}) {
    EXPECT_EQ(explain_rows(swell, machine).answer,
              "This sound is pulsating with a strong vibration at about 25 Hz (modulation 25% vs 3%).")
        << machine;
    EXPECT_FALSE(names(shaft, machine, "unbalanced")) << machine;
    EXPECT_FALSE(names(sidebands, machine, "as from")) << machine;
  }
  for (const char* machine : {"gearbox", ""}) EXPECT_TRUE(names(sidebands, machine, "as from gear wear")) << machine;
  for (const char* machine : {"fan", "pump"}) {
    EXPECT_FALSE(names(sidebands, machine, "gear")) << machine;
    EXPECT_TRUE(names(sidebands, machine, "none in the normal references), as from a shaft-rate modulation."))
        << machine;
  }
}

// Parts a user declares for a type replace the guess from its name: a "line3-motor" declared to
// move air gets the flow words, a fan declared to have neither flow nor rotor gets none.
TEST(ExplainOffline, DeclaredPartsReplaceTheGuessFromTheName) {
  const auto noise = rows_with({{"noise_db", -40.0}}, {{"noise_db", -31.0}});
  const auto swell = rows_with({{"vibration_pct", 25.0}, {"vibration_hz", 25.0}}, {{"vibration_pct", 3.0}});
  const auto sidebands = rows_with({{"sideband_db", -18.0}, {"sideband_hz", 25.0}, {"carrier_hz", 780.0}},
                                   {{"sideband_db", -60.0}, {"carrier_hz", 780.0}});
  const auto answer = [](const std::vector<EvidenceRow>& rows, const std::string& machine,
                         std::optional<MachineParts> parts) {
    OfflineInput in;
    in.evidence = &rows;
    in.machine = machine;
    in.parts = parts;
    OfflineAnswer a = explain_offline(in);
    expect_well_formed(a.answer);
    return a.answer;
  };
  const MachineParts flow{true, false, false}, none{false, false, false}, gears{false, true, true};
  EXPECT_EQ(answer(noise, "line3-motor", std::nullopt),
            "This sound is much lower in broadband noise (9 dB below the normal references).");
  EXPECT_EQ(answer(noise, "line3-motor", flow),
            "This sound is much lower in broadband flow noise (9 dB below the normal references), as from a clogged "
            "or blocked flow.");
  EXPECT_EQ(answer(noise, "fan", none),
            "This sound is much lower in broadband noise (9 dB below the normal references).");
  EXPECT_EQ(answer(swell, "fan", none),
            "This sound is pulsating with a strong vibration at about 25 Hz (modulation 25% vs 3%).");
  EXPECT_EQ(answer(sidebands, "fan", none).find("as from"), std::string::npos);
  EXPECT_NE(answer(sidebands, "drive-7", gears).find("as from gear wear or a shaft-rate modulation"),
            std::string::npos);
  EXPECT_NE(answer(sidebands, "drive-7", MachineParts{false, true, false}).find("as from a shaft-rate modulation"),
            std::string::npos);
}

TEST(ExplainOffline, MachinePartsAreParsedStrictly) {
  EXPECT_EQ(parse_machine_parts("none"), (MachineParts{false, false, false}));
  EXPECT_EQ(parse_machine_parts("flow"), (MachineParts{true, false, false}));
  EXPECT_EQ(parse_machine_parts("gears,flow"), (MachineParts{true, false, true}));
  EXPECT_EQ(parse_machine_parts("rotor,gears,flow"), (MachineParts{true, true, true}));
  for (const char* bad : {"", "wings", "flow,", ",rotor", "flow,flow", "none,flow", "Flow", "flow rotor"})
    EXPECT_THROW(parse_machine_parts(bad), InvalidArgument) << bad;
  try {
    parse_machine_parts("rotor,wings");
    FAIL();
  } catch (const InvalidArgument& e) {
    EXPECT_STREQ(e.what(), "machine parts \"rotor,wings\": \"wings\" is not one of flow, rotor, gears (or none alone)");
  }
  // The guess from a name, as the causes the explainer suggests follow it.
  EXPECT_EQ(machine_parts_from_name("AirCompressor"), (MachineParts{true, true, false}));
  EXPECT_EQ(machine_parts_from_name("valve"), (MachineParts{true, false, false}));
  EXPECT_EQ(machine_parts_from_name("gearbox"), (MachineParts{false, true, true}));
  EXPECT_EQ(machine_parts_from_name(""), (MachineParts{false, true, true}));
}

// Knocks counted at 2 per second in a rhythm found at 3 per second are the same knocks: one
// phrase names them, not two rates, and a rattle at 27 per second is still named beside them;
// knocks at another rate than the rhythm are named beside it.
TEST(ExplainOffline, SharpKnocksOfAClearRhythmAreNamedOnce) {
  const auto named = [](double knocks_per_second) {
    return explain_rows(rows_with({{"click_strength", 0.5},
                                   {"click_rate", 3.0},
                                   {"impulse_rate", knocks_per_second},
                                   {"noise_db", -40.0},
                                   {"rattle_pct", 9.0},
                                   {"rattle_hz", 27.0}},
                                  {{"click_strength", 0.0}, {"impulse_rate", 0.0}, {"noise_db", -31.0}}),
                        "valve")
        .named;
  };
  const auto same = named(2.0);
  EXPECT_EQ(
      std::count(same.begin(), same.end(), "click_strength") + std::count(same.begin(), same.end(), "impulse_rate"), 1);
  EXPECT_EQ(std::count(same.begin(), same.end(), "rattle_pct"), 1);  // a rattle at 27 per second, beside them
  const auto other = named(9.0);
  EXPECT_EQ(std::count(other.begin(), other.end(), "click_strength"), 1);
  EXPECT_EQ(std::count(other.begin(), other.end(), "impulse_rate"), 1);
}

// Sidebands where the references have none (-60 dBc) say so instead of comparing with the sentinel.
TEST(ExplainOffline, SidebandsAgainstReferencesWithoutAny) {
  const auto rows = rows_with({{"sideband_db", -18.0}, {"sideband_hz", 25.0}, {"carrier_hz", 780.0}},
                              {{"sideband_db", -60.0}, {"carrier_hz", 780.0}});
  const OfflineAnswer a = explain_rows(rows);
  ASSERT_EQ(a.named.size(), 1u);
  EXPECT_EQ(a.named[0], "sideband_db");
  EXPECT_NE(a.answer.find("sidebands 25 Hz apart around its 780 Hz tone (-18 dBc, none in the normal references)"),
            std::string::npos)
      << a.answer;
}

// A whole sound swelling at 25 Hz also puts sidebands 25 Hz apart around its tones: the swell is named
// first, the sidebands after it.
TEST(ExplainOffline, SidebandsAtTheRateOfAClearSwellComeAfterIt) {
  const auto rows = rows_with({{"sideband_db", -18.0},
                               {"sideband_hz", 25.0},
                               {"carrier_hz", 170.0},
                               {"vibration_pct", 13.0},
                               {"vibration_hz", 24.5}},
                              {{"sideband_db", -60.0}, {"carrier_hz", 170.0}, {"vibration_pct", 3.0}});
  const OfflineAnswer a = explain_rows(rows);
  ASSERT_EQ(a.named.size(), 2u) << a.answer;
  EXPECT_EQ(a.named[0], "vibration_pct");
  EXPECT_EQ(a.named[1], "sideband_db");
}

TEST(ExplainOffline, CaptionWordsAndSimilarities) {
  const std::string anomalous = "Sounds like a loud whistle and grinding";
  const std::vector<std::string> normals = {"Sounds like a fan", "Sounds like a loud fan", "Sounds like wind",
                                            "Sounds like a fan"};
  OfflineInput in;
  in.anomalous_caption = &anomalous;
  in.normal_captions = &normals;
  OfflineAnswer a = explain_offline(in);
  expect_well_formed(a.answer);
  ASSERT_EQ(a.named, std::vector<std::string>{"caption"});
  EXPECT_NE(a.answer.find("whistle, grinding"), std::string::npos) << a.answer;

  const std::vector<std::string> same = {anomalous, anomalous};
  in.normal_captions = &same;
  a = explain_offline(in);
  expect_well_formed(a.answer);
  EXPECT_TRUE(a.named.empty());

  const std::vector<std::string> texts = {"Vibration", "Grinding Sounds"};
  const std::vector<double> sim = {0.10, 0.35};
  const std::vector<std::vector<double>> normal_sims = {{0.11, 0.20}, {0.10, 0.21}, {0.09, 0.19}, {0.10, 0.20}};
  OfflineInput z;
  z.texts = &texts;
  z.anomalous_similarity = &sim;
  z.normal_similarity = &normal_sims;
  a = explain_offline(z);
  expect_well_formed(a.answer);
  ASSERT_FALSE(a.named.empty());
  EXPECT_EQ(a.named[0], "text:Grinding Sounds");
  EXPECT_NE(a.answer.find("\"Grinding Sounds\" (0.35 vs 0.20)"), std::string::npos) << a.answer;
}

TEST(ExplainOffline, PeriodicImpactsAreNamedWithRateAndBand) {
  const auto rows =
      rows_with({{"impact_db", 24.0}, {"impact_hz", 25.2}, {"impact_band_hz", 6557.0}}, {{"impact_db", 9.5}});
  const OfflineAnswer a = explain_rows(rows);
  ASSERT_EQ(a.named.size(), 1u);
  EXPECT_EQ(a.named[0], "impact_db");
  EXPECT_EQ(a.answer,
            "This sound is marked by periodic ticks or impacts near 6.6 kHz about 25 times per second (envelope line "
            "+24 dB vs +10 dB normally).");
}

TEST(ExplainOffline, SynchronouslyAveragedImpactsAreNamedWithRateAndBand) {
  const auto rows = rows_with({{"impact_sync", 12.4}, {"impact_sync_hz", 30.02}, {"impact_sync_band_hz", 2828.0}},
                              {{"impact_sync", 4.6}});
  const OfflineAnswer a = explain_rows(rows);
  ASSERT_EQ(a.named.size(), 1u);
  EXPECT_EQ(a.named[0], "impact_sync");
  EXPECT_EQ(a.answer,
            "This sound is marked by faint periodic impacts near 2.8 kHz about 30 times per second (synchronous "
            "average 12 vs 5 sigma normally).");
}

// A fan swelling 9 % at its shaft rate raises its loudest 50-ms moments by up to 0.6 dB over
// references that swell 2 %: a crackle 0.4 dB above theirs is that swell, named as the vibration.
// A crackle beyond the swell, or a crackle without a clear swell, is named.
TEST(ExplainOffline, CrackleNoLargerThanAClearSwellIsTheSwell) {
  const auto named = [](double crackle, double swell) {
    return explain_rows(
               rows_with(
                   {{"crackle_db", crackle}, {"crackle_hz", 2828.0}, {"vibration_pct", swell}, {"vibration_hz", 24.0}},
                   {{"crackle_db", 0.9}, {"vibration_pct", 2.0}}))
        .named;
  };
  EXPECT_EQ(named(1.3, 9.0), std::vector<std::string>{"vibration_pct"});
  EXPECT_EQ(named(3.0, 9.0), (std::vector<std::string>{"crackle_db", "vibration_pct"}));
  EXPECT_EQ(named(1.3, 2.5), std::vector<std::string>{"crackle_db"});
}

// A named difference never reads as two equal numbers: decimals are added until they differ.
TEST(ExplainOffline, ComparedValuesNeverReadAlike) {
  const auto answer = [](double clip, double references) {
    return explain_rows(rows_with({{"crackle_db", clip}, {"crackle_hz", 2828.0}}, {{"crackle_db", references}})).answer;
  };
  EXPECT_EQ(answer(3.1, 2.6),
            "This sound is crackling near 2.8 kHz (bursts +3.1 dB over the band's level vs +2.6 dB normally).");
  EXPECT_EQ(answer(2.4, 1.9),
            "This sound is crackling near 2.8 kHz (bursts +2.4 dB over the band's level vs +1.9 dB normally).");
  EXPECT_EQ(answer(6.0, 1.0),  // tenths when either level is under 2 dB
            "This sound is crackling near 2.8 kHz (bursts +6.0 dB over the band's level vs +1.0 dB normally).");
  EXPECT_EQ(answer(9.0, 3.0),
            "This sound is crackling near 2.8 kHz (bursts +9 dB over the band's level vs +3 dB normally).");
  const std::string swell =
      explain_rows(rows_with({{"vibration_pct", 9.3}, {"vibration_hz", 24.0}}, {{"vibration_pct", 4.0}}), "fan").answer;
  EXPECT_NE(swell.find("(modulation 9% vs 4%)"), std::string::npos) << swell;
  const std::string rattle =
      explain_rows(rows_with({{"rattle_pct", 5.4}, {"rattle_hz", 24.0}}, {{"rattle_pct", 1.0}})).answer;
  EXPECT_NE(rattle.find("(rattle 5% vs 1%)"), std::string::npos) << rattle;
  const std::string close =
      explain_rows(
          rows_with({{"impact_db", 10.4}, {"impact_hz", 25.0}, {"impact_band_hz", 3000.0}}, {{"impact_db", 6.2}}))
          .answer;
  EXPECT_NE(close.find("(envelope line +10 dB vs +6 dB normally)"), std::string::npos) << close;
  // A reference mean a hair under zero reads 0.00, not -0.00.
  const std::string knocks =
      explain_rows(rows_with({{"click_strength", 0.6}, {"click_rate", 3.0}}, {{"click_strength", -0.001}})).answer;
  EXPECT_NE(knocks.find("(periodicity 0.60 vs 0.00)"), std::string::npos) << knocks;
}

// Crackle is named with its band and the times of its loud moments, from the row the comparison
// chose (EvidenceRow::times), not from the short events' times.
TEST(ExplainOffline, CrackleIsNamedWithItsBandAndTimes) {
  auto rows = rows_with({{"crackle_db", 1.4}, {"crackle_hz", 5514.0}}, {{"crackle_db", 0.6}});
  for (auto& r : rows)
    if (r.spec->key == "crackle_db") r.times = {0.21, 0.64, 1.12, 2.6, 3.35, 4.4};
  const std::vector<double> burst_times = {2.0};
  OfflineInput in;
  in.evidence = &rows;
  in.burst_times = &burst_times;
  const OfflineAnswer a = explain_offline(in);
  expect_well_formed(a.answer);
  ASSERT_EQ(a.named.size(), 1u);
  EXPECT_EQ(a.named[0], "crackle_db");
  EXPECT_EQ(a.answer,
            "This sound is crackling near 5.5 kHz at 0.2 s, 0.6 s, 1.1 s, 2.6 s, ... (bursts +1.4 dB over the band's "
            "level vs +0.6 dB normally).");
}
