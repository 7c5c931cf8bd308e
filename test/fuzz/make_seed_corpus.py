"""Writes the seed corpus of the ONNX-import fuzzer.

Seeds are small ONNX node tests (the ones run_node_tests.py generates from
the pinned onnx package) for the ops kiln imports, so that libFuzzer starts
from valid models and mutates toward the importer's edge cases. Crashers
and interesting inputs the fuzzer finds are added to the same folder by
hand and kept as regression cases (test/fuzz/corpus.test runs them all).

Usage: make_seed_corpus.py NODE_TEST_DIR OUT_DIR
"""
import hashlib
import sys
from pathlib import Path

import onnx

OPS = {"Add", "MatMul", "Reshape", "Concat", "Gather", "Slice", "Softmax",
       "Transpose", "Unsqueeze", "Where", "Expand", "Range", "Shape", "Cast",
       "LayerNormalization", "RMSNormalization", "RotaryEmbedding", "Attention",
       "DequantizeLinear", "Split", "ReduceMean", "Trilu", "ScatterND",
       "GatherND", "ConstantOfShape", "Squeeze", "TensorScatter"}


def main() -> int:
    src, out = Path(sys.argv[1]), Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    taken: dict[str, int] = {}
    for model_path in sorted(src.glob("test_*/model.onnx")):
        data = model_path.read_bytes()
        if len(data) > 2048:
            continue
        ops = {n.op_type for n in onnx.load_from_string(data).graph.node}
        if len(ops) != 1 or not ops <= OPS:
            continue
        op = next(iter(ops))
        if taken.get(op, 0) >= 2:
            continue
        taken[op] = taken.get(op, 0) + 1
        name = hashlib.sha1(data).hexdigest()[:16]
        (out / f"seed-{op.lower()}-{name}.onnx").write_bytes(data)
    print(f"{sum(taken.values())} seeds for {len(taken)} ops in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
