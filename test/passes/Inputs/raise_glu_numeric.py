#!/usr/bin/env python3
"""--kiln-raise-glu on small ONNX graphs, checked against onnxruntime.

Each case writes a gated activation the way an exporter does (SwiGLU as
Llama writes it and regrouped, GeGLU with the erf and tanh GELUs written
out, ReGLU, sigmoid GLU) or a product that must not be raised (a plain
SiLU, an `up` broadcast along the rows), compiles it, counts the
kiln.glu ops of the canonical IR and runs the generated code against
onnxruntime (onnx_graph.compare). Prints one line per case:

  NAME: N kiln.glu ACTIVATIONS, max|diff| D (limit L) ok|FAIL

Usage: raise_glu_numeric.py --kilnc BIN --work DIR
"""
from __future__ import annotations

import math
import re
import sys

import numpy as np

from onnx_graph import Graph, main

R, F = 6, 40
SHAPE = [R, F]


def inputs(up_shape=SHAPE):
    return [("g", SHAPE), ("u", up_shape)]


def swiglu_llama():
    """transformers' LlamaMLP: act_fn(gate_proj(x)) * up_proj(x), SiLU as
    torch.onnx writes it."""
    g = Graph()
    silu = g.op("Mul", "g", g.op("Sigmoid", "g"))
    g.op("Mul", silu, "u")
    return g.model(inputs(), SHAPE), "silu"


def swiglu_regrouped():
    """sigmoid(g) * (u * g): the same factors, another grouping."""
    g = Graph()
    g.op("Mul", g.op("Sigmoid", "g"), g.op("Mul", "u", "g"))
    return g.model(inputs(), SHAPE), "silu"


def gelu_erf(g, x):
    """0.5 * x * (1 + erf(x / sqrt(2))), as GPT-NeoX / BERT exports write it."""
    e = g.op("Erf", g.op("Div", x, g.const(math.sqrt(2.0), np.float32)))
    one_plus = g.op("Add", e, g.const(1.0, np.float32))
    return g.op("Mul", g.op("Mul", x, g.const(0.5, np.float32)), one_plus)


def gelu_tanh(g, x):
    """0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x^3)))."""
    cube = g.op("Pow", x, g.const(3.0, np.float32))
    inner = g.op("Add", x, g.op("Mul", cube, g.const(0.044715, np.float32)))
    t = g.op("Tanh", g.op("Mul", inner, g.const(math.sqrt(2 / math.pi), np.float32)))
    one_plus = g.op("Add", g.const(1.0, np.float32), t)
    return g.op("Mul", g.const(0.5, np.float32), g.op("Mul", x, one_plus))


def geglu_erf():
    g = Graph()
    g.op("Mul", "u", gelu_erf(g, "g"))
    return g.model(inputs(), SHAPE), "gelu"


def geglu_tanh():
    """Gemma: gelu_pytorch_tanh(gate) * up."""
    g = Graph()
    g.op("Mul", gelu_tanh(g, "g"), "u")
    return g.model(inputs(), SHAPE), "gelu_tanh"


def reglu():
    g = Graph()
    g.op("Mul", g.op("Relu", "g"), "u")
    return g.model(inputs(), SHAPE), "relu"


def glu_sigmoid():
    g = Graph()
    g.op("Mul", "u", g.op("Sigmoid", "g"))
    return g.model(inputs(), SHAPE), "sigmoid"


def silu_alone():
    """x * sigmoid(x) gates nothing: not raised."""
    g = Graph()
    g.op("Mul", g.op("Sigmoid", "g"), "g")
    return g.model([("g", SHAPE)], SHAPE), None


def up_broadcast():
    """An `up` of one row broadcast over all: not raised."""
    g = Graph()
    g.op("Mul", g.op("Mul", "g", g.op("Sigmoid", "g")), "u")
    return g.model(inputs([1, F]), SHAPE), None


CASES = [swiglu_llama, swiglu_regrouped, geglu_erf, geglu_tanh, reglu,
         glu_sigmoid, silu_alone, up_broadcast]


def feed(name, shape, rng):
    return (rng.standard_normal(shape) * 3).astype(np.float32)


def judge(canonical, want):
    acts = re.findall(r'kiln\.glu .*activation = "(\w+)"', canonical)
    return acts == ([want] if want else []), f"{len(acts)} kiln.glu {' '.join(acts)}"


if __name__ == "__main__":
    sys.exit(main(CASES, feed, judge))
