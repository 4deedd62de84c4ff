#!/usr/bin/env python3
"""Quality checks of a weight-free detection backend (default: acoustic), driving the asdcap CLI.

  synth-dev   asdcap detect on ../shared/synth-dev; mean AUC, and AUC per fault kind (from its
              faults.csv, for analysis only: the detector never sees it)
  synth       asdcap synth (seed 1, default size) + detect; mean AUC
  uav         the UAV propeller flights of ../shared/realdata cut into 10-s windows; leave one normal
              flight out: the other 7 normal flights are the references, the held-out flight's
              windows the normal test clips, every window of the 6 broken-propeller flights the
              anomalous ones. One DCASE-layout tree of links holds the 8 folds as IDs id_00..id_07,
              so one detect run scores them all; the mean AUC over folds is reported.
  realdata    asdcap detect on the DCASE 2023 clips of ../shared/realdata (smoke test: nothing breaks)

Usage (from the source dir, after building):
  python3 scripts/dev/acoustic_eval.py [--asdcap build/asdcap] [--backend acoustic]
                                       [--work /tmp/acoustic_eval] [synth-dev synth uav realdata]
Only the standard library is used.
"""
import argparse
import csv
import os
import shutil
import subprocess
import sys
import time
import wave


def auc(scores_anomalous, scores_normal):
    """Mann-Whitney U / (P N), ties count 1/2."""
    if not scores_anomalous or not scores_normal:
        return float("nan")
    u = 0.0
    for a in scores_anomalous:
        for n in scores_normal:
            u += 1.0 if a > n else 0.5 if a == n else 0.0
    return u / (len(scores_anomalous) * len(scores_normal))


def detect(args, data, out, extra=()):
    cmd = [args.asdcap, "detect", "--data", data, "--out", out, "--backend", args.backend, *extra]
    t0 = time.time()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.time() - t0


def results(out):
    rows = {}
    with open(os.path.join(out, "results.csv")) as f:
        for r in csv.DictReader(f):
            rows[(r["machine"], r["id"])] = float(r["auc"]) if r["auc"] != "nan" else float("nan")
    return rows


def scores(out):
    """{(machine, file name): score} from the run's anomaly_score_<machine>_<id>.csv files."""
    s = {}
    for name in os.listdir(out):
        if name.startswith("anomaly_score_") and name.endswith(".csv"):
            machine = name[len("anomaly_score_"):].rsplit("_id_", 1)[0].rsplit("_section_", 1)[0]
            with open(os.path.join(out, name)) as f:
                for line in f:
                    file_name, score = line.strip().rsplit(",", 1)
                    s[(machine, os.path.basename(file_name))] = float(score)
    return s


def check_synth_dev(args):
    data = os.path.join(args.shared, "synth-dev")
    out = os.path.join(args.work, "synth-dev")
    secs = detect(args, data, out)
    res = results(out)
    print(f"synth-dev: mean AUC {res[('overall', 'average')]:.4f} ({secs:.0f} s)")
    for key, v in sorted(res.items()):
        if key[1] != "average" or key[0] != "overall":
            print(f"  {key[0]:8s} {key[1]:8s} {v:.4f}")
    # Per fault kind (analysis only): anomalies of that fault vs the normal test clips of their ID.
    sc = scores(out)
    faults = {}
    with open(os.path.join(data, "faults.csv")) as f:
        for r in csv.DictReader(f):
            if r["split"] == "test":
                faults[(r["machine"], r["file"])] = r["fault"]
    per = {}
    for (machine, file_name), fault in faults.items():
        if not fault:
            continue
        ident = file_name.split("_id_")[1][:2]
        normals = [sc[(m, n)] for (m, n), fl in faults.items() if m == machine and not fl and f"_id_{ident}_" in n]
        per.setdefault((machine, fault), []).append((sc[(machine, file_name)], normals))
    for (machine, fault), items in sorted(per.items()):
        values = [auc([a], normals) for a, normals in items]
        print(f"  fault {machine}/{fault}: AUC {sum(values) / len(values):.4f} ({len(values)} clips)")
    return res[("overall", "average")]


