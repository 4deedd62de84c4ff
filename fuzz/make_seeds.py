#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets whose seeds are generated (small valid examples):
fuzz_audio, fuzz_npy, fuzz_tokenizer, fuzz_run_folder, fuzz_llm_response, fuzz_http_api. Run from anywhere:
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

    http_api_seeds()


def request(method, target, headers=(), body=b"", token=False, length=True):
    """One raw HTTP/1.1 request as a client sends it."""
    lines = ["%s %s HTTP/1.1" % (method, target), "Host: 127.0.0.1:8080"]
    if token:
        lines.append("Authorization: Bearer fuzz-token")
    lines += list(headers)
    if length and (body or method == "POST"):
        lines.append("Content-Length: %d" % len(body))
    return "\r\n".join(lines).encode() + b"\r\n\r\n" + body


def http_api_seeds():
    # fuzz_http_api: raw requests of one connection. The target's starting state: machine fan/id_00
    # with references 1-3, events 1 (normal) and 2 (flagged), folder "refs" under the folder root,
    # token "fuzz-token".
    t = "fuzz_http_api"
    clip = wav_pcm16(400, 1, 8000)
    write(t, "get_healthz", request("GET", "/healthz"))
    write(t, "get_metrics", request("GET", "/metrics"))
    write(t, "get_dashboard", request("GET", "/", ["Accept: text/html"]))
    write(t, "get_machines", request("GET", "/v1/machines"))
    write(t, "get_machine", request("GET", "/v1/machines/fan/id_00"))
    write(t, "get_scores", request("GET", "/v1/machines/fan/id_00/scores?since=2020-01-01T00:00:00Z&limit=10"))
    write(t, "get_events", request("GET", "/v1/events?machine=fan&id=id_00&label=anomaly&status=new"
                                   "&since=2020-01-01&until=2100-01-01&before=10&limit=5"))
    write(t, "get_events_type", request("GET", "/v1/events?machine=fan&label=normal&limit=1"))
    write(t, "get_event", request("GET", "/v1/events/2"))
    write(t, "get_event_audio", request("GET", "/v1/events/1/audio", ["Range: bytes=0-15"]))
    write(t, "get_event_spectrogram", request("GET", "/v1/events/2/spectrogram.png"))
    write(t, "get_reference_audio", request("GET", "/v1/references/1/audio"))
    write(t, "get_reference_spectrogram", request("GET", "/v1/references/3/spectrogram.png"))
    write(t, "get_updates", request("GET", "/v1/updates?after=1"))
    write(t, "get_unknown", request("GET", "/v1/nothing/here"))
    write(t, "post_reference", request("POST", "/v1/machines/fan/id_00/references?name=ref.wav",
                                       ["Content-Type: audio/wav"], clip, token=True))
    write(t, "post_reference_new_machine", request("POST", "/v1/machines/pump/p-1/references",
                                                   ["Content-Type: audio/x-wav; charset=binary"], clip, token=True))
    write(t, "post_reference_flac", request("POST", "/v1/machines/fan/id_00/references", ["Content-Type: audio/flac"],
                                            flac("/tmp/asdcap_seed_%d.flac" % os.getpid(), 256, 1, 16000, 0x0002),
                                            token=True))
    write(t, "post_clip", request("POST", "/v1/machines/fan/id_00/clips?name=clip.wav",
                                  ["Content-Type: audio/wav", "Idempotency-Key: k-1"], clip, token=True))
    write(t, "post_clip_no_references", request("POST", "/v1/machines/valve/v1/clips", ["Content-Type: audio/wav"],
                                                clip, token=True))
    write(t, "post_clip_chunked", request("POST", "/v1/machines/fan/id_00/clips",
                                          ["Content-Type: audio/wav", "Transfer-Encoding: chunked"],
                                          b"%x\r\n" % len(clip) + clip + b"\r\n0\r\n\r\n", token=True, length=False))
    write(t, "post_clip_expect", request("POST", "/v1/machines/fan/id_00/clips",
                                         ["Content-Type: audio/wav", "Expect: 100-continue"], clip, token=True))
    write(t, "post_clip_not_audio", request("POST", "/v1/machines/fan/id_00/clips", ["Content-Type: audio/wav"],
                                            b"RIFF\x10\x00\x00\x00WAVEfmt ", token=True))
    write(t, "post_clip_no_token", request("POST", "/v1/machines/fan/id_00/clips", ["Content-Type: audio/wav"], clip))
    write(t, "post_clip_wrong_token", request("POST", "/v1/machines/fan/id_00/clips",
                                              ["Content-Type: audio/wav", "Authorization: Bearer wrong"], clip))
    write(t, "post_folder", request("POST", "/v1/machines/fan/id_01/references/folder",
                                    ["Content-Type: application/json"], b'{"path": "refs"}', token=True))
    write(t, "post_folder_outside", request("POST", "/v1/machines/fan/id_00/references/folder",
                                            ["Content-Type: application/json"], b'{"path": "../../etc"}', token=True))
    write(t, "post_folder_malformed", request("POST", "/v1/machines/fan/id_00/references/folder",
                                              ["Content-Type: application/json"], b'{"path": ', token=True))
    write(t, "post_folder_not_object", request("POST", "/v1/machines/fan/id_00/references/folder",
                                               ["Content-Type: application/json"], b'[1, "refs"]', token=True))
    write(t, "post_acknowledge", request("POST", "/v1/events/2/acknowledge", token=True))
    write(t, "post_false_alarm", request("POST", "/v1/events/2/false-alarm", ["Content-Type: application/json"],
                                         b"{}", token=True))
    write(t, "post_false_alarm_unknown", request("POST", "/v1/events/99/false-alarm", token=True))
    write(t, "traversal_machine", request("POST", "/v1/machines/..%2F..%2Ftmp/x/references?name=..%2F..%2Fevil.wav",
                                          ["Content-Type: audio/wav"], clip, token=True))
    write(t, "traversal_path", request("GET", "/v1/machines/../../etc/passwd"))
    write(t, "traversal_name", request("POST", "/v1/machines/fan/id_00/clips?name=../../../etc/passwd%00.wav",
                                       ["Content-Type: audio/wav"], clip, token=True))
    write(t, "http10_get", b"GET /v1/events/1 HTTP/1.0\r\n\r\n")
    write(t, "method_not_allowed", request("DELETE", "/v1/events/1", token=True))
    # Several requests on one kept-alive connection: enrol, score, then read back.
    write(t, "keep_alive_sequence",
          request("POST", "/v1/machines/fan/id_00/references?name=r4", ["Content-Type: audio/wav"], clip, token=True)
          + request("POST", "/v1/machines/fan/id_00/clips", ["Content-Type: audio/wav"], clip, token=True)
          + request("GET", "/v1/events/3") + request("GET", "/v1/machines"))
    # A name in UTF-8 (percent-encoded), enrolled, then a clip scored against it.
    write(t, "utf8_name_then_clip",
          request("POST", "/v1/machines/pump/p1/references?name=caf%C3%A9.wav", ["Content-Type: audio/wav"], clip,
                  token=True)
          + request("POST", "/v1/machines/pump/p1/clips?name=%E2%9C%93.wav", ["Content-Type: audio/wav"], clip,
                    token=True))
    write(t, "false_alarm_then_machine", request("POST", "/v1/events/2/false-alarm", token=True)
          + request("GET", "/v1/machines/fan/id_00") + request("GET", "/v1/events?status=false_alarm"))


if __name__ == "__main__":
    main()
