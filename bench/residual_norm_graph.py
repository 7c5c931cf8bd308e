#!/usr/bin/env python3
"""Residual add + RMSNorm as a residual stream, kiln's generated loops
against onnxruntime on the same ONNX graph.

The graph: L layers of `s = s + x; x = RMSNorm(s)` on [1, T, F] f32 (each
sum read by its norm and by the next add, as in a decoder), compiled with
`kilnc --emit=graph` (loops only, one thread, no kernels) by each `--kilnc`
given, and run by onnxruntime with one intra-op thread. Prints, per
implementation, the best and median microseconds per add + norm pair over
the repeats, the ratio to onnxruntime, and the largest difference of the
outputs from onnxruntime's.

Usage: residual_norm_graph.py --kilnc BIN [--kilnc BIN ...] [--tokens T]
       [--layers L] [--repeats R] [--work DIR]
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "test" / "passes" / "Inputs"))
from onnx_graph import Graph, load_graph  # noqa: E402

F = 576  # SmolLM2-135M's hidden size


def timed(run, calls: int, repeats: int, pairs: int) -> list[float]:
    """Microseconds per add + norm pair, one figure per repeat."""
    for _ in range(calls // 10 + 1):
        run()
    figures = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            run()
        figures.append((time.perf_counter() - start) / calls / pairs * 1e6)
    return figures


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kilnc", action="append", required=True)
    ap.add_argument("--tokens", type=int, default=256)
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--calls", type=int, default=100)
    ap.add_argument("--work", type=Path)
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="kiln-addnorm-"))
    work.mkdir(parents=True, exist_ok=True)

    g = Graph()
    s, x = "a", "b"
    for _ in range(args.layers):
        s = g.op("Add", s, x)
        x = g.op("RMSNormalization", s, "w", axis=-1, epsilon=1e-5)
    shape = [1, args.tokens, F]
    model = g.model([("a", shape), ("b", shape), ("w", [F])], shape, opset=23)
    path = work / "residual_norm.onnx"
    onnx.save(model, path)
    rng = np.random.default_rng(0)
    feeds = {"a": rng.standard_normal(shape).astype(np.float32),
             "b": rng.standard_normal(shape).astype(np.float32),
             "w": np.linspace(0.5, 1.5, F).astype(np.float32)}

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), options)
    want = session.run(None, feeds)[0]
    ort_us = timed(lambda: session.run(None, feeds), args.calls, args.repeats,
                   args.layers)
    rows = [("onnxruntime", ort_us, 0.0)]
    for i, kilnc in enumerate(args.kilnc):
        library = work / f"kiln{i}.so"
        subprocess.run([kilnc, str(path), "--emit=graph", "--force", "-o", str(library)],
                       check=True, capture_output=True)
        run, out = load_graph(library, [feeds["a"], feeds["b"], feeds["w"]], shape)
        us = timed(run, args.calls, args.repeats, args.layers)
        rows.append((kilnc, us, float(np.max(np.abs(out - want)))))

    print(f"{args.layers} x (add + RMSNorm) on [1, {args.tokens}, {F}] f32, 1 thread, "
          f"{args.repeats} repeats of {args.calls} calls")
    base = statistics.median(ort_us)
    print(f"{'implementation':<48} {'best us':>8} {'median us':>10} {'vs ort':>7} {'max|diff|':>10}")
    for name, us, diff in rows:
        med = statistics.median(us)
        print(f"{name:<48} {min(us):8.1f} {med:10.1f} {base / med:7.2f} {diff:10.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
