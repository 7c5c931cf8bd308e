#!/usr/bin/env python3
"""kiln against onnxruntime on the same ONNX decoder, same thread count.

Runs, in one invocation:
  * `kiln bench` on the compiled artifact (compiling it first if asked),
  * onnxruntime (CPU EP) on the same model.onnx: a prefill of --prompt-len
    random tokens, then --gen-len greedy decode steps feeding present KV back
    as past (the usual Optimum/GenAI loop, outputs fetched as numpy),
  * a memory-bandwidth probe with the same thread count (numpy sums of the
    threads' slices of a 1 GiB array, best of 5),
and prints prefill and decode tokens/s of both, kiln/onnxruntime ratios,
and the decode bandwidth kiln uses (weight bytes x tok/s) against the probe.

Usage:
  bench/compare_onnxruntime.py --model DIR --artifact NAME.kiln --kiln BIN
      [--threads 1 2] [--prompt-len 128] [--gen-len 128]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import onnxruntime as ort


def bandwidth_gbs(threads: int) -> float:
    """Read bandwidth of `threads` threads summing their slices of 1 GiB
    (numpy releases the GIL in sum), best of 5."""
    a = np.ones(1 << 28, dtype=np.float32)  # 1 GiB
    parts = np.array_split(a, threads)
    best = 1e9
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for _ in range(5):
            t = time.perf_counter()
            list(pool.map(np.sum, parts))
            best = min(best, time.perf_counter() - t)
    return a.nbytes / best / 1e9


def ort_bench(model: str, threads: int, prompt_len: int, gen_len: int,
              repeats: int, head_dim: int) -> tuple[float, float]:
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(os.path.join(model, "model.onnx"), so,
                                providers=["CPUExecutionProvider"])
    inputs = {i.name: i for i in sess.get_inputs()}
    outputs = [o.name for o in sess.get_outputs()]
    past_names = [n for n in inputs
                  if n not in ("input_ids", "attention_mask", "position_ids")]
    present_names = [n for n in outputs if n != "logits"]
    vocab = sess.get_outputs()[0].shape[-1]
    rng = np.random.default_rng(0)
    prompt = rng.integers(0, vocab if isinstance(vocab, int) else 1000,
                          prompt_len).astype(np.int64)

    def run(tokens, total, past):
        feeds = {"input_ids": tokens[None]}
        if "attention_mask" in inputs:
            feeds["attention_mask"] = np.ones((1, total), dtype=np.int64)
        if "position_ids" in inputs:
            feeds["position_ids"] = np.arange(total - len(tokens), total,
                                              dtype=np.int64)[None]
        feeds.update(past)
        out = dict(zip(outputs, sess.run(outputs, feeds)))
        return out["logits"], {p: out[q] for p, q in zip(past_names,
                                                         present_names)}

    best_prefill, best_decode = 1e9, 1e9
    for r in range(repeats + 1):
        past = {}
        for n in past_names:
            # [batch 1, heads, no past tokens, head size]; GenAI's
            # GroupQueryAttention names the head size `kv_cache_dim`.
            shape = [1 if i == 0 else
                     (head_dim if i == 3 else 0) if isinstance(d, str) else d
                     for i, d in enumerate(inputs[n].shape)]
            past[n] = np.zeros(shape, dtype=np.float32)
        t0 = time.perf_counter()
        logits, past = run(prompt, prompt_len, past)
        nxt = int(np.argmax(logits[0, -1]))
        t1 = time.perf_counter()
        for g in range(1, gen_len):
            logits, past = run(np.array([nxt], dtype=np.int64),
                               prompt_len + g, past)
            nxt = int(np.argmax(logits[0, -1]))
        t2 = time.perf_counter()
        if r:
            best_prefill = min(best_prefill, t1 - t0)
            best_decode = min(best_decode, t2 - t1)
    return prompt_len / best_prefill, (gen_len - 1) / best_decode


def kiln_bench(kiln: str, artifact: str, threads: int, prompt_len: int,
               gen_len: int, repeats: int) -> dict[str, float]:
    out = subprocess.run([kiln, "bench", artifact, "--threads", str(threads),
                          "--prompt-len", str(prompt_len), "--gen-len",
                          str(gen_len), "--repeats", str(repeats)],
                         check=True, capture_output=True, text=True).stdout
    def grab(key):
        m = re.search(rf"^{key}\s+([0-9.]+)", out, re.M)
        return float(m.group(1)) if m else float("nan")
    return {"prefill": grab("prefill"), "decode": grab("decode"),
            "ttft_ms": grab("ttft"), "rss_mb": grab("peak rss"),
            "open_ms": grab("open")}


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model", required=True, help="directory with model.onnx")
    p.add_argument("--artifact", required=True)
    p.add_argument("--kiln", required=True)
    p.add_argument("--kilnc", help="compile --artifact from --model first")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--prompt-len", type=int, default=128)
    p.add_argument("--gen-len", type=int, default=128)
    p.add_argument("--repeats", type=int, default=2)
    args = p.parse_args()
    if args.kilnc:
        subprocess.run([args.kilnc, os.path.join(args.model, "model.onnx"),
                        "-o", args.artifact, "--force", "--quiet"], check=True)
    weights = os.path.getsize(os.path.join(args.artifact, "weights.bin"))
    with open(os.path.join(args.artifact, "manifest.json")) as f:
        manifest = json.load(f)
    head_dim = manifest["model"]["head_dim"]
    print(f"model {args.model}; prompt {args.prompt_len}, gen {args.gen_len}; "
          f"weights {weights / 1e6:.1f} MB; quantization "
          f"{manifest['quantization']}; bandwidth probe: numpy sums over "
          f"1 GiB with the same threads")
    print(f"{'threads':>7} {'kiln prefill':>13} {'ort prefill':>12} {'ratio':>6}"
          f" {'kiln decode':>12} {'ort decode':>11} {'ratio':>6} "
          f"{'kiln GB/s':>9} {'probe':>6} {'of bw':>6} {'ttft ms':>8} "
          f"{'rss MB':>7}")
    for t in args.threads:
        k = kiln_bench(args.kiln, args.artifact, t, args.prompt_len,
                       args.gen_len, args.repeats)
        o_pre, o_dec = ort_bench(args.model, t, args.prompt_len, args.gen_len,
                                 args.repeats, head_dim)
        bw = bandwidth_gbs(t)
        used = weights * k["decode"] / 1e9
        print(f"{t:>7} {k['prefill']:>13.1f} {o_pre:>12.1f} "
              f"{k['prefill'] / o_pre:>6.2f} {k['decode']:>12.1f} "
              f"{o_dec:>11.1f} {k['decode'] / o_dec:>6.2f} {used:>9.2f} "
              f"{bw:>6.1f} {used / bw:>6.0%} {k['ttft_ms']:>8.1f} {k['rss_mb']:>7.1f}",
              flush=True)


if __name__ == "__main__":
    main()
