//===- regex.cpp - PCRE2 behind the pre-tokenizer regexes -----------------===//

#include "regex.h"

#include "error.h"
#include "utf8.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

using namespace kiln;

namespace {

// Unicode White_Space, which is what Oniguruma's \s matches on UTF-8 (and
// what Rust's char::is_whitespace tests).
constexpr const char kWhiteSpace[] =
    "\\t\\n\\x0B\\f\\r\\x20\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}"
    "\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}";
constexpr const char kHexDigit[] = "0-9a-fA-F";

// Per-thread match state: a match data block for the overall match only and
// a JIT stack large enough for long inputs (PCRE2's default is 32 KiB).
struct Scratch {
  pcre2_match_data *data = nullptr;
  pcre2_match_context *context = nullptr;
  pcre2_jit_stack *stack = nullptr;
  Scratch() {
    data = pcre2_match_data_create(1, nullptr);
    context = pcre2_match_context_create(nullptr);
    stack = pcre2_jit_stack_create(32 * 1024, 4 * 1024 * 1024, nullptr);
    if (context && stack)
      pcre2_jit_stack_assign(context, nullptr, stack);
    if (!data || !context)
      throw std::bad_alloc();
  }
  ~Scratch() {
    pcre2_jit_stack_free(stack);
    pcre2_match_context_free(context);
    pcre2_match_data_free(data);
  }
};

Scratch &scratch() {
  thread_local Scratch s;
  return s;
}

std::string pcre2Message(int code) {
  PCRE2_UCHAR buffer[256];
  if (pcre2_get_error_message(code, buffer, sizeof(buffer)) < 0)
    return "error " + std::to_string(code);
  return reinterpret_cast<const char *>(buffer);
}

} // namespace

std::string kiln::translateOnigPattern(std::string_view p) {
  std::string out;
  out.reserve(p.size() + 64);
  bool inClass = false;
  for (size_t i = 0; i < p.size(); ++i) {
    char c = p[i];
    if (c == '\\' && i + 1 < p.size()) {
      char e = p[++i];
      if (e == 's') {
        out += inClass ? std::string(kWhiteSpace)
                       : "[" + std::string(kWhiteSpace) + "]";
      } else if (e == 'S' && !inClass) {
        out += "[^" + std::string(kWhiteSpace) + "]";
      } else if (e == 'h') {
        out += inClass ? std::string(kHexDigit)
                       : "[" + std::string(kHexDigit) + "]";
      } else if (e == 'H' && !inClass) {
        out += "[^" + std::string(kHexDigit) + "]";
      } else {
        out += c;
        out += e;
      }
      continue;
    }
    if (!inClass && c == '[') {
      inClass = true;
      out += c;
      // A ']' right after '[' or '[^' is a literal member, not the end.
      if (i + 1 < p.size() && p[i + 1] == '^')
        out += p[++i];
      if (i + 1 < p.size() && p[i + 1] == ']')
        out += p[++i];
      continue;
    }
    if (inClass && c == '[' && i + 1 < p.size() && p[i + 1] == ':') {
      // A POSIX class such as [:alpha:] inside a bracket expression.
      size_t close = p.find(":]", i + 2);
      if (close != std::string_view::npos) {
        out.append(p.substr(i, close + 2 - i));
        i = close + 1;
        continue;
      }
    }
    if (inClass && c == ']')
      inClass = false;
    out += c;
  }
  return out;
}

Regex::Regex(std::string_view onigPattern, const std::string &where)
    : code_(nullptr), where_(where) {
  std::string pattern = translateOnigPattern(onigPattern);
  int error = 0;
  PCRE2_SIZE offset = 0;
  pcre2_code *code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()),
                                   pattern.size(), PCRE2_UTF | PCRE2_UCP,
                                   &error, &offset, nullptr);
  if (!code)
    throw Error(KILN_ERROR_FORMAT,
                where + ": regex does not compile at offset " +
                    std::to_string(offset) + ": " + pcre2Message(error) +
                    " (pattern as given to PCRE2: " + pattern + ")");
  // Without JIT (an unsupported CPU) pcre2_match interprets: slower, same
  // results, so a JIT failure is not an error.
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
  code_ = code;
}

Regex::~Regex() { pcre2_code_free(static_cast<pcre2_code *>(code_)); }

void Regex::findAll(std::string_view text, std::vector<Span> &out) const {
  auto *code = static_cast<pcre2_code *>(code_);
  Scratch &s = scratch();
  auto subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t start = 0;
  bool havePrevious = false;
  size_t previousEnd = 0;
  while (start <= text.size()) {
    // The caller validated the text once; checking it again for every match
    // would make splitting quadratic.
    int rc = pcre2_match(code, subject, text.size(), start, PCRE2_NO_UTF_CHECK,
                         s.data, s.context);
    if (rc == PCRE2_ERROR_NOMATCH)
      return;
    if (rc < 0)
      throw Error(KILN_ERROR_INTERNAL,
                  where_ + ": regex matching failed at byte " +
                      std::to_string(start) + ": " + pcre2Message(rc));
    PCRE2_SIZE *ovector = pcre2_get_ovector_pointer(s.data);
    size_t b = ovector[0], e = ovector[1];
    if (b == e && havePrevious && previousEnd == e) {
      // As onig's find_iter: no empty match right after the last match;
      // search again one character further on.
      if (start >= text.size())
        return;
      start += utf8::charLen(text, start);
      continue;
    }
    out.push_back({b, e});
    havePrevious = true;
    previousEnd = e;
    if (e == b) {
      if (e >= text.size())
        return;
      start = e + utf8::charLen(text, e);
    } else {
      start = e;
    }
  }
}

bool Regex::matchesAll(std::string_view text) const {
  auto *code = static_cast<pcre2_code *>(code_);
  Scratch &s = scratch();
  int rc =
      pcre2_match(code, reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(),
                  0, PCRE2_NO_UTF_CHECK | PCRE2_ANCHORED | PCRE2_ENDANCHORED,
                  s.data, s.context);
  return rc >= 0;
}
