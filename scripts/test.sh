#!/usr/bin/env bash
# The README's test command: sets up (scripts/setup.sh), then runs every test
# suite and ends with one summary line "N passed, M failed[, K skipped]".
#   - unit tests (GoogleTest, via ctest)
#   - lit + FileCheck tests (dialect, importer, canonicalization, fixtures)
#   - ONNX backend node tests: import conformance with an expected-failure list
#   - ONNX backend node tests executed by the CPU backend against the
#     reference outputs, with their own expected-failure list
#   - the default model (SmolLM2-135M) compiles within budget and generates
#   - compiled models match onnxruntime (fixtures and SmolLM2)
#   - the runtime's tokenizer agrees with the `tokenizers` package
#   - the runtime's chat templates render as transformers renders them
#   - examples/c-service, built against the installed runtime (find_package
#     and pkg-config), serves prompts as `kiln run` does
#   - clang-format check of the C/C++ sources
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${KILN_BUILD_DIR:-$ROOT/build}"
CACHE="${KILN_CACHE:-$HOME/.cache/kiln}"
PY="$CACHE/venv/bin/python"
"$ROOT/scripts/setup.sh" || { echo "setup failed"; echo "0 passed, 1 failed"; exit 1; }

passed=0; failed=0; skipped=0
tally() { # name status p f s
  echo "== $1: $3 passed, $4 failed, $5 skipped"
  passed=$((passed + $3)); failed=$((failed + $4)); skipped=$((skipped + $5))
  [ "$2" -eq 0 ] || [ "$4" -gt 0 ] || failed=$((failed + 1))
}
tally_summary() { # name status output [skipped]: output ends "N passed, M failed"
  local last p f
  last=$(echo "$3" | tail -n 1)
  p=$(echo "$last" | sed -n 's/^\([0-9]*\) passed.*/\1/p')
  f=$(echo "$last" | sed -n 's/.*, \([0-9]*\) failed.*/\1/p')
  tally "$1" "$2" "${p:-0}" "${f:-1}" "${4:-0}"
}