def check_synth(args):
    data = os.path.join(args.work, "synth-data")
    if not os.path.exists(os.path.join(data, "synth_manifest.csv")):
        subprocess.run([args.asdcap, "synth", "--out", data], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    out = os.path.join(args.work, "synth")
    secs = detect(args, data, out)
    res = results(out)
    print(f"asdcap synth: mean AUC {res[('overall', 'average')]:.4f} ({secs:.0f} s)")
    for key, v in sorted(res.items()):
        if key[1] == "average" and key[0] != "overall":
            print(f"  {key[0]:8s} {v:.4f}")
    return res[("overall", "average")]


def cut_windows(path, dest_dir, stem, seconds=10):
    """Writes the recording's whole 10-s windows as WAV files; returns their names."""
    names = []
    with wave.open(path) as w:
        params = w.getparams()
        per = params.framerate * seconds
        i = 0
        while True:
            frames = w.readframes(per)
            if len(frames) < per * params.sampwidth * params.nchannels:
                break
            name = f"{stem}_{i:03d}.wav"
            with wave.open(os.path.join(dest_dir, name), "wb") as o:
                o.setparams(params)
                o.writeframes(frames)
            names.append(name)
            i += 1
    return names


def check_uav(args):
    src = os.path.join(args.shared, "realdata", "uav-propeller")
    windows = os.path.join(args.work, "uav-windows")
    tree = os.path.join(args.work, "uav-data")
    shutil.rmtree(windows, ignore_errors=True)
    shutil.rmtree(tree, ignore_errors=True)
    os.makedirs(windows)
    normal, anomalous = [], []
    for f in sorted(os.listdir(src)):
        if f.endswith(".wav"):
            wins = cut_windows(os.path.join(src, f), windows, f[:-4])
            (normal if f.startswith("normal") else anomalous).append(wins)
    for d in ("train", "test"):
        os.makedirs(os.path.join(tree, "uav", d))

    def link(name, split, label, fold, index):
        dst = os.path.join(tree, "uav", split, f"{label}_id_{fold:02d}_{index:08d}.wav")
        os.symlink(os.path.join(windows, name), dst)

    for fold in range(len(normal)):
        i_train = i_test = 0
        for flight, wins in enumerate(normal):
            for name in wins:
                if flight == fold:
                    link(name, "test", "normal", fold, i_test)
                    i_test += 1
                else:
                    link(name, "train", "normal", fold, i_train)
                    i_train += 1
        for wins in anomalous:
            for name in wins:
                link(name, "test", "anomaly", fold, i_test)
                i_test += 1
    out = os.path.join(args.work, "uav")
    secs = detect(args, tree, out)
    res = results(out)
    folds = [v for (m, i), v in sorted(res.items()) if m == "uav" and i != "average"]
    print(f"uav leave-one-flight-out: mean AUC {res[('uav', 'average')]:.4f} over {len(folds)} folds "
          f"(min {min(folds):.4f}; {sum(len(w) for w in normal)} normal, "
          f"{sum(len(w) for w in anomalous)} anomalous windows; {secs:.0f} s)")
    print("  folds: " + " ".join(f"{v:.3f}" for v in folds))
    return res[("uav", "average")]


def check_realdata(args):
    out = os.path.join(args.work, "dcase2023")
    detect(args, os.path.join(args.shared, "realdata", "dcase2023"), out)
    res = results(out)
    print("realdata/dcase2023 (smoke test, 1 normal + 1 anomalous test clip at most per section):")
    for (m, i), v in sorted(res.items()):
        if i != "average":
            print(f"  {m:9s} {i:11s} AUC {v}")


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(os.path.dirname(here))
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--asdcap", default=os.path.join(root, "build", "asdcap"))
    p.add_argument("--backend", default="acoustic")
    p.add_argument("--shared", default=os.path.join(os.path.dirname(root), "shared"))
    p.add_argument("--work", default="/tmp/acoustic_eval")
    p.add_argument("checks", nargs="*", default=["synth-dev", "synth", "uav", "realdata"])
    args = p.parse_args()
    os.makedirs(args.work, exist_ok=True)
    table = {"synth-dev": check_synth_dev, "synth": check_synth, "uav": check_uav, "realdata": check_realdata}
    for c in args.checks:
        if c not in table:
            sys.exit(f"unknown check '{c}' (expected {', '.join(table)})")
        table[c](args)
        sys.stdout.flush()


if __name__ == "__main__":
    main()
