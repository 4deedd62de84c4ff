#!/usr/bin/env python3
"""Dev-only: msclap's text embedding and caption decoding in PyTorch, for asdcap's speed and
agreement check on the same machine.

msclap itself is not a Debian package; this script re-states, with the same torch operations, the
two computations the speed issue compares (their cost is msclap's model time, without Python
packaging or Hugging Face overhead, so it is a lower bound of msclap's time):

  text    msclap 2023's get_text_embeddings: GPT-2 (Hugging Face semantics: Conv1D [in, out], gelu
          "new", LayerNorm eps 1e-5, causal attention) over every text padded to 77 tokens with an
          attention mask, the hidden state at (number of ids != 0) - 1, then the projection
          e1 = W1 x; LayerNorm(e1 + W2 gelu(e1)).
  decode  the captioner after its audio encoder: the embedding divided by its L2 norm, the mapper
          (Linear 1024 -> 40 x 768, 40 learned tokens, 8 pre-norm transformer layers, the last 40
          tokens), then msclap's beam search (beam 5, temperature 1, stop token 220), recomputing
          GPT-2 over the whole sequence at every step as msclap does (no key/value cache).

The weights are read from asdcap model files (float32; format 1 or 2, packed panels unpacked), so
both sides compute with the same numbers. Token ids come from asdcap's Python module.

Writes into OUT:
  torch.json             times (best of N, wall clock and process CPU), threads, steps, paths
  texts.json             the papers' 8 reference texts
  text_embeddings.npy    [8, 1024] projection outputs
  caption_embedding.npy  [1024] the (random, seeded) audio embedding the captions start from
  caption_tokens.json    the best beam's tokens and every beam's tokens and scores

  PYTHONPATH=build/python /usr/bin/python3 scripts/dev/msclap_torch_reference.py \\
      --clap CLAP_F32.gguf --cap CAP_F32.gguf --out /tmp/msclap-torch --threads 2
  ASDCAP_MSCLAP_TORCH_DIR=/tmp/msclap-torch build/bench/bench_text --benchmark_filter=VsTorch
  ASDCAP_MSCLAP_TORCH_DIR=/tmp/msclap-torch build/bench/bench_caption --benchmark_filter=VsTorch
"""
import argparse
import json
import math
import os
import struct
import time

import numpy as np
import torch
import torch.nn.functional as F

import asdcap

REFERENCE_TEXTS = asdcap.default_reference_texts()  # the papers' 8 texts


# ---- GGUF (v3) reader: metadata and float tensors ------------------------------------------------
def read_gguf(path):
    data = np.memmap(path, dtype=np.uint8, mode="r")
    pos = 0

    def take(fmt):
        nonlocal pos
        v = struct.unpack_from("<" + fmt, data, pos)
        pos += struct.calcsize("<" + fmt)
        return v[0] if len(v) == 1 else v

    def string():
        nonlocal pos
        n = take("Q")
        s = bytes(data[pos:pos + n]).decode("utf-8")
        pos += n
        return s

    scalar = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}

    def value(t):
        if t == 8:
            return string()
        if t == 9:
            et, n = take("I"), take("Q")
            return [value(et) for _ in range(n)]
        return take(scalar[t])

    assert bytes(data[:4]) == b"GGUF", path
    pos = 4
    version, n_tensors, n_kv = take("I"), take("Q"), take("Q")
    assert version == 3, version
    kv = {}
    for _ in range(n_kv):
        k = string()
        kv[k] = value(take("I"))
    infos = []
    for _ in range(n_tensors):
        name = string()
        dims = [take("Q") for _ in range(take("I"))]
        infos.append((name, list(reversed(dims)), take("I"), take("Q")))
    align = kv.get("general.alignment", 32)
    start = (pos + align - 1) // align * align
    tensors = {}
    for name, shape, ggml_type, offset in infos:
        dtype = {0: np.float32, 1: np.float16}.get(ggml_type)
        if dtype is None:
            continue
        n = int(np.prod(shape)) if shape else 1
        a = np.frombuffer(data, dtype=dtype, count=n, offset=start + offset).astype(np.float32)
        key = kv.get("asdcap.packed." + name)
        if key:  # [P, in, 48] panels -> the logical PyTorch shape
            out_dim, logical = key[0], key[1:]
            p, k, w = shape
            out = logical[out_dim]
            m = a.reshape(p, k, w).transpose(0, 2, 1).reshape(p * w, k)[:out]
            a = m.T.copy() if out_dim == 1 else m.reshape(logical)
        else:
            a = a.reshape(shape)
        tensors[name] = torch.from_numpy(np.ascontiguousarray(a))
    return kv, tensors


