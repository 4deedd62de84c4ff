// Decoding with libsndfile, with errors that name the file, and the 44.1 kHz loader.
#include <sndfile.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <mutex>
#include <sstream>

#include "asdcap/audio.hpp"
#include "asdcap/error.hpp"

namespace asdcap {
namespace {

// sf_open reports failures through a process-wide error slot: open one file at a time.
std::mutex& sndfile_open_mutex() {
  static std::mutex mu;
  return mu;
}

struct SndFile {
  SNDFILE* handle = nullptr;
  SF_INFO info{};
  SndFile() = default;
  SndFile(const SndFile&) = delete;
  SndFile& operator=(const SndFile&) = delete;
  ~SndFile() {
    if (handle) sf_close(handle);
  }
};

std::string major_name(int format) {
  switch (format & SF_FORMAT_TYPEMASK) {
    case SF_FORMAT_WAV: return "WAV";
    case SF_FORMAT_WAVEX: return "WAVEX";
    case SF_FORMAT_RF64: return "RF64";
    case SF_FORMAT_W64: return "W64";
    case SF_FORMAT_AIFF: return "AIFF";
    case SF_FORMAT_AU: return "AU";
    case SF_FORMAT_RAW: return "RAW";
    case SF_FORMAT_FLAC: return "FLAC";
    case SF_FORMAT_OGG: return "OGG";
    case SF_FORMAT_CAF: return "CAF";
    default: break;
  }
  SF_FORMAT_INFO fi{};
  fi.format = format & SF_FORMAT_TYPEMASK;
  if (sf_command(nullptr, SFC_GET_FORMAT_INFO, &fi, sizeof fi) == 0 && fi.name) return fi.name;
  return "unknown";
}

std::string subtype_name(int format) {
  switch (format & SF_FORMAT_SUBMASK) {
    case SF_FORMAT_PCM_S8: return "PCM_S8";
    case SF_FORMAT_PCM_U8: return "PCM_U8";
    case SF_FORMAT_PCM_16: return "PCM_16";
    case SF_FORMAT_PCM_24: return "PCM_24";
    case SF_FORMAT_PCM_32: return "PCM_32";
    case SF_FORMAT_FLOAT: return "FLOAT";
    case SF_FORMAT_DOUBLE: return "DOUBLE";
    case SF_FORMAT_ULAW: return "ULAW";
    case SF_FORMAT_ALAW: return "ALAW";
    case SF_FORMAT_IMA_ADPCM: return "IMA_ADPCM";
    case SF_FORMAT_MS_ADPCM: return "MS_ADPCM";
    case SF_FORMAT_VORBIS: return "VORBIS";
    case SF_FORMAT_OPUS: return "OPUS";
    default: break;
  }
  SF_FORMAT_INFO fi{};
  fi.format = format & SF_FORMAT_SUBMASK;
  if (sf_command(nullptr, SFC_GET_FORMAT_INFO, &fi, sizeof fi) == 0 && fi.name) return fi.name;
  return "unknown";
}

bool is_wav_family(int format) {
  const int major = format & SF_FORMAT_TYPEMASK;
  return major == SF_FORMAT_WAV || major == SF_FORMAT_WAVEX || major == SF_FORMAT_RF64;
}

// Checks what libsndfile cannot tell apart (missing / unreadable / empty file), then opens it.
void open_audio(const std::string& path, SndFile& file) {
  if (path.empty()) throw IoError("an empty file name was given as an audio file");
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) throw IoError(path + ": cannot open: " + std::strerror(errno));
  if (S_ISDIR(st.st_mode)) throw IoError(path + ": is a directory, not an audio file");
  {
    std::ifstream probe(path, std::ios::binary);
    if (!probe) throw IoError(path + ": cannot read: " + std::strerror(errno));
  }
  if (S_ISREG(st.st_mode) && st.st_size == 0) throw FormatError(path + ": empty file (0 bytes)");
  std::lock_guard<std::mutex> lock(sndfile_open_mutex());
  file.handle = sf_open(path.c_str(), SFM_READ, &file.info);
  if (!file.handle) throw FormatError(path + ": not a readable audio file (" + sf_strerror(nullptr) + ")");
}

// libsndfile silently shortens a WAV whose data chunk runs past the end of the file; its log
// then holds "data : <declared> (should be <present>)". That is a truncated file, unless the
// declared size is a streaming writer's "unknown length" placeholder (0xFFFFFFFF).
void check_not_truncated_wav(const std::string& path, SndFile& file) {
  if (!is_wav_family(file.info.format)) return;
  char log[8192] = {0};
  sf_command(file.handle, SFC_GET_LOG_INFO, log, sizeof log - 1);
  std::istringstream lines(log);
  std::string line;
  while (std::getline(lines, line)) {
    unsigned long long declared = 0, present = 0;
    if (std::sscanf(line.c_str(), " data : %llu (should be %llu)", &declared, &present) != 2) continue;
    if (declared >= 0xFFFFFFF0ULL) return;
    throw FormatError(path + ": truncated WAV file: its header declares " + std::to_string(declared) +
                      " bytes of audio data but only " + std::to_string(present) + " are present");
  }
}

AudioInfo info_of(const std::string& path, const SndFile& file) {
  AudioInfo info;
  info.path = path;
  info.sample_rate = file.info.samplerate;
  info.channels = file.info.channels;
  info.frames = file.info.frames;
  info.format = major_name(file.info.format) + " " + subtype_name(file.info.format);
  return info;
}

// The highest sample rate read (the highest of standard PCM audio). A header may declare any 32-bit
// rate, and resampling from a rate of 2^31 Hz would need gigabytes for its filter.
constexpr int kMaxSampleRate = 768000;

void check_header(const std::string& path, const AudioInfo& info) {
  if (info.channels <= 0) throw FormatError(path + ": invalid channel count " + std::to_string(info.channels));
  if (info.sample_rate <= 0) throw FormatError(path + ": invalid sample rate " + std::to_string(info.sample_rate));
  if (info.sample_rate > kMaxSampleRate)
    throw FormatError(path + ": sample rate " + std::to_string(info.sample_rate) + " Hz is above the " +
                      std::to_string(kMaxSampleRate) + " Hz asdcap reads");
  if (info.frames <= 0) throw FormatError(path + ": no audio samples (0 frames)");
}

}  // namespace

