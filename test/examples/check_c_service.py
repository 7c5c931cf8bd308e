#!/usr/bin/env python3
"""Installs a runtime-only build and builds examples/c-service against it.

    check_c_service.py --runtime-build build-runtime-only --work DIR
        [--artifact smollm2.kiln] [--no-tokenizer-artifact llama-gqa.kiln]

`cmake --install`s the runtime-only build (KILN_BUILD_COMPILER=OFF) into
DIR/prefix and checks what lands there; builds the example three ways
against that prefix alone: a CMake project with find_package(kiln) linking
kiln::kiln (libkiln.so) and kiln::kiln_static, and plain
`cc $(pkg-config --cflags --libs kiln)`. Each binary serves the same
prompts at once through one scheduler; every completion must equal what the
installed `kiln run ARTIFACT --prompt P` prints for the prompt alone
(greedy), the requests must have shared steps, and bad input must give a
clear error and a non-zero exit. One line per check ("ok", "FAIL", "skip"),
then "N passed, M failed, K skipped".
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "c-service"
# A JSON-escaped quote and backslash, a completion with newlines, non-ASCII.
PROMPTS = [
    "The capital of France is",
    "def fibonacci(n):",
    'She said "hello\\" and',
    "日本の首都は",
]

results = {"passed": 0, "failed": 0, "skipped": 0}


def check(name, ok, detail=""):
    if ok:
        results["passed"] += 1
        print(f"ok {name}")
    else:
        results["failed"] += 1
        print(f"FAIL {name}: {detail}")
    return ok


def skip(name, why):
    results["skipped"] += 1
    print(f"skip {name}: {why}")


def run(cmd, **kwargs):
    kwargs.setdefault("capture_output", True)
    kwargs.setdefault("timeout", 600)
    return subprocess.run(cmd, **kwargs)


def tail(proc):
    out = (proc.stdout or b"") + (proc.stderr or b"")
    if isinstance(out, bytes):
        out = out.decode(errors="replace")
    return " | ".join(out.strip().splitlines()[-8:])


def header_version(include_dir):
    text = (include_dir / "kiln" / "kiln.h").read_text()
    parts = [re.search(rf"#define KILN_VERSION_{p} (\d+)", text) for p in ("MAJOR", "MINOR", "PATCH")]
    return ".".join(m.group(1) for m in parts) if all(parts) else None


def check_install(runtime_build, prefix):
    proc = run(["cmake", "--install", str(runtime_build), "--prefix", str(prefix)])
    if not check("cmake --install", proc.returncode == 0, tail(proc)):
        return False
    expected = [
        "include/kiln/kiln.h", "include/kiln/kiln.hpp", "include/kiln/model_abi.h",
        "lib/libkiln.so", "lib/libkiln_runtime.a", "lib/cmake/kiln/kilnConfig.cmake",
        "lib/cmake/kiln/kilnConfigVersion.cmake", "lib/cmake/kiln/kilnTargets.cmake",
        "lib/pkgconfig/kiln.pc", "bin/kiln",
    ]
    missing = [f for f in expected if not (prefix / f).is_file()]
    check("install layout", not missing, f"missing {missing}")
    # A runtime-only build installs no compiler: nothing in bin/ but kiln.
    cache = (runtime_build / "CMakeCache.txt").read_text()
    if re.search(r"^KILN_BUILD_COMPILER:BOOL=OFF$", cache, re.M):
        tools = sorted(p.name for p in (prefix / "bin").iterdir())
        check("runtime-only install has no compiler", tools == ["kiln"], f"bin/ holds {tools}")
    env = dict(os.environ, PKG_CONFIG_PATH=str(prefix / "lib" / "pkgconfig"))
    proc = run(["pkg-config", "--modversion", "kiln"], env=env, text=True)
    want = header_version(prefix / "include")
    check("kiln.pc version is kiln.h's", proc.returncode == 0 and proc.stdout.strip() == want,
          f"pkg-config says {proc.stdout.strip()!r} ({proc.stderr.strip()}), kiln.h {want!r}")
    return True


def build_cmake(prefix, work, static):
    name = "find_package(kiln) kiln::kiln" + ("_static" if static else "")
    build = work / ("cmake-static" if static else "cmake-shared")
    shutil.rmtree(build, ignore_errors=True)
    proc = run(["cmake", "-G", "Ninja", "-S", str(EXAMPLE), "-B", str(build),
                f"-DCMAKE_PREFIX_PATH={prefix}", f"-DKILN_EXAMPLE_STATIC={'ON' if static else 'OFF'}",
                "-DCMAKE_C_FLAGS=-Wall -Wextra -pedantic -Werror"])
    if proc.returncode == 0:
        proc = run(["cmake", "--build", str(build), "-j", "1"])
    if check(f"build with {name}", proc.returncode == 0, tail(proc)):
        return name, build / "kiln-example-service"
    return name, None


def build_pkg_config(prefix, work):
    name = "cc $(pkg-config --cflags --libs kiln)"
    env = dict(os.environ, PKG_CONFIG_PATH=str(prefix / "lib" / "pkgconfig"))
    flags = run(["pkg-config", "--cflags", "--libs", "kiln"], env=env, text=True)
    libdir = run(["pkg-config", "--variable=libdir", "kiln"], env=env, text=True)
    out = work / "pkg-config" / "kiln-example-service"
    out.parent.mkdir(parents=True, exist_ok=True)
    proc = flags
    if flags.returncode == 0 and libdir.returncode == 0:
        proc = run([os.environ.get("CC", "cc"), "-std=c11", "-Wall", "-Wextra", "-pedantic", "-Werror",
                    "-O2", str(EXAMPLE / "service.c"), "-o", str(out), *flags.stdout.split(),
                    "-pthread", f"-Wl,-rpath,{libdir.stdout.strip()}"])
    if check(f"build with {name}", proc.returncode == 0, tail(proc)):
        return name, out
    return name, None


def check_links(name, binary, prefix, static):
    """The binary uses the installed runtime, not a build tree's."""
    proc = run(["ldd", str(binary)], text=True)
    found = re.search(r"libkiln\.so => (\S+)", proc.stdout)
    if static:
        check(f"{name}: no libkiln.so", proc.returncode == 0 and not found, proc.stdout.strip())
    else:
        where = Path(found.group(1)).resolve() if found else None
        check(f"{name}: libkiln.so from the prefix",
              where is not None and where.is_relative_to(prefix.resolve()), f"ldd: {where}")


