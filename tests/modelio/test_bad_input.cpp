// `asdcap convert` / `asdcap info` on bad input: one-line error naming the problem, exit 1, no output file.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>
#include <limits>

#include "asdcap/convert.hpp"
#include "asdcap/error.hpp"
#include "asdcap/model_file.hpp"
#include "cli_run.hpp"
#include "core/files.hpp"
#include "modelio/gguf.hpp"
#include "support/golden_model.hpp"
#include "zip_tools.hpp"

namespace fs = std::filesystem;
using namespace asdcap;

namespace {

const std::string kShared = ASDCAP_SHARED_DIR;
const std::string kClap = kShared + "/golden/clap_2023_tiny.pth";
const std::string kVocab = kShared + "/assets/gpt2/vocab.json";
const std::string kMerges = kShared + "/assets/gpt2/merges.txt";

using test::CliResult;
using test::run_cli;

class BadInput : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (fs::temp_directory_path() / ("asdcap_test_bad_input_" + std::to_string(::getpid()))).string();
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Converts `clap` with the CLI; expects exit 1, one stderr line containing `needle`, and no output.
  void expect_convert_fails(const std::string& clap, const std::string& needle, const std::string& extra = "") {
    const std::string out = dir_ + "/out.gguf";
    CliResult r = run_cli("convert --clap " + clap + " --vocab " + kVocab + " --merges " + kMerges +
                              " --text-heads 4 " + extra + " --out " + out,
                          dir_);
    EXPECT_EQ(r.code, 1) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_EQ(r.err.rfind("asdcap: error: ", 0), 0u) << r.err;
    EXPECT_NE(r.err.find(needle), std::string::npos) << r.err;
    EXPECT_FALSE(fs::exists(out));
    for (auto& e : fs::directory_iterator(dir_))  // no temporary left behind either
      EXPECT_EQ(e.path().filename().string().find(".out.gguf"), std::string::npos) << e.path();
  }

  // The golden CLAP checkpoint re-zipped (STORED) with its pickle edited by `edit`.
  std::string edited_clap(const std::string& name, const std::function<void(std::string&)>& edit) {
    auto members = ziptest::unzip_all(ziptest::slurp(kClap));
    for (auto& [n, bytes] : members)
      if (n.size() > 9 && n.compare(n.size() - 9, 9, "/data.pkl") == 0) edit(bytes);
    const std::string path = dir_ + "/" + name;
    ziptest::spit(path, ziptest::zip_stored(members));
    return path;
  }

  static void replace_once(std::string& s, const std::string& from, const std::string& to) {
    size_t p = s.find(from);
    ASSERT_NE(p, std::string::npos) << from;
    ASSERT_EQ(from.size(), to.size());
    s.replace(p, from.size(), to);
  }

  std::string dir_;
};

}  // namespace

TEST_F(BadInput, StoredCopyOfGoldenConvertsLikeTheOriginal) {
  // The control for the edits below: re-zipping STORED changes nothing in the result.
  std::string path = edited_clap("stored.pth", [](std::string&) {});
  CliResult r = run_cli("convert --clap " + path + " --vocab " + kVocab + " --merges " + kMerges +
                            " --text-heads 4 --out " + dir_ + "/stored.gguf",
                        dir_);
  ASSERT_EQ(r.code, 0) << r.err;
  auto a = ModelFile::open(dir_ + "/stored.gguf");
  auto b = ModelFile::open(golden_model_path(false));
  ASSERT_EQ(a->tensors().size(), b->tensors().size());
  for (const auto& t : b->tensors()) EXPECT_EQ(std::memcmp(a->tensor(t.name).data, t.data, t.nbytes), 0) << t.name;
}

TEST_F(BadInput, TruncatedCheckpoint) {
  std::string bytes = ziptest::slurp(kClap);
  ziptest::spit(dir_ + "/cut.pth", bytes.substr(0, bytes.size() / 2));
  expect_convert_fails(dir_ + "/cut.pth", "cut.pth");
}

TEST_F(BadInput, PickleCallingOsSystem) {
  ziptest::Pickle p;
  p.global("os", "system").op('(').str("touch " + dir_ + "/PWNED").op('t').op('R').op('.');
  ziptest::spit(dir_ + "/evil.pth", ziptest::zip_stored({{"archive/data.pkl", p.b}, {"archive/version", "3\n"}}));
  expect_convert_fails(dir_ + "/evil.pth", "'os.system'");
  EXPECT_FALSE(fs::exists(dir_ + "/PWNED"));
}

TEST_F(BadInput, MissingStorageEntry) {
  auto members = ziptest::unzip_all(ziptest::slurp(kClap));
  members.erase(
      std::remove_if(members.begin(), members.end(), [](auto& m) { return m.first == "clap_2023_tiny/data/5"; }),
      members.end());
  ziptest::spit(dir_ + "/nostorage.pth", ziptest::zip_stored(members));
  expect_convert_fails(dir_ + "/nostorage.pth", "clap_2023_tiny/data/5 missing");
}

