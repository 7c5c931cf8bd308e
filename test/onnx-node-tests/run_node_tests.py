#!/usr/bin/env python3
"""Import conformance of kiln against ONNX's own backend node tests.

ONNX defines one small test model per operator variant ("node tests":
`test_<op>_<variant>/model.onnx` plus `test_data_set_0/{input,output}_N.pb`).
This runner takes every node test whose operators are all in kiln's supported
list, imports it with `kiln-translate --import-onnx`, and checks the IMPORT
only -- nothing is compiled or executed:

  * the importer exits 0 (an unsupported attribute, opset or input form is
    reported by kiln as a one-line error and exits 1; that is a failure);
  * the result types of `func.func @main` agree with the reference outputs
    in `test_data_set_0/output_N.pb`: same number of results, same rank, same
    element type, and every static dimension equal (a `?` matches anything).

The second check is what makes this more than a "does it parse" test: the
result types are the types kiln's shape inference *computed* (the importer
only checks them for compatibility against the model's declared outputs), so
a wrong inferred shape or element type shows up here. The reference outputs
are the ones ONNX's reference implementation produced, so they are the ground
truth for shape and dtype.

A crash (killed by a signal, or exit code >= 128) is always a failure and is
reported loudly, even for a test listed in xfail.txt. An import that runs past
--timeout is an ordinary failure.

Two diagnostics do not affect the verdict: a WARNING, always printed, for a
passing test whose @main never uses one of its arguments although an ONNX
node computes with that input (an importer that silently drops an operand
produces the right types and the wrong program), and a count of passing tests
whose result has a `?` where the reference output is static (-v lists them;
often legitimate, since node tests feed shapes and axes as runtime inputs).

Expected failures live in `xfail.txt` next to this script: one test name per
line, optionally followed by a short reason; lines starting with `#` are
comments. The run fails (exit 1) if a test outside the list fails, if any test
crashes, or if a listed test now passes (remove it from the list).
`--update-xfail` rewrites the list from the current failures, grouped by
reason (comments written by hand are not preserved).

Where the node tests come from: older onnx wheels ship them under
`onnx/backend/test/data/node`; newer wheels (e.g. 1.23) do not, but they do
ship the Python generators the data is made from
(`onnx.backend.test.case.node`). If the installed package has no data, the
runner generates it once (a few seconds) into
`~/.cache/kiln/onnx-node-tests/onnx-<version>/node` with those generators, in
the same layout. `--data-dir` points it at any other copy (e.g. a checkout of
the onnx repository's `onnx/backend/test/data/node`).

Usage:
  run_node_tests.py [-v] [-j N] [--filter SUBSTRING] [--kiln-translate PATH]
                    [--data-dir DIR] [--timeout SECONDS] [--update-xfail]

The last line of output is `N passed, M failed, K skipped`, a partition of the
selected tests: passed = passed and not listed in xfail.txt, failed =
unexpected failures + crashes + unexpected passes, skipped = expected failures.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import onnx
from onnx import TensorProto

SCRIPT_DIR = Path(__file__).resolve().parent
REPO_ROOT = SCRIPT_DIR.parent.parent
XFAIL_FILE = SCRIPT_DIR / "xfail.txt"

# Operators kiln imports (default ONNX domain). Keep in sync with the
# importer's dispatch table in compiler/onnx/OnnxImporter.cpp.
SUPPORTED_OPS = frozenset("""
    Add Sub Mul Div Pow Sqrt Reciprocal Neg Abs Exp Log Tanh Erf Sigmoid Relu
    Gelu Softmax LogSoftmax MatMul Gemm Transpose Reshape Flatten Squeeze
    Unsqueeze Concat Split Slice Gather GatherElements GatherND ScatterND Expand
    Tile Where Equal Less LessOrEqual Greater GreaterOrEqual And Or Not Cast
    CastLike Shape Size ConstantOfShape Constant Range Trilu ReduceMean
    ReduceSum ReduceMax ArgMax LayerNormalization RMSNormalization Identity
    Dropout DequantizeLinear QuantizeLinear Attention RotaryEmbedding
    TensorScatter Max Min Cos Sin IsNaN
