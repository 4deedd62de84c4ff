#!/usr/bin/env python3
"""Dev-only: a full-size PANNs CNN14 in PyTorch for asdcap's speed and agreement check.

Writes into OUT:
  cnn14_random.pth   a full-size Cnn14 state dict with random weights, saved as the published
                     checkpoints are ({'iteration', 'model'}, legacy torch.save format)
  clips.npy          16 clips of 7 s at 32 kHz, float32 [16, 224000] (tones + noise)
  embeddings.npy     the 2048-d embedding of each clip, float32 [16, 2048]
  torch.json         PyTorch's forward time per clip (wall clock and process CPU time, best of 2
                     passes), threads, torch version

The network is Cnn14 of audioset_tagging_cnn (pytorch/models.py) re-stated with the same torch
operations: torchlibrosa's front end (reflect-padded conv1d STFT with the stored kernels, power,
matmul with melW, 10*log10(clamp(x, 1e-10))), bn0 over mel bins, six ConvBlocks (conv3x3 - BN -
ReLU - conv3x3 - BN - ReLU - avg_pool2d), mean over mel, max + mean over time, fc1 + ReLU.

  /usr/bin/python3 scripts/dev/panns_torch_reference.py --out /tmp/panns-torch --threads 2
  ASDCAP_PANNS_TORCH_DIR=/tmp/panns-torch build/bench/bench_panns --benchmark_filter=Sixteen
"""
import argparse
import json
import math
import os
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

SR, N_FFT, HOP, MELS, FMIN, FMAX = 32000, 1024, 320, 64, 50.0, 14000.0
WIDTHS, EMB, CLASSES = [64, 128, 256, 512, 1024, 2048], 2048, 527


def hz_to_mel(f):  # Slaney (librosa htk=False)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    return min_log_hz / f_sp + math.log(f / min_log_hz) / (math.log(6.4) / 27) if f >= min_log_hz else f / f_sp


def mel_to_hz(m):
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel = min_log_hz / f_sp
    return min_log_hz * math.exp(math.log(6.4) / 27 * (m - min_log_mel)) if m >= min_log_mel else f_sp * m


def slaney_mel():  # librosa.filters.mel(SR, N_FFT, MELS, FMIN, FMAX), float64 -> float32, transposed
    bins = N_FFT // 2 + 1
    fft_f = np.linspace(0, SR / 2, bins)
    mel_f = np.array([mel_to_hz(m) for m in np.linspace(hz_to_mel(FMIN), hz_to_mel(FMAX), MELS + 2)])
    w = np.zeros((MELS, bins))
    for i in range(MELS):
        lower = (fft_f - mel_f[i]) / (mel_f[i + 1] - mel_f[i])
        upper = (mel_f[i + 2] - fft_f) / (mel_f[i + 2] - mel_f[i + 1])
        w[i] = np.maximum(0, np.minimum(lower, upper)) * 2.0 / (mel_f[i + 2] - mel_f[i])
    return torch.from_numpy(w.T.astype(np.float32).copy())


