//===- regex.h - Unicode regexes for pre-tokenizers -------------*- C++ -*-===//
//
// `tokenizers` splits text with Oniguruma regexes (\p{L}, \p{N}, \s, look-
// ahead). kiln runs them with PCRE2 in UTF + UCP mode, JIT-compiled, after
// rewriting the few escapes whose meaning differs between the two engines
// (see translateOnigPattern), so that both split text identically.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_RUNTIME_REGEX_H
#define KILN_RUNTIME_REGEX_H

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace kiln {

/// A half-open byte range [begin, end) of a string.
struct Span {
  size_t begin, end;
};

/// Rewrites an Oniguruma (Ruby syntax) pattern into a PCRE2 pattern with the
/// same matches on valid UTF-8:
///  - `\s`/`\S`: Oniguruma's is Unicode White_Space; PCRE2's UCP `\s` also
///    takes U+180E, so both become an explicit class (`\S` inside a bracket
///    expression cannot be spelled that way and is left to PCRE2);
///  - `\h`/`\H`: a hex digit in Oniguruma, horizontal space in PCRE2.
/// Oniguruma-only syntax such as nested sets (`[a[bc]]`) or intersections
/// (`&&`) is not translated; PCRE2 then rejects the pattern or reads it
/// differently. The tokenizer.json regexes in use (GPT-2, Llama 3, Qwen)
/// need none of it.
std::string translateOnigPattern(std::string_view pattern);

/// A compiled regex. Immutable after construction; match from any thread.
class Regex {
public:
  /// Compiles `onigPattern` (translated as above). Throws kiln::Error with
  /// KILN_ERROR_FORMAT naming `where` when it does not compile.
  Regex(std::string_view onigPattern, const std::string &where);
  ~Regex();
  Regex(const Regex &) = delete;
  Regex &operator=(const Regex &) = delete;

  /// Appends every match in `text` (valid UTF-8) to `out`, left to right and
  /// non-overlapping, the way the onig crate's find_iter walks: an empty
  /// match right where the previous match ended is skipped by retrying one
  /// character later. Throws kiln::Error (KILN_ERROR_INTERNAL) if PCRE2
  /// hits a resource limit.
  void findAll(std::string_view text, std::vector<Span> &out) const;

  /// True if the whole of `text` (valid UTF-8) matches.
  bool matchesAll(std::string_view text) const;

private:
  void *code_; // pcre2_code_8, kept opaque so users need no PCRE2 headers
  std::string where_;
};

} // namespace kiln

#endif // KILN_RUNTIME_REGEX_H
