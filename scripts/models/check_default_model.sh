#!/usr/bin/env bash
# Builds the default model (SmolLM2-135M-Instruct ONNX, cached outside the
# repo) and checks that kilnc imports and canonicalizes it within the
# foundation's budget: peak RSS < 300 MB and < 10 s (measured with
# /usr/bin/time -v, printed). Exit non-zero on failure.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD="${KILN_BUILD_DIR:-$ROOT/build}"
MODEL_DIR="${KILN_CACHE:-$HOME/.cache/kiln}/models/smollm2-135m-instruct"
"$ROOT/scripts/models/build_smollm2.sh" "$MODEL_DIR" >/dev/null
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
/usr/bin/time -v "$BUILD/bin/kilnc" "$MODEL_DIR/model.onnx" --emit=canonical -o "$out/model.mlir" 2>"$out/time.txt" || {
  cat "$out/time.txt"; exit 1; }
rss_kb=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$out/time.txt")
wall=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$out/time.txt")
secs=$(echo "$wall" | awk -F: '{ s = 0; for (i = 1; i <= NF; i++) s = s * 60 + $i; print s }')
globals=$(grep -c 'kiln.global' "$out/model.mlir")
shape_ops=$(grep -cE 'kiln\.(shape|dim) ' "$out/model.mlir" || true)
echo "smollm2-135m: kilnc import+canonicalize ${secs}s, peak RSS $((rss_kb / 1024)) MB, $globals weights, $shape_ops shape/dim ops left"
weights_bytes=$(stat -c %s "$MODEL_DIR/model.onnx_data")
echo "smollm2-135m: weights file $((weights_bytes / 1048576)) MB (mapped, not read)"
[ "$rss_kb" -lt 307200 ] || { echo "FAIL: peak RSS over 300 MB"; exit 1; }
awk "BEGIN { exit !($secs < 10) }" || { echo "FAIL: slower than 10 s"; exit 1; }
norms=$(grep -c 'kiln.rms_norm' "$out/model.mlir" || true)
echo "smollm2-135m: $norms RMSNorms raised to kiln.rms_norm (30 layers x 2 + final = 61)"
[ "$norms" -eq 61 ] || { echo "FAIL: expected 61 kiln.rms_norm"; exit 1; }
attn=$(grep -c 'kiln.attention' "$out/model.mlir" || true)
echo "smollm2-135m: $attn attentions raised to kiln.attention (one per layer: 30)"
[ "$attn" -eq 30 ] || { echo "FAIL: expected 30 kiln.attention"; exit 1; }
grep -q 'kiln.concat.*past_sequence_length + sequence_length' "$out/model.mlir" ||
  { echo "FAIL: the KV-cache concat lost its symbolic length"; exit 1; }

# The whole compile: artifact within 60 s and 1.5 GB peak RSS (issue 3).
/usr/bin/time -v "$BUILD/bin/kilnc" "$MODEL_DIR/model.onnx" -o "$out/smollm2.kiln" --quiet 2>"$out/time.txt" || {
  cat "$out/time.txt"; exit 1; }
rss_kb=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$out/time.txt")
wall=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$out/time.txt")
secs=$(echo "$wall" | awk -F: '{ s = 0; for (i = 1; i <= NF; i++) s = s * 60 + $i; print s }')
echo "smollm2-135m: kilnc to a .kiln artifact ${secs}s, peak RSS $((rss_kb / 1024)) MB"
[ "$rss_kb" -lt 1572864 ] || { echo "FAIL: compile peak RSS over 1.5 GB"; exit 1; }
awk "BEGIN { exit !($secs < 60) }" || { echo "FAIL: compile slower than 60 s"; exit 1; }

# Coherent text: greedy SmolLM2-135M-Instruct knows this one.
text=$("$BUILD/bin/kiln" run "$out/smollm2.kiln" --prompt "The capital of France is" --max-tokens 8 2>"$out/run.txt")
echo "smollm2-135m: kiln run: 'The capital of France is' ->$text"
cat "$out/run.txt"
echo "$text" | grep -q "Paris" || { echo "FAIL: expected 'Paris' in the greedy continuation"; exit 1; }

# The same through the model's chat template (kiln run --chat), ending at
# the template's end-of-turn token.
chat=$("$BUILD/bin/kiln" run "$out/smollm2.kiln" --chat --prompt "What is the capital of France?" --max-tokens 32 2>"$out/chat.txt")
echo "smollm2-135m: kiln run --chat: 'What is the capital of France?' -> $chat"
echo "$chat" | grep -q "Paris" || { echo "FAIL: expected 'Paris' in the chat answer"; exit 1; }
grep -q "stopped: end of sequence" "$out/chat.txt" || { cat "$out/chat.txt"; echo "FAIL: the chat answer did not end at end of turn"; exit 1; }

# A bare question: the instruct model ends the text at once, and kiln run
# says that --chat is how to ask it something.
"$BUILD/bin/kiln" run "$out/smollm2.kiln" --prompt "What is the capital of France?" --max-tokens 8 >/dev/null 2>"$out/bare.txt"
grep -q "stopped: end of sequence" "$out/bare.txt" && grep -q "add --chat" "$out/bare.txt" ||
  { cat "$out/bare.txt"; echo "FAIL: no --chat hint after a bare question that ended at once"; exit 1; }

# Opening the artifact and being ready to run: under 200 ms.
"$BUILD/bin/kiln" bench "$out/smollm2.kiln" --prompt-len 16 --gen-len 4 --repeats 1 >"$out/bench.txt"
open_ms=$(sed -n 's/^open *\([0-9.]*\) ms.*/\1/p' "$out/bench.txt")
echo "smollm2-135m: open + engine ready in ${open_ms} ms"
awk "BEGIN { exit !($open_ms < 200) }" || { echo "FAIL: opening took 200 ms or more"; exit 1; }
