// PANNs model files of format version 2 (each convolution folded with its BatchNorm and packed, the
// other matrices packed, used from the mapping) against version 1 (the checkpoint's tensors in
// PyTorch order): the same results, the re-layout hint, `convert --relayout`, and malformed
// version-2 files refused with the file and tensor named.
#include <gtest/gtest.h>

#include <cstring>
#include <deque>
#include <functional>
#include <sstream>

#include "asdcap/checkpoint.hpp"
#include "asdcap/error.hpp"
#include "cli/cli_runner.hpp"
#include "modelio/gguf.hpp"
#include "modelio/half.hpp"
#include "modelio/panns_layout.hpp"
#include "panns_golden.hpp"
#include "torch_files.hpp"

using namespace asdcap;
using asdcap::test::CliResult;
using asdcap::test::run_cli;
using pannstest::golden_dir;
using pannstest::temp_dir;

namespace {

const std::string kWav32 = golden_dir() + "inputs/32000/c02_clicks.wav";

// The golden Cnn14 checkpoint written as asdcap wrote PANNs files before format version 2.
std::string version1_file(DType dtype, const std::string& name) {
  std::vector<CheckpointTensor> all = read_torch_checkpoint(golden_dir() + "Cnn14_tiny.pth"), keep;
  const PannsConfig c = infer_panns_config(all, "Cnn14_tiny.pth");
  for (CheckpointTensor& t : all)
    if (t.name.find("num_batches_tracked") == std::string::npos) keep.push_back(std::move(t));
  const std::string path = (temp_dir() / name).string();
  modelio::write_panns_model(path, c, keep, dtype, "Cnn14_tiny.pth", "", false, 1);
  return path;
}

struct FileBytes {
  std::string bytes;
  GgufView g;
  explicit FileBytes(const std::string& path)
      : bytes(ziptest::slurp(path)), g(GgufView::parse(bytes.data(), bytes.size(), path)) {}
};

// Every tensor of `b` equals `a`'s (name, dtype, stored shape, bytes), and so do the packed keys.
void expect_same_tensors(const std::string& a, const std::string& b) {
  const FileBytes x(a), y(b);
  ASSERT_EQ(x.g.tensors.size(), y.g.tensors.size());
  for (size_t i = 0; i < x.g.tensors.size(); ++i) {
    const GgufTensor &s = x.g.tensors[i], &t = y.g.tensors[i];
    EXPECT_EQ(s.name, t.name);
    EXPECT_EQ(s.dtype, t.dtype) << s.name;
    EXPECT_EQ(s.shape, t.shape) << s.name;
    ASSERT_EQ(s.nbytes, t.nbytes) << s.name;
    EXPECT_EQ(std::memcmp(x.bytes.data() + s.offset, y.bytes.data() + t.offset, s.nbytes), 0) << s.name;
    const auto ks = x.g.kv.find("asdcap.packed." + s.name), kt = y.g.kv.find("asdcap.packed." + t.name);
    ASSERT_EQ(ks == x.g.kv.end(), kt == y.g.kv.end()) << s.name;
    if (ks != x.g.kv.end()) {
      EXPECT_EQ(ks->second.ints, kt->second.ints) << s.name;
    }
  }
  EXPECT_EQ(y.g.kv.at("asdcap.format_version").i, 2);
}

// `path` copied to `name` with its metadata and tensors changed by `edit_kv` / `edit` (a tensor
// edit returning false drops the tensor).
struct Tensor {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  std::string data;
};
std::string rewritten(const std::string& path, const std::string& name,
                      const std::function<void(std::map<std::string, GgufValue>&)>& edit_kv,
                      const std::function<bool(Tensor&)>& edit) {
  const FileBytes f(path);
  std::map<std::string, GgufValue> kv = f.g.kv;
  edit_kv(kv);
  GgufWriter w;
  for (const auto& k : f.g.kv_order)
    if (kv.count(k) && k != "general.alignment") w.set(k, kv.at(k));
  std::deque<Tensor> kept;
  for (const GgufTensor& t : f.g.tensors) {
    Tensor x{t.name, t.dtype, t.shape, f.bytes.substr(t.offset, t.nbytes)};
    if (!edit(x)) continue;
    const Tensor& k = kept.emplace_back(std::move(x));
    w.add_tensor(k.name, k.dtype, k.shape, k.data.data(), k.data.size());
  }
  const std::string out = (temp_dir() / name).string();
  w.write_file(out);
  return out;
}

// A command line of words without spaces (the test's paths have none).
CliResult run(const std::string& command) {
  std::vector<std::string> args;
  std::istringstream in(command);
  for (std::string w; in >> w;) args.push_back(w);
  return run_cli(args);
}

void expect_refused(const std::string& path, const std::string& message) {
  try {
    PannsModel::open(path, 1);
    ADD_FAILURE() << "opened " << path;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path + ": " + message), std::string::npos) << e.what();
  }
}

}  // namespace

