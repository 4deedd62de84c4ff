// A WAV file's bytes from 16-bit PCM frames (internal).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace asdcap::listen {

// RIFF/WAVE, PCM 16-bit little-endian, `channels` interleaved channels at `rate` Hz.
std::string wav_pcm16(const int16_t* samples, size_t frames, int channels, int rate);

}  // namespace asdcap::listen
