"""The Python binding's overhead: CLAP audio embeddings of 16 clips through `import asdcap` and
through the CLI (`asdcap embed`), the same model, clips, crop and thread count. Prints the time of
each (best of --repeat) and the binding's speed relative to the CLI (>= 0.95 expected), and checks
that both give the same bits.

    PYTHONPATH=build/python python3 bench/python_overhead.py [--model M.gguf] [--threads 2]

Without --model the tiny golden model (../shared/golden) is converted into a temporary folder; the
clips are 16 synthetic 10-s machine sounds (asdcap.synthesize_dataset).
"""

import argparse
import pathlib
import subprocess
import sys
import tempfile
import time

import numpy as np

import asdcap

ROOT = pathlib.Path(__file__).resolve().parents[1]


def tiny_model(folder: pathlib.Path) -> str:
    shared = ROOT.parent / "shared"
    out = folder / "clap_tiny.gguf"
    asdcap.convert_model(
        str(out),
        clap=str(shared / "golden" / "clap_2023_tiny.pth"),
        vocab=str(shared / "assets" / "gpt2" / "vocab.json"),
        merges=str(shared / "assets" / "gpt2" / "merges.txt"),
        text_heads=4,
    )
    return str(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="asdcap model file (default: the tiny golden model)")
    parser.add_argument("--cli", default=str(pathlib.Path(asdcap.__file__).resolve().parents[2] / "asdcap"))
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    work = pathlib.Path(tempfile.mkdtemp(prefix="asdcap-bench-python-"))
    model = args.model or tiny_model(work)
    asdcap.synthesize_dataset(str(work / "data"), machines=["fan"], ids=["id_00"], n_train=8, n_test_normal=4,
                              n_test_anomaly=4)
    clips = sorted(str(p) for p in (work / "data").rglob("*.wav"))
    assert len(clips) == 16

    cli_times, py_times = [], []
    out = work / "cli.npy"
    for _ in range(args.repeat):
        start = time.perf_counter()
        subprocess.run([args.cli, "embed", "--model", model, "--out", str(out), "--threads", str(args.threads)] + clips,
                       check=True, capture_output=True)
        cli_times.append(time.perf_counter() - start)

        start = time.perf_counter()
        encoder = asdcap.AudioEncoder(asdcap.Model(model), threads=args.threads)
        emb = encoder.embed_files(clips).embedding
        py_times.append(time.perf_counter() - start)
        del encoder

    same = np.array_equal(np.load(out), emb)
    cli, py = min(cli_times), min(py_times)
    print(f"model {model}, {len(clips)} clips, threads {args.threads or 'all'}, best of {args.repeat}")
    print(f"CLI (asdcap embed, process included) {cli:8.3f} s")
    print(f"Python (Model + AudioEncoder.embed_files) {py:8.3f} s")
    print(f"binding speed relative to the CLI: {cli / py:.3f}x; same embeddings: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
