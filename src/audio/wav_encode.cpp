#include "audio/wav_encode.hpp"

#include <sndfile.h>

#include <algorithm>
#include <cstring>

#include "asdcap/error.hpp"

namespace asdcap::audio {

namespace {

// libsndfile virtual I/O into a growing memory buffer.
struct MemoryFile {
  std::string bytes;
  sf_count_t pos = 0;
};
sf_count_t vio_len(void* u) { return static_cast<sf_count_t>(static_cast<MemoryFile*>(u)->bytes.size()); }
sf_count_t vio_seek(sf_count_t off, int whence, void* u) {
  auto* m = static_cast<MemoryFile*>(u);
  sf_count_t base = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? m->pos : static_cast<sf_count_t>(m->bytes.size());
  m->pos = std::max<sf_count_t>(0, base + off);
  return m->pos;
}
sf_count_t vio_read(void* ptr, sf_count_t count, void* u) {
  auto* m = static_cast<MemoryFile*>(u);
  sf_count_t n =
      std::max<sf_count_t>(0, std::min<sf_count_t>(count, static_cast<sf_count_t>(m->bytes.size()) - m->pos));
  std::memcpy(ptr, m->bytes.data() + m->pos, static_cast<size_t>(n));
  m->pos += n;
  return n;
}
sf_count_t vio_write(const void* ptr, sf_count_t count, void* u) {
  auto* m = static_cast<MemoryFile*>(u);
  if (static_cast<size_t>(m->pos + count) > m->bytes.size()) m->bytes.resize(static_cast<size_t>(m->pos + count));
  std::memcpy(m->bytes.data() + m->pos, ptr, static_cast<size_t>(count));
  m->pos += count;
  return count;
}
sf_count_t vio_tell(void* u) { return static_cast<MemoryFile*>(u)->pos; }

// Opens a 16-bit PCM WAV in memory, lets `write` fill it (returns the items written) and returns the
// bytes once `items` were written.
template <typename Write>
std::string encode(int channels, int rate, sf_count_t items, bool clip, Write write) {
  if (channels < 1 || rate < 1)
    throw IoError("cannot encode WAV: " + std::to_string(channels) + " channels at " + std::to_string(rate) + " Hz");
  SF_VIRTUAL_IO vio{vio_len, vio_seek, vio_read, vio_write, vio_tell};
  MemoryFile mem;
  SF_INFO info{};
  info.samplerate = rate;
  info.channels = channels;
  info.format = SF_FORMAT_WAV | SF_FORMAT_PCM_16;
  SNDFILE* f = sf_open_virtual(&vio, SFM_WRITE, &info, &mem);
  if (!f) throw IoError(std::string("cannot encode WAV: ") + sf_strerror(nullptr));
  if (clip) sf_command(f, SFC_SET_CLIPPING, nullptr, SF_TRUE);
  const sf_count_t written = write(f);
  sf_close(f);
  if (written != items)
    throw IoError("cannot encode WAV: " + std::to_string(items) + " samples, " + std::to_string(written) + " written");
  return std::move(mem.bytes);
}

}  // namespace

std::string wav_pcm16(const int16_t* interleaved, size_t frames, int channels, int rate) {
  const auto items = static_cast<sf_count_t>(frames) * channels;
  return encode(channels, rate, items, false, [&](SNDFILE* f) { return sf_write_short(f, interleaved, items); });
}

std::string wav_pcm16(const float* mono, size_t frames, int rate) {
  const auto items = static_cast<sf_count_t>(frames);
  return encode(1, rate, items, true, [&](SNDFILE* f) { return sf_write_float(f, mono, items); });
}

}  // namespace asdcap::audio