# Unit tests.
out=$(cd "$BUILD" && ctest --output-on-failure 2>&1); rc=$?
echo "$out" | tail -n 25
t=$(echo "$out" | sed -n 's/.*tests passed, \([0-9]*\) tests failed out of \([0-9]*\).*/\1 \2/p')
f=${t%% *}; n=${t##* }
tally "unit" $rc $(( ${n:-0} - ${f:-0} )) ${f:-1} 0

# The runtime alone, without LLVM/MLIR: what a service links.
RT_BUILD="$BUILD-runtime-only"
# (ninja reports compile errors on stdout: kept, and shown on failure.)
out=$( { cmake -G Ninja -S "$ROOT" -B "$RT_BUILD" -DKILN_BUILD_COMPILER=OFF >/dev/null &&
         ninja -C "$RT_BUILD" | { grep -v '^\[' || true; } && cd "$RT_BUILD" && ctest 2>&1; } 2>&1); rc=$?
t=$(echo "$out" | sed -n 's/.*tests passed, \([0-9]*\) tests failed out of \([0-9]*\).*/\1 \2/p')
f=${t%% *}; n=${t##* }
[ $rc -eq 0 ] || echo "$out" | tail -n 20
tally "runtime-only build" $rc $(( ${n:-0} - ${f:-0} )) ${f:-1} 0

# lit.
out=$(/usr/lib/llvm-22/bin/lit -sv "$BUILD/test" 2>&1); rc=$?
echo "$out" | grep -vE '^PASS' | tail -n 40
p=$(echo "$out" | sed -n 's/^ *Passed *: *\([0-9]*\).*/\1/p'); f=$(echo "$out" | sed -n 's/^ *Failed *: *\([0-9]*\).*/\1/p')
s=$(echo "$out" | sed -n 's/^ *Unsupported *: *\([0-9]*\).*/\1/p')
tally "lit" $rc ${p:-0} ${f:-0} ${s:-0}

# ONNX node tests (import conformance).
if [ -f "$ROOT/test/onnx-node-tests/run_node_tests.py" ]; then
  out=$("$PY" "$ROOT/test/onnx-node-tests/run_node_tests.py" --kiln-translate "$BUILD/bin/kiln-translate" 2>&1); rc=$?
  echo "$out" | tail -n 8
  last=$(echo "$out" | tail -n 1)
  p=$(echo "$last" | sed -n 's/^\([0-9]*\) passed.*/\1/p'); f=$(echo "$last" | sed -n 's/.*, \([0-9]*\) failed.*/\1/p')
  s=$(echo "$last" | sed -n 's/.*, \([0-9]*\) skipped.*/\1/p')
  tally "onnx-node-tests" $rc ${p:-0} ${f:-0} ${s:-0}
fi

# ONNX node tests executed: every test whose import passes, compiled with
# kilnc --emit=graph and run against ONNX's reference outputs.
if [ -f "$ROOT/test/onnx-node-tests/run_node_tests_numeric.py" ]; then
  out=$("$PY" "$ROOT/test/onnx-node-tests/run_node_tests_numeric.py" --kilnc "$BUILD/bin/kilnc" \
          --libkiln "$BUILD/lib/libkiln.so" --work "$BUILD/node-tests-numeric" 2>&1); rc=$?
  echo "$out" | tail -n 12
  last=$(echo "$out" | tail -n 1)
  p=$(echo "$last" | sed -n 's/^\([0-9]*\) passed.*/\1/p'); f=$(echo "$last" | sed -n 's/.*, \([0-9]*\) failed.*/\1/p')
  s=$(echo "$last" | sed -n 's/.*, \([0-9]*\) skipped.*/\1/p')
  tally "onnx-node-tests executed" $rc ${p:-0} ${f:-0} ${s:-0}
fi

# The default model: build SmolLM2-135M's ONNX (cached) and compile it.
out=$("$ROOT/scripts/models/check_default_model.sh" 2>&1); rc=$?
echo "$out" | tail -n 12
tally "default-model" $rc $([ $rc -eq 0 ] && echo 1 || echo 0) $([ $rc -eq 0 ] && echo 0 || echo 1) 0

# Compiled models against onnxruntime on the same ONNX: prefill (a mixed
# batch), 32 decode steps, 64 greedy tokens, batched = alone. The fixtures
# from each exporter kiln maps to its paged cache, SmolLM2-135M, and the
# ORT-GenAI int4 SmolLM2 when it has been built (scripts/models/
# build_smollm2_int4.sh; int8 activations against onnxruntime as shipped).
FIXTURES="$ROOT/test/fixtures/models"
SMOLLM2_INT4="$CACHE/models/smollm2-135m-instruct-int4"
int4=(); int4_skipped=0
if [ -f "$SMOLLM2_INT4/model.onnx" ]; then
  int4=("$SMOLLM2_INT4")
else
  echo "int4 SmolLM2 logits skipped: $SMOLLM2_INT4 is absent (scripts/models/build_smollm2_int4.sh makes it)"
  int4_skipped=1
fi
out=$("$PY" "$ROOT/test/runtime/check_model_logits.py" --kilnc "$BUILD/bin/kilnc" \
        --libkiln "$BUILD/lib/libkiln.so" --work "$BUILD/test-artifacts" \
        "$FIXTURES/gpt2" "$FIXTURES/llama-gqa" "$FIXTURES/qwen2" "$FIXTURES/llama-dynamo" \
        "$FIXTURES/llama-nocache" "$FIXTURES/opset23-attention" "$FIXTURES/llama-genai-int4" \
        "$FIXTURES/mistral-swa" "$FIXTURES/qwen3" "$FIXTURES/phi" "$FIXTURES/gemma2" \
        "$CACHE/models/smollm2-135m-instruct" "${int4[@]}" 2>&1); rc=$?
echo "$out" | grep -v '^ok' | tail -n 20
last=$(echo "$out" | tail -n 1)
p=$(echo "$last" | sed -n 's/^\([0-9]*\) passed.*/\1/p'); f=$(echo "$last" | sed -n 's/.*, \([0-9]*\) failed.*/\1/p')
tally "model logits vs onnxruntime" $rc ${p:-0} ${f:-0} $int4_skipped

# The scheduler (continuous batching, chunked prefill, prefix cache,
# preemption, cancellation, events) on the fixtures just compiled (the int4
# one with int8 activations, and with fp32 activations, which the
# scheduler's batch-invariant engine runs on the panel path at every M):
# greedy output must be the same whatever else is in the batch. Text and
# stop strings on SmolLM2.
sched_passed=0; sched_failed=0; sched_rc=0
for art in llama-gqa qwen2 llama-genai-int4 llama-genai-int4-f32; do
  out=$(KILN_TEST_ARTIFACT="$BUILD/test-artifacts/$art.kiln" \
        KILN_TEST_TEXT_ARTIFACT="$BUILD/test-artifacts/smollm2-135m-instruct.kiln" \
        "$BUILD/bin/kiln-scheduler-tests" $([ "$art" = llama-gqa ] || echo --gtest_filter=-*Text*) 2>&1) || sched_rc=1
  echo "$out" | grep -E '^\[  FAILED|Failure' | head -n 20
  sched_passed=$((sched_passed + $(echo "$out" | sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' | head -n 1)))
  f=$(echo "$out" | sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' | head -n 1)
  sched_failed=$((sched_failed + ${f:-0}))
done
tally "scheduler" $sched_rc $sched_passed $sched_failed 0

# kiln serve on SmolLM2, on loopback, through the official openai client:
# completions and chat (streamed or not) equal to `kiln run` and to
# transformers' chat template, logprobs, seeds, stop strings, concurrent =
# alone, OpenAI-style 400/401/404/413/429/503, disconnects cancel, /metrics
# through prometheus_client's parser, SIGTERM drains.
out=$("$PY" "$ROOT/test/serve/check_serve.py" --kiln "$BUILD/bin/kiln" \
        --artifact "$BUILD/test-artifacts/smollm2-135m-instruct.kiln" 2>&1); rc=$?
echo "$out" | grep -v '^ok ' | tail -n 20
tally_summary "kiln serve" $rc "$out"

# A bounded soak of kiln serve (1200 requests at concurrency 64 after a
# warm-up round, about two minutes): replayed greedy/seeded requests must
# equal their output
# alone under preemptions and 429s, with client cancellations and 20 kinds
# of malformed request mixed in; then the server must be up and idle, its
# RSS, descriptors and threads back at their post-warm-up baseline.
out=$("$PY" "$ROOT/test/serve/soak.py" --requests 1200 --time-limit 400 --kiln "$BUILD/bin/kiln" \
        --artifact "$BUILD/test-artifacts/smollm2-135m-instruct.kiln" 2>&1); rc=$?
echo "$out" | grep -v '^ok ' | tail -n 20
tally_summary "kiln serve soak" $rc "$out"

# Linking kiln into a service: the runtime-only build `cmake --install`ed
# into a temporary prefix, examples/c-service built against that prefix with
# find_package(kiln) (kiln::kiln and kiln::kiln_static) and with pkg-config,
# each serving prompts from several client threads through one scheduler:
# every greedy completion must be what `kiln run` prints for its prompt
# alone, and bad input must fail with a clear message.
CSVC_WORK=$(mktemp -d)
out=$("$PY" "$ROOT/test/examples/check_c_service.py" --runtime-build "$RT_BUILD" --work "$CSVC_WORK" \
        --artifact "$BUILD/test-artifacts/smollm2-135m-instruct.kiln" \
        --no-tokenizer-artifact "$BUILD/test-artifacts/llama-gqa.kiln" 2>&1); rc=$?
rm -rf "$CSVC_WORK"
echo "$out" | grep -v '^ok ' | tail -n 20
last=$(echo "$out" | tail -n 1)
p=$(echo "$last" | sed -n 's/^\([0-9]*\) passed.*/\1/p'); f=$(echo "$last" | sed -n 's/.*, \([0-9]*\) failed.*/\1/p')
s=$(echo "$last" | sed -n 's/.*, \([0-9]*\) skipped.*/\1/p')
tally "c-service example (install, find_package, pkg-config)" $rc ${p:-0} ${f:-0} ${s:-0}

# The runtime under AddressSanitizer and UndefinedBehaviorSanitizer (any
# report fails the run): its unit tests, and the scheduler on a fixture.
SAN_BUILD="$BUILD-sanitize"
SAN_FLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"
out=$( { cmake -G Ninja -S "$ROOT" -B "$SAN_BUILD" -DKILN_BUILD_COMPILER=OFF \
           -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_FLAGS="$SAN_FLAGS" \
           -DCMAKE_CXX_FLAGS="$SAN_FLAGS" >/dev/null &&
         ninja -C "$SAN_BUILD" kiln-runtime-tests kiln-scheduler-tests | { grep -v '^\[' || true; } &&
         ASAN_OPTIONS=detect_leaks=1 "$SAN_BUILD/test/unit/kiln-runtime-tests" &&
         ASAN_OPTIONS=detect_leaks=1 KILN_TEST_ARTIFACT="$BUILD/test-artifacts/llama-gqa.kiln" \
           "$SAN_BUILD/bin/kiln-scheduler-tests" --gtest_filter=-*Text*; } 2>&1); rc=$?
echo "$out" | grep -E 'ERROR: |runtime error|^\[  FAILED|SUMMARY' | head -n 20
p=$(( $(echo "$out" | sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' | paste -sd+ -) + 0 ))
tally "sanitizers (ASan+UBSan)" $rc ${p:-0} $([ $rc -eq 0 ] && echo 0 || echo 1) 0

# The runtime's tokenizer against the `tokenizers` package, on SmolLM2's
# tokenizer.json (built just above by check_default_model.sh), the fixture's,
# the SentencePiece-style fixtures of test/fixtures/tokenizers (Llama 2,
# Mistral, Gemma, T5 and a byte-fallback Unigram) and variants of them: one
# line and one pass/fail per (tokenizer, string); "ok" lines are not shown.
SMOLLM2_TOKENIZER="$CACHE/models/smollm2-135m-instruct/tokenizer.json"
smol=(); smol_skipped=1
if [ -f "$SMOLLM2_TOKENIZER" ]; then
  smol=(--smollm2 "$SMOLLM2_TOKENIZER"); smol_skipped=0
else
  echo "tokenizer agreement on SmolLM2 skipped: $SMOLLM2_TOKENIZER is absent (scripts/models/build_smollm2.sh makes it)"
fi
out=$("$PY" "$ROOT/test/runtime/check_tokenizer_agreement.py" \
        --tool "$BUILD/bin/kiln-tokenize-tool" "${smol[@]}" \
        --fixture "$ROOT/test/fixtures/models/llama-genai-int4/tokenizer.json" \
        --fixture-dir "$ROOT/test/fixtures/tokenizers" 2>&1); rc=$?
echo "$out" | grep -v -e '^ok ' -e '^skip ' | tail -n 45
last=$(echo "$out" | tail -n 1)
p=$(echo "$last" | sed -n 's/^\([0-9]*\) passed.*/\1/p'); f=$(echo "$last" | sed -n 's/.*, \([0-9]*\) failed.*/\1/p')
s=$(echo "$last" | sed -n 's/.*, \([0-9]*\) skipped.*/\1/p')
tally "tokenizer" $rc ${p:-0} ${f:-0} $(( ${s:-0} + smol_skipped ))

# Chat templates against transformers' apply_chat_template: SmolLM2's, the
# fixtures' (Llama 3.1, Qwen2.5, Mistral v0.3, Phi-3, Gemma) and one small
# template per Jinja construct; one pass/fail per (template, conversation).
SMOLLM2_DIR="$CACHE/models/smollm2-135m-instruct"
if [ -f "$SMOLLM2_DIR/tokenizer_config.json" ] && [ -f "$SMOLLM2_DIR/tokenizer.json" ]; then
  out=$("$PY" "$ROOT/test/runtime/check_chat_templates.py" \
          --tool "$BUILD/bin/kiln-chat-template-tool" --smollm2 "$SMOLLM2_DIR" \
          --fixtures "$ROOT/test/fixtures/chat_templates" 2>&1); rc=$?
  echo "$out" | grep -v '^PASS' | tail -n 12
  last=$(echo "$out" | tail -n 1)
  p=$(echo "$last" | sed -n 's/^\([0-9]*\) passed.*/\1/p'); f=$(echo "$last" | sed -n 's/.*, \([0-9]*\) failed.*/\1/p')
  tally "chat templates" $rc ${p:-0} ${f:-0} 0
else
  echo "chat template agreement skipped: $SMOLLM2_DIR is absent (scripts/models/build_smollm2.sh makes it)"
  tally "chat templates" 0 0 0 1
fi

# The dialect and pass references in docs/ are generated from ODS: they must
# be current.
ninja -C "$BUILD" mlir-doc >/dev/null 2>&1
if diff -qr "$BUILD/docs/kiln" "$ROOT/docs/dialect" >/dev/null; then
  tally "docs" 0 1 0 0
else
  echo "docs/dialect is stale: run 'ninja -C build kiln-doc' and commit it"
  tally "docs" 1 0 1 0
fi

# Formatting of C/C++ sources (clang-format from LLVM 22 when present).
CF=$(command -v clang-format-22 || command -v clang-format || true)
if [ -n "$CF" ]; then
  bad=$(cd "$ROOT" && git ls-files '*.cpp' '*.h' '*.c' | xargs "$CF" --dry-run 2>&1 | grep -c 'warning:' || true)
  tally "format" $([ "$bad" -eq 0 ] && echo 0 || echo 1) $([ "$bad" -eq 0 ] && echo 1 || echo 0) $([ "$bad" -eq 0 ] && echo 0 || echo 1) 0
  [ "$bad" -eq 0 ] || echo "clang-format: $bad lines need formatting (run: git ls-files '*.cpp' '*.h' '*.c' | xargs $CF -i)"
fi

echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