TEST_F(BadInput, CheckpointMissingATensor) {
  std::string path = edited_clap("missing.pth", [](std::string& pkl) {
    replace_once(pkl, "audio_encoder.projection.linear2.weight", "audio_encoder.projection.linear2.weighx");
  });
  expect_convert_fails(path, "audio.proj.linear2.weight");
}

TEST_F(BadInput, TensorWithTheWrongShape) {
  // Swap the names of linear1 [64, 128] and linear2 [64, 64].
  std::string path = edited_clap("shape.pth", [](std::string& pkl) {
    replace_once(pkl, "audio_encoder.projection.linear1.weight", "audio_encoder.projection.linearX.weight");
    replace_once(pkl, "audio_encoder.projection.linear2.weight", "audio_encoder.projection.linear1.weight");
    replace_once(pkl, "audio_encoder.projection.linearX.weight", "audio_encoder.projection.linear2.weight");
  });
  expect_convert_fails(path, "has shape [64, 64], expected [64, 128]");
}

TEST_F(BadInput, StftMatricesThatAreNotThePeriodicHannDft) {
  // Swap conv_real and conv_imag: both have the right shape, neither the right values.
  std::string path = edited_clap("stft.pth", [](std::string& pkl) {
    replace_once(pkl, "stft.conv_real.weight", "stft.conv_XXXX.weight");
    replace_once(pkl, "stft.conv_imag.weight", "stft.conv_real.weight");
    replace_once(pkl, "stft.conv_XXXX.weight", "stft.conv_imag.weight");
  });
  expect_convert_fails(path, "is not the periodic-Hann DFT");
}

TEST_F(BadInput, UnwritableOutput) {
  CliResult r = run_cli("convert --clap " + kClap + " --vocab " + kVocab + " --merges " + kMerges + " --out " + dir_ +
                            "/no/such/folder/m.gguf",
                        dir_);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("cannot write"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1);
  ziptest::spit(dir_ + "/file", "x");
  r = run_cli(
      "convert --clap " + kClap + " --vocab " + kVocab + " --merges " + kMerges + " --out " + dir_ + "/file/m.gguf",
      dir_);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("cannot write"), std::string::npos) << r.err;
}

TEST_F(BadInput, GgufTruncatedMidTensor) {
  std::string bytes = ziptest::slurp(golden_model_path(false));
  ziptest::spit(dir_ + "/cut.gguf", bytes.substr(0, bytes.size() - bytes.size() / 3));
  EXPECT_THROW(ModelFile::open(dir_ + "/cut.gguf"), FormatError);
  CliResult r = run_cli("info " + dir_ + "/cut.gguf", dir_);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("extends past the end of the file"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1);
  EXPECT_TRUE(r.out.empty());
}

TEST_F(BadInput, GgufOfAnotherArchitecture) {
  GgufWriter w;
  w.set_string("general.architecture", "llama");
  float x = 1.f;
  w.add_tensor("token_embd.weight", DType::F32, {1}, &x, 4);
  w.write_file(dir_ + "/llama.gguf");
  EXPECT_THROW(ModelFile::open(dir_ + "/llama.gguf"), ModelError);
  CliResult r = run_cli("info " + dir_ + "/llama.gguf", dir_);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("architecture 'llama'"), std::string::npos) << r.err;
}

TEST_F(BadInput, GgufMissingOrMisshapenTensor) {
  // Rewrite the golden model file without one tensor / with one tensor's shape changed.
  const std::string bytes = ziptest::slurp(golden_model_path(false));
  GgufView g = GgufView::parse(bytes.data(), bytes.size(), "golden");
  auto rewrite = [&](const std::string& path, const std::string& target, bool drop) {
    GgufWriter w;
    for (const auto& k : g.kv_order) w.set(k, g.kv.at(k));
    for (const auto& t : g.tensors) {
      if (t.name == target && drop) continue;
      std::vector<int64_t> shape = t.shape;
      if (t.name == target) shape = {shape[0] * shape[1]};
      w.add_tensor(t.name, t.dtype, shape, bytes.data() + t.offset, t.nbytes);
    }
    w.write_file(path);
  };
  rewrite(dir_ + "/copy.gguf", "", false);
  EXPECT_NO_THROW(ModelFile::open(dir_ + "/copy.gguf"));
  rewrite(dir_ + "/missing.gguf", "text.proj.linear2.weight", true);
  try {
    ModelFile::open(dir_ + "/missing.gguf");
    ADD_FAILURE() << "no error";
  } catch (const ModelError& e) {
    EXPECT_NE(std::string(e.what()).find("lacks tensors: text.proj.linear2.weight"), std::string::npos) << e.what();
  }
  rewrite(dir_ + "/shape.gguf", "text.proj.linear1.weight", false);
  try {
    ModelFile::open(dir_ + "/shape.gguf");
    ADD_FAILURE() << "no error";
  } catch (const ModelError& e) {
    const std::vector<int64_t> shape =
        ModelFile::open(golden_model_path(false))->tensor("text.proj.linear1.weight").shape;
    EXPECT_NE(std::string(e.what()).find("text.proj.linear1.weight has shape [" + std::to_string(shape[0] * shape[1]) +
                                         "], expected " + format_shape(shape)),
              std::string::npos)
        << e.what();
  }
}

