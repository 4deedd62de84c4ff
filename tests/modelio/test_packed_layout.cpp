// Model files of format version 2 (Linear weights stored in the packed panel layout) against
// format version 1 (PyTorch order): both open, give the same results bit for bit, the old one with
// a one-line hint; `convert --relayout` turns one into the other; damaged layout keys are refused.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>

#include "asdcap/convert.hpp"
#include "asdcap/error.hpp"
#include "asdcap/model_file.hpp"
#include "cli_run.hpp"
#include "modelio/gguf.hpp"
#include "support/golden_model.hpp"
#include "zip_tools.hpp"

namespace fs = std::filesystem;
using namespace asdcap;

namespace {

using test::CliResult;

class PackedLayout : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (fs::temp_directory_path() / ("asdcap_test_packed_layout_" + std::to_string(::getpid()))).string();
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  CliResult run_cli(const std::string& args) const { return test::run_cli(args, dir_); }

  // The golden model rewritten: `edit` may change each key's value (return false to drop it) and
  // every tensor's shape and bytes (PyTorch order when `unpack`: a format-1 file as asdcap wrote it).
  std::string rewrite(const std::string& name, bool unpack,
                      const std::function<bool(const std::string&, GgufValue&)>& edit = {},
                      const std::function<void(GgufWriter&)>& extra = {}) {
    const std::string src = golden_model_path(true);
    bytes_ = ziptest::slurp(src);
    auto model = ModelFile::open(src);
    const GgufView g = GgufView::parse(bytes_.data(), bytes_.size(), "golden");
    GgufWriter w;
    for (const auto& k : g.kv_order) {
      if (unpack && k.rfind("asdcap.", 0) == 0) continue;  // the format version and the layout keys
      GgufValue v = g.kv.at(k);
      if (edit && !edit(k, v)) continue;
      w.set(k, v);
    }
    values_.clear();
    for (const auto& t : g.tensors) {
      const TensorInfo& info = model->tensor(t.name);
      if (unpack && info.packed_out_dim >= 0) {
        const std::vector<float>& v = values_.emplace_back(model->f32_copy(t.name));
        w.add_tensor(t.name, t.dtype, info.shape, v.data(), v.size() * sizeof(float));
      } else {
        w.add_tensor(t.name, t.dtype, t.shape, bytes_.data() + t.offset, t.nbytes);
      }
    }
    if (extra) extra(w);
    const std::string path = dir_ + "/" + name;
    w.write_file(path);
    return path;
  }

  // `got` holds `want`'s tensors: the same names, layout, shapes, dtypes and bytes.
  static void expect_same_tensors(const ModelFile& want, const ModelFile& got) {
    ASSERT_EQ(got.tensors().size(), want.tensors().size());
    for (const TensorInfo& t : want.tensors()) {
      const TensorInfo& u = got.tensor(t.name);
      EXPECT_EQ(u.packed_out_dim, t.packed_out_dim) << t.name;
      EXPECT_EQ(u.shape, t.shape) << t.name;
      EXPECT_EQ(u.dtype, t.dtype) << t.name;
      ASSERT_EQ(u.nbytes, t.nbytes) << t.name;
      EXPECT_EQ(std::memcmp(u.data, t.data, t.nbytes), 0) << t.name;
    }
  }

  void expect_format_error(const std::string& path, const std::string& needle) {
    try {
      ModelFile::open(path);
      ADD_FAILURE() << path << ": no error";
    } catch (const FormatError& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find(needle), std::string::npos) << what;
      EXPECT_EQ(what.find('\n'), std::string::npos) << what;
    }
  }

  std::string dir_, bytes_;
  std::deque<std::vector<float>> values_;
};

}  // namespace

