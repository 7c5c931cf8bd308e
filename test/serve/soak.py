#!/usr/bin/env python3
"""Soak test of `kiln serve`: many requests at high concurrency, valid and
not, then checks that nothing went wrong and nothing was left behind.

Starts `kiln serve` on loopback (a free port) with an API key, a small KV
cache (--kv-cache-tokens, default 2048, so that long prompts under load
preempt one another and the warm-up round touches every KV block) and a
queue smaller than the load (--max-running / --max-waiting, so that it
overflows), then:

  1. references: a fixed set of requests (completions and chat; greedy,
     seeded sampling, n=2, logprobs, a stop string; prompts from a few
     tokens to over the 256-token step budget, some sharing a prefix) is
     sent one at a time; each answer is that request's reference;
  2. warm-up: a round of the soak mix (below), after which the server's
     resident memory (VmRSS), open descriptors and threads are the
     baseline;
  3. soak: --requests requests (stopping early at --time-limit) with
     --concurrency in flight, drawn at random (--seed) from:
       - valid: a reference request replayed, streamed or not at random;
         its text, finish reasons, logprobs and token count must equal the
         reference (kiln's kernels are batch-invariant, so a request's
         greedy or seeded output does not depend on what else is in the
         batch, on preemption or on prefix-cache hits);
       - cancelled mid-stream: a long streamed request (mostly a prompt of
         100-600 random tokens of its own) whose connection is closed after
         1-40 events;
       - cancelled before the response: a long request whose connection is
         closed before anything comes back (or while its body is still
         being sent);
       - malformed: bad JSON, a body that is not an object, wrong types,
         bad token ids, an empty prompt, n too large, invalid UTF-8, JSON
         nested 100000 deep (400), a missing or wrong API key (401), an
         unknown model or route (404), an oversized body or a prompt longer
         than the context (413): each must get its status and an
         OpenAI-style error body;
       - probes: GET /health, /metrics, /v1/models must answer 200;
     A 429 (queue full) is a valid outcome for any request that reaches the
     queue: it must carry Retry-After and a rate_limit_error body, and the
     client retries it a few times after a short random pause.
  4. checks, one line each: outputs equal their references; no transport
     errors or 5xx; every malformed request got its 4xx; cancelled
     requests show as cancelled in /metrics; 429s well formed; the server
     is up (/health 200) and idle (/metrics: no running or waiting
     requests, no KV blocks held, no HTTP request active); its VmRSS is
     within --rss-tolerance-mb of the baseline; descriptors and threads
     are back to the baseline; SIGTERM then stops it at once with status 0
     (a request whose response never finished would hold the drain).

Why a tolerance on memory (default 32 MiB, about 5% of the ~0.7 GiB
baseline): the weights and the KV cache are fixed-size and resident after
the warm-up, so growth can only be heap; glibc keeps freed memory in up to
16 arenas here (8 per core) and in each HTTP thread's stack pages, and a
request's peak (a 0.5 MB JSON body of token ids, its response) can leave a
few MB per arena. A leak of one allocation per request would have to be
over ~20 KB to exceed it over 1500 requests; the growth per 1000 requests is
printed to show smaller trends.

--quick (for scripts/test.sh) sends ~300 requests at concurrency 48 with
fewer references and finishes in under a minute; the default sends 1500 at
concurrency 64 and takes ~3-5 minutes on two cores.

Prints "ok   CHECK" / "FAIL CHECK: why" per check, then "N passed, M failed";
exits 1 on any failure.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import dataclasses
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families
from tokenizers import Tokenizer

ROOT = Path(__file__).resolve().parents[2]
API_KEY = "soak-key"
RETRIES_429 = 6


# ===-- The server ----------------------------------------------------------===#


class Server:
    """A `kiln serve` process on a free loopback port."""

    def __init__(self, kiln: str, artifact: str, extra: list[str]):
        self.log = tempfile.NamedTemporaryFile("w+", prefix="kiln-soak-", suffix=".log")
        self.cmd = [kiln, "serve", artifact, "--port", "0", "--api-key", API_KEY, *extra]
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=self.log,
                                     text=True)
        line = self.proc.stdout.readline()
        m = re.search(r"listening on http://([^:]+):(\d+) \(model ([^,]+),", line)
        if not m:
            self.kill()
            raise SystemExit(f"kiln serve did not start: {line!r}\n{self.stderr()}")
        self.host, self.port, self.model = m.group(1), int(m.group(2)), m.group(3)
        self.url = f"http://{self.host}:{self.port}"
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()

    def stderr(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read()[-3000:]

    def status(self) -> dict[str, int]:
        """VmRSS (kB), open descriptors and threads of the process."""
        fields = dict(line.split(":", 1) for line in
                      Path(f"/proc/{self.proc.pid}/status").read_text().splitlines())
        return {"rss_kb": int(fields["VmRSS"].split()[0]),
                "rss_anon_kb": int(fields["RssAnon"].split()[0]),
                "threads": int(fields["Threads"]),
                "fds": len(os.listdir(f"/proc/{self.proc.pid}/fd"))}

    def metrics(self) -> dict[str, float]:
        r = httpx.get(self.url + "/metrics", timeout=30)
        r.raise_for_status()
        out = {}
        for family in text_string_to_metric_families(r.text):
            for s in family.samples:
                labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
                out[s.name + (f"{{{labels}}}" if labels else "")] = s.value
        return out

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


# ===-- The request mix -----------------------------------------------------===#


@dataclasses.dataclass
class Spec:
    """A valid request with a reference answer."""

    name: str
    path: str  # /v1/completions or /v1/chat/completions
    body: dict


@dataclasses.dataclass
class Answer:
    """What a request produced, streamed or not, in one comparable shape."""

    texts: list[str]
    finish: list[str]
    completion_tokens: int | None
    logprobs: list[list[float]] | None

    def differs(self, ref: "Answer") -> str:
        """Empty if equal to `ref`, else how it differs."""
        for field in ("texts", "finish", "logprobs"):
            a, b = getattr(self, field), getattr(ref, field)
            if a != b:
                return f"{field}: got {str(a)[:160]!r}, alone {str(b)[:160]!r}"
        if self.completion_tokens is not None and self.completion_tokens != ref.completion_tokens:
            return f"completion_tokens: got {self.completion_tokens}, alone {ref.completion_tokens}"
        return ""


def random_ids(rng: random.Random, ordinary: list[int], n: int) -> list[int]:
    return [rng.choice(ordinary) for _ in range(n)]


def make_specs(rng: random.Random, ordinary: list[int], quick: bool) -> list[Spec]:
    """The reference requests. Quick mode keeps them fewer and shorter."""
    mt = (lambda n: max(4, n // 2)) if quick else (lambda n: n)
    texts = ["The capital of France is", "def quicksort(xs):",
             "Once upon a time, in a small village by the sea,",
             "The three laws of thermodynamics are", "import numpy as np\n\n",
             "A haiku about autumn:\n", "SELECT name, age FROM", "1, 1, 2, 3, 5, 8,"]
    prefix = random_ids(rng, ordinary, 200)  # shared by three prompts
    specs = []
    for i, t in enumerate(texts[:5] if quick else texts):
        specs.append(Spec(f"completion {i}", "/v1/completions",
                          {"prompt": t, "max_tokens": mt(24), "temperature": 0}))
    for i in range(2 if quick else 3):
        specs.append(Spec(f"shared prefix {i}", "/v1/completions",
                          {"prompt": prefix + random_ids(rng, ordinary, 20 + 7 * i),
                           "max_tokens": mt(16), "temperature": 0}))
    for n in ([300] if quick else [300, 520]):  # past the 256-token step budget
        specs.append(Spec(f"long prompt {n}", "/v1/completions",
                          {"prompt": random_ids(rng, ordinary, n), "max_tokens": mt(16),
                           "temperature": 0}))
    specs.append(Spec("seeded sampling", "/v1/completions",
                      {"prompt": texts[2], "max_tokens": mt(24), "temperature": 0.9,
                       "top_p": 0.9, "seed": 1234}))
    specs.append(Spec("n=2 seeded", "/v1/completions",
                      {"prompt": texts[6], "max_tokens": mt(12), "temperature": 0.8,
                       "seed": 7, "n": 2}))
    specs.append(Spec("logprobs", "/v1/completions",
                      {"prompt": texts[1], "max_tokens": mt(12), "temperature": 0,
                       "logprobs": 2}))
    if not quick:
        specs.append(Spec("stop string", "/v1/completions",
                          {"prompt": texts[4], "max_tokens": 32, "temperature": 0,
                           "stop": ["\n"]}))
    chats = [[{"role": "user", "content": "What is the capital of Italy?"}],
             [{"role": "system", "content": "You answer in one sentence."},
              {"role": "user", "content": "Why is the sky blue?"}],
             [{"role": "user", "content": "Write a Python function that adds two numbers."}],
             [{"role": "user", "content": "Hi!"}, {"role": "assistant", "content": "Hello!"},
              {"role": "user", "content": "Tell me a joke."}]]
    for i, msgs in enumerate(chats[:2] if quick else chats):
        specs.append(Spec(f"chat {i}", "/v1/chat/completions",
                          {"messages": msgs, "max_tokens": mt(20), "temperature": 0}))
    specs.append(Spec("chat seeded top_k", "/v1/chat/completions",
                      {"messages": chats[0], "max_tokens": mt(16), "temperature": 1.0,
                       "top_k": 20, "seed": 99}))
    return specs


def answer_of_response(path: str, body: dict) -> Answer:
    chat = path.endswith("chat/completions")
    choices = sorted(body["choices"], key=lambda c: c["index"])
    texts = [c["message"]["content"] if chat else c["text"] for c in choices]
    lps = None
    if any(c.get("logprobs") for c in choices):
        lps = [[x["logprob"] for x in c["logprobs"]["content"]] if chat
               else c["logprobs"]["token_logprobs"] for c in choices]
    return Answer(texts, [c["finish_reason"] for c in choices],
                  body["usage"]["completion_tokens"], lps)


class StreamAnswer:
    """Accumulates SSE events into an Answer."""

    def __init__(self, path: str):
        self.chat = path.endswith("chat/completions")
        self.texts: dict[int, str] = collections.defaultdict(str)
        self.finish: dict[int, str] = {}
        self.lps: dict[int, list[float]] = collections.defaultdict(list)
        self.usage = None
        self.done = False

    def event(self, data: str) -> None:
        if data == "[DONE]":
            self.done = True
            return
        chunk = json.loads(data)
        if "error" in chunk:
            raise RuntimeError(f"error event: {chunk['error']}")
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        for c in chunk.get("choices", []):
            i = c["index"]
            self.texts[i] += (c.get("delta", {}).get("content") or "") if self.chat \
                else c.get("text", "")
            if c.get("finish_reason"):
                self.finish[i] = c["finish_reason"]
            lp = c.get("logprobs")
            if lp:
                self.lps[i] += [x["logprob"] for x in lp["content"]] if self.chat \
                    else lp["token_logprobs"]

    def answer(self) -> Answer:
        if not self.done:
            raise RuntimeError("stream ended without [DONE]")
        idx = sorted(set(self.texts) | set(self.finish))
        return Answer([self.texts[i] for i in idx], [self.finish.get(i) for i in idx],
                      self.usage["completion_tokens"] if self.usage else None,
                      [self.lps[i] for i in idx] if self.lps else None)


def malformed_cases(model: str, context: int) -> list[tuple[str, str, dict, bytes, int]]:
    """(name, path, extra headers, body, expected status)."""
    j = lambda o: json.dumps(o).encode()  # noqa: E731
    comp, chat = "/v1/completions", "/v1/chat/completions"
    deep = 100_000
    return [
        ("bad JSON", comp, {}, b'{"prompt": "hi", "max_tokens": ', 400),
        ("body not an object", comp, {}, b"[1, 2, 3]", 400),
        ("max_tokens a string", comp, {}, j({"prompt": "hi", "max_tokens": "ten"}), 400),
        ("temperature a string", comp, {}, j({"prompt": "hi", "temperature": "hot"}), 400),
        ("stream not a bool", comp, {}, j({"prompt": "hi", "stream": "yes"}), 400),
        ("prompt a number", comp, {}, j({"prompt": 5}), 400),
        ("token id out of range", comp, {}, j({"prompt": [1, 10**9]}), 400),
        ("empty prompt", comp, {}, j({"prompt": ""}), 400),
        ("n too large", comp, {}, j({"prompt": "hi", "n": 1000}), 400),
        ("messages a string", chat, {}, j({"messages": "hello"}), 400),
        ("message without role", chat, {}, j({"messages": [{"content": "x"}]}), 400),
        ("invalid UTF-8", comp, {}, b'{"prompt": "\xff\xfe hi", "max_tokens": 2}', 400),
        ("JSON nested 100000 deep", comp, {},
         b'{"model": ' + b"[" * deep + b"]" * deep + b', "prompt": "hi"}', 400),
        ("no API key", comp, {"Authorization": ""}, j({"prompt": "hi"}), 401),
        ("wrong API key", comp, {"Authorization": "Bearer nope"}, j({"prompt": "hi"}), 401),
        ("unknown model", comp, {}, j({"model": "gpt-5", "prompt": "hi"}), 404),
        ("unknown route", "/v1/embeddings", {}, j({"input": "hi"}), 404),
        ("prompt longer than the context", comp, {},
         j({"prompt": [100] * (context + 8), "max_tokens": 1}), 413),
        ("chat longer than the context", chat, {},
         j({"messages": [{"role": "user", "content": "hello " * (context + 8)}]}), 413),
        ("body over --max-body-bytes", comp, {}, b'{"prompt": "' + b"a" * (4 << 20) + b'"}', 413),
    ]


# ===-- The client ----------------------------------------------------------===#


class Tally:
    """Outcomes of every request sent, by kind."""

    def __init__(self):
        self.counts = collections.Counter()
        self.problems: dict[str, list[str]] = collections.defaultdict(list)
        self.compared = 0
        self.cancelled_mid_stream = 0
        self.malformed = collections.Counter()

    def problem(self, kind: str, what: str) -> None:
        self.problems[kind].append(what)

    def merge(self, other: "Tally") -> None:
        self.counts.update(other.counts)
        for kind, ps in other.problems.items():
            self.problems[kind] += ps
        self.compared += other.compared
        self.cancelled_mid_stream += other.cancelled_mid_stream
        self.malformed.update(other.malformed)


def is_429_ok(status: int, headers, body: bytes) -> str:
    """Empty if a 429 is well formed, else what is wrong with it."""
    if headers.get("retry-after") is None:
        return "429 without Retry-After"
    try:
        err = json.loads(body)["error"]
        if err["type"] != "rate_limit_error":
            return f"429 with error type {err['type']!r}"
    except (ValueError, KeyError, TypeError):
        return f"429 without an OpenAI error body: {body[:100]!r}"
    return ""


async def with_retries(send, tally: Tally, rng: random.Random):
    """Calls send() again after a short pause while it answers 429."""
    for attempt in range(RETRIES_429 + 1):
        status, headers, body = await send()
        if status != 429:
            return status, headers, body
        tally.counts["429"] += 1
        bad = is_429_ok(status, headers, body)
        if bad:
            tally.problem("429", bad)
        await asyncio.sleep(rng.uniform(0.05, 0.4) * (attempt + 1))
    tally.counts["gave up after 429s"] += 1
    return None


async def valid(client: httpx.AsyncClient, srv: Server, spec: Spec, ref: Answer,
                stream: bool, usage: bool, tally: Tally, rng: random.Random) -> None:
    body = dict(spec.body, model=srv.model, stream=stream)
    if stream and usage:
        body["stream_options"] = {"include_usage": True}
    got: list[Answer] = []

    async def send():
        if not stream:
            r = await client.post(srv.url + spec.path, json=body)
            if r.status_code == 200:
                got.append(answer_of_response(spec.path, r.json()))
            return r.status_code, r.headers, r.content
        async with client.stream("POST", srv.url + spec.path, json=body) as r:
            if r.status_code != 200:
                return r.status_code, r.headers, await r.aread()
            acc = StreamAnswer(spec.path)
            async for line in r.aiter_lines():
                if line.startswith("data: "):
                    acc.event(line[len("data: "):])
            got.append(acc.answer())
            return 200, r.headers, b""

    kind = f"valid ({'stream' if stream else 'whole'})"
    try:
        out = await with_retries(send, tally, rng)
    except Exception as e:  # transport errors, bad events
        tally.problem(kind, f"{spec.name}: {type(e).__name__}: {e}")
        return
    if out is None:
        return
    status, _, content = out
    if status != 200:
        tally.problem(kind, f"{spec.name}: HTTP {status}: {content[:200]!r}")
        return
    tally.counts[kind] += 1
    tally.compared += 1
    diff = got[0].differs(ref)
    if diff:
        tally.problem("output", f"{spec.name} ({'stream' if stream else 'whole'}): {diff}")


def raw_request(srv: Server, path: str, body: bytes, content_length: int | None = None) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: {srv.host}\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {API_KEY}\r\n"
            f"Content-Length: {len(body) if content_length is None else content_length}\r\n\r\n"
            ).encode() + body


async def cancel_mid_stream(srv: Server, prompt, chat: bool, tally: Tally,
                            rng: random.Random) -> None:
    """Streams a long request, reads 1-40 events, closes the connection."""
    path = "/v1/chat/completions" if chat else "/v1/completions"
    body = {"model": srv.model, "max_tokens": 2000, "ignore_eos": True, "stream": True,
            "temperature": 0}
    body.update({"messages": [{"role": "user", "content": prompt}]} if chat else
                {"prompt": prompt})
    want = rng.randint(1, 40)

    async def send():
        reader, writer = await asyncio.open_connection(srv.host, srv.port)
        try:
            writer.write(raw_request(srv, path, json.dumps(body).encode()))
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split()[1])
            headers = {k.strip().lower(): v.strip() for k, v in
                       (line.split(":", 1) for line in
                        head.decode().split("\r\n")[1:] if ":" in line)}
            if status != 200:
                n = int(headers.get("content-length", 0))
                return status, headers, await reader.readexactly(n)
            seen, buf = 0, b""
            while seen < want:
                data = await reader.read(4096)
                if not data:
                    raise RuntimeError("stream ended before the events wanted")
                buf += data
                seen = buf.count(b"data: {")
            return 200, headers, b""
        finally:
            writer.close()  # the cancellation: the server notices EOF

    try:
        out = await with_retries(send, tally, rng)
    except Exception as e:
        tally.problem("cancel mid-stream", f"{type(e).__name__}: {e}")
        return
    if out is None:
        return
    if out[0] != 200:
        tally.problem("cancel mid-stream", f"HTTP {out[0]}: {out[2][:200]!r}")
        return
    tally.counts["cancelled mid-stream"] += 1
    tally.cancelled_mid_stream += 1


async def cancel_early(srv: Server, prompt, tally: Tally, rng: random.Random) -> None:
    """Sends a long request and closes the connection before any answer:
    after a pause of up to 0.3 s, or half-way through the body."""
    body = json.dumps({"model": srv.model, "prompt": prompt, "max_tokens": 2000,
                       "ignore_eos": True, "temperature": 0}).encode()
    try:
        reader, writer = await asyncio.open_connection(srv.host, srv.port)
        if rng.random() < 0.25:
            writer.write(raw_request(srv, "/v1/completions", body)[: -len(body) // 2])
            kind = "closed mid-body"
        else:
            writer.write(raw_request(srv, "/v1/completions", body))
            kind = "closed before the response"
        await writer.drain()
        await asyncio.sleep(rng.uniform(0, 0.3))
        writer.close()
        tally.counts[kind] += 1
    except Exception as e:
        tally.problem("cancel early", f"{type(e).__name__}: {e}")


async def malformed(client: httpx.AsyncClient, srv: Server, case, tally: Tally) -> None:
    name, path, headers, body, want = case
    h = {"Content-Type": "application/json", **headers}
    try:
        r = await client.post(srv.url + path, content=body, headers=h)
    except Exception as e:
        tally.problem("malformed", f"{name}: {type(e).__name__}: {e}")
        return
    tally.malformed[name] += 1
    if r.status_code != want:
        tally.problem("malformed", f"{name}: HTTP {r.status_code}, wanted {want}: "
                                   f"{r.text[:200]!r}")
        return
    try:
        err = r.json()["error"]
        assert isinstance(err["message"], str) and err["message"] and err["type"]
    except Exception:
        tally.problem("malformed", f"{name}: not an OpenAI error body: {r.text[:200]!r}")


async def probe(client: httpx.AsyncClient, srv: Server, rng: random.Random, tally: Tally) -> None:
    path = rng.choice(["/health", "/metrics", "/v1/models"])
    try:
        r = await client.get(srv.url + path)
        if r.status_code != 200:
            tally.problem("probe", f"GET {path}: HTTP {r.status_code}")
        else:
            tally.counts["probe"] += 1
    except Exception as e:
        tally.problem("probe", f"GET {path}: {type(e).__name__}: {e}")


MIX = [("valid", 55), ("cancel mid-stream", 10), ("cancel early", 7),
       ("malformed", 24), ("probe", 4)]


async def run_mix(srv: Server, specs: list[Spec], refs: list[Answer], cases,
                  ordinary: list[int], count: int, concurrency: int, time_limit: float,
                  seed: int) -> tuple[Tally, float, int]:
    """Sends up to `count` requests of the mix, `concurrency` at a time,
    starting none after `time_limit` seconds."""
    rng = random.Random(seed)
    kinds, weights = zip(*MIX)
    tally = Tally()
    sem = asyncio.Semaphore(concurrency)
    prompts = [s.body.get("prompt") or s.body["messages"][-1]["content"] for s in specs]
    text_prompts = [p for p in prompts if isinstance(p, str)]
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    start = time.monotonic()
    sent = 0
    async with httpx.AsyncClient(timeout=httpx.Timeout(300.0), limits=limits,
                                 headers={"Authorization": f"Bearer {API_KEY}"}) as client:
        async def one(kind: str, r: random.Random):
            async with sem:
                if kind == "valid":
                    i = r.randrange(len(specs))
                    await valid(client, srv, specs[i], refs[i], r.random() < 0.5,
                                r.random() < 0.5, tally, r)
                elif kind == "cancel mid-stream":
                    # Mostly long prompts of their own: their KV blocks are
                    # not shared, so the cache fills and requests preempt
                    # one another.
                    if r.random() < 0.7:
                        p, chat = random_ids(r, ordinary, r.randint(100, 600)), False
                    else:
                        p, chat = r.choice(text_prompts), r.random() < 0.5
                    await cancel_mid_stream(srv, p, chat, tally, r)
                elif kind == "cancel early":
                    await cancel_early(srv, r.choice(prompts), tally, r)
                elif kind == "malformed":
                    await malformed(client, srv, r.choice(cases), tally)
                else:
                    await probe(client, srv, r, tally)

        tasks = []
        while sent < count and time.monotonic() - start < time_limit:
            await sem.acquire()  # launch only when a slot is free
            sem.release()
            kind = rng.choices(kinds, weights)[0]
            tasks.append(asyncio.create_task(one(kind, random.Random(rng.random()))))
            sent += 1
            await asyncio.sleep(0)
        await asyncio.gather(*tasks)
    return tally, time.monotonic() - start, sent


async def references(srv: Server, specs: list[Spec]) -> list[Answer]:
    """Each spec alone, not streamed."""
    out = []
    async with httpx.AsyncClient(timeout=300, headers={"Authorization": f"Bearer {API_KEY}"}) as c:
        for s in specs:
            r = await c.post(srv.url + s.path, json=dict(s.body, model=srv.model))
            if r.status_code != 200:
                raise RuntimeError(f"reference {s.name}: HTTP {r.status_code}: {r.text[:300]}")
            out.append(answer_of_response(s.path, r.json()))
    return out


# ===-- Main ----------------------------------------------------------------===#


class ServerDied(Exception):
    """The server exited during the soak."""


def wait_idle(srv: Server, baseline_fds: int | None, timeout: float = 20.0) -> dict:
    """Polls /metrics until nothing runs, waits or is held, and (given a
    baseline) until open descriptors are back to it: connections the server
    keeps alive close within its 5 s keep-alive timeout."""
    deadline = time.monotonic() + timeout
    while True:
        m = srv.metrics()
        idle = (m["kiln_num_requests_running"] == 0 and m["kiln_num_requests_waiting"] == 0
                and m["kiln_kv_blocks_used"] == 0 and m["kiln_http_requests_active"] == 0)
        fds_ok = baseline_fds is None or srv.status()["fds"] <= baseline_fds
        if (idle and fds_ok) or time.monotonic() > deadline:
            return m
        time.sleep(0.25)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kiln", default=str(ROOT / "build/bin/kiln"), help="the kiln tool")
    ap.add_argument("--artifact", required=True,
                    help="a .kiln with a tokenizer and chat template (SmolLM2-135M-Instruct)")
    ap.add_argument("--quick", action="store_true", help="~300 requests, under a minute")
    ap.add_argument("--requests", type=int, help="soak requests (default 1500; quick 300)")
    ap.add_argument("--warmup-requests", type=int, help="warm-up round (default 300; quick 100)")
    ap.add_argument("--concurrency", type=int, help="requests in flight (default 64; quick 48)")
    ap.add_argument("--time-limit", type=float,
                    help="seconds after which the soak starts no new request "
                         "(default 270; quick 30)")
    ap.add_argument("--rounds", type=int,
                    help="split the soak into rounds, memory printed after each "
                         "(default 3; quick 1)")
    ap.add_argument("--threads", type=int, default=2, help="server kernel threads")
    ap.add_argument("--kv-cache-tokens", type=int, default=2048,
                    help="server's KV cache (small: requests preempt one another)")
    ap.add_argument("--max-running", type=int, help="server's (default 32; quick 24)")
    ap.add_argument("--max-waiting", type=int, help="server's (default 24; quick 16)")
    ap.add_argument("--rss-tolerance-mb", type=float, default=32.0,
                    help="allowed VmRSS growth over the post-warm-up baseline")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    q = args.quick
    count = args.requests or (300 if q else 1500)
    warm = args.warmup_requests if args.warmup_requests is not None else (100 if q else 300)
    conc = args.concurrency or (48 if q else 64)
    limit = args.time_limit or (30.0 if q else 270.0)
    max_running = args.max_running or (24 if q else 32)
    max_waiting = args.max_waiting or (16 if q else 24)

    tok = Tokenizer.from_file(os.path.join(args.artifact, "tokenizer.json"))
    special = set(tok.get_added_tokens_decoder())
    ordinary = [i for i in range(tok.get_vocab_size()) if i not in special]
    specs = make_specs(random.Random(args.seed), ordinary, q)

    results: list[bool] = []

    def check(name: str, ok: bool, detail: str = "") -> None:
        results.append(ok)
        print(f"{'ok  ' if ok else 'FAIL'} {name}" + (f": {detail}" if detail else ""),
              flush=True)

    def on_sigterm(*_):
        raise KeyboardInterrupt  # so that `finally` stops the server

    signal.signal(signal.SIGTERM, on_sigterm)
    t0 = time.monotonic()
    srv = Server(args.kiln, args.artifact,
                 ["--threads", str(args.threads), "--kv-cache-tokens", str(args.kv_cache_tokens),
                  "--max-running", str(max_running), "--max-waiting", str(max_waiting),
                  "--drain-seconds", "20"])
    print(f"server: {' '.join(srv.cmd)} (pid {srv.proc.pid})", flush=True)
    try:
        context = int(httpx.get(srv.url + "/v1/models", timeout=30,
                                headers={"Authorization": f"Bearer {API_KEY}"}
                                ).json()["data"][0]["max_model_len"])
        cases = malformed_cases(srv.model, context)

        refs = asyncio.run(references(srv, specs))
        check(f"references: {len(specs)} requests alone", True,
              f"{time.monotonic() - t0:.1f} s")

        wt, wdur, wsent = asyncio.run(run_mix(srv, specs, refs, cases, ordinary, warm, conc, limit,
                                              args.seed + 1))
        wait_idle(srv, None)
        time.sleep(6)  # let kept-alive connections of the warm-up close
        base = srv.status()
        print(f"warm-up: {wsent} requests in {wdur:.1f} s; baseline VmRSS "
              f"{base['rss_kb'] / 1024:.1f} MiB (anon {base['rss_anon_kb'] / 1024:.1f}), "
              f"{base['fds']} fds, {base['threads']} threads", flush=True)
        if wt.problems:
            print("warm-up problems (counted in the soak's checks only if repeated there):")
            for kind, ps in wt.problems.items():
                print(f"  {kind}: {len(ps)}, e.g. {ps[0]}")
        m0 = srv.metrics()

        # The soak, in rounds with the server's memory read between them
        # (idle) to show a trend; the checks below take all rounds together.
        tally, dur, sent = Tally(), 0.0, 0
        rounds = max(1, args.rounds or (1 if q else 3))
        for k in range(rounds):
            n = count // rounds + (k < count % rounds)
            t, d, s = asyncio.run(run_mix(srv, specs, refs, cases, ordinary, n, conc,
                                          max(0.0, limit - dur), args.seed + 2 + k))
            tally.merge(t)
            dur, sent = dur + d, sent + s
            if rounds > 1 and srv.proc.poll() is None:
                wait_idle(srv, base["fds"])
                st = srv.status()
                print(f"round {k + 1}/{rounds}: {s} requests in {d:.1f} s; VmRSS "
                      f"{st['rss_kb'] / 1024:.1f} MiB (anon {st['rss_anon_kb'] / 1024:.1f}), "
                      f"{st['fds']} fds, {st['threads']} threads", flush=True)
        c = tally.counts
        print(f"soak: {sent} requests in {dur:.1f} s at concurrency {conc}: "
              + ", ".join(f"{k} {v}" for k, v in sorted(c.items())), flush=True)

        alive = srv.proc.poll() is None
        check("server still running", alive,
              "" if alive else f"exit {srv.proc.returncode}\n{srv.stderr()}")
        if not alive:
            raise ServerDied

        out_problems = tally.problems.get("output", [])
        check("outputs under load == alone (greedy, seeded, n=2, logprobs; streamed or not)",
              tally.compared > 0 and not out_problems,
              f"{tally.compared} compared, {len(out_problems)} differ"
              + "".join(f"\n    {p}" for p in out_problems[:5]))
        errs = [p for k in ("valid (stream)", "valid (whole)") for p in tally.problems.get(k, [])]
        check("valid requests: no transport errors or unexpected statuses", not errs,
              f"{len(errs)}" + "".join(f"\n    {p}" for p in errs[:5]))
        bad = tally.problems.get("malformed", [])
        check(f"malformed requests get their 4xx and an OpenAI error body "
              f"({sum(tally.malformed.values())} sent, {len(tally.malformed)} kinds)",
              not bad, "".join(f"\n    {p}" for p in bad[:8]))
        cbad = tally.problems.get("cancel mid-stream", []) + tally.problems.get("cancel early", [])
        check("cancelling clients: no errors on the client side", not cbad,
              "".join(f"\n    {p}" for p in cbad[:5]))
        pbad = tally.problems.get("probe", [])
        check("probes (/health, /metrics, /v1/models) answer 200 under load", not pbad,
              "".join(f"\n    {p}" for p in pbad[:5]))
        qbad = tally.problems.get("429", [])
        check(f"429s well formed ({c['429']} seen, {c['gave up after 429s']} given up)",
              not qbad, "".join(f"\n    {p}" for p in qbad[:5]))

        m = wait_idle(srv, base["fds"])
        health = httpx.get(srv.url + "/health", timeout=30).status_code
        check("/health 200 after the soak", health == 200, f"HTTP {health}")
        idle = {k: m[k] for k in ("kiln_num_requests_running", "kiln_num_requests_waiting",
                                  "kiln_kv_blocks_used", "kiln_http_requests_active")}
        check("/metrics idle: nothing running, waiting, held or active",
              not any(idle.values()), str(idle))
        key = "kiln_request_success_total{finished_reason=cancelled}"
        cancelled = m.get(key, 0) - m0.get(key, 0)
        check("cancelled requests counted as cancelled in /metrics",
              cancelled >= tally.cancelled_mid_stream,
              f"{cancelled:g} cancelled by the server; {tally.cancelled_mid_stream} "
              f"streams closed mid-way, {c['closed before the response'] + c['closed mid-body']} "
              f"closed earlier; {m.get('kiln_preemptions_total', 0) - m0.get('kiln_preemptions_total', 0):g} "
              f"preemptions, "
              f"{m.get('kiln_prompt_tokens_cached_total', 0) - m0.get('kiln_prompt_tokens_cached_total', 0):g} "
              f"prompt tokens from the prefix cache")

        end = srv.status()
        grow = (end["rss_kb"] - base["rss_kb"]) / 1024
        check(f"VmRSS within {args.rss_tolerance_mb:g} MiB of the baseline after warm-up",
              grow <= args.rss_tolerance_mb,
              f"{base['rss_kb'] / 1024:.1f} -> {end['rss_kb'] / 1024:.1f} MiB "
              f"({grow:+.1f} MiB, {1000 * grow / max(sent, 1):+.2f} MiB per 1000 requests; "
              f"anon {base['rss_anon_kb'] / 1024:.1f} -> {end['rss_anon_kb'] / 1024:.1f})")
        check("open descriptors and threads back to the baseline",
              end["fds"] <= base["fds"] and end["threads"] <= base["threads"],
              f"fds {base['fds']} -> {end['fds']}, threads {base['threads']} -> {end['threads']}")

        t = time.monotonic()
        srv.proc.send_signal(signal.SIGTERM)
        try:
            rc = srv.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            rc = None
        took = time.monotonic() - t
        check("SIGTERM when idle: exits 0 at once", rc == 0 and took < 5,
              f"status {rc} after {took:.1f} s")
    except ServerDied:
        pass  # the checks after this one need a server
    finally:
        srv.kill()
    failed = results.count(False)
    print(f"{len(results) - failed} passed, {failed} failed "
          f"({time.monotonic() - t0:.0f} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
