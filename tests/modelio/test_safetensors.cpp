// safetensors reading, and GPT-2 tensors a checkpoint lacks taken from --gpt2 (msclap's strict=False).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>

#include "asdcap/convert.hpp"
#include "asdcap/error.hpp"
#include "asdcap/model_file.hpp"
#include "modelio/half.hpp"
#include "modelio/safetensors.hpp"
#include "zip_tools.hpp"

namespace fs = std::filesystem;
using namespace asdcap;

namespace {

const std::string kShared = ASDCAP_SHARED_DIR;

// A safetensors file: 8-byte header length, JSON header, data.
std::string safetensors(
    const std::vector<std::tuple<std::string, std::string, std::vector<int>, std::string>>& tensors) {
  std::string header = "{\"__metadata__\":{\"format\":\"pt\"}", data;
  for (const auto& [name, dtype, shape, bytes] : tensors) {
    header.append(",\"").append(name).append("\":{\"dtype\":\"").append(dtype).append("\",\"shape\":[");
    for (size_t i = 0; i < shape.size(); ++i) header.append(i ? "," : "").append(std::to_string(shape[i]));
    header.append("],\"data_offsets\":[").append(std::to_string(data.size())).append(",");
    header.append(std::to_string(data.size() + bytes.size())).append("]}");
    data += bytes;
  }
  header += "}";
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((header.size() >> (8 * i)) & 255);
  return out + header + data;
}

std::string floats(int n, float start) {
  std::string s(static_cast<size_t>(n) * 4, '\0');
  for (int i = 0; i < n; ++i) {
    float v = start + 0.25f * i;
    std::memcpy(s.data() + 4 * i, &v, 4);
  }
  return s;
}

}  // namespace

TEST(Safetensors, ReadsTensorsAndRejectsBadFiles) {
  std::string f = safetensors(
      {{"wte.weight", "F32", {2, 3}, floats(6, 1)}, {"h.0.attn.bias", "F16", {2}, std::string("\x00\x3c\x00\x40", 4)}});
  auto t = read_safetensors_bytes(f.data(), f.size(), "x.safetensors");
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t[0].name, "wte.weight");
  EXPECT_EQ(t[0].shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(std::string(t[0].data.begin(), t[0].data.end()), floats(6, 1));
  EXPECT_EQ(t[1].dtype, DType::F16);
  for (size_t cut : {size_t{0}, size_t{7}, size_t{20}, f.size() - 1}) {
    std::string bad = f.substr(0, cut);
    EXPECT_THROW(read_safetensors_bytes(bad.data(), bad.size(), "cut"), FormatError) << cut;
  }
  std::string wrong_size = safetensors({{"a", "F32", {3}, floats(2, 0)}});
  EXPECT_THROW(read_safetensors_bytes(wrong_size.data(), wrong_size.size(), "w"), FormatError);
  std::string bad_dtype = safetensors({{"a", "U8", {1}, "x"}});
  EXPECT_THROW(read_safetensors_bytes(bad_dtype.data(), bad_dtype.size(), "d"), FormatError);
  std::string not_json = std::string("\x02\0\0\0\0\0\0\0{x", 10);
  EXPECT_THROW(read_safetensors_bytes(not_json.data(), not_json.size(), "j"), FormatError);
}

TEST(Safetensors, MissingGpt2TensorsComeFromGpt2File) {
  fs::path dir = fs::temp_directory_path() / ("asdcap_test_safetensors_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  // The golden CLAP checkpoint without caption_encoder.base.ln_f.weight (its key renamed).
  auto members = ziptest::unzip_all(ziptest::slurp(kShared + "/golden/clap_2023_tiny.pth"));
  for (auto& [n, bytes] : members)
    if (n.size() > 9 && n.compare(n.size() - 9, 9, "/data.pkl") == 0) {
      size_t p = bytes.find("caption_encoder.base.ln_f.weight");
      ASSERT_NE(p, std::string::npos);
      bytes[p + 31] = 'X';
    }
  const std::string clap = (dir / "clap.pth").string();
  ziptest::spit(clap, ziptest::zip_stored(members));
  // A gpt2 model.safetensors with ln_f.weight (HF layout), a causal-mask buffer and lm_head (both ignored).
  const std::string gpt2 = (dir / "model.safetensors").string();
  ziptest::spit(gpt2, safetensors({{"h.0.attn.bias", "F32", {1, 1, 2, 2}, floats(4, 0)},
                                   {"ln_f.weight", "F32", {64}, floats(64, 3)},
                                   {"lm_head.weight", "F32", {1}, floats(1, 0)}}));
  ConvertOptions o;
  o.clap = clap;
  o.vocab = kShared + "/assets/gpt2/vocab.json";
  o.merges = kShared + "/assets/gpt2/merges.txt";
  o.text_heads = 4;
  o.out = (dir / "m.gguf").string();
  try {  // without --gpt2: an error that names the tensor
    convert_model(o);
    ADD_FAILURE() << "no error";
  } catch (const ModelError& e) {
    EXPECT_NE(std::string(e.what()).find("text.gpt2.ln_f.weight"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(o.out));
  o.gpt2_safetensors = gpt2;
  ConvertReport r = convert_model(o);
  EXPECT_EQ(r.filled_from_gpt2, std::vector<std::string>{"text.gpt2.ln_f.weight"});
  ASSERT_EQ(r.unexpected.size(), 1u);
  EXPECT_EQ(r.unexpected[0], "clap:caption_encoder.base.ln_f.weighX");
  auto m = ModelFile::open(o.out);
  EXPECT_EQ(std::memcmp(m->f32("text.gpt2.ln_f.weight", {64}), floats(64, 3).data(), 256), 0);
  EXPECT_EQ(m->get_string_array("asdcap-msclap.source.filled_from_gpt2"),
            std::vector<std::string>{"text.gpt2.ln_f.weight"});
  EXPECT_EQ(m->get_string("asdcap-msclap.source.gpt2.file"), "model.safetensors");
  fs::remove_all(dir);
}

TEST(Half, RoundTripsEveryHalfAndRoundsToNearestEven) {
  using asdcap::modelio::float_to_half;
  using asdcap::modelio::half_to_float;
  for (uint32_t h = 0; h < 65536; ++h) {
    uint16_t x = static_cast<uint16_t>(h);
    if ((x & 0x7c00) == 0x7c00 && (x & 0x3ff)) continue;  // NaN payloads
    ASSERT_EQ(float_to_half(half_to_float(x)), x) << h;
  }
  EXPECT_EQ(half_to_float(0x3c00), 1.f);
  EXPECT_EQ(half_to_float(0x0001), std::ldexp(1.f, -24));
  EXPECT_EQ(half_to_float(0x7bff), 65504.f);
  EXPECT_EQ(float_to_half(1.f + std::ldexp(1.f, -11)), 0x3c00);      // tie -> even
  EXPECT_EQ(float_to_half(1.f + 3 * std::ldexp(1.f, -11)), 0x3c02);  // tie -> even (up)
  EXPECT_EQ(float_to_half(65520.f), 0x7c00);                         // rounds to infinity
  EXPECT_EQ(float_to_half(std::ldexp(1.f, -26)), 0x0000);
  EXPECT_EQ(float_to_half(std::ldexp(3.f, -26)), 0x0001);
  EXPECT_EQ(float_to_half(-0.f), 0x8000);
}
