#!/usr/bin/env python3
"""Dev-only real check of the weight-free backends on the drone flights of
../shared/realdata/uav-propeller (8 normal flights, 6 with broken propellers; 16 kHz mono WAV).

Leave-one-out over the normal flights: each flight is cut into consecutive 10-s windows (the rest
of a flight shorter than 10 s is dropped); for fold i the windows of the 7 other normal flights
are the training clips, the windows of normal flight i and of every broken-propeller flight the
test clips. Each fold is a DCASE 2020-layout folder (machine "uav", ID "id_00") scored by
`asdcap detect` with each backend; the script prints every fold's AUC and pAUC and their means.
Python standard library only (wave); the windows are written to a temporary folder.

  python3 scripts/dev/ae_uav_loo.py [--asdcap build/asdcap] [--data ../shared/realdata/uav-propeller]
      [--backends acoustic,ae] [--threads 0] [-- extra detect flags, e.g. --epochs 100]
"""
import argparse
import csv
import os
import subprocess
import sys
import tempfile
import wave

WINDOW_S = 10


def windows(path):
    with wave.open(path) as w:
        rate, width, ch, n = w.getframerate(), w.getsampwidth(), w.getnchannels(), w.getnframes()
        frames = w.readframes(n)
    step = rate * WINDOW_S * width * ch
    return rate, width, ch, [frames[i:i + step] for i in range(0, len(frames) - step + 1, step)]


def write_wav(path, rate, width, ch, data):
    with wave.open(path, "wb") as w:
        w.setnchannels(ch)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(data)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--asdcap", default="build/asdcap")
    ap.add_argument("--data", default="../shared/realdata/uav-propeller")
    ap.add_argument("--backends", default="acoustic,ae")
    ap.add_argument("--threads", default="0")
    ap.add_argument("extra", nargs="*", help="more detect flags (after --)")
    a = ap.parse_args()
    files = sorted(f for f in os.listdir(a.data) if f.endswith(".wav"))
    normal = [f for f in files if f.startswith("normal_")]
    anomalous = [f for f in files if f.startswith("anomaly_")]
    cut = {f: windows(os.path.join(a.data, f)) for f in files}
    results = {b: [] for b in a.backends.split(",")}
    with tempfile.TemporaryDirectory(prefix="asdcap_uav_") as tmp:
        for fold, held in enumerate(normal):
            root = os.path.join(tmp, "fold%d" % fold)
            for sub in ("train", "test"):
                os.makedirs(os.path.join(root, "uav", sub))
            counters = {"train": 0, "normal": 0, "anomaly": 0}

            def put(split, label, f):
                rate, width, ch, ws = cut[f]
                for data in ws:
                    key = "train" if split == "train" else label
                    name = "%s_id_00_%08d.wav" % (label, counters[key])
                    counters[key] += 1
                    write_wav(os.path.join(root, "uav", split, name), rate, width, ch, data)

            for f in normal:
                put("test" if f == held else "train", "normal", f)
            for f in anomalous:
                put("test", "anomaly", f)
            for backend in results:
                out = os.path.join(tmp, "run%d_%s" % (fold, backend))
                cmd = [a.asdcap, "detect", "--data", root, "--out", out, "--backend", backend,
                       "--threads", a.threads] + a.extra
                subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env=dict(os.environ, ASDCAP_NO_PROGRESS="1"))
                with open(os.path.join(out, "results.csv")) as fh:
                    row = next(r for r in csv.DictReader(fh) if r["id"] == "id_00")
                auc, pauc = float(row["auc"]), float(row["pauc"])
                results[backend].append((auc, pauc))
                print("fold %d (held out %s: %d windows; train %d, anomalous %d) %s AUC %.3f pAUC %.3f" %
                      (fold, held, counters["normal"], counters["train"], counters["anomaly"], backend, auc, pauc),
                      flush=True)
    for backend, r in results.items():
        print("%s: mean AUC %.3f, mean pAUC %.3f over %d folds" %
              (backend, sum(x[0] for x in r) / len(r), sum(x[1] for x in r) / len(r), len(r)))


if __name__ == "__main__":
    sys.exit(main())
