#!/usr/bin/python3
"""Independent cross-check of asdcap's autoencoder training (tests/ae/test_ae_crosscheck.cpp).

The DCASE 2020 baseline network (640 -> [Dense 128, BatchNorm, ReLU] x 4 -> Dense 8, BatchNorm, ReLU
-> [Dense 128, BatchNorm, ReLU] x 4 -> Dense 640) written in PyTorch (autograd for the gradients),
trained as Keras 2.1.6 trains it: MSE loss; Adam with Keras's step (eps added to sqrt(v),
bias correction folded into the learning rate); BatchNorm with batch statistics in training mode, the
moving statistics (zero-debiased averages with momentum 0.99 of the batch mean and of the batch
variance times n / (n - 1 - eps), as Keras's TensorFlow backend keeps them) in inference mode;
validation_split 0.1 = the last 10 % of the vectors. Unlike asdcap, the biases of the Dense layers
before BatchNorm are trained on whatever gradient autograd computes (Keras does the same).

Shared with the C++ side by recipe, not by data: the training vectors (integer formula of
tests/ae/ae_test_data.hpp) and the initial weights (asdcap's documented Glorot-uniform recipe:
SplitMix64(seed), layer by layer, kernels [in, out] row-major, limit * (2 u - 1) with
u = (next >> 11) 2^-53). The batch order is drawn here with numpy and committed.

The run is in float64: Adam divides every gradient by its running magnitude plus 1e-7, so weights
whose gradients are near zero move by gradient differences of ~1e-9 times 3,000, and ReLU masks then
flip for rows near zero, so float32 runs drift apart (with batches of 128, PyTorch's float32 run was
2.5e-4 away from the float64 one in the weights after two steps, asdcap's float32 run, which reduces
in double, 6.5e-6). The float64 run is the exact-arithmetic trajectory that asdcap's double
instantiation must reproduce tightly and its float32 training must stay close to.

Writes, under tests/ae/data/ (run from the repository root with Debian's python3 and python3-torch):
  xcheck_order.npy     int64 [epochs, 900]   training-vector order of every epoch
  xcheck_losses.npy    float64 [epochs, 2]   training loss (batch-size weighted mean) and validation loss
  xcheck_initial.npy   float32 [n]           every 64th initial parameter (asdcap's flat order)
  xcheck_final.npy     float32 [n]           every 16th final parameter (of the float64 run)
  xcheck_small.npy     float32 [m]           every final bias, gamma and beta (asdcap's flat order)
  xcheck_moving.npy    float32 [2, 1032]     final moving means and variances of the 9 BatchNorm layers
"""
import math
import os

import numpy as np
import torch

OUT = "tests/ae/data"
ROWS, DIM, BATCH, EPOCHS, SEED, LR = 1000, 640, 100, 3, 2020, 1e-3
WIDTHS = [DIM, 128, 128, 128, 128, 8, 128, 128, 128, 128, DIM]
BN_EPS, MOMENTUM, B1, B2, ADAM_EPS = 1e-3, 0.99, 0.9, 0.999, 1e-7
M64 = (1 << 64) - 1


def lowbias32(x):
    x &= 0xFFFFFFFF
    x ^= x >> 16
    x = (x * 0x7FEB352D) & 0xFFFFFFFF
    x ^= x >> 15
    x = (x * 0x846CA68B) & 0xFFFFFFFF
    x ^= x >> 16
    return x