ChannelMode parse_channel_mode(const std::string& text) {
  if (text == "mean") return ChannelMode::Mean;
  if (text == "concat") return ChannelMode::Concat;
  throw InvalidArgument("invalid channel mode '" + text + "': expected mean or concat");
}

std::string to_string(ChannelMode mode) { return mode == ChannelMode::Mean ? "mean" : "concat"; }

AudioInfo probe_audio(const std::string& path) {
  SndFile file;
  open_audio(path, file);
  check_not_truncated_wav(path, file);
  AudioInfo info = info_of(path, file);
  check_header(path, info);
  return info;
}

namespace {

std::string seconds_text(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", s);
  return buf;
}

// Everything after opening: header checks, the samples in blocks (at most max_seconds' worth when
// max_seconds > 0), the finite check.
DecodedAudio read_all(const std::string& path, SndFile& file, double max_seconds) {
  check_not_truncated_wav(path, file);
  DecodedAudio out;
  out.info = info_of(path, file);
  check_header(path, out.info);
  const int64_t channels = out.info.channels;
  const int64_t max_frames = max_seconds > 0 ? static_cast<int64_t>(std::floor(max_seconds * out.info.sample_rate))
                                             : std::numeric_limits<int64_t>::max();
  auto too_long = [&](const std::string& how_many) {
    return FormatError(path + ": " + how_many + " frames at " + std::to_string(out.info.sample_rate) +
                       " Hz, more than " + seconds_text(max_seconds) + " s of audio: at most " +
                       seconds_text(max_seconds) + " s are decoded");
  };
  // libsndfile's length of a stream whose header does not give one (e.g. FLAC total samples 0).
  const bool length_unknown = out.info.frames == SF_COUNT_MAX;
  if (!length_unknown && out.info.frames > max_frames)
    throw too_long("the header declares " + std::to_string(out.info.frames));
  // Do not trust the header for the allocation (a few bytes may declare 2^60 frames of 1024
  // channels): reserve at most 2^24 samples, and read in blocks of at most 2^18 until the end.
  constexpr int64_t kReserveSamples = int64_t{1} << 24, kBlockSamples = int64_t{1} << 18;
  out.interleaved.reserve(
      static_cast<size_t>(std::min({out.info.frames, kReserveSamples / channels, max_frames}) * channels));
  const int64_t kBlockFrames = std::max<int64_t>(1, kBlockSamples / channels);
  int64_t read = 0;
  std::vector<float> block(static_cast<size_t>(kBlockFrames * channels));
  for (;;) {
    const sf_count_t got = sf_readf_float(file.handle, block.data(), kBlockFrames);
    if (got <= 0) break;
    if (got > max_frames - read) throw too_long("more than " + std::to_string(max_frames));
    out.interleaved.insert(out.interleaved.end(), block.begin(), block.begin() + got * channels);
    read += got;
  }
  if (sf_error(file.handle) != SF_ERR_NO_ERROR)
    throw FormatError(path + ": truncated or corrupt: decoding failed after " + std::to_string(read) + " of " +
                      std::to_string(out.info.frames) + " frames (" + sf_strerror(file.handle) + ")");
  if (!length_unknown && read < out.info.frames)
    throw FormatError(path + ": truncated file: header declares " + std::to_string(out.info.frames) +
                      " frames but only " + std::to_string(read) + " could be read");
  if (read == 0) throw FormatError(path + ": no audio samples (0 frames)");
  out.info.frames = read;
  for (size_t i = 0; i < out.interleaved.size(); ++i) {
    const float v = out.interleaved[i];
    if (!std::isfinite(v)) {
      const auto frame = static_cast<int64_t>(i) / channels;
      const auto channel = static_cast<int64_t>(i) % channels;
      throw FormatError(path + ": sample " + std::to_string(frame) +
                        (channels > 1 ? " (channel " + std::to_string(channel) + ")" : "") + " is " +
                        (std::isnan(v) ? "NaN" : "infinite"));
    }
  }
  return out;
}

// A read-only file in memory for libsndfile's virtual I/O.
struct MemoryFile {
  const unsigned char* data;
  sf_count_t size, pos = 0;
};

sf_count_t memory_length(void* user) { return static_cast<MemoryFile*>(user)->size; }
sf_count_t memory_seek(sf_count_t offset, int whence, void* user) {
  auto* m = static_cast<MemoryFile*>(user);
  sf_count_t base = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? m->pos : m->size;
  sf_count_t to = 0;
  if (__builtin_add_overflow(base, offset, &to) || to < 0) return -1;
  m->pos = to;
  return m->pos;
}
sf_count_t memory_read(void* ptr, sf_count_t count, void* user) {
  auto* m = static_cast<MemoryFile*>(user);
  if (count <= 0 || m->pos >= m->size) return 0;
  const sf_count_t n = std::min(count, m->size - m->pos);
  std::memcpy(ptr, m->data + m->pos, static_cast<size_t>(n));
  m->pos += n;
  return n;
}
sf_count_t memory_write(const void*, sf_count_t, void*) { return 0; }
sf_count_t memory_tell(void* user) { return static_cast<MemoryFile*>(user)->pos; }

}  // namespace

