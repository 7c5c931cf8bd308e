#!/usr/bin/env python3
"""Checks kiln's chat template interpreter against transformers.

The reference is transformers itself (installed in the project venv with
jinja2): for a model directory, `AutoTokenizer.from_pretrained(dir)
.apply_chat_template(messages, tokenize=False, add_generation_prompt=...)`,
which compiles the template with transformers' own Jinja environment
(transformers/utils/chat_template_utils.py: `_compile_jinja_template`, an
ImmutableSandboxedEnvironment with trim_blocks=True, lstrip_blocks=True,
loopcontrols, raise_exception, strftime_now, dict, namespace and its tojson).
kiln's side is kiln-chat-template-tool --model DIR, which loads the template
and special tokens as a server does (loadChatTemplateSource) and builds the
same variables (chatTemplateContext).

Templates checked:
  smollm2                   the default model's tokenizer_config.json
  test/fixtures/chat_templates/*
                            Llama 3.1, Qwen2.5, Mistral v0.3, Phi-3 and Gemma
                            templates (see the README there for sources);
                            the fixture directories hold only a
                            tokenizer_config.json (and chat_template.jinja),
                            so SmolLM2's tokenizer.json is copied next to
                            them for AutoTokenizer
  constructs                small templates, one per Jinja construct kiln
                            implements, rendered by transformers'
                            render_jinja_template and by the tool's raw mode

Each template renders every conversation below (system prompt or not,
multi-turn, unicode and emoji, whitespace, empty content, tool calls,
reasoning, role orders the templates reject...) with add_generation_prompt
false and true. A pair passes when both give the same text, or both fail
(when the template raised an exception, kiln's message must carry the
template's). Prints one line per pair and ends with "N passed, M failed".
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

# transformers warns at import that PyTorch is absent; rendering needs none.
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

from transformers import AutoTokenizer  # noqa: E402
from transformers.utils.chat_template_utils import (  # noqa: E402
    render_jinja_template)

SYSTEM = {"role": "system", "content": "You are a helpful assistant."}


def user(text):
    return {"role": "user", "content": text}


def assistant(text):
    return {"role": "assistant", "content": text}


TOOL_CALL = {
    "role": "assistant",
    "content": None,  # transformers drops None-valued keys
    "tool_calls": [{
        "id": "call12345",
        "type": "function",
        "function": {"name": "get_weather",
                     "arguments": {"city": "Paris", "unit": "celsius"}},
    }],
}
TOOL_RESULT = {"role": "tool", "tool_call_id": "call12345",
               "name": "get_weather", "content": '{"temperature": 21.5}'}

# (name, messages, template variables)
CONVERSATIONS = [
    ("single-user", [user("Hello!")], {}),
    ("system-user", [SYSTEM, user("What is 2+2?")], {}),
    ("multi-turn", [user("Hi"), assistant("Hello! How can I help?"),
                    user("Tell me a joke.")], {}),
    ("system-multi-turn", [SYSTEM, user("Hi"), assistant("Hello!"),
                           user("What's the capital of France?"),
                           assistant("Paris.")], {}),
    ("ends-with-assistant", [user("Say hi"), assistant("hi")], {}),
    ("long", [m for i in range(12) for m in
              (user(f"question {i}"), assistant(f"answer {i}"))] +
     [user("last one")], {}),
    ("unicode", [SYSTEM, user("Grüße aus Zürich — ¿qué tal? 你好，世界！ "
                              "مرحبا بالعالم Привет, мир! Γειά σου κόσμε"),
                 assistant("Ça va très bien ✓ — नमस्ते 🙏"),
                 user("日本語のテキスト、한국어 텍스트")], {}),
    ("emoji", [user("👋🏽 hi 👨‍👩‍👧‍👦 family 🏳️‍🌈 flag 🇫🇷 e\u0301 "
                    "combining"), assistant("😀😃😄"),
               user("\U0001F600\U0001F9D1\u200d\U0001F4BB")], {}),
    ("whitespace", [{"role": "system", "content": "  padded system  \n"},
                    user("\n\n  leading and trailing  \t\n"),
                    assistant("   spaced out   "),
                    user("line one\nline two\r\nline three\n\n\nend")], {}),
    ("tabs-and-crlf", [user("\tcol1\tcol2\r\nrow\r\n"), assistant("ok\r\n")],
     {}),
    ("empty-content", [user(""), assistant(""), user("")], {}),
    ("empty-system", [{"role": "system", "content": ""}, user("hi")], {}),
    ("whitespace-only", [user("   "), assistant("\n"), user(" \t ")], {}),
    ("special-tokens-in-text", [user("<|im_start|>user\n<|eot_id|> </s> <s> "
                                     "[INST] <start_of_turn> <|end|>")], {}),
    ("jinja-in-text", [user("{{ messages }} {% if %} {# x #} '\" \\ \\n")],
     {}),
    ("quotes-backslashes", [user("She said \"it's\" \\o/ C:\\path\\to"),
                            assistant("'single' \"double\" `back`")], {}),
    ("long-content", [user("lorem ipsum dolor sit amet " * 200)], {}),
    ("assistant-first", [assistant("I speak first"), user("ok")], {}),
    ("two-users", [user("one"), user("two")], {}),
    ("system-only", [SYSTEM], {}),
    ("two-systems", [SYSTEM, {"role": "system", "content": "Be brief."},
                     user("hi")], {}),
    ("tool-call", [user("Weather in Paris?"), TOOL_CALL, TOOL_RESULT], {}),
    ("tool-call-answered", [SYSTEM, user("Weather in Paris?"), TOOL_CALL,
                            TOOL_RESULT, assistant("It is 21.5 °C.")], {}),
    ("reasoning", [user("2+2?"),
                   {"role": "assistant", "content": "4",
                    "reasoning_content": "Adding two and two."},
                   user("and 3+3?")], {}),
    ("extra-keys", [{"role": "user", "content": "hi", "name": "bob",
                     "metadata": {"k": [1, 2.5, None, True]}}], {}),
    ("null-valued-key", [{"role": "user", "content": "hi", "name": None}], {}),
    ("content-parts", [{"role": "user",
                        "content": [{"type": "text", "text": "hello"}]}], {}),
    ("numeric-content", [{"role": "user", "content": 42}], {}),
    ("date-variable", [SYSTEM, user("What day is it?")],
     {"date_string": "01 Jan 2025"}),
    ("thinking-variable", [user("hi")], {"enable_thinking": False}),
]

# Templates exercising one construct each, rendered with messages and the
# variables below.
CONSTRUCT_VARS = {
    "bos_token": "<s>", "eos_token": "</s>", "n": 7, "f": 2.5, "s": "Hello",
    "empty": "", "lst": [3, 1, 2], "d": {"b": 1, "a": [1, 2], "c": None},
    "items": [{"role": "user", "x": 1}, {"role": "bot"},
              {"role": "user", "x": 3}],
}
CONSTRUCT_MESSAGES = [SYSTEM, user("Hi there"), assistant("Hello!"),
                      user("Bye")]
CONSTRUCTS = [
    # Output, whitespace control, comments, raw, trailing newline.
    "{{ s }} {{ n }} {{ f }} {{ none }} {{ true }} {{ d }} {{ lst }}",
    "  {% if true %}\n  x\n  {% endif %}\n  y  {{ 'z' }}  \n{# c #}\n"
    "  {#- c2 -#}  \nw\n",
    "a  {%- if true -%}  b  {%- endif -%}  c {{- ' d ' -}} e",
    "a\n{%+ if true %}\nb{% endif +%}\nc\n  {%+ if 1 %}d{% endif %}",
    "{% raw %}{{ not rendered }}{% endraw %}\n{%- raw -%}  x  {%- endraw %}",
    "line1\r\nline2\r\n",
    "{{ s }}\n\n",
    "{# only a comment #}",
    # Control flow and scoping.
    "{% if n > 5 %}big{% elif n > 2 %}mid{% else %}small{% endif %}",
    "{% for m in messages %}{{ loop.index }}/{{ loop.length }} "
    "{{ loop.index0 }}{{ loop.first }}{{ loop.last }}{{ loop.revindex }} "
    "{{ m.role }};{% endfor %}",
    "{% for m in messages if m.role != 'system' %}{{ loop.index }}:"
    "{{ m.role }}{% else %}none{% endfor %}",
    "{% for x in [] %}x{% else %}empty{% endfor %}",
    "{% for i in [1,2,3] %}{% if i == 2 %}{% continue %}{% endif %}"
    "{% if i == 3 %}{% break %}{% endif %}{{ i }}{% endfor %}",
    "{% for x in lst %}{{ loop.previtem }}-{{ loop.nextitem }}-"
    "{{ loop.cycle('a', 'b') }};{% endfor %}",
    "{% for i in range(2) %}{% for j in range(3) %}{{ loop.index }}"
    "{% endfor %}{{ loop.index }}|{% endfor %}",
    "{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}",
    "{% for a, b in [[1, 2], (3, 4)] %}{{ a }}{{ b }}{% endfor %}",
    "{% set x = 1 %}{% for i in [1, 2] %}{% set x = x + i %}{{ x }}"
    "{% endfor %}{{ x }}",
    "{% for i in [1, 2] %}{% if i == 1 %}{% set y = 'a' %}{% endif %}"
    "[{{ y }}]{% endfor %}[{{ y }}]",
    "{% if true %}{% set z = 5 %}{% endif %}{{ z }}",
    "{% set ns = namespace(found=false, count=0) %}{% for m in messages %}"
    "{% if m.role == 'user' %}{% set ns.found = true %}"
    "{% set ns.count = ns.count + 1 %}{% endif %}{% endfor %}"
    "{{ ns.found }} {{ ns.count }} {{ ns }}",
    "{% set a, b = 1, 'two' %}{{ a }}{{ b }}",
    "{% set block %}text {{ n }}{% endset %}[{{ block }}]",
    "{% set up | upper %}shout {{ s }}{% endset %}{{ up }}",
    "{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}"
    "{% endmacro %}{{ greet('Bob') }} {{ greet('Al', punct='?') }}",
    "{% macro m() %}{{ later }}{% endmacro %}{% set later = 3 %}{{ m() }}",
    "{% macro m(x) %}{{ x }}{% endmacro %}{{ m(1, 2) }}",
    "{% generation %}tracked {{ s }}{% endgeneration %}",
    # Expressions and operators.
    "{{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ 7 // 2 }} {{ -7 // 2 }} "
    "{{ 7 % 3 }} {{ -7 % 3 }} {{ 7 / 2 }} {{ 4 / 2 }} {{ 2 ** 10 }} "
    "{{ 2 ** 3 ** 2 }} {{ -2 ** 2 }} {{ 2 ** -1 }}",
    "{{ 7.5 // 2 }} {{ -7.5 % 2 }} {{ 0.1 + 0.2 }} {{ 1e16 }} {{ 1e15 }} "
    "{{ 1.5e-5 }} {{ 1/3 }} {{ 100.0 }} {{ -0.0 }}",
    "{{ 'a' ~ 1 ~ none ~ true ~ f }} {{ 'ab' * 3 }} {{ [1] + [2] }} "
    "{{ 'x' + 'y' }}",
    "{{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }} {{ 1 == 1.0 }} {{ true == 1 }} "
    "{{ 'a' != 'b' }} {{ [1, 2] == [1, 2] }} {{ d == d }}",
    "{{ 'a' in 'cat' }} {{ 2 in lst }} {{ 'b' in d }} {{ 'z' not in d }} "
    "{{ not false }} {{ none or 'dflt' }} {{ 0 and 'x' }} {{ 'p' and 'q' }}",
    "{{ 'yes' if n > 3 else 'no' }} [{{ 'shown' if false }}] "
    "{{ 1 if false else 2 if true else 3 }}",
    "{{ lst[0] }} {{ lst[-1] }} {{ lst[1:] }} {{ lst[::-1] }} {{ lst[:-1] }} "
    "{{ lst[5:] }} {{ s[1:4] }} {{ s[-2:] }} {{ s[::2] }} {{ s[0] }}",
    "{{ 'héllo wörld'[1:5] }} {{ 'héllo'[::-1] }} {{ '🙂x'[0] }}",
    "{{ d.a }} {{ d['a'][1] }} {{ d.get('a') }} {{ d.get('zz') }} "
    "{{ d.get('zz', 'fallback') }} {{ d.keys()|list }} {{ d.values()|list }}",
    "{{ d.items()|list }} {{ d|items|list }} {{ d|dictsort }}",
    "{{ (1,) }} {{ (1, 'a') }} {{ () }} {{ [] }} {{ {} }} "
    "{{ {'k': [1, {'n': none}]} }} {{ [none, true, 1.0, 'it\\'s'] }}",
    "{{ 'a' 'b' }} {{ \"dq\" }} {{ 'esc\\t\\n\\x41\\u00e9\\\\' }}",
    # Undefined.
    "[{{ missing }}] {{ missing is defined }} {{ missing is undefined }} "
    "{{ missing|default('dv') }} {{ missing|length }} {{ missing|list }}",
    "{{ d.nope is defined }} [{{ d.nope }}] {{ d.nope|default('x') }}",
    "{{ missing.attr }}",
    "{{ missing + 1 }}",
    "{{ d.nope.deeper }}",
    "{{ lst[10] is defined }} [{{ lst[10] }}]",
    "{% for x in missing %}x{% endfor %}ok",
    "{{ missing ~ 'tail' }} {{ 'in' in missing }}",
    # Filters.
    "{{ '  x  '|trim }}|{{ 'xxaxx'|trim('x') }}|{{ s|upper }}|{{ s|lower }}|"
    "{{ 'hello wORLD-x'|title }}|{{ 'hELLO'|capitalize }}",
    "{{ lst|length }} {{ s|length }} {{ d|length }} {{ 'héllo'|count }}",
    "{{ lst|tojson }} {{ d|tojson }} {{ s|tojson }} {{ f|tojson }} "
    "{{ 'é\"\\\\\\n'|tojson }}",
    "{{ d|tojson(indent=2) }}\n{{ items|tojson(indent=4) }}\n"
    "{{ [[], {}]|tojson(indent=1) }}",
    "{{ d|tojson(sort_keys=true) }} {{ d|tojson(separators=(',', ':')) }}",
    "{{ lst|join }} {{ lst|join(', ') }} {{ items|join('|', "
    "attribute='role') }}",
    "{{ ''|default('d') }} {{ ''|default('d', true) }} {{ none|default('d') }}"
    " {{ missing|d('short') }}",
    "{{ lst|first }} {{ lst|last }} {{ s|first }} {{ []|first }}|"
    "{{ s|list }} {{ d|list }}",
    "{{ n|string }} {{ d|string }} {{ none|string }} {{ '42'|int + 1 }} "
    "{{ '4.7'|int }} {{ 'x'|int }} {{ 'x'|int(9) }} {{ f|int }} "
    "{{ '2.5'|float }} {{ n|float }}",
    "{{ items|selectattr('role', 'equalto', 'user')|list }} "
    "{{ items|rejectattr('role', 'equalto', 'user')|list }} "
    "{{ items|selectattr('x')|list|length }} "
    "{{ items|selectattr('x', 'defined')|map(attribute='x')|list }}",
    "{{ items|map(attribute='x', default=0)|list }} "
    "{{ ['a', 'b']|map('upper')|list }} {{ lst|select('odd')|list }} "
    "{{ lst|reject('odd')|list }} {{ items|map(attribute='role')|unique|list }}",
    "{{ lst|sort }} {{ lst|sort(reverse=true) }} {{ ['b', 'A', 'a']|sort }} "
    "{{ items|sort(attribute='role')|map(attribute='role')|list }} "
    "{{ lst|min }} {{ lst|max }} {{ lst|sum }} {{ lst|reverse|list }} "
    "{{ s|reverse }}",
    "{{ 'a-b-c'|replace('-', '+') }} {{ 'aaa'|replace('a', 'b', 2) }} "
    "{{ 3.14159|round(2) }} {{ 2.5|round }} {{ 2.7|round(method='floor') }} "
    "{{ -3|abs }} {{ '<&>'|e }} {{ s|safe }}",
    "{{ 'a\\nb'|indent(2) }}|{{ 'a\\n\\nb'|indent(2, true, true) }}|"
    "{{ '%s=%d'|format('k', 3) }}|{{ '%05.1f'|format(f) }}|"
    "{{ 'one two  three'|wordcount }}|{{ s|center(11) }}|",
    "{% if items|selectattr('role', 'equalto', 'nobody') %}generator is "
    "true{% endif %}",
    # Tests.
    "{{ none is none }} {{ n is number }} {{ true is number }} "
    "{{ n is integer }} {{ f is float }} {{ s is string }} {{ d is mapping }} "
    "{{ lst is sequence }} {{ s is iterable }} {{ n is iterable }} "
    "{{ true is boolean }} {{ false is false }}",
    "{{ n is odd }} {{ n is even }} {{ 9 is divisibleby 3 }} "
    "{{ 'x' is in ['x'] }} {{ n is eq 7 }} {{ n is equalto 8 }} "
    "{{ n is gt 3 }} {{ n is lt 3 }} {{ n is ne 7 }} {{ 'ab' is lower }} "
    "{{ 'AB' is upper }} {{ n is not none }}",
    # Methods.
    "{{ '  a b  '.strip() }}|{{ 'xxaxx'.strip('x') }}|{{ '  a'.lstrip() }}|"
    "{{ 'a  '.rstrip() }}|{{ 'a b  c'.split() }}|{{ 'a,b,,c'.split(',') }}|"
    "{{ 'a,b,c'.split(',', 1) }}|{{ 'a,b,c'.rsplit(',', 1) }}|"
    "{{ '  a b c  '.split(none, 1) }}",
    "{{ s.startswith('He') }} {{ s.endswith(('lo', 'x')) }} "
    "{{ s.replace('l', 'L') }} {{ s.upper() }} {{ s.lower() }} "
    "{{ 'hello world'.title() }} {{ \"they're\".title() }} "
    "{{ 'aBc'.swapcase() }} {{ s.find('l') }} {{ s.rfind('l') }} "
    "{{ s.count('l') }} {{ '-'.join(['a', 'b']) }}",
    "{{ 'a\\nb\\r\\nc'.splitlines() }} {{ 'ab'.zfill(4) }} "
    "{{ 'k=v'.partition('=') }} {{ s.removeprefix('He') }} "
    "{{ 'abc'.isalpha() }} {{ '12'.isdigit() }} {{ ' '.isspace() }}",
    "{{ lst.index(2) }} {{ lst.count(3) }}",
    # Globals.
    "{{ range(3)|list }} {{ range(1, 7, 2)|list }} {{ dict(a=1, b='x') }} "
    "{{ dict(a=1)|tojson }} {{ namespace(a=1).a }}",
    "{{ raise_exception('custom failure: ' ~ n) }}",
    "{{ strftime_now('%Y') }}",
    # Errors both must report.
    "{{ 'abc' + 1 }}",
    "{{ 'a' < 1 }}",
    "{{ 1 / 0 }}",
    "{{ s() }}",
    "{% set l = [1] %}{{ l.append(2) }}",
    "{{ lst.__class__ }}",
]


def find_first_difference(a, b):
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return min(len(a), len(b))


def describe_difference(expected, got):
    i = find_first_difference(expected, got)
    return (f"first difference at char {i}: transformers "
            f"{expected[max(0, i - 20):i + 40]!r}, kiln "
            f"{got[max(0, i - 20):i + 40]!r}")


def run_tool(cmd, lines):
    out = subprocess.run(cmd, input="".join(json.dumps(l) + "\n"
                                            for l in lines),
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {out.stderr.strip()}")
    results = [json.loads(l) for l in out.stdout.splitlines()]
    if len(results) != len(lines):
        raise SystemExit(f"{' '.join(cmd)}: {len(results)} answers for "
                         f"{len(lines)} inputs")
    return results


def judge(expected, got):
    """(passed, detail) for a transformers result and a tool result."""
    kind, value = expected
    if kind == "ok" and got["ok"]:
        if got["text"] == value:
            return True, ""
        return False, describe_difference(value, got["text"])
    if kind == "ok":
        return False, f"kiln failed ({got['status']}): {got['error']}"
    if got["ok"]:
        return False, f"transformers raised {value}, kiln gave " \
                      f"{got['text'][:80]!r}"
    exc_type, message = value
    if exc_type == "TemplateError" and message not in got["error"]:
        return False, (f"both failed, but kiln's message {got['error']!r} "
                       f"lacks the template's {message!r}")
    return True, f"both fail: {exc_type}"


def reference(fn):
    try:
        return ("ok", fn())
    except Exception as e:  # the template's own failure
        return ("err", (type(e).__name__, str(e)))


def check_model_dir(name, directory, tool, tokenizer_json, report):
    with tempfile.TemporaryDirectory() as tmp:
        for entry in os.listdir(directory):
            src = os.path.join(directory, entry)
            if os.path.isfile(src) and not entry.startswith("model"):
                shutil.copy(src, tmp)
        if not os.path.exists(os.path.join(tmp, "tokenizer.json")):
            shutil.copy(tokenizer_json, tmp)
        tok = AutoTokenizer.from_pretrained(tmp)
        cases, requests = [], []
        for conv_name, messages, variables in CONVERSATIONS:
            for agp in (False, True):
                cases.append((conv_name, agp, reference(
                    lambda: tok.apply_chat_template(
                        messages, tokenize=False, add_generation_prompt=agp,
                        **variables))))
                requests.append({"messages": messages,
                                 "add_generation_prompt": agp,
                                 "variables": variables})
        results = run_tool([tool, "--model", directory], requests)
    for (conv_name, agp, expected), got in zip(cases, results):
        passed, detail = judge(expected, got)
        report(name, f"{conv_name} add_generation_prompt={agp}", passed,
               detail)


def check_constructs(tool, report):
    with tempfile.TemporaryDirectory() as tmp:
        for k, source in enumerate(CONSTRUCTS):
            path = os.path.join(tmp, f"construct{k}.jinja")
            with open(path, "w", encoding="utf-8") as f:
                f.write(source)
            expected = reference(lambda: render_jinja_template(
                conversations=[CONSTRUCT_MESSAGES], chat_template=source,
                add_generation_prompt=True, **CONSTRUCT_VARS)[0][0])
            context = dict(CONSTRUCT_VARS, messages=CONSTRUCT_MESSAGES,
                           tools=None, documents=None,
                           add_generation_prompt=True)
            got = run_tool([tool, path], [context])[0]
            passed, detail = judge(expected, got)
            label = source if len(source) <= 60 else source[:57] + "..."
            report("constructs", repr(label), passed, detail)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tool", required=True,
                    help="kiln-chat-template-tool binary")
    ap.add_argument("--smollm2", required=True,
                    help="SmolLM2-135M-Instruct model directory")
    ap.add_argument("--fixtures", required=True,
                    help="test/fixtures/chat_templates")
    args = ap.parse_args()

    counts = {"passed": 0, "failed": 0}

    def report(template, case, passed, detail):
        counts["passed" if passed else "failed"] += 1
        line = f"{'PASS' if passed else 'FAIL'} {template}: {case}"
        if detail and not passed:
            line += f"\n     {detail}"
        print(line)

    tokenizer_json = os.path.join(args.smollm2, "tokenizer.json")
    check_model_dir("smollm2", args.smollm2, args.tool, tokenizer_json,
                    report)
    for name in sorted(os.listdir(args.fixtures)):
        directory = os.path.join(args.fixtures, name)
        if os.path.isdir(directory):
            check_model_dir(name, directory, args.tool, tokenizer_json,
                            report)
    check_constructs(args.tool, report)
    print(f"{counts['passed']} passed, {counts['failed']} failed")
    return 0 if counts["failed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
