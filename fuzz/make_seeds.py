#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets whose seeds are generated (small valid examples):
fuzz_audio, fuzz_npy, fuzz_tokenizer, fuzz_run_folder, fuzz_llm_response. Run from anywhere:
    python3 fuzz/make_seeds.py
The model-file seeds (fuzz_checkpoint, fuzz_unpickler, fuzz_safetensors, fuzz_torch_legacy,
fuzz_gguf) are hand-built files kept as they are. FLAC seeds are written through libsndfile (ctypes).
"""
import ctypes
import ctypes.util
import json
import math
import os
import struct
import wave

SEEDS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "seeds")


def write(target, name, data):
    folder = os.path.join(SEEDS, target)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode("utf-8"))


def tone(frames, channels, scale):
    return [[int(scale * math.sin(0.07 * (i + 5 * c))) for c in range(channels)] for i in range(frames)]


def wav_pcm16(frames, channels, rate):
    import io
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"".join(struct.pack("<%dh" % channels, *row) for row in tone(frames, channels, 12000)))
    return buf.getvalue()


def wav_float(frames, rate):
    data = b"".join(struct.pack("<f", 0.5 * math.sin(0.05 * i)) for i in range(frames))
    fmt = struct.pack("<HHIIHH", 3, 1, rate, rate * 4, 4, 32)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


class SfInfo(ctypes.Structure):
    _fields_ = [("frames", ctypes.c_int64), ("samplerate", ctypes.c_int), ("channels", ctypes.c_int),
                ("format", ctypes.c_int), ("sections", ctypes.c_int), ("seekable", ctypes.c_int)]


def flac(path, frames, channels, rate, subtype):
    lib = ctypes.CDLL(ctypes.util.find_library("sndfile") or "libsndfile.so.1")
    lib.sf_open.restype = ctypes.c_void_p
    lib.sf_open.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.POINTER(SfInfo)]
    lib.sf_writef_int.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_int), ctypes.c_int64]
    lib.sf_close.argtypes = [ctypes.c_void_p]
    info = SfInfo(0, rate, channels, 0x170000 | subtype, 0, 0)  # SF_FORMAT_FLAC | PCM_16/24
    handle = lib.sf_open(path.encode(), 0x20, ctypes.byref(info))  # SFM_WRITE
    if not handle:
        raise SystemExit("libsndfile cannot write " + path)
    samples = [v << 16 for row in tone(frames, channels, 12000) for v in row]
    lib.sf_writef_int(handle, (ctypes.c_int * len(samples))(*samples), frames)
    lib.sf_close(handle)
    with open(path, "rb") as f:
        data = f.read()
    os.remove(path)
    return data


def npy(descr, shape, payload, version=1):
    dims = "".join("%d," % d for d in shape) if len(shape) == 1 else ", ".join(str(d) for d in shape)
    header = "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }" % (descr, dims)
    prefix = 10 if version == 1 else 12
    header += " " * ((64 - (prefix + len(header) + 1) % 64) % 64) + "\n"
    size = struct.pack("<H", len(header)) if version == 1 else struct.pack("<I", len(header))
    return b"\x93NUMPY" + bytes([version, 0]) + size + header.encode() + payload


def main():
    write("fuzz_audio", "mono_pcm16.wav", wav_pcm16(64, 1, 16000))
    write("fuzz_audio", "stereo_pcm16.wav", wav_pcm16(48, 2, 44100))
    write("fuzz_audio", "float.wav", wav_float(40, 22050))
    write("fuzz_audio", "pcm16.flac", flac("/tmp/asdcap_seed_%d.flac" % os.getpid(), 256, 1, 16000, 0x0002))
    write("fuzz_audio", "stereo_pcm24.flac", flac("/tmp/asdcap_seed_%d.flac" % os.getpid(), 128, 2, 48000, 0x0003))

    write("fuzz_npy", "f4_2x3.npy", npy("<f4", (2, 3), struct.pack("<6f", 1, 2, 3, 4, 5, 6.5)))
    write("fuzz_npy", "i8_vector.npy", npy("<i8", (3,), struct.pack("<3q", -1, 0, 7)))
    write("fuzz_npy", "f8_scalar_v2.npy", npy("<f8", (), struct.pack("<d", math.pi), version=2))
    write("fuzz_npy", "f4_empty.npy", npy("<f4", (0, 4), b""))

    write("fuzz_tokenizer", "sentence.txt", "This sound is a fan running at a steady speed.")
    write("fuzz_tokenizer", "specials.txt", "A hum!! <|endoftext|> and it's louder; the sound's 123 Hz")
    write("fuzz_tokenizer", "unicode.txt", "ünïcode  spaces\t\ttabs\nline 2 — 日本語 🙂")

    # fuzz_run_folder: a first byte picks the file (0 run.json, 1 neighbors.jsonl, 2 skipped.jsonl,
    # 3 explanations.jsonl, 4 results.csv, 5 anomaly scores, 6 decisions).
    run = {"schema": 2, "asdcap_version": "0.1.0", "data_root": "/data", "backend": "acoustic",
           "backend_identity": "acoustic/v1", "model": None, "k": 4, "crop": "random",
           "cache_key": "random@content-sha256", "channels": "mean", "machines": ["fan"],
           "created": "2026-01-01T00:00:00Z", "n_scored": 1, "n_skipped": 0, "n_embedded": 3,
           "n_cache_hits": 0, "files": ["results.csv", "neighbors.jsonl", "skipped.jsonl",
                                        "anomaly_score_fan_id_00.csv", "decision_result_fan_id_00.csv"]}
    write("fuzz_run_folder", "run_json", b"\x00" + json.dumps(run, indent=2).encode())
    neighbor = {"file": "fan/test/anomaly_id_00_00000001.wav", "path": "/data/fan/test/anomaly_id_00_00000001.wav",
                "machine": "fan", "id": "id_00", "label": "anomaly", "domain": None, "score": 1.5,
                "threshold": 1.2, "decision": 1,
                "neighbors": [{"file": "fan/train/normal_id_00_00000000.wav",
                               "path": "/data/fan/train/normal_id_00_00000000.wav", "distance": 1.25}]}
    write("fuzz_run_folder", "neighbors", b"\x01" + (json.dumps(neighbor) + "\n").encode())
    skipped = {"path": "/data/fan/test/take 3.wav", "stage": "detect", "reason": "file name fits no known layout"}
    write("fuzz_run_folder", "skipped", b"\x02" + (json.dumps(skipped) + "\n").encode())
    explanation = dict(neighbor)
    explanation.update({"schema": 2, "evidence": [{"key": "tone_db", "value": 12.5, "z": 3.1}],
                        "captions": {"anomalous": "Sounds like a fan", "normal": ["Sounds like a fan"]},
                        "methods": {"acoustic": {"prompt": "p", "answer": "This sound is louder.",
                                                 "backend": "openai", "model": "m-2024", "error": None,
                                                 "seconds": 0.5, "attempts": 1,
                                                 "request": "{\"max_tokens\":1024,\"model\":\"m\"}"}}})
    write("fuzz_run_folder", "explanations", b"\x03" + (json.dumps(explanation) + "\n").encode())
    write("fuzz_run_folder", "results", b"\x04" + b"machine,id,auc,pauc,threshold,threshold_rule,n_normal,n_anomaly\n"
          b"fan,id_00,0.900000,0.700000,1.2,roc_closest,3,3\nfan,mean,0.900000,0.700000,,,3,3\n")
    write("fuzz_run_folder", "scores", b"\x05" + b"anomaly_id_00_00000001.wav,1.5\nnormal_id_00_00000002.wav,0.75\n")
    write("fuzz_run_folder", "decisions", b"\x06" + b"anomaly_id_00_00000001.wav,1\nnormal_id_00_00000002.wav,0\n")

    completion = {"id": "chatcmpl-1", "object": "chat.completion", "model": "gpt-4o-2024-08-06",
                  "choices": [{"index": 0, "message": {"role": "assistant", "content": "This sound is louder."},
                               "finish_reason": "stop"}]}
    write("fuzz_llm_response", "completion.json", json.dumps(completion))
    write("fuzz_llm_response", "error.json", json.dumps({"error": {"message": "Rate limit", "type": "x"}}))
    completion["choices"][0]["message"]["content"] = "\u001b[31mThis sound\u0007 is red.\u001b[0m\r\n"
    write("fuzz_llm_response", "escapes.json", json.dumps(completion))


if __name__ == "__main__":
    main()
