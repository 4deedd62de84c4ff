"""Computation releases the GIL (threads embed in parallel) and repeated calls do not leak."""

import gc
import os
import threading
import time

import numpy as np
import pytest

import asdcap


def _signal(seconds=10.0, rate=44100):
    rng = np.random.default_rng(1)
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * 120 * t) + 0.05 * rng.normal(size=t.size)).astype(np.float32)


def _work(backend, signal, reps):
    for _ in range(reps):
        backend.embed(signal, 44100, crop="cover")


def _calibrated_reps(backend, signal, target_s=0.4):
    start = time.perf_counter()
    _work(backend, signal, 1)
    once = time.perf_counter() - start
    return max(1, int(round(target_s / max(once, 1e-3))))


def test_other_python_threads_run_during_a_call():
    backend = asdcap.make_backend("acoustic", threads=1)
    signal = _signal()
    reps = _calibrated_reps(backend, signal)
    ticks = 0
    worker = threading.Thread(target=_work, args=(backend, signal, reps))
    worker.start()
    while worker.is_alive():
        ticks += 1
        time.sleep(0.001)
    worker.join()
    # With the GIL held for a whole call this loop could not run while the worker computes.
    assert ticks >= 20, ticks


def _timed_work(backend, signal, reps, intervals):
    for _ in range(reps):
        start = time.perf_counter()
        backend.embed(signal, 44100, crop="cover")
        intervals.append((start, time.perf_counter()))


def _in_threads(*targets):
    """Runs each (function, args) in a thread of its own; returns the wall time until all ended."""
    threads = [threading.Thread(target=f, args=args) for f, args in targets]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - start


def _overlap(a, b):
    """Total time during which an interval of `a` and one of `b` both ran."""
    return sum(max(0.0, min(e1, e2) - max(s1, s2)) for s1, e1 in a for s2, e2 in b)


def test_calls_from_two_threads_run_at_the_same_time():
    # Holding the GIL through a call would keep the other thread out of its call: no overlap at all.
    backend = asdcap.make_backend("acoustic", threads=1)
    signal = _signal()
    reps = _calibrated_reps(backend, signal)
    a, b = [], []
    _in_threads((_timed_work, (backend, signal, reps, a)), (_timed_work, (backend, signal, reps, b)))
    busy = min(sum(e - s for s, e in a), sum(e - s for s, e in b))
    assert _overlap(a, b) > 0.5 * busy, (_overlap(a, b), busy)


def _spare_cores():
    return len(os.sched_getaffinity(0)) - os.getloadavg()[0]


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs 2 cores")
def test_two_threads_embed_concurrently_in_less_time():
    if _spare_cores() < 1.5:
        pytest.skip(f"the machine is busy (load {os.getloadavg()[0]:.1f} on {len(os.sched_getaffinity(0))} cores): "
                    "a wall-time speed-up cannot show")
    backend = asdcap.make_backend("acoustic", threads=1)
    assert backend.thread_safe_embed
    signal = _signal()
    reps = _calibrated_reps(backend, signal)
    ratios = []
    for _ in range(3):  # another process can take a core for a moment: best of three
        start = time.perf_counter()
        _work(backend, signal, reps)
        _work(backend, signal, reps)
        sequential = time.perf_counter() - start
        concurrent = _in_threads((_work, (backend, signal, reps)), (_work, (backend, signal, reps)))
        ratios.append(concurrent / sequential)
        if ratios[-1] < 0.8:
            break
    assert min(ratios) < 0.8, ratios


def _rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_repeated_calls_do_not_leak(clap_model, tmp_path):
    model = asdcap.Model(clap_model)
    encoder = asdcap.AudioEncoder(model, threads=1)
    text = asdcap.TextEncoder(model, threads=1)
    backend = asdcap.make_backend("acoustic", threads=1)
    signal = _signal(3.0)
    refs = np.random.default_rng(0).normal(size=(200, 64)).astype(np.float32)

    def once():
        e = encoder.embed_signals([signal, signal], ["offset:0", "cover"])
        t = text.embed(["a machine hum", "a squeal"])
        s = asdcap.scaled_logits(e.embedding, t, model.logit_scale)
        k = asdcap.knn_search(e.embedding, refs, k=4)
        b = backend.embed(signal, 44100, crop="offset:0")
        try:
            asdcap.Model(str(tmp_path / "missing.gguf"))
        except asdcap.IoError:
            pass
        return s.sum() + k.mean_distance.sum() + b.sum()

    for _ in range(5):
        once()
    gc.collect()
    before = _rss_bytes()
    for _ in range(60):
        once()
    gc.collect()
    growth = _rss_bytes() - before
    assert growth < 16 * 2**20, f"RSS grew by {growth / 2**20:.1f} MiB over 60 calls"
