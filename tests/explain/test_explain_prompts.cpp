// The prompts are the papers' templates (§III-B, §III-C, §IV-A) filled in, byte for byte.
// Expected strings are typed from the papers' text, not produced by the code under test.
#include <gtest/gtest.h>

#include <filesystem>

#include "asdcap/error.hpp"
#include "asdcap/prompts.hpp"
#include "core/files.hpp"

using namespace asdcap;
namespace fs = std::filesystem;

namespace {

const std::string kInstruction = "Begin your answer with \"This sound is\" and finish it within 40 words.";

}  // namespace

TEST(ExplainPrompts, PapersEightReferenceTexts) {
  const std::vector<std::string> expected = {"Vibration",
                                             "High-frequency Squealing or Screeching",
                                             "Popping or Knocking Sounds",
                                             "Rhythmic Clicking or Tapping",
                                             "Grinding Sounds",
                                             "Irregular Patterns",
                                             "Low-frequency Humming",
                                             "Unexpected Silence"};
  EXPECT_EQ(default_reference_texts(), expected);
}

TEST(ExplainPrompts, TextDecoderMethodIsThePapersSentence) {
  const std::string got = build_text_prompt(
      PromptTemplates::defaults(), "fan", "Sounds like a loud whistle",
      {"Sounds like a fan", "Sounds like wind", "Sounds like a fan running", "Sounds like an engine"});
  const std::string expected =
      kInstruction + "\n" +
      "The caption of the anomalous sound of fan is given as: Sounds like a loud whistle. On the other hand, "
      "the captions of the normal sounds of fan are given as: Sounds like a fan, Sounds like wind, Sounds like "
      "a fan running, Sounds like an engine. Please describe in broad strokes how this anomalous sound differs "
      "compared to the normal sounds.";
  EXPECT_EQ(got, expected);
}

TEST(ExplainPrompts, ZeroShotMethodCsvRowsAreSoundsColumnsAreTexts) {
  const std::vector<std::string> texts = {"Vibration", "Grinding Sounds", "Unexpected Silence"};
  const std::string got = build_zeroshot_prompt(PromptTemplates::defaults(), "valve", texts, {0.12345, -0.5, 0.0},
                                                {{0.1, 0.2, 0.3}, {0.01234, -0.00004, 1.0}});
  const std::string expected =
      kInstruction + "\n" +
      "The acoustic features of the anomalous sound of valve are given as \n"
      "Vibration, Grinding Sounds, Unexpected Silence,\n"
      "0.1235, -0.5000, 0.0000,\n"
      ". On the other hand, the acoustic features of the 2 normal sounds of valve are given as \n"
      "Vibration, Grinding Sounds, Unexpected Silence,\n"
      "0.1000, 0.2000, 0.3000,\n"
      "0.0123, 0.0000, 1.0000,\n";
  EXPECT_EQ(got, expected);
}

TEST(ExplainPrompts, CombinedMethodPutsCaptionsFirstInTheCsv) {
  const std::vector<std::string> texts = {"Vibration", "Low-frequency Humming"};
  const std::string got =
      build_combined_prompt(PromptTemplates::defaults(), "pump", texts, "Sounds like a motor, then a knock", {0.3, 0.4},
                            {"Sounds like water", "Sounds like a \"pump\""}, {{0.25, 0.5}, {0.2, 0.45}});
  const std::string expected =
      kInstruction + "\n" +
      "The acoustic features of the anomalous sound of pump are given as \n"
      "caption, Vibration, Low-frequency Humming,\n"
      "\"Sounds like a motor, then a knock\", 0.3000, 0.4000,\n"
      ". On the other hand, the acoustic features of the 2 normal sounds of pump are given as \n"
      "caption, Vibration, Low-frequency Humming,\n"
      "Sounds like water, 0.2500, 0.5000,\n"
      "\"Sounds like a \"\"pump\"\"\", 0.2000, 0.4500,\n";
  EXPECT_EQ(got, expected);
}