""".split())

# ONNX element type -> MLIR element type. This is the numpy-dtype mapping
# (float32 -> f32, bool -> i1, uint8 -> ui8, ...) keyed on the TensorProto
# enum, which also covers the types numpy has no native dtype for.
ELEMENT_TYPES = {
    TensorProto.FLOAT: "f32",
    TensorProto.DOUBLE: "f64",
    TensorProto.FLOAT16: "f16",
    TensorProto.BFLOAT16: "bf16",
    TensorProto.INT64: "i64",
    TensorProto.INT32: "i32",
    TensorProto.INT16: "i16",
    TensorProto.INT8: "i8",
    TensorProto.UINT8: "ui8",
    TensorProto.UINT16: "ui16",
    TensorProto.UINT32: "ui32",
    TensorProto.UINT64: "ui64",
    TensorProto.BOOL: "i1",
    TensorProto.INT4: "i4",
    TensorProto.UINT4: "ui4",
    TensorProto.FLOAT8E4M3FN: "f8E4M3FN",
    TensorProto.FLOAT8E4M3FNUZ: "f8E4M3FNUZ",
    TensorProto.FLOAT8E5M2: "f8E5M2",
    TensorProto.FLOAT8E5M2FNUZ: "f8E5M2FNUZ",
    TensorProto.COMPLEX64: "complex<f32>",
    TensorProto.COMPLEX128: "complex<f64>",
}
for _name, _mlir in (("FLOAT4E2M1", "f4E2M1FN"), ("FLOAT8E8M0", "f8E8M0FNU"),
                     ("INT2", "i2"), ("UINT2", "ui2")):
    if hasattr(TensorProto, _name):  # newer onnx versions only
        ELEMENT_TYPES[getattr(TensorProto, _name)] = _mlir


# ---------------------------------------------------------------------------
# Locating (or generating) the node test data
# ---------------------------------------------------------------------------

def default_data_dir() -> Path:
    shipped = Path(onnx.__file__).parent / "backend" / "test" / "data" / "node"
    if shipped.is_dir() and any(shipped.glob("test_*/model.onnx")):
        return shipped
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    generated = cache / "kiln" / "onnx-node-tests" / f"onnx-{onnx.__version__}" / "node"
    if not generated.is_dir():
        generate_node_tests(generated)
    return generated


def _write_value(path: Path, value, type_proto: onnx.TypeProto, name: str) -> None:
    """Serializes one input/output the way ONNX's test data files hold it."""
    from onnx import numpy_helper

    if type_proto.HasField("sequence_type"):
        proto = numpy_helper.from_list(value, name)
    elif type_proto.HasField("optional_type"):
        proto = numpy_helper.from_optional(value, name)
    elif type_proto.HasField("map_type"):
        proto = numpy_helper.from_dict(value, name)
    elif isinstance(value, TensorProto):
        proto = value
    else:
        proto = numpy_helper.from_array(value, name)
    path.write_bytes(proto.SerializeToString())


def generate_node_tests(dest: Path) -> None:
    """Materializes onnx's node test cases under `dest`, in the shipped layout.

    Writes to a temporary sibling directory and renames it into place, so a
    concurrent or interrupted run never sees a half-written directory.
    """
    import onnx.backend.test.case.node as node_cases

    print(f"generating ONNX node tests (onnx {onnx.__version__}) into {dest} ...",
          file=sys.stderr)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".node-", dir=dest.parent))
    try:
        with warnings.catch_warnings():  # the generators divide by zero etc.
            warnings.simplefilter("ignore")
            cases = node_cases.collect_testcases()
        for case in cases:
            case_dir = tmp / case.name
            case_dir.mkdir()
            (case_dir / "model.onnx").write_bytes(case.model.SerializeToString())
            graph = case.model.graph
            for i, (inputs, outputs) in enumerate(case.data_sets):
                ds = case_dir / f"test_data_set_{i}"
                ds.mkdir()
                for j, value in enumerate(inputs):
                    _write_value(ds / f"input_{j}.pb", value, graph.input[j].type,
                                 graph.input[j].name)
                for j, value in enumerate(outputs):
                    _write_value(ds / f"output_{j}.pb", value, graph.output[j].type,
                                 graph.output[j].name)
        try:
            tmp.rename(dest)
        except OSError:
            if not dest.is_dir():  # not just a concurrent run that won
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------------------
# Test selection
# ---------------------------------------------------------------------------

