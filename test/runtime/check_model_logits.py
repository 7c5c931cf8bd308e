#!/usr/bin/env python3
"""Compiled models against onnxruntime on the same ONNX.

For each fixture named on the command line this compiles the model with
kilnc, loads the artifact through the runtime's C API (libkiln.so, ctypes)
and checks, against onnxruntime running the ONNX graph with its own KV
handling:

  1. prefill: the logits after each sequence's last prompt token, with two
     prompts of different lengths prefilled in ONE step (a mixed batch);
  2. decode: 32 steps fed the reference's greedy tokens, logits compared
     at every step (max abs diff <= tol * max |logit|), and 64 greedy
     tokens identical to onnxruntime's greedy loop;
  3. batching: a step carrying a decode token of one sequence and a prompt
     chunk of another gives each the logits it gets alone.

Quantized models (the artifact's manifest lists a quantization scheme):
onnxruntime's MatMulNBits computes in fp32 at accuracy_level 0 and rounds
the activations to int8 per block at accuracy_level 4 (what the GenAI
builder writes); kilnc follows the attribute (--quant-compute=auto). So:

  - the checks above run on an artifact compiled with --quant-compute=f32
    against a copy of the model with accuracy_level 0 (same weights, same
    int4 semantics; fp32 tolerance);
  - where the model has accuracy_level 4, the default artifact (int8
    activations) runs against the model as shipped: prefill and 64 decode
    steps teacher-forced with onnxruntime's greedy tokens. Int8 rounding
    turns tiny fp32 differences into whole quantization steps, so the
    yardstick is onnxruntime against itself: the same rows recomputed by
    one prefill of the whole history. Mean KL(ort || kiln) must be within
    QUANT_KL_SELF times onnxruntime's own (or QUANT_KL_FLOOR); top-1
    agreement and the issue's goal are printed as `note` lines. A decode
    token must come out bit for bit the same alone and batched with a
    prompt chunk (the int8 kernel is batch-invariant).

Usage: check_model_logits.py --kilnc BIN --libkiln SO --work DIR FIXTURE_DIR...
Prints one line per check and `N passed, M failed`; exits 1 on any failure.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort

TOL = 1e-4  # of max |logit| (issue 3: fp32 tolerance)
DECODE_STEPS = 32
GREEDY_TOKENS = 64
QUANT_TOP1 = 0.99  # issue 3: int4 top-1 agreement with onnxruntime
QUANT_KL = 1e-3  # issue 3: int4 KL(onnxruntime || kiln), mean over rows
# Int8 activations: kiln's mean KL to onnxruntime as shipped may be this
# many times onnxruntime's KL to itself (decode vs one prefill)...
QUANT_KL_SELF = 2.0
# ... or this much where onnxruntime agrees with itself to within it (the
# fixture: kiln 6e-14, onnxruntime 1e-8, fp32 activations 5e-4).
QUANT_KL_FLOOR = 1e-6


def log_softmax(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    m = x.max(axis=-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=-1, keepdims=True))


def kl_divergence(want: np.ndarray, got: np.ndarray) -> float:
    lp, lq = log_softmax(want), log_softmax(got)
    return float((np.exp(lp) * (lp - lq)).sum())


class SeqTokens(ctypes.Structure):
    _fields_ = [("seq", ctypes.c_int64),
                ("tokens", ctypes.POINTER(ctypes.c_int32)),
                ("num_tokens", ctypes.c_int64)]


class EngineOptions(ctypes.Structure):
    _fields_ = [("num_threads", ctypes.c_int32),
                ("kv_cache_tokens", ctypes.c_int64),
                ("prefix_cache", ctypes.c_int32),
                ("batch_invariant", ctypes.c_int32)]


class ModelInfo(ctypes.Structure):
    _fields_ = [("vocab_size", ctypes.c_int64),
                ("context_length", ctypes.c_int64),
                ("max_batch_tokens", ctypes.c_int64),
                ("layers", ctypes.c_int64), ("kv_heads", ctypes.c_int64),
                ("head_dim", ctypes.c_int64), ("block_size", ctypes.c_int64),
                ("arena_bytes", ctypes.c_int64),
                ("weights_bytes", ctypes.c_int64),
                ("num_eos_tokens", ctypes.c_int32),
                ("eos_token_ids", ctypes.c_int32 * 8),
                ("tokenizer_path", ctypes.c_char_p),
                ("target_cpu", ctypes.c_char_p)]


class Kiln:
    """The runtime's C API through ctypes."""

    def __init__(self, lib_path: str):
        lib = ctypes.CDLL(lib_path)
        lib.kiln_last_error_message.restype = ctypes.c_char_p
        lib.kiln_model_open.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
        lib.kiln_engine_create.argtypes = [ctypes.c_void_p, ctypes.c_void_p,
                                           ctypes.c_void_p]
        lib.kiln_engine_seq_create.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        lib.kiln_engine_seq_free.argtypes = [ctypes.c_void_p, ctypes.c_int64]
        lib.kiln_engine_step.argtypes = [ctypes.c_void_p,
                                         ctypes.POINTER(SeqTokens),
                                         ctypes.c_int64, ctypes.c_void_p,
                                         ctypes.c_size_t]
        lib.kiln_model_get_info.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        lib.kiln_engine_free.argtypes = [ctypes.c_void_p]
        lib.kiln_model_free.argtypes = [ctypes.c_void_p]
        for fn in (lib.kiln_engine_free_blocks, lib.kiln_engine_total_blocks):
            fn.argtypes = [ctypes.c_void_p]
            fn.restype = ctypes.c_int64
        self.lib = lib

    def check(self, status: int, what: str):
        if status != 0:
            raise RuntimeError(f"{what}: status {status}: "
                               f"{self.lib.kiln_last_error_message().decode()}")


