// `asdcap convert --panns` and `asdcap info` on a PANNs file; `embed`, `tags`, `detect` and `demo` with one.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "asdcap/audio.hpp"
#include "asdcap/npy.hpp"
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
  // Format version 2: the STFT kernels, the mel bank, bn0 (4), each convolution folded with its
  // BatchNorm (one matrix per chunk of taps: two for the 256-channel conv_block6.conv2, whose 2304
  // inputs exceed 2048; one elsewhere) plus its bias, and the fc layers (2 x 2): 3 + 4 + 13 + 12 + 4.
  EXPECT_NE(i.out.find("tensors: 36,"), std::string::npos) << i.out;
  EXPECT_NE(i.out.find("format version: 2 (18 weight matrices stored packed"), std::string::npos) << i.out;
  EXPECT_NE(i.out.find("BatchNorm eps 1e-05 (folded into the convolutions in the file)"), std::string::npos) << i.out;
  EXPECT_NE(i.out.find("logmel_extractor.melW\tf32\t257x64"), std::string::npos) << i.out;
  // Chunks of whole taps: 5 taps (1280 values), then 4 (1024).
  EXPECT_NE(i.out.find("conv_block6.conv2.folded.0.0\tf32\t256x1280\n"), std::string::npos) << i.out;
  EXPECT_NE(i.out.find("conv_block6.conv2.folded.0.1\tf32\t256x1024\n"), std::string::npos) << i.out;
  EXPECT_NE(i.out.find("conv_block1.conv1.folded.bias\tf32\t8\n"), std::string::npos) << i.out;
  EXPECT_EQ(i.out.find("num_batches_tracked"), std::string::npos) << i.out;
  EXPECT_EQ(i.out.find("bn1"), std::string::npos) << i.out;
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

namespace {

std::string model32() { return pannstest::converted(pannstest::golden_dir() + "Cnn14_tiny.pth"); }
std::string model16() { return pannstest::converted(pannstest::golden_dir() + "Cnn14_16k_tiny.pth"); }
std::string input(int rate, const std::string& clip) {
  return pannstest::golden_dir() + "inputs/" + std::to_string(rate) + "/" + clip + ".wav";
}
long lines(const std::string& s) { return std::count(s.begin(), s.end(), '\n'); }

// A 16-bit PCM mono WAV of `n` samples of a quiet ramp.
std::string short_wav(const std::string& name, int rate, int n) {
  const std::string path = (pannstest::temp_dir() / name).string();
  auto u32 = [](std::string& s, uint32_t v) {
    for (int i = 0; i < 4; ++i) s += static_cast<char>((v >> (8 * i)) & 0xff);
  };
  auto u16 = [](std::string& s, uint16_t v) { s += static_cast<char>(v & 0xff), s += static_cast<char>(v >> 8); };
  std::string w = "RIFF";
  u32(w, 36 + 2 * n);
  w += "WAVEfmt ";
  u32(w, 16), u16(w, 1), u16(w, 1), u32(w, rate), u32(w, 2 * rate), u16(w, 2), u16(w, 16);
  w += "data";
  u32(w, 2 * n);
  for (int i = 0; i < n; ++i) u16(w, static_cast<uint16_t>(i % 200));
  std::ofstream(path, std::ios::binary) << w;
  return path;
}

}  // namespace