def _graph_ops(graph: onnx.GraphProto):
    """(domain, op_type) of every node, including nodes of nested subgraphs."""
    for node in graph.node:
        yield node.domain, node.op_type
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                yield from _graph_ops(attr.g)
            elif attr.type == onnx.AttributeProto.GRAPHS:
                for g in attr.graphs:
                    yield from _graph_ops(g)


def unsupported_ops(model_path: Path) -> set[str]:
    model = onnx.load(str(model_path), load_external_data=False)
    return {f"{d}::{op}" if d else op for d, op in _graph_ops(model.graph)
            if d not in ("", "ai.onnx") or op not in SUPPORTED_OPS}


def is_expanded(name: str) -> bool:
    return "_expanded" in name


# ---------------------------------------------------------------------------
# Parsing kiln-translate's output
# ---------------------------------------------------------------------------

_OPEN = {"(": ")", "[": "]", "{": "}", "<": ">"}


def _skip_string(text: str, i: int) -> int:
    """Given text[i] is `"`, returns the index after the closing quote."""
    i += 1
    while i < len(text) and text[i] != '"':
        i += 2 if text[i] == "\\" else 1
    if i >= len(text):
        raise ValueError("unterminated string")
    return i + 1


def _skip_balanced(text: str, i: int) -> int:
    """Given text[i] is an opening bracket, returns the index after its match.

    Brackets of all four kinds nest; string literals are skipped; the `>` of
    an arrow `->` does not close anything.
    """
    stack = []
    n = len(text)
    while i < n:
        c = text[i]
        if c == '"':
            i = _skip_string(text, i)
            continue
        if c in _OPEN:
            stack.append(_OPEN[c])
        elif c in ")]}>" and not (c == ">" and text[i - 1] == "-"):
            if not stack or stack.pop() != c:
                raise ValueError(f"unbalanced {c!r} at offset {i}")
            if not stack:
                return i + 1
        i += 1
    raise ValueError("unterminated bracket")


def _split_top_level(text: str) -> list[str]:
    """Splits at commas that are not nested in brackets or strings."""
    parts, start, i = [], 0, 0
    while i < len(text):
        c = text[i]
        if c in _OPEN or c == '"':
            i = _skip_balanced(text, i) if c != '"' else _skip_string(text, i)
            continue
        if c == ",":
            parts.append(text[start:i].strip())
            start = i + 1
        i += 1
    if text[start:].strip():
        parts.append(text[start:].strip())
    return parts


def _leading_token(text: str) -> str:
    """The first whitespace-delimited token, brackets nesting (`tensor<a, b>`)."""
    j = 0
    while j < len(text) and not text[j].isspace():
        j = _skip_balanced(text, j) if text[j] in _OPEN else j + 1
    return text[:j]


@dataclass
class MainFunc:
    arg_names: list[str]     # the `kiln.name` of each argument ("" if none)
    result_types: list[str]  # attributes stripped
    body: str                # the text after the signature


def parse_main(mlir: str) -> MainFunc:
    """Picks the signature of `func.func @main` out of printed MLIR."""
    m = re.search(r"func\.func\s+(?:\w+\s+)?@main\s*\(", mlir)
    if not m:
        raise ValueError("no func.func @main in the output")
    i = _skip_balanced(mlir, m.end() - 1)
    arg_names = []
    for arg in _split_top_level(mlir[m.end():i - 1]):
        name = re.search(r'kiln\.name = "((?:[^"\\]|\\.)*)"', arg)
        arg_names.append(name.group(1) if name else "")
    rest = mlir[i:].lstrip()
    if not rest.startswith("->"):
        return MainFunc(arg_names, [], rest)  # no results
    rest = rest[2:].lstrip()
    if rest.startswith("("):
        end = _skip_balanced(rest, 0)
        items, body = _split_top_level(rest[1:end - 1]), rest[end:]
    else:  # a single result without parentheses
        items = [_leading_token(rest)]
        body = rest[len(items[0]):]
    # `{...}` after a result type holds its attributes.
    return MainFunc(arg_names, [_leading_token(item) for item in items], body)


