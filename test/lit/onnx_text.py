"""Converts ONNX textual syntax (onnx.parser) to a binary model for lit tests.

Usage: onnx_text.py INPUT.onnxtext OUTPUT.onnx

Everything after a line that is exactly `// ---- end of model` is ignored, so
a test file can hold its RUN/CHECK lines below the model. Lines starting with
`//` are dropped before parsing. The onnx package is the reference parser;
kiln does not reimplement it.
"""
import sys

import onnx
import onnx.parser


def main() -> int:
    if len(sys.argv) != 3:
        print("usage: onnx_text.py INPUT OUTPUT", file=sys.stderr)
        return 2
    with open(sys.argv[1], encoding="utf-8") as f:
        lines = []
        for line in f:
            if line.strip() == "// ---- end of model":
                break
            if not line.lstrip().startswith("//"):
                lines.append(line)
    try:
        model = onnx.parser.parse_model("".join(lines))
    except Exception as e:  # the parser raises its own error types
        print(f"{sys.argv[1]}: cannot parse ONNX text: {e}", file=sys.stderr)
        return 1
    onnx.save(model, sys.argv[2])
    return 0


if __name__ == "__main__":
    sys.exit(main())
