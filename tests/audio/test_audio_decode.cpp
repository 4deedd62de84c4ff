// Decoding: every format asdcap promises, channel handling, and every kind of bad file.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <functional>
#include <random>

#include "asdcap/audio.hpp"
#include "asdcap/error.hpp"
#include "audio_files.hpp"

namespace asdcap {
namespace {

using test::TempDir;

std::vector<int> ramp_ints(int frames, int channels, int shift) {
  std::vector<int> v(static_cast<size_t>(frames * channels));
  for (int f = 0; f < frames; ++f)
    for (int c = 0; c < channels; ++c) {
      const int raw = ((f * 37 + c * 1001) % 60001) - 30000;  // fits 16 bits
      v[static_cast<size_t>(f * channels + c)] = static_cast<int>(static_cast<unsigned>(raw) << shift);
    }
  return v;
}

// PCM is decoded as integer / 2^(bits-1), exactly (as torchaudio does).
TEST(AudioDecode, PcmFormatsAreScaledExactly) {
  TempDir dir;
  struct Case {
    const char* name;
    int format;
    int shift;  // the format keeps the top (32 - shift) bits of the int32 written
    const char* label;
  };
  const Case cases[] = {
      {"pcm16.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_16, 16, "WAV PCM_16"},
      {"pcm24.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_24, 8, "WAV PCM_24"},
      {"pcm32.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_32, 0, "WAV PCM_32"},
      {"pcm16.flac", SF_FORMAT_FLAC | SF_FORMAT_PCM_16, 16, "FLAC PCM_16"},
      {"pcm24.flac", SF_FORMAT_FLAC | SF_FORMAT_PCM_24, 8, "FLAC PCM_24"},
  };
  for (const auto& c : cases) {
    const std::string path = dir.file(c.name);
    // For PCM_24 / PCM_32 use the low bits too, so that a 16-bit-only decoder would fail.
    std::vector<int> ints = ramp_ints(3000, 2, c.shift);
    if (c.shift < 16)
      for (size_t i = 0; i < ints.size(); ++i) ints[i] += static_cast<int>((i * 13) % (1 << (16 - c.shift))) << c.shift;
    test::write_ints(path, c.format, 16000, 2, ints);
    const DecodedAudio a = decode_audio(path);
    EXPECT_EQ(a.info.format, c.label);
    EXPECT_EQ(a.info.sample_rate, 16000);
    EXPECT_EQ(a.info.channels, 2);
    EXPECT_EQ(a.info.frames, 3000);
    ASSERT_EQ(a.interleaved.size(), ints.size()) << c.name;
    for (size_t i = 0; i < ints.size(); ++i) {
      // stored integer = ints[i] >> shift, a (32 - shift)-bit value; decoded = stored / 2^(31 - shift)
      const double expected = std::ldexp(static_cast<double>(ints[i] >> c.shift), c.shift - 31);
      ASSERT_EQ(a.interleaved[i], static_cast<float>(expected)) << c.name << " sample " << i;
    }
  }
}

TEST(AudioDecode, FloatWavIsReadAsIs) {
  TempDir dir;
  std::vector<float> x(5000);
  for (size_t i = 0; i < x.size(); ++i) x[i] = float(0.9 * std::sin(0.001 * double(i * i % 7919)));
  x[7] = 1.5f;  // float files may exceed full scale; kept as is
  test::write_floats(dir.file("f.wav"), SF_FORMAT_WAV | SF_FORMAT_FLOAT, 22050, 1, x);
  const DecodedAudio a = decode_audio(dir.file("f.wav"));
  EXPECT_EQ(a.info.format, "WAV FLOAT");
  EXPECT_EQ(a.interleaved, x);
}

TEST(AudioDecode, OggVorbisDecodesToTheSameTone) {
  TempDir dir;
  const int rate = 16000;
  std::vector<float> x(static_cast<size_t>(2 * rate));
  for (size_t i = 0; i < x.size(); ++i) x[i] = float(0.5 * std::sin(2 * M_PI * 440.0 * double(i) / rate));
  test::write_floats(dir.file("tone.ogg"), SF_FORMAT_OGG | SF_FORMAT_VORBIS, rate, 1, x);
  const DecodedAudio a = decode_audio(dir.file("tone.ogg"));
  EXPECT_EQ(a.info.format, "OGG VORBIS");
  ASSERT_EQ(a.interleaved.size(), x.size());
  double dot = 0, xx = 0, yy = 0;
  for (size_t i = 1000; i + 1000 < x.size(); ++i) {
    dot += double(x[i]) * a.interleaved[i];
    xx += double(x[i]) * x[i];
    yy += double(a.interleaved[i]) * a.interleaved[i];
  }
  EXPECT_GT(dot / std::sqrt(xx * yy), 0.99);
  const auto at44 = load_audio_44k(dir.file("tone.ogg"));
  EXPECT_EQ(at44.size(), size_t(2 * kSampleRate));
}

TEST(AudioDecode, ChannelsAreAveragedOrConcatenated) {
  TempDir dir;
  const int frames = 4410, channels = 3;
  std::vector<float> x(static_cast<size_t>(frames * channels));
  for (int f = 0; f < frames; ++f)
    for (int c = 0; c < channels; ++c)
      x[static_cast<size_t>(f * channels + c)] = float((c + 1) * 0.1 * std::sin(0.01 * f * (c + 1)));
  test::write_floats(dir.file("three.wav"), SF_FORMAT_WAV | SF_FORMAT_FLOAT, kSampleRate, channels, x);
  AudioInfo info;
  const auto mean = load_audio_44k(dir.file("three.wav"), ChannelMode::Mean, &info);
  EXPECT_EQ(info.channels, 3);
  ASSERT_EQ(mean.size(), size_t(frames));
  for (int f = 0; f < frames; ++f) {
    const double expected = (double(x[size_t(f * 3)]) + x[size_t(f * 3 + 1)] + x[size_t(f * 3 + 2)]) / 3.0;
    ASSERT_NEAR(mean[size_t(f)], expected, 1e-7) << f;
  }
  const auto concat = load_audio_44k(dir.file("three.wav"), ChannelMode::Concat);
  ASSERT_EQ(concat.size(), size_t(frames * channels));
  for (int c = 0; c < channels; ++c)
    for (int f = 0; f < frames; f += 17) ASSERT_EQ(concat[size_t(c * frames + f)], x[size_t(f * channels + c)]);

  // At another rate: Concat resamples each channel (3 x the length), Mean resamples the average.
  test::write_floats(dir.file("three16k.wav"), SF_FORMAT_WAV | SF_FORMAT_FLOAT, 16000, channels, x);
  const auto mean16 = load_audio_44k(dir.file("three16k.wav"), ChannelMode::Mean);
  const auto concat16 = load_audio_44k(dir.file("three16k.wav"), ChannelMode::Concat);
  EXPECT_EQ(concat16.size(), 3 * mean16.size());
  for (size_t i = 0; i < mean16.size(); i += 7) {
    const double avg = (double(concat16[i]) + concat16[i + mean16.size()] + concat16[i + 2 * mean16.size()]) / 3.0;
    ASSERT_NEAR(mean16[i], avg, 1e-6);  // resampling is linear
  }

  // load_audio at rate 0 keeps the file's rate: the 16 kHz mean is the plain channel average.
  AudioInfo info16;
  const auto native = load_audio(dir.file("three16k.wav"), 0, ChannelMode::Mean, &info16);
  EXPECT_EQ(info16.sample_rate, 16000);
  ASSERT_EQ(native.size(), size_t(frames));
  for (int f = 0; f < frames; f += 13) {
    const double expected = (double(x[size_t(f * 3)]) + x[size_t(f * 3 + 1)] + x[size_t(f * 3 + 2)]) / 3.0;
    ASSERT_NEAR(native[size_t(f)], expected, 1e-7) << f;
  }
  // An explicit rate resamples to it (16 kHz -> 32 kHz doubles the length); 44.1 kHz is load_audio_44k.
  EXPECT_EQ(load_audio(dir.file("three16k.wav"), 32000).size(), size_t(2 * frames));
  EXPECT_EQ(load_audio(dir.file("three16k.wav"), 44100), mean16);
  EXPECT_THROW(load_audio(dir.file("three16k.wav"), -1), InvalidArgument);
}

TEST(AudioChannelMode, ParseAndPrint) {
  EXPECT_EQ(parse_channel_mode("mean"), ChannelMode::Mean);
  EXPECT_EQ(parse_channel_mode("concat"), ChannelMode::Concat);
  EXPECT_EQ(to_string(ChannelMode::Concat), "concat");
  EXPECT_THROW(parse_channel_mode("stereo"), InvalidArgument);
}

// ---- bad files: the error is an asdcap::Error subclass whose message names the file ----

template <typename Expected>
std::string expect_error(const std::string& path, const char* needle) {
  try {
    decode_audio(path);
  } catch (const Expected& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(path), std::string::npos) << what;
    EXPECT_NE(what.find(needle), std::string::npos) << what;
    EXPECT_EQ(what.find('\n'), std::string::npos) << what;
    return what;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "wrong exception type for " << path << ": " << e.what();
    return {};
  }
  ADD_FAILURE() << "no error for " << path;
  return {};
}

TEST(AudioDecodeErrors, MissingFile) {
  TempDir dir;
  expect_error<IoError>(dir.file("nope.wav"), "No such file");
  EXPECT_THROW(probe_audio(dir.file("nope.wav")), IoError);
}

TEST(AudioDecodeErrors, EmptyFileName) {
  expect_error<IoError>("", "empty file name");  // e.g. an unset shell variable
  EXPECT_THROW(probe_audio(""), IoError);
}

TEST(AudioDecodeErrors, Directory) {
  TempDir dir;
  expect_error<IoError>(dir.path().string(), "directory");
}

TEST(AudioDecodeErrors, UnreadableFile) {
  if (::geteuid() == 0) GTEST_SKIP() << "running as root: file permissions are not enforced";
  TempDir dir;
  test::write_ints(dir.file("locked.wav"), SF_FORMAT_WAV | SF_FORMAT_PCM_16, 16000, 1, ramp_ints(100, 1, 16));
  std::filesystem::permissions(dir.file("locked.wav"), std::filesystem::perms::none);
  expect_error<IoError>(dir.file("locked.wav"), "Permission denied");
}

TEST(AudioDecodeErrors, EmptyFile) {
  TempDir dir;
  test::write_bytes(dir.file("empty.wav"), "");
  expect_error<FormatError>(dir.file("empty.wav"), "empty file");
}

TEST(AudioDecodeErrors, RandomBytesNamedWav) {
  TempDir dir;
  std::mt19937 rng(5);
  std::string bytes(4096, '\0');
  for (char& b : bytes) b = static_cast<char>(rng());
  test::write_bytes(dir.file("noise.wav"), bytes);
  expect_error<FormatError>(dir.file("noise.wav"), "not a readable audio file");
  // A text file and a WAV header followed by garbage chunk sizes.
  test::write_bytes(dir.file("text.wav"), "this is not audio\n");
  expect_error<FormatError>(dir.file("text.wav"), "not a readable audio file");
}

TEST(AudioDecodeErrors, TruncatedWav) {
  TempDir dir;
  test::write_ints(dir.file("full.wav"), SF_FORMAT_WAV | SF_FORMAT_PCM_16, 16000, 1, ramp_ints(1000, 1, 16));
  const std::string full = test::read_bytes(dir.file("full.wav"));
  ASSERT_EQ(full.size(), 44u + 2000u);
  for (size_t keep : {size_t{44 + 1000}, size_t{44 + 1}, size_t{44}}) {
    const std::string path = dir.file("cut" + std::to_string(keep) + ".wav");
    test::write_bytes(path, full.substr(0, keep));
    expect_error<FormatError>(path, "truncated");
  }
  // Cut inside the header: not a readable WAV at all.
  test::write_bytes(dir.file("cut20.wav"), full.substr(0, 20));
  expect_error<FormatError>(dir.file("cut20.wav"), "not a readable audio file");
}

TEST(AudioDecodeErrors, TruncatedFlac) {
  TempDir dir;
  std::vector<int> x = ramp_ints(100000, 1, 16);
  std::mt19937 rng(1);
  for (int& v : x) v = static_cast<int>((rng() % 40000) - 20000) << 16;
  test::write_ints(dir.file("full.flac"), SF_FORMAT_FLAC | SF_FORMAT_PCM_16, 16000, 1, x);
  const std::string full = test::read_bytes(dir.file("full.flac"));
  test::write_bytes(dir.file("half.flac"), full.substr(0, full.size() / 2));
  expect_error<FormatError>(dir.file("half.flac"), "truncated");
}

TEST(AudioDecodeErrors, ZeroSampleWav) {
  TempDir dir;
  test::write_ints(dir.file("zero.wav"), SF_FORMAT_WAV | SF_FORMAT_PCM_16, 16000, 1, {});
  expect_error<FormatError>(dir.file("zero.wav"), "0 frames");
  EXPECT_THROW(probe_audio(dir.file("zero.wav")), FormatError);
}

TEST(AudioDecodeErrors, NanAndInfSamples) {
  TempDir dir;
  std::vector<float> x(100, 0.25f);
  x[41] = std::nanf("");
  test::write_floats(dir.file("nan.wav"), SF_FORMAT_WAV | SF_FORMAT_FLOAT, 16000, 1, x);
  expect_error<FormatError>(dir.file("nan.wav"), "sample 41 is NaN");
  x[41] = 0.0f;
  x[2 * 33 + 1] = -INFINITY;
  test::write_floats(dir.file("inf.wav"), SF_FORMAT_WAV | SF_FORMAT_FLOAT, 16000, 2, x);
  expect_error<FormatError>(dir.file("inf.wav"), "sample 33 (channel 1) is infinite");
}

}  // namespace
}  // namespace asdcap

namespace asdcap {

// Decoding from memory (libsndfile's virtual I/O) gives what decoding the file gives, and refuses
// the same bad inputs with the given name.
TEST(AudioDecode, FromMemoryEqualsFromFile) {
  test::TempDir dir;
  std::vector<int> x(4000);
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<int>(((i * 7919) % 60001) - 30000) << 16;
  for (const auto& [name, format] : {std::pair<const char*, int>{"m.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_16},
                                     std::pair<const char*, int>{"m.flac", SF_FORMAT_FLAC | SF_FORMAT_PCM_24}}) {
    test::write_ints(dir.file(name), format, 16000, 2, x);
    const std::string bytes = test::read_bytes(dir.file(name));
    const DecodedAudio from_file = decode_audio(dir.file(name));
    const DecodedAudio from_memory = decode_audio_bytes(bytes.data(), bytes.size(), "mem");
    EXPECT_EQ(from_memory.interleaved, from_file.interleaved) << name;
    EXPECT_EQ(from_memory.info.format, from_file.info.format);
    EXPECT_EQ(from_memory.info.path, "mem");
    const std::string cut = bytes.substr(0, bytes.size() / 2);
    EXPECT_THROW(decode_audio_bytes(cut.data(), cut.size(), "cut"), FormatError) << name;
  }
  try {
    decode_audio_bytes("not audio", 9, "text.wav");
    ADD_FAILURE() << "no error";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("text.wav: not a readable audio file"), std::string::npos) << e.what();
  }
  EXPECT_THROW(decode_audio_bytes("", 0, "empty.wav"), FormatError);
}

}  // namespace asdcap

namespace asdcap {

// A decoding bound (serve's 600 s): a file declaring more is refused before decoding; one whose
// FLAC header leaves its length unknown (total samples 0) is refused as soon as decoding passes
// the bound, without decoding the rest; without a bound every frame is decoded (an unknown length
// is not taken for a truncated file).
TEST(AudioDecode, MaxSecondsBoundsWhatIsDecoded) {
  test::TempDir dir;
  constexpr int kRate = 8000, kSeconds = 20;
  test::write_ints(dir.file("silence.flac"), SF_FORMAT_FLAC | SF_FORMAT_PCM_16, kRate, 1,
                   std::vector<int>(kRate * kSeconds, 0));
  std::string bytes = test::read_bytes(dir.file("silence.flac"));
  EXPECT_EQ(decode_audio_bytes(bytes.data(), bytes.size(), "mem").info.frames, kRate * kSeconds);
  EXPECT_EQ(decode_audio_bytes(bytes.data(), bytes.size(), "mem", kSeconds).info.frames, kRate * kSeconds);
  EXPECT_EQ(decode_audio(dir.file("silence.flac"), kSeconds).info.frames, kRate * kSeconds);
  auto refused = [](const std::function<void()>& decode, const std::string& says) {
    try {
      decode();
      ADD_FAILURE() << "decoded past the bound";
    } catch (const FormatError& e) {
      EXPECT_NE(std::string(e.what()).find(says), std::string::npos) << e.what();
    }
  };
  refused([&] { decode_audio_bytes(bytes.data(), bytes.size(), "mem", 5); },
          "mem: the header declares 160000 frames at 8000 Hz, more than 5 s of audio: at most 5 s are decoded");
  refused([&] { decode_audio(dir.file("silence.flac"), 2.5); }, "at most 2.5 s are decoded");
  // STREAMINFO's 36-bit total sample count (bytes 21-25 of the file) set to 0, "unknown".
  ASSERT_EQ(bytes.compare(0, 4, "fLaC"), 0);
  bytes[21] = static_cast<char>(bytes[21] & 0xf0);
  for (int i = 22; i < 26; ++i) bytes[i] = 0;
  refused([&] { decode_audio_bytes(bytes.data(), bytes.size(), "mem", 5); }, "more than 40000 frames at 8000 Hz");
  EXPECT_EQ(decode_audio_bytes(bytes.data(), bytes.size(), "mem").info.frames, kRate * kSeconds);
}

}  // namespace asdcap