def check_serves(name, binary, artifact, expected, args):
    stdin = "".join(p + "\n" for p in PROMPTS)
    proc = run([str(binary), str(artifact), "--threads", str(args.threads),
                "--max-tokens", str(args.max_tokens)], input=stdin.encode())
    if not check(f"{name}: serves {len(PROMPTS)} prompts", proc.returncode == 0, tail(proc)):
        return
    try:
        answers = [json.loads(line) for line in proc.stdout.decode().splitlines()]
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        check(f"{name}: output is JSON lines", False, str(e))
        return
    if not check(f"{name}: one answer per prompt, in order",
                 [a.get("index") for a in answers] == list(range(len(PROMPTS))),
                 proc.stdout.decode()[:400]):
        return
    generated = 0
    for i, (answer, want) in enumerate(zip(answers, expected)):
        check(f"{name}: prompt {i} text is kiln run's", answer.get("text") == want,
              f"got {answer.get('text')!r}, kiln run printed {want!r}")
        n = answer.get("completion_tokens", -1)
        generated += max(n, 0)
        ok = (answer.get("prompt_tokens", 0) > 0 and answer.get("ttft_seconds", -1) > 0
              and ((answer.get("finish") == "length" and n == args.max_tokens)
                   or (answer.get("finish") == "stop" and 0 <= n < args.max_tokens)))
        check(f"{name}: prompt {i} usage", ok, json.dumps({k: v for k, v in answer.items() if k != "text"}))
    # One request alone takes a step per generated token; fewer steps than
    # tokens means requests shared steps.
    m = re.search(rb": (\d+) steps,", proc.stderr)
    check(f"{name}: requests batched", m is not None and int(m.group(1)) < generated,
          f"stderr {proc.stderr.decode(errors='replace').strip()!r}; {generated} tokens generated")


