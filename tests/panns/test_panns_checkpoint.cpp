// torch.save checkpoints in both containers: the golden PANNs checkpoints (legacy and zip) read
// through the restricted unpickler, each re-packed into the other container, and hostile, truncated
// and oversized legacy files.
#include <gtest/gtest.h>

#include <unistd.h>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <functional>

#include "asdcap/checkpoint.hpp"
#include "asdcap/error.hpp"
#include "asdcap/npy.hpp"
#include "modelio/legacy_checkpoint.hpp"
#include "torch_files.hpp"

using namespace asdcap;
using ziptest::Pickle;

namespace {

const std::string kGolden = std::string(ASDCAP_SHARED_DIR) + "/golden-panns/";

std::vector<CheckpointTensor> read_bytes(const std::string& b, const std::string& name = "test.pth") {
  return read_torch_checkpoint_bytes(b.data(), b.size(), name);
}

std::string error_of(const std::string& b, const std::string& name = "test.pth") {
  try {
    read_bytes(b, name);
  } catch (const FormatError& e) {
    return e.what();
  }
  return "(no FormatError)";
}

const CheckpointTensor& find(const std::vector<CheckpointTensor>& ts, const std::string& name) {
  for (const auto& t : ts)
    if (t.name == name) return t;
  throw std::runtime_error("no tensor " + name);
}

std::string f32_bytes(const std::vector<float>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * 4);
}

// What each golden checkpoint must yield: 84 tensors (6 blocks x 12, bn0 x 5, 2 STFT, melW, 4 fc),
// the stored mel bank equal to the one the reference used (melW is stored column-major), and the
// training counter the generator wrote into every num_batches_tracked.
void check_golden(const std::vector<CheckpointTensor>& ts, const std::string& model, int64_t bins, int64_t n_fft,
                  int64_t iteration) {
  ASSERT_EQ(ts.size(), 84u);
  EXPECT_EQ(ts.front().name, "spectrogram_extractor.stft.conv_real.weight");
  EXPECT_EQ(ts.back().name, "fc_audioset.bias");
  EXPECT_EQ(find(ts, "spectrogram_extractor.stft.conv_imag.weight").shape, (std::vector<int64_t>{bins, 1, n_fft}));
  EXPECT_EQ(find(ts, "conv_block6.conv2.weight").shape, (std::vector<int64_t>{256, 256, 3, 3}));
  EXPECT_EQ(find(ts, "fc_audioset.weight").shape, (std::vector<int64_t>{527, 256}));
  const CheckpointTensor& melw = find(ts, "logmel_extractor.melW");
  ASSERT_EQ(melw.shape, (std::vector<int64_t>{bins, 64}));
  NpyArray ref = read_npy(kGolden + "frontend/" + model + "/melW.npy");
  ASSERT_EQ(ref.shape, melw.shape);
  EXPECT_EQ(std::memcmp(ref.bytes.data(), melw.data.data(), melw.data.size()), 0) << "melW strides not honoured";
  const CheckpointTensor& nbt = find(ts, "conv_block3.bn2.num_batches_tracked");
  ASSERT_EQ(nbt.dtype, DType::I64);
  int64_t v = 0;
  std::memcpy(&v, nbt.data.data(), 8);
  EXPECT_EQ(v, iteration);
}

void expect_same(const std::vector<CheckpointTensor>& a, const std::vector<CheckpointTensor>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].name, b[i].name);
    EXPECT_EQ(a[i].dtype, b[i].dtype);
    EXPECT_EQ(a[i].shape, b[i].shape);
    EXPECT_TRUE(a[i].data == b[i].data) << a[i].name;
  }
}

