#include "listen/wav.hpp"

#include "asdcap/error.hpp"

namespace asdcap::listen {

namespace {

void put_le(std::string& out, uint32_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xFF));
}

}  // namespace

std::string wav_pcm16(const int16_t* samples, size_t frames, int channels, int rate) {
  const uint64_t data_bytes = static_cast<uint64_t>(frames) * static_cast<uint64_t>(channels) * 2;
  if (channels < 1 || rate < 1 || data_bytes > 0xFFFFFFFFull - 36)
    throw InvalidArgument("a WAV clip of " + std::to_string(frames) + " frames x " + std::to_string(channels) +
                          " channels does not fit a WAV file");
  const auto block_align = static_cast<uint32_t>(channels * 2);
  std::string out;
  out.reserve(44 + static_cast<size_t>(data_bytes));
  out += "RIFF";
  put_le(out, static_cast<uint32_t>(36 + data_bytes), 4);
  out += "WAVE";
  out += "fmt ";
  put_le(out, 16, 4);                                         // chunk size
  put_le(out, 1, 2);                                          // PCM
  put_le(out, static_cast<uint32_t>(channels), 2);            // channels
  put_le(out, static_cast<uint32_t>(rate), 4);                // frames per second
  put_le(out, static_cast<uint32_t>(rate) * block_align, 4);  // bytes per second
  put_le(out, block_align, 2);
  put_le(out, 16, 2);  // bits per sample
  out += "data";
  put_le(out, static_cast<uint32_t>(data_bytes), 4);
  const size_t n = frames * static_cast<size_t>(channels);
  for (size_t i = 0; i < n; ++i) put_le(out, static_cast<uint16_t>(samples[i]), 2);
  return out;
}

}  // namespace asdcap::listen