def expect_error(name, binary, argv, stdin, status, *needles):
    proc = run([str(binary), *argv], input=stdin if isinstance(stdin, bytes) else stdin.encode())
    err = proc.stderr.decode(errors="replace")
    check(f"error: {name}", proc.returncode == status and all(n in err for n in needles),
          f"exit {proc.returncode} (want {status}), stderr {err.strip()!r} (want {needles!r})")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runtime-build", type=Path, required=True,
                    help="a built tree of kiln, configured with -DKILN_BUILD_COMPILER=OFF")
    ap.add_argument("--work", type=Path, required=True, help="scratch directory (replaced)")
    ap.add_argument("--artifact", type=Path, help="a compiled artifact with a tokenizer.json")
    ap.add_argument("--no-tokenizer-artifact", type=Path, help="a compiled artifact without one")
    ap.add_argument("--max-tokens", type=int, default=24)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    if not (args.runtime_build / "CMakeCache.txt").is_file():
        print(f"error: {args.runtime_build} is not a configured build tree")
        print("0 passed, 1 failed, 0 skipped")
        return 1
    work = args.work.resolve()
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    prefix = work / "prefix"

    if check_install(args.runtime_build, prefix):
        binaries = [(*build_cmake(prefix, work, static=False), False),
                    (*build_cmake(prefix, work, static=True), True),
                    (*build_pkg_config(prefix, work), False)]
        binaries = [(n, b, s) for n, b, s in binaries if b]
        for name, binary, static in binaries:
            check_links(name, binary, prefix, static)

        have_artifact = args.artifact and (args.artifact / "tokenizer.json").is_file()
        expected = []
        if have_artifact:
            # kiln run prints the completion and a newline on stdout.
            for i, prompt in enumerate(PROMPTS):
                proc = run([str(prefix / "bin" / "kiln"), "run", str(args.artifact), "--prompt", prompt,
                            "--max-tokens", str(args.max_tokens), "--threads", str(args.threads)])
                ok = proc.returncode == 0 and proc.stdout.endswith(b"\n")
                check(f"kiln run prompt {i}", ok, tail(proc))
                expected.append(proc.stdout[:-1].decode(errors="replace") if ok else None)
        for name, binary, _ in binaries:
            if have_artifact:
                check_serves(name, binary, args.artifact, expected, args)
            else:
                skip(f"{name}: serves prompts", f"no artifact with a tokenizer ({args.artifact})")

        if binaries and have_artifact:
            binary = binaries[0][1]
            art = str(args.artifact)
            expect_error("missing artifact", binary, [str(work / "nope.kiln")], "hi\n", 1,
                         "kiln_model_open: not found: ", str(work / "nope.kiln"))
            expect_error("empty prompt line", binary, [art], "hi\n\nthere\n", 2, "stdin line 2 is empty")
            expect_error("no prompts", binary, [art], "", 2, "no prompts on stdin")
            expect_error("bad --threads", binary, [art, "--threads", "two"], "hi\n", 2,
                         "--threads must be in [0, 1024] (0: one kernel thread per core), not two")
            expect_error("--max-tokens without a value", binary, [art, "--max-tokens"], "hi\n", 2,
                         "--max-tokens needs a value")
            expect_error("unknown option", binary, [art, "--temperature", "1"], "hi\n", 2,
                         "unknown option --temperature")
            expect_error("no artifact", binary, [], "hi\n", 2, "no artifact given")
            # A request that fails is reported; the others are still served.
            proc = run([str(binary), art, "--max-tokens", "2"], input=b"Hello\n\xff bad\n")
            lines = proc.stdout.decode(errors="replace").splitlines()
            err = proc.stderr.decode(errors="replace")
            check("error: a prompt that is not UTF-8",
                  proc.returncode == 1 and len(lines) == 2 and '"finish": "length"' in lines[0]
                  and '"finish": "error"' in lines[1]
                  and "prompt 2: kiln_tokenizer_encode: invalid argument: " in err,
                  f"exit {proc.returncode}, stdout {lines!r}, stderr {err.strip()!r}")
            if args.no_tokenizer_artifact and args.no_tokenizer_artifact.is_dir():
                expect_error("artifact without a tokenizer", binary, [str(args.no_tokenizer_artifact)], "hi\n", 2,
                             f"{args.no_tokenizer_artifact} has no tokenizer.json")
            else:
                skip("error: artifact without a tokenizer", f"{args.no_tokenizer_artifact} is absent")

    print(f"{results['passed']} passed, {results['failed']} failed, {results['skipped']} skipped")
    return 1 if results["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