class Engine:
    def __init__(self, kiln: Kiln, artifact: str, threads: int = 2):
        self.k = kiln
        self.model = ctypes.c_void_p()
        kiln.check(kiln.lib.kiln_model_open(artifact.encode(),
                                            ctypes.byref(self.model)),
                   "kiln_model_open")
        self.info = ModelInfo()
        kiln.check(kiln.lib.kiln_model_get_info(self.model,
                                                ctypes.byref(self.info)),
                   "kiln_model_get_info")
        options = EngineOptions(threads, 0)
        self.engine = ctypes.c_void_p()
        kiln.check(kiln.lib.kiln_engine_create(self.model,
                                               ctypes.byref(options),
                                               ctypes.byref(self.engine)),
                   "kiln_engine_create")
        self.vocab = self.info.vocab_size

    def new_seq(self) -> int:
        seq = ctypes.c_int64()
        self.k.check(self.k.lib.kiln_engine_seq_create(self.engine,
                                                       ctypes.byref(seq)),
                     "kiln_engine_seq_create")
        return seq.value

    def step(self, batch: list[tuple[int, list[int]]]) -> np.ndarray:
        arrays = [np.asarray(tokens, dtype=np.int32) for _, tokens in batch]
        seqs = (SeqTokens * len(batch))()
        for i, (seq, _) in enumerate(batch):
            seqs[i].seq = seq
            seqs[i].tokens = arrays[i].ctypes.data_as(
                ctypes.POINTER(ctypes.c_int32))
            seqs[i].num_tokens = len(arrays[i])
        logits = np.zeros((len(batch), self.vocab), dtype=np.float32)
        self.k.check(self.k.lib.kiln_engine_step(
            self.engine, seqs, len(batch), logits.ctypes.data, logits.size),
            "kiln_engine_step")
        return logits

    def close(self):
        self.k.lib.kiln_engine_free(self.engine)
        self.k.lib.kiln_model_free(self.model)