TEST_F(BadInput, InfoOnTheGoldenModel) {
  CliResult r = run_cli("info --tensors " + golden_model_path(true), dir_);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("architecture: asdcap-msclap"), std::string::npos);
  EXPECT_NE(r.out.find("tensors: 374,"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("identical to CLAP's (bit for bit): yes"), std::string::npos);
  EXPECT_NE(r.out.find("source clap: clap_2023_tiny.pth sha256 " + sha256_file(kClap)), std::string::npos);
  EXPECT_NE(r.out.find("cap.mapper.prefix_const\tf32\t40x64\tclapcap:clap_project.prefix_const"), std::string::npos);
}

namespace {

// A copy of the golden model with the first value of its first f32 audio-encoder tensor set to
// `value`; the tensor's name in `name`.
std::string model_with_weight(const std::string& dir, const std::string& file, float value, std::string& name) {
  std::string bytes = ziptest::slurp(golden_model_path(false));
  const GgufView g = GgufView::parse(bytes.data(), bytes.size(), "golden");
  for (const auto& t : g.tensors)
    if (t.dtype == DType::F32 && t.name.rfind("audio.", 0) == 0 && t.name.find("weight") != std::string::npos) {
      name = t.name;
      std::memcpy(bytes.data() + t.offset, &value, sizeof value);
      break;
    }
  const std::string path = dir + "/" + file;
  ziptest::spit(path, bytes);
  return path;
}

}  // namespace

// A NaN weight: opening stays as cheap as mapping the file; the first use of the tensor is refused,
// naming the file and the tensor, and `embed` fails before writing anything.
TEST_F(BadInput, NanWeightIsRefusedAtFirstUse) {
  std::string name;
  const std::string path = model_with_weight(dir_, "nan.gguf", std::nanf(""), name);
  ASSERT_FALSE(name.empty());
  const auto model = ModelFile::open(path);
  try {
    model->f32(name);
    ADD_FAILURE() << "no error for a NaN weight";
  } catch (const ModelError& e) {
    EXPECT_NE(std::string(e.what()).find(path + ": tensor " + name + " holds NaN"), std::string::npos) << e.what();
  }
  EXPECT_THROW(model->f32_copy(name), ModelError);
  const std::string clip = kShared + "/golden/inputs/c01_hum_16k_pcm16_10s.wav";
  const CliResult r = run_cli("embed --model " + path + " --out " + dir_ + "/e.npy " + clip, dir_);
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_NE(r.err.find(name), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir_ + "/e.npy"));
}

// A NaN in the token table is refused when a text reads its row (the rest of the table is never
// read): row 0 is "!".
TEST_F(BadInput, NanTokenRowIsRefusedWhenRead) {
  std::string bytes = ziptest::slurp(golden_model_path(false));
  const GgufView g = GgufView::parse(bytes.data(), bytes.size(), "golden");
  const float nan = std::nanf("");
  bool found = false;
  for (const auto& t : g.tensors)
    if (t.name == "text.gpt2.wte.weight") {
      ASSERT_EQ(t.dtype, DType::F32);
      std::memcpy(bytes.data() + t.offset, &nan, sizeof nan);
      found = true;
    }
  ASSERT_TRUE(found);
  const std::string path = dir_ + "/nan_wte.gguf";
  ziptest::spit(path, bytes);
  CliResult r = run_cli("embed --model " + path + " --text \"a fan hums\" --out " + dir_ + "/ok.npy", dir_);
  EXPECT_EQ(r.code, 0) << r.err;
  r = run_cli("embed --model " + path + " --text \"a fan hums!\" --out " + dir_ + "/e.npy", dir_);
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_NE(r.err.find("text.gpt2.wte.weight holds NaN (in row 0)"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir_ + "/e.npy"));
}

// An infinite weight is not NaN, but the embeddings it makes are not finite: `embed` refuses to
// write them.
TEST_F(BadInput, EmbedRefusesNonFiniteRows) {
  std::string name;
  const std::string path = model_with_weight(dir_, "inf.gguf", std::numeric_limits<float>::infinity(), name);
  const std::string clip = kShared + "/golden/inputs/c01_hum_16k_pcm16_10s.wav";
  const CliResult r = run_cli("embed --model " + path + " --out " + dir_ + "/e.npy " + clip, dir_);
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_NE(r.err.find("its embedding is not finite"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir_ + "/e.npy"));
}
