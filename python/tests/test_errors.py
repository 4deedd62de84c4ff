"""asdcap::Error and its subclasses arrive as Python exceptions with the library's messages."""

import pathlib

import numpy as np
import pytest

import asdcap


def test_hierarchy_mirrors_the_library():
    assert issubclass(asdcap.Error, RuntimeError)
    for cls in (asdcap.UsageError, asdcap.InvalidArgument, asdcap.IoError, asdcap.FormatError, asdcap.ModelError,
                asdcap.NetworkError):
        assert issubclass(cls, asdcap.Error)
    assert issubclass(asdcap.InvalidArgument, ValueError)
    assert issubclass(asdcap.FormatError, ValueError)
    assert issubclass(asdcap.IoError, OSError)
    assert issubclass(asdcap.NetworkError, OSError)
    assert asdcap.Error.__module__ == "asdcap"


def test_missing_model_file_is_an_io_error_naming_it(tmp_path):
    missing = tmp_path / "nothing.gguf"
    with pytest.raises(asdcap.IoError) as e:
        asdcap.Model(str(missing))
    assert str(missing) in str(e.value)


def test_a_file_that_is_not_a_model_is_a_format_error(tmp_path):
    bogus = tmp_path / "bogus.gguf"
    bogus.write_bytes(b"this is not a GGUF file at all" * 10)
    with pytest.raises(asdcap.FormatError) as e:
        asdcap.Model(str(bogus))
    assert "bogus.gguf" in str(e.value)


def test_unknown_backend_is_an_invalid_argument():
    with pytest.raises(asdcap.InvalidArgument, match="unknown embedding backend 'nope'"):
        asdcap.make_backend("nope")
    with pytest.raises(ValueError):  # also catchable as ValueError
        asdcap.make_backend("nope")


def test_bad_options_are_invalid_arguments(tmp_path):
    with pytest.raises(asdcap.InvalidArgument, match="crop"):
        asdcap.window_starts(1000, "sideways")
    with pytest.raises(asdcap.InvalidArgument):
        asdcap.load_audio(str(tmp_path / "x.wav"), 44100, "stereo")
    with pytest.raises(asdcap.InvalidArgument, match="differ in dimension"):
        asdcap.knn_search(np.zeros((2, 3)), np.zeros((4, 5)))
    with pytest.raises(asdcap.InvalidArgument, match="differ in length"):
        asdcap.roc_auc([0.1, 0.2], [1])


def test_unreadable_audio_is_a_format_error_naming_the_file(tmp_path):
    not_audio = tmp_path / "notes.wav"
    not_audio.write_text("hello")
    with pytest.raises(asdcap.FormatError) as e:
        asdcap.load_audio(str(not_audio))
    assert "notes.wav" in str(e.value)
    with pytest.raises(asdcap.IoError):
        asdcap.probe_audio(str(tmp_path / "absent.wav"))


def test_model_without_captioner_is_a_model_error(clap_model):
    with pytest.raises(asdcap.ModelError, match="captioner"):
        asdcap.Captioner(asdcap.Model(clap_model))


def test_clap_needs_a_model_file():
    with pytest.raises(asdcap.InvalidArgument, match="asdcap convert"):
        asdcap.CLAP(version="2023")


def test_errors_inside_a_run_propagate(tmp_path):
    with pytest.raises(asdcap.Error) as e:
        asdcap.detect(tmp_path / "no-such-dataset", tmp_path / "out")
    assert "no-such-dataset" in str(e.value)
    with pytest.raises(asdcap.Error, match="detect"):
        asdcap.explain(tmp_path)  # no detection results there
    assert not pathlib.Path(tmp_path / "out" / "run.json").exists()
