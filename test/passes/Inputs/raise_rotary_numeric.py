#!/usr/bin/env python3
"""--kiln-raise-rotary on small ONNX graphs, checked against onnxruntime.

Each case writes RoPE the way an exporter does (Llama's rotate_half with an
attention scaling factor, GPT-NeoX's partial rotary, GPT-J's interleaved
rotate_every_two with repeat_interleave'd angles, and angles whose halves
differ, which must not be raised), compiles it with `kilnc --emit=canonical`
to count the kiln.rotary ops and with `kilnc --emit=graph` to run it (the
generated library alone: no kernels are called), and compares the result
with onnxruntime's. Prints one line per case:

  NAME: R kiln.rotary, N kiln.neg, max|diff| D (limit L) ok|FAIL

Usage: raise_rotary_numeric.py --kilnc BIN --work DIR
"""
from __future__ import annotations

import sys

import numpy as np
from onnx import TensorProto, numpy_helper

from onnx_graph import Graph, main

B, H, S, D = 2, 3, 5, 16
OUT = [B, H, S, D]


def rotate_half(g, x, d):
    return g.op("Concat", g.op("Neg", g.slice(x, d // 2, 2**62)),
                g.slice(x, 0, d // 2), axis=-1)


def rotate_every_two(g, x, d):
    odd = g.unsqueeze(g.op("Neg", g.slice(x, 1, 2**62, 2)), -1)
    even = g.unsqueeze(g.slice(x, 0, 2**62, 2), -1)
    stacked = g.op("Concat", odd, even, axis=-1)  # torch.stack(.., -1)
    return g.op("Reshape", stacked, g.const([B, H, S, d]))  # flatten(-2)


def rope(g, x, cos, sin, rotate, d):
    return g.op("Add", g.op("Mul", x, cos), g.op("Mul", rotate(g, x, d), sin))


def llama():
    """Llama 3 / SmolLM2: cat(freqs, freqs), cos * attention_scaling."""
    g = Graph()
    emb = g.op("Concat", "theta", "theta", axis=-1)
    scale = g.const(1.25, np.float32)
    cos = g.unsqueeze(g.op("Mul", g.op("Cos", emb), scale), 1)
    sin = g.unsqueeze(g.op("Mul", g.op("Sin", emb), scale), 1)
    rope(g, "x", cos, sin, rotate_half, D)
    return g.model([("x", [B, H, S, D]), ("theta", [B, S, D // 2])], OUT), 1


def neox_partial():
    """GPT-NeoX / Phi: rotate the first 8 of 16, pass the rest through."""
    g = Graph()
    r = 8
    emb = g.op("Concat", "theta", "theta", axis=-1)
    cos = g.unsqueeze(g.op("Cos", emb), 1)
    sin = g.unsqueeze(g.op("Sin", emb), 1)
    xr, xp = g.slice("x", 0, r), g.slice("x", r, 2**62)
    g.op("Concat", rope(g, xr, cos, sin, rotate_half, r), xp, axis=-1)
    return g.model([("x", [B, H, S, D]), ("theta", [B, S, r // 2])], OUT), 1


def gptj_interleaved():
    """GPT-J: rotate_every_two on the first 8, angles repeat_interleave'd
    (cos by unsqueeze + concat, sin by unsqueeze + expand), flattened."""
    g = Graph()
    r = 8
    u = g.unsqueeze("theta", -1)  # [B, S, 4, 1]
    cos_rep = g.op("Reshape", g.op("Concat", u, u, axis=-1), g.const([B, S, r]))
    sin_rep = g.op("Reshape", g.op("Expand", u, g.const([B, S, r // 2, 2])),
                   g.const([B, S, r]))
    cos = g.unsqueeze(g.op("Cos", cos_rep), 1)
    sin = g.unsqueeze(g.op("Sin", sin_rep), 1)
    xr, xp = g.slice("x", 0, r), g.slice("x", r, 2**62)
    g.op("Concat", rope(g, xr, cos, sin, rotate_every_two, r), xp, axis=-1)
    return g.model([("x", [B, H, S, D]), ("theta", [B, S, r // 2])], OUT), 1


def gptj_torch_onnx():
    """GPT-J as torch.onnx writes it: q in [batch, seq, heads, d] rotated
    before the heads move, sin/cos the two halves of a gathered table (a
    weight: nothing is known of its values), repeat_interleave as
    unsqueeze + tile + reshape, partial rotary, then the transpose to
    [batch, heads, seq, d] (the output)."""
    g = Graph()
    r, max_pos = 8, 8
    table = np.random.default_rng(1).standard_normal((max_pos, r)).astype(np.float32)
    g.inits.append(numpy_helper.from_array(table, "embed_positions"))
    sincos = g.op("Gather", "embed_positions", "pos", axis=0)  # [B, S, r]
    def repeat_interleave(v):  # [B, S, r/2] -> [B, S, 1, r]
        u = g.unsqueeze(g.unsqueeze(v, 2), 4)  # [B, S, 1, r/2, 1]
        t = g.op("Tile", u, g.const([1, 1, 1, 1, 2]))
        return g.op("Reshape", t, g.const([B, S, 1, r]))
    sin = repeat_interleave(g.slice(sincos, 0, r // 2))
    cos = repeat_interleave(g.slice(sincos, r // 2, r))
    xr, xp = g.slice("x", 0, r), g.slice("x", r, 2**62)
    def rotate(g, x, d):
        odd = g.unsqueeze(g.op("Neg", g.slice(x, 1, 2**62, 2)), -1)
        even = g.unsqueeze(g.slice(x, 0, 2**62, 2), -1)
        return g.op("Reshape", g.op("Concat", odd, even, axis=-1),
                    g.const([B, S, H, d]))
    q = g.op("Concat", rope(g, xr, cos, sin, rotate, r), xp, axis=-1)
    g.op("Transpose", q, perm=[0, 2, 1, 3])
    return g.model([("x", [B, S, H, D]), ("pos", [B, S], TensorProto.INT64)], OUT), 1


def halves_differ():
    """cat(theta, theta2): the halves may differ, so nothing is raised."""
    g = Graph()
    emb = g.op("Concat", "theta", "theta2", axis=-1)
    cos = g.unsqueeze(g.op("Cos", emb), 1)
    sin = g.unsqueeze(g.op("Sin", emb), 1)
    rope(g, "x", cos, sin, rotate_half, D)
    return g.model([("x", [B, H, S, D]), ("theta", [B, S, D // 2]),
                         ("theta2", [B, S, D // 2])], OUT), 0


CASES = [llama, neox_partial, gptj_interleaved, gptj_torch_onnx, halves_differ]


def feed(name, shape, rng):
    if name == "pos":
        return rng.integers(0, 8, shape).astype(np.int64)
    scale = 4.0 if name.startswith("theta") else 1.0
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def judge(canonical, want_rotary):
    rotary, neg = canonical.count("kiln.rotary"), canonical.count("kiln.neg")
    ok = rotary == want_rotary and (want_rotary == 0 or neg == 0)
    return ok, f"{rotary} kiln.rotary, {neg} kiln.neg"


if __name__ == "__main__":
    sys.exit(main(CASES, feed, judge))
