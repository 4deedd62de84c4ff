"""asdcap from Python: anomalous sound detection with CLAP embeddings, captions and explanations.

Two layers over the same C++ library:

* ``asdcap.CLAP`` -- a drop-in for msclap's ``CLAP`` class on a converted model file
  (``asdcap convert``): ``get_audio_embeddings``, ``get_text_embeddings``, ``compute_similarity``,
  ``classify_audio_files``, ``generate_caption`` with msclap's argument names, shapes and values,
  numpy arrays instead of torch tensors (torch tensors are accepted as inputs).
* asdcap's own API -- ``Model``, ``AudioEncoder``, ``TextEncoder``, ``Captioner``, any embedding
  backend (``make_backend``), exact k-NN (``knn_search``), AUC/pAUC, and whole runs on a folder
  (``detect``, ``compare``, ``explain``) with results as Python objects or pandas DataFrames.

Every computation releases the GIL; ``threads`` arguments choose how many cores a call uses
(0: all). Failures raise ``asdcap.Error`` subclasses carrying the library's messages.
"""

from __future__ import annotations

import os
import random as _random
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Union

import numpy as np

from . import _asdcap
from ._asdcap import (  # noqa: F401  (re-exported)
    WINDOW_SAMPLES,
    AudioEncoder,
    AudioInfo,
    Backend,
    CaptionBeam,
    Captioner,
    CaptionResult,
    ClipOutputs,
    CompareResult,
    CompareRow,
    CompareTable,
    DetectSummary,
    Error,
    ExplainedClip,
    ExplainSummary,
    FormatError,
    InvalidArgument,
    IoError,
    KnnResult,
    Model,
    ModelError,
    Neighbor,
    NetworkError,
    ResultRow,
    ScoredClip,
    TextEncoder,
    UsageError,
    backend_names,
    clip_crop,
    convert_model,
    relayout_model,
    cosine_matrix,
    default_reference_texts,
    gamma_threshold,
    knn_search,
    load_audio,
    make_backend,
    partial_roc_auc,
    probe_audio,
    read_compare_table,
    read_results,
    read_scores,
    resample,
    roc_auc,
    scaled_logits,
    sha256_file,
    softmax_rows,
    synthesize_dataset,
    threshold_closest_to_corner,
    window_starts,
)

__version__ = _asdcap.__version__

PathLike = Union[str, "os.PathLike[str]"]

# msclap's front end: 7-s windows of 44.1 kHz samples.
_MSCLAP_RATE = 44100


def _paths(paths: Union[PathLike, Iterable[PathLike]]) -> List[str]:
    if isinstance(paths, (str, os.PathLike)):
        return [os.fspath(paths)]
    return [os.fspath(p) for p in paths]


def _texts(texts: Union[str, Iterable[str]]) -> List[str]:
    return [texts] if isinstance(texts, str) else [str(t) for t in texts]