class OrtModel:
    """onnxruntime running the exported graph with its own cache handling."""

    def __init__(self, fixture: str, head_dim: int):
        self.head_dim = head_dim
        self.session = ort.InferenceSession(
            os.path.join(fixture, "model.onnx"),
            providers=["CPUExecutionProvider"])
        self.inputs = {i.name: i for i in self.session.get_inputs()}
        self.outputs = [o.name for o in self.session.get_outputs()]
        self.past_names = [n for n in self.inputs
                           if n not in ("input_ids", "attention_mask",
                                        "position_ids")]
        self.present_names = [n for n in self.outputs if n != "logits"]
        assert len(self.past_names) == len(self.present_names)

    def empty_past(self):
        past = {}
        for name in self.past_names:
            shape = self.inputs[name].shape
            # [batch, heads, past, head_dim]: batch 1, no past tokens; a
            # symbolic head size (GroupQueryAttention's kv_cache_dim) is
            # the model's.
            dims = [1 if i == 0 else
                    (self.head_dim if i == 3 else 0) if isinstance(d, str)
                    else d for i, d in enumerate(shape)]
            past[name] = np.zeros(dims, dtype=np.float32)
        return past

    def run(self, all_tokens: list[int], new: int, past):
        """Logits [new, V] for the last `new` tokens of `all_tokens`."""
        total = len(all_tokens)
        if not self.past_names:  # no cache: recompute everything
            feeds = {"input_ids": np.asarray([all_tokens], dtype=np.int64)}
            if "attention_mask" in self.inputs:
                feeds["attention_mask"] = np.ones((1, total), dtype=np.int64)
            if "position_ids" in self.inputs:
                feeds["position_ids"] = np.arange(total, dtype=np.int64)[None]
            out = self.session.run(["logits"], feeds)
            return out[0][0, -new:], past
        feeds = {"input_ids": np.asarray([all_tokens[-new:]], dtype=np.int64)}
        if "attention_mask" in self.inputs:
            feeds["attention_mask"] = np.ones((1, total), dtype=np.int64)
        if "position_ids" in self.inputs:
            feeds["position_ids"] = np.arange(total - new, total,
                                              dtype=np.int64)[None]
        feeds.update(past)
        out = self.session.run(self.outputs, feeds)
        named = dict(zip(self.outputs, out))
        new_past = {p: named[q] for p, q in zip(self.past_names,
                                                self.present_names)}
        return named["logits"][0, -new:], new_past


class Checker:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def expect(self, ok: bool, what: str):
        print(("ok   " if ok else "FAIL ") + what, flush=True)
        if ok:
            self.passed += 1
        else:
            self.failed += 1

    def close_logits(self, got: np.ndarray, want: np.ndarray, what: str):
        scale = float(np.max(np.abs(want)))
        diff = float(np.max(np.abs(got - want)))
        self.expect(diff <= TOL * scale,
                    f"{what}: max|diff| {diff:.2e} (limit {TOL * scale:.2e})")


def edited_copy(fixture: str, work: str, suffix: str,
                attrs: dict[str, int]) -> str:
    """A copy of the fixture's model with the integer attributes in `attrs`
    set wherever a node has them, its data files hard-linked or copied
    (onnxruntime refuses external data behind a symlink)."""
    out = os.path.join(work, os.path.basename(os.path.normpath(fixture)) +
                       suffix)
    os.makedirs(out, exist_ok=True)
    model = onnx.load(os.path.join(fixture, "model.onnx"),
                      load_external_data=False)
    for node in model.graph.node:
        for a in node.attribute:
            if a.name in attrs:
                a.i = attrs[a.name]
    onnx.save(model, os.path.join(out, "model.onnx"))
    for f in os.listdir(fixture):
        src, dst = os.path.join(fixture, f), os.path.join(out, f)
        if f != "model.onnx" and os.path.isfile(src) and not os.path.exists(dst):
            try:
                os.link(src, dst)
            except OSError:
                shutil.copyfile(src, dst)
    return out


