"""asdcap's own API: backends, k-NN, metrics, whole runs on a folder."""

import csv
import subprocess

import numpy as np
import pytest

import asdcap
from conftest import CLI


def test_backends_come_from_make_backend():
    names = asdcap.backend_names()
    assert "acoustic" in names and "msclap" in names
    b = asdcap.make_backend("acoustic", threads=1)
    assert b.name == "acoustic" and b.dim > 0 and b.standardise_per_group
    assert b.distance_order == 4  # detection's k-NN distance for the hand-made features


def test_backend_embeds_arrays_and_files_alike(synth_dataset):
    path = sorted((synth_dataset / "fan" / "train").glob("*.wav"))[0]
    b = asdcap.make_backend("acoustic", threads=1)
    crop = asdcap.clip_crop("random", str(path))
    from_file = b.embed_file(str(path), crop="random")
    signal, info = asdcap.load_audio(str(path), 0)  # the file's own rate: embed resamples
    assert info.sample_rate == 16000
    from_array = b.embed(signal, info.sample_rate, crop=crop)
    assert from_file.shape == (b.dim,) and from_file.dtype == np.float32
    np.testing.assert_array_equal(from_file, from_array)


def test_msclap_backend_equals_the_audio_encoder(clap_model, manifest):
    from conftest import clip_path

    path = clip_path(manifest["clips"][0]["id"])
    b = asdcap.make_backend("msclap", model=clap_model, threads=1)
    assert b.sample_rate == 44100 and b.dim == 64
    want = asdcap.AudioEncoder(asdcap.Model(clap_model)).embed_files([path]).embedding[0]
    np.testing.assert_array_equal(b.embed_file(path), want)


def test_knn_is_exact():
    rng = np.random.default_rng(3)
    refs = rng.normal(size=(50, 16)).astype(np.float32)
    queries = rng.normal(size=(7, 16)).astype(np.float32)
    r = asdcap.knn_search(queries, refs, k=4)
    d = np.sqrt(((queries[:, None, :].astype(np.float64) - refs[None, :, :]) ** 2).sum(-1))
    order = np.argsort(d, axis=1, kind="stable")[:, :4]
    np.testing.assert_array_equal(r.index, order)
    np.testing.assert_allclose(r.distance, np.take_along_axis(d, order, 1), rtol=1e-12)
    np.testing.assert_allclose(r.mean_distance, r.distance.mean(axis=1), rtol=1e-12)
    loo = asdcap.knn_search(refs, refs, k=1, leave_one_out=True)
    assert not np.any(loo.index[:, 0] == np.arange(50))
    # The Minkowski distance of order 4, as the acoustic backend's detection uses it.
    r4 = asdcap.knn_search(queries, refs, k=4, order=4)
    d4 = (np.abs(queries[:, None, :].astype(np.float64) - refs[None, :, :]) ** 4).sum(-1) ** 0.25
    order4 = np.argsort(d4, axis=1, kind="stable")[:, :4]
    np.testing.assert_array_equal(r4.index, order4)
    np.testing.assert_allclose(r4.distance, np.take_along_axis(d4, order4, 1), rtol=1e-12)
    with pytest.raises(asdcap.InvalidArgument):
        asdcap.knn_search(queries, refs, order=0)


def test_auc_and_pauc():
    # Mann-Whitney by hand: 3 anomalous x 3 normal pairs, one tie counted 1/2.
    scores = [0.9, 0.5, 0.3, 0.5, 0.2, 0.1]
    labels = [1, 1, 1, 0, 0, 0]
    wins = sum((a > n) + 0.5 * (a == n) for a in scores[:3] for n in scores[3:])
    assert asdcap.roc_auc(scores, labels) == pytest.approx(wins / 9)
    # Perfect separation: pAUC 1; reversed: the McClish minimum 0.5 * (1 + (0 - 0.005) / 0.095).
    assert asdcap.partial_roc_auc([3, 2, 1, 0], [1, 1, 0, 0]) == pytest.approx(1.0)
    assert asdcap.partial_roc_auc([0, 1, 2, 3], [1, 1, 0, 0]) == pytest.approx(0.5 * (1 - 0.005 / 0.095))
    auc, pauc = asdcap.auc_pauc(np.array([3.0, 2, 1, 0]), np.array([True, True, False, False]))
    assert (auc, pauc) == (1.0, 1.0)
    assert np.isnan(asdcap.roc_auc([1.0, 2.0], [0, 0]))


def _read_csv(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


def test_detect_and_explain_on_a_folder(synth_dataset, tmp_path):
    out = tmp_path / "run"
    run = asdcap.detect(synth_dataset, out, backend="acoustic", threads=1)
    assert run.summary.n_scored == 8 and run.summary.n_embedded == 16
    lines = run.lines
    assert [(l.kind, l.machine, l.id) for l in lines][0] == ("id", "fan", "id_00")
    assert lines[-1].kind == "overall"
    scores = run.scores()
    assert len(scores) == 8 and all(len(c.neighbors) == 4 for c in scores)
    labels = [1 if c.label == "anomaly" else 0 for c in scores]
    assert lines[0].auc == pytest.approx(asdcap.roc_auc([c.score for c in scores], labels))
    # The CLI on the same data writes the same results.csv.
    cli_out = tmp_path / "cli"
    subprocess.run([str(CLI), "detect", "--data", str(synth_dataset), "--out", str(cli_out)], check=True,
                   capture_output=True)
    assert _read_csv(out / "results.csv") == _read_csv(cli_out / "results.csv")

    summary = asdcap.explain(run, methods=["acoustic"], all_flagged=True, threads=1)
    flagged = sum(c.decision for c in scores)
    assert summary.n_flagged == flagged and summary.n_explained == flagged
    assert summary.methods == ["acoustic"]
    for clip in summary.clips:
        assert clip.answers["acoustic"], clip.errors
    # Declared machine parts, as --machine-parts: a fan's explanations suggest causes by its name
    # (a blocked flow, an unbalanced shaft), declared without parts none; a malformed list is refused.
    assert any("as from" in c.answers["acoustic"] or "flow" in c.answers["acoustic"] for c in summary.clips)
    declared = asdcap.explain(run, methods=["acoustic"], all_flagged=True, threads=1,
                              machine_parts={"fan": "none"})
    assert declared.n_explained == flagged
    for clip in declared.clips:
        assert "as from" not in clip.answers["acoustic"] and "flow" not in clip.answers["acoustic"]
    with pytest.raises(asdcap.InvalidArgument, match='"wings" is not one of flow, rotor, gears'):
        asdcap.explain(run, methods=["acoustic"], all_flagged=True, machine_parts={"fan": "flow,wings"})

    pd = pytest.importorskip("pandas")
    frame = run.results_frame()
    assert isinstance(frame, pd.DataFrame) and list(frame["kind"]) == [l.kind for l in lines]
    assert len(run.scores_frame()) == 8
    assert len(asdcap.explanations_frame(summary)) == flagged


def test_default_reference_texts_are_the_papers():
    texts = asdcap.default_reference_texts()
    # The papers' list (../shared/papers): 8 texts, from "Vibration" to "Unexpected Silence".
    assert len(texts) == 8
    assert texts[0] == "Vibration" and texts[-1] == "Unexpected Silence"
    assert "Rhythmic Clicking or Tapping" in texts
