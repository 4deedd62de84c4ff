// Internals of the audio front end shared with its benchmark.
#pragma once
#include <fftw3.h>

namespace asdcap {

// The 1024-point double-precision real-to-complex FFTW plan of the STFT, created once (FFTW's
// planner is not thread-safe); execute it with fftw_execute_dft_r2c on buffers from fftw_malloc,
// which any number of threads may do at the same time.
fftw_plan stft_fft_plan();

}  // namespace asdcap