// `asdcap embed` through load_audio at the model's rate (the golden clips are at that rate: no
// resampling) and the default whole-clip crop gives the golden embeddings.
TEST(PannsCli, EmbedEqualsGolden) {
  struct Case {
    std::string model, dir;
    int rate;
    std::vector<std::string> clips;
  };
  for (const Case& c : {Case{model32(), "cnn14", 32000, {"c05_long_10s", "c03_gap", "c06_burst_0p5s"}},
                        Case{model16(), "cnn14_16k", 16000, {"c01_hum", "c04_short_3s"}}}) {
    const std::string out = (pannstest::temp_dir() / (c.dir + "_embed.npy")).string();
    std::vector<std::string> args = {"embed", "--model", c.model, "--out", out, "--threads", "2"};
    for (const auto& clip : c.clips) args.push_back(input(c.rate, clip));
    const auto r = run_cli(args);
    ASSERT_EQ(r.code, 0) << r.err;
    const auto npy = asdcap::read_npy(out);
    ASSERT_EQ(npy.shape, (std::vector<int64_t>{static_cast<int64_t>(c.clips.size()), 256}));
    const auto rows = npy.as_float();
    for (size_t i = 0; i < c.clips.size(); ++i) {
      const std::vector<float> got(rows.begin() + 256 * i, rows.begin() + 256 * (i + 1));
      const auto ref = pannstest::npy(c.dir, c.clips[i], "embedding");
      EXPECT_LT(pannstest::rel_to_max(got, ref), 1e-5) << c.dir << " " << c.clips[i];
      EXPECT_GE(pannstest::cosine(got, ref), 0.99999) << c.dir << " " << c.clips[i];
    }
  }
}

// `--crop offset:N` counts samples at the model's rate: a 7-s window of the 10-s clip.
TEST(PannsCli, EmbedCropAtTheModelRate) {
  const std::string out = (pannstest::temp_dir() / "crop.npy").string();
  const auto r =
      run_cli({"embed", "--model", model32(), "--crop", "offset:48000", "--out", out, input(32000, "c05_long_10s")});
  ASSERT_EQ(r.code, 0) << r.err;
  const auto model = asdcap::PannsModel::open(model32(), 1);
  const auto signal = asdcap::load_audio(input(32000, "c05_long_10s"), 32000);
  const std::vector<float> window(signal.begin() + 48000, signal.begin() + 48000 + 7 * 32000);
  EXPECT_EQ(asdcap::read_npy(out).as_float(), model->embed(window, 1));
  // An offset beyond the clip is a bad --crop (exit 2).
  const auto b =
      run_cli({"embed", "--model", model32(), "--crop", "offset:100000", "--out", out, input(32000, "c05_long_10s")});
  EXPECT_EQ(b.code, 2);
  EXPECT_NE(b.err.find("--crop: crop offset:100000 is beyond the clip"), std::string::npos) << b.err;
}

// `asdcap tags` prints CNN14's clipwise output (the golden one, to the printed 6 decimals).
TEST(PannsCli, TagsEqualGolden) {
  const auto r = run_cli({"tags", "--model", model16(), "--csv", "--top", "527", input(16000, "c02_clicks")});
  ASSERT_EQ(r.code, 0) << r.err;
  const auto ref = pannstest::npy("cnn14_16k", "c02_clicks", "clipwise_output");
  std::istringstream in(r.out);
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, "file,rank,class,label,score");
  std::vector<int> seen(527, 0);
  int rank = 0;
  double previous = 2;
  while (std::getline(in, line)) {
    // file,rank,class,label,score (the file name has no comma)
    std::vector<std::string> f;
    std::istringstream ls(line);
    for (std::string x; std::getline(ls, x, ',');) f.push_back(x);
    ASSERT_EQ(f.size(), 5u) << line;
    EXPECT_EQ(std::stoi(f[1]), ++rank);
    const int c = std::stoi(f[2]);
    ASSERT_TRUE(c >= 0 && c < 527) << line;
    ++seen[static_cast<size_t>(c)];
    EXPECT_EQ(f[3], "class_" + f[2]);
    const double score = std::stod(f[4]);
    EXPECT_NEAR(score, ref[static_cast<size_t>(c)], 1e-5 + 5e-7) << line;
    EXPECT_LE(score, previous);
    previous = score;
  }
  EXPECT_EQ(rank, 527);
  EXPECT_EQ(std::count(seen.begin(), seen.end(), 1), 527);
}

