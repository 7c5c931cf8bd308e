#!/usr/bin/env python3
"""Checks kiln's runtime tokenizer against the `tokenizers` package.

The `tokenizers` library (pinned in scripts/requirements-test.txt) is the
reference: kiln must give the same ids for every string and decode them to
the same text. For each tokenizer.json below, every string of a generated
corpus (prose, code, numbers, whitespace, many scripts, emoji, combining
marks, special tokens inside text, empty and very long strings) is encoded
and decoded by both; kiln's side runs through kiln-tokenize-tool, which
calls the C API.

Tokenizers checked:
  smollm2            the default model's tokenizer.json (byte-level BPE,
                     Digits + ByteLevel pre-tokenizer, 17 special tokens)
  llama-genai-int4   the fixture's GPT-2 style tokenizer.json (no merges)
  and variants of smollm2 written to a temporary directory, each switching on
  options the real files leave off: Llama 3's Split regex with ignore_merges
  and a TemplateProcessing BOS/EOS, added tokens with lstrip / rstrip /
  single_word / normalized, ByteLevel's add_prefix_space with contiguous
  Digits and RobertaProcessing, every Split behaviour and invert, a
  character-level BPE with unk_token/fuse_unk and no decoder, and
  byte_fallback; and a tiny hand-made BPE with continuing_subword_prefix and
  end_of_word_suffix.

For each (tokenizer, string) pair the check passes when kiln's ids equal the
reference's, decode with and without skip_special_tokens equals the
reference's decode, the streamed decode (kiln_detokenizer_*) equals the plain
one, and, for tokenizers that lose nothing, decode(encode(s)) == s. Id
sequences that need not form valid UTF-8 (encodings cut anywhere, random
ids) are decoded by both too, which checks the U+FFFD replacement.

Prints per tokenizer the number of strings compared and ends with
"N passed, M failed".
"""

import argparse
import copy
import json
import os
import random
import subprocess
import sys
import tempfile
import unicodedata

from tokenizers import Tokenizer

MIN_STRINGS = 2000

# Llama 3's pre-tokenizer regex, as its tokenizer.json spells it.
LLAMA3_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
    r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>",
                  "<repo_name>", "<file_sep>", "<empty_output>"]

WORDS = """the of and to in is you that it he was for on are as with his they I
at be this have from or one had by word but not what all were we when your can
said there use an each which she do how their if will up other about out many
then them these so some her would make like him into time has look two more
write go see number no way could people my than first water been call who oil
its now find long down day did get come made may part tokenizer compiler kiln
runtime model merges vocabulary byte-level pre-tokenizer don't can't I'm we've
you'll she'd it's they're Hello World HTTP JSON GPU CPU LLM SmolLM2""".split()

CODE_SNIPPETS = [
    "def f(x):\n    return x * 2\n",
    "for (int i = 0; i < n; ++i) {\n\tsum += a[i];\n}\n",
    "#include <stdio.h>\nint main(void) { printf(\"%d\\n\", 42); }\n",
    "const x = {a: 1, b: [2, 3]};\nconsole.log(JSON.stringify(x));",
    "SELECT id, name FROM users WHERE age >= 18 ORDER BY name;",
    "<div class=\"x\"><span>hi</span></div>",
    "if [ -f \"$f\" ]; then echo ok; fi  # comment",
    "    indented = True\n        deeper = None\n",
    "fn main() -> Result<(), Box<dyn Error>> { Ok(()) }",
    "x=1;y=2;z=x+y**2//3%4&5|6^7~8",
    "{\"key\": \"value\", \"list\": [1, 2.5, -3e10, null, true]}",
    "a->b::c<d>>e>>=f<<=g!=h==i&&j||k",
    "\"\"\"docstring\"\"\"\r\n'''other'''\r\n",
    "https://example.com/path?q=1&r=%20x#frag",
    "user@example.org, +1 (555) 123-4567",
]

