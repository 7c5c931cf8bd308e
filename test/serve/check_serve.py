#!/usr/bin/env python3
"""End-to-end checks of `kiln serve` with the official `openai` client.

Starts `kiln serve` on loopback (a free port) for a compiled artifact with a
tokenizer and chat template (SmolLM2-135M-Instruct in scripts/test.sh) and
checks, one pass/fail line each:

  - /health, /v1/models and /metrics (parsed by prometheus_client's own
    parser);
  - completions and chat completions, streamed and not: greedy text equals
    `kiln run` on the same prompt; the streamed pieces join to the same
    text; usage counts; the chat prompt has exactly the tokens transformers'
    apply_chat_template gives;
  - logprobs, n, seeds, stop strings, max_tokens;
  - concurrent greedy requests each get the text they get alone;
  - errors in OpenAI's shape with the right status: 400 (bad JSON, bad
    parameters), 401 (API key), 404 (model, route), 413 (body, prompt),
    429 (queue full);
  - a client that disconnects has its request cancelled;
  - SIGTERM drains: running requests finish, new ones get 503, exit 0.

Prints "N passed, M failed" last; exits 1 on any failure.
"""

import argparse
import concurrent.futures
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
import urllib.request

import httpx
import openai
from prometheus_client.parser import text_string_to_metric_families


