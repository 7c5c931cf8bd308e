"""Checks kiln's ONNX text parser against the onnx package's own.

For every model written in ONNX's textual syntax in the given test files
(whole `.onnxtext` files, and each `//--- NAME.txt` section of `.test`
files), imports it twice with kiln-translate: once from the text directly
(kiln's parser, compiler/onnx/OnnxText.cpp) and once from the binary that
onnx.parser makes of it. The two imports must print the same module, or
fail with the same message.

Usage: check_text_parser.py KILN_TRANSLATE WORK_DIR FILE...
"""
import re
import subprocess
import sys
from pathlib import Path

import onnx
import onnx.parser

END = "// ---- end of model"


def models(path: Path):
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".onnxtext":
        yield path.stem, text
        return
    for m in re.finditer(r"^//--- (\S+\.txt)\n(.*?)(?=^//--- |\Z)", text, re.S | re.M):
        yield f"{path.stem}-{m.group(1)[:-4]}", m.group(2)


def strip(text: str) -> str:
    lines = []
    for line in text.splitlines():
        if line.strip() == END:
            break
        if not line.lstrip().startswith("//"):
            lines.append(line)
    return "\n".join(lines) + "\n"


def run(tool: str, path: Path) -> str:
    p = subprocess.run([tool, "--import-onnx", str(path)], capture_output=True, text=True,
                       timeout=60)
    out = p.stdout if p.returncode == 0 else p.stderr
    # The file name appears in locations and messages; blob files of typed
    # initializers are in-memory buffers and do not depend on it.
    return f"exit {p.returncode}\n" + out.replace(str(path), "MODEL")


def main() -> int:
    tool, work = sys.argv[1], Path(sys.argv[2])
    work.mkdir(parents=True, exist_ok=True)
    checked = mismatched = 0
    for f in sys.argv[3:]:
        for name, text in models(Path(f)):
            body = strip(text)
            try:
                proto = onnx.parser.parse_model(body)
            except Exception:  # not a model onnx.parser accepts: nothing to compare
                continue
            txt, binary = work / f"{name}.onnxtext", work / f"{name}.onnx"
            txt.write_text(body, encoding="utf-8")
            onnx.save(proto, binary)
            a, b = run(tool, txt), run(tool, binary)
            checked += 1
            if a.replace(str(txt), "MODEL") != b.replace(str(binary), "MODEL"):
                mismatched += 1
                print(f"MISMATCH {name}:\n--- kiln text parser\n{a[:2000]}\n--- onnx.parser\n{b[:2000]}")
    print(f"{checked} text models compared, {mismatched} mismatched")
    return 1 if mismatched or not checked else 0


if __name__ == "__main__":
    sys.exit(main())