SCRIPTS = {
    "cjk": "中文字符测试我们的分词器今天天气很好東京都日本語のテキストです한국어텍스트입니다",
    "kana": "ひらがなカタカナゟヿㇰㇱ",
    "arabic": "مرحبا بالعالم هذا اختبار للنص العربي مع أرقام ١٢٣",
    "hebrew": "שלום עולם זהו מבחן",
    "devanagari": "नमस्ते दुनिया यह एक परीक्षण है १२३४",
    "bengali": "আমার সোনার বাংলা",
    "tamil": "வணக்கம் உலகம்",
    "thai": "สวัสดีชาวโลกนี่คือการทดสอบ",
    "cyrillic": "Привет мир это проверка ЁЖЗ ёжз Ѣѣ",
    "greek": "Γειά σου Κόσμε αβγδε ΑΒΓΔΕ",
    "armenian": "Բարեւ աշխարհ",
    "georgian": "გამარჯობა მსოფლიო",
    "ethiopic": "ሰላም ልዑል",
    "latin-ext": "Ærøskøbing Łódź Ħamrun ŒUVRE straße İstanbul ǅ ǈ ǋ",
    "vietnamese": "Tiếng Việt có dấu: ắ ằ ẳ ẵ ặ",
    "math": "∀x∈ℝ: x²≥0, ∑ᵢ aᵢ ≤ ∞, √2 ≈ 1.414, ½ ⅓ ¾, ℵ₀",
    "symbols": "©®™ §¶ †‡ • … ‰ ‹› «» „“ ¿¡ ¥€£¢ ← → ↔ ⇒ ♠♥♦♣ ☃",
}

EMOJI = ["😀", "👍", "👍🏽", "👍🏿", "👨‍👩‍👧‍👦", "🧑🏽‍💻", "🏳️‍🌈", "🇫🇷", "🇯🇵",
         "1️⃣", "#️⃣", "❤️", "✈️", "🤷‍♀️", "👩🏻‍❤️‍💋‍👨🏼", "🐈‍⬛", "🫠", "🦀"]

UNICODE_DIGITS = "٠١٢٣٤٥٦٧٨٩۴۵०१२३४५६৭৮౯๑๒๓０１２３４５６７８９²³¹⁴½¼¾ⅠⅡⅫⅻ〇①②⑩"

WHITESPACE = [" ", "  ", "\t", "\n", "\r\n", "\r", "\n\n", " \n ", "\t\t",
              "\u00a0", "\u3000", "\u2028", "\u2029", "\u0085", "\u180e",
              "\u200b", "\ufeff", "\u2003", "\u202f", "\u205f", "\x0b", "\x0c",
              "\x1c", "\x1f"]

COMBINING = ["e\u0301", "a\u0300\u0316", "n\u0303", "o\u0308\u0304",
             "Z\u0351\u036b\u0343\u036a\u0302\u036b\u033d\u034f\u0334\u0319",
             "\u1100\u1161\u11a8", "क\u094d\u0937", "\u05e9\u05c1\u05b8"]


def random_word(rng):
    return rng.choice(WORDS)


def prose(rng):
    n = rng.randint(1, 30)
    words = [random_word(rng) for _ in range(n)]
    if rng.random() < 0.5:
        words[0] = words[0].capitalize()
    text = " ".join(words)
    return text + rng.choice([".", "!", "?", "", ",", "...", ":", " —"])


def number(rng):
    kind = rng.randrange(8)
    if kind == 0:
        return str(rng.randint(0, 10**rng.randint(1, 12)))
    if kind == 1:
        return "".join(rng.choice("0123456789") for _ in range(rng.randint(20, 300)))
    if kind == 2:
        return f"{rng.uniform(-1e6, 1e6):.{rng.randint(0, 8)}f}"
    if kind == 3:
        return f"{rng.uniform(-1, 1):e}"
    if kind == 4:
        return f"{rng.randint(1900, 2100)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    if kind == 5:
        return hex(rng.getrandbits(64))
    if kind == 6:
        return f"{rng.randint(1, 999):,}".replace(",", rng.choice([",", ".", " ", "'"])) + str(rng.randint(0, 999))
    return "".join(rng.choice(UNICODE_DIGITS) for _ in range(rng.randint(1, 12)))