// {'model': OrderedDict(w=<f32 [2]>), <extra key>: <extra>} as a legacy file.
std::string small_legacy(const std::function<void(Pickle&)>& extra,
                         const std::function<void(Pickle&)>& model_extra = {}) {
  Pickle p;
  p.op('}')
      .op('(')
      .str("iteration")
      .integer(5)
      .str("model")
      .global("collections", "OrderedDict")
      .op(')')
      .op('R')
      .op('(');
  p.str("w");
  torchtest::legacy_tensor(p, "FloatStorage", "140", 2, {2}, {1});
  if (model_extra) model_extra(p);
  p.op('u');
  extra(p);
  p.op('u').op('.');
  return torchtest::legacy_file(p.b, {{"140", {2, f32_bytes({1.5f, -2.f})}}});
}

// sampler = [numpy.core.multiarray._reconstruct(numpy.ndarray, (0,), _codecs.encode('b', 'latin1'))
//            with BUILD state (1, (2,), numpy.dtype('i8', 0, 1), False, bytes)], as pickle writes it.
void numpy_sampler(Pickle& p) {
  p.str("sampler").op(']').op('(');
  p.global("numpy.core.multiarray", "_reconstruct").global("numpy", "ndarray").op('K').op('\0').op('\x85');
  p.global("_codecs", "encode").str("b").str("latin1").op('\x86').op('R').op('\x87').op('R');
  p.op('(').op('K').op('\x01').op('K').op('\x02').op('\x85');
  p.global("numpy", "dtype").str("i8").op('K').op('\0').op('K').op('\x01').op('\x87').op('R');
  p.op('(').op('K').op('\x03').str("<").op('N').op('N').op('N').integer(-1).integer(-1).integer(0).op('t').op('b');
  p.op('\x89').global("_codecs", "encode").str(std::string("\x01\0\0\0\0\0\0\0\x02\0\0\0\0\0\0\0", 16)).str("latin1");
  p.op('\x86').op('R').op('t').op('b');
  p.op('e');
}

}  // namespace

TEST(PannsCheckpoint, GoldenLegacyFileWithNumpySampler) {
  auto ts = read_torch_checkpoint(kGolden + "Cnn14_tiny.pth");
  check_golden(ts, "cnn14", 513, 1024, 660000);
}

TEST(PannsCheckpoint, GoldenDeflatedZipFile) {
  auto ts = read_torch_checkpoint(kGolden + "Cnn14_16k_tiny.pth");
  check_golden(ts, "cnn14_16k", 257, 512, 440000);
}

TEST(PannsCheckpoint, EachGoldenFileReadsTheSameFromTheOtherContainer) {
  const std::string legacy = ziptest::slurp(kGolden + "Cnn14_tiny.pth");
  const std::string as_zip = torchtest::legacy_to_zip(legacy, "Cnn14_tiny");
  ASSERT_EQ(as_zip.substr(0, 2), "PK");
  expect_same(read_bytes(legacy), read_bytes(as_zip));

  const std::string zip = ziptest::slurp(kGolden + "Cnn14_16k_tiny.pth");
  const std::string as_legacy = torchtest::zip_to_legacy(zip);
  ASSERT_EQ(as_legacy.substr(0, 4), std::string("\x80\x02\x8a\x0a", 4));
  expect_same(read_bytes(zip), read_bytes(as_legacy));
}

TEST(PannsCheckpoint, HandBuiltLegacyFile) {
  auto ts = read_bytes(small_legacy([](Pickle&) {}));
  ASSERT_EQ(ts.size(), 1u);
  EXPECT_EQ(ts[0].name, "w");
  const std::string expect = f32_bytes({1.5f, -2.f});
  EXPECT_EQ(ts[0].data, (std::vector<char>(expect.begin(), expect.end())));
  // numpy arrays beside the model are skipped, their globals never resolved.
  EXPECT_EQ(read_bytes(small_legacy(numpy_sampler)).size(), 1u);
  // ... but a numpy object where a weight should be is an error naming it.
  std::string err = error_of(small_legacy(
      [](Pickle&) {}, [](Pickle& p) { p.str("v").global("numpy.core.multiarray", "scalar").op(')').op('R'); }));
  EXPECT_NE(err.find("'v'"), std::string::npos) << err;
  EXPECT_NE(err.find("numpy.core.multiarray.scalar"), std::string::npos) << err;
  // A big-endian file and an unknown protocol version are refused.
  std::string be = torchtest::legacy_header(false);
  EXPECT_NE(error_of(be + "junk").find("big-endian"), std::string::npos);
  std::string v = small_legacy([](Pickle&) {});
  v[18] = '\xea';  // protocol version 1002 (BININT2 0x03ea)
  EXPECT_NE(error_of(v).find("protocol version 1002"), std::string::npos) << error_of(v);
}

