// Model files of format version 2 (Linear weights stored in the packed panel layout) against
// format version 1 (PyTorch order): both open, give the same results bit for bit, the old one with
// a one-line hint; `convert --relayout` turns one into the other; damaged layout keys are refused.
#include <gtest/gtest.h>

#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>

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
  ASSERT_EQ(c->tensors().size(), a->tensors().size());
  for (const TensorInfo& t : a->tensors()) {
    const TensorInfo& u = c->tensor(t.name);
    EXPECT_EQ(u.packed_out_dim, t.packed_out_dim) << t.name;
    EXPECT_EQ(u.shape, t.shape) << t.name;
    ASSERT_EQ(u.nbytes, t.nbytes) << t.name;
    EXPECT_EQ(std::memcmp(u.data, t.data, t.nbytes), 0) << t.name;
  }
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