# ---- GPT-2 (Hugging Face semantics) ---------------------------------------------------------------
def gpt2_hidden(t, p, x, n_layer, n_head, attention_mask=None):
    """x [B, T, 768] input embeddings (positions added here) -> the final LayerNorm's output."""
    b, n, d = x.shape
    h = x + t[p + "wpe.weight"][:n]
    causal = torch.tril(torch.ones(n, n, dtype=torch.bool))
    bias = torch.zeros(b, 1, n, n)
    bias.masked_fill_(~causal, torch.finfo(torch.float32).min)
    if attention_mask is not None:
        bias = bias + (1.0 - attention_mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
    hd = d // n_head
    for i in range(n_layer):
        q = f"{p}h.{i}."
        a = F.layer_norm(h, (d,), t[q + "ln_1.weight"], t[q + "ln_1.bias"], 1e-5)
        qkv = torch.addmm(t[q + "attn.c_attn.bias"], a.reshape(-1, d), t[q + "attn.c_attn.weight"]).view(b, n, 3 * d)
        qq, kk, vv = qkv.split(d, dim=2)
        qq, kk, vv = (z.view(b, n, n_head, hd).transpose(1, 2) for z in (qq, kk, vv))
        w = torch.matmul(qq, kk.transpose(-1, -2)) / math.sqrt(hd) + bias
        o = torch.matmul(w.softmax(-1), vv).transpose(1, 2).reshape(b, n, d)
        h = h + torch.addmm(t[q + "attn.c_proj.bias"], o.reshape(-1, d), t[q + "attn.c_proj.weight"]).view(b, n, d)
        a = F.layer_norm(h, (d,), t[q + "ln_2.weight"], t[q + "ln_2.bias"], 1e-5)
        m = F.gelu(torch.addmm(t[q + "mlp.c_fc.bias"], a.reshape(-1, d), t[q + "mlp.c_fc.weight"]), approximate="tanh")
        h = h + torch.addmm(t[q + "mlp.c_proj.bias"], m, t[q + "mlp.c_proj.weight"]).view(b, n, d)
    return F.layer_norm(h, (d,), t[p + "ln_f.weight"], t[p + "ln_f.bias"], 1e-5)


def projection(t, p, x):
    e1 = x @ t[p + "linear1.weight"].T
    e2 = F.gelu(e1) @ t[p + "linear2.weight"].T
    return F.layer_norm(e1 + e2, (e1.shape[-1],), t[p + "layer_norm.weight"], t[p + "layer_norm.bias"], 1e-5)


def text_embeddings(t, ids_list, n_layer, n_head):
    ids = torch.zeros(len(ids_list), 77, dtype=torch.long)
    mask = torch.zeros(len(ids_list), 77, dtype=torch.long)
    for i, s in enumerate(ids_list):
        ids[i, : len(s)] = torch.tensor(s)
        mask[i, : len(s)] = 1
    x = t["text.gpt2.wte.weight"][ids]
    h = gpt2_hidden(t, "text.gpt2.", x, n_layer, n_head, mask)
    last = (ids != 0).sum(1) - 1
    return projection(t, "text.proj.", h[torch.arange(len(ids_list)), last])


# ---- the captioner after its audio encoder ---------------------------------------------------------
def mapper(t, emb, layers=8, heads=8, clip_length=40):
    x = (emb / emb.norm()).reshape(1, -1)
    x = torch.addmm(t["cap.mapper.linear.bias"], x, t["cap.mapper.linear.weight"].T).view(1, clip_length, -1)
    x = torch.cat((x, t["cap.mapper.prefix_const"][None]), dim=1)
    b, n, c = x.shape
    hd = c // heads
    for i in range(layers):
        q = f"cap.mapper.transformer.layers.{i}."
        a = F.layer_norm(x, (c,), t[q + "norm1.weight"], t[q + "norm1.bias"], 1e-5)
        queries = (a @ t[q + "attn.to_queries.weight"].T).reshape(b, n, heads, hd)
        kv = (a @ t[q + "attn.to_keys_values.weight"].T).reshape(b, n, 2, heads, hd)
        att = torch.einsum("bnhd,bmhd->bnmh", queries, kv[:, :, 0]) * hd**-0.5
        o = torch.einsum("bnmh,bmhd->bnhd", att.softmax(dim=2), kv[:, :, 1]).reshape(b, n, c)
        x = x + (o @ t[q + "attn.project.weight"].T + t[q + "attn.project.bias"])
        a = F.layer_norm(x, (c,), t[q + "norm2.weight"], t[q + "norm2.bias"], 1e-5)
        m = F.relu(a @ t[q + "mlp.fc1.weight"].T + t[q + "mlp.fc1.bias"])
        x = x + (m @ t[q + "mlp.fc2.weight"].T + t[q + "mlp.fc2.bias"])
    return x[:, clip_length:]


def generate_beam(t, prefix, n_layer, n_head, beam=5, steps=20, stop=220):
    """msclap's beam search (softmax then log, length-normalised ranking), whole sequence per step."""
    wte = t["cap.gpt2.wte.weight"]
    generated, tokens, scores = prefix, None, None
    seq_lengths = torch.ones(beam)
    is_stopped = torch.zeros(beam, dtype=torch.bool)
    for _ in range(steps):
        h = gpt2_hidden(t, "cap.gpt2.", generated, n_layer, n_head)
        logits = (h[:, -1, :] @ wte.T).softmax(-1).log()
        if scores is None:
            scores, next_tokens = logits.topk(beam, -1)
            generated = generated.expand(beam, *generated.shape[1:])
            next_tokens, scores = next_tokens.permute(1, 0), scores.squeeze(0)
            tokens = next_tokens
        else:
            logits[is_stopped] = -float("inf")
            logits[is_stopped, 0] = 0
            scores_sum = scores[:, None] + logits
            seq_lengths[~is_stopped] += 1
            average = scores_sum / seq_lengths[:, None]
            average, next_tokens = average.view(-1).topk(beam, -1)
            source = next_tokens // scores_sum.shape[1]
            seq_lengths = seq_lengths[source]
            next_tokens = (next_tokens % scores_sum.shape[1]).unsqueeze(1)
            tokens = torch.cat((tokens[source], next_tokens), dim=1)
            generated = generated[source]
            scores = average * seq_lengths
            is_stopped = is_stopped[source]
        generated = torch.cat((generated, wte[next_tokens.squeeze(1)].view(beam, 1, -1)), dim=1)
        is_stopped = is_stopped + next_tokens.eq(stop).squeeze(1)
        if is_stopped.all():
            break
    order = (scores / seq_lengths).argsort(descending=True)
    return [(tokens[i].tolist(), float(scores[i] / seq_lengths[i]), int(seq_lengths[i])) for i in order]


def timed(f, repeats):
    best = None
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        out = f()
        w, c = time.perf_counter() - w0, time.process_time() - c0
        if best is None or w < best[0]:
            best = (w, c, out)
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clap", required=True, help="asdcap model file with CLAP (float32)")
    ap.add_argument("--cap", required=True, help="asdcap model file with the captioner (float32)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    torch.set_num_threads(a.threads)
    torch.set_grad_enabled(False)

    kv, clap = read_gguf(a.clap)
    n_layer, n_head = kv["asdcap-msclap.text.n_layer"], kv["asdcap-msclap.text.n_head"]
    enc = asdcap.TextEncoder(asdcap.Model(a.clap), threads=1)
    ids = [enc.token_ids(s) for s in REFERENCE_TEXTS]
    text_w, text_c, emb = timed(lambda: text_embeddings(clap, ids, n_layer, n_head), a.repeats)
    np.save(os.path.join(a.out, "text_embeddings.npy"), emb.numpy().astype(np.float32))
    with open(os.path.join(a.out, "texts.json"), "w") as f:
        json.dump(REFERENCE_TEXTS, f)
    del clap

    kv, cap = read_gguf(a.cap)
    n_layer, n_head = kv["asdcap-msclap.decoder.n_layer"], kv["asdcap-msclap.decoder.n_head"]
    audio = torch.from_numpy(np.random.default_rng(5).standard_normal(1024).astype(np.float32))
    np.save(os.path.join(a.out, "caption_embedding.npy"), audio.numpy())

    def decode():
        return generate_beam(cap, mapper(cap, audio), n_layer, n_head, steps=a.steps)

    dec_w, dec_c, beams = timed(decode, max(1, a.repeats - 1))
    with open(os.path.join(a.out, "caption_tokens.json"), "w") as f:
        json.dump({"best": beams[0][0], "beams": [{"tokens": b[0], "score": b[1]} for b in beams]}, f)
    info = {
        "torch": torch.__version__,
        "threads": a.threads,
        "clap": os.path.abspath(a.clap),
        "cap": os.path.abspath(a.cap),
        "steps": a.steps,
        "text_s": text_w,
        "text_cpu_s": text_c,
        "decode_s": dec_w,
        "decode_cpu_s": dec_c,
        "decode_steps_run": max(b[2] for b in beams),
    }
    with open(os.path.join(a.out, "torch.json"), "w") as f:
        json.dump(info, f, indent=1)
    print(json.dumps(info, indent=1))


if __name__ == "__main__":
    main()
