// The torch.save reader on hand-built checkpoints: strides, offsets, dtypes, prefixes, and every
// kind of bad or hostile input.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "asdcap/checkpoint.hpp"
#include "asdcap/error.hpp"
#include "zip_tools.hpp"

using namespace asdcap;
using ziptest::Pickle;

namespace {

std::string f32_bytes(const std::vector<float>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * 4);
}

// {'model': OrderedDict(entries)} where entries are appended by `body`.
template <class F>
std::string state_dict_pickle(F body) {
  Pickle p;
  p.op('}').str("model").global("collections", "OrderedDict").op(')').op('R').op('(');
  body(p);
  p.op('u').op('s').op('.');
  return p.b;
}

std::vector<CheckpointTensor> read_zip(const std::vector<std::pair<std::string, std::string>>& members) {
  std::string z = ziptest::zip_stored(members);
  return read_torch_checkpoint_bytes(z.data(), z.size(), "test.pth");
}

std::string error_of(const std::vector<std::pair<std::string, std::string>>& members) {
  try {
    read_zip(members);
  } catch (const FormatError& e) {
    return e.what();
  }
  return "(no FormatError)";
}

}  // namespace

TEST(Checkpoint, StridedOffsetTensorIsMadeContiguous) {
  // storage 0..11; tensor = storage[2:].view(2,5)? No: a transposed 3x2 view with offset 1, strides (1, 3).
  std::vector<float> storage(12);
  for (int i = 0; i < 12; ++i) storage[i] = static_cast<float>(i);
  std::string pkl = state_dict_pickle([](Pickle& p) {
    p.str("module.t").tensor("FloatStorage", "0", 12, 1, {3, 2}, {1, 3});
    p.str("c").tensor("FloatStorage", "0", 12, 4, {2, 3}, {3, 1});
  });
  auto t = read_zip({{"archive/data.pkl", pkl}, {"archive/data/0", f32_bytes(storage)}});
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t[0].name, "t");  // module. stripped
  EXPECT_EQ(t[0].shape, (std::vector<int64_t>{3, 2}));
  const float* a = reinterpret_cast<const float*>(t[0].data.data());
  // element [i][j] = storage[1 + i + 3 j]
  EXPECT_EQ(std::vector<float>(a, a + 6), (std::vector<float>{1, 4, 2, 5, 3, 6}));
  const float* c = reinterpret_cast<const float*>(t[1].data.data());
  EXPECT_EQ(std::vector<float>(c, c + 6), (std::vector<float>{4, 5, 6, 7, 8, 9}));
}

TEST(Checkpoint, DtypesParametersAndTopLevelDict) {
  std::string i64(16, '\0');
  int64_t v[2] = {-5, 1LL << 40};
  std::memcpy(i64.data(), v, 16);
  std::string f16("\x00\x3c\x00\xc0", 4);  // 1.0, -2.0
  Pickle p;  // a top-level OrderedDict (no 'model'), one tensor wrapped in _rebuild_parameter
  p.global("collections", "OrderedDict").op(')').op('R').op('(');
  p.str("idx").tensor("LongStorage", "a", 2, 0, {2}, {1});
  p.str("h").global("torch._utils", "_rebuild_parameter").op('(');
  p.tensor("HalfStorage", "b", 2, 0, {2}, {1});
  p.op('\x88').global("collections", "OrderedDict").op(')').op('R').op('t').op('R');
  p.op('u').op('.');
  auto t = read_zip({{"x/data.pkl", p.b}, {"x/data/a", i64}, {"x/data/b", f16}});
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t[0].dtype, DType::I64);
  EXPECT_EQ(std::memcmp(t[0].data.data(), v, 16), 0);
  EXPECT_EQ(t[1].name, "h");
  EXPECT_EQ(t[1].dtype, DType::F16);
  EXPECT_EQ(std::string(t[1].data.begin(), t[1].data.end()), f16);
}

TEST(Checkpoint, RefusesOsSystem) {
  // What a malicious "checkpoint" does: os.system('touch PWNED') via GLOBAL + REDUCE.
  Pickle p;
  p.global("os", "system").op('(').str("touch /tmp/asdcap_pwned").op('t').op('R').op('.');
  std::filesystem::remove("/tmp/asdcap_pwned");
  std::string err = error_of({{"archive/data.pkl", p.b}});
  EXPECT_NE(err.find("test.pth"), std::string::npos) << err;
  EXPECT_NE(err.find("'os.system'"), std::string::npos) << err;
  EXPECT_FALSE(std::filesystem::exists("/tmp/asdcap_pwned"));
  // Other routes to code: protocol-4 STACK_GLOBAL, builtins.eval, torch's own helpers outside the list.
  Pickle q;
  q.b = std::string("\x80\x04", 2);
  q.str("builtins").str("eval").op('\x93').op('.');
  EXPECT_NE(error_of({{"a/data.pkl", q.b}}).find("'builtins.eval'"), std::string::npos);
  Pickle r;
  r.global("torch", "load").op('.');
  EXPECT_NE(error_of({{"a/data.pkl", r.b}}).find("'torch.load'"), std::string::npos);
  // A storage type called directly, and unsupported opcodes (INST, NEWOBJ), are refused as well.
  Pickle s;
  s.global("torch", "FloatStorage").op(')').op('R').op('.');
  EXPECT_NE(error_of({{"a/data.pkl", s.b}}).find("called directly"), std::string::npos);
  Pickle u;
  u.b += "ios\nsystem\n";
  EXPECT_NE(error_of({{"a/data.pkl", u.b}}).find("unsupported pickle opcode"), std::string::npos);
}