def parse_tensor_type(t: str) -> tuple[list[int | None] | None, str]:
    """`tensor<2x?x4xf32, #enc>` -> ([2, None, 4], "f32"); unranked -> (None, elt)."""
    if not t.startswith("tensor<") or not t.endswith(">"):
        raise ValueError(f"not a tensor type: {t}")
    body = _split_top_level(t[len("tensor<"):-1])[0]  # drop the encoding
    if body.startswith("*x"):
        return None, body[2:]
    dims = []
    while (m := re.match(r"(\d+|\?)x", body)):
        dims.append(None if m.group(1) == "?" else int(m.group(1)))
        body = body[m.end():]
    return dims, body


# ---------------------------------------------------------------------------
# Running one test
# ---------------------------------------------------------------------------

@dataclass
class Result:
    name: str
    status: str  # "pass", "fail", "timeout" or "crash"
    reason: str = ""
    seconds: float = 0.0
    imprecise: list[str] = field(default_factory=list)  # `?` where static expected
    dropped: list[str] = field(default_factory=list)  # graph inputs left unused


def expected_outputs(test_dir: Path, model: onnx.ModelProto) -> list[tuple[list[int], str]]:
    """(dims, MLIR element type) of each reference output of data set 0."""
    outs = []
    for i, vi in enumerate(model.graph.output):
        if not vi.type.HasField("tensor_type"):
            raise ValueError(f"output {i} is not a tensor ({vi.type.WhichOneof('value')})")
        tensor = onnx.load_tensor(str(test_dir / "test_data_set_0" / f"output_{i}.pb"))
        elt = ELEMENT_TYPES.get(tensor.data_type)
        if elt is None:
            raise ValueError(f"output {i} has element type "
                             f"{TensorProto.DataType.Name(tensor.data_type)}, "
                             "which has no MLIR mapping here")
        outs.append((list(tensor.dims), elt))
    return outs


def compare(types: list[str], expected: list[tuple[list[int], str]], res: Result) -> str:
    """Returns "" when the result types match, else what differs."""
    if len(types) != len(expected):
        return f"@main has {len(types)} results, the test expects {len(expected)}"
    for i, (t, (dims, elt)) in enumerate(zip(types, expected)):
        want = f"tensor<{''.join(f'{d}x' for d in dims)}{elt}>"
        try:
            got_dims, got_elt = parse_tensor_type(t)
        except ValueError:
            return f"result {i} is {t}, expected {want}"
        if got_dims is None or len(got_dims) != len(dims):
            return f"result {i} rank: got {t}, expected {want}"
        if got_elt != elt:
            return f"result {i} element type: got {t}, expected {want}"
        if any(g is not None and g != d for g, d in zip(got_dims, dims)):
            return f"result {i} shape: got {t}, expected {want}"
        if any(g is None for g in got_dims):
            res.imprecise.append(f"result {i}: got {t}, expected {want}")
    return ""


# Node inputs an importer may legitimately leave unused: they carry only a
# type (CastLike's target), are no-ops at inference (Dropout's ratio and
# training_mode), or fold to a constant when the shape is static (Shape, Size).
TYPE_ONLY_INPUTS = frozenset({("CastLike", 1), ("Dropout", 1), ("Dropout", 2),
                              ("Shape", 0), ("Size", 0)})


