#!/usr/bin/python3
"""forward.py SNAPSHOT --ids IDS [--logits OUT.f64] [--last-only] [--greedy N --greedy-out OUT.txt
                                  [--greedy-logits OUT.f64]] [--block B] [--threads N]
   forward.py --batch JOBS [--threads N]

The reference forward pass for ponder's tests: a Hugging Face snapshot folder (config.json and
*.safetensors, with or without model.safetensors.index.json; F32, F16, BF16 or F64 tensors) run
in float64 with PyTorch, following the published modeling code of transformers
(Qwen2ForCausalLM, Qwen3ForCausalLM, LlamaForCausalLM, and modeling_rope_utils.py for the linear,
llama3 and YaRN RoPE scaling). It shares no code with ponder's engine.

  IDS            a file of token ids (whitespace or comma separated), or a comma list "1,2,3"
  --logits       writes the logits of every prompt position, T x vocab float64 little-endian
                 (with --last-only: only the last row, the only one computed)
  --greedy N     then continues greedily for N tokens (argmax over every row of the output,
                 ties to the lowest id), feeding each token back through a KV cache
  --greedy-vocab V  greedy picks among ids below V only (the real vocabulary: the rows past it
                 are padding, which an engine never samples); default every row
  --greedy-out   the N generated ids, one per line
  --greedy-logits  N x vocab float64: row i is the distribution greedy token i was taken from
                 (row 0 is the prompt's last row)
  --block        queries per attention block (bounds memory: block x T scores per head)
  --threads      torch threads (default: every core)
  --batch JOBS   runs the jobs of a file, one a line, each written as the arguments above
                 (shell quoting), in one process: each snapshot is loaded once

Timings go to stderr. Differences from transformers, on purpose: everything is float64 (the
inverse frequencies of RoPE included, where transformers computes them in float32), and
padding rows of the vocabulary are ordinary rows here.
"""
import argparse
import glob
import json
import math
import os
import shlex
import struct
import sys
import time

import numpy as np
import torch

DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "BF16": None}