TEST_F(PackedLayout, OldLayoutGivesTheSameResultsWithAHintAndRelayoutRestoresTheFile) {
  const std::string fresh = golden_model_path(true);
  const std::string old = rewrite("old.gguf", true);
  auto a = ModelFile::open(fresh);
  auto b = ModelFile::open(old);
  EXPECT_EQ(a->format_version(), 2);
  EXPECT_EQ(b->format_version(), 1);
  size_t packed = 0;
  for (const TensorInfo& t : a->tensors()) {
    const TensorInfo& u = b->tensor(t.name);
    EXPECT_EQ(u.packed_out_dim, -1) << t.name;
    EXPECT_EQ(u.shape, t.shape) << t.name;
    packed += t.packed_out_dim >= 0;
  }
  EXPECT_GT(packed, 40u);

  // Text embeddings, audio embeddings and captions: the same bytes from both files; the old file
  // says once how to re-lay it, the new one says nothing.
  const std::string wav = std::string(ASDCAP_SHARED_DIR) + "/golden/inputs/c04_short_16k_pcm16_3s.wav";
  for (const std::string& job :
       {std::string("embed --text \"a machine hums\" --text \"a bird sings\" --out "), "embed " + wav + " --out "}) {
    CliResult ra = run_cli(job + dir_ + "/a.npy --model " + fresh);
    CliResult rb = run_cli(job + dir_ + "/b.npy --model " + old);
    ASSERT_EQ(ra.code, 0) << ra.err;
    ASSERT_EQ(rb.code, 0) << rb.err;
    EXPECT_EQ(ziptest::slurp(dir_ + "/a.npy"), ziptest::slurp(dir_ + "/b.npy")) << job;
    EXPECT_EQ(ra.err.find("--relayout"), std::string::npos) << ra.err;
    const size_t hint = rb.err.find("convert --relayout " + old);
    ASSERT_NE(hint, std::string::npos) << rb.err;
    EXPECT_EQ(rb.err.find("--relayout", hint + 10), std::string::npos) << "the hint once: " << rb.err;
  }
  CliResult ca = run_cli("caption --model " + fresh + " " + wav);
  CliResult cb = run_cli("caption --model " + old + " " + wav);
  ASSERT_EQ(ca.code, 0) << ca.err;
  ASSERT_EQ(cb.code, 0) << cb.err;
  EXPECT_EQ(ca.out, cb.out);

  // convert --relayout: the old file back to the stored bytes of a fresh conversion.
  CliResult r = run_cli("convert --relayout " + old + " --out " + dir_ + "/relaid.gguf");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("format version 2 from 1"), std::string::npos) << r.out;
  auto c = ModelFile::open(dir_ + "/relaid.gguf");
  EXPECT_EQ(c->format_version(), 2);
  expect_same_tensors(*a, *c);
  // A file in the current layout re-lays to itself; other files and other flags are refused.
  r = run_cli("convert --relayout " + fresh + " --out " + dir_ + "/again.gguf");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("0 weight matrices packed"), std::string::npos) << r.out;
  r = run_cli("convert --relayout " + fresh + " --dtype f16 --out " + dir_ + "/x.gguf");
  EXPECT_EQ(r.code, 2) << r.err;
  std::ofstream(dir_ + "/not_a_model.gguf") << "not a model file\n";
  r = run_cli("convert --relayout " + dir_ + "/not_a_model.gguf --out " + dir_ + "/x.gguf");
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_FALSE(fs::exists(dir_ + "/x.gguf"));
}

TEST_F(PackedLayout, DamagedLayoutKeysAreFormatErrors) {
  const std::string target = "asdcap.packed.text.gpt2.h.0.attn.c_attn.weight";
  auto with = [&](const std::string& name, const std::function<void(GgufValue&)>& f) {
    return rewrite(name, false, [&](const std::string& k, GgufValue& v) {
      if (k == target) f(v);
      return true;
    });
  };
  expect_format_error(with("out_dim.gguf", [](GgufValue& v) { v.ints[0] = 7; }), "c_attn.weight");
  expect_format_error(with("wider.gguf", [](GgufValue& v) { v.ints[2] += 48; }), "is stored as");
  expect_format_error(with("narrower.gguf", [](GgufValue& v) { v.ints[1] -= 1; }), "is stored as");
  expect_format_error(with("huge.gguf", [](GgufValue& v) { v.ints[1] = int64_t{1} << 40; }), "c_attn.weight");
  expect_format_error(with("negative.gguf", [](GgufValue& v) { v.ints[2] = -48; }), "c_attn.weight");
  expect_format_error(with("short.gguf", [](GgufValue& v) { v.ints.resize(2); }), "[out_dim, shape...]");
  expect_format_error(with("text.gguf",
                           [](GgufValue& v) {
                             v.kind = GgufValue::Kind::String;
                             v.gguf_type = 8;
                             v.s = "x";
                           }),
                      "[out_dim, shape...]");
  // A key naming no tensor; a packed tensor without its key (then its stored shape is no weight's).
  expect_format_error(rewrite("orphan.gguf", false, {},
                              [](GgufWriter& w) {
                                w.set_int_array("asdcap.packed.no.such.weight", {0, 48, 48});
                              }),
                      "asdcap.packed.no.such.weight names no tensor");
  EXPECT_THROW(ModelFile::open(rewrite("dropped.gguf", false,
                                       [](const std::string& k, GgufValue&) {
                                         return k != "asdcap.packed.text.gpt2.h.0.mlp.c_fc.weight";
                                       })),
               ModelError);
  // A format version from the future.
  expect_format_error(rewrite("version.gguf", false,
                              [](const std::string& k, GgufValue& v) {
                                if (k == "asdcap.format_version") v.i = 99;
                                return true;
                              }),
                      "format version 99");
}

