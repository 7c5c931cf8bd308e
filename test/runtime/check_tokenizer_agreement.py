#!/usr/bin/env python3
"""Checks kiln's runtime tokenizer against the `tokenizers` package.

The `tokenizers` library (pinned in scripts/requirements-test.txt) is the
reference: kiln must give the same ids for every string and decode them to
the same text. For each tokenizer.json below, every string of a generated
corpus (prose, code, numbers, whitespace, many scripts, emoji, combining
marks, special tokens inside text, empty and very long strings, and strings
that lean on byte fallback: rare CJK, control characters, runs of spaces and
newlines, "▁" itself) is encoded and decoded by both; kiln's side runs
through kiln-tokenize-tool, which calls the C API.

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
  With --fixture-dir (test/fixtures/tokenizers, made by make_tokenizers.py):
  every */tokenizer.json there (SentencePiece-style: Llama 2, Mistral and
  Gemma BPE with byte fallback, T5 Unigram, Unigram with byte fallback), and
  variants of them: each Metaspace prepend_scheme with and without split,
  the older add_prefix_space spelling, ignore_merges, missing byte tokens
  (unk instead), no unk token, the Metaspace decoder, decoders that group
  bytes before Metaspace, Strip in and after Fuse, normalized added tokens
  with lstrip/rstrip in a normalized text, Unigram without byte fallback.

For each (tokenizer, string) pair the check passes when, with and without
add_special_tokens, kiln's ids equal the reference's, decode with and
without skip_special_tokens equals the reference's decode, and the streamed
decode (kiln_detokenizer_*, skipping special tokens and not) returns only
whole characters in each chunk, never text that a later token changes (what
it returned after each id is a prefix of the reference's decode of the ids
so far) and in all exactly the reference's decode; for tokenizers that lose
nothing, decode(encode(s)) == s too. Id sequences that need not form valid
UTF-8 (encodings cut anywhere, random ids) are decoded by both too, which
checks the U+FFFD replacement and byte-fallback runs.

Prints one line per (tokenizer, string or id sequence), "ok   ..." or
"FAIL ...", a summary per tokenizer, and ends with "N passed, M failed".
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

import tokenizers
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

# Strings that SentencePiece-style tokenizers treat specially: byte
# fallback (characters no token spells), spaces that become "▁", the "▁"
# character itself, byte-token and special-token spellings in the text.
BYTE_FALLBACK_HEAVY = [
    "▁", "▁▁", " ▁", "▁ ", "a▁b", "▁hello", "hello▁", "▁▁▁x▁▁▁", "_x_",
    " ", "  ", "   leading", "trailing   ", "  both  ", "multiple    inner   spaces",
    "\n", "\n\n", " \n", "\n ", "line\nbreak", "a\r\nb", "\tx\t", " \t \n ",
    "𠀀𠀁𠀂", "𪚥 𪚥", "鿕鿔", "丂丄丅", "\U0002A6A5\U0002B740", "🀄🃏", "🫠🫡🫢", "😀",
    "😀😀😀", " 😀", "😀 ", "a😀b", "👨‍👩‍👧‍👦", "🏳️‍🌈", "🇯🇵🇫🇷",
    "\x00", "\x01\x02\x03", "\x07bell", "\x1b[31mred\x1b[0m", "\x7f", "\u0085", "\u200b",
    "\ufeff", "\U000e0041", "\uffff", "\U0010fffd", "\ud7ff",
    "<0x41>", "<0x0A>", "<0xZZ>", "<0x+F>", "<s>", "</s>", "<unk>", "<s><s>", " <s> ",
    "a<s>b", "<s>hello</s>", "[INST] hi [/INST]", "[INST]", "<pad>", "<extra_id_0>",
    "<bos>x", "<start_of_turn>user\nhi<end_of_turn>", "<<s>>", "<s", "s>",
    "The  quick\tbrown\n\nfox", "é", "e\u0301", "Ω≈ç√∫", "ﬁ ﬂ", "Ⅻ", "①②",
    "xyz", "a xyz b", "axyzb", " xyz  xyz ", "a <tool> b", "<tool>",
]

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
    out += BYTE_FALLBACK_HEAVY
    for x in BYTE_FALLBACK_HEAVY:
        out += [x + " word", "word " + x, " " + x + " ", x * 3]
    for ws in WHITESPACE:
        out += ["a" + ws + "b", "a" + ws * 3 + "b", ws * 2, "x" + ws * 2, ws + "1"]
    generators = [prose, number, emoji_text, mixed, mixed, mixed]
    while len(out) < 3100:
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


def sentencepiece_variants(fixtures):
    """Variants of the SentencePiece-style fixtures (name -> json) switching
    on what the fixtures leave off. Returns (name, json, loses_nothing)."""
    out = []

    def variant(base, suffix, change):
        if base in fixtures:
            j = copy.deepcopy(fixtures[base])
            change(j)
            out.append((f"{base}+{suffix}", j, False))

    def metaspace(**options):
        return dict(type="Metaspace", replacement="▁", **options)

    # Every prepend scheme, with and without split; the older spellings.
    for scheme in ("always", "first", "never"):
        for split in (False, True):
            variant("mistral-bpe", f"metaspace-{scheme}{'-split' if split else ''}",
                    lambda j, s=scheme, sp=split: j.update(
                        pre_tokenizer=metaspace(prepend_scheme=s, split=sp)))
    variant("mistral-bpe", "metaspace-add-prefix-space",
            lambda j: j.update(pre_tokenizer=metaspace(add_prefix_space=True, str_rep="▁")))
    variant("mistral-bpe", "metaspace-no-prefix-space",
            lambda j: j.update(pre_tokenizer=metaspace(add_prefix_space=False,
                                                       prepend_scheme="never")))
    variant("t5-unigram", "metaspace-first", lambda j: j["pre_tokenizer"]["pretokenizers"][1]
            .update(prepend_scheme="first"))
    variant("t5-unigram", "metaspace-never-nosplit", lambda j: j.update(
        pre_tokenizer=metaspace(prepend_scheme="never", split=False),
        decoder=metaspace(prepend_scheme="never", split=False)))

    # The model's options.
    variant("mistral-bpe", "ignore-merges", lambda j: j["model"].update(ignore_merges=True))

    def drop_bytes(j, first=0xC0, last=0xFF):
        vocab = j["model"]["vocab"]
        for b in range(first, last + 1):
            if isinstance(vocab, dict):
                vocab.pop(f"<0x{b:02X}>")
            else:
                vocab.remove([f"<0x{b:02X}>", 0.0])
    variant("mistral-bpe", "missing-bytes-unk", drop_bytes)
    variant("mistral-bpe", "missing-bytes-unk-unfused",
            lambda j: (drop_bytes(j), j["model"].update(fuse_unk=False)))
    variant("mistral-bpe", "missing-bytes-no-unk",
            lambda j: (drop_bytes(j), j["model"].update(unk_token=None)))
    variant("mistral-bpe", "no-byte-fallback", lambda j: j["model"].update(byte_fallback=False))
    variant("unigram-byte-fallback", "missing-bytes", drop_bytes)
    variant("unigram-byte-fallback", "no-byte-fallback",
            lambda j: j["model"].update(byte_fallback=False))

    # Decoders: Metaspace alone, bytes grouped before Metaspace counts tokens,
    # Strip per token (with stop) and after Fuse (start 2), Replace after Fuse.
    variant("mistral-bpe", "metaspace-decoder",
            lambda j: j.update(decoder=metaspace(prepend_scheme="first", split=False)))
    variant("unigram-byte-fallback", "bytefallback-metaspace-decoder", lambda j: j.update(
        decoder={"type": "Sequence", "decoders": [
            {"type": "ByteFallback"}, metaspace(prepend_scheme="always", split=True)]}))
    variant("llama2-bpe", "strip-decoders", lambda j: j.update(
        decoder={"type": "Sequence", "decoders": [
            {"type": "ByteFallback"},
            # (start and stop both 1 would panic in `tokenizers` on "▁")
            {"type": "Strip", "content": "▁", "start": 0, "stop": 1},
            {"type": "Strip", "content": "<", "start": 1, "stop": 0},
            {"type": "Fuse"},
            {"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
            {"type": "Strip", "content": " ", "start": 2, "stop": 0}]}))
    variant("gemma-bpe", "no-decoder", lambda j: j.update(decoder=None))

    # Normalizers: Strip on both ends, a regex Replace, and Metaspace "first"
    # after a normalizer that moves the text's start.
    variant("llama2-bpe", "strip-regex-normalizer", lambda j: j.update(normalizer={
        "type": "Sequence", "normalizers": [
            {"type": "Strip", "strip_left": True, "strip_right": True},
            {"type": "Replace", "pattern": {"Regex": "\\s+"}, "content": " "},
            {"type": "Prepend", "prepend": "▁"},
            {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]}))
    variant("mistral-bpe", "lstrip-normalizer-first", lambda j: j.update(normalizer={
        "type": "Sequence", "normalizers": [
            {"type": "Strip", "strip_left": True, "strip_right": False},
            {"type": "Replace", "pattern": {"String": "ab"}, "content": ""}]}))

    # Added tokens matched in normalized text (where " " is already "▁", so
    # a normalized "<|im_start|>" is looked for as "▁<|im_start|>"), with
    # the flags. None is in the vocabulary: see renamed_added_tokens.
    def added(j):
        j["added_tokens"] = j["added_tokens"] + [
            dict(id=0, content="<|im_start|>", special=False, normalized=True,
                 lstrip=False, rstrip=False, single_word=False),
            dict(id=0, content="<|im_end|>", special=True, normalized=True,
                 lstrip=False, rstrip=False, single_word=False),
            dict(id=0, content="word", special=False, normalized=True,
                 lstrip=False, rstrip=False, single_word=True),
            dict(id=0, content="<tool>", special=False, normalized=False,
                 lstrip=True, rstrip=True, single_word=False),
            dict(id=0, content="xyz", special=False, normalized=True,
                 lstrip=True, rstrip=True, single_word=False)]
    variant("llama2-bpe", "added-normalized", added)
    variant("t5-unigram", "added-normalized", added)
    return out


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


# Streamed decodes of at most this many ids are checked after every id (the
# text so far must be a prefix of the reference's decode of the ids so far);
# longer ones only as a whole.
PREFIX_CHECK_MAX = 64


def check_stream(ref, ids, column, skip):
    """Problem with one streamed column of kiln-tokenize-tool, or None."""
    parts = []
    for k, chunk in enumerate(column.split(".")):
        try:
            parts.append(bytes.fromhex(chunk).decode("utf-8"))
        except UnicodeDecodeError:
            return f"streamed chunk {k} is not whole characters: {bytes.fromhex(chunk)!r}"
    if len(parts) != len(ids) + 1:
        return f"{len(parts)} streamed chunks for {len(ids)} ids"
    want = ref.decode(ids, skip_special_tokens=skip)
    if "".join(parts) != want:
        return (f"streamed decode (skip_special_tokens={skip}) differs: "
                f"kiln {''.join(parts)[:80]!r} reference {want[:80]!r}")
    if len(ids) <= PREFIX_CHECK_MAX:
        emitted = ""
        for k in range(len(ids)):
            emitted += parts[k]
            so_far = ref.decode(ids[:k + 1], skip_special_tokens=skip)
            if not so_far.startswith(emitted):
                return (f"streamed text after id {k} (skip_special_tokens={skip}), "
                        f"...{emitted[-30:]!r}, is not a prefix of the decode so far "
                        f"...{so_far[-30:]!r}")
    return None


class Skip(str):
    """A comparison the installed reference cannot make (see
    renamed_added_tokens); counted as skipped, never as passed."""


def renamed_added_tokens(ref):
    """Ids of normalized added tokens that the installed `tokenizers` decodes
    as their normalized form. Since tokenizers 0.23 (PR #1995) id_to_token
    and decode give such a token as the normalizer spells it (with Llama 2's
    normalizer "<x>" becomes "▁<x>", decoded " <x>"), and skip_special_tokens
    no longer skips it when it is special. kiln follows 0.22.2, the version
    pinned in scripts/requirements-test.txt, where the token is its content;
    the decodes of ids holding one cannot be compared under 0.23."""
    return {i for i, t in ref.get_added_tokens_decoder().items()
            if t.normalized and ref.id_to_token(i) != t.content}


def compare(ref, row, want, text=None, special=None, loses_nothing=False, missing=(),
            renamed=frozenset()):
    """Problem with one row of kiln-tokenize-tool, None, or a Skip. `want`
    is the reference's ids, or an exception it raised encoding."""
    if isinstance(want, Exception):
        return None if row.startswith("ERR") else f"the reference fails ({want}) but kiln gives {row[:80]!r}"
    if row.startswith("ERR"):
        return row
    ids_s, plain_h, skipped_h, streamed, streamed_skip = row.split("\t")
    ids = [int(x) for x in ids_s.split(",")] if ids_s else []
    if ids != want:
        k = next((i for i, (a, b) in enumerate(zip(ids, want)) if a != b),
                 min(len(ids), len(want)))
        return (f"ids differ at {k}: kiln {ids[max(0, k - 3):k + 4]} "
                f"reference {want[max(0, k - 3):k + 4]} "
                f"({[ref.id_to_token(i) for i in want[max(0, k - 3):k + 4]]})")
    if renamed & set(want):
        return Skip(f"ids agree; decode not compared: tokenizers {tokenizers.__version__} "
                    f"decodes normalized added tokens {sorted(renamed & set(want))} as their "
                    "normalized form, kiln as 0.22.2 does")
    plain = bytes.fromhex(plain_h).decode("utf-8")
    skipped = bytes.fromhex(skipped_h).decode("utf-8")
    ref_plain = ref.decode(want, skip_special_tokens=False)
    if plain != ref_plain:
        return f"decode differs: kiln {plain[:80]!r} reference {ref_plain[:80]!r}"
    ref_skipped = ref.decode(want, skip_special_tokens=True)
    if skipped != ref_skipped:
        return f"decode(skip_special_tokens) differs: kiln {skipped[:80]!r} reference {ref_skipped[:80]!r}"
    problem = check_stream(ref, want, streamed, False) or check_stream(ref, want, streamed_skip, True)
    if problem:
        return problem
    if (special is False and loses_nothing and plain != text
            and not set(missing) & set(text.encode())):
        return f"round trip lost text: {plain[:80]!r}"
    return None


def check(name, path, tool, strings, loses_nothing):
    """Returns (passed, failed) over `strings` (each encoded with and without
    special tokens) plus as many id sequences decoded only, for the
    tokenizer at `path`; prints one line for each."""
    ref = Tokenizer.from_file(path)
    cases = [(s, special) for s in strings for special in (False, True)]
    n_decode = len(strings) // 4
    sequences = id_sequences(ref, strings, n_decode)
    cases += [(ids, None) for ids in sequences]
    rows = run_kiln(tool, path, cases)
    missing = bytes_without_token(ref) if loses_nothing else set()
    if missing:
        print(f"{name}: note: no token for bytes {sorted(hex(b) for b in missing)}; "
              f"{sum(1 for s in strings if missing & set(s.encode()))} strings holding "
              "them are exempt from the round-trip check (the reference drops them too)")

    def reference_ids(text, special):
        try:
            return ref.encode(text, add_special_tokens=special).ids
        except Exception as e:  # kiln must fail too
            return e

    renamed = renamed_added_tokens(ref)
    counts = {"ok": 0, "FAIL": 0, "skip": 0}

    def report(label, problem):
        kind = "ok" if problem is None else "skip" if isinstance(problem, Skip) else "FAIL"
        counts[kind] += 1
        print(f"{kind:4} {label}" + (f": {problem}" if problem else ""))

    for i, text in enumerate(strings):
        label = f"{name} #{i} {text[:40]!r}{'...' if len(text) > 40 else ''}"
        problems = []
        for k, special in enumerate((False, True)):
            problem = compare(ref, rows[2 * i + k], reference_ids(text, special), text, special,
                              loses_nothing, missing, renamed)
            if problem:
                problems.append(type(problem)(f"add_special_tokens={special}: {problem}"))
        failures = [p for p in problems if not isinstance(p, Skip)]
        report(label, failures[0] if failures else problems[0] if problems else None)
    for k, ids in enumerate(sequences):
        report(f"{name} ids={ids}", compare(ref, rows[2 * len(strings) + k], ids, renamed=renamed))
    print(f"{name}: {len(strings)} strings and {n_decode} id sequences compared, "
          f"{counts['ok']} agree, {counts['FAIL']} differ"
          + (f", {counts['skip']} skipped" if counts["skip"] else ""))
    return counts["ok"], counts["FAIL"], counts["skip"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tool", required=True, help="path to kiln-tokenize-tool")
    ap.add_argument("--smollm2", help="SmolLM2's tokenizer.json (it and its variants "
                    "are skipped when not given)")
    ap.add_argument("--fixture", action="append", default=[],
                    help="more tokenizer.json files to check as they are")
    ap.add_argument("--fixture-dir", help="a folder of NAME/tokenizer.json fixtures "
                    "(test/fixtures/tokenizers): each is checked, with variants")
    args = ap.parse_args()

    if not os.access(args.tool, os.X_OK):
        print(f"{args.tool}: not found or not executable; build kiln-tokenize-tool first")
        print("0 passed, 1 failed")
        return 1
    strings = corpus()
    assert len(strings) >= MIN_STRINGS, len(strings)
    print(f"corpus: {len(strings)} strings, "
          f"{sum(len(s.encode()) for s in strings)} bytes")
    total_pass = total_fail = total_skip = 0
    checks = [("smollm2", args.smollm2, True)] if args.smollm2 else []
    checks += [(os.path.basename(os.path.dirname(f)) or f, f, True) for f in args.fixture]
    with tempfile.TemporaryDirectory() as tmp:
        generated = []
        if args.smollm2:
            with open(args.smollm2, encoding="utf-8") as f:
                generated += variants(f.read())
        if args.fixture_dir:
            fixtures = {}
            for name in sorted(os.listdir(args.fixture_dir)):
                path = os.path.join(args.fixture_dir, name, "tokenizer.json")
                if os.path.isfile(path):
                    checks.append((name, path, False))
                    with open(path, encoding="utf-8") as f:
                        fixtures[name] = json.load(f)
            generated += sentencepiece_variants(fixtures)
        for name, j, loses_nothing in generated:
            path = os.path.join(tmp, name + ".json")
            with open(path, "w", encoding="utf-8") as out:
                json.dump(j, out)
            checks.append((name, path, loses_nothing))
        for name, path, loses_nothing in checks:
            try:
                p, f, k = check(name, path, args.tool, strings, loses_nothing)
            except Exception as e:  # a crash of the tool fails every string
                print(f"FAIL {name}: {e}")
                p, f, k = 0, len(strings), 0
            total_pass += p
            total_fail += f
            total_skip += k
    print(f"{total_pass} passed, {total_fail} failed"
          + (f", {total_skip} skipped" if total_skip else ""))
    return 0 if total_fail == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
