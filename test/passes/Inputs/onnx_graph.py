"""Small ONNX graphs for the raising passes' numeric tests.

`Graph` writes nodes the way exporters do; `compare` compiles a model with
`kilnc --emit=canonical` (returned, for counting the raised ops) and with
`kilnc --emit=graph` (the generated library alone: no kernels are called),
runs both that library and onnxruntime on the same random inputs, and
returns the largest absolute difference with a limit of 1e-5 of the
largest output.
"""
from __future__ import annotations

import argparse
import ctypes
import subprocess
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

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

    def model(self, inputs, out_shape, opset=17):
        """The model of the nodes so far; the last node's result is `y`.
        `inputs`: (name, shape[, element type]) tuples."""
        self.nodes[-1].output[0] = "y"
        graph = helper.make_graph(
            self.nodes, "g",
            [helper.make_tensor_value_info(i[0], i[2] if len(i) > 2 else F32, i[1])
             for i in inputs],
            [helper.make_tensor_value_info("y", F32, out_shape)], self.inits)
        m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
        m.ir_version = 8
        onnx.checker.check_model(m)
        return m


def load_graph(library: Path, inputs: list[np.ndarray], out_shape):
    """(run, out): `run()` calls the library's kiln_graph_run on `inputs`
    (kept alive by the caller) into `out`, raising on a non-zero status."""
    lib = ctypes.CDLL(str(library))
    arena_bytes = ctypes.c_int64.in_dll(lib, "kiln_graph_arena_bytes").value
    fn = lib.kiln_graph_run
    fn.restype = ctypes.c_int32
    fn.argtypes = [ctypes.c_void_p] * 4
    out = np.zeros(out_shape, dtype=np.float32)
    ins = (ctypes.c_void_p * len(inputs))(*[a.ctypes.data for a in inputs])
    outs = (ctypes.c_void_p * 1)(out.ctypes.data)
    arena = np.zeros(max(arena_bytes, 64) + 64, dtype=np.uint8)
    aligned = arena[(-arena.ctypes.data) % 64:].ctypes.data

    def run():
        status = fn(ins, outs, aligned, None)
        if status != 0:
            raise RuntimeError(f"kiln_graph_run returned {status}")

    run.keep = (lib, arena)  # the library and arena live as long as run
    return run, out


def run_graph(library: Path, inputs: list[np.ndarray], out_shape) -> np.ndarray:
    run, out = load_graph(library, inputs, out_shape)
    run()
    return out


def compare(kilnc: str, work: Path, name: str, model, feeds: dict):
    """(canonical IR, max |kiln - onnxruntime|, limit) for `model` on `feeds`."""
    path = work / f"{name}.onnx"
    onnx.save(model, path)
    canonical = subprocess.run(
        [kilnc, str(path), "--emit=canonical", "-o", "-"],
        check=True, capture_output=True, text=True).stdout
    library = work / f"{name}.so"
    subprocess.run([kilnc, str(path), "--emit=graph", "--force", "-o", str(library)],
                   check=True, capture_output=True)
    want = ort.InferenceSession(model.SerializeToString()).run(None, feeds)[0]
    got = run_graph(library, [np.ascontiguousarray(feeds[i.name])
                              for i in model.graph.input], want.shape)
    diff = float(np.max(np.abs(got - want)))
    return canonical, diff, 1e-5 * float(np.max(np.abs(want)))


def main(cases, feed, judge, kiln_opt=False) -> int:
    """The command line of a numeric raising test: `--kilnc BIN --work DIR`
    (and `--kiln-opt BIN` with kiln_opt). Each case returns (model,
    expected); `feed(input name, shape, rng)` makes an input;
    `judge(canonical IR, expected)` (with kiln_opt:
    `judge(canonical IR, expected, kiln-opt path)`) returns (whether the
    ops are as expected, their description). Prints one line per case,
    `NAME: DESCRIPTION, max|diff| D (limit L) ok|FAIL`; returns the exit
    status."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--kilnc", required=True)
    if kiln_opt:
        ap.add_argument("--kiln-opt", required=True)
    ap.add_argument("--work", required=True, type=Path)
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    failed = 0
    for case in cases:
        model, expected = case()
        feeds = {}
        for inp in model.graph.input:
            shape = [d.dim_value for d in inp.type.tensor_type.shape.dim]
            feeds[inp.name] = feed(inp.name, shape, rng)
        canonical, diff, limit = compare(args.kilnc, args.work, case.__name__,
                                         model, feeds)
        raised, description = (judge(canonical, expected, args.kiln_opt)
                               if kiln_opt else judge(canonical, expected))
        ok = raised and diff <= limit
        failed += not ok
        print(f"{case.__name__}: {description}, max|diff| {diff:.2e} "
              f"(limit {limit:.2e}) {'ok' if ok else 'FAIL'}")
    return 1 if failed else 0