// --dtype int8: every packed weight matrix is stored as int8 with one scale per output feature, the
// scale max |w| / 127 of the float32 weights and each value within half a step of them; the other
// large matrices f16, everything else as in the float32 file. `convert --relayout --dtype int8` of the
// float32 file stores the same int8 tensors; re-laying an int8 file copies them.
TEST_F(PackedLayout, Int8StoresThePackedMatricesWithPerOutputScales) {
  const std::string shared = ASDCAP_SHARED_DIR;
  const std::string fresh = golden_model_path(true);
  const std::string q8 = dir_ + "/q8.gguf";
  CliResult r = run_cli("convert --clap " + shared + "/golden/clap_2023_tiny.pth --clapcap " + shared +
                        "/golden/clapcap_2023_tiny.pth --vocab " + shared + "/assets/gpt2/vocab.json --merges " +
                        shared + "/assets/gpt2/merges.txt --text-heads 4 --decoder-heads 4 --dtype int8 --out " + q8);
  ASSERT_EQ(r.code, 0) << r.err;
  auto full = ModelFile::open(fresh);
  auto q = ModelFile::open(q8);
  size_t n_int8 = 0;
  for (const TensorInfo& t : full->tensors()) {
    const TensorInfo& u = q->tensor(t.name);
    EXPECT_EQ(u.shape, t.shape) << t.name;
    EXPECT_EQ(u.packed_out_dim, t.packed_out_dim) << t.name;
    if (t.packed_out_dim < 0) {
      EXPECT_EQ(u.dtype, f16_eligible(t.name, t.shape) ? DType::F16 : t.dtype) << t.name;
      EXPECT_EQ(u.scale, nullptr);
      continue;
    }
    ++n_int8;
    ASSERT_EQ(u.dtype, DType::I8) << t.name;
    ASSERT_NE(u.scale, nullptr) << t.name;
    EXPECT_EQ(q->tensor(t.name + ".scale").shape, std::vector<int64_t>{t.shape[static_cast<size_t>(t.packed_out_dim)]});
    // Values in PyTorch order, as output j and input p.
    const std::vector<float> w = full->f32_copy(t.name), v = q->f32_copy(t.name);
    const int64_t out = t.shape[static_cast<size_t>(t.packed_out_dim)], in = t.numel() / out;
    auto at = [&](int64_t j, int64_t p) {
      return static_cast<size_t>(t.packed_out_dim == 0 ? j * in + p : p * out + j);
    };
    for (int64_t j = 0; j < out; ++j) {
      float top = 0;
      for (int64_t p = 0; p < in; ++p) top = std::max(top, std::fabs(w[at(j, p)]));
      ASSERT_EQ(u.scale[j], top > 0 ? top / 127.f : 1.f) << t.name << " output " << j;
      for (int64_t p = 0; p < in; ++p) {
        const float step = u.scale[j];
        const float k = std::round(v[at(j, p)] / step);
        ASSERT_EQ(v[at(j, p)], k * step) << t.name;  // an integer times the scale
        ASSERT_LE(std::fabs(k), 127.f) << t.name;
        // Half a step, and the float32 rounding of w / scale.
        const double slack = 2.0 * std::numeric_limits<float>::epsilon() * std::fabs(w[at(j, p)]);
        ASSERT_LE(std::fabs(v[at(j, p)] - w[at(j, p)]), 0.5 * step + slack) << t.name << " (" << j << ", " << p << ")";
      }
    }
  }
  EXPECT_GT(n_int8, 40u);

  // Re-laid from the float32 file: the same int8 tensors and scales.
  r = run_cli("convert --relayout " + fresh + " --dtype int8 --out " + dir_ + "/relaid.gguf");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find(std::to_string(n_int8) + " stored as int8 now"), std::string::npos) << r.out;
  auto relaid = ModelFile::open(dir_ + "/relaid.gguf");
  for (const TensorInfo& t : q->tensors()) {
    if (t.dtype != DType::I8) continue;
    const TensorInfo& u = relaid->tensor(t.name);
    ASSERT_EQ(u.nbytes, t.nbytes);
    EXPECT_EQ(std::memcmp(u.data, t.data, t.nbytes), 0) << t.name;
    EXPECT_EQ(std::memcmp(u.scale, t.scale,
                          sizeof(float) * static_cast<size_t>(t.shape[static_cast<size_t>(t.packed_out_dim)])),
              0);
  }
  // An int8 file re-laid (with or without --dtype int8) keeps its tensors.
  for (const std::string flag : {"", " --dtype int8"}) {
    r = run_cli("convert --relayout " + q8 + flag + " --out " + dir_ + "/again.gguf");
    ASSERT_EQ(r.code, 0) << r.err;
    expect_same_tensors(*q, *ModelFile::open(dir_ + "/again.gguf"));
  }
  // int8 is for msclap and LAION-CLAP files: a PANNs conversion refuses it (a usage error).
  r = run_cli("convert --panns " + fresh + " --dtype int8 --out " + dir_ + "/x.gguf");
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find("int8"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir_ + "/x.gguf"));
}