TEST(ExplainPrompts, CombinedWithEvidenceAppendsColumns) {
  ExtraColumns extra{{"Overall level (dBFS)"}, {"-20.5"}, {{"-23.0"}}};
  const std::string got = build_combined_prompt(PromptTemplates::defaults(), "pump", {"Vibration"}, "Sounds like a",
                                                {0.5}, {"Sounds like b"}, {{0.25}}, &extra);
  EXPECT_NE(got.find("caption, Vibration, Overall level (dBFS),\nSounds like a, 0.5000, -20.5,\n"), std::string::npos);
  EXPECT_NE(got.find("Sounds like b, 0.2500, -23.0,\n"), std::string::npos);
}

TEST(ExplainPrompts, AcousticMethod) {
  const std::string got =
      build_acoustic_prompt(PromptTemplates::defaults(), "slider", {"A (dB)", "B (Hz)"}, {"1.0", "2"}, {{"3.0", "4"}});
  const std::string expected =
      kInstruction + "\n" +
      "The measured acoustic features of the anomalous sound of slider are given as \n"
      "A (dB), B (Hz),\n1.0, 2,\n. On the other hand, the measured acoustic features of the 1 normal sounds "
      "of slider are given as \nA (dB), B (Hz),\n3.0, 4,\n. Please describe in broad strokes how this anomalous "
      "sound differs compared to the normal sounds.";
  EXPECT_EQ(got, expected);
}

TEST(ExplainPrompts, TemplatesAndTextsFromFiles) {
  const fs::path dir = fs::temp_directory_path() / ("asdcap_test_prompts_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string tfile = (dir / "t.json").string();
  write_file_atomic(
      tfile,
      std::string(
          R"({"instruction": "Answer briefly.", "text": "{machine}|{k}|{anomalous_caption}|{normal_captions}|{unknown}"})"));
  const PromptTemplates t = PromptTemplates::from_file(tfile);
  EXPECT_EQ(t.zeroshot, PromptTemplates::defaults().zeroshot);  // not overridden
  EXPECT_EQ(build_text_prompt(t, "fan", "a", {"b", "c"}), "Answer briefly.\nfan|2|a|b, c|{unknown}");

  write_file_atomic(tfile, std::string(R"({"txt": "x"})"));
  EXPECT_THROW(PromptTemplates::from_file(tfile), FormatError);
  write_file_atomic(tfile, std::string(R"({"text": 3})"));
  EXPECT_THROW(PromptTemplates::from_file(tfile), FormatError);
  write_file_atomic(tfile, std::string("{not json"));
  EXPECT_THROW(PromptTemplates::from_file(tfile), FormatError);
  EXPECT_THROW(PromptTemplates::from_file((dir / "missing.json").string()), IoError);

  const std::string texts = (dir / "texts.txt").string();
  write_file_atomic(texts, std::string("# my texts\n  Squeaking  \n\nMetallic rattle\r\n"));
  EXPECT_EQ(load_reference_texts(texts), (std::vector<std::string>{"Squeaking", "Metallic rattle"}));
  write_file_atomic(texts, std::string("\n# only a comment\n"));
  EXPECT_THROW(load_reference_texts(texts), FormatError);
  fs::remove_all(dir);
}

TEST(ExplainPrompts, MismatchedSizesAreErrorsNotCrashes) {
  EXPECT_THROW(build_zeroshot_prompt(PromptTemplates::defaults(), "fan", {"a", "b"}, {0.1}, {}), Error);
  EXPECT_THROW(build_zeroshot_prompt(PromptTemplates::defaults(), "fan", {"a"}, {0.1}, {{0.1, 0.2}}), Error);
  EXPECT_THROW(build_combined_prompt(PromptTemplates::defaults(), "fan", {"a"}, "c", {0.1}, {"x"}, {}), Error);
}