def exact_reference(fixture: str, work: str) -> str:
    """The fixture with every MatMulNBits at accuracy_level 0 (fp32
    activations)."""
    return edited_copy(fixture, work, "-accuracy0", {"accuracy_level": 0})


def has_local_window(fixture: str) -> bool:
    """Whether a GroupQueryAttention of the model has a local_window_size
    attribute (the GenAI builder writes -1, no window)."""
    model = onnx.load(os.path.join(fixture, "model.onnx"),
                      load_external_data=False)
    return any(a.name == "local_window_size"
               for node in model.graph.node
               if node.op_type == "GroupQueryAttention"
               for a in node.attribute)


def compile_model(fixture: str, args, c: Checker, suffix: str = "",
                  extra: list[str] = ()) -> str | None:
    name = os.path.basename(os.path.normpath(fixture))
    artifact = os.path.join(args.work, name + suffix + ".kiln")
    cmd = [args.kilnc, os.path.join(fixture, "model.onnx"), "-o", artifact,
           "--force", "--quiet", "--max-batch-tokens", "64", *extra]
    result = subprocess.run(cmd, capture_output=True, text=True)
    c.expect(result.returncode == 0,
             f"{name}: kilnc {' '.join([*extra, 'compiles'])} "
             f"({result.stderr.strip()[:300]})")
    return artifact if result.returncode == 0 else None


def int8_levels(fixture: str) -> bool:
    """Whether some MatMulNBits of the model has accuracy_level 4."""
    model = onnx.load(os.path.join(fixture, "model.onnx"),
                      load_external_data=False)
    return any(a.name == "accuracy_level" and a.i == 4
               for node in model.graph.node if node.op_type == "MatMulNBits"
               for a in node.attribute)