DecodedAudio decode_audio(const std::string& path, double max_seconds) {
  SndFile file;
  open_audio(path, file);
  return read_all(path, file, max_seconds);
}

DecodedAudio decode_audio_bytes(const void* data, size_t size, const std::string& name, double max_seconds) {
  if (size == 0) throw FormatError(name + ": empty file (0 bytes)");
  MemoryFile memory{static_cast<const unsigned char*>(data), static_cast<sf_count_t>(size)};
  SF_VIRTUAL_IO io{memory_length, memory_seek, memory_read, memory_write, memory_tell};
  SndFile file;
  {
    std::lock_guard<std::mutex> lock(sndfile_open_mutex());
    file.handle = sf_open_virtual(&io, SFM_READ, &file.info, &memory);
    if (!file.handle) throw FormatError(name + ": not a readable audio file (" + sf_strerror(nullptr) + ")");
  }
  return read_all(name, file, max_seconds);
}

std::vector<float> load_audio_44k(const std::string& path, ChannelMode mode, AudioInfo* info) {
  return load_audio(path, kSampleRate, mode, info);
}

std::vector<float> load_audio(const std::string& path, int target_rate, ChannelMode mode, AudioInfo* info) {
  if (target_rate < 0) throw InvalidArgument(path + ": negative target sample rate");
  DecodedAudio audio = decode_audio(path);
  if (info) *info = audio.info;
  return audio_signal(audio, target_rate, mode);
}

std::vector<float> audio_signal(const DecodedAudio& audio, int target_rate, ChannelMode mode) {
  if (target_rate < 0) throw InvalidArgument(audio.info.path + ": negative target sample rate");
  const int rate = audio.info.sample_rate;
  const int to = target_rate == 0 ? rate : target_rate;
  const auto channels = static_cast<size_t>(audio.info.channels);
  const auto frames = static_cast<size_t>(audio.info.frames);
  if (channels == 1) return resample(audio.interleaved, rate, to);
  std::vector<float> one(frames);
  if (mode == ChannelMode::Mean) {
    for (size_t f = 0; f < frames; ++f) {
      double sum = 0.0;
      for (size_t c = 0; c < channels; ++c) sum += audio.interleaved[f * channels + c];
      one[f] = static_cast<float>(sum / static_cast<double>(channels));
    }
    return resample(one, rate, to);
  }
  // msclap: resample each channel, then flatten [channels, samples] channel-major.
  std::vector<float> out;
  for (size_t c = 0; c < channels; ++c) {
    for (size_t f = 0; f < frames; ++f) one[f] = audio.interleaved[f * channels + c];
    std::vector<float> r = resample(one, rate, to);
    if (out.empty()) out.reserve(r.size() * channels);
    out.insert(out.end(), r.begin(), r.end());
  }
  return out;
}

}  // namespace asdcap