def log(msg):
    print("forward.py: " + msg, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------------
# Reading a snapshot


def read_safetensors(path, out):
    """Adds every tensor of one safetensors file to `out` as a float64 torch tensor."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise ValueError(f"{path}: too short for a safetensors file")
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n].decode("utf-8"))
    base = 8 + n
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype, shape = info["dtype"], info["shape"]
        begin, end = info["data_offsets"]
        raw = data[base + begin : base + end]
        if dtype == "BF16":
            bits = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
            values = bits.view(np.float32)
        elif dtype in DTYPES:
            values = np.frombuffer(raw, dtype=np.dtype(DTYPES[dtype]).newbyteorder("<"))
        else:
            raise ValueError(f"{path}: tensor {name} has dtype {dtype}, not F64/F32/F16/BF16")
        count = int(np.prod(shape)) if shape else 1
        if values.size != count:
            raise ValueError(f"{path}: tensor {name}: {values.size} values for shape {shape}")
        out[name] = torch.from_numpy(values.astype(np.float64).reshape(shape))


def load_snapshot(folder):
    with open(os.path.join(folder, "config.json"), encoding="utf-8") as f:
        config = json.load(f)
    index = os.path.join(folder, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index, encoding="utf-8") as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
        files = [os.path.join(folder, x) for x in files]
    else:
        files = sorted(glob.glob(os.path.join(folder, "*.safetensors")))
    if not files:
        raise ValueError(f"{folder}: no *.safetensors")
    weights = {}
    for path in files:
        read_safetensors(path, weights)
    return config, weights


# ------------------------------------------------------------------------------------------------
# The model


class Config:
    def __init__(self, c):
        self.model_type = c.get("model_type", "")
        archs = c.get("architectures") or []
        if self.model_type not in ("qwen2", "qwen3", "llama"):
            raise ValueError(f"model_type {self.model_type!r} (architectures {archs}) is not qwen2/qwen3/llama")
        self.hidden = c["hidden_size"]
        self.n_layer = c["num_hidden_layers"]
        self.n_head = c["num_attention_heads"]
        self.n_head_kv = c.get("num_key_value_heads") or self.n_head
        # Qwen2/Llama: head_dim = hidden / heads unless given; Qwen3 configs give it.
        self.head_dim = c.get("head_dim") or self.hidden // self.n_head
        self.eps = float(c["rms_norm_eps"])
        self.theta = float(c.get("rope_theta", 10000.0))
        self.rope_scaling = c.get("rope_scaling")
        self.tie = bool(c.get("tie_word_embeddings", False))
        self.vocab = c["vocab_size"]
        self.max_pos = c.get("max_position_embeddings")
        self.ffn = c["intermediate_size"]
        # Qwen2: q/k/v always carry a bias, o_proj none. Llama and Qwen3: attention_bias covers
        # q, k, v and o; Llama's mlp_bias the three MLP projections.
        if self.model_type == "qwen2":
            self.qkv_bias, self.o_bias = True, False
        else:
            self.qkv_bias = self.o_bias = bool(c.get("attention_bias", False))
        self.mlp_bias = bool(c.get("mlp_bias", False)) if self.model_type == "llama" else False
        self.qk_norm = self.model_type == "qwen3"
        act = c.get("hidden_act", "silu")
        if act != "silu":
            raise ValueError(f"hidden_act {act!r} is not silu")


def inverse_frequencies(cfg):
    """RoPE inverse frequencies and the factor cos and sin are multiplied by
    (modeling_rope_utils: default, linear, llama3, yarn), in float64."""
    d = cfg.head_dim
    inv = 1.0 / (cfg.theta ** (torch.arange(0, d, 2, dtype=torch.float64) / d))
    rs = cfg.rope_scaling
    if not rs:
        return inv, 1.0
    kind = rs.get("rope_type", rs.get("type"))
    if kind == "default":
        return inv, 1.0
    if kind == "linear":
        return inv / float(rs["factor"]), 1.0
    if kind == "yarn":
        return yarn(cfg, inv, rs)
    if kind != "llama3":
        raise ValueError(f"rope_scaling {kind!r} is not supported here")
    factor = float(rs["factor"])
    low, high = float(rs["low_freq_factor"]), float(rs["high_freq_factor"])
    old = float(rs["original_max_position_embeddings"])
    low_wavelen, high_wavelen = old / low, old / high
    wavelen = 2 * math.pi / inv
    # wavelen < high_wavelen: unchanged; > low_wavelen: divided by factor; between: smoothed.
    inv_llama = torch.where(wavelen > low_wavelen, inv / factor, inv)
    smooth = (old / wavelen - low) / (high - low)
    smoothed = (1 - smooth) * inv_llama / factor + smooth * inv_llama
    medium = ~(wavelen < high_wavelen) & ~(wavelen > low_wavelen)
    return torch.where(medium, smoothed, inv_llama), 1.0


def yarn(cfg, inv, rs):
    """YaRN (_compute_yarn_parameters): frequencies that turn fewer than beta_slow times over the
    original context are interpolated (divided by factor), those that turn more than beta_fast
    times kept, a linear ramp over the dimensions between; cos and sin scaled by the attention
    factor 0.1 ln(factor) + 1."""
    d = cfg.head_dim
    factor = float(rs["factor"])
    original = rs.get("original_max_position_embeddings") or cfg.max_pos
    attention_factor = rs.get("attention_factor")
    if attention_factor is None:

        def get_mscale(scale, m=1.0):
            return 1.0 if scale <= 1 else 0.1 * m * math.log(scale) + 1.0

        mscale, mscale_all_dim = rs.get("mscale"), rs.get("mscale_all_dim")
        if mscale and mscale_all_dim:
            attention_factor = get_mscale(factor, mscale) / get_mscale(factor, mscale_all_dim)
        else:
            attention_factor = get_mscale(factor)
    beta_fast = rs.get("beta_fast") or 32
    beta_slow = rs.get("beta_slow") or 1

    def correction_dim(rotations):
        return (d * math.log(original / (rotations * 2 * math.pi))) / (2 * math.log(cfg.theta))

    low, high = correction_dim(beta_fast), correction_dim(beta_slow)
    if rs.get("truncate", True):
        low, high = math.floor(low), math.ceil(high)
    low, high = max(low, 0), min(high, d - 1)
    if low == high:
        high += 0.001
    ramp = torch.clamp((torch.arange(d // 2, dtype=torch.float64) - low) / (high - low), 0, 1)
    extrapolation = 1 - ramp
    return inv / factor * (1 - extrapolation) + inv * extrapolation, float(attention_factor)


def rms_norm(x, w, eps):
    return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


class Model:
    def __init__(self, config_json, weights):
        self.cfg = cfg = Config(config_json)
        self.w = weights

        def need(name, shape):
            if name not in weights:
                raise ValueError(f"missing tensor {name}")
            if list(weights[name].shape) != list(shape):
                raise ValueError(f"tensor {name} has shape {list(weights[name].shape)}, expected {list(shape)}")
            return weights[name]

        H, F, V, D = cfg.hidden, cfg.ffn, cfg.vocab, cfg.head_dim
        self.embed = need("model.embed_tokens.weight", [V, H])
        self.norm = need("model.norm.weight", [H])
        if cfg.tie or "lm_head.weight" not in weights:
            self.lm_head = self.embed
        else:
            self.lm_head = need("lm_head.weight", [V, H])
        self.layers = []
        q_dim, kv_dim = cfg.n_head * D, cfg.n_head_kv * D
        for i in range(cfg.n_layer):
            p = f"model.layers.{i}."
            L = {}
            L["in_norm"] = need(p + "input_layernorm.weight", [H])
            L["post_norm"] = need(p + "post_attention_layernorm.weight", [H])
            for k, rows in (("q", q_dim), ("k", kv_dim), ("v", kv_dim)):
                L[k] = need(p + f"self_attn.{k}_proj.weight", [rows, H])
                L[k + "_b"] = need(p + f"self_attn.{k}_proj.bias", [rows]) if cfg.qkv_bias else None
            L["o"] = need(p + "self_attn.o_proj.weight", [H, q_dim])
            L["o_b"] = need(p + "self_attn.o_proj.bias", [H]) if cfg.o_bias else None
            if cfg.qk_norm:
                L["q_norm"] = need(p + "self_attn.q_norm.weight", [D])
                L["k_norm"] = need(p + "self_attn.k_norm.weight", [D])
            L["gate"] = need(p + "mlp.gate_proj.weight", [F, H])
            L["up"] = need(p + "mlp.up_proj.weight", [F, H])
            L["down"] = need(p + "mlp.down_proj.weight", [H, F])
            for k in ("gate", "up", "down"):
                L[k + "_b"] = need(p + f"mlp.{k}_proj.bias", [L[k].shape[0]]) if cfg.mlp_bias else None
            self.layers.append(L)
        self.inv_freq, self.rope_scale = inverse_frequencies(cfg)

    @staticmethod
    def linear(x, w, b):
        y = x @ w.T
        return y + b if b is not None else y

    def forward(self, ids, cache, block, last_only=False):
        """Logits (T x vocab, or 1 x vocab with last_only) of `ids` placed after the cache's
        positions; extends the cache (per layer: keys after RoPE and values,
        [n_head_kv, positions, head_dim])."""
        cfg = self.cfg
        T, D = len(ids), cfg.head_dim
        past = cache["n"]
        pos = torch.arange(past, past + T, dtype=torch.float64)
        angles = torch.outer(pos, self.inv_freq)  # [T, D/2]
        emb = torch.cat((angles, angles), dim=-1)
        cos, sin = emb.cos() * self.rope_scale, emb.sin() * self.rope_scale  # [T, D]
        x = self.embed[torch.tensor(ids, dtype=torch.long)]
        group = cfg.n_head // cfg.n_head_kv
        scale = D ** -0.5
        for li, L in enumerate(self.layers):
            h = rms_norm(x, L["in_norm"], cfg.eps)
            q = self.linear(h, L["q"], L["q_b"]).view(T, cfg.n_head, D)
            k = self.linear(h, L["k"], L["k_b"]).view(T, cfg.n_head_kv, D)
            v = self.linear(h, L["v"], L["v_b"]).view(T, cfg.n_head_kv, D)
            if cfg.qk_norm:  # Qwen3: RMSNorm over each head, before RoPE
                q = rms_norm(q, L["q_norm"], cfg.eps)
                k = rms_norm(k, L["k_norm"], cfg.eps)
            q, k, v = q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1)  # [heads, T, D]
            q = q * cos + rotate_half(q) * sin
            k = k * cos + rotate_half(k) * sin
            if li in cache["k"]:
                k = torch.cat((cache["k"][li], k), dim=1)
                v = torch.cat((cache["v"][li], v), dim=1)
            cache["k"][li], cache["v"][li] = k, v
            # Grouped-query attention: query head j reads kv head j // group (repeat_kv), so the
            # queries are grouped by the kv head they read: [n_head_kv, group, T, D].
            qg = q.view(cfg.n_head_kv, group, T, D)
            kt = k.transpose(1, 2).unsqueeze(1)  # [n_head_kv, 1, D, S]
            vg = v.unsqueeze(1)  # [n_head_kv, 1, S, D]
            attn = torch.empty(cfg.n_head_kv, group, T, D, dtype=torch.float64)
            for q0 in range(0, T, block):
                q1 = min(T, q0 + block)
                n_keys = past + q1  # causal: keys past the block's last query are all masked
                s = (qg[:, :, q0:q1] @ kt[..., :n_keys]) * scale
                # Only keys at or after the block's first query can lie in a query's future.
                qpos = torch.arange(past + q0, past + q1).unsqueeze(1)
                kpos = torch.arange(past + q0, n_keys).unsqueeze(0)
                s[..., past + q0 :].masked_fill_(kpos > qpos, float("-inf"))
                attn[:, :, q0:q1] = torch.softmax(s, dim=-1) @ vg[:, :, :n_keys]
            attn = attn.view(cfg.n_head, T, D).transpose(0, 1).reshape(T, cfg.n_head * D)
            x = x + self.linear(attn, L["o"], L["o_b"])
            h = rms_norm(x, L["post_norm"], cfg.eps)
            gate = self.linear(h, L["gate"], L["gate_b"])
            up = self.linear(h, L["up"], L["up_b"])
            x = x + self.linear(torch.nn.functional.silu(gate) * up, L["down"], L["down_b"])
        cache["n"] = past + T
        if last_only:
            x = x[-1:]
        x = rms_norm(x, self.norm, cfg.eps)
        return x @ self.lm_head.T


def read_ids(arg):
    if os.path.exists(arg):
        with open(arg, encoding="utf-8") as f:
            text = f.read()
    else:
        text = arg
    return [int(t) for t in text.replace(",", " ").split()]


def argmax_lowest(row, n):
    return int(np.argmax(row.numpy()[:n] if n > 0 else row.numpy()))  # numpy: the first of equal maxima


def parser():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("snapshot", nargs="?")
    ap.add_argument("--ids")
    ap.add_argument("--logits")
    ap.add_argument("--last-only", action="store_true")
    ap.add_argument("--greedy", type=int, default=0)
    ap.add_argument("--greedy-vocab", type=int, default=0)
    ap.add_argument("--greedy-out")
    ap.add_argument("--greedy-logits")
    ap.add_argument("--block", type=int, default=512)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--batch")
    return ap


def run_job(a, models):
    if not a.snapshot or not a.ids:
        raise ValueError("a job needs a SNAPSHOT and --ids")
    t0 = time.time()
    key = os.path.realpath(a.snapshot)
    if key not in models:
        config, weights = load_snapshot(a.snapshot)
        models[key] = Model(config, weights)
        log(f"loaded {a.snapshot} ({models[key].cfg.model_type}, {len(weights)} tensors) in {time.time() - t0:.2f} s")
    model = models[key]
    ids = read_ids(a.ids)
    if not ids:
        raise ValueError("no token ids")
    bad = [i for i in ids if i < 0 or i >= model.cfg.vocab]
    if bad:
        raise ValueError(f"token id {bad[0]} is outside the vocabulary (0..{model.cfg.vocab - 1})")
    t1 = time.time()

    cache = {"n": 0, "k": {}, "v": {}}
    with torch.no_grad():
        logits = model.forward(ids, cache, max(1, a.block), a.last_only)
        t2 = time.time()
        log(f"prefill of {len(ids)} tokens in {t2 - t1:.2f} s")
        if a.logits:
            logits.numpy().astype("<f8").tofile(a.logits)
        generated, chosen_rows = [], []
        row = logits[-1]
        for _ in range(a.greedy):
            tok = argmax_lowest(row, a.greedy_vocab)
            generated.append(tok)
            chosen_rows.append(row)
            if len(generated) < a.greedy:
                row = model.forward([tok], cache, 1, True)[-1]
        if a.greedy:
            log(f"greedy decode of {a.greedy} tokens in {time.time() - t2:.2f} s")
        if a.greedy_out:
            with open(a.greedy_out, "w", encoding="utf-8") as f:
                f.write("".join(f"{t}\n" for t in generated))
        if a.greedy_logits and chosen_rows:
            torch.stack(chosen_rows).numpy().astype("<f8").tofile(a.greedy_logits)


def main():
    ap = parser()
    a = ap.parse_args()
    torch.set_num_threads(a.threads if a.threads > 0 else (os.cpu_count() or 1))
    models = {}
    if not a.batch:
        run_job(a, models)
        return
    # --batch JOBS: one job a line, written as this program's arguments (shell quoting); one
    # process and one load per snapshot for many runs.
    with open(a.batch, encoding="utf-8") as f:
        lines = [line for line in f.read().splitlines() if line.strip()]
    for n, line in enumerate(lines, 1):
        job = ap.parse_args(shlex.split(line))
        try:
            run_job(job, models)
        except (ValueError, KeyError, OSError) as e:
            raise ValueError(f"{a.batch}:{n}: {e}") from e


if __name__ == "__main__":
    try:
        main()
    except (ValueError, KeyError, OSError) as e:
        log(f"error: {e}")
        sys.exit(1)
