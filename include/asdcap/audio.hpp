// Audio front end: decoding, torchaudio-exact resampling to 44.1 kHz, msclap's 7-s length rule,
// and the log-mel spectrogram / HTSAT image exactly as msclap (torchlibrosa) computes them.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "asdcap/front_end.hpp"

namespace asdcap {

// How channels become one signal: Mean averages them (asdcap's default); Concat is msclap's
// behaviour (resample each channel, then concatenate them: a 5 s stereo clip becomes 10 s).
enum class ChannelMode { Mean, Concat };

// "mean" / "concat" (throws InvalidArgument on anything else) and back.
ChannelMode parse_channel_mode(const std::string& text);
std::string to_string(ChannelMode mode);

struct AudioInfo {
  std::string path;
  int sample_rate = 0;
  int channels = 0;
  int64_t frames = 0;  // per channel
  std::string format;  // e.g. "WAV PCM_16", "FLAC PCM_24", "OGG VORBIS"
};

// Header only. Throws IoError / FormatError naming the file.
AudioInfo probe_audio(const std::string& path);

// Decoded samples, channels interleaved, as float in [-1, 1] (PCM16 / 32768, PCM24 / 2^23, float as is).
// Throws on unreadable, empty (0 frames), truncated or non-audio files and on NaN/Inf samples.
struct DecodedAudio {
  AudioInfo info;
  std::vector<float> interleaved;
};
// `max_seconds` > 0 bounds the audio decoded: a file whose header declares more frames than that
// many seconds at its sample rate is refused before decoding, and one whose header understates
// its length is refused as soon as decoding passes the bound (FormatError "... at most N s are
// decoded"), so a small compressed file of hours of silence costs neither the time nor the memory
// of decoding it. 0: no bound.
DecodedAudio decode_audio(const std::string& path, double max_seconds = 0);
// The same from bytes in memory (through libsndfile's virtual I/O: no temporary file); `name`
// stands for the file in messages and in info.path.
DecodedAudio decode_audio_bytes(const void* data, size_t size, const std::string& name, double max_seconds = 0);

// torchaudio.functional.resample(x, from, to) with its defaults (sinc_interp_hann,
// lowpass_filter_width 6, rolloff 0.99), bit-compatible kernel construction. Identity if from == to.
std::vector<float> resample(const std::vector<float>& x, int from_rate, int to_rate);

// decode_audio + resample every channel to `rate` Hz + combine channels per `mode`. `rate` 0 keeps
// the file's own sample rate (no resampling; `info` tells which it is).
std::vector<float> load_audio(const std::string& path, int rate, ChannelMode mode = ChannelMode::Mean,
                              AudioInfo* info = nullptr);
// The second half of load_audio, on audio already decoded (e.g. decode_audio_bytes of an upload).
std::vector<float> audio_signal(const DecodedAudio& audio, int rate, ChannelMode mode = ChannelMode::Mean);
// load_audio at 44.1 kHz, the rate of msclap and of the acoustic backend.
std::vector<float> load_audio_44k(const std::string& path, ChannelMode mode = ChannelMode::Mean,
                                  AudioInfo* info = nullptr);

// Which windows of a clip are embedded. The window is 7 s at 44.1 kHz (kWindowSamples, msclap's) unless
// a backend passes its own length; offsets count samples of the signal the window is taken from.
struct CropPolicy {
  enum class Kind { Random, Offset, Cover, Whole };
  Kind kind = Kind::Random;
  bool seeded = false;  // random:SEED
  uint64_t seed = 0;
  int64_t offset = 0;  // offset:N, sample index in the signal

  // "random", "random:SEED", "offset:N", "cover", "whole". Throws InvalidArgument on anything else.
  static CropPolicy parse(const std::string& text);
  std::string to_string() const;
  // An unseeded random crop: resolve_clip_crop seeds it from the clip's content.
  bool seeded_from_content() const { return kind == Kind::Random && !seeded; }
};

// Start offsets of the windows of `window` samples the policy takes from a signal of `length`
// samples. For length <= window the answer is {0} (the clip is tiled), and always for Whole.
// Random: Python's random.Random(seed).randrange(length - window), as msclap.
std::vector<int64_t> window_starts(int64_t length, const CropPolicy& policy, int64_t window = kWindowSamples);

// The windows the policy takes from a signal: window_at of each of window_starts; for Whole, the
// signal itself (one window of any length).
std::vector<std::vector<float>> crop_windows(const std::vector<float>& signal, const CropPolicy& policy,
                                             int64_t window = kWindowSamples);

// Throws InvalidArgument for crop "whole" in a path that takes fixed windows (`what` names it, e.g.
// "msclap's audio encoder").
void require_windowed_crop(const CropPolicy& policy, const std::string& what);

// The crop applied to one clip and the text that keys its cached embeddings. An unseeded random
// crop is seeded from the clip's content, the first 16 hex digits of its SHA-256 (so a rerun takes
// the same window), and keyed "random@content-sha256"; any other policy is applied as given and
// keyed by its to_string(). Every path that embeds a clip (embed, tags, caption, detect, explain)
// resolves its crop here, so they all take the same windows.
struct ClipCrop {
  CropPolicy policy;
  std::string cache_key;
};
// `content_sha256`: the clip file's SHA-256 in hex (sha256_file). Throws Error when it does not start
// with 16 hex digits.
ClipCrop resolve_clip_crop(const CropPolicy& crop, const std::string& content_sha256);

// The mean of one clip's per-window outputs (embeddings, latents, tag scores), as every path that
// embeds a clip computes it: summed in double in window order, divided by the window count,
// rounded once to float. One window gives its own vector, bit for bit.
class WindowMean {
 public:
  void add(const std::vector<float>& window_output);  // every window's output has the same size
  int count() const { return count_; }
  std::vector<float> mean() const;  // throws Error when no window was added

 private:
  std::vector<double> sum_;
  int count_ = 0;
};

// CPython's random.Random(seed).randrange(n) for n >= 1: MT19937 seeded by init_by_array with the
// seed's 32-bit words, then getrandbits(n.bit_length()) until the draw is below n.
int64_t python_randrange(uint64_t seed, int64_t n);

// One window: samples [start, start + window), or the clip tiled ceil(window / length) times and cut
// when length <= window (msclap's rule).
std::vector<float> window_at(const std::vector<float>& signal, int64_t start, int64_t window = kWindowSamples);

// Log-mel spectrogram (before bn0) of `n` samples: frames x kMelBins, row-major, frames = n / kHop + 1.
// Periodic Hann, reflect centre padding, power spectrum, Slaney mel for kMelSampleRate (msclap's quirk),
// 10 log10(max(mel, 1e-10)). `melW` ([513 x 64] row-major) defaults to the built-in filter bank;
// pass a model file's melW to use the file's. Frames are spread over `threads` threads (0: all
// cores; serial inside a parallel region); the result does not depend on it.
std::vector<float> log_mel(int threads, const float* samples, int64_t n, const float* melW = nullptr);

// The built-in Slaney mel filter bank, [513 x 64] row-major (librosa.filters.mel(sr=32000,
// n_fft=1024, n_mels=64, fmin=50, fmax=14000, htk=False, norm="slaney")).
const std::vector<float>& builtin_mel_filters();

}  // namespace asdcap
