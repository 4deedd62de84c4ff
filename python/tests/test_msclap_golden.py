"""The msclap-compatible surface against msclap's own outputs (../shared/golden)."""

import random

import numpy as np
import pytest

import asdcap
from conftest import clip_path, expect_embedding_close, golden_array


def _texts(manifest):
    return [t["text"] for t in manifest["texts"]]


def _clap_and_paths(manifest, model):
    return asdcap.CLAP(model=model), [clip_path(c["id"]) for c in manifest["clips"]]


def _seeded(clip):
    """msclap cropped each golden clip after random.seed(crop_seed)."""
    random.seed(clip["crop_seed"])


def test_audio_embeddings_equal_msclaps(manifest, clap_model):
    clap = asdcap.CLAP(model=clap_model)
    for clip in manifest["clips"]:
        _seeded(clip)
        emb = clap.get_audio_embeddings([clip_path(clip["id"])], resample=True)
        assert emb.shape == (1, 64) and emb.dtype == np.float32
        expect_embedding_close(emb[0], golden_array(f"audio/{clip['id']}/embedding.npy"), clip["id"])


def test_random_crop_follows_pythons_random_module(manifest, clap_model):
    clap = asdcap.CLAP(model=clap_model)
    clip = next(c for c in manifest["clips"] if c["path"] == "random_crop")
    _seeded(clip)
    _, crops = clap.preprocess_audio([clip_path(clip["id"])])
    assert crops == [f"offset:{clip['crop_start']}"]


def test_batch_equals_one_by_one(manifest, clap_model):
    clap, paths = _clap_and_paths(manifest, clap_model)
    random.seed(5)
    together = clap.get_audio_embeddings(paths)
    random.seed(5)
    one_by_one = np.vstack([clap.get_audio_embeddings([p]) for p in paths])
    assert together.shape == (8, 64)
    np.testing.assert_array_equal(together, one_by_one)


def test_text_embeddings_equal_msclaps(manifest, clap_model):
    clap = asdcap.CLAP(model=clap_model)
    emb = clap.get_text_embeddings(_texts(manifest))
    want = golden_array("text/text_embeddings.npy")
    assert emb.shape == want.shape == (14, 64)
    for i in range(len(want)):
        expect_embedding_close(emb[i], want[i], manifest["texts"][i]["id"])


def test_similarity_on_golden_embeddings(clap_model):
    clap = asdcap.CLAP(model=clap_model)
    audio = golden_array("similarity/audio_embeddings.npy")
    text = golden_array("similarity/text_embeddings.npy")
    sim = clap.compute_similarity(audio, text)
    assert sim.shape == (8, 14)
    np.testing.assert_allclose(sim, golden_array("similarity/similarity.npy"), rtol=0, atol=2e-5)
    probs = asdcap.softmax_rows(sim)
    np.testing.assert_allclose(probs, golden_array("similarity/softmax_over_texts.npy"), rtol=0, atol=1e-6)
    np.testing.assert_allclose(
        asdcap.cosine_matrix(audio, text), golden_array("similarity/cosine.npy"), rtol=0, atol=1e-6
    )


def test_similarity_accepts_torch_tensors(clap_model):
    torch = pytest.importorskip("torch")
    clap = asdcap.CLAP(model=clap_model)
    audio = golden_array("similarity/audio_embeddings.npy")
    text = golden_array("similarity/text_embeddings.npy")
    from_torch = clap.compute_similarity(torch.from_numpy(audio), torch.from_numpy(text))
    np.testing.assert_array_equal(from_torch, clap.compute_similarity(audio, text))


def test_zero_shot_classification_end_to_end(manifest, clap_model):
    clap = asdcap.CLAP(model=clap_model)
    want = golden_array("similarity/softmax_over_texts.npy")
    for i, clip in enumerate(manifest["clips"]):
        _seeded(clip)
        probs = clap.classify_audio_files([clip_path(clip["id"])], _texts(manifest), resample=True)
        assert probs.shape == (1, 14)
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=0, atol=1e-5)
        np.testing.assert_allclose(probs[0], want[i], rtol=0, atol=1e-4, err_msg=clip["id"])


def test_per_batch_generators_cover_every_file(manifest, clap_model):
    clap, paths = _clap_and_paths(manifest, clap_model)
    random.seed(11)
    whole = clap.get_audio_embeddings(paths)
    random.seed(11)
    batches = list(clap.get_audio_embeddings_per_batch(paths, 3))
    assert [len(b) for b in batches] == [3, 3, 2]
    np.testing.assert_array_equal(np.vstack(batches), whole)


def test_captions_equal_msclaps(manifest, captioner_model):
    clap = asdcap.CLAP(model=captioner_model, version="clapcap")
    clips = {c["id"]: c for c in manifest["clips"]}
    for c in manifest["captions"]:
        _seeded(clips[c["clip"]])
        captions = clap.generate_caption([clip_path(c["clip"])], resample=True, beam_size=5, entry_length=67)
        assert captions == [c["beam5"]["caption"]], c["clip"]
        if "beam1" in c:
            _seeded(clips[c["clip"]])
            assert clap.generate_caption([clip_path(c["clip"])], beam_size=1) == [c["beam1"]["caption"]]


def test_asdcap_embed_files_equals_the_encoder_on_signals(manifest, clap_model):
    # The native API: files through encode_files, signals through the same rule, equal bits.
    model = asdcap.Model(clap_model)
    encoder = asdcap.AudioEncoder(model, threads=1)
    paths = [clip_path(c["id"]) for c in manifest["clips"]]
    files = encoder.embed_files(paths, crop="random", channels="mean")
    signals = [asdcap.load_audio(p, 44100, "mean")[0] for p in paths]
    crops = [asdcap.clip_crop("random", p) for p in paths]
    assert all(c.startswith("random:") for c in crops)
    from_signals = encoder.embed_signals(signals, crops)
    np.testing.assert_array_equal(files.embedding, from_signals.embedding)
    np.testing.assert_array_equal(files.clipwise, from_signals.clipwise)
    assert files.latent.shape == (8, encoder.latent_dim)
    np.testing.assert_array_equal(asdcap.embed_files(clap_model, paths), files.embedding)


def test_int8_model_stays_close_to_msclaps_text_embeddings(manifest, clap_model, tmp_path):
    """int8 weights (opt-in, approximate): convert_model(dtype='int8') and relayout_model(int8=True)
    store the same int8 matrices, and text embeddings stay within the stated cosine of msclap's."""
    out = str(tmp_path / "int8.gguf")
    packed, already, quantized = asdcap.relayout_model(clap_model, out, int8=True)
    assert packed == 0 and quantized == already > 10
    emb = asdcap.CLAP(model=out).get_text_embeddings(_texts(manifest))
    want = golden_array("text/text_embeddings.npy")
    cos = (emb * want).sum(1) / np.linalg.norm(emb, axis=1) / np.linalg.norm(want, axis=1)
    assert cos.min() >= 0.9999
    with pytest.raises(asdcap.Error, match="dtype must be"):
        asdcap.convert_model(str(tmp_path / "x.gguf"), clap="a.pth", vocab="v", merges="m", dtype="int4")