TEST(Checkpoint, StorageProblemsAreFormatErrors) {
  std::vector<float> four{1, 2, 3, 4};
  auto pkl = [](int32_t numel, int32_t offset, std::vector<int32_t> size, std::vector<int32_t> stride) {
    return state_dict_pickle([&](Pickle& p) { p.str("w").tensor("FloatStorage", "0", numel, offset, size, stride); });
  };
  // Missing storage member.
  EXPECT_NE(error_of({{"a/data.pkl", pkl(4, 0, {4}, {1})}}).find("missing from the zip"), std::string::npos);
  // Storage smaller than its declared element count.
  EXPECT_NE(error_of({{"a/data.pkl", pkl(5, 0, {4}, {1})}, {"a/data/0", f32_bytes(four)}}).find("fewer than"),
            std::string::npos);
  // A view reaching past the storage (offset, size or stride).
  for (auto [off, size, stride] : std::vector<std::tuple<int, int, int>>{{1, 4, 1}, {0, 5, 1}, {0, 2, 4}, {-1, 2, 1}})
    EXPECT_NE(error_of({{"a/data.pkl", pkl(4, off, {size}, {stride})}, {"a/data/0", f32_bytes(four)}}).find("test.pth"),
              std::string::npos);
  // Huge sizes must not overflow into a small allocation.
  EXPECT_NE(error_of({{"a/data.pkl", pkl(4, 0, {1 << 30, 1 << 30, 1 << 30}, {1, 1, 1})}, {"a/data/0", f32_bytes(four)}})
                .find("test.pth"),
            std::string::npos);
}

// A stride-0 view declaring 2^29 elements over a storage of 4: refused from the declared sizes,
// before any allocation, naming the file and the tensor.
TEST(Checkpoint, StrideZeroHugeTensorIsRefusedBeforeAllocating) {
  std::vector<float> four{1, 2, 3, 4};
  const std::string pkl =
      state_dict_pickle([&](Pickle& p) { p.str("w").tensor("FloatStorage", "0", 4, 0, {1 << 29}, {0}); });
  const std::string err = error_of({{"a/data.pkl", pkl}, {"a/data/0", f32_bytes(four)}});
  EXPECT_NE(err.find("test.pth: tensor w: "), std::string::npos) << err;
  EXPECT_NE(err.find("536870912 elements over a storage of 4"), std::string::npos) << err;
}

TEST(Checkpoint, MalformedContainers) {
  std::string good = ziptest::zip_stored({{"a/data.pkl", state_dict_pickle([](Pickle&) {})}});
  for (size_t cut : {size_t{0}, size_t{10}, good.size() / 2, good.size() - 1}) {
    std::string bad = good.substr(0, cut);
    EXPECT_THROW(read_torch_checkpoint_bytes(bad.data(), bad.size(), "cut.pth"), FormatError) << cut;
  }
  std::string flipped = good;
  flipped[40] ^= 0x55;  // inside the pickle: CRC mismatch
  EXPECT_THROW(read_torch_checkpoint_bytes(flipped.data(), flipped.size(), "crc.pth"), FormatError);
  std::string no_pkl = ziptest::zip_stored({{"a/other", "x"}});
  EXPECT_THROW(read_torch_checkpoint_bytes(no_pkl.data(), no_pkl.size(), "x.pth"), FormatError);
  // Pickles that end early, underflow the stack, or use undefined memo entries.
  for (std::string p : {std::string("\x80\x02}", 3), std::string("\x80\x02s.", 4), std::string("\x80\x02h\x05.", 5),
                        std::string("\x80\x02(.", 4), std::string("\x80\x09}.", 4)}) {
    std::string z = ziptest::zip_stored({{"a/data.pkl", p}});
    EXPECT_THROW(read_torch_checkpoint_bytes(z.data(), z.size(), "p.pth"), FormatError);
  }
  EXPECT_THROW(read_torch_checkpoint("/nonexistent/x.pth"), IoError);
}