def as_numpy(x) -> np.ndarray:
    """A float32 numpy array from a numpy array, a torch tensor (any device) or a nested list."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # torch.Tensor, without importing torch
        x = x.detach().cpu().numpy()
    return np.ascontiguousarray(np.asarray(x, dtype=np.float32))


class CLAP:
    """msclap's ``CLAP`` on an asdcap model file.

    ``CLAP(model="msclap2023.gguf")`` replaces ``msclap.CLAP(version="2023")``; a file converted with
    the captioner (``asdcap convert --clapcap``) replaces ``CLAP(version="clapcap")``. Audio is
    read as msclap reads it: resampled to 44.1 kHz (``resample=True``), channels concatenated, and
    a 7-s window cut at ``random.randrange`` drawn from Python's global ``random`` module (shorter
    clips are repeated), so ``random.seed(s)`` before a call reproduces msclap's crop. Methods
    return numpy arrays where msclap returns torch tensors.

    ``threads``: cores each call uses (0: all). ``use_cuda`` is accepted and ignored (CPU only).
    """

    def __init__(
        self,
        model: Optional[PathLike] = None,
        version: str = "2023",
        use_cuda: bool = False,
        *,
        model_fp: Optional[PathLike] = None,
        threads: int = 0,
        channels: str = "concat",
    ) -> None:
        path = model if model is not None else model_fp
        if path is None:
            raise InvalidArgument(
                "CLAP: give the converted model file, CLAP(model='msclap2023.gguf') "
                "(make one from msclap's checkpoint with `asdcap convert`)"
            )
        if version not in ("2022", "2023", "clapcap"):
            raise InvalidArgument(f"CLAP: unknown version '{version}' (expected 2022, 2023 or clapcap)")
        self.model = Model(os.fspath(path))
        self.version = version
        self.use_cuda = use_cuda
        self.threads = threads
        self.channels = channels
        self._audio: Optional[AudioEncoder] = None
        self._text: Optional[TextEncoder] = None
        self._captioner: Optional[Captioner] = None

    # -- the parts, made on first use (a captioner-only file has no CLAP encoders, and back) -----
    @property
    def audio_encoder(self) -> AudioEncoder:
        if self._audio is None:
            self._audio = AudioEncoder(self.model, "audio.", self.threads)
        return self._audio

    @property
    def text_encoder(self) -> TextEncoder:
        if self._text is None:
            self._text = TextEncoder(self.model, self.threads)
        return self._text

    @property
    def captioner(self) -> Captioner:
        if self._captioner is None:
            self._captioner = Captioner(self.model, self.threads)
        return self._captioner

    @property
    def logit_scale(self) -> float:
        """The log of the similarity scale (msclap's ``clap.logit_scale``)."""
        return self.model.logit_scale

    # -- msclap's audio preprocessing -----------------------------------------------------------
    def preprocess_audio(self, audio_files: Sequence[PathLike], resample: bool = True):
        """Signals and crops as msclap's ``preprocess_audio`` takes them: per file the decoded
        signal (44.1 kHz when ``resample``, else the file's rate; channels concatenated) and the
        7-s window msclap's ``load_audio_into_tensor`` cuts (a ``random.randrange`` start, or the
        clip repeated when it is not longer than the window)."""
        signals, crops = [], []
        for path in _paths(audio_files):
            signal, _ = load_audio(path, _MSCLAP_RATE if resample else 0, self.channels)
            if len(signal) > WINDOW_SAMPLES:
                start = _random.randrange(len(signal) - WINDOW_SAMPLES)
            else:
                start = 0
            signals.append(signal)
            crops.append(f"offset:{start}")
        return signals, crops

    # -- msclap's API ----------------------------------------------------------------------------
    def get_audio_embeddings(self, audio_files: Sequence[PathLike], resample: bool = True) -> np.ndarray:
        """[files x dim] audio embeddings (msclap's ``audio_encoder(...)[0]``: projected, not normalised)."""
        signals, crops = self.preprocess_audio(audio_files, resample)
        if not signals:
            return np.zeros((0, self.model.embedding_dim), dtype=np.float32)
        return self.audio_encoder.embed_signals(signals, crops).embedding

    def get_text_embeddings(self, class_labels: Sequence[str]) -> np.ndarray:
        """[texts x dim] text embeddings (msclap's ``caption_encoder``: projected, not normalised)."""
        return self.text_encoder.embed(_texts(class_labels))

    def compute_similarity(self, audio_embeddings, text_embeddings) -> np.ndarray:
        """[audio x texts]: exp(logit_scale) * cosine, as msclap's ``compute_similarity``.
        Accepts numpy arrays or torch tensors."""
        return scaled_logits(as_numpy(audio_embeddings), as_numpy(text_embeddings), self.logit_scale)

    def classify_audio_files(
        self, audio_files: Sequence[PathLike], class_labels: Sequence[str], resample: bool = True
    ) -> np.ndarray:
        """Zero-shot classification: [files x classes] probabilities, the softmax over the class
        labels of ``compute_similarity`` (msclap's zero-shot recipe)."""
        text = self.get_text_embeddings(class_labels)
        audio = self.get_audio_embeddings(audio_files, resample)
        return softmax_rows(self.compute_similarity(audio, text))

    def generate_caption(
        self,
        audio_files: Sequence[PathLike],
        resample: bool = True,
        beam_size: int = 5,
        entry_length: int = 67,
        temperature: float = 1.0,
    ) -> List[str]:
        """One caption per file (the best beam, capitalised), as msclap's ``generate_caption``
        with a captioner model (``version='clapcap'``)."""
        signals, crops = self.preprocess_audio(audio_files, resample)
        if not signals:
            return []
        results = self.captioner.caption_signals(
            signals, crops, beam_size=beam_size, max_tokens=entry_length, temperature=temperature
        )
        return [r.caption for r in results]

    def _batches(self, items: Sequence, batch_size: int) -> Iterator[Sequence]:
        if batch_size < 1:
            raise InvalidArgument(f"batch_size must be at least 1, got {batch_size}")
        for start in range(0, len(items), batch_size):
            yield items[start : start + batch_size]

    def get_audio_embeddings_per_batch(self, audio_files: Sequence[PathLike], batch_size: int) -> Iterator[np.ndarray]:
        """get_audio_embeddings over consecutive batches of files (every batch, the last included)."""
        for batch in self._batches(list(audio_files), batch_size):
            yield self.get_audio_embeddings(batch)

    def get_text_embeddings_per_batch(self, class_labels: Sequence[str], batch_size: int) -> Iterator[np.ndarray]:
        """get_text_embeddings over consecutive batches of texts."""
        for batch in self._batches(list(class_labels), batch_size):
            yield self.get_text_embeddings(batch)

    def classify_audio_files_per_batch(
        self, audio_files: Sequence[PathLike], class_labels: Sequence[str], batch_size: int
    ) -> Iterator[np.ndarray]:
        """classify_audio_files over consecutive batches of files (texts embedded once)."""
        text = self.get_text_embeddings(class_labels)
        for batch in self._batches(list(audio_files), batch_size):
            yield softmax_rows(self.compute_similarity(self.get_audio_embeddings(batch), text))


# -- asdcap's own conveniences ------------------------------------------------------------------


def _model(model: Union[PathLike, Model]) -> Model:
    return model if isinstance(model, Model) else Model(os.fspath(model))


def embed_files(
    model: Union[PathLike, Model],
    paths: Sequence[PathLike],
    crop: str = "random",
    channels: str = "mean",
    threads: int = 0,
) -> np.ndarray:
    """[files x dim] CLAP audio embeddings of files, the same values as ``asdcap embed`` (the
    crop 'random' is seeded by each file's content, so reruns agree)."""
    return AudioEncoder(_model(model), "audio.", threads).embed_files(_paths(paths), crop, channels).embedding


def caption_files(
    model: Union[PathLike, Model],
    paths: Sequence[PathLike],
    crop: str = "random",
    channels: str = "mean",
    beam_size: int = 5,
    max_tokens: int = 67,
    temperature: float = 1.0,
    prompt: str = "",
    threads: int = 0,
) -> List[CaptionResult]:
    """Captions of files as ``asdcap caption`` makes them (crop resolved per file by its content)."""
    captioner = Captioner(_model(model), threads)
    results = []
    for path in _paths(paths):
        signal, _ = load_audio(path, _MSCLAP_RATE, channels)
        results.extend(
            captioner.caption_signals(
                [signal],
                [clip_crop(crop, path)],
                beam_size=beam_size,
                max_tokens=max_tokens,
                temperature=temperature,
                prompt=prompt,
            )
        )
    return results


def _frame(records: List[dict]):
    import pandas as pd  # optional dependency

    return pd.DataFrame.from_records(records)


def results_records(rows: Iterable[ResultRow]) -> List[dict]:
    """ResultRows as dicts (one per line of results.csv)."""
    return [
        {
            "kind": r.kind,
            "machine": r.machine,
            "id": r.id,
            "auc": r.auc,
            "pauc": r.pauc,
            "threshold": r.threshold,
            "threshold_rule": r.threshold_rule,
            "n_normal": r.n_normal,
            "n_anomaly": r.n_anomaly,
        }
        for r in rows
    ]


def scores_records(clips: Iterable[ScoredClip]) -> List[dict]:
    """ScoredClips as dicts: file, machine, id, label, score, threshold, decision and the nearest
    normal clip (its file and distance)."""
    out = []
    for c in clips:
        nearest = c.neighbors[0] if c.neighbors else None
        out.append(
            {
                "file": c.file,
                "path": c.path,
                "machine": c.machine,
                "id": c.id,
                "split": c.split,
                "label": c.label,
                "domain": c.domain,
                "score": c.score,
                "threshold": c.threshold,
                "decision": c.decision,
                "nearest": nearest.file if nearest else None,
                "nearest_distance": nearest.distance if nearest else float("nan"),
            }
        )
    return out


class Detection:
    """A finished detection run: the summary, the run folder, and its tables."""

    def __init__(self, summary: DetectSummary) -> None:
        self.summary = summary
        self.out_dir = summary.out_dir

    @property
    def lines(self) -> List[ResultRow]:
        """The lines of results.csv (IDs, machine averages, overall)."""
        return self.summary.lines

    def scores(self) -> List[ScoredClip]:
        """Every scored test clip with its nearest normal clips (neighbors.jsonl)."""
        return read_scores(self.out_dir)

    def results_frame(self):
        """results.csv as a pandas DataFrame (needs pandas)."""
        return _frame(results_records(self.lines))

    def scores_frame(self):
        """The scored clips as a pandas DataFrame (needs pandas)."""
        return _frame(scores_records(self.scores()))

    def __repr__(self) -> str:
        return f"asdcap.Detection('{self.out_dir}', {self.summary.n_scored} clips scored)"


def detect(
    data_root: PathLike,
    out_dir: PathLike,
    backend: str = "acoustic",
    model: Optional[PathLike] = None,
    k: int = 4,
    crop: str = "random",
    channels: str = "mean",
    machines: Sequence[str] = (),
    threads: int = 0,
    quiet: bool = True,
) -> Detection:
    """Runs ``asdcap detect``: embeds every clip of a DCASE-layout folder with `backend`, scores
    test clips by k-NN against the normal training clips, evaluates, and publishes out_dir."""
    summary = _asdcap.run_detect(
        os.fspath(data_root),
        os.fspath(out_dir),
        backend=backend,
        model=os.fspath(model) if model else "",
        k=k,
        crop=crop,
        channels=channels,
        machines=list(machines),
        threads=threads,
        quiet=quiet,
    )
    return Detection(summary)


class Comparison:
    """A finished comparison (``asdcap compare``): the table of every system's AUC/pAUC per machine
    ID, per machine type (``average``) and overall, and each system's run folder."""

    def __init__(self, result: CompareResult) -> None:
        self.result = result
        self.table: CompareTable = result.table
        self.out_dir = result.out_dir

    @property
    def systems(self) -> List[str]:
        """The systems' labels (the backend name, or the model file's name), in column order."""
        return list(self.table.systems)

    @property
    def rows(self) -> List[CompareRow]:
        """The lines of table.csv: machine IDs, each machine's average, the overall average."""
        return list(self.table.rows)

    @property
    def run_dirs(self) -> dict:
        """label -> the system's run folder (``read_results``, ``read_scores``, ``explain`` take it)."""
        return dict(zip(self.table.systems, self.result.run_dirs))

    def records(self) -> List[dict]:
        """One dict per line: kind, machine, id, ``<label>_auc`` and ``<label>_pauc`` per system
        (fractions), the best system's label by AUC and by pAUC, and for DCASE 2020 development
        data the papers' published AUC (%) as ``paper_<system>_auc``."""
        out = []
        for row in self.table.rows:
            record = {"kind": row.kind, "machine": row.machine, "id": row.id}
            for i, label in enumerate(self.table.systems):
                record[f"{label}_auc"] = row.auc[i]
                record[f"{label}_pauc"] = row.pauc[i]
            record["best_auc"] = self.table.systems[row.best_auc] if row.best_auc >= 0 else None
            record["best_pauc"] = self.table.systems[row.best_pauc] if row.best_pauc >= 0 else None
            if self.table.dcase2020_dev:
                for name, value in (row.published or {}).items():
                    record[f"paper_{name}_auc"] = value
            out.append(record)
        return out

    def to_dataframe(self):
        """records() as a pandas DataFrame (needs pandas)."""
        return _frame(self.records())

    def __str__(self) -> str:
        return self.table.text

    def __repr__(self) -> str:
        return f"asdcap.Comparison('{self.out_dir}', systems={self.systems})"


def compare(
    data_root: PathLike,
    out_dir: PathLike,
    backends: Sequence[str] = (),
    models: Sequence[PathLike] = (),
    k: int = 4,
    crop: Optional[str] = None,
    channels: str = "mean",
    machines: Sequence[str] = (),
    threads: int = 0,
    quiet: bool = True,
    epochs: int = 100,
    batch_size: int = 512,
    learning_rate: float = 1e-3,
    seed: int = 1,
) -> Comparison:
    """Runs ``asdcap compare``: every system -- each of ``backends``, then each model file of
    ``models`` (its architecture chooses the backend) -- on the same clips of a DCASE-layout folder,
    each clip decoded once for all of them; one run folder per system under out_dir, table.csv and
    the comparison page. Without backends and models: the weight-free backends ``acoustic`` and
    ``ae``. ``crop`` None: each backend's default; ``epochs`` ... ``seed`` train the ``ae``. A rerun
    reuses every cached embedding and trained model."""
    result = _asdcap.run_compare(
        os.fspath(data_root),
        os.fspath(out_dir),
        backends=list(backends),
        models=[os.fspath(m) for m in models],
        k=k,
        crop=crop or "",
        channels=channels,
        machines=list(machines),
        threads=threads,
        quiet=quiet,
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        seed=seed,
    )
    return Comparison(result)


def explain(
    out_dir: Union[PathLike, Detection],
    model: Optional[PathLike] = None,
    methods: Sequence[str] = (),
    llm: str = "offline",
    llm_model: str = "",
    top: int = 3,
    all_flagged: bool = False,
    texts: Sequence[str] = (),
    caption_prompt: str = "Sounds like",
    combined_evidence: bool = False,
    reuse_answers: bool = True,
    data_root: Optional[PathLike] = None,
    threads: int = 0,
    machine_parts: Optional[Dict[str, str]] = None,
) -> ExplainSummary:
    """Runs ``asdcap explain`` on a detection run folder (or a Detection): explains the flagged
    clips with the chosen methods and writes explanations.jsonl. ``machine_parts`` declares what
    a machine type is built of, as ``--machine-parts``: ``{"line3-motor": "rotor"}``, lists of
    flow, rotor, gears joined by commas, or "none" (other types: guessed from their names)."""
    folder = out_dir.out_dir if isinstance(out_dir, Detection) else os.fspath(out_dir)
    return _asdcap.run_explain(
        folder,
        model=os.fspath(model) if model else "",
        methods=list(methods),
        llm=llm,
        llm_model=llm_model,
        top=top,
        all_flagged=all_flagged,
        texts=list(texts),
        caption_prompt=caption_prompt,
        combined_evidence=combined_evidence,
        reuse_answers=reuse_answers,
        data_root=os.fspath(data_root) if data_root else "",
        threads=threads,
        machine_parts=dict(machine_parts or {}),
    )


def explanations_frame(summary: ExplainSummary):
    """One row per explained clip and method (file, machine, id, score, method, answer, error), as
    a pandas DataFrame (needs pandas)."""
    records = []
    for clip in summary.clips:
        for method in sorted(set(clip.answers) | set(clip.errors)):
            records.append(
                {
                    "file": clip.file,
                    "machine": clip.machine,
                    "id": clip.id,
                    "score": clip.score,
                    "method": method,
                    "answer": clip.answers.get(method),
                    "error": clip.errors.get(method),
                }
            )
    return _frame(records)


def auc_pauc(scores: Sequence[float], labels: Sequence[int], max_fpr: float = 0.1):
    """(AUC, pAUC) of anomaly scores against labels (1 = anomalous), as the DCASE evaluators."""
    s = [float(x) for x in scores]
    y = [int(v) for v in labels]
    return roc_auc(s, y), partial_roc_auc(s, y, max_fpr)


__all__ = [name for name in dir(_asdcap) if not name.startswith("_")] + [
    "CLAP",
    "Comparison",
    "Detection",
    "as_numpy",
    "auc_pauc",
    "caption_files",
    "compare",
    "detect",
    "embed_files",
    "explain",
    "explanations_frame",
    "results_records",
    "scores_records",
]
