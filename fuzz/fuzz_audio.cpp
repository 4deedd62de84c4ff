// libFuzzer target: audio decoding from memory (WAV, FLAC and whatever else libsndfile recognises,
// through its virtual I/O: no temporary files), with asdcap's checks for truncation, empty files
// and non-finite samples.
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "asdcap/audio.hpp"
#include "asdcap/error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const asdcap::DecodedAudio a = asdcap::decode_audio_bytes(data, size, "fuzz.wav");
    // What decoding promises: a positive rate, channels and frames, every sample finite.
    if (a.info.sample_rate <= 0 || a.info.channels <= 0 || a.info.frames <= 0) __builtin_trap();
    if (a.interleaved.size() != static_cast<size_t>(a.info.frames) * static_cast<size_t>(a.info.channels))
      __builtin_trap();
    for (float v : a.interleaved)
      if (!std::isfinite(v)) __builtin_trap();
  } catch (const asdcap::Error&) {
  }
  return 0;
}
