#!/usr/bin/env python3
"""Residual adds computed by their norm's loop, checked against onnxruntime.

Each case adds two tensors of one shape and normalizes the sum (RMSNorm or
LayerNorm with a bias, over the last axis or the last two), where the norm
is the sum's only reader (the sum is kept in the norm's output) or the sum
is read again after it (stored into the add's buffer), also as two layers
of a residual stream. It compiles the case with `kilnc --emit=canonical`,
lowers that with `kiln-opt --convert-kiln-to-loops=graph=true` to count the
adds that kept a loop of their own, and runs `kilnc --emit=graph`'s library
against onnxruntime (onnx_graph.compare). Prints one line per case:

  NAME: N add loops, max|diff| D (limit L) ok|FAIL

Usage: add_norm_numeric.py --kilnc BIN --kiln-opt BIN --work DIR
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "passes" / "Inputs"))
from onnx_graph import Graph, main  # noqa: E402

R, F = 6, 40
SHAPE = [1, R, F]
F32 = np.float32


def inputs(*names, shape=SHAPE):
    return [(n, shape) for n in names]


def rms(g, x):
    return g.op("RMSNormalization", x, g.const(np.linspace(0.5, 1.5, F), F32),
                axis=-1, epsilon=1e-5)


def layer_norm(g, x, shape=(F,), axis=-1):
    size = int(np.prod(shape))
    w = g.const(np.linspace(0.5, 1.5, size).reshape(shape), F32)
    b = g.const(np.linspace(-0.2, 0.2, size).reshape(shape), F32)
    return g.op("LayerNormalization", x, w, b, axis=axis, epsilon=1e-5)


def rms_final():
    """RMSNorm(a + b): the norm is the sum's only reader."""
    g = Graph()
    rms(g, g.op("Add", "a", "b"))
    return g.model(inputs("a", "b"), SHAPE, opset=23), 0


def rms_stored():
    """RMSNorm(s) + s: the sum is read again after the norm."""
    g = Graph()
    s = g.op("Add", "a", "b")
    g.op("Add", rms(g, s), s)
    return g.model(inputs("a", "b"), SHAPE, opset=23), 1


def layer_norm_final():
    g = Graph()
    layer_norm(g, g.op("Add", "a", "b"))
    return g.model(inputs("a", "b"), SHAPE), 0


def layer_norm_layers():
    """Two layers of GPT-2's residual stream: s1 = a + b is normalized and
    read by s2 = s1 + LN(LN(s1)), which the last norm reads alone."""
    g = Graph()
    s1 = g.op("Add", "a", "b")
    s2 = g.op("Add", s1, layer_norm(g, layer_norm(g, s1)))
    layer_norm(g, s2)
    return g.model(inputs("a", "b"), SHAPE), 0


def layer_norm_two_axes():
    """A norm over the last two axes: R rows of 4 x 10."""
    g = Graph()
    layer_norm(g, g.op("Add", "a", "b"), shape=(4, 10), axis=-2)
    return g.model(inputs("a", "b", shape=[R, 4, 10]), [R, 4, 10]), 0


def same_operand():
    """RMSNorm(a + a): one buffer read as both operands."""
    g = Graph()
    rms(g, g.op("Add", "a", "a"))
    return g.model(inputs("a"), SHAPE, opset=23), 0


def broadcast():
    """A bias broadcast over the rows: the add keeps its loop."""
    g = Graph()
    rms(g, g.op("Add", "a", "b"))
    return g.model([("a", SHAPE), ("b", [F])], SHAPE, opset=23), 1


CASES = [rms_final, rms_stored, layer_norm_final, layer_norm_layers,
         layer_norm_two_axes, same_operand, broadcast]


def feed(name, shape, rng):
    return (rng.standard_normal(shape) * 3).astype(F32)


def judge(canonical, want_loops, kiln_opt):
    """The adds that kept a loop of their own after the CPU lowering."""
    loops = subprocess.run(
        [kiln_opt, "-", "--convert-kiln-to-loops=graph=true"], input=canonical,
        check=True, capture_output=True, text=True).stdout
    count = loops.count("call @__kiln_add_")
    return count == want_loops, f"{count} add loops"


if __name__ == "__main__":
    sys.exit(main(CASES, feed, judge, kiln_opt=True))