TEST(PannsLayout, OldLayoutGivesTheSameResultsWithAHintAndRelayoutRestoresTheFile) {
  const std::string dir = temp_dir().string();
  for (DType dtype : {DType::F32, DType::F16}) {
    SCOPED_TRACE(dtype_name(dtype));
    const std::string fresh = pannstest::converted(golden_dir() + "Cnn14_tiny.pth", dtype);
    const std::string old = version1_file(dtype, std::string("old_") + dtype_name(dtype) + ".gguf");
    {
      const FileBytes f(old);
      EXPECT_EQ(f.g.kv.count("asdcap.format_version"), 0u);
      for (const GgufTensor& t : f.g.tensors) EXPECT_EQ(f.g.kv.count("asdcap.packed." + t.name), 0u) << t.name;
    }
    // The old file opens, folded and packed in memory, and says once how to re-lay it.
    const CliResult ra = run("embed --model " + fresh + " " + kWav32 + " --out " + dir + "/fresh.npy");
    const CliResult rb = run("embed --model " + old + " " + kWav32 + " --out " + dir + "/old.npy");
    ASSERT_EQ(ra.code, 0) << ra.err;
    ASSERT_EQ(rb.code, 0) << rb.err;
    EXPECT_EQ(ra.err.find("--relayout"), std::string::npos) << ra.err;
    const size_t hint = rb.err.find("`asdcap convert --relayout " + old + " NEW.gguf`");
    ASSERT_NE(hint, std::string::npos) << rb.err;
    EXPECT_EQ(rb.err.find("--relayout", hint + 20), std::string::npos) << "the hint once: " << rb.err;

    const CliResult r = run("convert --relayout " + old + " --out " + dir + "/relaid.gguf");
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.out.find("format version 2 from 1: 18 weight matrices packed"), std::string::npos) << r.out;
    const CliResult rc = run("embed --model " + dir + "/relaid.gguf " + kWav32 + " --out " + dir + "/relaid.npy");
    ASSERT_EQ(rc.code, 0) << rc.err;
    // In memory or in the file, the fold is the same.
    EXPECT_EQ(ziptest::slurp(dir + "/old.npy"), ziptest::slurp(dir + "/relaid.npy"));
    if (dtype == DType::F32) {
      // From float32 weights, the old file and a fresh conversion give the same bits, and the re-laid
      // file holds exactly the fresh conversion's tensors.
      EXPECT_EQ(ziptest::slurp(dir + "/fresh.npy"), ziptest::slurp(dir + "/old.npy"));
      expect_same_tensors(fresh, dir + "/relaid.gguf");
    } else {
      // An old f16 file's weights were rounded to f16 before the fold and are rounded again after
      // it; a fresh conversion folds the checkpoint's float32 weights and rounds once.
      const auto a = read_npy(dir + "/fresh.npy").as_float(), b = read_npy(dir + "/old.npy").as_float();
      EXPECT_GE(pannstest::cosine(a, b), 0.99999);
      EXPECT_LT(pannstest::rel_to_max(b, a), 1e-3);
    }
  }
  // A file in the current layout re-lays to itself; int8 is refused for PANNs files.
  const std::string fresh = pannstest::converted(golden_dir() + "Cnn14_tiny.pth");
  CliResult r = run("convert --relayout " + fresh + " --out " + dir + "/again.gguf");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("from 2: 0 weight matrices packed, 18 packed already"), std::string::npos) << r.out;
  expect_same_tensors(fresh, dir + "/again.gguf");
  r = run("convert --relayout " + fresh + " --dtype int8 --out " + dir + "/int8.gguf");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find(fresh + ": PANNs model files are f32, f16 or bf16"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(dir + "/int8.gguf"));
}