class Server:
    """A `kiln serve` process on a free loopback port."""

    def __init__(self, kiln, artifact, *extra):
        self.proc = subprocess.Popen(
            [kiln, "serve", artifact, "--port", "0", "--threads", "2", *extra],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        m = re.search(r"listening on (http://[^ ]+) \(model ([^,]+),", line)
        if not m:
            err = self.proc.stderr.read() if self.proc.poll() is not None else ""
            self.proc.kill()
            raise RuntimeError(f"kiln serve did not start: {line!r} {err}")
        self.url, self.model = m.group(1), m.group(2)
        host, port = self.url[len("http://"):].split(":")
        self.host, self.port = host, int(port)
        # stdout must keep draining, or the server blocks on a full pipe.
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()
        self._stderr = []
        threading.Thread(target=lambda: self._stderr.append(self.proc.stderr.read()),
                         daemon=True).start()

    def client(self, api_key="none", **kw):
        return openai.OpenAI(base_url=self.url + "/v1", api_key=api_key,
                             max_retries=0, **kw)

    def get(self, path, headers=None):
        r = httpx.get(self.url + path, headers=headers or {}, timeout=30)
        return r.status_code, r.text

    def post(self, path, body, headers=None):
        data = body if isinstance(body, (bytes, str)) else json.dumps(body)
        r = httpx.post(self.url + path, content=data, timeout=60,
                       headers={"Content-Type": "application/json", **(headers or {})})
        return r.status_code, r

    def metrics(self):
        status, text = self.get("/metrics")
        assert status == 200, status
        out = {}
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                key = s.name + "".join(f"{{{k}={v}}}" for k, v in sorted(s.labels.items()))
                out[key] = s.value
        return out

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def kiln_run(kiln, artifact, prompt, n):
    out = subprocess.run([kiln, "run", artifact, "--prompt", prompt, "--max-tokens", str(n),
                          "--threads", "2"], capture_output=True, text=True, check=True)
    return out.stdout[:-1] if out.stdout.endswith("\n") else out.stdout


def expect_error(fn, status, param=None):
    """fn() must raise openai.APIStatusError with `status` and OpenAI's error body."""
    try:
        fn()
    except openai.APIStatusError as e:
        assert e.status_code == status, f"status {e.status_code}, wanted {status}: {e}"
        body = e.body if isinstance(e.body, dict) else {}
        assert "message" in body and "type" in body, f"not an OpenAI error body: {e.body}"
        if param is not None:
            assert body.get("param") == param, f"param {body.get('param')!r}, wanted {param!r}"
        return body
    raise AssertionError(f"no error; wanted {status}")


def raw_error(status_and_response, status):
    got, r = status_and_response
    assert got == status, f"status {got}, wanted {status}: {r.text[:200]}"
    err = r.json()["error"]
    assert err["message"] and err["type"], err
    return err


PROMPTS = ["The capital of France is", "def fibonacci(n):",
           "Once upon a time, in a small village,", "The three primary colors are",
           "import numpy as np\n", "Water boils at", "My favourite book is",
           "The speed of light is"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kiln", required=True, help="path of the kiln tool")
    ap.add_argument("--artifact", required=True, help="a .kiln with tokenizer and chat template")
    args = ap.parse_args()
    kiln, art = args.kiln, args.artifact

    results = []

    def check(name, fn):
        try:
            fn()
            results.append(True)
            print(f"ok   {name}")
        except Exception as e:  # a failed check, whatever raised it
            results.append(False)
            print(f"FAIL {name}: {type(e).__name__}: {e}")
            if os.environ.get("KILN_TEST_VERBOSE"):
                traceback.print_exc()
        sys.stdout.flush()

    srv = Server(kiln, art, "--max-n", "4", "--max-body-bytes", "65536")
    try:
        c = srv.client()

        def health():
            assert srv.get("/health") == (200, '{"status":"ok"}'), srv.get("/health")
            models = c.models.list().data
            assert [m.id for m in models] == [srv.model], models
            assert c.models.retrieve(srv.model).id == srv.model
        check("health and models", health)

        alone = {}

        def completion_matches_kiln_run():
            for p in PROMPTS[:3]:
                r = c.completions.create(model=srv.model, prompt=p, max_tokens=24, temperature=0)
                want = kiln_run(kiln, art, p, 24)
                got = r.choices[0].text
                assert got == want, f"{p!r}: server {got!r} != kiln run {want!r}"
                assert r.usage.completion_tokens <= 24 and r.usage.prompt_tokens > 0, r.usage
                assert r.choices[0].finish_reason in ("length", "stop")
                alone[p] = got
        check("completion greedy == kiln run", completion_matches_kiln_run)

        def completion_stream():
            p = PROMPTS[0]
            r = c.completions.create(model=srv.model, prompt=p, max_tokens=24, temperature=0)
            chunks = list(c.completions.create(model=srv.model, prompt=p, max_tokens=24,
                                               temperature=0, stream=True,
                                               stream_options={"include_usage": True}))
            text = "".join(ch.choices[0].text for ch in chunks if ch.choices)
            assert text == r.choices[0].text, (text, r.choices[0].text)
            finals = [ch.choices[0].finish_reason for ch in chunks if ch.choices]
            assert finals[-1] == r.choices[0].finish_reason and all(f is None for f in finals[:-1])
            assert chunks[-1].usage.completion_tokens == r.usage.completion_tokens
            assert chunks[-1].usage.prompt_tokens == r.usage.prompt_tokens
        check("completion streamed == not streamed", completion_stream)

        def chat():
            from transformers import AutoTokenizer
            tok = AutoTokenizer.from_pretrained(art)
            msgs = [{"role": "system", "content": "You are terse."},
                    {"role": "user", "content": "Name a planet."}]
            want_ids = tok.apply_chat_template(msgs, add_generation_prompt=True, tokenize=True)
            r = c.chat.completions.create(model=srv.model, messages=msgs, max_tokens=16,
                                          temperature=0)
            assert r.usage.prompt_tokens == len(want_ids), (r.usage.prompt_tokens, len(want_ids))
            text = r.choices[0].message.content
            assert r.choices[0].message.role == "assistant" and text, r
            stream = list(c.chat.completions.create(model=srv.model, messages=msgs, max_tokens=16,
                                                    temperature=0, stream=True,
                                                    stream_options={"include_usage": True}))
            assert stream[0].choices[0].delta.role == "assistant"
            joined = "".join(ch.choices[0].delta.content or "" for ch in stream if ch.choices)
            assert joined == text, (joined, text)
            assert stream[-1].usage.total_tokens == r.usage.total_tokens
            # The same prompt through the completions endpoint: same greedy text.
            rendered = tok.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)
            rc = c.completions.create(model=srv.model, prompt=want_ids, max_tokens=16,
                                      temperature=0)
            assert rc.choices[0].text == text, (rc.choices[0].text, text, rendered)
            # Content given as parts.
            parts = [{"role": "user", "content": [{"type": "text", "text": "Name a planet."}]}]
            flat = [{"role": "user", "content": "Name a planet."}]
            a = c.chat.completions.create(model=srv.model, messages=parts, max_tokens=8, temperature=0)
            b = c.chat.completions.create(model=srv.model, messages=flat, max_tokens=8, temperature=0)
            assert a.choices[0].message.content == b.choices[0].message.content
        check("chat: template as transformers, streamed == not", chat)

        def logprobs():
            r = c.chat.completions.create(model=srv.model, messages=[{"role": "user", "content": "Hi"}],
                                          max_tokens=6, temperature=0, logprobs=True, top_logprobs=3)
            content = r.choices[0].logprobs.content
            assert len(content) == r.usage.completion_tokens, (len(content), r.usage)
            for t in content:
                assert len(t.top_logprobs) == 3 and t.logprob <= 0
                lps = [x.logprob for x in t.top_logprobs]
                assert lps == sorted(lps, reverse=True), lps
                assert abs(t.logprob - lps[0]) < 1e-5, (t.logprob, lps)  # greedy = top-1
                assert bytes(t.bytes).decode("utf-8", "replace") == t.token
            rc = c.completions.create(model=srv.model, prompt=PROMPTS[1], max_tokens=5,
                                      temperature=0, logprobs=2)
            lp = rc.choices[0].logprobs
            assert len(lp.tokens) == len(lp.token_logprobs) == len(lp.top_logprobs) == 5
            assert "".join(lp.tokens) == rc.choices[0].text, (lp.tokens, rc.choices[0].text)
            assert lp.text_offset[0] == 0 and lp.text_offset == sorted(lp.text_offset)
            chunks = [ch for ch in c.completions.create(
                model=srv.model, prompt=PROMPTS[1], max_tokens=5, temperature=0, logprobs=2,
                stream=True) if ch.choices]
            streamed = [t for ch in chunks for t in ch.choices[0].logprobs.tokens]
            offsets = [o for ch in chunks for o in ch.choices[0].logprobs.text_offset]
            assert streamed == lp.tokens and offsets == lp.text_offset, (streamed, offsets)
            assert [ch.choices[0].logprobs.top_logprobs[0] for ch in chunks] == lp.top_logprobs
        check("logprobs (chat and completions, streamed and not)", logprobs)

        def sampling():
            kw = dict(model=srv.model, prompt=PROMPTS[2], max_tokens=16, temperature=0.9, top_p=0.95)
            a = c.completions.create(seed=7, n=2, **kw)
            b = c.completions.create(seed=7, n=2, **kw)
            assert len(a.choices) == 2 and [x.index for x in a.choices] == [0, 1]
            assert [x.text for x in a.choices] == [x.text for x in b.choices], "same seed, other text"
            outs = {c.completions.create(seed=s, **kw).choices[0].text for s in range(6)}
            assert len(outs) > 1, "six seeds gave one text"
        check("seeded sampling, n", sampling)

        def stop_strings():
            p = PROMPTS[0]
            full = c.completions.create(model=srv.model, prompt=p, max_tokens=24, temperature=0)
            text = full.choices[0].text
            stop = text.strip()[4:9]
            assert stop, text
            r = c.completions.create(model=srv.model, prompt=p, max_tokens=24, temperature=0, stop=[stop])
            assert r.choices[0].finish_reason == "stop", r.choices[0]
            assert r.choices[0].text == text[:text.index(stop)], (r.choices[0].text, stop)
            r = c.completions.create(model=srv.model, prompt=p, max_tokens=3, temperature=0)
            assert r.usage.completion_tokens == 3 and r.choices[0].finish_reason == "length"
        check("stop strings and max_tokens", stop_strings)

        def concurrent_equals_alone():
            for p in PROMPTS:
                if p not in alone:
                    alone[p] = c.completions.create(model=srv.model, prompt=p, max_tokens=24,
                                                    temperature=0).choices[0].text
            jobs = PROMPTS * 2
            with concurrent.futures.ThreadPoolExecutor(len(jobs)) as pool:
                got = list(pool.map(lambda p: srv.client().completions.create(
                    model=srv.model, prompt=p, max_tokens=24, temperature=0,
                    stream=(hash(p) % 2 == 0)), jobs))
            for p, r in zip(jobs, got):
                text = r.choices[0].text if hasattr(r, "choices") else \
                    "".join(ch.choices[0].text for ch in r if ch.choices)
                assert text == alone[p], f"{p!r}: batched {text!r} != alone {alone[p]!r}"
        check("16 concurrent greedy requests == each alone", concurrent_equals_alone)

        def bad_requests():
            raw_error(srv.post("/v1/completions", b"{not json"), 400)
            raw_error(srv.post("/v1/completions", b"[1,2]"), 400)
            expect_error(lambda: c.completions.create(model=srv.model, prompt="x", temperature=5), 400,
                         "temperature")
            expect_error(lambda: c.completions.create(model=srv.model, prompt="x", top_p=0), 400, "top_p")
            expect_error(lambda: c.completions.create(model=srv.model, prompt="x", max_tokens=0), 400,
                         "max_tokens")
            expect_error(lambda: c.completions.create(model=srv.model, prompt="x",
                                                      logit_bias={"-3": 1}), 400, "logit_bias")
            expect_error(lambda: c.completions.create(model=srv.model, prompt=[10**9]), 400, "prompt")
            expect_error(lambda: c.completions.create(model=srv.model, prompt="x", n=5), 400, "n")
            expect_error(lambda: c.chat.completions.create(model=srv.model, messages=[]), 400, "messages")
            expect_error(lambda: c.chat.completions.create(
                model=srv.model, messages=[{"role": "user", "content": [{"type": "image_url"}]}]),
                400, "messages")
            # SmolLM2's template has no raise_exception; an unknown role renders. A tools
            # request is refused by name.
            expect_error(lambda: c.chat.completions.create(
                model=srv.model, messages=[{"role": "user", "content": "x"}],
                tools=[{"type": "function", "function": {"name": "f"}}]), 400, "tools")
            raw_error(srv.post("/v1/completions", {"model": srv.model, "prompt": "x",
                                                   "stream_options": {"include_usage": True}}), 400)
        check("400 for bad JSON and parameters", bad_requests)

        def not_found():
            expect_error(lambda: c.completions.create(model="gpt-4", prompt="x"), 404, "model")
            expect_error(lambda: c.models.retrieve("gpt-4"), 404)
            err = raw_error(srv.post("/v1/nothing", {}), 404)
            assert "/v1/nothing" in err["message"], err
        check("404 for unknown model and route", not_found)

        def too_large():
            err = raw_error(srv.post("/v1/completions", {"prompt": "x" * 70000}), 413)
            assert "bytes" in err["message"], err
            long_prompt = list(range(100, 100 + 9000))  # context is 8192
            e = expect_error(lambda: c.completions.create(model=srv.model, prompt=long_prompt), 413)
            assert e.get("code") == "context_length_exceeded", e
        check("413 for oversized body and prompt", too_large)

        def disconnect_cancels():
            before = srv.metrics().get('kiln_request_success_total{finished_reason=cancelled}', 0)
            # Streaming: read two events, then drop the connection.
            with httpx.Client(timeout=30) as h:
                with h.stream("POST", srv.url + "/v1/completions",
                              json={"prompt": PROMPTS[3], "max_tokens": 4000, "ignore_eos": True,
                                    "stream": True}) as r:
                    events = 0
                    for line in r.iter_lines():
                        events += line.startswith("data: {")
                        if events == 2:
                            break
            # Not streaming: send the request and close the socket at once.
            s = socket.create_connection((srv.host, srv.port))
            body = json.dumps({"prompt": PROMPTS[4], "max_tokens": 4000, "ignore_eos": True})
            s.sendall((f"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                       f"Content-Length: {len(body)}\r\n\r\n{body}").encode())
            time.sleep(0.3)
            s.close()
            deadline = time.time() + 20
            while time.time() < deadline:
                m = srv.metrics()
                cancelled = m.get('kiln_request_success_total{finished_reason=cancelled}', 0)
                if cancelled >= before + 2 and m["kiln_num_requests_running"] == 0:
                    assert m["kiln_kv_blocks_used"] == 0, m["kiln_kv_blocks_used"]
                    return
                time.sleep(0.2)
            raise AssertionError(f"cancelled {cancelled - before} of 2, running "
                                 f"{m['kiln_num_requests_running']}")
        check("client disconnect cancels (streamed and not)", disconnect_cancels)

        def metrics():
            m = srv.metrics()
            for name in ("kiln_num_requests_waiting", "kiln_num_requests_running",
                         "kiln_kv_blocks_used", "kiln_kv_blocks_total",
                         "kiln_generation_tokens_total", "kiln_generation_tokens_per_second",
                         "kiln_time_to_first_token_seconds_count",
                         "kiln_inter_token_latency_seconds_count"):
                assert name in m, f"{name} missing"
            assert m["kiln_time_to_first_token_seconds_count"] >= 10, m
            assert m["kiln_inter_token_latency_seconds_count"] >= 100, m
            assert m["kiln_generation_tokens_total"] >= 200, m
            assert m['kiln_http_responses_total{code=200}'] >= 10
            assert m['kiln_http_responses_total{code=400}'] >= 5
            assert m["kiln_kv_blocks_total"] > 0 and m["kiln_kv_blocks_used"] == 0
        check("/metrics (Prometheus text)", metrics)
    finally:
        srv.stop()
    check("SIGTERM: server exits 0", lambda: (srv.proc.returncode == 0) or (_ for _ in ()).throw(
        AssertionError(f"exit {srv.proc.returncode}: {''.join(srv._stderr)[-500:]}")))

    # API keys.
    srv = Server(kiln, art, "--api-key", "sekret")
    try:
        def auth():
            expect_error(lambda: srv.client(api_key="wrong").models.list(), 401)
            expect_error(lambda: srv.client(api_key="wrong").completions.create(
                model=srv.model, prompt="x", max_tokens=1), 401)
            assert srv.client(api_key="sekret").models.list().data[0].id == srv.model
            assert srv.get("/health")[0] == 200 and srv.get("/metrics")[0] == 200
        check("401 without the API key; /health and /metrics open", auth)
    finally:
        srv.stop()

    # A one-request queue: the third concurrent request is refused with 429.
    # A KV cache of 512 tokens: the served context.
    srv = Server(kiln, art, "--max-running", "1", "--max-waiting", "1",
                 "--kv-cache-tokens", "512")
    try:
        def busy():
            body = {"prompt": PROMPTS[5], "max_tokens": 200, "ignore_eos": True}
            with concurrent.futures.ThreadPoolExecutor(6) as pool:
                got = list(pool.map(lambda _: srv.post("/v1/completions", body), range(6)))
            codes = sorted(g[0] for g in got)
            assert codes.count(200) >= 2 and 429 in codes and set(codes) <= {200, 429}, codes
            r = next(g[1] for g in got if g[0] == 429)
            assert r.headers.get("retry-after") and r.json()["error"]["type"] == "rate_limit_error"
        check("429 when the queue is full", busy)

        def context_is_the_cache():
            c = srv.client()
            assert c.models.list().data[0].model_extra["max_model_len"] == 512
            e = expect_error(lambda: c.completions.create(model=srv.model, prompt=list(range(1, 520))),
                             413)
            assert e.get("code") == "context_length_exceeded" and "512" in e["message"], e
            r = c.completions.create(model=srv.model, prompt=list(range(1, 500)), max_tokens=100,
                                     temperature=0, extra_body={"ignore_eos": True})
            assert r.choices[0].finish_reason == "length", r.choices[0]
            assert r.usage.total_tokens == 512, r.usage
        check("context capped at the KV cache: 413 up front, length at the end", context_is_the_cache)
    finally:
        srv.stop()

    # Drain on SIGTERM.
    srv = Server(kiln, art)
    try:
        def drain():
            result = {}

            def long_request():
                result["r"] = srv.client().completions.create(
                    model=srv.model, prompt=PROMPTS[6], max_tokens=120,
                    temperature=0, extra_body={"ignore_eos": True})
            t = threading.Thread(target=long_request)
            t.start()
            deadline = time.time() + 20
            while srv.metrics()["kiln_num_requests_running"] < 1 and time.time() < deadline:
                time.sleep(0.05)
            srv.proc.send_signal(signal.SIGTERM)
            time.sleep(0.3)
            status, text = srv.get("/health")
            assert status == 503, (status, text)
            code, r = srv.post("/v1/completions", {"prompt": "x", "max_tokens": 1})
            assert code == 503, (code, r.text)
            t.join(60)
            assert result["r"].usage.completion_tokens == 120, result["r"].usage
            assert srv.proc.wait(timeout=60) == 0
        check("SIGTERM drains: running finishes, new get 503, exit 0", drain)
    finally:
        srv.stop()

    passed, failed = results.count(True), results.count(False)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
