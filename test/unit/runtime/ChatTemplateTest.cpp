//===- ChatTemplateTest.cpp - the Jinja2 subset for chat templates --------===//
//
// One test per construct, with the output Jinja2 gives in transformers'
// environment (trim_blocks, lstrip_blocks, loopcontrols; checked against
// jinja2 3.1.6 when the tests were written), and one per error the
// interpreter reports. test/runtime/check_chat_templates.py compares whole
// templates with transformers itself.
//
//===----------------------------------------------------------------------===//

#include "runtime/src/chat_template.h"
#include "runtime/src/error.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <unistd.h>

using Json = nlohmann::ordered_json;
using kiln::ChatTemplate;

namespace {

std::string render(const std::string &source,
                   const Json &context = Json::object()) {
  return ChatTemplate::parse(source, "test").render(context);
}

/// The status and message of the kiln::Error `fn` throws.
std::pair<kiln_status_t, std::string> errorOf(const std::function<void()> &fn) {
  try {
    fn();
  } catch (const kiln::Error &e) {
    return {e.status(), e.what()};
  }
  return {KILN_OK, "no error"};
}

std::pair<kiln_status_t, std::string>
renderError(const std::string &source, const Json &context = Json::object()) {
  return errorOf([&] { render(source, context); });
}

const Json kChat = Json::parse(R"([
  {"role": "system", "content": "Be brief."},
  {"role": "user", "content": "Hi"},
  {"role": "assistant", "content": "Hello!"},
  {"role": "user", "content": "Bye"}
])");

TEST(ChatTemplate, PrintsValuesAsPythonStr) {
  EXPECT_EQ(render("{{ 'a' }}{{ 1 }}{{ 2.5 }}{{ none }}{{ true }}{{ False }}"),
            "a12.5NoneTrueFalse");
  EXPECT_EQ(render("{{ [1, 'a', none, true, 1.0, {'k': \"it's\"}] }}"),
            "[1, 'a', None, True, 1.0, {'k': \"it's\"}]");
  EXPECT_EQ(render("{{ (1,) }} {{ (1, 2) }} {{ () }}"), "(1,) (1, 2) ()");
  EXPECT_EQ(render("{{ 1e16 }} {{ 1e15 }} {{ 0.00001 }} {{ 0.0001 }} "
                   "{{ 0.1 + 0.2 }} {{ 1 / 3 }} {{ -0.0 }}"),
            "1e+16 1000000000000000.0 1e-05 0.0001 0.30000000000000004 "
            "0.3333333333333333 -0.0");
  // Context values keep their key order, as Python dicts do.
  EXPECT_EQ(render("{{ d }}", {{"d", {{"z", 1}, {"a", "\t\xc3\xa9"}}}}),
            "{'z': 1, 'a': '\\t\xc3\xa9'}");
}