def dropped_inputs(main: MainFunc, graph: onnx.GraphProto) -> list[str]:
    """Graph inputs that no op of @main uses although a node computes with them.

    Not a failure by the pass criterion (types can still match), but usually
    an importer that silently ignored an operand, e.g. a variadic op lowered
    as binary -- a miscompile the type check cannot see.
    """
    body = main.body.split("func.func", 1)[0]
    uses: dict[str, list[tuple[str, int]]] = {}
    for node in graph.node:
        for k, name in enumerate(node.input):
            uses.setdefault(name, []).append((node.op_type, k))
    # A graph input whose declared shape has a static 0 holds no data: an
    # empty `axes` tensor means "no axes", and dropping it loses nothing.
    empty = {vi.name for vi in graph.input
             if any(d.HasField("dim_value") and d.dim_value == 0
                    for d in vi.type.tensor_type.shape.dim)}
    dropped = []
    for idx, name in enumerate(main.arg_names):
        if name in empty:
            continue
        consumers = [u for u in uses.get(name, []) if u not in TYPE_ONLY_INPUTS]
        if consumers and not re.search(rf"%arg{idx}\b", body):
            dropped.append(f"graph input '{name}' (input {consumers[0][1]} of "
                           f"{consumers[0][0]}) is never used")
    return dropped


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            # "<path>/model.onnx:0:0: error: node ..." -> "node ..."
            return re.sub(r"^\S*:\d+:\d+: error: ", "", line.strip())
    return ""


def run_test(kiln: Path, test_dir: Path, timeout: float) -> Result:
    res = Result(test_dir.name, "fail")
    start = time.monotonic()
    # Own session, so that a timeout can kill whatever the tool started too.
    with subprocess.Popen([str(kiln), "--import-onnx", str(test_dir / "model.onnx")],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          errors="replace", start_new_session=True) as proc:
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            res.status, res.reason = "timeout", f"timed out after {timeout:g} s"
            res.seconds = time.monotonic() - start
            return res
    res.seconds = time.monotonic() - start
    rc = proc.returncode
    if rc < 0 or rc >= 128:
        sig = -rc if rc < 0 else rc - 128
        try:
            signame = signal.Signals(sig).name
        except ValueError:
            signame = f"signal {sig}"
        res.status = "crash"
        res.reason = (f"killed by {signame}" if rc < 0 else f"exit code {rc} ({signame})")
        detail = _first_line(stderr)
        if detail:
            res.reason += f": {detail}"
        return res
    if rc != 0:
        res.reason = _first_line(stderr) or f"exit code {rc}, no message"
        return res
    try:
        model = onnx.load(str(test_dir / "model.onnx"), load_external_data=False)
        main = parse_main(stdout)
        res.reason = compare(main.result_types, expected_outputs(test_dir, model), res)
        res.dropped = dropped_inputs(main, model.graph)
    except (ValueError, OSError) as e:
        res.reason = f"cannot check output: {e}"
    if not res.reason:
        res.status = "pass"
    return res


# ---------------------------------------------------------------------------
# The expected-failure list
# ---------------------------------------------------------------------------

def read_xfail(path: Path) -> dict[str, str]:
    entries = {}
    if not path.exists():
        return entries
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, _, reason = line.partition(" ")
        entries[name] = reason.strip()
    return entries


_NODE_PREFIX = re.compile(r"^node (?:'(?:[^'\\]|\\.)*'|#-?\d+) ")


def short_reason(reason: str) -> str:
    """The reason without the node's name or index, which say nothing here."""
    return _NODE_PREFIX.sub("", reason)


def category(reason: str) -> str:
    """A coarse bucket for a failure reason, for grouping in xfail.txt."""
    reason = short_reason(reason)
    if m := re.match(r"default-domain opset (\d+) is not supported; expected (\d+) to (\d+)",
                     reason):
        opset, lo, hi = map(int, m.groups())
        return f"opset older than {lo}" if opset < lo else f"opset newer than {hi}"
    if m := re.match(r"value '.*' has data type \d+ \((\w+)\)", reason):
        return f"element type {m.group(1)} not supported"
    if re.match(r"value '.*' is not a tensor", reason):
        return "non-tensor graph inputs/outputs"
    if reason.startswith(("result", "@main")):
        return "result types differ from the reference outputs"
    m = re.match(r"\(\S+?::(\w+), opset \d+\): (.*)", reason)
    if not m:
        return re.sub(r"\d+", "N", reason)[:100]
    op, msg = m.groups()
    if msg.startswith("unsupported op"):
        return f"unsupported op {op}"
    msg = re.sub(r"tensor<[^>]*(<[^>]*>[^>]*)?>", "tensor<...>", msg)
    msg = re.sub(r"'[^']*'", "'...'", msg)
    msg = re.sub(r"\b\d+\b", "N", msg)
    return f"{op}: {msg}"