// Damaged int8 tensors: without their scales, scales of the wrong shape or type, or a scale that is not
// a positive finite number: each a one-line FormatError naming the tensor.
TEST_F(PackedLayout, DamagedInt8ScalesAreFormatErrors) {
  const std::string target = "text.gpt2.h.0.mlp.c_fc.weight";
  const std::string q8 = dir_ + "/q8.gguf";
  ASSERT_GT(relayout_model(golden_model_path(true), q8, true).quantized, 0u);
  const std::string src = ziptest::slurp(q8);
  const GgufView g = GgufView::parse(src.data(), src.size(), "q8");
  // The int8 file rewritten with the scales of `target` changed by `edit` (or dropped when it returns false).
  auto with_scales = [&](const std::string& name, const std::function<bool(std::vector<float>&, DType&)>& edit) {
    GgufWriter w;
    for (const auto& k : g.kv_order) w.set(k, g.kv.at(k));
    std::vector<float> kept;
    for (const auto& t : g.tensors) {
      if (t.name != target + ".scale") {
        w.add_tensor(t.name, t.dtype, t.shape, src.data() + t.offset, t.nbytes);
        continue;
      }
      kept.assign(reinterpret_cast<const float*>(src.data() + t.offset),
                  reinterpret_cast<const float*>(src.data() + t.offset) + t.shape[0]);
      DType type = DType::F32;
      if (!edit(kept, type)) continue;
      w.add_tensor(t.name, type, {static_cast<int64_t>(kept.size())}, kept.data(), kept.size() * dtype_size(type));
    }
    const std::string path = dir_ + "/" + name;
    w.write_file(path);
    return path;
  };
  expect_format_error(with_scales("none.gguf", [](std::vector<float>&, DType&) { return false; }),
                      target + " is int8 without its scales");
  expect_format_error(with_scales("short.gguf",
                                  [](std::vector<float>& s, DType&) {
                                    s.pop_back();
                                    return true;
                                  }),
                      "expected f32 [");
  expect_format_error(with_scales("half.gguf",
                                  [](std::vector<float>&, DType& t) {
                                    t = DType::F16;
                                    return true;
                                  }),
                      "expected f32 [");
  for (const float bad : {0.f, -1.f, std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()})
    expect_format_error(with_scales("bad.gguf",
                                    [bad](std::vector<float>& s, DType&) {
                                      s[3] = bad;
                                      return true;
                                    }),
                        target + ".scale[3]");
}
