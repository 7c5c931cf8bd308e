#!/usr/bin/env python3
"""ONNX's backend node tests executed by kiln's CPU backend, numerically.

run_node_tests.py checks that kiln IMPORTS each node test with the right
result types. This runner goes on with every node test whose import passes
(its supported ops, minus its xfail.txt): it compiles the model with
`kilnc --emit=graph` (the whole graph, static shapes, no KV cache: a shared
library exporting `kiln_graph_run`, see codegen/cpu/CpuPasses.td), runs it on
`test_data_set_0/input_N.pb` and compares with `output_N.pb`, the outputs
ONNX's reference implementation produced:

  * floating point: |got - want| <= atol + rtol * |want| elementwise with
    rtol 1e-3 and atol 1e-5 (ONNX's own runner uses rtol 1e-3, atol 1e-7; a
    float32 kernel against a float64 reference needs the small absolute
    slack near zero), NaN where the reference has NaN;
  * integers and booleans: exactly equal;
  * the output shapes and element types must be the reference's.

Generated code runs in a worker process so that a crash is reported as a
crash of that test (and fails the run even when listed) instead of killing
the runner.

Expected failures live in xfail-numeric.txt (same format as xfail.txt: a
test name and a short reason per line); a listed test that passes fails the
run until it is removed; `--update-xfail` rewrites the list. The last line
is `N passed, M failed, K skipped` (skipped = expected failures).

Usage:
  run_node_tests_numeric.py --kilnc BIN --libkiln SO [-j N] [--filter S]
                            [--work DIR] [--update-xfail] [-v]
"""
from __future__ import annotations

import argparse
import ctypes
import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run_node_tests as imports  # noqa: E402  (data, selection, xfail files)

XFAIL_FILE = imports.SCRIPT_DIR / "xfail-numeric.txt"
RTOL, ATOL = 1e-3, 1e-5


# ---- the worker: loads a compiled graph and runs it on the test's data ----

def load_tensors(test_dir: Path, kind: str) -> list[np.ndarray]:
    data = test_dir / "test_data_set_0"
    out = []
    for i in range(len(list(data.glob(f"{kind}_*.pb")))):
        t = onnx.TensorProto()
        t.ParseFromString((data / f"{kind}_{i}.pb").read_bytes())
        out.append(numpy_helper.to_array(t))
    return out


def aligned(nbytes: int) -> np.ndarray:
    raw = np.zeros(nbytes + 64, dtype=np.uint8)
    skip = (-raw.ctypes.data) % 64
    return raw[skip:skip + nbytes]


def execute(libkiln, library: str, test_dir: Path) -> dict:
    lib = ctypes.CDLL(library)
    arena_bytes = ctypes.c_int64.in_dll(lib, "kiln_graph_arena_bytes").value
    run = lib.kiln_graph_run
    run.restype = ctypes.c_int32
    run.argtypes = [ctypes.c_void_p] * 4
    inputs = [np.ascontiguousarray(a) for a in load_tensors(test_dir, "input")]
    wants = load_tensors(test_dir, "output")
    outputs = [np.zeros(w.shape, dtype=w.dtype) for w in wants]
    in_ptrs = (ctypes.c_void_p * max(1, len(inputs)))(
        *[a.ctypes.data for a in inputs])
    out_ptrs = (ctypes.c_void_p * max(1, len(outputs)))(
        *[a.ctypes.data for a in outputs])
    arena = aligned(max(arena_bytes, 64))
    status = run(in_ptrs, out_ptrs, arena.ctypes.data, libkiln.kiln_cpu_kernels())
    if status != 0:
        return {"status": "fail", "reason": f"kiln_graph_run returned {status}"}
    for i, (got, want) in enumerate(zip(outputs, wants)):
        if want.dtype.kind not in "fcbiu":  # bfloat16, float8 (ml_dtypes)
            got, want = got.astype(np.float32), want.astype(np.float32)
        if want.dtype.kind in "fc":
            bad = ~np.isclose(got, want, rtol=RTOL, atol=ATOL, equal_nan=True)
        else:
            bad = got != want
        if np.any(bad):
            at = tuple(int(x) for x in np.argwhere(bad)[0])
            return {"status": "fail",
                    "reason": f"output {i}: {int(bad.sum())} of {want.size} "
                              f"elements differ; at {at} got {got[at]!r}, "
                              f"want {want[at]!r}"}
    return {"status": "pass", "reason": ""}


def worker(libkiln_path: str) -> int:
    """Reads `library<TAB>test_dir` lines; answers one JSON line each."""
    libkiln = ctypes.CDLL(libkiln_path)
    libkiln.kiln_cpu_kernels.restype = ctypes.c_void_p
    for line in sys.stdin:
        library, test_dir = line.rstrip("\n").split("\t")
        try:
            result = execute(libkiln, library, Path(test_dir))
        except Exception as e:  # data the harness cannot feed, etc.
            result = {"status": "fail",
                      "reason": f"harness: {type(e).__name__}: {e}"}
        print(json.dumps(result), flush=True)
    return 0


