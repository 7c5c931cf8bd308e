//===- utf8.h - UTF-8 validation and lossy decoding -------------*- C++ -*-===//
//
// Small, allocation-free helpers shared by the tokenizer. Validation is
// strict (RFC 3629: no overlong forms, no surrogates, nothing above
// U+10FFFF), which is what Rust's `str` -- and so `tokenizers` -- accepts.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_RUNTIME_UTF8_H
#define KILN_RUNTIME_UTF8_H

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace kiln::utf8 {

/// The range the second byte of a sequence must lie in, given its lead byte,
/// and the sequence's length; length 0 marks a byte that cannot start one.
/// Following the table of well-formed byte sequences in Unicode ch. 3.
struct Lead {
  unsigned len;
  unsigned char lo, hi;
};
inline Lead leadOf(unsigned char b) {
  if (b < 0x80)
    return {1, 0, 0};
  if (b >= 0xC2 && b <= 0xDF)
    return {2, 0x80, 0xBF};
  if (b == 0xE0)
    return {3, 0xA0, 0xBF};
  if (b == 0xED) // excludes the surrogates U+D800..U+DFFF
    return {3, 0x80, 0x9F};
  if (b >= 0xE1 && b <= 0xEF)
    return {3, 0x80, 0xBF};
  if (b == 0xF0)
    return {4, 0x90, 0xBF};
  if (b >= 0xF1 && b <= 0xF3)
    return {4, 0x80, 0xBF};
  if (b == 0xF4) // nothing above U+10FFFF
    return {4, 0x80, 0x8F};
  return {0, 0, 0};
}

/// How many bytes of the well-formed prefix of a sequence start at
/// `s[i]`: its full length if it is complete and valid, else the length of
/// its maximal valid prefix (at least 1). `complete` tells which.
inline unsigned scan(std::string_view s, size_t i, bool &complete) {
  auto b = static_cast<unsigned char>(s[i]);
  Lead lead = leadOf(b);
  complete = false;
  if (lead.len == 0)
    return 1;
  if (lead.len == 1) {
    complete = true;
    return 1;
  }
  for (unsigned k = 1; k < lead.len; ++k) {
    if (i + k >= s.size())
      return k; // truncated; `complete` stays false
    auto c = static_cast<unsigned char>(s[i + k]);
    unsigned char lo = k == 1 ? lead.lo : 0x80, hi = k == 1 ? lead.hi : 0xBF;
    if (c < lo || c > hi)
      return k;
  }
  complete = true;
  return lead.len;
}

/// Offset of the first byte of `s` that is not part of valid UTF-8, or
/// std::string_view::npos when all of `s` is valid.
inline size_t firstInvalid(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    // ASCII runs are the common case: skip them a byte at a time cheaply.
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    bool complete;
    unsigned n = scan(s, i, complete);
    if (!complete)
      return i;
    i += n;
  }
  return std::string_view::npos;
}

/// Length of the character starting at `s[i]` in valid UTF-8.
inline unsigned charLen(std::string_view s, size_t i) {
  return leadOf(static_cast<unsigned char>(s[i])).len;
}

/// Decodes the character at `s[i]` of valid UTF-8.
inline uint32_t decode(std::string_view s, size_t i) {
  auto b = [&](size_t k) {
    return static_cast<uint32_t>(static_cast<unsigned char>(s[i + k]));
  };
  switch (charLen(s, i)) {
  case 1:
    return b(0);
  case 2:
    return (b(0) & 0x1F) << 6 | (b(1) & 0x3F);
  case 3:
    return (b(0) & 0x0F) << 12 | (b(1) & 0x3F) << 6 | (b(2) & 0x3F);
  default:
    return (b(0) & 0x07) << 18 | (b(1) & 0x3F) << 12 | (b(2) & 0x3F) << 6 |
           (b(3) & 0x3F);
  }
}

/// Appends code point `cp` (<= U+10FFFF, not a surrogate) as UTF-8.
inline void append(std::string &out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | cp >> 6);
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | cp >> 12);
    out += static_cast<char>(0x80 | (cp >> 6 & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | cp >> 18);
    out += static_cast<char>(0x80 | (cp >> 12 & 0x3F));
    out += static_cast<char>(0x80 | (cp >> 6 & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

/// Appends `in` to `out`, replacing each maximal invalid subsequence with
/// U+FFFD -- exactly what Rust's String::from_utf8_lossy does, which is how
/// `tokenizers` turns decoded bytes into text. With `final` false an
/// incomplete character at the end is not replaced but left unconsumed, for
/// a streaming caller to retry once more bytes arrive. Returns the number of
/// bytes of `in` consumed.
inline size_t appendLossy(std::string &out, std::string_view in, bool final) {
  static const char kReplacement[] = "\xEF\xBF\xBD";
  size_t i = 0, runStart = 0;
  while (i < in.size()) {
    if (static_cast<unsigned char>(in[i]) < 0x80) {
      ++i;
      continue;
    }
    bool complete;
    unsigned n = scan(in, i, complete);
    if (complete) {
      i += n;
      continue;
    }
    out.append(in.data() + runStart, i - runStart);
    if (i + n == in.size() && !final &&
        leadOf(static_cast<unsigned char>(in[i])).len > n)
      return i; // a character that more bytes may still complete
    out.append(kReplacement, 3);
    i += n;
    runStart = i;
  }
  out.append(in.data() + runStart, i - runStart);
  return i;
}

} // namespace kiln::utf8

#endif // KILN_RUNTIME_UTF8_H