// Bad model files and bad inputs: one line on stderr naming the file, exit 1 (2 for option mistakes).
TEST(PannsCli, Errors) {
  const std::string out = (pannstest::temp_dir() / "err.npy").string();
  const std::string clip = input(32000, "c01_hum");
  // A truncated model file.
  const std::string cut = (pannstest::temp_dir() / "cut.gguf").string();
  {
    std::string bytes = asdcap::test::slurp(model32());
    std::ofstream(cut, std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  }
  for (const char* cmd : {"embed", "tags"}) {
    std::vector<std::string> args = {cmd, "--model", cut, clip};
    if (std::string(cmd) == "embed") args.insert(args.end(), {"--out", out});
    const auto r = run_cli(args);
    EXPECT_EQ(r.code, 1) << cmd;
    EXPECT_EQ(lines(r.err), 1) << r.err;
    EXPECT_NE(r.err.find(cut), std::string::npos) << r.err;
  }
  EXPECT_FALSE(std::filesystem::exists(out));
  // A whole clip shorter than CNN14's minimum (0.31 s).
  const std::string tiny = short_wav("tiny.wav", 32000, 3200);
  auto s = run_cli({"embed", "--model", model32(), "--out", out, tiny});
  EXPECT_EQ(s.code, 1);
  EXPECT_EQ(lines(s.err), 1) << s.err;
  EXPECT_NE(s.err.find(tiny + ": too short for PANNs Cnn14: 3200 samples at 32000 Hz"), std::string::npos) << s.err;
  // Other crops tile it to 7 s.
  EXPECT_EQ(run_cli({"embed", "--model", model32(), "--crop", "cover", "--out", out, tiny}).code, 0);
  // PANNs has no text encoder.
  auto t = run_cli({"embed", "--model", model32(), "--text", "a fan", "--out", out});
  EXPECT_EQ(t.code, 2);
  EXPECT_NE(t.err.find("is a PANNs model: it has no text encoder"), std::string::npos) << t.err;
  // A model of another architecture for an explicit --backend.
  auto d = run_cli({"detect", "--data", pannstest::golden_dir(), "--out", (pannstest::temp_dir() / "wrong").string(),
                    "--backend", "msclap", "--model", model32()});
  EXPECT_EQ(d.code, 1);
  EXPECT_EQ(lines(d.err), 1) << d.err;
  EXPECT_NE(d.err.find(model32() + ": a panns model file, not one for the msclap backend"), std::string::npos) << d.err;
  auto n = run_cli({"detect", "--data", pannstest::golden_dir(), "--out", (pannstest::temp_dir() / "wrong").string(),
                    "--backend", "panns"});
  EXPECT_EQ(n.code, 2);
  EXPECT_NE(n.err.find("--backend panns needs --model FILE"), std::string::npos) << n.err;
}

// detect and demo with a PANNs model: the backend comes from the file, the report names it.
TEST(PannsCli, DetectAndDemo) {
  const auto help = run_cli({"detect", "--help"});
  EXPECT_NE(help.out.find("panns"), std::string::npos) << help.out;
  const std::string dir = (pannstest::temp_dir() / "demo").string();
  const auto r = run_cli({"demo", "--small", "--model", model16(), "--out", dir, "--threads", "2"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("detecting anomalies (backend panns)"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("offline explainer, acoustic evidence"), std::string::npos) << r.err;
  const std::string page = asdcap::test::slurp(dir + "/report.html");
  EXPECT_NE(page.find("backend panns"), std::string::npos);
  // detect on the demo's dataset: the same results, every embedding from the demo's cache.
  const auto d = run_cli({"detect", "--data", dir + "/data", "--out", dir, "--model", model16()});
  ASSERT_EQ(d.code, 0) << d.err;
  EXPECT_NE(d.err.find("40 clips embedded (40 from cache)"), std::string::npos) << d.err;
}
