#include <algorithm>

#include "asdcap/audio.hpp"
#include "asdcap/error.hpp"
#include "asdcap/evidence.hpp"

namespace asdcap {

ClipEvidence measure_evidence_file(const std::string& path) {
  const DecodedAudio audio = decode_audio(path);
  const int channels = std::max(audio.info.channels, 1);
  const int64_t frames = static_cast<int64_t>(audio.interleaved.size()) / channels;
  std::vector<float> mono(frames);
  for (int64_t i = 0; i < frames; ++i) {
    double acc = 0;
    for (int c = 0; c < channels; ++c) acc += audio.interleaved[i * channels + c];
    mono[i] = static_cast<float>(acc / channels);
  }
  try {
    return measure_evidence(mono.data(), frames, audio.info.sample_rate);
  } catch (const FormatError& e) {
    throw FormatError(path + ": " + e.what());
  }
}

}  // namespace asdcap
