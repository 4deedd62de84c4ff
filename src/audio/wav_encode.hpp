// WAV files' bytes built in memory by libsndfile (its virtual I/O): for writers that publish the
// file atomically or send it over the network.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace asdcap::audio {

// RIFF/WAVE, PCM 16-bit: `frames` frames of `channels` interleaved samples at `rate` Hz, as they are.
// Throws IoError when libsndfile cannot encode them.
std::string wav_pcm16(const int16_t* interleaved, size_t frames, int channels, int rate);
// The same from mono float samples in [-1, 1] (libsndfile's scaling; values beyond are clipped).
std::string wav_pcm16(const float* mono, size_t frames, int rate);

}  // namespace asdcap::audio
