"""asdcap.compare: the weight-free backends side by side on a small synthetic set, the table equal
to each system's own results.csv, the library's errors as exceptions."""

import csv
import math

import pytest

import asdcap


def _results(run_dir):
    with open(f"{run_dir}/results.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_compare_tabulates_each_systems_results(synth_dataset, tmp_path):
    out = tmp_path / "cmp"
    cmp = asdcap.compare(synth_dataset, out, backends=["acoustic", "ae"], threads=2, epochs=3)
    assert isinstance(cmp, asdcap.Comparison)
    assert cmp.systems == ["acoustic", "ae"]
    assert cmp.table.backends == ["acoustic", "ae"]
    assert [(r.kind, r.machine, r.id) for r in cmp.rows] == [
        ("id", "fan", "id_00"),
        ("average", "fan", "average"),
        ("overall", "overall", "average"),
    ]
    # Each column is that system's own results.csv (6 decimals), read independently of the table.
    for i, label in enumerate(cmp.systems):
        lines = _results(cmp.run_dirs[label])
        assert len(lines) == len(cmp.rows)
        for row, line in zip(cmp.rows, lines):
            assert row.auc[i] == pytest.approx(float(line["auc"]), abs=5e-7)
            assert row.pauc[i] == pytest.approx(float(line["pauc"]), abs=5e-7)
    for row in cmp.rows:
        best = max(range(2), key=lambda i: row.auc[i])
        if row.auc[0] != row.auc[1]:
            assert row.best_auc == best
        assert row.published is None  # not DCASE 2020 development data
    assert not cmp.table.dcase2020_dev
    assert "acoustic" in str(cmp) and "*" in str(cmp)
    assert (out / "table.csv").exists() and (out / "report.html").exists()
    back = asdcap.read_compare_table(str(out / "table.csv"))
    assert back.systems == cmp.systems
    for got, want in zip(back.rows, cmp.rows):
        assert got.auc == pytest.approx(want.auc, abs=5e-7)

    records = cmp.records()
    assert records[0]["acoustic_auc"] == cmp.rows[0].auc[0] and records[0]["ae_pauc"] == cmp.rows[0].pauc[1]
    assert records[-1]["kind"] == "overall"
    pd = pytest.importorskip("pandas")
    frame = cmp.to_dataframe()
    assert isinstance(frame, pd.DataFrame) and len(frame) == len(cmp.rows)
    assert list(frame["acoustic_auc"]) == [r.auc[0] for r in cmp.rows]

    # A rerun reuses every cached acoustic embedding and the trained ae model, same table.
    again = asdcap.compare(synth_dataset, out, backends=["acoustic", "ae"], threads=2, epochs=3)
    assert [r.auc for r in again.rows] == [r.auc for r in cmp.rows]


def test_compare_defaults_to_the_weight_free_backends(synth_dataset, tmp_path):
    cmp = asdcap.compare(synth_dataset, tmp_path / "cmp", threads=1, epochs=2)
    assert cmp.systems == ["acoustic", "ae"]
    assert all(not math.isnan(r.auc[0]) for r in cmp.rows)


def test_compare_errors_are_the_librarys(synth_dataset, tmp_path):
    with pytest.raises(asdcap.InvalidArgument, match="nosuch"):
        asdcap.compare(synth_dataset, tmp_path / "a", backends=["nosuch"])
    with pytest.raises(asdcap.InvalidArgument, match="two compared systems"):
        asdcap.compare(synth_dataset, tmp_path / "b", backends=["acoustic", "acoustic"])
    with pytest.raises(asdcap.Error):
        asdcap.compare(tmp_path / "missing", tmp_path / "c", backends=["acoustic"])
    with pytest.raises(asdcap.InvalidArgument):
        asdcap.compare(synth_dataset, tmp_path / "d", backends=["acoustic"], crop="sideways")


def test_other_python_threads_run_during_a_comparison(synth_dataset, tmp_path):
    import threading
    import time

    result = {}
    worker = threading.Thread(
        target=lambda: result.setdefault("cmp", asdcap.compare(synth_dataset, tmp_path / "cmp", threads=1, epochs=3))
    )
    ticks = 0
    worker.start()
    while worker.is_alive():
        ticks += 1
        time.sleep(0.001)
    worker.join()
    assert result["cmp"].systems == ["acoustic", "ae"]
    # With the GIL held for the whole comparison this loop could not run while it computes.
    assert ticks >= 20, ticks