TEST(PannsCheckpoint, CodeInAnyPartIsRefusedAndNeverRun) {
  const std::string marker = "/tmp/asdcap_panns_pwned_" + std::to_string(::getpid());
  std::filesystem::remove(marker);
  struct Case {
    const char* module;
    const char* name;
    bool in_model;
  };
  for (const Case c : {Case{"os", "system", true}, Case{"posix", "system", false}, Case{"builtins", "eval", false},
                       Case{"os", "system", false}, Case{"builtins", "eval", true}}) {
    auto call = [&](Pickle& p) { p.global(c.module, c.name).op('(').str("touch " + marker).op('t').op('R'); };
    std::string file = c.in_model ? small_legacy([](Pickle&) {}, [&](Pickle& p) { call(p.str("x")); })
                                  : small_legacy([&](Pickle& p) { call(p.str("sampler")); });
    std::string err = error_of(file);
    EXPECT_NE(err.find("test.pth"), std::string::npos) << err;
    EXPECT_NE(err.find(std::string("'") + c.module + "." + c.name + "'"), std::string::npos) << err;
  }
  // The golden file with its sampler's numpy global replaced by posix.system (the pickle shrinks;
  // nothing after it depends on offsets inside it).
  std::string golden = ziptest::slurp(kGolden + "Cnn14_tiny.pth");
  const std::string from = "cnumpy.core.multiarray\n_reconstruct\n";
  size_t at = golden.find(from);
  ASSERT_NE(at, std::string::npos);
  golden.replace(at, from.size(), "cposix\nsystem\n");
  std::string err = error_of(golden, "Cnn14_tiny.pth");
  EXPECT_NE(err.find("'posix.system'"), std::string::npos) << err;
  EXPECT_FALSE(std::filesystem::exists(marker));
}

TEST(PannsCheckpoint, TruncatedLegacyFilesGiveClearErrors) {
  const std::string golden = ziptest::slurp(kGolden + "Cnn14_tiny.pth");
  const torchtest::LegacyParts parts = torchtest::split_legacy(golden);
  const size_t object_end = parts.header.size() + parts.object.size();
  const size_t keys_end = object_end + parts.key_list.size();
  struct Cut {
    size_t at;
    const char* says;
  };
  for (const Cut c :
       {Cut{0, "too short"}, Cut{10, "truncated"}, Cut{parts.header.size() - 3, "truncated"},
        Cut{object_end - 1000, "truncated"}, Cut{keys_end - 5, "truncated"}, Cut{keys_end + 4, "element count"},
        Cut{golden.size() - 1, "bytes left"}, Cut{golden.size() / 2, "bytes left"}}) {
    std::string err = error_of(golden.substr(0, c.at), "cut.pth");
    EXPECT_EQ(err.rfind("cut.pth: ", 0), 0u) << c.at << ": " << err;
    EXPECT_NE(err.find(c.says), std::string::npos) << c.at << ": " << err;
  }
  // The last storage cut short: the message names the tensor that uses it.
  std::string err = error_of(golden.substr(0, golden.size() - 1), "cut.pth");
  EXPECT_NE(err.find(": storage " + parts.storages.back().first + " declares"), std::string::npos) << err;
  EXPECT_EQ(err.rfind("cut.pth: tensor conv_block", 0), 0u) << err;
}