def assigned_char(rng):
    """A random character assigned in Unicode 14 (Python 3.11's database),
    from any plane, sparing surrogates and private use."""
    while True:
        cp = rng.choice([rng.randint(0x20, 0x2FFF), rng.randint(0x3000, 0xFFFD),
                         rng.randint(0x10000, 0x1FFFF), rng.randint(0x20000, 0x3134A)])
        c = chr(cp)
        if unicodedata.category(c) not in ("Cn", "Cs", "Co"):
            return c


def emoji_text(rng):
    parts = []
    for _ in range(rng.randint(1, 8)):
        parts.append(rng.choice(EMOJI))
        if rng.random() < 0.4:
            parts.append(rng.choice([" ", "", random_word(rng), " " + random_word(rng) + " "]))
    return "".join(parts)


def mixed(rng):
    pieces = []
    for _ in range(rng.randint(2, 10)):
        kind = rng.randrange(9)
        if kind == 0:
            pieces.append(prose(rng))
        elif kind == 1:
            pieces.append(number(rng))
        elif kind == 2:
            pieces.append(rng.choice(WHITESPACE) * rng.randint(1, 4))
        elif kind == 3:
            script = rng.choice(list(SCRIPTS.values()))
            start = rng.randrange(len(script))
            pieces.append(script[start:start + rng.randint(1, 20)])
        elif kind == 4:
            pieces.append(emoji_text(rng))
        elif kind == 5:
            pieces.append(rng.choice(COMBINING))
        elif kind == 6:
            pieces.append(rng.choice(SPECIAL_TOKENS + ["<|im_start", "im_end|>", "<|", "|>"]))
        elif kind == 7:
            pieces.append("".join(assigned_char(rng) for _ in range(rng.randint(1, 6))))
        else:
            pieces.append(rng.choice(CODE_SNIPPETS))
    return "".join(pieces)


def corpus(seed=20240601):
    """A deterministic list of test strings, well over MIN_STRINGS."""
    rng = random.Random(seed)
    out = ["", " ", "  ", "\n", "a", "A", "'s", " 's", "'S", "I'm", "DON'T",
           "hello world", " hello world ", "Hello World<|im_end|>",
           "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
           "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
           "<|im_end|><|im_start|>", "a<|endoftext|>b", " <|endoftext|> ",
           "<|im_start", "<|im_start|", "<<|im_start|>>", "<|endoftext|><|endoftext|>",
           "x" * 10000, "ab" * 3000, "9" * 5000, " " * 1000, "\n" * 500,
           "\t" * 300 + "x", "\r\n" * 200, "é" * 2000, "中" * 3000,
           "😀" * 500, "👨‍👩‍👧‍👦" * 50, "a\u0301" * 400,
           "Supercalifragilisticexpialidocious" * 100,
           "https://" + "a" * 3000 + ".com",
           "".join(chr(c) for c in range(0, 128)),
           "".join(chr(c) for c in range(128, 1024)),
           "\x00", "a\x00b", "\x00" * 10,
           "call <tool> x </tool>  y", "  <tool>\t</tool>\n\nz", "<tool></tool>",
           "a word, sword words word\tword_ wordé 1word", "hello world  world\n world",
           "the theme of the<|im_start|>user said the",
           "the other thing and anding ONE on an error the", "theing ther t h e"]
    out += [chr(c) for c in range(0, 256)]
    out += list(SCRIPTS.values()) + EMOJI + COMBINING + WHITESPACE + CODE_SNIPPETS
    for ws in WHITESPACE:
        out += ["a" + ws + "b", "a" + ws * 3 + "b", ws * 2, "x" + ws * 2, ws + "1"]
    generators = [prose, number, emoji_text, mixed, mixed, mixed]
    while len(out) < 2600:
        out.append(rng.choice(generators)(rng))
    for name, script in SCRIPTS.items():
        words = script.split() or [script]
        for _ in range(10):
            out.append(" ".join(rng.choice(words) for _ in range(rng.randint(1, 8))))
    for _ in range(100):
        out.append("".join(assigned_char(rng) for _ in range(rng.randint(1, 40))))
    return out


