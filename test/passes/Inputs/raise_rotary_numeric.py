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

import argparse
import ctypes
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

B, H, S, D = 2, 3, 5, 16
F32 = TensorProto.FLOAT


class Graph:
    def __init__(self):
        self.nodes, self.inits, self.n = [], [], 0

    def const(self, value, dtype=np.int64):
        self.n += 1
        name = f"c{self.n}"
        self.inits.append(numpy_helper.from_array(np.array(value, dtype=dtype), name))
        return name

    def op(self, kind, *inputs, **attrs):
        self.n += 1
        out = f"t{self.n}"
        self.nodes.append(helper.make_node(kind, list(inputs), [out], **attrs))
        return out

    def slice(self, x, start, end, step=1, axis=-1):
        return self.op("Slice", x, self.const([start]), self.const([end]),
                       self.const([axis]), self.const([step]))

    def unsqueeze(self, x, axis):
        return self.op("Unsqueeze", x, self.const([axis]))

    def model(self, inputs):
        """The model of the nodes so far; the last node's result is `y`."""
        self.nodes[-1].output[0] = "y"
        graph = helper.make_graph(
            self.nodes, "rope",
            [helper.make_tensor_value_info(i[0], i[2] if len(i) > 2 else F32, i[1])
             for i in inputs],
            [helper.make_tensor_value_info("y", F32, [B, H, S, D])], self.inits)
        m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        m.ir_version = 8
        return m


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
    return g.model([("x", [B, H, S, D]), ("theta", [B, S, D // 2])]), 1


def neox_partial():
    """GPT-NeoX / Phi: rotate the first 8 of 16, pass the rest through."""
    g = Graph()
    r = 8
    emb = g.op("Concat", "theta", "theta", axis=-1)
    cos = g.unsqueeze(g.op("Cos", emb), 1)
    sin = g.unsqueeze(g.op("Sin", emb), 1)
    xr, xp = g.slice("x", 0, r), g.slice("x", r, 2**62)
    g.op("Concat", rope(g, xr, cos, sin, rotate_half, r), xp, axis=-1)
    return g.model([("x", [B, H, S, D]), ("theta", [B, S, r // 2])]), 1


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
    return g.model([("x", [B, H, S, D]), ("theta", [B, S, r // 2])]), 1


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
    return g.model([("x", [B, S, H, D]), ("pos", [B, S], TensorProto.INT64)]), 1


def halves_differ():
    """cat(theta, theta2): the halves may differ, so nothing is raised."""
    g = Graph()
    emb = g.op("Concat", "theta", "theta2", axis=-1)
    cos = g.unsqueeze(g.op("Cos", emb), 1)
    sin = g.unsqueeze(g.op("Sin", emb), 1)
    rope(g, "x", cos, sin, rotate_half, D)
    return g.model([("x", [B, H, S, D]), ("theta", [B, S, D // 2]),
                         ("theta2", [B, S, D // 2])]), 0


CASES = [llama, neox_partial, gptj_interleaved, gptj_torch_onnx, halves_differ]


def run_graph(library: Path, inputs: list[np.ndarray], out_shape) -> np.ndarray:
    lib = ctypes.CDLL(str(library))
    arena_bytes = ctypes.c_int64.in_dll(lib, "kiln_graph_arena_bytes").value
    run = lib.kiln_graph_run
    run.restype = ctypes.c_int32
    run.argtypes = [ctypes.c_void_p] * 4
    out = np.zeros(out_shape, dtype=np.float32)
    ins = (ctypes.c_void_p * len(inputs))(*[a.ctypes.data for a in inputs])
    outs = (ctypes.c_void_p * 1)(out.ctypes.data)
    arena = np.zeros(max(arena_bytes, 64) + 64, dtype=np.uint8)
    skip = (-arena.ctypes.data) % 64
    status = run(ins, outs, arena[skip:].ctypes.data, None)
    if status != 0:
        raise RuntimeError(f"kiln_graph_run returned {status}")
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kilnc", required=True)
    ap.add_argument("--work", required=True, type=Path)
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    failed = 0
    for case in CASES:
        name = case.__name__
        model, want_rotary = case()
        onnx.checker.check_model(model)
        path = args.work / f"{name}.onnx"
        onnx.save(model, path)
        canonical = subprocess.run(
            [args.kilnc, str(path), "--emit=canonical", "-o", "-"],
            check=True, capture_output=True, text=True).stdout
        rotary, neg = canonical.count("kiln.rotary"), canonical.count("kiln.neg")
        library = args.work / f"{name}.so"
        subprocess.run([args.kilnc, str(path), "--emit=graph", "--force", "-o", str(library)],
                       check=True, capture_output=True)
        feeds = {}
        for inp in model.graph.input:
            shape = [d.dim_value for d in inp.type.tensor_type.shape.dim]
            if inp.name == "pos":
                feeds[inp.name] = rng.integers(0, 8, shape).astype(np.int64)
                continue
            scale = 4.0 if inp.name.startswith("theta") else 1.0
            feeds[inp.name] = (rng.standard_normal(shape) * scale).astype(np.float32)
        want = ort.InferenceSession(model.SerializeToString()).run(None, feeds)[0]
        got = run_graph(library, [np.ascontiguousarray(feeds[i.name])
                                  for i in model.graph.input], want.shape)
        diff = float(np.max(np.abs(got - want)))
        limit = 1e-5 * float(np.max(np.abs(want)))
        ok = diff <= limit and rotary == want_rotary and (want_rotary == 0 or neg == 0)
        failed += not ok
        print(f"{name}: {rotary} kiln.rotary, {neg} kiln.neg, max|diff| "
              f"{diff:.2e} (limit {limit:.2e}) {'ok' if ok else 'FAIL'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
