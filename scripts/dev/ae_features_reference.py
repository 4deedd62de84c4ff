#!/usr/bin/python3
"""Independent reference for asdcap's autoencoder features (tests/ae/test_ae_features.cpp).

Implements the DCASE 2020 Task 2 baseline's features from their definition with numpy/scipy (librosa
is not used): librosa 0.6's load (mono = float32 mean of the channels), melspectrogram with n_fft
1024, hop 512, periodic Hann (scipy.signal.get_window), centred frames with numpy reflect padding,
power spectrum (numpy FFT, float64), librosa's Slaney mel filter bank with 128 bands from 0 to sr/2
(float32 weights, as librosa returns them), then 10 log10(mel + 2.220446049250313e-16) in float64;
five consecutive frames per 640-dim vector, frame-major.

Writes, under tests/ae/data/ (run from the repository root with Debian's python3, which has
python3-numpy and python3-scipy):
  synth_16k.wav, synth_22k_stereo.wav        two generated test signals (int16)
  feat_synth_16k_logmel.npy                  all log-mel frames of synth_16k.wav
  feat_synth_16k_vectors.npy                 all 640-dim vectors of synth_16k.wav
  feat_synth_22k_logmel.npy                  all log-mel frames of synth_22k_stereo.wav
  feat_mel_16k_rows.npy, feat_mel_16k_index.npy   rows of the 16 kHz filter bank and their band numbers
  feat_dcase_toycar_head.npy, feat_dcase_toycar_tail.npy   first 40 / last 8 log-mel frames of a DCASE
                                             2023 clip from ../shared/realdata (not copied here)
  feat_mimii_pump_head.npy                   first 40 log-mel frames of an 8-channel MIMII clip
"""
import os
import sys

import numpy as np
import scipy.io.wavfile
import scipy.signal

N_FFT, HOP, N_MELS, FRAMES = 1024, 512, 128, 5
EPS = sys.float_info.epsilon
OUT = "tests/ae/data"
SHARED = "../shared/realdata"


def hz_to_mel(f):
    f = np.asanyarray(f, dtype=np.float64)
    f_sp = 200.0 / 3
    mels = f / f_sp
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    log_t = f >= min_log_hz
    mels = np.where(log_t, min_log_mel + np.log(np.maximum(f, 1e-300) / min_log_hz) / logstep, mels)
    return mels


def mel_to_hz(m):
    m = np.asanyarray(m, dtype=np.float64)
    f_sp = 200.0 / 3
    freqs = f_sp * m
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), freqs)


def mel_filters(sr):
    """Slaney-style, area-normalised triangles on the Slaney mel scale, float32 like librosa."""
    fft_freqs = np.linspace(0, sr / 2.0, 1 + N_FFT // 2, endpoint=True)
    mel_f = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(sr / 2.0), N_MELS + 2))
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fft_freqs)
    weights = np.zeros((N_MELS, 1 + N_FFT // 2), dtype=np.float32)
    for i in range(N_MELS):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        weights[i] = np.maximum(0, np.minimum(lower, upper))
    enorm = 2.0 / (mel_f[2:N_MELS + 2] - mel_f[:N_MELS])
    weights *= enorm[:, np.newaxis]
    return weights


def log_mel(y, sr):
    """y: float32 mono. Returns frames x 128 log-mel (float64)."""
    window = scipy.signal.get_window("hann", N_FFT, fftbins=True)
    padded = np.pad(y, N_FFT // 2, mode="reflect")
    n_frames = 1 + (len(padded) - N_FFT) // HOP
    frames = np.stack([padded[t * HOP:t * HOP + N_FFT] for t in range(n_frames)]).astype(np.float64)
    spec = np.fft.rfft(frames * window, axis=1)
    power = spec.real ** 2 + spec.imag ** 2
    mel = power @ mel_filters(sr).astype(np.float64).T
    return 10.0 * np.log10(mel + EPS)


def vectors(lm):
    n = lm.shape[0] - FRAMES + 1
    out = np.zeros((max(n, 0), N_MELS * FRAMES))
    for t in range(FRAMES):
        out[:, N_MELS * t:N_MELS * (t + 1)] = lm[t:t + n]
    return out


def load(path):
    """librosa 0.6 load(sr=None, mono=True) of a PCM16 WAV: samples / 32768 as float32, channel mean."""
    sr, x = scipy.io.wavfile.read(path)
    assert x.dtype == np.int16, path
    y = x.astype(np.float32) / np.float32(32768.0)
    if y.ndim == 2:
        y = np.mean(y.T, axis=0)  # librosa's to_mono on (channels, samples)
    return y.astype(np.float32), sr


def save(name, a):
    np.save(os.path.join(OUT, name), np.ascontiguousarray(a))


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(20200615)
    # 1.5 s at 16 kHz: a tone, a chirp, noise, and a quarter second of digital silence at the end.
    sr = 16000
    t = np.arange(24000) / sr
    x = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.1 * np.sin(2 * np.pi * (2000 * t + 1500 * t * t)) \
        + 0.05 * rng.standard_normal(t.size)
    x[20000:] = 0
    pcm = np.round(x * 32767).astype(np.int16)
    scipy.io.wavfile.write(os.path.join(OUT, "synth_16k.wav"), sr, pcm)
    # 0.6 s at 22.05 kHz, two different channels.
    sr2 = 22050
    t2 = np.arange(13230) / sr2
    left = 0.4 * np.sin(2 * np.pi * 150 * t2) * (1 + 0.5 * np.sin(2 * np.pi * 25 * t2))
    right = 0.2 * rng.standard_normal(t2.size) + 0.2 * np.sin(2 * np.pi * 5000 * t2)
    pcm2 = np.round(np.stack([left, right], axis=1) * 32767).astype(np.int16)
    scipy.io.wavfile.write(os.path.join(OUT, "synth_22k_stereo.wav"), sr2, pcm2)

    y, r = load(os.path.join(OUT, "synth_16k.wav"))
    lm = log_mel(y, r)
    save("feat_synth_16k_logmel.npy", lm.astype(np.float32))
    save("feat_synth_16k_vectors.npy", vectors(lm).astype(np.float32))
    y, r = load(os.path.join(OUT, "synth_22k_stereo.wav"))
    save("feat_synth_22k_logmel.npy", log_mel(y, r).astype(np.float32))

    index = np.array([0, 1, 2, 3, 31, 63, 64, 95, 126, 127], dtype=np.int64)
    save("feat_mel_16k_rows.npy", mel_filters(16000)[index])
    save("feat_mel_16k_index.npy", index)

    toycar = os.path.join(SHARED, "dcase2023",
                          "ToyCar_test_section_00_source_test_normal_0028_car_C2_spd_34V_mic_1.wav")
    y, r = load(toycar)
    lm = log_mel(y, r)
    save("feat_dcase_toycar_head.npy", lm[:40].astype(np.float32))
    save("feat_dcase_toycar_tail.npy", lm[-8:].astype(np.float32))
    y, r = load(os.path.join(SHARED, "mimii-8ch", "pump_id_00_normal_00000000.wav"))
    save("feat_mimii_pump_head.npy", log_mel(y, r)[:40].astype(np.float32))


if __name__ == "__main__":
    main()