def variants(smollm2):
    """Variants of the SmolLM2 tokenizer.json exercising options the real
    files leave off. Returns (name, json, loses_nothing) triples."""
    base = json.loads(smollm2)
    out = []

    def extra_tokens(j):
        j["added_tokens"] = j["added_tokens"] + [
            dict(id=0, content="<tool>", special=False, normalized=False,
                 lstrip=True, rstrip=False, single_word=False),
            dict(id=0, content="</tool>", special=False, normalized=False,
                 lstrip=False, rstrip=True, single_word=False),
            dict(id=0, content="word", special=False, normalized=False,
                 lstrip=False, rstrip=False, single_word=True),
            dict(id=0, content="the", special=False, normalized=True,
                 lstrip=False, rstrip=False, single_word=False),
            dict(id=0, content="<|im_start|>user", special=True, normalized=True,
                 lstrip=False, rstrip=False, single_word=False),
            dict(id=0, content=" world", special=False, normalized=True,
                 lstrip=True, rstrip=True, single_word=True),
        ]

    j = copy.deepcopy(base)
    j["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": LLAMA3_REGEX},
         "behavior": "Isolated", "invert": False},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
         "use_regex": False}]}
    j["model"]["ignore_merges"] = True
    single = [{"SpecialToken": {"id": "<|endoftext|>", "type_id": 0}},
              {"Sequence": {"id": "A", "type_id": 0}},
              {"SpecialToken": {"id": "<|im_end|>", "type_id": 0}}]
    j["post_processor"] = {"type": "Sequence", "processors": [
        {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False,
         "use_regex": True},
        {"type": "TemplateProcessing", "single": single,
         "pair": single + [{"Sequence": {"id": "B", "type_id": 1}}],
         "special_tokens": {
             "<|endoftext|>": {"id": "<|endoftext|>", "ids": [0], "tokens": ["<|endoftext|>"]},
             "<|im_end|>": {"id": "<|im_end|>", "ids": [2], "tokens": ["<|im_end|>"]}}}]}
    extra_tokens(j)
    out.append(("smollm2+llama3-split+added-flags", j, False))

    j = copy.deepcopy(base)
    j["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
        {"type": "Digits", "individual_digits": False},
        {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True,
         "use_regex": True}]}
    j["post_processor"] = {"type": "RobertaProcessing", "sep": ["<|im_end|>", 2],
                           "cls": ["<|im_start|>", 1], "trim_offsets": True,
                           "add_prefix_space": True}
    out.append(("smollm2+prefix-space+roberta", j, False))

    j = copy.deepcopy(base)
    j["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"String": "\n"}, "behavior": "MergedWithPrevious", "invert": False},
        {"type": "Split", "pattern": {"Regex": "[,;:]"}, "behavior": "MergedWithNext", "invert": False},
        {"type": "Split", "pattern": {"Regex": "\\p{P}"}, "behavior": "Contiguous", "invert": True},
        {"type": "Split", "pattern": {"Regex": "\\s*"}, "behavior": "Isolated", "invert": False},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}]}
    out.append(("smollm2+split-behaviours", j, True))

    j = copy.deepcopy(base)
    j["pre_tokenizer"] = {"type": "Split", "pattern": {"Regex": "\\s+"},
                          "behavior": "Removed", "invert": False}
    j["model"]["unk_token"] = "<|endoftext|>"
    j["model"]["fuse_unk"] = True
    j["decoder"] = None
    j["post_processor"] = None
    out.append(("smollm2+char-level+unk+no-decoder", j, False))

    j = copy.deepcopy(base)
    j["pre_tokenizer"] = {"type": "Split", "pattern": {"Regex": LLAMA3_REGEX},
                          "behavior": "Isolated", "invert": False}
    vocab = j["model"]["vocab"]
    for b in range(256):
        vocab[f"<0x{b:02X}>"] = len(vocab)
    j["model"]["byte_fallback"] = True
    out.append(("smollm2+char-level+byte-fallback", j, False))
    out.append(("tiny-subword-affixes", tiny_affix_tokenizer(), False))
    return out