TEST(PannsCheckpoint, DeclaredSizesAreCheckedBeforeAllocating) {
  // 2^29 float32 elements declared (2 GiB), 8 bytes present: fails at once, naming file and tensor.
  Pickle p;
  p.op('}').op('(').str("model").global("collections", "OrderedDict").op(')').op('R').op('(').str("big.weight");
  torchtest::legacy_tensor(p, "FloatStorage", "7", 1 << 29, {1 << 29}, {1});
  p.op('u').op('u').op('.');
  const auto t0 = std::chrono::steady_clock::now();
  std::string err =
      error_of(torchtest::legacy_file(p.b, {{"7", {uint64_t{1} << 29, std::string(8, '\0')}}}), "tiny.pth");
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 0.5);
  EXPECT_NE(err.find("tiny.pth: tensor big.weight: storage 7 declares 536870912 f32 elements"), std::string::npos)
      << err;
  // The record's count must equal the pickle's, and a tensor may not reach beyond its storage.
  std::string wrong = torchtest::legacy_file(p.b, {{"7", {2, f32_bytes({1, 2})}}});
  EXPECT_NE(error_of(wrong).find("holds 2 elements, the pickle declares 536870912"), std::string::npos)
      << error_of(wrong);
  Pickle q;
  q.op('}').op('(').str("model").global("collections", "OrderedDict").op(')').op('R').op('(').str("w");
  torchtest::legacy_tensor(q, "FloatStorage", "7", 2, {1 << 28}, {0});
  q.op('u').op('u').op('.');
  EXPECT_NE(error_of(torchtest::legacy_file(q.b, {{"7", {2, f32_bytes({1, 2})}}})).find("over a storage of 2"),
            std::string::npos);
  // A storage the pickle never mentions (its element size unknown) and a missing storage.
  EXPECT_NE(error_of(torchtest::legacy_file(q.b, {{"8", {2, f32_bytes({1, 2})}}})).find("storage 8 is listed but not"),
            std::string::npos);
  EXPECT_NE(error_of(torchtest::legacy_file(q.b, {})).find("not in the file's storage list"), std::string::npos);
}

TEST(PannsCheckpoint, FuzzSeedsAreValidFiles) {
  // fuzz/seeds/fuzz_torch_legacy: a mode byte, then a legacy file (0) or an object pickle (1).
  const std::string dir = std::string(ASDCAP_SOURCE_DIR) + "/fuzz/seeds/fuzz_torch_legacy/";
  int files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    const std::string b = ziptest::slurp(e.path().string());
    ASSERT_GE(b.size(), 2u);
    const auto* d = reinterpret_cast<const uint8_t*>(b.data()) + 1;
    if (b[0] == 0) {
      EXPECT_FALSE(modelio::read_legacy_checkpoint(d, b.size() - 1, e.path().string()).empty()) << e.path();
    } else {
      EXPECT_EQ(modelio::unpickle_checkpoint(d, b.size() - 1, e.path().string()).end, b.size() - 1) << e.path();
    }
    ++files;
  }
  EXPECT_GE(files, 4);
  // The strided seed: melW-like column-major view and an int64 scalar.
  const std::string s = ziptest::slurp(dir + "strided_counter.bin");
  auto ts = modelio::read_legacy_checkpoint(reinterpret_cast<const uint8_t*>(s.data()) + 1, s.size() - 1, "seed");
  ASSERT_EQ(ts.size(), 2u);
  EXPECT_EQ(ts[0].shape, (std::vector<int64_t>{3, 2}));
  const float* m = reinterpret_cast<const float*>(ts[0].data.data());
  EXPECT_EQ(std::vector<float>(m, m + 6), (std::vector<float>{0, 3, 1, 4, 2, 5}));
  EXPECT_EQ(ts[1].shape, std::vector<int64_t>{});
  int64_t v = 0;
  std::memcpy(&v, ts[1].data.data(), 8);
  EXPECT_EQ(v, 660000);
}