def check_fixture(fixture: str, args, kiln: Kiln, c: Checker):
    name = os.path.basename(os.path.normpath(fixture))
    artifact = compile_model(fixture, args, c)
    if not artifact:
        return
    with open(os.path.join(artifact, "manifest.json")) as f:
        manifest = json.load(f)
    quantized = manifest["quantization"] != "none"
    kv_window = manifest["compile"]["kv_window"]
    check_fusion(fixture, artifact, args, kiln, c)
    if quantized and int8_levels(fixture):
        check_int8_activations(fixture, artifact, kiln, c)
    if quantized:
        # fp32 activations, against onnxruntime at accuracy_level 0.
        artifact = compile_model(fixture, args, c, "-f32",
                                 ["--quant-compute=f32"])
        if not artifact:
            return
    engine = Engine(kiln, artifact)
    ref = OrtModel(exact_reference(fixture, args.work) if quantized
                   else fixture, engine.info.head_dim)
    rng = np.random.default_rng(7)
    vocab = engine.vocab

    # 1. Two prompts of different lengths prefilled in one step.
    prompts = [list(rng.integers(3, vocab, 9)), list(rng.integers(3, vocab, 5))]
    seqs = [engine.new_seq(), engine.new_seq()]
    got = engine.step(list(zip(seqs, prompts)))
    pasts, histories, ref_next = [], [], []
    for i, prompt in enumerate(prompts):
        want, past = ref.run(prompt, len(prompt), ref.empty_past())
        c.close_logits(got[i], want[-1],
                       f"{name}: prefill logits, sequence {i} "
                       f"({len(prompt)} tokens, mixed batch)")
        pasts.append(past)
        histories.append(list(prompt))
        ref_next.append(int(np.argmax(want[-1])))

    # 2. Decode: both sequences step together, fed onnxruntime's greedy
    # token; logits compared every step; tokens must agree.
    next_tokens = [int(np.argmax(got[i])) for i in range(2)]
    worst = [0.0, 0.0]
    agree = [True, True]
    for step in range(GREEDY_TOKENS):
        for i in range(2):
            agree[i] &= next_tokens[i] == ref_next[i]
            histories[i].append(ref_next[i])
        got = engine.step([(seqs[i], [ref_next[i]]) for i in range(2)])
        for i in range(2):
            want, pasts[i] = ref.run(histories[i], 1, pasts[i])
            if step < DECODE_STEPS:
                scale = float(np.max(np.abs(want[-1])))
                worst[i] = max(worst[i], float(
                    np.max(np.abs(got[i] - want[-1]))) / scale)
            next_tokens[i] = int(np.argmax(got[i]))
            ref_next[i] = int(np.argmax(want[-1]))
    for i in range(2):
        c.expect(worst[i] <= TOL,
                 f"{name}: {DECODE_STEPS} decode steps, sequence {i}: worst "
                 f"max|diff|/max|logit| {worst[i]:.2e} (limit {TOL:.0e})")
        c.expect(agree[i], f"{name}: {GREEDY_TOKENS} greedy tokens identical "
                           f"to onnxruntime, sequence {i}")

    # 2b. The sequences hold the blocks a later query can still see: with a
    # sliding window on every layer (kv_window >= 0), not those wholly
    # before length - kv_window. Step 3 then reuses the freed blocks.
    bs = engine.info.block_size
    held = 0
    for h in histories:
        freed = (len(h) - kv_window) // bs if 0 <= kv_window < len(h) else 0
        held += -(-len(h) // bs) - freed
    lib = kiln.lib
    free = lib.kiln_engine_free_blocks(engine.engine)
    total = lib.kiln_engine_total_blocks(engine.engine)
    c.expect(free == total - held,
             f"{name}: KV blocks held after {GREEDY_TOKENS} decode steps: "
             f"{total - free}, want {held} (kv_window {kv_window}, "
             f"lengths {[len(h) for h in histories]})")

    # 3. A decode token and a prompt chunk in one step equal each alone.
    alone = engine.new_seq()
    chunk = list(rng.integers(3, vocab, 7))
    alone_logits = engine.step([(alone, chunk)])[0]
    mixed = engine.new_seq()
    tok = int(rng.integers(3, vocab))
    both = engine.step([(seqs[0], [tok]), (mixed, chunk)])
    c.close_logits(both[1], alone_logits,
                   f"{name}: a prompt chunk batched with a decode token "
                   f"equals it alone")
    histories[0].append(tok)
    want, _ = ref.run(histories[0], 1, pasts[0])
    c.close_logits(both[0], want[-1],
                   f"{name}: the decode token batched with a prompt chunk")
    check_step_errors(engine, mixed, c, name)
    engine.close()


def check_fusion(fixture: str, artifact: str, args, kiln: Kiln, c: Checker):
    """kilnc --fuse-matmuls (off by default) must not change a bit of the
    logits, and must not leave the joined weights' pieces in weights.bin:
    an artifact compiled with it against the default one, two prompts
    prefilled in one step and then decoded together."""
    name = os.path.basename(os.path.normpath(fixture))
    fused = compile_model(fixture, args, c, "-fused", ["--fuse-matmuls"])
    if not fused:
        return
    unfused = artifact
    artifact = fused
    sizes = []
    for a in (artifact, unfused):
        with open(os.path.join(a, "manifest.json")) as f:
            sizes.append(json.load(f)["compile"]["weights_bytes"])
    c.expect(sizes[0] <= sizes[1],
             f"{name}: weights.bin fused {sizes[0]} bytes, unfused "
             f"{sizes[1]} (each weight once)")
    engines = [Engine(kiln, artifact), Engine(kiln, unfused)]
    rng = np.random.default_rng(11)
    vocab = engines[0].vocab
    prompts = [list(rng.integers(3, vocab, 9)), list(rng.integers(3, vocab, 5))]
    seqs = [[e.new_seq(), e.new_seq()] for e in engines]
    logits = [e.step(list(zip(s, prompts))) for e, s in zip(engines, seqs)]
    same = np.array_equal(logits[0], logits[1])
    for _ in range(8):
        tokens = [int(np.argmax(logits[1][i])) for i in range(2)]
        logits = [e.step([(s[i], [tokens[i]]) for i in range(2)])
                  for e, s in zip(engines, seqs)]
        same &= np.array_equal(logits[0], logits[1])
    c.expect(same, f"{name}: fused matmuls give the unfused logits bit for "
                   f"bit (prefill and 8 decode steps)")
    for e in engines:
        e.close()


def check_int8_activations(fixture: str, artifact: str, kiln: Kiln,
                           c: Checker):
    """The default artifact of a model with accuracy_level 4 against
    onnxruntime running it as shipped (see the module comment)."""
    name = os.path.basename(os.path.normpath(fixture))
    engine = Engine(kiln, artifact)
    ort_model = OrtModel(fixture, engine.info.head_dim)
    rng = np.random.default_rng(7)
    vocab = engine.vocab
    prompts = [list(rng.integers(3, vocab, 9)), list(rng.integers(3, vocab, 5))]
    seqs = [engine.new_seq(), engine.new_seq()]
    got = engine.step(list(zip(seqs, prompts)))
    rows = []  # (kiln, onnxruntime decoding, onnxruntime in one prefill)
    pasts, histories, next_tokens = [], [], []
    for i, prompt in enumerate(prompts):
        want, past = ort_model.run(prompt, len(prompt),
                                   ort_model.empty_past())
        rows.append((got[i], want[-1], want[-1]))
        pasts.append(past)
        histories.append(list(prompt))
        next_tokens.append(int(np.argmax(want[-1])))
    for _ in range(GREEDY_TOKENS):
        for i in range(2):
            histories[i].append(next_tokens[i])
        got = engine.step([(seqs[i], [next_tokens[i]]) for i in range(2)])
        for i in range(2):
            want, pasts[i] = ort_model.run(histories[i], 1, pasts[i])
            whole, _ = ort_model.run(histories[i], len(histories[i]),
                                     ort_model.empty_past())
            rows.append((got[i], want[-1], whole[-1]))
            next_tokens[i] = int(np.argmax(want[-1]))

    def agreement(pairs):
        kls = [kl_divergence(w, g) for g, w in pairs]
        top1 = np.mean([np.argmax(g) == np.argmax(w) for g, w in pairs])
        return float(np.mean(kls)), float(np.max(kls)), float(top1)

    kl, kl_max, top1 = agreement([(g, w) for g, w, _ in rows])
    self_kl, self_max, self_top1 = agreement([(x, w) for _, w, x in rows])
    limit = max(QUANT_KL_FLOOR, QUANT_KL_SELF * self_kl)
    c.expect(kl <= limit,
             f"{name}: int8 activations against onnxruntime as shipped: mean "
             f"KL {kl:.2e} over {len(rows)} rows (limit {limit:.2e}: "
             f"{QUANT_KL_SELF:g} x onnxruntime's own {self_kl:.2e}, at "
             f"least {QUANT_KL_FLOOR:.0e})")
    print(f"note {name}: int8 activations against onnxruntime as shipped: "
          f"top-1 agreement {top1:.1%}, mean KL {kl:.2e} (max {kl_max:.2e}); "
          f"onnxruntime decoding against itself in one prefill: top-1 "
          f"{self_top1:.1%}, mean KL {self_kl:.2e} (max {self_max:.2e}); "
          f"issue goal: >= {QUANT_TOP1:.0%}, <= {QUANT_KL:.0e}", flush=True)

    # Batch invariance: the same decode token on the same history, alone
    # and batched with a prompt chunk, gives the same bits.
    history = list(rng.integers(3, vocab, 6))
    twins = [engine.new_seq(), engine.new_seq()]
    for s in twins:
        engine.step([(s, history)])
    token = int(rng.integers(3, vocab))
    alone = engine.step([(twins[0], [token])])[0]
    chunk_seq = engine.new_seq()
    both = engine.step([(twins[1], [token]),
                        (chunk_seq, list(rng.integers(3, vocab, 7)))])
    c.expect(np.array_equal(alone, both[0]),
             f"{name}: int8 activations: a decode token batched with a "
             f"prompt chunk gives the bits it gives alone (max|diff| "
             f"{float(np.max(np.abs(alone - both[0]))):.2e})")
    engine.close()


def check_step_errors(engine: Engine, seq: int, c: Checker, name: str):
    """Bad steps fail with the documented status and change nothing."""
    INVALID, NOT_FOUND, TOO_SMALL = 1, 2, 7
    lib = engine.k.lib
    lib.kiln_engine_seq_length.restype = ctypes.c_int64
    lib.kiln_engine_seq_length.argtypes = [ctypes.c_void_p, ctypes.c_int64]
    before = lib.kiln_engine_seq_length(engine.engine, seq)
    vocab, budget = engine.vocab, engine.info.max_batch_tokens

    def status(batch, rows=None):
        arrays = [np.asarray(t, dtype=np.int32) for _, t in batch]
        seqs = (SeqTokens * len(batch))()
        for i, (s, _) in enumerate(batch):
            seqs[i].seq = s
            seqs[i].tokens = arrays[i].ctypes.data_as(
                ctypes.POINTER(ctypes.c_int32))
            seqs[i].num_tokens = len(arrays[i])
        n_rows = len(batch) if rows is None else rows
        logits = np.zeros((max(n_rows, 1), vocab), dtype=np.float32)
        return lib.kiln_engine_step(engine.engine, seqs, len(batch),
                                    logits.ctypes.data, n_rows * vocab)

    cases = [
        ("a repeated sequence", status([(seq, [3]), (seq, [4])]), INVALID),
        ("an unknown sequence", status([(10**9, [3])]), INVALID),
        ("a token outside the vocabulary", status([(seq, [vocab])]), INVALID),
        ("a negative token", status([(seq, [-1])]), INVALID),
        (f"more than {budget} tokens in a step",
         status([(seq, [3] * (budget + 1))]), INVALID),
        ("a logits buffer too small", status([(seq, [3])], rows=0), TOO_SMALL),
        ("freeing an unknown sequence",
         lib.kiln_engine_seq_free(engine.engine, 10**9), NOT_FOUND),
    ]
    for what, got, want in cases:
        c.expect(got == want, f"{name}: step with {what} -> status {got} "
                              f"(want {want})")
    c.expect(lib.kiln_engine_seq_length(engine.engine, seq) == before,
             f"{name}: failed steps leave the sequence at {before} tokens")


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--kilnc", required=True)
    p.add_argument("--libkiln", required=True)
    p.add_argument("--work", required=True)
    p.add_argument("fixtures", nargs="+")
    args = p.parse_args()
    os.makedirs(args.work, exist_ok=True)
    kiln = Kiln(args.libkiln)
    c = Checker()
    fixtures = list(args.fixtures)
    # GroupQueryAttention's local_window_size, which no exporter at hand
    # writes: the GenAI fixture with a window of 3 keys (prompts of 9 and 5
    # tokens, 64 decode steps), fp32 activations, against onnxruntime. The
    # first such model is enough.
    for fixture in args.fixtures:
        if has_local_window(fixture):
            fixtures.append(edited_copy(fixture, args.work, "-window3",
                                        {"accuracy_level": 0,
                                         "local_window_size": 3}))
            break
    for fixture in fixtures:
        try:
            check_fixture(fixture, args, kiln, c)
        except RuntimeError as e:
            c.expect(False, f"{os.path.basename(fixture)}: {e}")
    print(f"{c.passed} passed, {c.failed} failed")
    sys.exit(1 if c.failed else 0)


if __name__ == "__main__":
    main()