def tiny_affix_tokenizer():
    """A hand-made character-level BPE with continuing_subword_prefix and
    end_of_word_suffix (neither real file uses them) and an unfused unk."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    vocab = {"[UNK]": 0}
    for c in letters:
        for spelling in (c, "##" + c, c + "</w>", "##" + c + "</w>"):
            vocab[spelling] = len(vocab)
    merges = [["t", "##h"], ["th", "##e</w>"], ["##e", "##r</w>"],
              ["##i", "##n"], ["##in", "##g</w>"], ["o", "##n</w>"],
              ["a", "##n"], ["an", "##d</w>"], ["##e", "##r"]]
    for a, b in merges:
        vocab.setdefault(a + b[2:], len(vocab))
    return {"version": "1.0", "truncation": None, "padding": None,
            "added_tokens": [], "normalizer": None,
            "pre_tokenizer": {"type": "Split", "pattern": {"Regex": "\\s+"},
                              "behavior": "Removed", "invert": False},
            "post_processor": None, "decoder": None,
            "model": {"type": "BPE", "dropout": None, "unk_token": "[UNK]",
                      "continuing_subword_prefix": "##", "end_of_word_suffix": "</w>",
                      "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                      "vocab": vocab, "merges": merges}}


def byte_alphabet():
    """GPT-2's bytes_to_unicode: the character that stands for each byte."""
    keep = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
            + list(range(ord("®"), ord("ÿ") + 1)))
    extra = [b for b in range(256) if b not in keep]
    return {b: chr(b) if b in keep else chr(256 + extra.index(b)) for b in range(256)}


def bytes_without_token(ref):
    """Bytes a byte-level tokenizer has no token for: `tokenizers` (and kiln)
    drop them silently, so text holding them cannot round-trip."""
    vocab = ref.get_vocab()
    return {b for b, c in byte_alphabet().items() if c not in vocab}


