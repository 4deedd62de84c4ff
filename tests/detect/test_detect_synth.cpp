#include <gtest/gtest.h>
#include <sndfile.h>

#include <unistd.h>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "asdcap/error.hpp"
#include "asdcap/synth.hpp"
#include "core/files.hpp"

using namespace asdcap;
namespace fs = std::filesystem;

TEST(DetectSynth, ClipsAreDeterministicBySeed) {
  auto a = synthesize_clip("fan", "id_00", "none", 1, 0, 1.0);
  auto b = synthesize_clip("fan", "id_00", "none", 1, 0, 1.0);
  auto c = synthesize_clip("fan", "id_00", "none", 2, 0, 1.0);
  auto d = synthesize_clip("fan", "id_00", "none", 1, 1, 1.0);
  ASSERT_EQ(a.size(), 16000u);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  EXPECT_NE(a, d);
}

TEST(DetectSynth, EveryMachineAndFaultGivesSaneAudio) {
  for (const auto& m : synth_machine_types()) {
    auto faults = synth_faults(m);
    faults.push_back("none");
    for (const auto& f : faults) {
      auto x = synthesize_clip(m, "id_02", f, 5, 3, 2.0);
      double s = 0;
      int clipped = 0;
      for (float v : x) {
        ASSERT_TRUE(std::isfinite(v));
        s += static_cast<double>(v) * v;
        clipped += std::fabs(v) >= 1.0f;
      }
      double rms = std::sqrt(s / static_cast<double>(x.size()));
      EXPECT_GT(rms, 0.01) << m << " " << f;
      EXPECT_LT(rms, 0.5) << m << " " << f;
      EXPECT_LT(clipped, 10) << m << " " << f;
    }
  }
  EXPECT_THROW(synthesize_clip("toaster", "id_00", "none", 1, 0), InvalidArgument);
  EXPECT_THROW(synthesize_clip("valve", "id_00", "imbalance", 1, 0), InvalidArgument);
}

TEST(DetectSynth, DatasetLayoutManifestAndWavFormat) {
  fs::path root = fs::temp_directory_path() / ("asdcap_synth_" + std::to_string(::getpid()));
  fs::remove_all(root);
  SynthOptions o;
  o.out_dir = root.string();
  o.machines = {"fan", "valve"};
  o.ids = {"id_00"};
  o.n_train = 2;
  o.n_test_normal = 1;
  o.n_test_anomaly = 3;
  o.seconds = 1.5;
  auto s = synthesize_dataset(o);
  EXPECT_EQ(s.n_files, 12);
  std::ifstream man(s.manifest);
  std::string line;
  std::getline(man, line);
  EXPECT_EQ(line, "file,machine,id,split,label,fault");
  int rows = 0;
  while (std::getline(man, line)) ++rows;
  EXPECT_EQ(rows, 12);
  fs::path f = root / "valve/test/anomaly_id_00_00000002.wav";
  ASSERT_TRUE(fs::exists(f));
  EXPECT_TRUE(fs::exists(root / "fan/train/normal_id_00_00000001.wav"));
  SF_INFO info{};
  SNDFILE* sf = sf_open(f.c_str(), SFM_READ, &info);
  ASSERT_NE(sf, nullptr);
  sf_close(sf);
  EXPECT_EQ(info.samplerate, 16000);
  EXPECT_EQ(info.channels, 1);
  EXPECT_EQ(info.frames, 24000);
  EXPECT_EQ(info.format, SF_FORMAT_WAV | SF_FORMAT_PCM_16);
  // The same seed writes the same bytes.
  std::string before = sha256_file(f.string());
  synthesize_dataset(o);
  EXPECT_EQ(sha256_file(f.string()), before);
  o.machines = {"toaster"};
  EXPECT_THROW(synthesize_dataset(o), InvalidArgument);
  fs::remove_all(root);
}