TEST(PannsLayout, FoldedWeightsAreTheWeightsTimesTheirBatchNormScale) {
  // Read back from the file: folded element (j, t * cin + ci) of conv_block2.conv1 (8 -> 16 channels,
  // one chunk) is weight[j][ci][t / 3][t % 3] * gamma[j] / sqrt(var[j] + eps), and the bias is
  // beta[j] - mean[j] * that scale, each computed here from the checkpoint in double.
  const std::vector<CheckpointTensor> ckpt = read_torch_checkpoint(golden_dir() + "Cnn14_tiny.pth");
  std::map<std::string, std::vector<float>> v;
  for (const auto& t : ckpt)
    if (t.dtype == DType::F32) {
      v[t.name].resize(t.data.size() / 4);
      std::memcpy(v[t.name].data(), t.data.data(), t.data.size());
    }
  const FileBytes f(pannstest::converted(golden_dir() + "Cnn14_tiny.pth"));
  const auto tensor = [&](const std::string& name) -> const GgufTensor& {
    for (const GgufTensor& t : f.g.tensors)
      if (t.name == name) return t;
    throw Error("no tensor " + name);
  };
  const GgufTensor& w = tensor("conv_block2.conv1.folded.0.0");
  EXPECT_EQ(f.g.kv.at("asdcap.packed.conv_block2.conv1.folded.0.0").ints, (std::vector<int64_t>{0, 16, 72}));
  ASSERT_EQ(w.shape, (std::vector<int64_t>{1, 72, 48}));  // one panel of 48 columns, 72 rows
  const auto* packed = reinterpret_cast<const float*>(f.bytes.data() + w.offset);
  const auto* bias = reinterpret_cast<const float*>(f.bytes.data() + tensor("conv_block2.conv1.folded.bias").offset);
  const double eps = 1e-5;
  double worst = 0, worst_bias = 0;
  for (int j = 0; j < 16; ++j) {
    const double scale = v["conv_block2.bn1.weight"][j] / std::sqrt(double(v["conv_block2.bn1.running_var"][j]) + eps);
    for (int t = 0; t < 9; ++t)
      for (int ci = 0; ci < 8; ++ci) {
        const double want = v["conv_block2.conv1.weight"][(j * 8 + ci) * 9 + t] * scale;
        const double got = packed[(t * 8 + ci) * 48 + j];  // row p = t * cin + ci, column j
        worst = std::max(worst, std::abs(got - want) / std::max(std::abs(want), 1e-30));
      }
    const double want_bias = v["conv_block2.bn1.bias"][j] - v["conv_block2.bn1.running_mean"][j] * scale;
    worst_bias = std::max(worst_bias, std::abs(bias[j] - want_bias) / std::max(std::abs(want_bias), 1e-6));
  }
  for (int p = 0; p < 72; ++p)
    for (int j = 16; j < 48; ++j) ASSERT_EQ(packed[p * 48 + j], 0.f) << "padding column " << j << ", row " << p;
  EXPECT_LT(worst, 2e-7);  // float32 rounding of a float32 product
  EXPECT_LT(worst_bias, 1e-5);
}

TEST(PannsLayout, MalformedVersion2FilesAreRefusedNamingTheTensor) {
  const std::string fresh = pannstest::converted(golden_dir() + "Cnn14_tiny.pth");
  const auto same_kv = [](std::map<std::string, GgufValue>&) {};
  const auto all = [](Tensor&) { return true; };
  const std::string folded = "conv_block3.conv2.folded.0.0";

  expect_refused(
      rewritten(
          fresh, "missing.gguf", [&](std::map<std::string, GgufValue>& kv) { kv.erase("asdcap.packed." + folded); },
          [&](Tensor& t) { return t.name != folded; }),
      "model file lacks tensor " + folded + " (format version 2)");
  // Its key gone: the panels are not a [32, 288] tensor in PyTorch order.
  expect_refused(rewritten(
                     fresh, "unmarked.gguf",
                     [&](std::map<std::string, GgufValue>& kv) { kv.erase("asdcap.packed." + folded); }, all),
                 "tensor " + folded + " is not stored packed as [32, 288] with dimension 0 as its output");
  // A bias stored as f16 (only the weight matrices may be 16-bit).
  expect_refused(rewritten(fresh, "f16bias.gguf", same_kv,
                           [](Tensor& t) {
                             if (t.name != "conv_block1.conv1.folded.bias") return true;
                             std::string h(t.data.size() / 2, '\0');
                             for (size_t i = 0; i < h.size() / 2; ++i) {
                               float x;
                               std::memcpy(&x, t.data.data() + 4 * i, 4);
                               const uint16_t b = modelio::float_to_half(x);
                               std::memcpy(h.data() + 2 * i, &b, 2);
                             }
                             t.dtype = DType::F16, t.data = h;
                             return true;
                           }),
                 "tensor conv_block1.conv1.folded.bias is f16, expected f32");
  // A key describing another matrix than the panels hold.
  try {
    PannsModel::open(rewritten(
                         fresh, "wrongkey.gguf",
                         [&](std::map<std::string, GgufValue>& kv) {
                           kv.at("asdcap.packed." + folded).ints = {0, 32, 300};
                         },
                         all),
                     1);
    ADD_FAILURE() << "opened";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("packed tensor " + folded + " is stored as [1, 288, 48], expected"),
              std::string::npos)
        << e.what();
  }
  // A later format version.
  try {
    PannsModel::open(
        rewritten(
            fresh, "v3.gguf", [](std::map<std::string, GgufValue>& kv) { kv.at("asdcap.format_version").i = 3; }, all),
        1);
    ADD_FAILURE() << "opened";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("format version 3 (this asdcap reads 1 to 2; a newer asdcap wrote it)"),
              std::string::npos)
        << e.what();
  }
}