def vectors(rows):
    v = np.zeros((rows, DIM), dtype=np.float32)
    j = np.arange(DIM)
    for i in range(rows):
        c = i % 7
        k = ((c + 1) * (j % 128) * 37 + (j // 128) * 11 + c * 101) % 97
        noise = np.array([lowbias32(i * DIM + jj) % 17 for jj in range(DIM)])
        v[i] = (k + noise - 56).astype(np.float32) / np.float32(16.0)
    return v


class SplitMix64:
    def __init__(self, seed):
        self.state = seed & M64

    def next(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & M64
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
        return z ^ (z >> 31)


def glorot(seed):
    rng = SplitMix64(seed)
    kernels = []
    for a, b in zip(WIDTHS[:-1], WIDTHS[1:]):
        limit = math.sqrt(6.0 / (a + b))
        u = np.array([(rng.next() >> 11) * 2.0 ** -53 for _ in range(a * b)])
        kernels.append((limit * (2.0 * u - 1.0)).astype(np.float32).reshape(a, b))
    return kernels


def main():
    torch.set_default_dtype(torch.float64)
    x_all = vectors(ROWS)
    n_train = int(ROWS * (1.0 - 0.1))
    layers = len(WIDTHS) - 1
    params = []  # asdcap's flat order: kernel, bias, (gamma, beta) per layer
    kernels = glorot(SEED)
    for l in range(layers):
        out = WIDTHS[l + 1]
        p = {"kernel": torch.tensor(kernels[l].astype(np.float64), requires_grad=True),
             "bias": torch.zeros(out, requires_grad=True)}
        if l + 1 < layers:
            p["gamma"] = torch.ones(out, requires_grad=True)
            p["beta"] = torch.zeros(out, requires_grad=True)
        params.append(p)
    flat = [t for p in params for t in p.values()]
    biased = [[np.zeros(WIDTHS[l + 1]), np.zeros(WIDTHS[l + 1])] for l in range(layers - 1)]
    moving = [[np.zeros(WIDTHS[l + 1]), np.ones(WIDTHS[l + 1])] for l in range(layers - 1)]
    adam_m = [torch.zeros_like(t) for t in flat]
    adam_v = [torch.zeros_like(t) for t in flat]

    def forward(x, training):
        stats = []
        h = x
        for l, p in enumerate(params):
            z = h @ p["kernel"] + p["bias"]
            if l + 1 == layers:
                return z, stats
            if training:
                mean = z.mean(0)
                var = ((z - mean) ** 2).mean(0)
                stats.append((mean.detach().double().numpy(), var.detach().double().numpy()))
            else:
                mean = torch.tensor(moving[l][0], dtype=torch.float64)
                var = torch.tensor(moving[l][1], dtype=torch.float64)
            h = torch.relu(p["gamma"] * (z - mean) / torch.sqrt(var + BN_EPS) + p["beta"])

    def flat_values():
        return np.concatenate([t.detach().numpy().ravel() for t in flat])

    initial = flat_values()
    rng = np.random.default_rng(SEED)
    orders, losses = [], []
    step = 0
    for epoch in range(EPOCHS):
        order = rng.permutation(n_train)
        orders.append(order)
        total = 0.0
        for b0 in range(0, n_train, BATCH):
            idx = order[b0:b0 + BATCH]
            x = torch.tensor(x_all[idx].astype(np.float64))
            for t in flat:
                t.grad = None
            out, stats = forward(x, True)
            loss = ((out - x) ** 2).mean()
            loss.backward()
            total += float(loss) * len(idx)
            step += 1
            lr_t = LR * math.sqrt(1.0 - B2 ** step) / (1.0 - B1 ** step)
            with torch.no_grad():
                for t, m, v in zip(flat, adam_m, adam_v):
                    m.mul_(B1).add_((1 - B1) * t.grad)
                    v.mul_(B2).add_((1 - B2) * t.grad * t.grad)
                    t.sub_(lr_t * m / (torch.sqrt(v) + ADAM_EPS))
            n = float(len(idx))
            debias = 1.0 - MOMENTUM ** step
            for l, (mean, var) in enumerate(stats):
                for k, value in enumerate((mean, var * n / (n - (1.0 + BN_EPS)))):
                    biased[l][k] -= (biased[l][k] - value) * (1.0 - MOMENTUM)
                    moving[l][k] = biased[l][k] / debias
        with torch.no_grad():
            xv = torch.tensor(x_all[n_train:].astype(np.float64))
            out, _ = forward(xv, False)
            val = float(((out - xv) ** 2).mean())
        losses.append((total / n_train, val))
        print(f"epoch {epoch + 1}: loss {total / n_train:.6f}, val_loss {val:.6f}")

    final = flat_values()
    small = np.concatenate([t.detach().numpy().ravel() for p in params for name, t in p.items() if name != "kernel"])
    mov = np.stack([np.concatenate([m[0] for m in moving]), np.concatenate([m[1] for m in moving])])
    os.makedirs(OUT, exist_ok=True)
    np.save(os.path.join(OUT, "xcheck_order.npy"), np.array(orders, dtype=np.int64))
    np.save(os.path.join(OUT, "xcheck_losses.npy"), np.array(losses, dtype=np.float64))
    np.save(os.path.join(OUT, "xcheck_initial.npy"), initial[::64].astype(np.float32))
    np.save(os.path.join(OUT, "xcheck_final.npy"), final[::16].astype(np.float32))
    np.save(os.path.join(OUT, "xcheck_small.npy"), small.astype(np.float32))
    np.save(os.path.join(OUT, "xcheck_moving.npy"), mov.astype(np.float32))


if __name__ == "__main__":
    main()