def stft_kernels():  # torchlibrosa STFT: exp(-2 pi i k n / N) * periodic Hann, [bins, 1, N]
    n = np.arange(N_FFT)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * n / N_FFT)
    k = np.arange(N_FFT // 2 + 1)[:, None]
    w = np.power(np.exp(-2j * np.pi / N_FFT), k * n[None, :]) * window
    return (torch.from_numpy(np.real(w).astype(np.float32))[:, None, :],
            torch.from_numpy(np.imag(w).astype(np.float32))[:, None, :])


class ConvBlock(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.bn2 = nn.BatchNorm2d(cout)

    def forward(self, x, pool):
        x = F.relu_(self.bn1(self.conv1(x)))
        x = F.relu_(self.bn2(self.conv2(x)))
        return F.avg_pool2d(x, kernel_size=pool)


class Cnn14(nn.Module):
    def __init__(self):
        super().__init__()
        real, imag = stft_kernels()
        self.spectrogram_extractor = nn.Module()
        self.spectrogram_extractor.stft = nn.Module()
        self.spectrogram_extractor.stft.conv_real = nn.Conv1d(1, N_FFT // 2 + 1, N_FFT, stride=HOP, bias=False)
        self.spectrogram_extractor.stft.conv_imag = nn.Conv1d(1, N_FFT // 2 + 1, N_FFT, stride=HOP, bias=False)
        self.spectrogram_extractor.stft.conv_real.weight.data = real
        self.spectrogram_extractor.stft.conv_imag.weight.data = imag
        self.logmel_extractor = nn.Module()
        self.logmel_extractor.melW = nn.Parameter(slaney_mel().t().contiguous().t())  # column-major, as torchlibrosa
        self.bn0 = nn.BatchNorm2d(MELS)
        cin = 1
        for i, w in enumerate(WIDTHS):
            setattr(self, f"conv_block{i + 1}", ConvBlock(cin, w))
            cin = w
        self.fc1 = nn.Linear(cin, EMB)
        self.fc_audioset = nn.Linear(EMB, CLASSES)

    def forward(self, x):  # x [batch, samples]
        x = F.pad(x[:, None, :], (N_FFT // 2, N_FFT // 2), mode="reflect")
        stft = self.spectrogram_extractor.stft
        spec = stft.conv_real(x) ** 2 + stft.conv_imag(x) ** 2  # [batch, bins, frames]
        x = spec.transpose(1, 2)[:, None]  # [batch, 1, frames, bins]
        x = 10.0 * torch.log10(torch.clamp(torch.matmul(x, self.logmel_extractor.melW), min=1e-10))
        x = self.bn0(x.transpose(1, 3)).transpose(1, 3)
        for i in range(6):
            x = getattr(self, f"conv_block{i + 1}")(x, (2, 2) if i < 5 else (1, 1))
        x = torch.mean(x, dim=3)
        x = torch.max(x, dim=2)[0] + torch.mean(x, dim=2)
        return F.relu_(self.fc1(x))


def randomise(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, m in model.named_modules():
            if isinstance(m, nn.Conv2d):
                m.weight.normal_(0, math.sqrt(2.0 / (m.in_channels * 9)), generator=g)
            elif isinstance(m, nn.BatchNorm2d):
                deep = name != "bn0"
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1 if deep
                                     else torch.rand(m.num_features, generator=g) * 40 - 60)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) * (1.5 if deep else 800) + (0.5 if deep else 100))
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            elif isinstance(m, nn.Linear):
                bound = math.sqrt(6.0 / (m.in_features + m.out_features))
                m.weight.uniform_(-bound, bound, generator=g)
                m.bias.copy_(torch.randn(m.out_features, generator=g) * 0.05)


def clips(n=16, seconds=7.0):
    rng = np.random.default_rng(7)
    t = np.arange(int(SR * seconds)) / SR
    out = []
    for i in range(n):
        f0 = 50 + 20 * i
        x = sum(0.3 / h * np.sin(2 * np.pi * f0 * h * t + rng.uniform(0, 6.28)) for h in range(1, 9))
        x = x + 0.1 * np.sin(2 * np.pi * (500 + 300 * i) * t) + 0.05 * rng.standard_normal(t.size)
        out.append(x.astype(np.float32))
    return np.stack(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=16)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    torch.set_num_threads(a.threads)
    model = Cnn14()
    randomise(model, a.seed)
    model.eval()
    torch.save({"iteration": 0, "model": model.state_dict()}, os.path.join(a.out, "cnn14_random.pth"),
               _use_new_zipfile_serialization=False)
    x = clips()
    np.save(os.path.join(a.out, "clips.npy"), x)
    best = best_cpu = math.inf
    with torch.no_grad():
        for _ in range(2):
            emb = []
            t0, c0 = time.perf_counter(), time.process_time()
            for clip in x:
                emb.append(model(torch.from_numpy(clip)[None])[0].numpy())
            best = min(best, (time.perf_counter() - t0) / len(x))
            best_cpu = min(best_cpu, (time.process_time() - c0) / len(x))
    np.save(os.path.join(a.out, "embeddings.npy"), np.stack(emb).astype(np.float32))
    info = {"seconds_per_clip": best, "cpu_seconds_per_clip": best_cpu, "threads": a.threads, "clips": len(x), "clip_seconds": 7.0,
            "torch": torch.__version__}
    with open(os.path.join(a.out, "torch.json"), "w") as f:
        json.dump(info, f, indent=1)
    print(json.dumps(info))


if __name__ == "__main__":
    main()