def run_kiln(tool, path, cases):
    """Runs kiln on `cases`: (text, add_special_tokens) to encode and decode,
    or (list of ids, None) to decode only."""
    lines = "".join(f"D {','.join(map(str, text))}\n" if special is None
                    else f"{int(special)} {text.encode('utf-8').hex()}\n"
                    for text, special in cases)
    proc = subprocess.run([tool, path], input=lines.encode(), capture_output=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{tool} {path} exited with {proc.returncode}: {proc.stderr.decode(errors='replace')}")
    rows = proc.stdout.decode().split("\n")[:-1]
    if len(rows) != len(cases):
        raise RuntimeError(f"{tool} gave {len(rows)} lines for {len(cases)} strings")
    return rows


def id_sequences(ref, strings, count, seed=7):
    """Id sequences that need not decode to valid UTF-8: encodings cut at
    random places (splitting multi-byte characters) and random ids, to check
    decode's U+FFFD replacement and the streaming decoder's holding back."""
    rng = random.Random(seed)
    size = ref.get_vocab_size(with_added_tokens=True)
    vocab_ids = sorted(ref.get_vocab(with_added_tokens=True).values())
    out = []
    for _ in range(count):
        if rng.random() < 0.5:
            ids = ref.encode(rng.choice(strings), add_special_tokens=False).ids
            a = rng.randrange(len(ids) + 1)
            ids = ids[a:a + rng.randint(0, 12)]
        else:
            ids = [rng.choice(vocab_ids) for _ in range(rng.randint(0, 10))]
        out.append([i for i in ids if i < size])
    return out


def check(name, path, tool, strings, loses_nothing, show=5):
    """Returns (passed, failed) over `strings`, plus as many id sequences
    decoded only, for the tokenizer at `path`."""
    ref = Tokenizer.from_file(path)
    cases = [(s, i % 4 == 3) for i, s in enumerate(strings)]
    n_decode = len(strings) // 4
    cases += [(ids, None) for ids in id_sequences(ref, strings, n_decode)]
    rows = run_kiln(tool, path, cases)
    missing = bytes_without_token(ref) if loses_nothing else set()
    if missing:
        print(f"{name}: note: no token for bytes {sorted(hex(b) for b in missing)}; "
              f"{sum(1 for s in strings if missing & set(s.encode()))} strings holding "
              "them are exempt from the round-trip check (the reference drops them too)")
    passed = failed = 0
    for (text, special), row in zip(cases, rows):
        if special is None:  # decode only: compare with the reference's decode
            want = text
        else:
            want = ref.encode(text, add_special_tokens=special).ids
        problem = None
        if row.startswith("ERR"):
            problem = row
        else:
            ids_s, plain_h, skipped_h, streamed_h = row.split("\t")
            ids = [int(x) for x in ids_s.split(",")] if ids_s else []
            plain = bytes.fromhex(plain_h).decode("utf-8")
            skipped = bytes.fromhex(skipped_h).decode("utf-8")
            streamed = bytes.fromhex(streamed_h).decode("utf-8")
            if ids != want:
                k = next((i for i, (a, b) in enumerate(zip(ids, want)) if a != b),
                         min(len(ids), len(want)))
                problem = (f"ids differ at {k}: kiln {ids[max(0, k - 3):k + 4]} "
                           f"reference {want[max(0, k - 3):k + 4]} "
                           f"({[ref.id_to_token(i) for i in want[max(0, k - 3):k + 4]]})")
            elif plain != ref.decode(want, skip_special_tokens=False):
                problem = f"decode differs: kiln {plain[:80]!r} reference {ref.decode(want, skip_special_tokens=False)[:80]!r}"
            elif skipped != ref.decode(want, skip_special_tokens=True):
                problem = f"decode(skip_special_tokens) differs: kiln {skipped[:80]!r}"
            elif streamed != plain:
                problem = f"streamed decode differs: {streamed[:80]!r} vs {plain[:80]!r}"
            elif (special is False and loses_nothing and plain != text
                  and not missing & set(text.encode())):
                problem = f"round trip lost text: {plain[:80]!r}"
        if problem:
            failed += 1
            if failed <= show:
                what = (f"ids={text}" if special is None else
                        f"text={text[:60]!r}{'...' if len(text) > 60 else ''} add_special={special}")
                print(f"  MISMATCH {name} {what}: {problem}")
        else:
            passed += 1
    print(f"{name}: {len(strings)} strings and {n_decode} id sequences compared, "
          f"{passed} agree, {failed} differ")
    return passed, failed


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tool", required=True, help="path to kiln-tokenize-tool")
    ap.add_argument("--smollm2", required=True, help="SmolLM2's tokenizer.json")
    ap.add_argument("--fixture", action="append", default=[],
                    help="more tokenizer.json files to check as they are")
    args = ap.parse_args()

    if not os.access(args.tool, os.X_OK):
        print(f"{args.tool}: not found or not executable; build kiln-tokenize-tool first")
        print("0 passed, 1 failed")
        return 1
    strings = corpus()
    assert len(strings) >= MIN_STRINGS, len(strings)
    print(f"corpus: {len(strings)} strings, "
          f"{sum(len(s.encode()) for s in strings)} bytes")
    total_pass = total_fail = 0
    checks = [("smollm2", args.smollm2, True)]
    checks += [(os.path.basename(os.path.dirname(f)) or f, f, True) for f in args.fixture]
    with tempfile.TemporaryDirectory() as tmp:
        with open(args.smollm2, encoding="utf-8") as f:
            for name, j, loses_nothing in variants(f.read()):
                path = os.path.join(tmp, name + ".json")
                with open(path, "w", encoding="utf-8") as out:
                    json.dump(j, out)
                checks.append((name, path, loses_nothing))
        for name, path, loses_nothing in checks:
            try:
                p, f = check(name, path, args.tool, strings, loses_nothing)
            except Exception as e:  # a crash of the tool fails every string
                print(f"{name}: ERROR {e}")
                p, f = 0, len(strings)
            total_pass += p
            total_fail += f
    print(f"{total_pass} passed, {total_fail} failed")
    return 0 if total_fail == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
