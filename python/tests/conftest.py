"""Fixtures of the Python suite: the package under test, the golden data of msclap's own PyTorch
code (../shared/golden beside the source tree, or $ASDCAP_SHARED_DIR) and the tiny golden models
converted into a temporary folder once per session."""

import json
import os
import pathlib

import numpy as np
import pytest

import asdcap

SOURCE_DIR = pathlib.Path(__file__).resolve().parents[2]
SHARED_DIR = pathlib.Path(os.environ.get("ASDCAP_SHARED_DIR", SOURCE_DIR.parent / "shared"))
GOLDEN_DIR = SHARED_DIR / "golden"
# build/python/asdcap/__init__.py -> build/asdcap
CLI = pathlib.Path(asdcap.__file__).resolve().parents[2] / "asdcap"


def golden_available() -> bool:
    return (GOLDEN_DIR / "manifest.json").exists() and (SHARED_DIR / "assets" / "gpt2" / "vocab.json").exists()


needs_golden = pytest.mark.skipif(not golden_available(), reason=f"golden data not found in {GOLDEN_DIR}")


@pytest.fixture(scope="session")
def manifest():
    if not golden_available():
        pytest.skip(f"golden data not found in {GOLDEN_DIR}")
    with open(GOLDEN_DIR / "manifest.json") as f:
        return json.load(f)


def golden_array(relative: str) -> np.ndarray:
    return np.load(GOLDEN_DIR / relative)


def _convert(out: pathlib.Path, with_captioner: bool) -> str:
    asdcap.convert_model(
        str(out),
        clap=str(GOLDEN_DIR / "clap_2023_tiny.pth"),
        clapcap=str(GOLDEN_DIR / "clapcap_2023_tiny.pth") if with_captioner else "",
        vocab=str(SHARED_DIR / "assets" / "gpt2" / "vocab.json"),
        merges=str(SHARED_DIR / "assets" / "gpt2" / "merges.txt"),
        text_heads=4,  # the golden configuration
        decoder_heads=4,
    )
    return str(out)


@pytest.fixture(scope="session")
def models(tmp_path_factory):
    """(CLAP-only model file, CLAP + captioner model file) converted from the golden checkpoints."""
    if not golden_available():
        pytest.skip(f"golden data not found in {GOLDEN_DIR}")
    folder = tmp_path_factory.mktemp("models")
    return _convert(folder / "clap_tiny.gguf", False), _convert(folder / "clapcap_tiny.gguf", True)


@pytest.fixture(scope="session")
def clap_model(models):
    return models[0]


@pytest.fixture(scope="session")
def captioner_model(models):
    return models[1]


def clip_path(clip_id: str) -> str:
    return str(GOLDEN_DIR / "inputs" / f"{clip_id}.wav")


@pytest.fixture(scope="session")
def synth_dataset(tmp_path_factory):
    """A small synthetic dataset: fan id_00, 8 train, 4 + 4 test clips of 3 s."""
    root = tmp_path_factory.mktemp("synth")
    n = asdcap.synthesize_dataset(
        str(root), seed=7, machines=["fan"], ids=["id_00"], n_train=8, n_test_normal=4, n_test_anomaly=4, seconds=3.0
    )
    assert n == 16
    return root


def expect_embedding_close(got: np.ndarray, want: np.ndarray, what: str = "") -> None:
    """docs/clap.md's criterion: cosine >= 0.99999 and max |got - want| <= 1e-4 * ||want||."""
    got = np.asarray(got, dtype=np.float64).ravel()
    want = np.asarray(want, dtype=np.float64).ravel()
    assert got.shape == want.shape, what
    cosine = got @ want / np.sqrt((got @ got) * (want @ want))
    assert cosine >= 0.99999, f"{what}: cosine {cosine}"
    assert np.max(np.abs(got - want)) <= 1e-4 * np.linalg.norm(want), what
