"""Imports every file of a fuzz corpus with kiln-translate.

Each input must end with exit 0 (imported) or 1 (a diagnostic); a signal,
a sanitizer abort or a hang fails the test and names the file.

Usage: check_corpus.py KILN_TRANSLATE CORPUS_DIR
"""
import subprocess
import sys
from pathlib import Path


def main() -> int:
    tool, corpus = sys.argv[1], Path(sys.argv[2])
    files = sorted(p for p in corpus.iterdir() if p.is_file())
    if not files:
        print(f"error: empty corpus {corpus}")
        return 1
    bad = 0
    for f in files:
        try:
            rc = subprocess.run([tool, "--import-onnx", str(f)], capture_output=True,
                                timeout=30).returncode
        except subprocess.TimeoutExpired:
            print(f"HANG: {f.name}")
            bad += 1
            continue
        if rc not in (0, 1):
            print(f"CRASH (exit {rc}): {f.name}")
            bad += 1
    print(f"{len(files)} corpus inputs, {bad} crashed or hung")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