class Worker:
    """A worker process, restarted after a crash."""

    def __init__(self, libkiln: str):
        self.libkiln = libkiln
        self.proc = None

    def run(self, library: Path, test_dir: Path) -> dict:
        if self.proc is None or self.proc.poll() is not None:
            self.proc = subprocess.Popen(
                [sys.executable, __file__, "--worker", "--libkiln", self.libkiln],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.proc.stdin.write(f"{library}\t{test_dir}\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            code = self.proc.wait()
            self.proc = None
            return {"status": "crash",
                    "reason": f"the compiled graph crashed (exit {code})"}
        return json.loads(line)

    def close(self):
        if self.proc is not None:
            self.proc.stdin.close()
            self.proc.wait()


# ---- the driver ----

def compile_and_run(args, test_dir: Path, workers: dict) -> imports.Result:
    library = args.work / f"{test_dir.name}.so"
    cmd = [str(args.kilnc), str(test_dir / "model.onnx"), "--emit=graph",
           "-o", str(library), "--force", "--quiet"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True,
                              timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return imports.Result(test_dir.name, "timeout",
                              f"kilnc ran past {args.timeout:g} s")
    if proc.returncode < 0 or proc.returncode >= 128:
        return imports.Result(test_dir.name, "crash",
                              f"kilnc crashed (exit {proc.returncode}): "
                              f"{imports._first_line(proc.stderr)}")
    if proc.returncode != 0:
        errors = [l for l in proc.stderr.splitlines() if "error" in l]
        reason = errors[0] if errors else imports._first_line(proc.stderr)
        # Drop the file path: the reason is about the op, not where it is.
        reason = reason.split(": error: ", 1)[-1]
        return imports.Result(test_dir.name, "fail", reason)
    w = workers.setdefault(threading.get_ident(), Worker(str(args.libkiln)))
    result = w.run(library, test_dir)
    library.unlink(missing_ok=True)
    return imports.Result(test_dir.name, result["status"], result["reason"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kilnc", type=Path,
                    default=imports.REPO_ROOT / "build" / "bin" / "kilnc")
    ap.add_argument("--libkiln", type=Path,
                    default=imports.REPO_ROOT / "build" / "lib" / "libkiln.so")
    ap.add_argument("--data-dir", type=Path)
    ap.add_argument("--work", type=Path,
                    default=imports.REPO_ROOT / "build" / "node-tests-numeric")
    ap.add_argument("--filter", default="")
    ap.add_argument("-j", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=60.0,
                    help="seconds per compile (default: %(default)s)")
    ap.add_argument("--xfail", type=Path, default=XFAIL_FILE)
    ap.add_argument("--update-xfail", action="store_true")
    ap.add_argument("-v", "--verbose", action="store_true")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(str(args.libkiln))

    for tool in (args.kilnc, args.libkiln):
        if not tool.is_file():
            print(f"error: {tool} does not exist (build it)", file=sys.stderr)
            return 2
    args.kilnc, args.libkiln = args.kilnc.resolve(), args.libkiln.resolve()
    args.work.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    data_dir = args.data_dir or imports.default_data_dir()
    all_tests = sorted(p.parent for p in data_dir.glob("test_*/model.onnx"))
    import_xfail = imports.read_xfail(imports.XFAIL_FILE)
    selected = [t for t in all_tests
                if args.filter in t.name and t.name not in import_xfail
                and not imports.unsupported_ops(t / "model.onnx")]
    print(f"{len(all_tests)} ONNX node tests (onnx {onnx.__version__}); "
          f"{len(selected)} import correctly and are executed")

    workers: dict = {}
    with ThreadPoolExecutor(max_workers=max(1, args.j)) as pool:
        results = list(pool.map(lambda t: compile_and_run(args, t, workers),
                                selected))
    for w in workers.values():
        w.close()

    o = imports.Outcome.of(results, args)
    if args.verbose:
        for r in o.expected_fail:
            print(f"XFAIL: {r.name}: {r.reason}")
    # Why the expected failures fail, most common first.
    reasons: dict[str, int] = {}
    for r in o.expected_fail:
        key = imports.category(r.reason)
        reasons[key] = reasons.get(key, 0) + 1
    for key, n in sorted(reasons.items(), key=lambda kv: -kv[1])[:8]:
        print(f"  {n:4d} expected failures: {key}")
    print(f"onnx node tests (executed): "
          f"{imports.pct(len(o.passed), len(results))}, "
          f"{len(o.expected_fail)} expected failures, {len(o.unexpected_fail)} "
          f"unexpected failures, {len(o.crashes)} crashes, "
          f"{len(o.unexpected_pass)} unexpected passes; "
          f"{time.monotonic() - t0:.1f} s with -j {args.j}")
    print(f"{len(o.passed) - len(o.unexpected_pass)} passed, "
          f"{o.failed_count()} failed, {len(o.expected_fail)} skipped")
    return 1 if o.failed_count() else 0


if __name__ == "__main__":
    sys.exit(main())
