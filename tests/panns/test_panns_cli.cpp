// `asdcap convert --panns` and `asdcap info` on a PANNs file.
#include <gtest/gtest.h>

#include "cli/cli_runner.hpp"
#include "panns_golden.hpp"

using asdcap::test::run_cli;

TEST(PannsCli, ConvertAndInfo) {
  const std::string out = (pannstest::temp_dir() / "cli16k.gguf").string();
  auto c = run_cli({"convert", "--panns", pannstest::golden_dir() + "Cnn14_16k_tiny.pth", "--out", out});
  ASSERT_EQ(c.code, 0) << c.err;
  EXPECT_NE(c.out.find("Cnn14_16k, 16000 Hz, embedding 256"), std::string::npos) << c.out;
  auto i = run_cli({"info", out, "--tensors"});
  ASSERT_EQ(i.code, 0) << i.err;
  EXPECT_NE(i.out.find("architecture: asdcap-panns (Cnn14_16k)"), std::string::npos) << i.out;
  EXPECT_NE(i.out.find("16000 Hz, n_fft 512"), std::string::npos) << i.out;
  EXPECT_NE(i.out.find("hop 160, 64 mel bins (Slaney, 50-8000 Hz)"), std::string::npos) << i.out;
  EXPECT_NE(i.out.find("widths 8-16-32-64-128-256"), std::string::npos) << i.out;
  EXPECT_NE(i.out.find("source checkpoint: Cnn14_16k_tiny.pth sha256 "
                       "b57fac0182d97f806ce7c68415567ec881c7363d9bf293b20cecba44ceed6410"),
            std::string::npos)
      << i.out;
  EXPECT_NE(i.out.find("tensors: 71,"), std::string::npos) << i.out;  // 84 minus 13 num_batches_tracked
  EXPECT_NE(i.out.find("logmel_extractor.melW\tf32\t257x64"), std::string::npos) << i.out;
  EXPECT_EQ(i.out.find("num_batches_tracked"), std::string::npos) << i.out;
}

TEST(PannsCli, OptionMistakes) {
  auto a = run_cli({"convert", "--panns", pannstest::golden_dir() + "Cnn14_tiny.pth", "--clap",
                    pannstest::golden_dir() + "Cnn14_tiny.pth", "--out", (pannstest::temp_dir() / "x.gguf").string()});
  EXPECT_EQ(a.code, 2);
  EXPECT_NE(a.err.find("--panns converts a PANNs checkpoint alone"), std::string::npos) << a.err;
  auto b = run_cli({"convert", "--out", (pannstest::temp_dir() / "x.gguf").string()});
  EXPECT_EQ(b.code, 2);
  EXPECT_NE(b.err.find("--clap, --vocab and --merges are required"), std::string::npos) << b.err;
  // A checkpoint that is not CNN14 (msclap's CLAP) is refused with the tensor it lacks.
  auto c = run_cli({"convert", "--panns", std::string(ASDCAP_SHARED_DIR) + "/golden/clap_2023_tiny.pth", "--out",
                    (pannstest::temp_dir() / "y.gguf").string()});
  EXPECT_EQ(c.code, 1);
  EXPECT_NE(c.err.find("not a PANNs CNN14 checkpoint: tensor spectrogram_extractor.stft.conv_real.weight missing"),
            std::string::npos)
      << c.err;
}