TEST(ChatTemplate, StringLiteralsUsePythonEscapes) {
  EXPECT_EQ(render(R"({{ 'a\nb\t\\ \'q\' \x41\u00e9 \d' }})"),
            "a\nb\t\\ 'q' A\xc3\xa9 \\d");
  EXPECT_EQ(render(R"({{ "it's" 'joined' }})"), "it'sjoined");
}

TEST(ChatTemplate, WhitespaceControlMatchesTransformers) {
  // trim_blocks drops the newline after a block tag, lstrip_blocks the
  // indentation before it; neither applies to {{ }}.
  EXPECT_EQ(render("  {% if true %}\n  x\n  {% endif %}\n  {{ 'y' }}\n"),
            "  x\n  y");
  EXPECT_EQ(render("a  {%- if true -%}  b  {%- endif -%}  c"), "abc");
  EXPECT_EQ(render("a {{- ' b ' -}} c"), "a b c");
  // "+" keeps what trim_blocks and lstrip_blocks would remove.
  EXPECT_EQ(render("a\n  {%+ if true %}\nb{% endif +%}\nc"), "a\n  b\nc");
  // One trailing newline is dropped; \r\n becomes \n.
  EXPECT_EQ(render("x\r\ny\n\n"), "x\ny\n");
  EXPECT_EQ(render("x\n"), "x");
}

TEST(ChatTemplate, CommentsAndRaw) {
  EXPECT_EQ(render("a{# comment {{ x }} #}b\n  {#- c -#}  \nc"), "abc");
  EXPECT_EQ(render("{# on its own line #}\nx"), "x");
  EXPECT_EQ(render("{% raw %}{{ x }}{% if %}{% endraw %}"), "{{ x }}{% if %}");
}

TEST(ChatTemplate, IfElifElse) {
  const char *t = "{% if n > 5 %}big{% elif n > 2 %}mid{% else %}small"
                  "{% endif %}";
  EXPECT_EQ(render(t, {{"n", 7}}), "big");
  EXPECT_EQ(render(t, {{"n", 3}}), "mid");
  EXPECT_EQ(render(t, {{"n", 1}}), "small");
  EXPECT_EQ(render("{% if x %}a{% endif %}"), "");
}

TEST(ChatTemplate, ForLoopVariables) {
  EXPECT_EQ(render("{% for m in messages %}{{ loop.index }}{{ loop.index0 }}"
                   "{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.length }}"
                   "{{ loop.first }}{{ loop.last }} {% endfor %}",
                   {{"messages", kChat}}),
            "10434TrueFalse 21324FalseFalse 32214FalseFalse "
            "43104FalseTrue ");
  EXPECT_EQ(render("{% for x in [1, 2, 3] %}{{ loop.previtem }}-"
                   "{{ loop.nextitem }}-{{ loop.cycle('a', 'b') }};"
                   "{% endfor %}"),
            "-2-a;1-3-b;2--a;");
  EXPECT_EQ(render("{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}",
                   {{"d", {{"b", 1}, {"a", 2}}}}),
            "b=1;a=2;");
  EXPECT_EQ(render("{% for c in 'h\xc3\xa9' %}[{{ c }}]{% endfor %}"),
            "[h][\xc3\xa9]");
  // The loop variable ends with the loop.
  EXPECT_EQ(render("{% for x in [1] %}{% endfor %}[{{ x }}]"), "[]");
}

TEST(ChatTemplate, ForWithFilterAndElse) {
  // loop.* counts the items that pass the filter.
  EXPECT_EQ(render("{% for m in messages if m.role != 'system' %}"
                   "{{ loop.index }}/{{ loop.length }}:{{ m.role }} "
                   "{% endfor %}",
                   {{"messages", kChat}}),
            "1/3:user 2/3:assistant 3/3:user ");
  EXPECT_EQ(render("{% for x in [] %}x{% else %}empty{% endfor %}"), "empty");
  EXPECT_EQ(render("{% for x in missing %}x{% else %}none{% endfor %}"),
            "none");
}

TEST(ChatTemplate, BreakAndContinue) {
  EXPECT_EQ(render("{% for i in range(10) %}{% if i == 1 %}{% continue %}"
                   "{% endif %}{% if i == 4 %}{% break %}{% endif %}{{ i }}"
                   "{% endfor %}"),
            "023");
}

TEST(ChatTemplate, ScopingFollowsJinja) {
  // A loop body is a new scope each iteration; `if` is not a scope.
  EXPECT_EQ(render("{% for i in [1, 2] %}{% if i == 1 %}{% set y = 'a' %}"
                   "{% endif %}[{{ y }}]{% endfor %}[{{ y }}]"),
            "[a][][]");
  EXPECT_EQ(render("{% set x = 1 %}{% for i in [1, 2] %}{% set x = x + i %}"
                   "{{ x }}{% endfor %}{{ x }}"),
            "231");
  EXPECT_EQ(render("{% if true %}{% set z = 5 %}{% endif %}{{ z }}"), "5");
  // set at the top level shadows a context variable.
  EXPECT_EQ(render("{% set messages = messages[1:] %}{{ messages|length }}",
                   {{"messages", kChat}}),
            "3");
}

TEST(ChatTemplate, NamespaceAssignment) {
  EXPECT_EQ(render("{% set ns = namespace(found=false, n=0) %}"
                   "{% for m in messages %}{% if m.role == 'user' %}"
                   "{% set ns.found = true %}{% set ns.n = ns.n + 1 %}"
                   "{% endif %}{% endfor %}{{ ns.found }} {{ ns.n }} {{ ns }}",
                   {{"messages", kChat}}),
            "True 2 <Namespace {'found': True, 'n': 2}>");
  auto [status, message] = renderError("{% set x = 1 %}{% set x.a = 2 %}");
  EXPECT_EQ(status, KILN_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(message.find("non-namespace"), std::string::npos) << message;
}

TEST(ChatTemplate, SetForms) {
  EXPECT_EQ(render("{% set a, b = 1, 'two' %}{{ a }}{{ b }}"), "1two");
  EXPECT_EQ(render("{% set t %}x{{ 1 }}y{% endset %}[{{ t }}]"), "[x1y]");
  EXPECT_EQ(render("{% set t | upper %}abc{% endset %}{{ t }}"), "ABC");
  auto [status, message] = renderError("{% set a, b = [1, 2, 3] %}");
  EXPECT_EQ(status, KILN_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(message.find("too many values to unpack"), std::string::npos);
}

TEST(ChatTemplate, ColonBeforeBlockEnd) {
  // jinja2 accepts a colon ending the header of a statement with a body.
  EXPECT_EQ(render("{% for x in [1]: %}{{ x }}{% endfor %}{% if 0: %}a"
                   "{% elif 1: %}b{% else: %}c{% endif %}"),
            "1b");
  auto [status, message] = renderError("{% set x = 1: %}");
  EXPECT_EQ(status, KILN_ERROR_FORMAT) << message;
}

TEST(ChatTemplate, Macros) {
  EXPECT_EQ(render("{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}"
                   "{% endmacro %}{{ greet('Bob') }} {{ greet('Al', "
                   "punct='?') }} {{ greet(punct='.', name='Cy') }}"),
            "Hi Bob! Hi Al? Hi Cy.");
  // A macro reads its defining scope when called.
  EXPECT_EQ(render("{% macro m() %}{{ later }}{% endmacro %}"
                   "{% set later = 3 %}{{ m() }}"),
            "3");
  // Recursion.
  EXPECT_EQ(render("{% macro f(n) %}{% if n > 0 %}{{ n }}{{ f(n - 1) }}"
                   "{% endif %}{% endmacro %}{{ f(3) }}"),
            "321");
  auto [status, message] =
      renderError("{% macro m(x) %}{{ x }}{% endmacro %}{{ m(1, 2) }}");
  EXPECT_EQ(status, KILN_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(message.find("takes not more than 1 argument"), std::string::npos);
}

TEST(ChatTemplate, GenerationTagRendersItsBody) {
  EXPECT_EQ(render("a{% generation %}b{{ 1 }}{% endgeneration %}c"), "ab1c");
}

TEST(ChatTemplate, ArithmeticIsPython) {
  EXPECT_EQ(render("{{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ 7 // 2 }} "
                   "{{ -7 // 2 }} {{ -7 % 3 }} {{ 7 / 2 }} {{ 4 / 2 }} "
                   "{{ 2 ** 10 }} {{ 2 ** 3 ** 2 }} {{ -2 ** 2 }} "
                   "{{ 2 ** -1 }} {{ 7.5 // 2 }} {{ -7.5 % 2 }}"),
            "7 9 3 -4 2 3.5 2.0 1024 64 4 0.5 3.0 0.5");
  EXPECT_EQ(render("{{ 'a' ~ 1 ~ none ~ true }} {{ 'ab' * 2 }} "
                   "{{ [1] + [2] }} {{ true + 1 }}"),
            "a1NoneTrue abab [1, 2] 2");
}

TEST(ChatTemplate, ComparisonsAndLogic) {
  EXPECT_EQ(render("{{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }} {{ 1 == 1.0 }} "
                   "{{ true == 1 }} {{ [1, 2] == [1, 2] }} {{ (1,) == [1] }} "
                   "{{ {'a': 1, 'b': 2} == {'b': 2, 'a': 1} }}"),
            "True False True True True False True");
  EXPECT_EQ(render("{{ 'a' in 'cat' }} {{ 2 in [1, 2] }} {{ 'k' in d }} "
                   "{{ 'z' not in d }} {{ 'x' in missing }}",
                   {{"d", {{"k", 1}}}}),
            "True True True True False");
  // and/or give one of their operands, as in Python.
  EXPECT_EQ(render("{{ none or 'd' }} {{ 0 and 'x' }} {{ 'p' and 'q' }} "
                   "{{ not '' }}"),
            "d 0 q True");
  EXPECT_EQ(render("{{ 'y' if n else 'n' }}[{{ 'z' if false }}]"
                   "{{ 1 if false else 2 if true else 3 }}",
                   {{"n", 1}}),
            "y[]2");
}

TEST(ChatTemplate, IndexingAndSlicing) {
  Json ctx = {{"l", {1, 2, 3, 4}}, {"s", "h\xc3\xa9llo"}};
  EXPECT_EQ(render("{{ l[0] }} {{ l[-1] }} {{ l[1:3] }} {{ l[::-1] }} "
                   "{{ l[:-1] }} {{ l[::2] }} {{ l[10:] }} [{{ l[10] }}]",
                   ctx),
            "1 4 [2, 3] [4, 3, 2, 1] [1, 2, 3] [1, 3] [] []");
  // Strings index by code point.
  EXPECT_EQ(render("{{ s[1] }} {{ s[-1] }} {{ s[1:3] }} {{ s[::-1] }}", ctx),
            "\xc3\xa9 o \xc3\xa9l oll\xc3\xa9h");
  EXPECT_EQ(render("{{ d.a.b }} {{ d['a']['b'] }} {{ d.a['b'] }}",
                   {{"d", {{"a", {{"b", "x"}}}}}}),
            "x x x");
}

TEST(ChatTemplate, UndefinedIsJinjasDefault) {
  Json ctx = {{"d", Json::object()}, {"messages", kChat}};
  EXPECT_EQ(render("[{{ missing }}] {{ missing is defined }} "
                   "{{ d.nope is defined }} [{{ d.nope }}] "
                   "{{ missing|default('dv') }} {{ missing|length }} "
                   "{{ missing ~ 'x' }} {{ messages[9] is defined }}",
                   ctx),
            "[] False False [] dv 0 x False");
  // Using an undefined value is an error, naming what was undefined.
  auto [s1, m1] = renderError("x{{ missing.attr }}");
  EXPECT_EQ(s1, KILN_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(m1, "error at line 1 col 12 in chat template 'test': "
                "'missing' is undefined");
  auto [s2, m2] = renderError("{{ d.nope.deeper }}", ctx);
  EXPECT_NE(m2.find("'dict object' has no attribute 'nope'"), std::string::npos)
      << m2;
  auto [s3, m3] = renderError("{{ missing + 1 }}");
  EXPECT_EQ(s3, KILN_ERROR_INVALID_ARGUMENT);
  auto [s4, m4] = renderError("{{ messages[9].role }}", ctx);
  EXPECT_NE(m4.find("list object has no element 9"), std::string::npos) << m4;
}

TEST(ChatTemplate, StringFilters) {
  EXPECT_EQ(render("{{ '  x \\n'|trim }}|{{ 'xxaxx'|trim('x') }}|"
                   "{{ 'Ab'|upper }}|{{ 'Ab'|lower }}|"
                   "{{ 'hello wORLD-x (y'|title }}|{{ 'hELLO'|capitalize }}|"
                   "{{ 'a-b'|replace('-', '+') }}|{{ 'aaa'|replace('a', 'b', "
                   "2) }}|{{ 1|string }}|{{ '<&>'|e }}|"
                   "{{ 'one two  three'|wordcount }}|{{ 'ab'|center(6) }}|"),
            "x|a|AB|ab|Hello World-X (Y|Hello|a+b|bba|1|&lt;&amp;&gt;|3|"
            "  ab  |");
  EXPECT_EQ(render("{{ 'a\\nb'|indent(2) }}|{{ 'a\\n\\nb'|indent(2, true, "
                   "true) }}|{{ '%s=%d %5.1f'|format('k', 3, 2.25) }}"),
            "a\n  b|  a\n  \n  b|k=3   2.2");
  // Python's %-formatting, not C's: "0" pads even with a precision, and
  // octal's alternate form is 0o.
  EXPECT_EQ(render("{{ '%05.1i|%+05d|%-4d|%#x|%#o|%.3d' % (2.5, 3, 4, 255, 8, "
                   "5) }}|{{ '%(k)s' % {'k': 'v'} }}"),
            "00002|+0003|4   |0xff|0o10|005|v");
}

TEST(ChatTemplate, SequenceFilters) {
  Json ctx = {{"l", {3, 1, 2}},
              {"items", Json::parse(R"([{"role": "user", "x": 1},
                                         {"role": "bot"},
                                         {"role": "user", "x": 3}])")}};
  EXPECT_EQ(render("{{ l|length }} {{ l|count }} {{ l|first }} {{ l|last }} "
                   "{{ l|join }} {{ l|join(', ') }} {{ l|list }} "
                   "{{ 'ab'|list }} {{ l|sort }} {{ l|sort(reverse=true) }} "
                   "{{ l|min }} {{ l|max }} {{ l|sum }} {{ l|reverse|list }} "
                   "{{ [1, 2, 1]|unique|list }} {{ ['b', 'A', 'a']|sort }}",
                   ctx),
            "3 3 3 2 312 3, 1, 2 [3, 1, 2] ['a', 'b'] [1, 2, 3] [3, 2, 1] "
            "1 3 6 [2, 1, 3] [1, 2] ['A', 'a', 'b']");
  EXPECT_EQ(render("{{ items|selectattr('role', 'equalto', 'user')|"
                   "map(attribute='x')|list }} "
                   "{{ items|rejectattr('role', 'equalto', 'user')|list }} "
                   "{{ items|selectattr('x')|list|length }} "
                   "{{ items|map(attribute='x', default=0)|list }} "
                   "{{ ['a', 'b']|map('upper')|join }} "
                   "{{ l|select('odd')|list }} {{ l|reject('odd')|list }} "
                   "{{ items|join('|', attribute='role') }}",
                   ctx),
            "[1, 3] [{'role': 'bot'}] 2 [1, 0, 3] AB [3, 1] [2] "
            "user|bot|user");
  // selectattr gives a generator, which is true even when empty.
  EXPECT_EQ(render("{% if items|selectattr('role', 'equalto', 'x') %}T"
                   "{% endif %}",
                   ctx),
            "T");
  EXPECT_EQ(render("{{ d|items|list }} {{ d|dictsort }} {{ d|length }}",
                   {{"d", {{"b", 1}, {"a", 2}}}}),
            "[('b', 1), ('a', 2)] [('a', 2), ('b', 1)] 2");
}

TEST(ChatTemplate, ConversionFilters) {
  EXPECT_EQ(render("{{ '42'|int + 1 }} {{ '4.7'|int }} {{ 'x'|int }} "
                   "{{ 'x'|int(9) }} {{ 2.9|int }} {{ '2.5'|float }} "
                   "{{ 3|float }} {{ -3|abs }} {{ 3.14159|round(2) }} "
                   "{{ 2.5|round }} {{ 2.7|round(method='floor') }}"),
            "43 4 0 9 2 2.5 3.0 3 3.14 2.0 2.0");
  EXPECT_EQ(render("{{ ''|default('d') }}|{{ ''|default('d', true) }}|"
                   "{{ none|default('d') }}|{{ missing|d('s') }}"),
            "|d|None|s");
}

TEST(ChatTemplate, ToJsonIsJsonDumps) {
  Json d = Json::parse(R"({"b": [1, 2.5, "x\u00e9\"\n"], "a": {}, "c": null,
                           "t": true})");
  EXPECT_EQ(render("{{ d|tojson }}", {{"d", d}}),
            "{\"b\": [1, 2.5, \"x\xc3\xa9\\\"\\n\"], \"a\": {}, \"c\": null, "
            "\"t\": true}");
  EXPECT_EQ(render("{{ d|tojson(indent=2) }}", {{"d", d}}),
            "{\n  \"b\": [\n    1,\n    2.5,\n    \"x\xc3\xa9\\\"\\n\"\n  ],\n"
            "  \"a\": {},\n  \"c\": null,\n  \"t\": true\n}");
  EXPECT_EQ(render("{{ d|tojson(sort_keys=true, separators=(',', ':')) }}",
                   {{"d", {{"z", 1}, {"a", {1, 2}}}}}),
            "{\"a\":[1,2],\"z\":1}");
  EXPECT_EQ(render("{{ '\xe2\x80\xa8\x01'|tojson }} {{ 'é'|tojson("
                   "ensure_ascii=true) }} {{ 1e20|tojson }}"),
            "\"\xe2\x80\xa8\\u0001\" \"\\u00e9\" 1e+20");
  auto [status, message] = renderError("{{ missing|tojson }}");
  EXPECT_EQ(status, KILN_ERROR_INVALID_ARGUMENT);
}

TEST(ChatTemplate, Tests) {
  EXPECT_EQ(render("{{ none is none }} {{ 1 is number }} {{ true is number }} "
                   "{{ 1 is integer }} {{ 1.5 is float }} {{ 's' is string }} "
                   "{{ d is mapping }} {{ [] is sequence }} {{ 's' is "
                   "iterable }} {{ 1 is iterable }} {{ true is boolean }} "
                   "{{ x is not defined }} {{ x is undefined }}",
                   {{"d", Json::object()}}),
            "True True True True True True True True True False True True "
            "True");
  EXPECT_EQ(render("{{ 7 is odd }} {{ 7 is even }} {{ 9 is divisibleby 3 }} "
                   "{{ 'x' is in ['x'] }} {{ 7 is eq 7 }} {{ 7 is equalto 8 }} "
                   "{{ 7 is gt 3 }} {{ 7 is lt 3 }} {{ 7 is ne 7 }} "
                   "{{ 'ab' is lower }} {{ 'AB' is upper }}"),
            "True False True True True False True False False True True");
}

TEST(ChatTemplate, StringMethods) {
  EXPECT_EQ(render("{{ '  a b  '.strip() }}|{{ 'xxaxx'.strip('x') }}|"
                   "{{ '  a'.lstrip() }}|{{ 'a  '.rstrip() }}|"
                   "{{ 'a b  c'.split() }}|{{ 'a,b,,c'.split(',') }}|"
                   "{{ 'a,b,c'.split(',', 1) }}|{{ 'a,b,c'.rsplit(',', 1) }}|"
                   "{{ '  a b c  '.split(none, 1) }}"),
            "a b|a|a|a|['a', 'b', 'c']|['a', 'b', '', 'c']|['a', 'b,c']|"
            "['a,b', 'c']|['a', 'b c  ']");
  EXPECT_EQ(render("{{ s.startswith('He') }} {{ s.endswith(('lo', 'x')) }} "
                   "{{ s.replace('l', 'L') }} {{ s.upper() }} {{ s.lower() }} "
                   "{{ 'hello world'.title() }} {{ \"they're\".title() }} "
                   "{{ s.find('l') }} {{ s.rfind('l') }} {{ s.count('l') }} "
                   "{{ '-'.join(['a', 'b']) }} {{ 'k=v'.partition('=') }}",
                   {{"s", "Hello"}}),
            "True True HeLLo HELLO hello Hello World They'Re 2 3 2 a-b "
            "('k', '=', 'v')");
  EXPECT_EQ(render("{{ 'a\\nb\\r\\nc'.splitlines() }} "
                   "{{ 'Hello'.removeprefix('He') }} {{ '\xc3\xa9t\xc3\xa9'."
                   "upper() }} {{ 'ab'.zfill(4) }}"),
            "['a', 'b', 'c'] llo \xc3\x89T\xc3\x89 00ab");
}

TEST(ChatTemplate, DictAndListMethods) {
  Json ctx = {{"d", {{"a", 1}, {"b", nullptr}}}, {"l", {1, 2, 2}}};
  EXPECT_EQ(render("{{ d.get('a') }} {{ d.get('zz') }} {{ d.get('zz', 'f') }} "
                   "{{ d.keys()|list }} {{ d.values()|list }} "
                   "{{ d.items()|list }} {{ l.index(2) }} {{ l.count(2) }}",
                   ctx),
            "1 None f ['a', 'b'] [1, None] [('a', 1), ('b', None)] 1 2");
  // The sandbox is immutable.
  auto [status, message] = renderError("{{ l.append(3) }}", ctx);
  EXPECT_EQ(status, KILN_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(message.find("unsafe"), std::string::npos) << message;
}

TEST(ChatTemplate, Globals) {
  EXPECT_EQ(render("{{ range(3)|list }} {{ range(1, 7, 2)|list }} "
                   "{{ dict(a=1, b='x') }} {{ namespace(a=1).a }}"),
            "[0, 1, 2] [1, 3, 5] {'a': 1, 'b': 'x'} 1");
}

TEST(ChatTemplate, StrftimeNowIsLocalTime) {
  auto today = [] {
    std::time_t t = std::time(nullptr);
    std::tm tm{};
    localtime_r(&t, &tm);
    char buf[64];
    std::strftime(buf, sizeof buf, "%d %b %Y", &tm);
    return std::string(buf);
  };
  std::string before = today();
  std::string got = render("{{ strftime_now('%d %b %Y') }}");
  std::string after = today();
  EXPECT_TRUE(got == before || got == after) << got;
}

TEST(ChatTemplate, RaiseExceptionNamesTemplateAndPosition) {
  auto [status, message] = errorOf([] {
    ChatTemplate::parse("{% if messages[0].role == 'system' %}\n"
                        "  {{ raise_exception('System role not supported') }}\n"
                        "{% endif %}",
                        "gemma")
        .render({{"messages", kChat}});
  });
  EXPECT_EQ(status, KILN_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(message, "chat template 'gemma' raised an exception at line 2 "
                     "col 6: System role not supported");
}

TEST(ChatTemplate, RefusesUnsupportedConstructs) {
  auto check = [](const std::string &source, const std::string &expected) {
    auto [status, message] =
        errorOf([&] { ChatTemplate::parse(source, "default"); });
    EXPECT_EQ(status, KILN_ERROR_UNSUPPORTED) << source;
    EXPECT_EQ(message, expected) << source;
  };
  check("{% if x %}\n{% endif %}\n\n    {% extends 'base.html' %}",
        "unsupported Jinja construct 'extends' at line 4 col 8 in chat "
        "template 'default'");
  check("{% include 'x' %}", "unsupported Jinja construct 'include' at line "
                             "1 col 4 in chat template 'default'");
  check("{% call m() %}{% endcall %}", "unsupported Jinja construct 'call' at "
                                       "line 1 col 4 in chat template "
                                       "'default'");
  check("{{ x|pprint }}", "unsupported Jinja filter 'pprint' at line 1 col 6 "
                          "in chat template 'default'");
  check("{{ x is escaped2 }}", "unsupported Jinja test 'escaped2' at line 1 "
                               "col 9 in chat template 'default'");
  check("{% for x in y recursive %}{% endfor %}",
        "unsupported Jinja construct 'recursive' (loop) at line 1 col 15 in "
        "chat template 'default'");
  check("{{ f(*args) }}", "unsupported Jinja construct '*args/**kwargs in a "
                          "call' at line 1 col 6 in chat template 'default'");
  // Globals that exist in Jinja but not here fail when called.
  auto [status, message] = renderError("{{ cycler(1, 2) }}");
  EXPECT_EQ(status, KILN_ERROR_UNSUPPORTED);
  EXPECT_NE(message.find("cycler"), std::string::npos);
}

TEST(ChatTemplate, ReportsSyntaxErrors) {
  auto check = [](const std::string &source, const std::string &expected) {
    auto [status, message] = errorOf([&] { ChatTemplate::parse(source, "t"); });
    EXPECT_EQ(status, KILN_ERROR_FORMAT) << source;
    EXPECT_EQ(message, expected) << source;
  };
  check("ab\n{% if x", "syntax error at line 2 col 1 in chat template 't': "
                       "unterminated '{%' tag");
  check("{{ x", "syntax error at line 1 col 1 in chat template 't': "
                "unterminated '{{' tag");
  check("x {# never closed", "syntax error at line 1 col 3 in chat template "
                             "'t': unterminated comment '{#'");
  check("{{ 'abc }}", "syntax error at line 1 col 4 in chat template 't': "
                      "unterminated string literal");
  check("{% for x in y %}x", "syntax error at line 1 col 4 in chat template "
                             "'t': '{% for %}' is never closed (expected "
                             "'{% endfor %}' or '{% else %}' before the end "
                             "of the template)");
  check("{% endif %}", "syntax error at line 1 col 4 in chat template 't': "
                       "unexpected tag 'endif'");
  check("{% break %}", "syntax error at line 1 col 4 in chat template 't': "
                       "'{% break %}' outside a loop");
  check("{{ 1 + }}", "syntax error at line 1 col 8 in chat template 't': "
                     "unexpected end of print statement");
  check("{{ (1 }}", "syntax error at line 1 col 7 in chat template 't': "
                    "unexpected '}', expected ')'");
}

TEST(ChatTemplate, RuntimeTypeErrors) {
  for (const char *source : {"{{ 'a' + 1 }}", "{{ 'a' < 1 }}", "{{ 1 / 0 }}",
                             "{{ 's'() }}", "{{ 1 in 1 }}"}) {
    auto [status, message] = renderError(source);
    EXPECT_EQ(status, KILN_ERROR_INVALID_ARGUMENT) << source;
    EXPECT_EQ(message.rfind("error at line 1 col ", 0), 0u) << message;
  }
  auto [status, message] =
      errorOf([] { ChatTemplate::parse("x", "t").render(Json::array()); });
  EXPECT_EQ(status, KILN_ERROR_INVALID_ARGUMENT);
}

TEST(ChatTemplate, SmolLM2TemplateRendersAsTransformers) {
  const char *smol =
      "{% for message in messages %}{% if loop.first and messages[0]['role'] "
      "!= 'system' %}{{ '<|im_start|>system\\nYou are a helpful AI assistant "
      "named SmolLM, trained by Hugging Face<|im_end|>\\n' }}{% endif %}"
      "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
      "'<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}"
      "{{ '<|im_start|>assistant\\n' }}{% endif %}";
  Json ctx = {{"messages", Json::parse(R"([{"role": "user",
                                           "content": "Hi \ud83d\ude42"}])")},
              {"add_generation_prompt", true}};
  EXPECT_EQ(render(smol, ctx),
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, "
            "trained by Hugging Face<|im_end|>\n<|im_start|>user\nHi "
            "\xf0\x9f\x99\x82<|im_end|>\n<|im_start|>assistant\n");
}

/// A scratch model directory, removed at the end of the test.
class ChatTemplateDir : public ::testing::Test {
protected:
  void SetUp() override {
    // ctest runs tests in parallel processes: the pid keeps them apart.
    dir_ = std::filesystem::temp_directory_path() /
           ("kiln-chat-template-test-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void write(const std::string &name, const std::string &text) {
    std::ofstream(dir_ / name) << text;
  }
  std::string dir() const { return dir_.string(); }
  std::filesystem::path dir_;
};

TEST_F(ChatTemplateDir, LoadsStringTemplateAndSpecialTokens) {
  write("tokenizer_config.json", R"({
    "chat_template": "{{ bos_token }}{{ messages[0].content }}{{ eos_token }}",
    "bos_token": {"__type": "AddedToken", "content": "<s>", "lstrip": false},
    "eos_token": "</s>", "pad_token": null, "add_bos_token": true,
    "image_token": "<image>", "added_tokens_decoder": {}})");
  kiln::ChatTemplateSource src = kiln::loadChatTemplateSource(dir());
  EXPECT_EQ(src.name, "default");
  EXPECT_EQ(src.specialTokens,
            Json::parse(R"({"bos_token": "<s>", "eos_token": "</s>",
                            "image_token": "<image>"})"));
  auto tmpl = ChatTemplate::parse(src.source, src.name);
  Json ctx = kiln::chatTemplateContext(
      src, Json::parse(R"([{"role": "user", "content": "hi"}])"), false);
  EXPECT_EQ(tmpl.render(ctx), "<s>hi</s>");
}

TEST_F(ChatTemplateDir, ChoosesNamedTemplates) {
  write("tokenizer_config.json", R"({"chat_template": [
    {"name": "tool_use", "template": "tools"},
    {"name": "default", "template": "plain"}]})");
  EXPECT_EQ(kiln::loadChatTemplateSource(dir()).source, "plain");
  EXPECT_EQ(kiln::loadChatTemplateSource(dir(), "tool_use").source, "tools");
  auto [status, message] =
      errorOf([&] { kiln::loadChatTemplateSource(dir(), "rag"); });
  EXPECT_EQ(status, KILN_ERROR_NOT_FOUND);
  EXPECT_NE(message.find("no chat template named 'rag' (found 'tool_use', "
                         "'default')"),
            std::string::npos)
      << message;
}

TEST_F(ChatTemplateDir, JinjaFileTakesPrecedence) {
  write("tokenizer_config.json", R"({"chat_template": "from config"})");
  write("chat_template.jinja", "from file");
  kiln::ChatTemplateSource src = kiln::loadChatTemplateSource(dir());
  EXPECT_EQ(src.source, "from file");
  EXPECT_EQ(src.path, dir() + "/chat_template.jinja");
}

TEST_F(ChatTemplateDir, LegacySpecialTokensMap) {
  write("tokenizer_config.json", R"({"chat_template": "x"})");
  write("special_tokens_map.json",
        R"({"bos_token": {"content": "<|bos|>"}, "eos_token": "<|eos|>"})");
  EXPECT_EQ(kiln::loadChatTemplateSource(dir()).specialTokens,
            Json::parse(R"({"bos_token": "<|bos|>", "eos_token": "<|eos|>"})"));
}

TEST_F(ChatTemplateDir, ReportsMissingAndMalformedFiles) {
  auto [s1, m1] = errorOf([&] { kiln::loadChatTemplateSource(dir()); });
  EXPECT_EQ(s1, KILN_ERROR_NOT_FOUND);
  EXPECT_NE(m1.find("no chat template"), std::string::npos) << m1;
  write("tokenizer_config.json", "{not json");
  auto [s2, m2] = errorOf([&] { kiln::loadChatTemplateSource(dir()); });
  EXPECT_EQ(s2, KILN_ERROR_FORMAT);
  EXPECT_NE(m2.find("tokenizer_config.json: not valid JSON"), std::string::npos)
      << m2;
  write("tokenizer_config.json", R"({"chat_template": 3})");
  auto [s3, m3] = errorOf([&] { kiln::loadChatTemplateSource(dir()); });
  EXPECT_EQ(s3, KILN_ERROR_FORMAT);
}

TEST(ChatTemplateContext, BuildsTransformersVariables) {
  kiln::ChatTemplateSource src;
  src.specialTokens = {{"bos_token", "<s>"}, {"eos_token", "</s>"}};
  Json ctx = kiln::chatTemplateContext(
      src, Json::parse(R"([{"role": "user", "content": "a", "name": null},
                      {"role": "assistant", "content": "b",
                       "reasoning_content": "r"}])"),
      true, {{"eos_token", "<eos>"}, {"enable_thinking", false}});
  EXPECT_EQ(ctx, Json::parse(R"({
    "bos_token": "<s>", "eos_token": "<eos>", "enable_thinking": false,
    "messages": [
      {"role": "user", "content": "a"},
      {"thinking": "r", "role": "assistant", "content": "b",
       "reasoning_content": "r"}],
    "tools": null, "documents": null, "add_generation_prompt": true})"));
  auto [status, message] =
      errorOf([&] { kiln::chatTemplateContext(src, Json::array(), false); });
  EXPECT_EQ(status, KILN_ERROR_INVALID_ARGUMENT);
}

/// The fixture templates on a short chat, as transformers renders them
/// (apply_chat_template, add_generation_prompt=True).
TEST(ChatTemplateFixtures, RenderAsTransformers) {
  const Json chat = Json::parse(R"([{"role": "user", "content": "Hello"},
                                    {"role": "assistant", "content": "Hi!"},
                                    {"role": "user",
                                     "content": "How are you?"}])");
  const std::pair<const char *, const char *> expected[] = {
      {"gemma-7b-it",
       "<start_of_turn>user\nHello<end_of_turn>\n<start_of_turn>model\nHi!"
       "<end_of_turn>\n<start_of_turn>user\nHow are you?<end_of_turn>\n"
       "<start_of_turn>model\n"},
      {"llama-3.1-8b-instruct",
       "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
       "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n"
       "<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|>"
       "<|start_header_id|>assistant<|end_header_id|>\n\nHi!<|eot_id|>"
       "<|start_header_id|>user<|end_header_id|>\n\nHow are you?<|eot_id|>"
       "<|start_header_id|>assistant<|end_header_id|>\n\n"},
      {"mistral-7b-instruct-v0.3",
       "<s> [INST] Hello [/INST] Hi! </s> [INST] How are you? [/INST]"},
      {"phi-3-mini-4k-instruct",
       "<s><|user|>\nHello<|end|>\n<|assistant|>\nHi!<|end|>\n<|user|>\n"
       "How are you?<|end|>\n<|assistant|>\n"},
      {"qwen2.5-7b-instruct",
       "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are "
       "a helpful assistant.<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n"
       "<|im_start|>assistant\nHi!<|im_end|>\n<|im_start|>user\nHow are you?"
       "<|im_end|>\n<|im_start|>assistant\n"},
  };
  for (const auto &[name, text] : expected) {
    kiln::ChatTemplateSource src = kiln::loadChatTemplateSource(
        std::string(KILN_SOURCE_DIR) + "/test/fixtures/chat_templates/" + name);
    auto tmpl = ChatTemplate::parse(src.source, src.name);
    EXPECT_EQ(tmpl.render(kiln::chatTemplateContext(src, chat, true)), text)
        << name;
  }
}

} // namespace