def write_xfail(path: Path, entries: dict[str, str]) -> None:
    """Writes the list grouped by failure category, biggest group first.

    Reasons are shortened first and grouped by the shortened text, so that
    rewriting a list that was read back from the file gives the same file.
    """
    reasons = {}
    for name, reason in entries.items():
        reason = short_reason(reason)
        reasons[name] = reason if len(reason) <= 110 else reason[:107] + "..."
    groups: dict[str, list[str]] = {}
    for name in sorted(reasons):
        groups.setdefault(category(reasons[name]), []).append(name)
    lines = [
        "# Expected failures of test/onnx-node-tests/run_node_tests.py (ONNX node",
        "# tests, import only). One test name per line, optionally followed by a",
        "# short reason; lines starting with `#` are comments. Generated by",
        "# `run_node_tests.py --update-xfail`, which rewrites the comments too.",
    ]
    for cat in sorted(groups, key=lambda c: (-len(groups[c]), c)):
        lines += ["", f"# {cat} ({len(groups[cat])})"]
        width = max(len(n) for n in groups[cat])
        lines += [f"{n:<{width}}  {reasons[n]}".rstrip() for n in groups[cat]]
    path.write_text("\n".join(lines) + "\n")


# ---------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------

@dataclass
class Outcome:
    """Results partitioned against the expected-failure list (after
    --update-xfail rewrote it, if asked), with the failures that fail the
    run already printed. Shared with run_node_tests_numeric.py."""
    xfail: dict[str, str]
    passed: list[Result]
    crashes: list[Result]
    expected_fail: list[Result]
    unexpected_fail: list[Result]
    unexpected_pass: list[Result]

    @staticmethod
    def of(results: list[Result], args) -> "Outcome":
        xfail = read_xfail(args.xfail)
        if args.update_xfail:
            # Keep the entries for tests this run did not cover (--filter) and
            # take the rest from this run. Crashes are listed too, but still
            # fail runs.
            new = {n: r for n, r in xfail.items() if args.filter not in n}
            new.update({r.name: r.reason for r in results if r.status != "pass"})
            write_xfail(args.xfail, new)
            print(f"wrote {len(new)} entries to {args.xfail}")
            xfail = new
        passed = [r for r in results if r.status == "pass"]
        failed = [r for r in results if r.status in ("fail", "timeout")]
        o = Outcome(xfail, passed, [r for r in results if r.status == "crash"],
                    [r for r in failed if r.name in xfail],
                    [r for r in failed if r.name not in xfail],
                    [r for r in passed if r.name in xfail])
        for r in o.crashes:
            print(f"CRASH: {r.name}: {r.reason}")
        for r in o.unexpected_fail:
            print(f"FAIL: {r.name}: {r.reason}")
        for r in o.unexpected_pass:
            print(f"UNEXPECTED PASS: {r.name}: remove it from {args.xfail.name}")
        return o

    def failed_count(self) -> int:
        return len(self.unexpected_fail) + len(self.crashes) + len(self.unexpected_pass)


