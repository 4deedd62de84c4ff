// The numbers of msclap's audio front end, defined once: the audio area computes with them and a
// model file's front-end record defaults to them (and must match them to be used).
#pragma once
#include <cstdint>

namespace asdcap {

constexpr int kSampleRate = 44100;          // msclap's working rate
constexpr int64_t kWindowSamples = 308700;  // 7 s at 44.1 kHz
constexpr int kFftSize = 1024;              // STFT size (periodic Hann window of the same length)
constexpr int kHop = 320;
constexpr int kMelBins = 64;
constexpr int kMelSampleRate = 32000;  // msclap's quirk: the mel filters are built for 32 kHz
constexpr double kMelFmin = 50.0;      // Hz, lowest mel band edge
constexpr double kMelFmax = 14000.0;   // Hz, highest mel band edge
constexpr int kWindowFrames = 965;     // frames of one 7-s window (centre-padded STFT)
static_assert(kWindowFrames == kWindowSamples / kHop + 1);

}  // namespace asdcap