def pct(a: int, b: int) -> str:
    return f"{a}/{b} passed ({100.0 * a / b:.1f}%)" if b else "0/0 passed"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kiln-translate", type=Path,
                    default=REPO_ROOT / "build" / "bin" / "kiln-translate",
                    help="the importer to test (default: %(default)s)")
    ap.add_argument("--data-dir", type=Path,
                    help="directory holding the test_* node test directories "
                         "(default: the onnx package's, else generated into ~/.cache/kiln)")
    ap.add_argument("--filter", default="", help="only run tests whose name contains this")
    ap.add_argument("-j", type=int, default=2, help="parallel imports (default: 2)")
    ap.add_argument("--timeout", type=float, default=20.0,
                    help="seconds per import (default: %(default)s)")
    ap.add_argument("--xfail", type=Path, default=XFAIL_FILE,
                    help="expected-failure list (default: %(default)s)")
    ap.add_argument("--update-xfail", action="store_true",
                    help="rewrite the expected-failure list from this run's failures")
    ap.add_argument("-v", "--verbose", action="store_true",
                    help="print every failure, expected ones included")
    args = ap.parse_args()

    if not (args.kiln_translate.is_file() and os.access(args.kiln_translate, os.X_OK)):
        print(f"error: no kiln-translate at {args.kiln_translate} (build it, or pass "
              "--kiln-translate)", file=sys.stderr)
        return 2
    args.kiln_translate = args.kiln_translate.resolve()  # not looked up in $PATH
    t0 = time.monotonic()
    data_dir = args.data_dir or default_data_dir()
    all_tests = sorted(p.parent for p in data_dir.glob("test_*/model.onnx"))
    if not all_tests:
        print(f"error: no node tests under {data_dir}", file=sys.stderr)
        return 2
    selected = [t for t in all_tests
                if args.filter in t.name and not unsupported_ops(t / "model.onnx")]
    print(f"{len(all_tests)} ONNX node tests in {data_dir} (onnx {onnx.__version__}); "
          f"{len(selected)} use only supported ops"
          + (f" and match --filter {args.filter!r}" if args.filter else ""))

    with ThreadPoolExecutor(max_workers=max(1, args.j)) as pool:
        results = list(pool.map(lambda t: run_test(args.kiln_translate, t, args.timeout),
                                selected))

    ran = {t.name for t in selected}
    o = Outcome.of(results, args)
    passed, crashes, expected_fail, unexpected_fail, unexpected_pass = (
        o.passed, o.crashes, o.expected_fail, o.unexpected_fail, o.unexpected_pass)
    xfail = o.xfail
    for r in passed:
        for note in r.dropped:
            print(f"WARNING: {r.name} passes, but {note}: did the importer drop it?")
    if args.verbose:
        for r in expected_fail:
            print(f"XFAIL: {r.name}: {r.reason}")
        for r in passed:
            for note in r.imprecise:
                print(f"note: {r.name} passes with a dynamic dim: {note}")
    # Listed tests that this selection should have run but did not: gone from
    # onnx, or no longer selected. Not an error; --update-xfail drops them.
    for n in sorted(n for n in xfail if args.filter in n and n not in ran):
        print(f"note: {args.xfail.name} lists {n}, which is not a selected node test")

    total = len(results)
    plain = [r for r in results if not is_expanded(r.name)]
    expanded = [r for r in results if is_expanded(r.name)]
    print(f"onnx node tests (import): {pct(len(passed), total)}, "
          f"{len(expected_fail)} expected failures, {len(unexpected_fail)} unexpected "
          f"failures, {len(crashes)} crashes, {len(unexpected_pass)} unexpected passes")
    print(f"  non-expanded tests: {pct(sum(r.status == 'pass' for r in plain), len(plain))}; "
          f"function-expanded tests: "
          f"{pct(sum(r.status == 'pass' for r in expanded), len(expanded))}")
    if crashes:
        print(f"  *** {len(crashes)} CRASHES (fatal even when listed in "
              f"{args.xfail.name}) ***")
    timeouts = sum(r.status == "timeout" for r in results)
    if timeouts:
        print(f"  {timeouts} imports timed out after {args.timeout:g} s")
    dropped = sum(1 for r in passed if r.dropped)
    if dropped:
        print(f"  WARNING: {dropped} passing tests leave a graph input unused (see above)")
    imprecise = sum(1 for r in passed if r.imprecise)
    if imprecise:
        print(f"  {imprecise} passing tests have a '?' where the reference output is "
              "static (-v lists them)")
    print(f"  {time.monotonic() - t0:.1f} s with -j {args.j}")
    print(f"{len(passed) - len(unexpected_pass)} passed, {o.failed_count()} failed, "
          f"{len(expected_fail)} skipped")
    return 1 if o.failed_count() else 0

if __name__ == "__main__":
    sys.exit(main())
