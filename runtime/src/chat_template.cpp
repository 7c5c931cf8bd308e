//===- chat_template.cpp - a Jinja2 subset for chat templates -------------===//
//
//   source ─▶ Lexer ─▶ tokens ─▶ Parser ─▶ Program (statements, expressions)
//   Program + context ─▶ Renderer ─▶ text
//
// The lexer reproduces jinja2/lexer.py's whitespace handling (trim_blocks,
// lstrip_blocks, "-" and "+" markers, one trailing newline dropped), the
// parser jinja2/parser.py's grammar and precedence (tests and filters bind
// to unary operands; `**` is left-associative), and the renderer Python's
// value semantics (see chat_template.h). Values are nlohmann::ordered_json
// shared between the context and everything derived from it, so reading
// messages[i] in a loop copies nothing.
//
//===----------------------------------------------------------------------===//

#include "chat_template.h"
#include "error.h"

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <functional>
#include <limits>
#include <optional>
#include <sstream>
#include <string_view>
#include <sys/stat.h>
#include <unordered_map>
#include <utility>
#include <vector>

using Json = nlohmann::ordered_json;

namespace kiln::chat {

//===----------------------------------------------------------------------===//
// Unicode and Python string helpers
//===----------------------------------------------------------------------===//

namespace {

/// Decodes the code point at s[i] and advances i; a malformed byte decodes
/// to U+FFFD (JSON input is valid UTF-8, so this only guards).
char32_t nextCodePoint(std::string_view s, size_t &i) {
  unsigned char c = static_cast<unsigned char>(s[i]);
  if (c < 0x80) {
    ++i;
    return c;
  }
  int n = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : c >= 0xC0 ? 1 : -1;
  if (n < 0 || s.size() - i <= static_cast<size_t>(n)) {
    ++i;
    return 0xFFFD;
  }
  char32_t cp = c & (0x3F >> n);
  for (int k = 1; k <= n; ++k) {
    unsigned char d = static_cast<unsigned char>(s[i + k]);
    if ((d & 0xC0) != 0x80) {
      ++i;
      return 0xFFFD;
    }
    cp = (cp << 6) | (d & 0x3F);
  }
  i += n + 1;
  return cp;
}

void appendUtf8(std::string &out, char32_t c) {
  if (c < 0x80) {
    out += static_cast<char>(c);
  } else if (c < 0x800) {
    out += static_cast<char>(0xC0 | (c >> 6));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    out += static_cast<char>(0xE0 | (c >> 12));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (c >> 18));
    out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  }
}

std::u32string toU32(std::string_view s) {
  std::u32string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();)
    out += nextCodePoint(s, i);
  return out;
}

std::string fromU32(std::u32string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char32_t c : s)
    appendUtf8(out, c);
  return out;
}

/// Number of code points (Python's len of a str).
size_t codePointCount(std::string_view s) {
  size_t n = 0;
  for (char c : s)
    n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

/// Python's str.isspace(), which is also what `\s` and str.strip() use.
bool isPySpace(char32_t c) {
  return (c >= 9 && c <= 13) || (c >= 0x1C && c <= 0x20) || c == 0x85 ||
         c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) ||
         c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
         c == 0x3000;
}

// Case mapping covers ASCII, Latin-1, Latin Extended-A, Greek, Cyrillic and
// fullwidth Latin: the scripts whose case a chat template could plausibly
// change. Python's full Unicode tables (final sigma, Armenian, ...) are not
// reproduced.
char32_t upperOf(char32_t c) {
  if (c < 0x80)
    return c >= 'a' && c <= 'z' ? c - 32 : c;
  if (c == 0xB5)
    return 0x39C;
  if (c >= 0xE0 && c <= 0xFE && c != 0xF7)
    return c - 32;
  if (c == 0xFF)
    return 0x178;
  if (c >= 0x100 && c <= 0x17F) {
    if (c == 0x131)
      return 'I';
    if (c == 0x17F)
      return 'S';
    if ((c <= 0x137) || (c >= 0x14A && c <= 0x177))
      return (c & 1) ? c - 1 : c;
    if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E))
      return (c & 1) ? c : c - 1;
    return c;
  }
  if (c >= 0x3B1 && c <= 0x3C9)
    return c == 0x3C2 ? 0x3A3 : c - 32;
  if (c == 0x3AC)
    return 0x386;
  if (c >= 0x3AD && c <= 0x3AF)
    return c - 37;
  if (c == 0x3CC)
    return 0x38C;
  if (c == 0x3CD || c == 0x3CE)
    return c - 63;
  if (c >= 0x430 && c <= 0x44F)
    return c - 32;
  if (c >= 0x450 && c <= 0x45F)
    return c - 80;
  if ((c >= 0x460 && c <= 0x481) || (c >= 0x48A && c <= 0x4BF))
    return (c & 1) ? c - 1 : c;
  if (c >= 0xFF41 && c <= 0xFF5A)
    return c - 32;
  return c;
}

char32_t lowerOf(char32_t c) {
  if (c < 0x80)
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
  if (c >= 0xC0 && c <= 0xDE && c != 0xD7)
    return c + 32;
  if (c == 0x178)
    return 0xFF;
  if (c >= 0x100 && c <= 0x17F) {
    if (c == 0x130)
      return 'i';
    if ((c <= 0x137) || (c >= 0x14A && c <= 0x177))
      return (c & 1) ? c : c + 1;
    if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E))
      return (c & 1) ? c + 1 : c;
    return c;
  }
  if (c >= 0x391 && c <= 0x3A9 && c != 0x3A2)
    return c + 32;
  if (c == 0x386)
    return 0x3AC;
  if (c >= 0x388 && c <= 0x38A)
    return c + 37;
  if (c == 0x38C)
    return 0x3CC;
  if (c == 0x38E || c == 0x38F)
    return c + 63;
  if (c >= 0x410 && c <= 0x42F)
    return c + 32;
  if (c >= 0x400 && c <= 0x40F)
    return c + 80;
  if ((c >= 0x460 && c <= 0x481) || (c >= 0x48A && c <= 0x4BF))
    return (c & 1) ? c : c + 1;
  if (c >= 0xFF21 && c <= 0xFF3A)
    return c + 32;
  return c;
}

bool isCased(char32_t c) {
  return upperOf(c) != c || lowerOf(c) != c || c == 0xDF || c == 0x138;
}
bool isUpperCp(char32_t c) { return lowerOf(c) != c; }
bool isLowerCp(char32_t c) { return upperOf(c) != c || c == 0xDF; }
/// Letters: the cased scripts above plus the main uncased ones (CJK, kana,
/// Hangul, Arabic, Hebrew, Devanagari, Thai); an approximation of Python's
/// str.isalpha() outside ASCII.
bool isAlphaCp(char32_t c) {
  return isCased(c) || c == 0xAA || c == 0xBA ||
         (c >= 0xC0 && c <= 0xFF && c != 0xD7 && c != 0xF7) ||
         (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x4E00 && c <= 0x9FFF) ||
         (c >= 0x3041 && c <= 0x3096) || (c >= 0x30A1 && c <= 0x30FA) ||
         (c >= 0xAC00 && c <= 0xD7A3) || (c >= 0x0621 && c <= 0x064A) ||
         (c >= 0x05D0 && c <= 0x05EA) || (c >= 0x0904 && c <= 0x0939) ||
         (c >= 0x0E01 && c <= 0x0E30);
}
bool isDigitCp(char32_t c) { return c >= '0' && c <= '9'; }

void appendUpper(std::string &out, char32_t c) {
  if (c == 0xDF)
    out += "SS";
  else
    appendUtf8(out, upperOf(c));
}

std::string pyUpper(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size();)
    appendUpper(out, nextCodePoint(s, i));
  return out;
}

std::string pyLower(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size();)
    appendUtf8(out, lowerOf(nextCodePoint(s, i)));
  return out;
}

/// Python's str.title(): a cased character after an uncased one is upper
/// case, every other cased character lower case.
std::string pyTitle(std::string_view s) {
  std::string out;
  bool prevCased = false;
  for (size_t i = 0; i < s.size();) {
    char32_t c = nextCodePoint(s, i);
    if (prevCased)
      appendUtf8(out, lowerOf(c));
    else
      appendUpper(out, c);
    prevCased = isCased(c);
  }
  return out;
}

/// Python's str.capitalize(): the first character upper, the rest lower.
std::string pyCapitalize(std::string_view s) {
  std::string out;
  bool first = true;
  for (size_t i = 0; i < s.size();) {
    char32_t c = nextCodePoint(s, i);
    if (first)
      appendUpper(out, c);
    else
      appendUtf8(out, lowerOf(c));
    first = false;
  }
  return out;
}

/// Python's str.isprintable() for one character, as repr() uses it:
/// controls, separators other than space, format characters, surrogates and
/// private use are not printable.
bool isPrintable(char32_t c) {
  if (c < 0x20 || c == 0x7F)
    return false;
  if (c < 0x7F)
    return true;
  if (c <= 0xA0 || c == 0xAD || c == 0x1680 || c == 0x3000 || c == 0xFEFF)
    return false;
  if ((c >= 0x2000 && c <= 0x200F) || (c >= 0x2028 && c <= 0x202F) ||
      (c >= 0x205F && c <= 0x206F) || (c >= 0xD800 && c <= 0xF8FF) ||
      (c >= 0xFFF9 && c <= 0xFFFB) || (c >= 0xE0000 && c <= 0xE007F) ||
      c >= 0xF0000)
    return false;
  return true;
}

void appendHex(std::string &out, unsigned long v, int digits) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%0*lx", digits, v);
  out += buf;
}

/// Python's repr() of a str.
void appendStrRepr(std::string &out, std::string_view s) {
  bool single = s.find('\'') != std::string_view::npos;
  bool dbl = s.find('"') != std::string_view::npos;
  char q = single && !dbl ? '"' : '\'';
  out += q;
  for (size_t i = 0; i < s.size();) {
    size_t start = i;
    char32_t c = nextCodePoint(s, i);
    if (c == static_cast<char32_t>(q) || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c < 0x20 || c == 0x7F) {
      out += "\\x";
      appendHex(out, c, 2);
    } else if (c < 0x7F || isPrintable(c)) {
      out.append(s.substr(start, i - start));
    } else if (c <= 0xFF) {
      out += "\\x";
      appendHex(out, c, 2);
    } else if (c <= 0xFFFF) {
      out += "\\u";
      appendHex(out, c, 4);
    } else {
      out += "\\U";
      appendHex(out, c, 8);
    }
  }
  out += q;
}

/// Python's repr() of a float (the shortest string that reads back as the
/// same double; exponent notation below 1e-4 and from 1e16).
std::string pyFloatRepr(double d) {
  if (std::isnan(d))
    return "nan";
  if (std::isinf(d))
    return d > 0 ? "inf" : "-inf";
  if (d == 0)
    return std::signbit(d) ? "-0.0" : "0.0";
  char buf[64];
  for (int prec = 1; prec <= 17; ++prec) {
    std::snprintf(buf, sizeof buf, "%.*e", prec - 1, d);
    if (std::strtod(buf, nullptr) == d)
      break;
  }
  std::string s = buf, digits;
  bool negative = s[0] == '-';
  size_t e = s.find('e');
  for (size_t k = negative ? 1 : 0; k < e; ++k)
    if (s[k] != '.')
      digits += s[k];
  int exp = std::atoi(s.c_str() + e + 1);
  while (digits.size() > 1 && digits.back() == '0')
    digits.pop_back();
  int decpt = exp + 1;
  std::string out = negative ? "-" : "";
  if (decpt <= -4 || decpt > 16) {
    out += digits[0];
    if (digits.size() > 1)
      out += "." + digits.substr(1);
    char ebuf[16];
    std::snprintf(ebuf, sizeof ebuf, "e%c%02d", exp < 0 ? '-' : '+',
                  std::abs(exp));
    out += ebuf;
  } else if (decpt <= 0) {
    out += "0." + std::string(-decpt, '0') + digits;
  } else if (static_cast<size_t>(decpt) >= digits.size()) {
    out += digits + std::string(decpt - digits.size(), '0') + ".0";
  } else {
    out += digits.substr(0, decpt) + "." + digits.substr(decpt);
  }
  return out;
}

/// Strips Python whitespace (or the code points in `chars`) from the ends.
std::string pyStrip(std::string_view s, const std::u32string *chars, bool left,
                    bool right) {
  std::u32string u = toU32(s);
  auto strip = [&](char32_t c) {
    return chars ? chars->find(c) != std::u32string::npos : isPySpace(c);
  };
  size_t b = 0, e = u.size();
  if (left)
    while (b < e && strip(u[b]))
      ++b;
  if (right)
    while (e > b && strip(u[e - 1]))
      --e;
  return fromU32(std::u32string_view(u).substr(b, e - b));
}

/// Python's str.split() without a separator: runs of whitespace.
std::vector<std::string> pySplitWhitespace(std::string_view s, long maxsplit) {
  std::vector<std::string> out;
  std::u32string u = toU32(s);
  size_t i = 0, n = u.size();
  while (i < n) {
    while (i < n && isPySpace(u[i]))
      ++i;
    if (i == n)
      break;
    if (maxsplit >= 0 && static_cast<long>(out.size()) == maxsplit) {
      // The rest, trailing whitespace included, is the last part.
      out.push_back(fromU32(std::u32string_view(u).substr(i)));
      return out;
    }
    size_t j = i;
    while (j < n && !isPySpace(u[j]))
      ++j;
    out.push_back(fromU32(std::u32string_view(u).substr(i, j - i)));
    i = j;
  }
  return out;
}

std::vector<std::string> pySplit(std::string_view s, std::string_view sep,
                                 long maxsplit) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (maxsplit < 0 || static_cast<long>(out.size()) < maxsplit) {
    size_t k = s.find(sep, pos);
    if (k == std::string_view::npos)
      break;
    out.emplace_back(s.substr(pos, k - pos));
    pos = k + sep.size();
  }
  out.emplace_back(s.substr(pos));
  return out;
}

std::vector<std::string> pyRSplit(std::string_view s, std::string_view sep,
                                  long maxsplit) {
  std::vector<std::string> out;
  size_t end = s.size();
  while (maxsplit < 0 || static_cast<long>(out.size()) < maxsplit) {
    if (end < sep.size())
      break;
    size_t k = s.rfind(sep, end - sep.size());
    if (k == std::string_view::npos)
      break;
    out.emplace_back(s.substr(k + sep.size(), end - k - sep.size()));
    end = k;
  }
  out.emplace_back(s.substr(0, end));
  std::reverse(out.begin(), out.end());
  return out;
}

std::string pyReplace(std::string_view s, std::string_view from,
                      std::string_view to, long count) {
  std::string out;
  if (from.empty()) {
    // Python inserts `to` around every character.
    long done = 0;
    for (size_t i = 0; i < s.size();) {
      if (count < 0 || done < count) {
        out.append(to);
        ++done;
      }
      size_t start = i;
      nextCodePoint(s, i);
      out.append(s.substr(start, i - start));
    }
    if (count < 0 || done < count)
      out.append(to);
    return out;
  }
  size_t pos = 0;
  long done = 0;
  while (count < 0 || done < count) {
    size_t k = s.find(from, pos);
    if (k == std::string_view::npos)
      break;
    out.append(s.substr(pos, k - pos));
    out.append(to);
    pos = k + from.size();
    ++done;
  }
  out.append(s.substr(pos));
  return out;
}

//===----------------------------------------------------------------------===//
// Values
//===----------------------------------------------------------------------===//

struct Function;
struct NamespaceObject;
struct LoopState;

/// What a Python object of the kind a JSON array stands for prints as and
/// how it behaves: lists and tuples are sequences; a generator (what
/// selectattr, map, items... return) is always true, has no len() and
/// cannot be indexed; a dict view has len() but cannot be indexed.
enum class Shape : uint8_t { List, Tuple, Generator, Items, Keys, Values };

/// A template value: JSON data (shared, never copied on read), Jinja's
/// Undefined (with the message using it would give), a namespace(), a
/// callable (macro, global, bound method) or a loop object.
struct Value {
  enum class Kind : uint8_t { Data, Undefined, Namespace, Function, Loop };
  Kind kind = Kind::Undefined;
  Shape shape = Shape::List;
  /// Data arrays: the elements are tuples (dict items, dictsort...), which
  /// print with parentheses and unpack as tuples.
  bool tupleElems = false;
  std::shared_ptr<const Json> root; ///< Data: owns *data
  const Json *data = nullptr;
  std::string hint; ///< Undefined: why
  std::shared_ptr<NamespaceObject> ns;
  std::shared_ptr<const Function> fn;
  std::shared_ptr<LoopState> loop;

  static Value of(Json j, Shape shape = Shape::List) {
    Value v;
    v.kind = Kind::Data;
    v.shape = shape;
    v.root = std::make_shared<const Json>(std::move(j));
    v.data = v.root.get();
    return v;
  }
  /// `child`, which lives inside `parent`'s JSON.
  static Value at(const Value &parent, const Json &child) {
    Value v;
    v.kind = Kind::Data;
    v.root = parent.root;
    v.data = &child;
    return v;
  }
  static Value undefined(std::string why) {
    Value v;
    v.hint = std::move(why);
    return v;
  }
  static Value str(std::string s) { return of(Json(std::move(s))); }
  static Value boolean(bool b) { return of(Json(b)); }
  static Value none() { return of(Json(nullptr)); }

  bool isData() const { return kind == Kind::Data; }
  bool isUndefined() const { return kind == Kind::Undefined; }
  bool isString() const { return isData() && data->is_string(); }
  bool isNone() const { return isData() && data->is_null(); }
  bool isBool() const { return isData() && data->is_boolean(); }
  bool isInt() const {
    return isData() && (data->is_number_integer() || data->is_boolean());
  }
  bool isNumber() const {
    return isData() && (data->is_number() || data->is_boolean());
  }
  bool isArray() const { return isData() && data->is_array(); }
  bool isObject() const { return isData() && data->is_object(); }
  const std::string &string() const {
    return data->get_ref<const std::string &>();
  }
};

struct NamespaceObject {
  std::vector<std::pair<std::string, Value>> attrs;
  Value *find(const std::string &name) {
    for (auto &[k, v] : attrs)
      if (k == name)
        return &v;
    return nullptr;
  }
};

struct LoopState {
  std::vector<Value> items;
  size_t index = 0;
  bool hasLast = false;
  Json lastChanged; ///< loop.changed()
};

/// Python type names, for messages.
std::string typeName(const Value &v) {
  switch (v.kind) {
  case Value::Kind::Undefined:
    return "Undefined";
  case Value::Kind::Namespace:
    return "Namespace";
  case Value::Kind::Function:
    return "function";
  case Value::Kind::Loop:
    return "LoopContext";
  case Value::Kind::Data:
    break;
  }
  const Json &j = *v.data;
  switch (j.type()) {
  case Json::value_t::null:
    return "NoneType";
  case Json::value_t::boolean:
    return "bool";
  case Json::value_t::string:
    return "str";
  case Json::value_t::number_float:
    return "float";
  case Json::value_t::number_integer:
  case Json::value_t::number_unsigned:
    return "int";
  case Json::value_t::object:
    return "dict";
  case Json::value_t::array:
    switch (v.shape) {
    case Shape::Tuple:
      return "tuple";
    case Shape::Generator:
      return "generator";
    case Shape::Items:
      return "dict_items";
    case Shape::Keys:
      return "dict_keys";
    case Shape::Values:
      return "dict_values";
    case Shape::List:
      break;
    }
    return "list";
  default:
    return "object";
  }
}

/// How Jinja names an object in "has no attribute" messages.
std::string objectTypeRepr(const Value &v) {
  if (v.isNone())
    return "None";
  return typeName(v) + " object";
}

void appendRepr(std::string &out, const Json &j, Shape shape = Shape::List,
                bool tupleElems = false);

void appendJsonNumber(std::string &out, const Json &j) {
  if (j.is_number_float())
    out += pyFloatRepr(j.get<double>());
  else if (j.is_number_unsigned())
    out += std::to_string(j.get<uint64_t>());
  else
    out += std::to_string(j.get<int64_t>());
}

void appendSeqRepr(std::string &out, const Json &j, const char *open,
                   const char *close, bool tuple, bool tupleElems = false) {
  out += open;
  bool first = true;
  for (const Json &e : j) {
    if (!first)
      out += ", ";
    first = false;
    appendRepr(out, e, tupleElems && e.is_array() ? Shape::Tuple : Shape::List);
  }
  if (tuple && j.size() == 1)
    out += ',';
  out += close;
}

void appendRepr(std::string &out, const Json &j, Shape shape, bool tupleElems) {
  switch (j.type()) {
  case Json::value_t::null:
    out += "None";
    return;
  case Json::value_t::boolean:
    out += j.get<bool>() ? "True" : "False";
    return;
  case Json::value_t::string:
    appendStrRepr(out, j.get_ref<const std::string &>());
    return;
  case Json::value_t::number_float:
  case Json::value_t::number_integer:
  case Json::value_t::number_unsigned:
    appendJsonNumber(out, j);
    return;
  case Json::value_t::object: {
    out += '{';
    bool first = true;
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (!first)
        out += ", ";
      first = false;
      appendStrRepr(out, it.key());
      out += ": ";
      appendRepr(out, it.value());
    }
    out += '}';
    return;
  }
  case Json::value_t::array:
    switch (shape) {
    case Shape::Tuple:
      appendSeqRepr(out, j, "(", ")", true, tupleElems);
      return;
    case Shape::Generator:
      out += "<generator object>";
      return;
    case Shape::Items:
      out += "dict_items([";
      for (size_t k = 0; k < j.size(); ++k) {
        if (k)
          out += ", ";
        appendSeqRepr(out, j[k], "(", ")", true);
      }
      out += "])";
      return;
    case Shape::Keys:
      appendSeqRepr(out, j, "dict_keys([", "])", false);
      return;
    case Shape::Values:
      appendSeqRepr(out, j, "dict_values([", "])", false);
      return;
    case Shape::List:
      appendSeqRepr(out, j, "[", "]", false, tupleElems);
      return;
    }
    return;
  default:
    out += "<binary>";
  }
}

void appendValueStr(std::string &out, const Value &v);

void appendValueRepr(std::string &out, const Value &v) {
  if (v.isData())
    appendRepr(out, *v.data, v.shape, v.tupleElems);
  else if (v.isUndefined())
    out += "Undefined";
  else
    appendValueStr(out, v);
}

/// Python's str() of a value, which is what {{ }} prints.
void appendValueStr(std::string &out, const Value &v);

std::string valueStr(const Value &v) {
  std::string s;
  appendValueStr(s, v);
  return s;
}

// JSON as Python's json.dumps writes it.
struct JsonStyle {
  bool indented = false;
  std::string indent;
  std::string itemSep = ", ";
  std::string keySep = ": ";
  bool sortKeys = false;
  bool ensureAscii = false;
};

void appendJsonString(std::string &out, std::string_view s, bool ascii) {
  out += '"';
  for (size_t i = 0; i < s.size();) {
    size_t start = i;
    char32_t c = nextCodePoint(s, i);
    switch (c) {
    case '"':
      out += "\\\"";
      break;
    case '\\':
      out += "\\\\";
      break;
    case '\n':
      out += "\\n";
      break;
    case '\r':
      out += "\\r";
      break;
    case '\t':
      out += "\\t";
      break;
    case '\b':
      out += "\\b";
      break;
    case '\f':
      out += "\\f";
      break;
    default:
      if (c < 0x20 || (ascii && c > 0x7E && c != 0x7F)) {
        if (c > 0xFFFF) {
          char32_t v = c - 0x10000;
          out += "\\u";
          appendHex(out, 0xD800 + (v >> 10), 4);
          out += "\\u";
          appendHex(out, 0xDC00 + (v & 0x3FF), 4);
        } else {
          out += "\\u";
          appendHex(out, c, 4);
        }
      } else {
        out.append(s.substr(start, i - start));
      }
    }
  }
  out += '"';
}

void appendJson(std::string &out, const Json &j, const JsonStyle &st,
                int level) {
  auto newline = [&](int lvl) {
    out += '\n';
    for (int k = 0; k < lvl; ++k)
      out += st.indent;
  };
  switch (j.type()) {
  case Json::value_t::null:
    out += "null";
    return;
  case Json::value_t::boolean:
    out += j.get<bool>() ? "true" : "false";
    return;
  case Json::value_t::string:
    appendJsonString(out, j.get_ref<const std::string &>(), st.ensureAscii);
    return;
  case Json::value_t::number_float: {
    double d = j.get<double>();
    if (std::isnan(d))
      out += "NaN";
    else if (std::isinf(d))
      out += d > 0 ? "Infinity" : "-Infinity";
    else
      out += pyFloatRepr(d);
    return;
  }
  case Json::value_t::number_integer:
  case Json::value_t::number_unsigned:
    appendJsonNumber(out, j);
    return;
  case Json::value_t::array: {
    if (j.empty()) {
      out += "[]";
      return;
    }
    out += '[';
    bool first = true;
    for (const Json &e : j) {
      if (!first)
        out += st.itemSep;
      first = false;
      if (st.indented)
        newline(level + 1);
      appendJson(out, e, st, level + 1);
    }
    if (st.indented)
      newline(level);
    out += ']';
    return;
  }
  case Json::value_t::object: {
    if (j.empty()) {
      out += "{}";
      return;
    }
    std::vector<Json::const_iterator> items;
    for (auto it = j.begin(); it != j.end(); ++it)
      items.push_back(it);
    if (st.sortKeys)
      std::stable_sort(
          items.begin(), items.end(),
          [](const auto &a, const auto &b) { return a.key() < b.key(); });
    out += '{';
    bool first = true;
    for (const auto &it : items) {
      if (!first)
        out += st.itemSep;
      first = false;
      if (st.indented)
        newline(level + 1);
      appendJsonString(out, it.key(), st.ensureAscii);
      out += st.keySep;
      appendJson(out, it.value(), st, level + 1);
    }
    if (st.indented)
      newline(level);
    out += '}';
    return;
  }
  default:
    out += "null";
  }
}

} // namespace

//===----------------------------------------------------------------------===//
// Syntax tree
//===----------------------------------------------------------------------===//

namespace {

struct Pos {
  int line = 0;
  int col = 0;
};

struct Expr {
  enum class Kind {
    Const,
    Name,
    Attr,
    Item,
    Slice,
    Call,
    Filter,
    Test,
    Unary,
    Binary,
    Concat,
    And,
    Or,
    Not,
    Compare,
    Cond,
    List,
    Dict,
  };
  Kind kind;
  Pos pos;
  explicit Expr(Kind k, Pos p) : kind(k), pos(p) {}
  virtual ~Expr() = default;
};
using ExprPtr = std::unique_ptr<Expr>;

struct CallArgs {
  std::vector<ExprPtr> args;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
};

struct ConstExpr : Expr {
  Value value;
  ConstExpr(Pos p, Value v) : Expr(Kind::Const, p), value(std::move(v)) {}
};
struct NameExpr : Expr {
  std::string name;
  NameExpr(Pos p, std::string n) : Expr(Kind::Name, p), name(std::move(n)) {}
};
struct AttrExpr : Expr {
  ExprPtr obj;
  std::string name;
  AttrExpr(Pos p, ExprPtr o, std::string n)
      : Expr(Kind::Attr, p), obj(std::move(o)), name(std::move(n)) {}
};
struct ItemExpr : Expr {
  ExprPtr obj, key;
  ItemExpr(Pos p, ExprPtr o, ExprPtr k)
      : Expr(Kind::Item, p), obj(std::move(o)), key(std::move(k)) {}
};
struct SliceExpr : Expr {
  ExprPtr obj, start, stop, step; // bounds may be null
  SliceExpr(Pos p) : Expr(Kind::Slice, p) {}
};
struct CallExpr : Expr {
  ExprPtr fn;
  CallArgs args;
  CallExpr(Pos p, ExprPtr f) : Expr(Kind::Call, p), fn(std::move(f)) {}
};
struct FilterExpr : Expr {
  ExprPtr value; // null in {% set x | filter %}
  std::string name;
  CallArgs args;
  FilterExpr(Pos p, ExprPtr v, std::string n)
      : Expr(Kind::Filter, p), value(std::move(v)), name(std::move(n)) {}
};
struct TestExpr : Expr {
  ExprPtr value;
  std::string name;
  CallArgs args;
  bool negated = false;
  TestExpr(Pos p, ExprPtr v, std::string n)
      : Expr(Kind::Test, p), value(std::move(v)), name(std::move(n)) {}
};
struct UnaryExpr : Expr {
  char op; // '-' or '+'
  ExprPtr operand;
  UnaryExpr(Pos p, char o, ExprPtr e)
      : Expr(Kind::Unary, p), op(o), operand(std::move(e)) {}
};
struct BinaryExpr : Expr {
  std::string op; // + - * / // % ** (and, or use Kind::And/Or)
  ExprPtr left, right;
  BinaryExpr(Kind k, Pos p, std::string o, ExprPtr l, ExprPtr r)
      : Expr(k, p), op(std::move(o)), left(std::move(l)), right(std::move(r)) {}
};
struct ConcatExpr : Expr {
  std::vector<ExprPtr> parts;
  ConcatExpr(Pos p) : Expr(Kind::Concat, p) {}
};
struct NotExpr : Expr {
  ExprPtr operand;
  NotExpr(Pos p, ExprPtr e) : Expr(Kind::Not, p), operand(std::move(e)) {}
};
struct CompareExpr : Expr {
  ExprPtr first;
  std::vector<std::pair<std::string, ExprPtr>> rest; // op: == != < ... in notin
  CompareExpr(Pos p, ExprPtr f) : Expr(Kind::Compare, p), first(std::move(f)) {}
};
struct CondExpr : Expr {
  ExprPtr test, then, otherwise; // otherwise may be null
  CondExpr(Pos p) : Expr(Kind::Cond, p) {}
};
struct ListExpr : Expr {
  std::vector<ExprPtr> items;
  bool tuple = false;
  ListExpr(Pos p, bool t) : Expr(Kind::List, p), tuple(t) {}
};
struct DictExpr : Expr {
  std::vector<std::pair<ExprPtr, ExprPtr>> items;
  DictExpr(Pos p) : Expr(Kind::Dict, p) {}
};

/// What `for` and `set` assign to: a name, names to unpack a sequence into,
/// or a namespace attribute (`set ns.attr = ...`).
struct Target {
  Pos pos;
  std::vector<std::string> names;
  bool tuple = false;
  std::string attr; // non-empty: names[0].attr
};

struct Stmt;
using Body = std::vector<std::unique_ptr<Stmt>>;

struct Stmt {
  enum class Kind {
    Text,
    Output,
    If,
    For,
    Set,
    SetBlock,
    Macro,
    Break,
    Continue,
    Block
  };
  Kind kind;
  Pos pos;
  Stmt(Kind k, Pos p) : kind(k), pos(p) {}
  virtual ~Stmt() = default;
};

struct TextStmt : Stmt {
  std::string text;
  TextStmt(Pos p, std::string t) : Stmt(Kind::Text, p), text(std::move(t)) {}
};
struct OutputStmt : Stmt {
  ExprPtr expr;
  OutputStmt(Pos p, ExprPtr e) : Stmt(Kind::Output, p), expr(std::move(e)) {}
};
struct IfStmt : Stmt {
  std::vector<std::pair<ExprPtr, Body>> branches;
  Body otherwise;
  IfStmt(Pos p) : Stmt(Kind::If, p) {}
};
struct ForStmt : Stmt {
  Target target;
  ExprPtr iter, filter;
  Body body, otherwise;
  ForStmt(Pos p) : Stmt(Kind::For, p) {}
};
struct SetStmt : Stmt {
  Target target;
  ExprPtr value;
  SetStmt(Pos p) : Stmt(Kind::Set, p) {}
};
struct SetBlockStmt : Stmt {
  Target target;
  Body body;
  std::vector<std::unique_ptr<FilterExpr>> filters;
  SetBlockStmt(Pos p) : Stmt(Kind::SetBlock, p) {}
};
struct MacroStmt : Stmt {
  std::string name;
  std::vector<std::string> params;
  std::vector<ExprPtr> defaults; // defaults[i] for params[i], may be null
  Body body;
  MacroStmt(Pos p) : Stmt(Kind::Macro, p) {}
};
/// {% generation %}...{% endgeneration %} (transformers' AssistantTracker):
/// renders its body.
struct BlockStmt : Stmt {
  Body body;
  BlockStmt(Pos p) : Stmt(Kind::Block, p) {}
};

} // namespace

struct Program {
  std::string name;
  Body body;
};

namespace {

std::string where(const std::string &name, Pos p) {
  return "at line " + std::to_string(p.line) + " col " + std::to_string(p.col) +
         " in chat template '" + name + "'";
}

[[noreturn]] void syntaxError(const std::string &name, Pos p,
                              const std::string &what) {
  throw Error(KILN_ERROR_FORMAT,
              "syntax error " + where(name, p) + ": " + what);
}

[[noreturn]] void unsupported(const std::string &name, Pos p,
                              const std::string &what) {
  throw Error(KILN_ERROR_UNSUPPORTED,
              "unsupported Jinja " + what + " " + where(name, p));
}

//===----------------------------------------------------------------------===//
// Lexer
//===----------------------------------------------------------------------===//

enum class Tok {
  Data,
  VarBegin,
  VarEnd,
  BlockBegin,
  BlockEnd,
  Name,
  String,
  Integer,
  Float,
  Op,
  Eof
};

struct Token {
  Tok kind;
  std::string text; // data, name, decoded string literal, operator
  Json number;      // Integer, Float
  Pos pos;
};

const char *const kOperators[] = {
    "//", "**", "==", "!=", ">=", "<=", "+", "-", "/", "*", "%", "~", "[",
    "]",  "(",  ")",  "{",  "}",  ">",  "<", "=", ".", ":", "|", ",", ";"};

class Lexer {
public:
  Lexer(const std::string &source, const std::string &name) : name_(name) {
    // As jinja2's tokeniter: \r\n and \r become \n, and one trailing
    // newline is dropped (keep_trailing_newline=False).
    src_.reserve(source.size());
    for (size_t i = 0; i < source.size(); ++i) {
      if (source[i] == '\r') {
        src_ += '\n';
        if (i + 1 < source.size() && source[i + 1] == '\n')
          ++i;
      } else {
        src_ += source[i];
      }
    }
    if (!src_.empty() && src_.back() == '\n')
      src_.pop_back();
    lineStarts_.push_back(0);
    for (size_t i = 0; i < src_.size(); ++i)
      if (src_[i] == '\n')
        lineStarts_.push_back(i + 1);
  }

  std::vector<Token> run();

private:
  Pos posOf(size_t offset) const {
    auto it = std::upper_bound(lineStarts_.begin(), lineStarts_.end(), offset);
    size_t line = it - lineStarts_.begin();
    size_t start = lineStarts_[line - 1];
    return Pos{static_cast<int>(line),
               static_cast<int>(codePointCount(std::string_view(src_).substr(
                                    start, offset - start)) +
                                1)};
  }
  bool at(size_t p, std::string_view s) const {
    return src_.compare(p, s.size(), s) == 0;
  }
  /// Skips Python whitespace (`\s*`).
  size_t skipSpace(size_t p) const {
    while (p < src_.size()) {
      size_t q = p;
      if (!isPySpace(nextCodePoint(src_, q)))
        break;
      p = q;
    }
    return p;
  }
  void emit(Tok kind, std::string text, size_t offset) {
    tokens_.push_back(Token{kind, std::move(text), Json(), posOf(offset)});
  }
  /// Applies the whitespace control of a tag starting right after `text`
  /// (jinja2's OptionalLStrip), then emits the text.
  void emitText(std::string text, size_t offset, char sign, bool isVariable);
  size_t lexTag(size_t after, bool block, size_t start);
  size_t lexNumber(size_t p);
  size_t lexString(size_t p);
  bool matchRawBegin(size_t after, size_t &end) const;

  std::string name_;
  std::string src_;
  std::vector<size_t> lineStarts_;
  std::vector<Token> tokens_;
  bool lineStarting_ = true;
};

void Lexer::emitText(std::string text, size_t offset, char sign,
                     bool isVariable) {
  if (sign == '-') {
    text = pyStrip(text, nullptr, false, true);
  } else if (sign != '+' && !isVariable) {
    // lstrip_blocks: whitespace between the start of the line and a block
    // or comment tag is removed.
    size_t nl = text.rfind('\n');
    size_t lpos = nl == std::string::npos ? 0 : nl + 1;
    if ((lpos > 0 || lineStarting_) && lpos < text.size()) {
      bool blank = true;
      for (size_t i = lpos; i < text.size() && blank;)
        blank = isPySpace(nextCodePoint(text, i));
      if (blank)
        text.resize(lpos);
    }
  }
  if (!text.empty())
    emit(Tok::Data, std::move(text), offset);
}

bool Lexer::matchRawBegin(size_t after, size_t &end) const {
  size_t p = skipSpace(after);
  if (!at(p, "raw"))
    return false;
  p = skipSpace(p + 3);
  if (at(p, "-%}")) {
    end = skipSpace(p + 3);
    return true;
  }
  if (at(p, "%}")) {
    end = p + 2;
    return true;
  }
  return false;
}

std::vector<Token> Lexer::run() {
  size_t pos = 0, n = src_.size();
  while (pos < n) {
    size_t start = std::string::npos;
    for (size_t p = src_.find('{', pos); p != std::string::npos;
         p = src_.find('{', p + 1)) {
      if (p + 1 < n &&
          (src_[p + 1] == '{' || src_[p + 1] == '%' || src_[p + 1] == '#')) {
        start = p;
        break;
      }
    }
    if (start == std::string::npos) {
      emit(Tok::Data, src_.substr(pos), pos);
      break;
    }
    char kind = src_[start + 1];
    size_t after = start + 2;
    char sign = 0;
    if (after < n && (src_[after] == '-' || src_[after] == '+'))
      sign = src_[after++];
    std::string text = src_.substr(pos, start - pos);

    size_t rawEnd;
    if (kind == '%' && matchRawBegin(after, rawEnd)) {
      emitText(std::move(text), pos, sign, false);
      // {% raw %}...{% endraw %}: the text between is data.
      size_t p = rawEnd;
      lineStarting_ = rawEnd > 0 && src_[rawEnd - 1] == '\n';
      for (;; ++p) {
        p = src_.find("{%", p);
        if (p == std::string::npos)
          syntaxError(name_, posOf(start), "unterminated '{% raw %}' block");
        size_t q = p + 2;
        char endSign = 0;
        if (q < n && (src_[q] == '-' || src_[q] == '+'))
          endSign = src_[q++];
        q = skipSpace(q);
        if (!at(q, "endraw"))
          continue;
        q = skipSpace(q + 6);
        size_t end;
        if (at(q, "+%}"))
          end = q + 3;
        else if (at(q, "-%}"))
          end = skipSpace(q + 3);
        else if (at(q, "%}"))
          end = q + 2 + (q + 2 < n && src_[q + 2] == '\n');
        else
          continue;
        emitText(src_.substr(rawEnd, p - rawEnd), rawEnd, endSign, false);
        lineStarting_ = src_[end - 1] == '\n';
        pos = end;
        break;
      }
      continue;
    }

    emitText(std::move(text), pos, sign, kind == '{');
    if (kind == '#') {
      size_t end = std::string::npos;
      for (size_t p = after; p + 1 < n; ++p) {
        if (at(p, "+#}")) {
          end = p + 3;
          break;
        }
        if (at(p, "-#}")) {
          end = skipSpace(p + 3);
          break;
        }
        if (at(p, "#}")) {
          end = p + 2 + (p + 2 < n && src_[p + 2] == '\n');
          break;
        }
      }
      if (end == std::string::npos && after >= n)
        break; // jinja2 ends quietly on a "{#" that closes the template
      if (end == std::string::npos)
        syntaxError(name_, posOf(start), "unterminated comment '{#'");
      lineStarting_ = src_[end - 1] == '\n';
      pos = end;
      continue;
    }
    pos = lexTag(after, kind == '%', start);
  }
  emit(Tok::Eof, "", n);
  return std::move(tokens_);
}

size_t Lexer::lexTag(size_t p, bool block, size_t start) {
  size_t n = src_.size();
  emit(block ? Tok::BlockBegin : Tok::VarBegin, block ? "{%" : "{{", start);
  std::vector<char> balance;
  for (;;) {
    if (p >= n)
      syntaxError(name_, posOf(start),
                  block ? "unterminated '{%' tag" : "unterminated '{{' tag");
    if (balance.empty()) {
      size_t end = std::string::npos;
      if (block) {
        if (at(p, "+%}"))
          end = p + 3;
        else if (at(p, "-%}"))
          end = skipSpace(p + 3);
        else if (at(p, "%}"))
          end = p + 2 + (p + 2 < n && src_[p + 2] == '\n');
      } else {
        if (at(p, "-}}"))
          end = skipSpace(p + 3);
        else if (at(p, "}}"))
          end = p + 2;
      }
      if (end != std::string::npos) {
        emit(block ? Tok::BlockEnd : Tok::VarEnd, "", p);
        lineStarting_ = src_[end - 1] == '\n';
        return end;
      }
    }
    size_t q = p;
    char32_t c = nextCodePoint(src_, q);
    if (isPySpace(c)) {
      p = q;
      continue;
    }
    if (isDigitCp(c)) {
      p = lexNumber(p);
      continue;
    }
    if (c == '_' || (c < 0x80 && std::isalpha(static_cast<int>(c)))) {
      size_t e = p + 1;
      while (e < n && (src_[e] == '_' ||
                       std::isalnum(static_cast<unsigned char>(src_[e]))))
        ++e;
      if (e < n && static_cast<unsigned char>(src_[e]) >= 0x80)
        unsupported(name_, posOf(p), "construct 'non-ASCII identifier'");
      emit(Tok::Name, src_.substr(p, e - p), p);
      p = e;
      continue;
    }
    if (c == '\'' || c == '"') {
      p = lexString(p);
      continue;
    }
    bool matched = false;
    for (const char *op : kOperators) {
      if (at(p, op)) {
        std::string o = op;
        if (o == "(" || o == "[" || o == "{") {
          balance.push_back(o == "(" ? ')' : o == "[" ? ']' : '}');
        } else if (o == ")" || o == "]" || o == "}") {
          if (balance.empty())
            syntaxError(name_, posOf(p), "unexpected '" + o + "'");
          if (balance.back() != o[0])
            syntaxError(name_, posOf(p),
                        "unexpected '" + o + "', expected '" +
                            std::string(1, balance.back()) + "'");
          balance.pop_back();
        }
        emit(Tok::Op, o, p);
        p += o.size();
        matched = true;
        break;
      }
    }
    if (!matched) {
      // Python identifiers may be non-ASCII; names here are ASCII only.
      if (c >= 0x80 && isAlphaCp(c))
        unsupported(name_, posOf(p), "construct 'non-ASCII identifier'");
      std::string ch;
      appendUtf8(ch, c);
      syntaxError(name_, posOf(p), "unexpected character '" + ch + "'");
    }
  }
}

size_t Lexer::lexNumber(size_t p) {
  size_t n = src_.size();
  auto digits = [&](size_t q, auto ok) {
    // (\d+_)*\d+ with `ok` as the digit class.
    if (q >= n || !ok(src_[q]))
      return q;
    size_t e = q;
    while (e < n) {
      if (ok(src_[e])) {
        ++e;
      } else if (src_[e] == '_' && e + 1 < n && ok(src_[e + 1])) {
        e += 2;
      } else {
        break;
      }
    }
    return e;
  };
  auto dec = [](char ch) { return ch >= '0' && ch <= '9'; };
  auto clean = [](std::string s) {
    s.erase(std::remove(s.begin(), s.end(), '_'), s.end());
    return s;
  };
  // A float (not right after a '.', as jinja2's float_re).
  bool afterDot = p > 0 && src_[p - 1] == '.';
  size_t intEnd = digits(p, dec);
  if (!afterDot) {
    size_t e = intEnd;
    bool isFloat = false;
    if (e < n && src_[e] == '.' && digits(e + 1, dec) > e + 1) {
      e = digits(e + 1, dec);
      isFloat = true;
    }
    if (e < n && (src_[e] == 'e' || src_[e] == 'E')) {
      size_t q = e + 1;
      if (q < n && (src_[q] == '+' || src_[q] == '-'))
        ++q;
      size_t x = digits(q, dec);
      if (x > q) {
        e = x;
        isFloat = true;
      }
    }
    if (isFloat) {
      Token t{Tok::Float, src_.substr(p, e - p), Json(), posOf(p)};
      t.number = std::strtod(clean(t.text).c_str(), nullptr);
      tokens_.push_back(std::move(t));
      return e;
    }
  }
  // An integer: 0b / 0o / 0x prefixes, or decimal.
  int base = 10;
  size_t e = intEnd;
  if (src_[p] == '0' && p + 1 < n) {
    char x = static_cast<char>(std::tolower(src_[p + 1]));
    auto bin = [](char ch) { return ch == '0' || ch == '1'; };
    auto oct = [](char ch) { return ch >= '0' && ch <= '7'; };
    auto hex = [](char ch) { return std::isxdigit(ch) != 0; };
    size_t q = p + 2;
    if (q < n && src_[q] == '_')
      ++q;
    if (x == 'b' && digits(q, bin) > q) {
      base = 2;
      e = digits(q, bin);
    } else if (x == 'o' && digits(q, oct) > q) {
      base = 8;
      e = digits(q, oct);
    } else if (x == 'x' && digits(q, hex) > q) {
      base = 16;
      e = digits(q, hex);
    } else {
      // "0(_?0)*": a leading zero stands alone.
      e = p + 1;
      while (e < n && (src_[e] == '0' ||
                       (src_[e] == '_' && e + 1 < n && src_[e + 1] == '0')))
        e += src_[e] == '_' ? 2 : 1;
    }
  }
  Token t{Tok::Integer, src_.substr(p, e - p), Json(), posOf(p)};
  std::string digitsText = clean(t.text);
  if (base != 10)
    digitsText = digitsText.substr(2);
  errno = 0;
  unsigned long long v = std::strtoull(digitsText.c_str(), nullptr, base);
  if (errno == ERANGE ||
      v > static_cast<unsigned long long>(std::numeric_limits<int64_t>::max()))
    unsupported(name_, t.pos, "construct 'integer beyond 64 bits'");
  t.number = static_cast<int64_t>(v);
  tokens_.push_back(std::move(t));
  return e;
}

size_t Lexer::lexString(size_t p) {
  size_t n = src_.size();
  char q = src_[p];
  size_t e = p + 1;
  while (e < n && src_[e] != q) {
    if (src_[e] == '\\')
      ++e;
    ++e;
  }
  if (e >= n)
    syntaxError(name_, posOf(p), "unterminated string literal");
  // Python's unicode-escape decoding, as jinja2 applies to string literals.
  std::string_view raw = std::string_view(src_).substr(p + 1, e - p - 1);
  std::string out;
  for (size_t i = 0; i < raw.size();) {
    if (raw[i] != '\\') {
      out += raw[i++];
      continue;
    }
    char c = raw[i + 1];
    i += 2;
    auto hexEscape = [&](int len) {
      if (i + len > raw.size())
        syntaxError(name_, posOf(p), "truncated \\x/\\u/\\U escape");
      std::string h(raw.substr(i, len));
      for (char ch : h)
        if (!std::isxdigit(static_cast<unsigned char>(ch)))
          syntaxError(name_, posOf(p), "truncated \\x/\\u/\\U escape");
      unsigned long v = std::strtoul(h.c_str(), nullptr, 16);
      if (v > 0x10FFFF)
        syntaxError(name_, posOf(p), "illegal Unicode character in escape");
      appendUtf8(out, static_cast<char32_t>(v));
      i += len;
    };
    switch (c) {
    case '\n':
      break;
    case '\\':
      out += '\\';
      break;
    case '\'':
      out += '\'';
      break;
    case '"':
      out += '"';
      break;
    case 'a':
      out += '\a';
      break;
    case 'b':
      out += '\b';
      break;
    case 'f':
      out += '\f';
      break;
    case 'n':
      out += '\n';
      break;
    case 'r':
      out += '\r';
      break;
    case 't':
      out += '\t';
      break;
    case 'v':
      out += '\v';
      break;
    case 'x':
      hexEscape(2);
      break;
    case 'u':
      hexEscape(4);
      break;
    case 'U':
      hexEscape(8);
      break;
    case 'N':
      unsupported(name_, posOf(p), "construct '\\N{...} escape'");
    default:
      if (c >= '0' && c <= '7') {
        unsigned v = c - '0';
        for (int k = 0;
             k < 2 && i < raw.size() && raw[i] >= '0' && raw[i] <= '7'; ++k)
          v = v * 8 + (raw[i++] - '0');
        appendUtf8(out, v);
      } else if (static_cast<unsigned char>(c) >= 0x80) {
        // jinja2 backslash-escapes non-ASCII text before decoding, so a
        // backslash before it stays and the character becomes its escape.
        size_t k = i - 1;
        char32_t cp = nextCodePoint(raw, k);
        out += '\\';
        out += cp <= 0xFF ? "x" : cp <= 0xFFFF ? "u" : "U";
        appendHex(out, cp, cp <= 0xFF ? 2 : cp <= 0xFFFF ? 4 : 8);
        i = k;
      } else {
        out += '\\';
        out += c;
      }
    }
  }
  tokens_.push_back(Token{Tok::String, std::move(out), Json(), posOf(p)});
  return e + 1;
}

//===----------------------------------------------------------------------===//
// Parser
//===----------------------------------------------------------------------===//

const char *const kFilters[] = {
    "abs",      "capitalize", "center",  "count",   "d",        "default",
    "dictsort", "e",          "escape",  "first",   "float",    "forceescape",
    "format",   "indent",     "int",     "items",   "join",     "last",
    "length",   "list",       "lower",   "map",     "max",      "min",
    "reject",   "rejectattr", "replace", "reverse", "round",    "safe",
    "select",   "selectattr", "sort",    "string",  "sum",      "title",
    "tojson",   "trim",       "unique",  "upper",   "wordcount"};

const char *const kTests[] = {
    "boolean", "callable", "defined",  "divisibleby", "eq",   "equalto",
    "escaped", "even",     "false",    "float",       "ge",   "greaterthan",
    "gt",      "in",       "integer",  "iterable",    "le",   "lessthan",
    "lower",   "lt",       "mapping",  "ne",          "none", "number",
    "odd",     "sameas",   "sequence", "string",      "true", "undefined",
    "upper",   "==",       "!=",       "<",           "<=",   ">",
    ">="};

template <size_t N>
bool known(const char *const (&list)[N], const std::string &name) {
  for (const char *s : list)
    if (name == s)
      return true;
  return false;
}

class Parser {
public:
  Parser(std::vector<Token> tokens, const std::string &name)
      : toks_(std::move(tokens)), name_(name) {}

  Body parseTemplate() {
    std::string found;
    Body body = parseBody({}, &found, Pos{}, "");
    return body;
  }

private:
  const Token &cur() const { return toks_[i_]; }
  const Token &peek(size_t k = 1) const {
    return toks_[std::min(i_ + k, toks_.size() - 1)];
  }
  bool isOp(const char *op) const {
    return cur().kind == Tok::Op && cur().text == op;
  }
  bool isName(const char *n) const {
    return cur().kind == Tok::Name && cur().text == n;
  }
  std::string describe(const Token &t) const {
    switch (t.kind) {
    case Tok::Eof:
      return "end of template";
    case Tok::BlockEnd:
      return "end of statement block";
    case Tok::VarEnd:
      return "end of print statement";
    case Tok::BlockBegin:
      return "'{%'";
    case Tok::VarBegin:
      return "'{{'";
    case Tok::Data:
      return "template text";
    case Tok::String:
      return "string";
    case Tok::Integer:
    case Tok::Float:
      return "number " + t.text;
    default:
      return "'" + t.text + "'";
    }
  }
  [[noreturn]] void fail(const std::string &what) const {
    syntaxError(name_, cur().pos, what);
  }
  void expectOp(const char *op) {
    if (!isOp(op))
      fail(std::string("expected '") + op + "', found " + describe(cur()));
    ++i_;
  }
  std::string expectName() {
    if (cur().kind != Tok::Name)
      fail("expected a name, found " + describe(cur()));
    return toks_[i_++].text;
  }
  /// `colon`: a statement with a body, where jinja2 accepts a colon
  /// before the end (`{% for x in y: %}`).
  void expectBlockEnd(bool colon = false) {
    if (colon && isOp(":"))
      ++i_;
    if (cur().kind != Tok::BlockEnd)
      fail("expected end of statement block, found " + describe(cur()));
    ++i_;
  }

  struct Depth {
    Parser &p;
    explicit Depth(Parser &parser) : p(parser) {
      if (++p.depth_ > 200)
        p.fail("nesting deeper than 200 levels");
    }
    ~Depth() { --p.depth_; }
  };

  Body parseBody(const std::vector<std::string> &endTags, std::string *found,
                 Pos opener, const std::string &openerName);
  std::unique_ptr<Stmt> parseStatement();
  std::unique_ptr<Stmt> parseIf(Pos p);
  std::unique_ptr<Stmt> parseFor(Pos p);
  std::unique_ptr<Stmt> parseSet(Pos p);
  std::unique_ptr<Stmt> parseMacro(Pos p);
  Target parseAssignTarget(bool withNamespace, const char *extraEnd);

  ExprPtr parseTuple(bool withCondexpr = true, const char *extraEnd = nullptr,
                     bool explicitParens = false);
  ExprPtr parseExpression(bool withCondexpr = true) {
    return withCondexpr ? parseCondexpr() : parseOr();
  }
  ExprPtr parseCondexpr();
  ExprPtr parseOr();
  ExprPtr parseAnd();
  ExprPtr parseNot();
  ExprPtr parseCompare();
  ExprPtr parseMath1();
  ExprPtr parseConcat();
  ExprPtr parseMath2();
  ExprPtr parsePow();
  ExprPtr parseUnary(bool withFilter = true);
  ExprPtr parsePrimary();
  ExprPtr parsePostfix(ExprPtr node);
  ExprPtr parseFilterExpr(ExprPtr node);
  ExprPtr parseSubscript(ExprPtr node);
  ExprPtr parseSubscribed();
  std::unique_ptr<FilterExpr> parseFilter(ExprPtr node);
  ExprPtr parseTest(ExprPtr node);
  CallArgs parseCallArgs();
  bool isTupleEnd(const char *extraEnd) const {
    if (cur().kind == Tok::VarEnd || cur().kind == Tok::BlockEnd || isOp(")"))
      return true;
    return extraEnd && isName(extraEnd);
  }

  std::vector<Token> toks_;
  size_t i_ = 0;
  const std::string &name_;
  int depth_ = 0;
  int loopDepth_ = 0;
};

Body Parser::parseBody(const std::vector<std::string> &endTags,
                       std::string *found, Pos opener,
                       const std::string &openerName) {
  Depth d(*this);
  Body body;
  for (;;) {
    const Token &t = cur();
    switch (t.kind) {
    case Tok::Data:
      body.push_back(std::make_unique<TextStmt>(t.pos, t.text));
      ++i_;
      break;
    case Tok::VarBegin: {
      Pos p = t.pos;
      ++i_;
      ExprPtr e = parseTuple();
      if (cur().kind != Tok::VarEnd)
        fail("expected end of print statement, found " + describe(cur()));
      ++i_;
      body.push_back(std::make_unique<OutputStmt>(p, std::move(e)));
      break;
    }
    case Tok::BlockBegin: {
      const Token &tag = peek();
      if (tag.kind == Tok::Name && std::find(endTags.begin(), endTags.end(),
                                             tag.text) != endTags.end()) {
        ++i_; // leave the end tag's name for the caller
        *found = tag.text;
        return body;
      }
      ++i_;
      body.push_back(parseStatement());
      break;
    }
    case Tok::Eof:
      if (!endTags.empty()) {
        std::string expected;
        for (const auto &e : endTags)
          expected += (expected.empty() ? "'{% " : " or '{% ") + e + " %}'";
        syntaxError(name_, opener,
                    "'{% " + openerName + " %}' is never closed (expected " +
                        expected + " before the end of the template)");
      }
      return body;
    default:
      fail("unexpected " + describe(t));
    }
  }
}

std::unique_ptr<Stmt> Parser::parseStatement() {
  if (cur().kind != Tok::Name)
    fail("expected a tag name, found " + describe(cur()));
  Pos p = cur().pos;
  std::string tag = cur().text;
  ++i_;
  if (tag == "if")
    return parseIf(p);
  if (tag == "for")
    return parseFor(p);
  if (tag == "set")
    return parseSet(p);
  if (tag == "macro")
    return parseMacro(p);
  if (tag == "break" || tag == "continue") {
    if (loopDepth_ == 0)
      syntaxError(name_, p, "'{% " + tag + " %}' outside a loop");
    expectBlockEnd();
    return std::make_unique<Stmt>(
        tag == "break" ? Stmt::Kind::Break : Stmt::Kind::Continue, p);
  }
  if (tag == "generation") {
    expectBlockEnd(true);
    auto s = std::make_unique<BlockStmt>(p);
    std::string found;
    s->body = parseBody({"endgeneration"}, &found, p, "generation");
    ++i_;
    expectBlockEnd();
    return s;
  }
  static const char *const kRefused[] = {
      "extends",  "block",        "include", "import",     "from",
      "call",     "filter",       "with",    "autoescape", "do",
      "trans",    "pluralize",    "endcall", "endfilter",  "endwith",
      "endblock", "endautoescape"};
  for (const char *r : kRefused)
    if (tag == r)
      unsupported(name_, p, "construct '" + tag + "'");
  syntaxError(name_, p, "unexpected tag '" + tag + "'");
}

std::unique_ptr<Stmt> Parser::parseIf(Pos p) {
  auto s = std::make_unique<IfStmt>(p);
  ExprPtr cond = parseTuple(false);
  expectBlockEnd(true);
  for (;;) {
    std::string found;
    Body body = parseBody({"elif", "else", "endif"}, &found, p, "if");
    s->branches.emplace_back(std::move(cond), std::move(body));
    ++i_; // the end tag's name
    if (found == "elif") {
      cond = parseTuple(false);
      expectBlockEnd(true);
      continue;
    }
    if (found == "else") {
      expectBlockEnd(true);
      s->otherwise = parseBody({"endif"}, &found, p, "if");
      ++i_;
    }
    expectBlockEnd();
    return s;
  }
}

std::unique_ptr<Stmt> Parser::parseFor(Pos p) {
  auto s = std::make_unique<ForStmt>(p);
  s->target = parseAssignTarget(false, "in");
  if (!isName("in"))
    fail("expected 'in', found " + describe(cur()));
  ++i_;
  s->iter = parseTuple(false, "recursive");
  if (isName("if")) {
    ++i_;
    s->filter = parseExpression();
  }
  if (isName("recursive"))
    unsupported(name_, cur().pos, "construct 'recursive' (loop)");
  expectBlockEnd(true);
  ++loopDepth_;
  std::string found;
  s->body = parseBody({"endfor", "else"}, &found, p, "for");
  --loopDepth_;
  ++i_;
  if (found == "else") {
    expectBlockEnd(true);
    s->otherwise = parseBody({"endfor"}, &found, p, "for");
    ++i_;
  }
  expectBlockEnd();
  return s;
}

std::unique_ptr<Stmt> Parser::parseSet(Pos p) {
  Target target = parseAssignTarget(true, nullptr);
  if (isOp("=")) {
    ++i_;
    auto s = std::make_unique<SetStmt>(p);
    s->target = std::move(target);
    s->value = parseTuple();
    expectBlockEnd();
    return s;
  }
  auto s = std::make_unique<SetBlockStmt>(p);
  if (target.tuple || !target.attr.empty())
    syntaxError(name_, p, "a block '{% set %}' assigns to a single name");
  s->target = std::move(target);
  while (isOp("|"))
    s->filters.push_back(parseFilter(nullptr));
  expectBlockEnd(true);
  // A block set's body may use break/continue only of its own loops.
  int saved = loopDepth_;
  loopDepth_ = 0;
  std::string found;
  s->body = parseBody({"endset"}, &found, p, "set");
  loopDepth_ = saved;
  ++i_;
  expectBlockEnd();
  return s;
}

std::unique_ptr<Stmt> Parser::parseMacro(Pos p) {
  auto s = std::make_unique<MacroStmt>(p);
  s->name = expectName();
  expectOp("(");
  while (!isOp(")")) {
    if (!s->params.empty())
      expectOp(",");
    if (isOp(")"))
      break;
    std::string param = expectName();
    ExprPtr dflt;
    if (isOp("=")) {
      ++i_;
      dflt = parseExpression();
    } else if (!s->defaults.empty() && s->defaults.back()) {
      fail("non-default argument follows default argument");
    }
    s->params.push_back(std::move(param));
    s->defaults.push_back(std::move(dflt));
  }
  ++i_;
  expectBlockEnd(true);
  int saved = loopDepth_;
  loopDepth_ = 0;
  std::string found;
  s->body = parseBody({"endmacro"}, &found, p, "macro");
  loopDepth_ = saved;
  ++i_;
  expectBlockEnd();
  return s;
}

Target Parser::parseAssignTarget(bool withNamespace, const char *extraEnd) {
  Target t;
  t.pos = cur().pos;
  if (withNamespace && cur().kind == Tok::Name && peek().kind == Tok::Op &&
      peek().text == ".") {
    t.names.push_back(cur().text);
    i_ += 2;
    t.attr = expectName();
    return t;
  }
  // parse_tuple(simplified=True): names separated by commas.
  for (;;) {
    if (!t.names.empty()) {
      if (!isOp(","))
        break;
      ++i_;
      t.tuple = true;
      if (isTupleEnd(extraEnd) || isOp("="))
        break;
    }
    if (isOp("("))
      unsupported(name_, cur().pos, "construct 'nested unpacking'");
    std::string n = expectName();
    if (n == "true" || n == "false" || n == "none" || n == "True" ||
        n == "False" || n == "None")
      syntaxError(name_, t.pos, "cannot assign to '" + n + "'");
    t.names.push_back(std::move(n));
  }
  return t;
}

ExprPtr Parser::parseTuple(bool withCondexpr, const char *extraEnd,
                           bool explicitParens) {
  Pos p = cur().pos;
  std::vector<ExprPtr> items;
  bool isTuple = false;
  for (;;) {
    if (!items.empty())
      expectOp(",");
    if (isTupleEnd(extraEnd))
      break;
    items.push_back(parseExpression(withCondexpr));
    if (isOp(","))
      isTuple = true;
    else
      break;
  }
  if (!isTuple) {
    if (items.size() == 1)
      return std::move(items[0]);
    if (!explicitParens)
      fail("expected an expression, found " + describe(cur()));
  }
  auto t = std::make_unique<ListExpr>(p, true);
  t->items = std::move(items);
  return t;
}

ExprPtr Parser::parseCondexpr() {
  Depth d(*this);
  ExprPtr e = parseOr();
  while (isName("if")) {
    Pos p = cur().pos;
    ++i_;
    auto c = std::make_unique<CondExpr>(p);
    c->then = std::move(e);
    c->test = parseOr();
    if (isName("else")) {
      ++i_;
      c->otherwise = parseCondexpr();
    }
    e = std::move(c);
  }
  return e;
}

ExprPtr Parser::parseOr() {
  ExprPtr l = parseAnd();
  while (isName("or")) {
    Pos p = cur().pos;
    ++i_;
    l = std::make_unique<BinaryExpr>(Expr::Kind::Or, p, "or", std::move(l),
                                     parseAnd());
  }
  return l;
}

ExprPtr Parser::parseAnd() {
  ExprPtr l = parseNot();
  while (isName("and")) {
    Pos p = cur().pos;
    ++i_;
    l = std::make_unique<BinaryExpr>(Expr::Kind::And, p, "and", std::move(l),
                                     parseNot());
  }
  return l;
}

ExprPtr Parser::parseNot() {
  if (isName("not")) {
    Depth d(*this);
    Pos p = cur().pos;
    ++i_;
    return std::make_unique<NotExpr>(p, parseNot());
  }
  return parseCompare();
}

ExprPtr Parser::parseCompare() {
  Pos p = cur().pos;
  ExprPtr first = parseMath1();
  std::unique_ptr<CompareExpr> cmp;
  for (;;) {
    std::string op;
    if (cur().kind == Tok::Op &&
        (cur().text == "==" || cur().text == "!=" || cur().text == "<" ||
         cur().text == "<=" || cur().text == ">" || cur().text == ">=")) {
      op = cur().text;
      ++i_;
    } else if (isName("in")) {
      op = "in";
      ++i_;
    } else if (isName("not") && peek().kind == Tok::Name &&
               peek().text == "in") {
      op = "notin";
      i_ += 2;
    } else {
      break;
    }
    if (!cmp)
      cmp = std::make_unique<CompareExpr>(p, std::move(first));
    cmp->rest.emplace_back(op, parseMath1());
  }
  if (cmp)
    return cmp;
  return first;
}

ExprPtr Parser::parseMath1() {
  ExprPtr l = parseConcat();
  while (isOp("+") || isOp("-")) {
    Pos p = cur().pos;
    std::string op = cur().text;
    ++i_;
    l = std::make_unique<BinaryExpr>(Expr::Kind::Binary, p, op, std::move(l),
                                     parseConcat());
  }
  return l;
}

ExprPtr Parser::parseConcat() {
  Pos p = cur().pos;
  ExprPtr first = parseMath2();
  if (!isOp("~"))
    return first;
  auto c = std::make_unique<ConcatExpr>(p);
  c->parts.push_back(std::move(first));
  while (isOp("~")) {
    ++i_;
    c->parts.push_back(parseMath2());
  }
  return c;
}

ExprPtr Parser::parseMath2() {
  ExprPtr l = parsePow();
  while (isOp("*") || isOp("/") || isOp("//") || isOp("%")) {
    Pos p = cur().pos;
    std::string op = cur().text;
    ++i_;
    l = std::make_unique<BinaryExpr>(Expr::Kind::Binary, p, op, std::move(l),
                                     parsePow());
  }
  return l;
}

ExprPtr Parser::parsePow() {
  ExprPtr l = parseUnary();
  while (isOp("**")) {
    Pos p = cur().pos;
    ++i_;
    l = std::make_unique<BinaryExpr>(Expr::Kind::Binary, p, "**", std::move(l),
                                     parseUnary());
  }
  return l;
}

ExprPtr Parser::parseUnary(bool withFilter) {
  Depth d(*this);
  Pos p = cur().pos;
  ExprPtr node;
  if (isOp("-") || isOp("+")) {
    char op = cur().text[0];
    ++i_;
    node = std::make_unique<UnaryExpr>(p, op, parseUnary(false));
  } else {
    node = parsePrimary();
  }
  node = parsePostfix(std::move(node));
  if (withFilter)
    node = parseFilterExpr(std::move(node));
  return node;
}

ExprPtr Parser::parsePrimary() {
  const Token &t = cur();
  Pos p = t.pos;
  switch (t.kind) {
  case Tok::Name: {
    std::string n = t.text;
    ++i_;
    if (n == "true" || n == "True")
      return std::make_unique<ConstExpr>(p, Value::boolean(true));
    if (n == "false" || n == "False")
      return std::make_unique<ConstExpr>(p, Value::boolean(false));
    if (n == "none" || n == "None")
      return std::make_unique<ConstExpr>(p, Value::none());
    return std::make_unique<NameExpr>(p, n);
  }
  case Tok::String: {
    std::string s;
    while (cur().kind == Tok::String)
      s += toks_[i_++].text;
    return std::make_unique<ConstExpr>(p, Value::str(std::move(s)));
  }
  case Tok::Integer:
  case Tok::Float:
    ++i_;
    return std::make_unique<ConstExpr>(p, Value::of(t.number));
  case Tok::Op:
    if (t.text == "(") {
      ++i_;
      ExprPtr e = parseTuple(true, nullptr, true);
      expectOp(")");
      return e;
    }
    if (t.text == "[") {
      ++i_;
      auto l = std::make_unique<ListExpr>(p, false);
      while (!isOp("]")) {
        if (!l->items.empty())
          expectOp(",");
        if (isOp("]"))
          break;
        l->items.push_back(parseExpression());
      }
      ++i_;
      return l;
    }
    if (t.text == "{") {
      ++i_;
      auto dict = std::make_unique<DictExpr>(p);
      while (!isOp("}")) {
        if (!dict->items.empty())
          expectOp(",");
        if (isOp("}"))
          break;
        ExprPtr k = parseExpression();
        expectOp(":");
        dict->items.emplace_back(std::move(k), parseExpression());
      }
      ++i_;
      return dict;
    }
    break;
  default:
    break;
  }
  fail("unexpected " + describe(t));
}

ExprPtr Parser::parsePostfix(ExprPtr node) {
  for (;;) {
    if (isOp(".") || isOp("[")) {
      node = parseSubscript(std::move(node));
    } else if (isOp("(")) {
      Pos p = node->pos;
      auto c = std::make_unique<CallExpr>(p, std::move(node));
      c->args = parseCallArgs();
      node = std::move(c);
    } else {
      return node;
    }
  }
}

ExprPtr Parser::parseFilterExpr(ExprPtr node) {
  for (;;) {
    if (isOp("|")) {
      node = parseFilter(std::move(node));
    } else if (isName("is")) {
      node = parseTest(std::move(node));
    } else if (isOp("(")) {
      Pos p = node->pos;
      auto c = std::make_unique<CallExpr>(p, std::move(node));
      c->args = parseCallArgs();
      node = std::move(c);
    } else {
      return node;
    }
  }
}

ExprPtr Parser::parseSubscript(ExprPtr node) {
  Pos p = cur().pos;
  if (isOp(".")) {
    ++i_;
    if (cur().kind == Tok::Name)
      return std::make_unique<AttrExpr>(p, std::move(node), toks_[i_++].text);
    if (cur().kind == Tok::Integer) {
      auto k = std::make_unique<ConstExpr>(cur().pos, Value::of(cur().number));
      ++i_;
      return std::make_unique<ItemExpr>(p, std::move(node), std::move(k));
    }
    fail("expected a name after '.', found " + describe(cur()));
  }
  ++i_; // '['
  std::vector<ExprPtr> args;
  while (!isOp("]")) {
    if (!args.empty()) {
      expectOp(",");
      if (isOp("]"))
        break;
    }
    args.push_back(parseSubscribed());
  }
  ++i_;
  if (args.size() == 1) {
    if (args[0]->kind == Expr::Kind::Slice) {
      static_cast<SliceExpr &>(*args[0]).obj = std::move(node);
      return std::move(args[0]);
    }
    return std::make_unique<ItemExpr>(p, std::move(node), std::move(args[0]));
  }
  for (const auto &a : args)
    if (a->kind == Expr::Kind::Slice)
      unsupported(name_, p, "construct 'multi-dimensional slice'");
  auto t = std::make_unique<ListExpr>(p, true);
  t->items = std::move(args);
  return std::make_unique<ItemExpr>(p, std::move(node), std::move(t));
}

ExprPtr Parser::parseSubscribed() {
  Pos p = cur().pos;
  ExprPtr start;
  if (!isOp(":")) {
    start = parseExpression();
    if (!isOp(":"))
      return start;
  }
  ++i_; // ':'
  auto s = std::make_unique<SliceExpr>(p);
  s->start = std::move(start);
  if (!isOp("]") && !isOp(",") && !isOp(":"))
    s->stop = parseExpression();
  if (isOp(":")) {
    ++i_;
    if (!isOp("]") && !isOp(","))
      s->step = parseExpression();
  }
  return s;
}

CallArgs Parser::parseCallArgs() {
  CallArgs a;
  ++i_; // '('
  while (!isOp(")")) {
    if (!a.args.empty() || !a.kwargs.empty()) {
      expectOp(",");
      if (isOp(")"))
        break;
    }
    if (isOp("*") || isOp("**"))
      unsupported(name_, cur().pos, "construct '*args/**kwargs in a call'");
    if (cur().kind == Tok::Name && peek().kind == Tok::Op &&
        peek().text == "=") {
      std::string key = cur().text;
      i_ += 2;
      a.kwargs.emplace_back(std::move(key), parseExpression());
    } else {
      if (!a.kwargs.empty())
        fail("positional argument follows keyword argument");
      a.args.push_back(parseExpression());
    }
  }
  ++i_;
  return a;
}

std::unique_ptr<FilterExpr> Parser::parseFilter(ExprPtr node) {
  ++i_; // '|'
  Pos p = cur().pos;
  std::string name = expectName();
  while (isOp(".")) {
    ++i_;
    name += "." + expectName();
  }
  if (!known(kFilters, name))
    unsupported(name_, p, "filter '" + name + "'");
  auto f = std::make_unique<FilterExpr>(p, std::move(node), name);
  if (isOp("("))
    f->args = parseCallArgs();
  return f;
}

ExprPtr Parser::parseTest(ExprPtr node) {
  ++i_; // 'is'
  bool negated = false;
  if (isName("not")) {
    negated = true;
    ++i_;
  }
  Pos p = cur().pos;
  std::string name;
  if (cur().kind == Tok::Op &&
      (cur().text == "==" || cur().text == "!=" || cur().text == "<" ||
       cur().text == "<=" || cur().text == ">" || cur().text == ">=")) {
    fail("expected a test name, found " + describe(cur()));
  }
  name = expectName();
  while (isOp(".")) {
    ++i_;
    name += "." + expectName();
  }
  if (!known(kTests, name))
    unsupported(name_, p, "test '" + name + "'");
  auto t = std::make_unique<TestExpr>(p, std::move(node), name);
  t->negated = negated;
  if (isOp("(")) {
    t->args = parseCallArgs();
  } else if ((cur().kind == Tok::Name || cur().kind == Tok::String ||
              cur().kind == Tok::Integer || cur().kind == Tok::Float ||
              isOp("(") || isOp("[") || isOp("{")) &&
             !isName("else") && !isName("or") && !isName("and")) {
    if (isName("is"))
      fail("tests cannot be chained with 'is'");
    ExprPtr arg = parsePrimary();
    t->args.args.push_back(parsePostfix(std::move(arg)));
  }
  return t;
}

} // namespace

//===----------------------------------------------------------------------===//
// Renderer
//===----------------------------------------------------------------------===//

namespace {

struct Frame;
using FramePtr = std::shared_ptr<Frame>;

/// A scope: the context and top-level assignments, one iteration of a loop
/// body, or a macro call. `if` blocks have none (their assignments are seen
/// after them), as in Jinja.
struct Frame {
  FramePtr parent;
  std::unordered_map<std::string, Value> vars;
  const Value *find(const std::string &n) const {
    for (const Frame *f = this; f; f = f->parent.get()) {
      auto it = f->vars.find(n);
      if (it != f->vars.end())
        return &it->second;
    }
    return nullptr;
  }
};

FramePtr childOf(const FramePtr &parent) {
  auto f = std::make_shared<Frame>();
  f->parent = parent;
  return f;
}

struct Function {
  enum class Kind { Global, Macro, Method };
  Kind kind = Kind::Global;
  std::string name;
  Value self;                       // Method: the receiver
  const MacroStmt *macro = nullptr; // Macro
  FramePtr closure;                 // Macro: the scope it was defined in
  bool unsafe = false;              // a method the sandbox refuses
};

Value functionValue(Function f) {
  Value v;
  v.kind = Value::Kind::Function;
  v.fn = std::make_shared<const Function>(std::move(f));
  return v;
}

Value methodValue(const Value &self, const std::string &name,
                  bool unsafe = false) {
  Function f;
  f.kind = Function::Kind::Method;
  f.name = name;
  f.self = self;
  f.unsafe = unsafe;
  return functionValue(std::move(f));
}

void appendValueStr(std::string &out, const Value &v) {
  switch (v.kind) {
  case Value::Kind::Data:
    if (v.data->is_string())
      out += v.string();
    else
      appendRepr(out, *v.data, v.shape, v.tupleElems);
    return;
  case Value::Kind::Undefined:
    return;
  case Value::Kind::Namespace: {
    out += "<Namespace {";
    bool first = true;
    for (const auto &[k, val] : v.ns->attrs) {
      if (!first)
        out += ", ";
      first = false;
      appendStrRepr(out, k);
      out += ": ";
      appendValueRepr(out, val);
    }
    out += "}>";
    return;
  }
  case Value::Kind::Function:
    if (v.fn->kind == Function::Kind::Macro)
      out += "<Macro '" + v.fn->name + "'>";
    else if (v.fn->kind == Function::Kind::Method)
      out += "<built-in method " + v.fn->name + " of " + typeName(v.fn->self) +
             " object>";
    else
      out += "<function " + v.fn->name + ">";
    return;
  case Value::Kind::Loop:
    out += "<LoopContext " + std::to_string(v.loop->index + 1) + "/" +
           std::to_string(v.loop->items.size()) + ">";
    return;
  }
}

const char *const kStrMethods[] = {
    "capitalize",   "casefold",     "center",    "count",     "encode",
    "endswith",     "expandtabs",   "find",      "format",    "format_map",
    "index",        "isalnum",      "isalpha",   "isascii",   "isdecimal",
    "isdigit",      "isidentifier", "islower",   "isnumeric", "isprintable",
    "isspace",      "istitle",      "isupper",   "join",      "ljust",
    "lower",        "lstrip",       "maketrans", "partition", "removeprefix",
    "removesuffix", "replace",      "rfind",     "rindex",    "rjust",
    "rpartition",   "rsplit",       "rstrip",    "split",     "splitlines",
    "startswith",   "strip",        "swapcase",  "title",     "translate",
    "upper",        "zfill"};
const char *const kDictMethods[] = {
    "clear", "copy",    "fromkeys",   "get",    "items", "keys",
    "pop",   "popitem", "setdefault", "update", "values"};
const char *const kDictMutators[] = {"clear", "pop", "popitem", "setdefault",
                                     "update"};
const char *const kListMethods[] = {"append", "clear",   "copy",   "count",
                                    "extend", "index",   "insert", "pop",
                                    "remove", "reverse", "sort"};
const char *const kListMutators[] = {"append", "clear",  "extend",  "insert",
                                     "pop",    "remove", "reverse", "sort"};

enum class Flow { Normal, Break, Continue };

struct Args {
  std::vector<Value> pos;
  std::vector<std::pair<std::string, Value>> kw;
};

class Renderer {
public:
  explicit Renderer(const Program &prog) : prog_(prog) {}
  /// A macro holds the scope it was defined in, which holds the macro, and
  /// a namespace can hold itself: break those cycles.
  ~Renderer() {
    for (const FramePtr &f : macroScopes_)
      f->vars.clear();
    for (const auto &ns : namespaces_)
      ns->attrs.clear();
  }
  Renderer(const Renderer &) = delete;
  Renderer &operator=(const Renderer &) = delete;
  std::string run(const Json &context);

private:
  [[noreturn]] void fail(Pos p, const std::string &what) const {
    throw Error(KILN_ERROR_INVALID_ARGUMENT,
                "error " + where(prog_.name, p) + ": " + what);
  }
  [[noreturn]] void refuse(Pos p, const std::string &what) const {
    unsupported(prog_.name, p, what);
  }
  /// Using an undefined value where Jinja raises UndefinedError.
  [[noreturn]] void failUndefined(Pos p, const Value &v) const {
    fail(p, v.hint.empty() ? "undefined value" : v.hint);
  }

  Flow exec(const Body &body, const FramePtr &frame);
  Flow execFor(const ForStmt &s, const FramePtr &frame);
  void assign(const Target &t, const Value &v, const FramePtr &frame);
  Value eval(const Expr &e, const FramePtr &frame);
  Args evalArgs(const CallArgs &a, const FramePtr &frame);

  // Python semantics.
  bool truthy(const Value &v) const;
  bool equals(const Value &a, const Value &b) const;
  int compare(const Value &a, const Value &b, Pos p, const char *op) const;
  bool contains(const Value &container, const Value &item, Pos p) const;
  Value arith(const std::string &op, const Value &a, const Value &b,
              Pos p) const;
  Value percentFormat(const std::string &fmt, const Value &args, Pos p) const;
  std::vector<Value> iterate(const Value &v, Pos p) const;
  size_t length(const Value &v, Pos p) const;
  Value getAttr(const Value &obj, const std::string &name, Pos p) const;
  Value getItem(const Value &obj, const Value &key, Pos p) const;
  Value slice(const Value &obj, const Value *start, const Value *stop,
              const Value *step, Pos p) const;
  Value loopAttr(const Value &loop, const std::string &name) const;
  Json toJson(const Value &v, Pos p) const;
  Value listOf(const std::vector<Value> &items, Shape shape, Pos p) const;
  std::string str(const Value &v) const { return valueStr(v); }
  std::string needString(const Value &v, Pos p, const std::string &what) const;
  int64_t needInt(const Value &v, Pos p, const std::string &what) const;
  double needNumber(const Value &v, Pos p, const std::string &what) const;

  // Calls.
  Value call(const Value &fn, const Args &a, Pos p);
  Value callMacro(const Function &f, const Args &a, Pos p);
  Value callGlobal(const std::string &name, const Args &a, Pos p);
  Value callMethod(const Function &f, const Args &a, Pos p);
  Value callStrMethod(const Value &self, const std::string &name, const Args &a,
                      Pos p);
  Value filter(const std::string &name, const Value &v, const Args &a, Pos p);
  bool test(const std::string &name, const Value &v, const Args &a, Pos p);
  std::vector<Value> attrPath(const Value &attribute, Pos p) const;
  std::vector<const Value *> bindArgs(const std::string &what, const Args &a,
                                      std::initializer_list<const char *> names,
                                      size_t required, Pos p) const;
  [[noreturn]] void badOperands(const std::string &op, const Value &a,
                                const Value &b, Pos p) const {
    fail(p, "unsupported operand type(s) for " + op + ": '" + typeName(a) +
                "' and '" + typeName(b) + "'");
  }
  Value lookupPath(Value item, const std::vector<Value> &path,
                   const Value *dflt, Pos p) const;

  const Program &prog_;
  std::string *out_ = nullptr;
  int callDepth_ = 0;
  std::vector<FramePtr> macroScopes_;
  std::vector<std::shared_ptr<NamespaceObject>> namespaces_;
};

/// Python-style argument binding: `names` are the parameters after the
/// value a filter or method applies to; the first `required` must be given.
std::vector<const Value *>
Renderer::bindArgs(const std::string &what, const Args &a,
                   std::initializer_list<const char *> names, size_t required,
                   Pos p) const {
  std::vector<const char *> params(names);
  std::vector<const Value *> out(params.size(), nullptr);
  if (a.pos.size() > params.size())
    fail(p, what + "() takes at most " + std::to_string(params.size()) +
                " argument(s) (" + std::to_string(a.pos.size()) + " given)");
  for (size_t k = 0; k < a.pos.size(); ++k)
    out[k] = &a.pos[k];
  for (const auto &[key, val] : a.kw) {
    size_t k = 0;
    while (k < params.size() && key != params[k])
      ++k;
    if (k == params.size())
      fail(p, what + "() got an unexpected keyword argument '" + key + "'");
    if (out[k])
      fail(p, what + "() got multiple values for argument '" + key + "'");
    out[k] = &val;
  }
  for (size_t k = 0; k < required; ++k)
    if (!out[k])
      fail(p, what + "() missing required argument '" + params[k] + "'");
  return out;
}

std::string Renderer::run(const Json &context) {
  auto root = std::make_shared<const Json>(context);
  Value ctx;
  ctx.kind = Value::Kind::Data;
  ctx.root = root;
  ctx.data = root.get();

  auto globals = std::make_shared<Frame>();
  for (const char *g : {"raise_exception", "strftime_now", "namespace", "dict",
                        "range", "cycler", "joiner", "lipsum"}) {
    Function f;
    f.name = g;
    globals->vars[g] = functionValue(std::move(f));
  }
  FramePtr top = childOf(globals);
  for (auto it = root->begin(); it != root->end(); ++it)
    top->vars[it.key()] = Value::at(ctx, it.value());

  std::string out;
  out_ = &out;
  exec(prog_.body, top);
  return out;
}

Flow Renderer::exec(const Body &body, const FramePtr &frame) {
  for (const auto &sp : body) {
    const Stmt &s = *sp;
    switch (s.kind) {
    case Stmt::Kind::Text:
      *out_ += static_cast<const TextStmt &>(s).text;
      break;
    case Stmt::Kind::Output:
      appendValueStr(*out_,
                     eval(*static_cast<const OutputStmt &>(s).expr, frame));
      break;
    case Stmt::Kind::If: {
      const auto &is = static_cast<const IfStmt &>(s);
      const Body *chosen = &is.otherwise;
      for (const auto &[cond, branch] : is.branches) {
        if (truthy(eval(*cond, frame))) {
          chosen = &branch;
          break;
        }
      }
      Flow f = exec(*chosen, frame);
      if (f != Flow::Normal)
        return f;
      break;
    }
    case Stmt::Kind::For:
      execFor(static_cast<const ForStmt &>(s), frame);
      break;
    case Stmt::Kind::Set: {
      const auto &ss = static_cast<const SetStmt &>(s);
      assign(ss.target, eval(*ss.value, frame), frame);
      break;
    }
    case Stmt::Kind::SetBlock: {
      const auto &ss = static_cast<const SetBlockStmt &>(s);
      std::string buf;
      std::string *saved = out_;
      out_ = &buf;
      exec(ss.body, childOf(frame));
      out_ = saved;
      Value v = Value::str(std::move(buf));
      for (const auto &f : ss.filters)
        v = filter(f->name, v, evalArgs(f->args, frame), f->pos);
      assign(ss.target, v, frame);
      break;
    }
    case Stmt::Kind::Macro: {
      const auto &ms = static_cast<const MacroStmt &>(s);
      Function f;
      f.kind = Function::Kind::Macro;
      f.name = ms.name;
      f.macro = &ms;
      f.closure = frame;
      frame->vars[ms.name] = functionValue(std::move(f));
      macroScopes_.push_back(frame);
      break;
    }
    case Stmt::Kind::Break:
      return Flow::Break;
    case Stmt::Kind::Continue:
      return Flow::Continue;
    case Stmt::Kind::Block: {
      Flow f = exec(static_cast<const BlockStmt &>(s).body, frame);
      if (f != Flow::Normal)
        return f;
      break;
    }
    }
  }
  return Flow::Normal;
}

Flow Renderer::execFor(const ForStmt &s, const FramePtr &frame) {
  std::vector<Value> items = iterate(eval(*s.iter, frame), s.iter->pos);
  if (s.filter) {
    std::vector<Value> kept;
    for (auto &item : items) {
      FramePtr f = childOf(frame);
      assign(s.target, item, f);
      if (truthy(eval(*s.filter, f)))
        kept.push_back(std::move(item));
    }
    items = std::move(kept);
  }
  if (items.empty()) {
    if (!s.otherwise.empty())
      exec(s.otherwise, childOf(frame));
    return Flow::Normal;
  }
  auto state = std::make_shared<LoopState>();
  state->items = std::move(items);
  Value loop;
  loop.kind = Value::Kind::Loop;
  loop.loop = state;
  for (size_t i = 0; i < state->items.size(); ++i) {
    state->index = i;
    FramePtr f = childOf(frame);
    assign(s.target, state->items[i], f);
    f->vars["loop"] = loop;
    if (exec(s.body, f) == Flow::Break)
      break;
  }
  return Flow::Normal;
}

void Renderer::assign(const Target &t, const Value &v, const FramePtr &frame) {
  if (!t.attr.empty()) {
    const Value *ns = frame->find(t.names[0]);
    if (!ns || ns->kind != Value::Kind::Namespace)
      fail(t.pos, "cannot assign attribute on non-namespace object '" +
                      t.names[0] + "'");
    if (t.attr[0] == '_')
      fail(t.pos,
           "namespace attributes cannot start with '_' ('" + t.attr + "')");
    if (Value *slot = ns->ns->find(t.attr))
      *slot = v;
    else
      ns->ns->attrs.emplace_back(t.attr, v);
    return;
  }
  if (!t.tuple) {
    frame->vars[t.names[0]] = v;
    return;
  }
  if (v.isUndefined())
    failUndefined(t.pos, v);
  std::vector<Value> items = iterate(v, t.pos);
  if (items.size() != t.names.size())
    fail(t.pos, items.size() > t.names.size()
                    ? "too many values to unpack (expected " +
                          std::to_string(t.names.size()) + ")"
                    : "not enough values to unpack (expected " +
                          std::to_string(t.names.size()) + ", got " +
                          std::to_string(items.size()) + ")");
  for (size_t k = 0; k < items.size(); ++k)
    frame->vars[t.names[k]] = items[k];
}

Args Renderer::evalArgs(const CallArgs &a, const FramePtr &frame) {
  Args out;
  for (const auto &e : a.args)
    out.pos.push_back(eval(*e, frame));
  for (const auto &[k, e] : a.kwargs)
    out.kw.emplace_back(k, eval(*e, frame));
  return out;
}

Value Renderer::eval(const Expr &e, const FramePtr &frame) {
  switch (e.kind) {
  case Expr::Kind::Const:
    return static_cast<const ConstExpr &>(e).value;
  case Expr::Kind::Name: {
    const auto &n = static_cast<const NameExpr &>(e);
    if (const Value *v = frame->find(n.name))
      return *v;
    return Value::undefined("'" + n.name + "' is undefined");
  }
  case Expr::Kind::Attr: {
    const auto &a = static_cast<const AttrExpr &>(e);
    return getAttr(eval(*a.obj, frame), a.name, a.pos);
  }
  case Expr::Kind::Item: {
    const auto &it = static_cast<const ItemExpr &>(e);
    Value obj = eval(*it.obj, frame);
    return getItem(obj, eval(*it.key, frame), it.pos);
  }
  case Expr::Kind::Slice: {
    const auto &sl = static_cast<const SliceExpr &>(e);
    Value obj = eval(*sl.obj, frame);
    std::optional<Value> a, b, c;
    if (sl.start)
      a = eval(*sl.start, frame);
    if (sl.stop)
      b = eval(*sl.stop, frame);
    if (sl.step)
      c = eval(*sl.step, frame);
    return slice(obj, a ? &*a : nullptr, b ? &*b : nullptr, c ? &*c : nullptr,
                 sl.pos);
  }
  case Expr::Kind::Call: {
    const auto &c = static_cast<const CallExpr &>(e);
    Value fn = eval(*c.fn, frame);
    return call(fn, evalArgs(c.args, frame), c.pos);
  }
  case Expr::Kind::Filter: {
    const auto &f = static_cast<const FilterExpr &>(e);
    Value v = eval(*f.value, frame);
    return filter(f.name, v, evalArgs(f.args, frame), f.pos);
  }
  case Expr::Kind::Test: {
    const auto &t = static_cast<const TestExpr &>(e);
    Value v = eval(*t.value, frame);
    bool r = test(t.name, v, evalArgs(t.args, frame), t.pos);
    return Value::boolean(t.negated ? !r : r);
  }
  case Expr::Kind::Unary: {
    const auto &u = static_cast<const UnaryExpr &>(e);
    Value v = eval(*u.operand, frame);
    if (v.isUndefined())
      failUndefined(u.pos, v);
    if (!v.isNumber())
      fail(u.pos, std::string("bad operand type for unary ") + u.op + ": '" +
                      typeName(v) + "'");
    if (u.op == '+')
      return v.isBool() ? Value::of(Json(v.data->get<bool>() ? 1 : 0)) : v;
    if (v.data->is_number_float())
      return Value::of(Json(-v.data->get<double>()));
    int64_t x = needInt(v, u.pos, "unary -");
    if (x == std::numeric_limits<int64_t>::min())
      fail(u.pos, "integer overflow (integers are 64-bit here)");
    return Value::of(Json(-x));
  }
  case Expr::Kind::Binary: {
    const auto &b = static_cast<const BinaryExpr &>(e);
    Value l = eval(*b.left, frame);
    return arith(b.op, l, eval(*b.right, frame), b.pos);
  }
  case Expr::Kind::Concat: {
    std::string s;
    for (const auto &part : static_cast<const ConcatExpr &>(e).parts)
      appendValueStr(s, eval(*part, frame));
    return Value::str(std::move(s));
  }
  case Expr::Kind::And: {
    const auto &b = static_cast<const BinaryExpr &>(e);
    Value l = eval(*b.left, frame);
    return truthy(l) ? eval(*b.right, frame) : l;
  }
  case Expr::Kind::Or: {
    const auto &b = static_cast<const BinaryExpr &>(e);
    Value l = eval(*b.left, frame);
    return truthy(l) ? l : eval(*b.right, frame);
  }
  case Expr::Kind::Not:
    return Value::boolean(
        !truthy(eval(*static_cast<const NotExpr &>(e).operand, frame)));
  case Expr::Kind::Compare: {
    const auto &c = static_cast<const CompareExpr &>(e);
    Value a = eval(*c.first, frame);
    for (const auto &[op, rhs] : c.rest) {
      Value b = eval(*rhs, frame);
      bool r;
      if (op == "==")
        r = equals(a, b);
      else if (op == "!=")
        r = !equals(a, b);
      else if (op == "in")
        r = contains(b, a, c.pos);
      else if (op == "notin")
        r = !contains(b, a, c.pos);
      else {
        int k = compare(a, b, c.pos, op.c_str());
        r = op == "<"    ? k < 0
            : op == "<=" ? k <= 0
            : op == ">"  ? k > 0
                         : k >= 0;
      }
      if (!r)
        return Value::boolean(false);
      a = std::move(b);
    }
    return Value::boolean(true);
  }
  case Expr::Kind::Cond: {
    const auto &c = static_cast<const CondExpr &>(e);
    if (truthy(eval(*c.test, frame)))
      return eval(*c.then, frame);
    if (c.otherwise)
      return eval(*c.otherwise, frame);
    return Value::undefined("the inline if-expression on line " +
                            std::to_string(c.pos.line) +
                            " evaluated to false and no else section was "
                            "defined");
  }
  case Expr::Kind::List: {
    const auto &l = static_cast<const ListExpr &>(e);
    std::vector<Value> items;
    for (const auto &item : l.items)
      items.push_back(eval(*item, frame));
    return listOf(items, l.tuple ? Shape::Tuple : Shape::List, l.pos);
  }
  case Expr::Kind::Dict: {
    const auto &d = static_cast<const DictExpr &>(e);
    Json obj = Json::object();
    for (const auto &[k, v] : d.items) {
      Value key = eval(*k, frame);
      if (!key.isString())
        refuse(k->pos, "construct 'dict key that is not a string'");
      obj[key.string()] = toJson(eval(*v, frame), v->pos);
    }
    return Value::of(std::move(obj));
  }
  }
  return Value::undefined("");
}

//===----------------------------------------------------------------------===//
// Python semantics
//===----------------------------------------------------------------------===//

bool Renderer::truthy(const Value &v) const {
  switch (v.kind) {
  case Value::Kind::Undefined:
    return false;
  case Value::Kind::Data:
    break;
  default:
    return true;
  }
  const Json &j = *v.data;
  switch (j.type()) {
  case Json::value_t::null:
    return false;
  case Json::value_t::boolean:
    return j.get<bool>();
  case Json::value_t::string:
    return !j.get_ref<const std::string &>().empty();
  case Json::value_t::number_float:
    return j.get<double>() != 0;
  case Json::value_t::number_integer:
  case Json::value_t::number_unsigned:
    return j.get<int64_t>() != 0;
  case Json::value_t::array:
    return v.shape == Shape::Generator || !j.empty();
  case Json::value_t::object:
    return !j.empty();
  default:
    return true;
  }
}

/// Python == on JSON values: numbers (and booleans, which are ints) compare
/// by value, dicts regardless of key order.
bool jsonEquals(const Json &a, const Json &b) {
  bool an = a.is_number() || a.is_boolean(),
       bn = b.is_number() || b.is_boolean();
  if (an || bn) {
    if (!an || !bn)
      return false;
    if (a.is_number_float() || b.is_number_float())
      return (a.is_boolean() ? a.get<bool>() : a.get<double>()) ==
             (b.is_boolean() ? b.get<bool>() : b.get<double>());
    // Integers (and booleans): compare signs, then magnitudes as uint64.
    auto negative = [](const Json &x) {
      return x.is_number_integer() && !x.is_number_unsigned() &&
             x.get<int64_t>() < 0;
    };
    auto magnitude = [](const Json &x) -> uint64_t {
      if (x.is_boolean())
        return x.get<bool>();
      if (x.is_number_unsigned())
        return x.get<uint64_t>();
      return static_cast<uint64_t>(x.get<int64_t>());
    };
    return negative(a) == negative(b) && magnitude(a) == magnitude(b);
  }
  if (a.type() != b.type())
    return false;
  switch (a.type()) {
  case Json::value_t::array:
    if (a.size() != b.size())
      return false;
    for (size_t k = 0; k < a.size(); ++k)
      if (!jsonEquals(a[k], b[k]))
        return false;
    return true;
  case Json::value_t::object:
    if (a.size() != b.size())
      return false;
    for (auto it = a.begin(); it != a.end(); ++it) {
      auto other = b.find(it.key());
      if (other == b.end() || !jsonEquals(it.value(), *other))
        return false;
    }
    return true;
  default:
    return a == b;
  }
}

bool Renderer::equals(const Value &a, const Value &b) const {
  if (a.kind != b.kind)
    return false;
  switch (a.kind) {
  case Value::Kind::Undefined:
    return true;
  case Value::Kind::Namespace:
    return a.ns == b.ns;
  case Value::Kind::Function:
    return a.fn == b.fn;
  case Value::Kind::Loop:
    return a.loop == b.loop;
  case Value::Kind::Data:
    break;
  }
  if (a.data->is_array() && b.data->is_array()) {
    bool aList = a.shape == Shape::List, bList = b.shape == Shape::List;
    bool aTuple = a.shape == Shape::Tuple, bTuple = b.shape == Shape::Tuple;
    if (!((aList && bList) || (aTuple && bTuple)))
      return a.data == b.data && a.shape == b.shape;
  }
  return jsonEquals(*a.data, *b.data);
}

int Renderer::compare(const Value &a, const Value &b, Pos p,
                      const char *op) const {
  if (a.isUndefined())
    failUndefined(p, a);
  if (b.isUndefined())
    failUndefined(p, b);
  auto mismatch = [&]() {
    fail(p, std::string("'") + op + "' not supported between instances of '" +
                typeName(a) + "' and '" + typeName(b) + "'");
  };
  if (!a.isData() || !b.isData())
    mismatch();
  const Json &x = *a.data, &y = *b.data;
  if (a.isNumber() && b.isNumber()) {
    if (x.is_number_float() || y.is_number_float()) {
      double u = needNumber(a, p, op), v = needNumber(b, p, op);
      return u < v ? -1 : u > v ? 1 : 0;
    }
    int64_t u = needInt(a, p, op), v = needInt(b, p, op);
    return u < v ? -1 : u > v ? 1 : 0;
  }
  if (x.is_string() && y.is_string()) {
    int c = x.get_ref<const std::string &>().compare(
        y.get_ref<const std::string &>());
    return c < 0 ? -1 : c > 0 ? 1 : 0;
  }
  if (x.is_array() && y.is_array() && a.shape == b.shape &&
      (a.shape == Shape::List || a.shape == Shape::Tuple)) {
    for (size_t k = 0; k < x.size() && k < y.size(); ++k) {
      Value u = Value::at(a, x[k]), v = Value::at(b, y[k]);
      if (!equals(u, v))
        return compare(u, v, p, op);
    }
    return x.size() < y.size() ? -1 : x.size() > y.size() ? 1 : 0;
  }
  mismatch();
  return 0;
}

bool Renderer::contains(const Value &container, const Value &item,
                        Pos p) const {
  if (container.isUndefined())
    return false;
  if (!container.isData())
    fail(p, "argument of type '" + typeName(container) + "' is not iterable");
  const Json &c = *container.data;
  if (c.is_string()) {
    if (!item.isString())
      fail(p, "'in <string>' requires string as left operand, not " +
                  typeName(item));
    return c.get_ref<const std::string &>().find(item.string()) !=
           std::string::npos;
  }
  if (c.is_array()) {
    for (const Value &e : iterate(container, p))
      if (equals(e, item))
        return true;
    return false;
  }
  if (c.is_object()) {
    if (item.isString())
      return c.contains(item.string());
    if (item.isArray() && item.shape != Shape::Tuple)
      fail(p, "unhashable type: '" + typeName(item) + "'");
    if (item.isObject())
      fail(p, "unhashable type: 'dict'");
    return false;
  }
  fail(p, "argument of type '" + typeName(container) + "' is not iterable");
}

std::string Renderer::needString(const Value &v, Pos p,
                                 const std::string &what) const {
  if (v.isUndefined())
    failUndefined(p, v);
  if (!v.isString())
    fail(p, what + " expects a string, not '" + typeName(v) + "'");
  return v.string();
}

int64_t Renderer::needInt(const Value &v, Pos p,
                          const std::string &what) const {
  if (v.isUndefined())
    failUndefined(p, v);
  if (!v.isInt())
    fail(p, what + " expects an integer, not '" + typeName(v) + "'");
  if (v.data->is_boolean())
    return v.data->get<bool>();
  if (v.data->is_number_unsigned() &&
      v.data->get<uint64_t>() >
          static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
    fail(p, "integer overflow (integers are 64-bit here)");
  return v.data->get<int64_t>();
}

double Renderer::needNumber(const Value &v, Pos p,
                            const std::string &what) const {
  if (v.isUndefined())
    failUndefined(p, v);
  if (!v.isNumber())
    fail(p, what + " expects a number, not '" + typeName(v) + "'");
  if (v.data->is_boolean())
    return v.data->get<bool>();
  return v.data->get<double>();
}

Value Renderer::arith(const std::string &op, const Value &a, const Value &b,
                      Pos p) const {
  if (a.isUndefined())
    failUndefined(p, a);
  if (b.isUndefined())
    failUndefined(p, b);
  if (!a.isData() || !b.isData())
    badOperands(op, a, b, p);
  if (a.isNumber() && b.isNumber()) {
    bool floats = a.data->is_number_float() || b.data->is_number_float();
    if (!floats && op != "/") {
      int64_t x = needInt(a, p, op), y = needInt(b, p, op), r = 0;
      bool overflow = false;
      if (op == "+")
        overflow = __builtin_add_overflow(x, y, &r);
      else if (op == "-")
        overflow = __builtin_sub_overflow(x, y, &r);
      else if (op == "*")
        overflow = __builtin_mul_overflow(x, y, &r);
      else if (op == "//" || op == "%") {
        if (y == 0)
          fail(p, "integer division or modulo by zero");
        if (x == std::numeric_limits<int64_t>::min() && y == -1)
          fail(p, "integer overflow (integers are 64-bit here)");
        int64_t q = x / y, m = x % y;
        if (m != 0 && ((m < 0) != (y < 0))) {
          --q;
          m += y;
        }
        r = op == "//" ? q : m;
      } else if (op == "**") {
        if (y < 0) {
          if (x == 0)
            fail(p, "0.0 cannot be raised to a negative power");
          return Value::of(
              Json(std::pow(static_cast<double>(x), static_cast<double>(y))));
        }
        r = 1;
        int64_t base = x;
        for (int64_t e = y; e > 0 && !overflow; e >>= 1) {
          if (e & 1)
            overflow = __builtin_mul_overflow(r, base, &r);
          if (e > 1 && !overflow)
            overflow = __builtin_mul_overflow(base, base, &base);
        }
      } else {
        badOperands(op, a, b, p);
      }
      if (overflow)
        fail(p, "integer overflow (integers are 64-bit here)");
      return Value::of(Json(r));
    }
    double x = needNumber(a, p, op), y = needNumber(b, p, op), r = 0;
    if (op == "+")
      r = x + y;
    else if (op == "-")
      r = x - y;
    else if (op == "*")
      r = x * y;
    else if (op == "/" || op == "//" || op == "%") {
      if (y == 0)
        fail(p, op == "/" ? "division by zero"
                          : "float division or modulo by zero");
      if (op == "/") {
        r = x / y;
      } else {
        // CPython's float_floor_div / float_rem.
        double mod = std::fmod(x, y);
        double div = (x - mod) / y;
        if (mod != 0) {
          if ((y < 0) != (mod < 0)) {
            mod += y;
            div -= 1.0;
          }
        } else {
          mod = std::copysign(0.0, y);
        }
        double floordiv;
        if (div != 0) {
          floordiv = std::floor(div);
          if (div - floordiv > 0.5)
            floordiv += 1.0;
        } else {
          floordiv = std::copysign(0.0, x / y);
        }
        r = op == "%" ? mod : floordiv;
      }
    } else if (op == "**") {
      if (x < 0 && y != std::floor(y))
        fail(p, "a negative number to a fractional power is complex, which "
                "is not supported here");
      if (x == 0 && y < 0)
        fail(p, "0.0 cannot be raised to a negative power");
      r = std::pow(x, y);
    } else {
      badOperands(op, a, b, p);
    }
    return Value::of(Json(r));
  }
  const Json &x = *a.data, &y = *b.data;
  if (op == "+") {
    if (x.is_string() && y.is_string())
      return Value::str(x.get_ref<const std::string &>() +
                        y.get_ref<const std::string &>());
    if (x.is_array() && y.is_array() && a.shape == b.shape &&
        (a.shape == Shape::List || a.shape == Shape::Tuple)) {
      Json r = x;
      for (const Json &e : y)
        r.push_back(e);
      return Value::of(std::move(r), a.shape);
    }
    if (x.is_string() || y.is_string())
      fail(p, x.is_string() ? "can only concatenate str (not \"" + typeName(b) +
                                  "\") to str"
                            : "unsupported operand type(s) for +: '" +
                                  typeName(a) + "' and 'str'");
    badOperands(op, a, b, p);
  }
  if (op == "*") {
    const Value &seq = a.isInt() ? b : a;
    const Value &count = a.isInt() ? a : b;
    if (count.isInt() &&
        (seq.isString() || (seq.isArray() && (seq.shape == Shape::List ||
                                              seq.shape == Shape::Tuple)))) {
      int64_t n = needInt(count, p, op);
      if (seq.isString()) {
        std::string r;
        for (int64_t k = 0; k < n; ++k)
          r += seq.string();
        return Value::str(std::move(r));
      }
      Json r = Json::array();
      for (int64_t k = 0; k < n; ++k)
        for (const Json &e : *seq.data)
          r.push_back(e);
      return Value::of(std::move(r), seq.shape);
    }
    badOperands(op, a, b, p);
  }
  if (op == "%" && x.is_string())
    return percentFormat(x.get_ref<const std::string &>(), b, p);
  badOperands(op, a, b, p);
}

/// Python's printf-style `str % args`.
Value Renderer::percentFormat(const std::string &fmt, const Value &args,
                              Pos p) const {
  std::vector<Value> list;
  const Value *mapping = nullptr;
  if (args.isArray() && args.shape == Shape::Tuple)
    list = iterate(args, p);
  else if (args.isObject())
    mapping = &args;
  else
    list.push_back(args);
  size_t next = 0;
  std::string out;
  for (size_t i = 0; i < fmt.size(); ++i) {
    if (fmt[i] != '%') {
      out += fmt[i];
      continue;
    }
    if (++i >= fmt.size())
      fail(p, "incomplete format");
    Value arg;
    bool fromMapping = false;
    if (fmt[i] == '(') {
      size_t close = fmt.find(')', i);
      if (!mapping || close == std::string::npos)
        fail(p, "format requires a mapping");
      arg = getItem(*mapping, Value::str(fmt.substr(i + 1, close - i - 1)), p);
      if (arg.isUndefined())
        fail(p, "KeyError: '" + fmt.substr(i + 1, close - i - 1) + "'");
      fromMapping = true;
      i = close + 1;
    }
    std::string flags;
    while (i < fmt.size() && std::strchr("-+ #0", fmt[i]))
      flags += fmt[i++];
    std::string width, precision;
    while (i < fmt.size() && std::isdigit(static_cast<unsigned char>(fmt[i])))
      width += fmt[i++];
    if (i < fmt.size() && fmt[i] == '*')
      refuse(p, "construct '* width in % formatting'");
    bool hasPrecision = false;
    if (i < fmt.size() && fmt[i] == '.') {
      hasPrecision = true;
      ++i;
      while (i < fmt.size() && std::isdigit(static_cast<unsigned char>(fmt[i])))
        precision += fmt[i++];
    }
    while (i < fmt.size() && std::strchr("hlL", fmt[i]))
      ++i;
    if (i >= fmt.size())
      fail(p, "incomplete format");
    char conv = fmt[i];
    if (conv == '%') {
      out += '%';
      continue;
    }
    if (!fromMapping) {
      if (mapping) {
        arg = *mapping;
      } else {
        if (next >= list.size())
          fail(p, "not enough arguments for format string");
        arg = list[next++];
      }
    }
    std::string body;
    switch (conv) {
    case 's':
    case 'r':
    case 'a': {
      if (conv == 's')
        body = str(arg);
      else
        appendValueRepr(body, arg);
      if (hasPrecision) {
        std::u32string u = toU32(body);
        size_t n = precision.empty() ? 0 : std::stoul(precision);
        if (u.size() > n)
          body = fromU32(std::u32string_view(u).substr(0, n));
      }
      break;
    }
    case 'd':
    case 'i':
    case 'u':
    case 'x':
    case 'X':
    case 'o': {
      if (arg.isUndefined())
        failUndefined(p, arg);
      if (!arg.isNumber())
        fail(p, std::string("%") + conv +
                    " format: a real number is required, not " + typeName(arg));
      long long v = arg.data->is_number_float()
                        ? static_cast<long long>(arg.data->get<double>())
                        : needInt(arg, p, "%d");
      // Python pads the digits to the precision, then the whole to the
      // width (with zeros after the sign for "0", which C ignores when a
      // precision is given), and writes octal's "#" prefix as 0o.
      bool alt = flags.find('#') != std::string::npos;
      unsigned long long mag = v < 0 ? 0ull - static_cast<unsigned long long>(v)
                                     : static_cast<unsigned long long>(v);
      char buf[64];
      std::snprintf(buf, sizeof buf,
                    conv == 'x'   ? "%llx"
                    : conv == 'X' ? "%llX"
                    : conv == 'o' ? "%llo"
                                  : "%llu",
                    mag);
      std::string digits = buf;
      size_t prec = hasPrecision && !precision.empty() ? std::stoul(precision)
                    : hasPrecision                     ? 0
                                                       : 1;
      if (digits.size() < prec)
        digits.insert(0, prec - digits.size(), '0');
      std::string sign = v < 0                                  ? "-"
                         : flags.find('+') != std::string::npos ? "+"
                         : flags.find(' ') != std::string::npos ? " "
                                                                : "";
      std::string prefix = !alt          ? ""
                           : conv == 'x' ? "0x"
                           : conv == 'X' ? "0X"
                           : conv == 'o' ? "0o"
                                         : "";
      size_t w = width.empty() ? 0 : std::stoul(width);
      size_t len = sign.size() + prefix.size() + digits.size();
      if (len < w && flags.find('-') == std::string::npos &&
          flags.find('0') != std::string::npos)
        digits.insert(0, w - len, '0');
      body = sign + prefix + digits;
      if (body.size() < w)
        body = flags.find('-') != std::string::npos
                   ? body + std::string(w - body.size(), ' ')
                   : std::string(w - body.size(), ' ') + body;
      out += body;
      continue;
    }
    case 'e':
    case 'E':
    case 'f':
    case 'F':
    case 'g':
    case 'G': {
      double v = needNumber(arg, p, std::string("%") + conv);
      std::string spec = "%" + flags + width;
      if (hasPrecision)
        spec += "." + precision;
      spec += conv;
      char buf[512];
      std::snprintf(buf, sizeof buf, spec.c_str(), v);
      out += buf;
      continue;
    }
    case 'c': {
      if (arg.isString() && codePointCount(arg.string()) == 1)
        body = arg.string();
      else
        appendUtf8(body, static_cast<char32_t>(needInt(arg, p, "%c")));
      break;
    }
    default:
      fail(p, std::string("unsupported format character '") + conv + "'");
    }
    size_t w = width.empty() ? 0 : std::stoul(width);
    size_t len = codePointCount(body);
    if (len < w) {
      if (flags.find('-') != std::string::npos)
        body += std::string(w - len, ' ');
      else
        body = std::string(w - len, ' ') + body;
    }
    out += body;
  }
  if (!mapping && next < list.size())
    fail(p, "not all arguments converted during string formatting");
  return Value::str(std::move(out));
}

std::vector<Value> Renderer::iterate(const Value &v, Pos p) const {
  std::vector<Value> out;
  switch (v.kind) {
  case Value::Kind::Undefined:
    return out;
  case Value::Kind::Data:
    break;
  default:
    fail(p, "'" + typeName(v) + "' object is not iterable");
  }
  const Json &j = *v.data;
  if (j.is_array()) {
    out.reserve(j.size());
    for (const Json &e : j) {
      out.push_back(Value::at(v, e));
      if (e.is_array() && (v.shape == Shape::Items || v.tupleElems))
        out.back().shape = Shape::Tuple;
    }
  } else if (j.is_object()) {
    for (auto it = j.begin(); it != j.end(); ++it)
      out.push_back(Value::str(it.key()));
  } else if (j.is_string()) {
    const std::string &s = j.get_ref<const std::string &>();
    for (size_t i = 0; i < s.size();) {
      size_t start = i;
      nextCodePoint(s, i);
      out.push_back(Value::str(s.substr(start, i - start)));
    }
  } else {
    fail(p, "'" + typeName(v) + "' object is not iterable");
  }
  return out;
}

size_t Renderer::length(const Value &v, Pos p) const {
  if (v.isUndefined())
    return 0;
  if (v.isData()) {
    const Json &j = *v.data;
    if (j.is_string())
      return codePointCount(j.get_ref<const std::string &>());
    if (j.is_object() || (j.is_array() && v.shape != Shape::Generator))
      return j.size();
  }
  if (v.kind == Value::Kind::Loop)
    return v.loop->items.size();
  fail(p, "object of type '" + typeName(v) + "' has no len()");
}

Json Renderer::toJson(const Value &v, Pos p) const {
  if (v.isData())
    return *v.data;
  if (v.isUndefined())
    fail(p, "an undefined value (" + v.hint +
                ") cannot be stored in a list or dict here");
  refuse(p, "construct 'a " + typeName(v) + " inside a list or dict'");
}

Value Renderer::listOf(const std::vector<Value> &items, Shape shape,
                       Pos p) const {
  Json arr = Json::array();
  bool tuples = !items.empty();
  for (const Value &v : items) {
    arr.push_back(toJson(v, p));
    tuples = tuples && v.isArray() && v.shape == Shape::Tuple;
  }
  Value out = Value::of(std::move(arr), shape);
  out.tupleElems = tuples;
  return out;
}

/// The Python index `key` into a sequence of length n, or -1 if out of range.
long normalizeIndex(int64_t key, size_t n) {
  if (key < 0)
    key += static_cast<int64_t>(n);
  if (key < 0 || key >= static_cast<int64_t>(n))
    return -1;
  return static_cast<long>(key);
}

bool isAscii(const std::string &s) {
  for (char c : s)
    if (static_cast<unsigned char>(c) >= 0x80)
      return false;
  return true;
}

template <size_t N>
bool inList(const char *const (&list)[N], const std::string &name) {
  for (const char *s : list)
    if (name == s)
      return true;
  return false;
}

Value Renderer::getAttr(const Value &obj, const std::string &name,
                        Pos p) const {
  // Python's special attributes exist on every object, and the sandbox
  // answers them with an undefined value.
  if (name.size() > 4 && name.compare(0, 2, "__") == 0 &&
      name.compare(name.size() - 2, 2, "__") == 0)
    return Value::undefined("access to attribute '" + name + "' of '" +
                            typeName(obj) + "' object is unsafe");
  switch (obj.kind) {
  case Value::Kind::Undefined:
    failUndefined(p, obj);
  case Value::Kind::Namespace:
    if (Value *v = obj.ns->find(name))
      return *v;
    return Value::undefined("'Namespace object' has no attribute '" + name +
                            "'");
  case Value::Kind::Loop:
    return loopAttr(obj, name);
  case Value::Kind::Function:
    return Value::undefined("'function object' has no attribute '" + name +
                            "'");
  case Value::Kind::Data:
    break;
  }
  const Json &j = *obj.data;
  if (j.is_string() && inList(kStrMethods, name))
    return methodValue(obj, name);
  if (j.is_object()) {
    if (inList(kDictMethods, name))
      return methodValue(obj, name, inList(kDictMutators, name));
    auto it = j.find(name);
    if (it != j.end())
      return Value::at(obj, *it);
  }
  if (j.is_array()) {
    if (obj.shape == Shape::List && inList(kListMethods, name))
      return methodValue(obj, name, inList(kListMutators, name));
    if (obj.shape == Shape::Tuple && (name == "count" || name == "index"))
      return methodValue(obj, name);
  }
  return Value::undefined("'" + objectTypeRepr(obj) + "' has no attribute '" +
                          name + "'");
}

Value Renderer::getItem(const Value &obj, const Value &key, Pos p) const {
  auto noElement = [&]() {
    std::string k;
    appendValueRepr(k, key);
    return Value::undefined(objectTypeRepr(obj) + " has no element " + k);
  };
  switch (obj.kind) {
  case Value::Kind::Undefined:
    failUndefined(p, obj);
  case Value::Kind::Data:
    break;
  default:
    if (key.isString())
      return getAttr(obj, key.string(), p);
    return noElement();
  }
  const Json &j = *obj.data;
  if (j.is_object()) {
    if (key.isString()) {
      auto it = j.find(key.string());
      if (it != j.end())
        return Value::at(obj, *it);
      return getAttr(obj, key.string(), p);
    }
    return noElement();
  }
  bool indexable =
      j.is_string() ||
      (j.is_array() && (obj.shape == Shape::List || obj.shape == Shape::Tuple));
  if (indexable && key.isInt()) {
    int64_t k = needInt(key, p, "an index");
    if (j.is_array()) {
      long i = normalizeIndex(k, j.size());
      if (i < 0)
        return noElement();
      return Value::at(obj, j[i]);
    }
    const std::string &s = j.get_ref<const std::string &>();
    if (isAscii(s)) {
      long i = normalizeIndex(k, s.size());
      if (i < 0)
        return noElement();
      return Value::str(s.substr(i, 1));
    }
    std::u32string u = toU32(s);
    long i = normalizeIndex(k, u.size());
    if (i < 0)
      return noElement();
    return Value::str(fromU32(std::u32string_view(u).substr(i, 1)));
  }
  if (key.isString())
    return getAttr(obj, key.string(), p);
  return noElement();
}

Value Renderer::slice(const Value &obj, const Value *start, const Value *stop,
                      const Value *step, Pos p) const {
  if (obj.isUndefined())
    failUndefined(p, obj);
  auto bound = [&](const Value *v) -> std::optional<int64_t> {
    if (!v || v->isNone())
      return std::nullopt;
    if (!v->isInt())
      fail(p, "slice indices must be integers or None");
    return needInt(*v, p, "a slice index");
  };
  std::optional<int64_t> a = bound(start), b = bound(stop), c = bound(step);
  int64_t st = c.value_or(1);
  if (st == 0)
    fail(p, "slice step cannot be zero");
  bool isStr = obj.isString();
  bool isSeq =
      obj.isArray() && (obj.shape == Shape::List || obj.shape == Shape::Tuple);
  if (!isStr && !isSeq)
    return Value::undefined("'" + typeName(obj) +
                            "' object is not subscriptable");
  std::u32string u;
  int64_t n;
  if (isStr) {
    u = toU32(obj.string());
    n = static_cast<int64_t>(u.size());
  } else {
    n = static_cast<int64_t>(obj.data->size());
  }
  auto clamp = [&](std::optional<int64_t> v, int64_t dflt, int64_t lo,
                   int64_t hi) {
    if (!v)
      return dflt;
    int64_t x = *v < 0 ? *v + n : *v;
    return std::max(lo, std::min(hi, x));
  };
  std::vector<int64_t> idx;
  if (st > 0) {
    int64_t s = clamp(a, 0, 0, n), e = clamp(b, n, 0, n);
    for (int64_t i = s; i < e; i += st)
      idx.push_back(i);
  } else {
    int64_t s = clamp(a, n - 1, -1, n - 1), e = clamp(b, -1, -1, n - 1);
    for (int64_t i = s; i > e; i += st)
      idx.push_back(i);
  }
  if (isStr) {
    std::string r;
    for (int64_t i : idx)
      appendUtf8(r, u[i]);
    return Value::str(std::move(r));
  }
  Json r = Json::array();
  for (int64_t i : idx)
    r.push_back((*obj.data)[i]);
  return Value::of(std::move(r), obj.shape);
}

Value Renderer::loopAttr(const Value &loop, const std::string &name) const {
  const LoopState &l = *loop.loop;
  int64_t i = static_cast<int64_t>(l.index),
          n = static_cast<int64_t>(l.items.size());
  if (name == "index")
    return Value::of(Json(i + 1));
  if (name == "index0")
    return Value::of(Json(i));
  if (name == "revindex")
    return Value::of(Json(n - i));
  if (name == "revindex0")
    return Value::of(Json(n - i - 1));
  if (name == "first")
    return Value::boolean(i == 0);
  if (name == "last")
    return Value::boolean(i == n - 1);
  if (name == "length")
    return Value::of(Json(n));
  if (name == "depth")
    return Value::of(Json(1));
  if (name == "depth0")
    return Value::of(Json(0));
  if (name == "previtem")
    return i > 0 ? l.items[i - 1]
                 : Value::undefined("there is no previous item");
  if (name == "nextitem")
    return i + 1 < n ? l.items[i + 1]
                     : Value::undefined("there is no next item");
  if (name == "cycle" || name == "changed")
    return methodValue(loop, name);
  return Value::undefined("'LoopContext object' has no attribute '" + name +
                          "'");
}

//===----------------------------------------------------------------------===//
// Calls: macros, globals, methods
//===----------------------------------------------------------------------===//

Value Renderer::call(const Value &fn, const Args &a, Pos p) {
  if (fn.isUndefined())
    failUndefined(p, fn);
  if (fn.kind != Value::Kind::Function)
    fail(p, "'" + typeName(fn) + "' object is not callable");
  const Function &f = *fn.fn;
  switch (f.kind) {
  case Function::Kind::Macro:
    return callMacro(f, a, p);
  case Function::Kind::Global:
    return callGlobal(f.name, a, p);
  case Function::Kind::Method:
    return callMethod(f, a, p);
  }
  return Value::undefined("");
}

Value Renderer::callMacro(const Function &f, const Args &a, Pos p) {
  const MacroStmt &m = *f.macro;
  if (callDepth_ >= 100)
    fail(p, "macro calls nested deeper than 100 (recursion?)");
  if (a.pos.size() > m.params.size())
    fail(p, "macro '" + m.name + "' takes not more than " +
                std::to_string(m.params.size()) + " argument(s)");
  FramePtr frame = childOf(f.closure);
  std::vector<bool> bound(m.params.size(), false);
  for (size_t k = 0; k < a.pos.size(); ++k) {
    frame->vars[m.params[k]] = a.pos[k];
    bound[k] = true;
  }
  for (const auto &[key, val] : a.kw) {
    auto it = std::find(m.params.begin(), m.params.end(), key);
    if (it == m.params.end())
      fail(p, "macro '" + m.name + "' takes no keyword argument '" + key + "'");
    size_t k = it - m.params.begin();
    if (bound[k])
      fail(p, "macro '" + m.name + "' got multiple values for argument '" +
                  key + "'");
    frame->vars[key] = val;
    bound[k] = true;
  }
  for (size_t k = 0; k < m.params.size(); ++k) {
    if (bound[k])
      continue;
    frame->vars[m.params[k]] =
        m.defaults[k] ? eval(*m.defaults[k], frame)
                      : Value::undefined("parameter '" + m.params[k] +
                                         "' was not provided");
  }
  std::string buf;
  std::string *saved = out_;
  out_ = &buf;
  ++callDepth_;
  exec(m.body, frame);
  --callDepth_;
  out_ = saved;
  return Value::str(std::move(buf));
}

Value Renderer::callGlobal(const std::string &name, const Args &a, Pos p) {
  if (name == "raise_exception") {
    auto v = bindArgs(name, a, {"message"}, 1, p);
    throw Error(KILN_ERROR_INVALID_ARGUMENT,
                "chat template '" + prog_.name +
                    "' raised an exception at line " + std::to_string(p.line) +
                    " col " + std::to_string(p.col) + ": " + str(*v[0]));
  }
  if (name == "strftime_now") {
    auto v = bindArgs(name, a, {"format"}, 1, p);
    std::string fmt = needString(*v[0], p, "strftime_now()");
    // datetime.now().strftime: local time; %f (microseconds) and, for a
    // naive datetime, empty %z and %Z are Python's own.
    auto now = std::chrono::system_clock::now();
    std::time_t t = std::chrono::system_clock::to_time_t(now);
    long micros =
        static_cast<long>(std::chrono::duration_cast<std::chrono::microseconds>(
                              now.time_since_epoch())
                              .count() %
                          1000000);
    std::tm tm{};
    localtime_r(&t, &tm);
    std::string cfmt;
    for (size_t i = 0; i < fmt.size(); ++i) {
      if (fmt[i] == '%' && i + 1 < fmt.size()) {
        char c = fmt[i + 1];
        ++i;
        if (c == 'f') {
          char buf[16];
          std::snprintf(buf, sizeof buf, "%06ld", micros);
          cfmt += buf;
        } else if (c != 'z' && c != 'Z') {
          cfmt += '%';
          cfmt += c;
        }
      } else {
        cfmt += fmt[i];
      }
    }
    if (cfmt.empty())
      return Value::str("");
    std::vector<char> buf(256 + cfmt.size() * 8);
    size_t n = std::strftime(buf.data(), buf.size(), cfmt.c_str(), &tm);
    return Value::str(std::string(buf.data(), n));
  }
  if (name == "namespace" || name == "dict") {
    if (a.pos.size() > 1)
      fail(p, name + "() takes at most 1 positional argument");
    std::vector<std::pair<std::string, Value>> attrs;
    if (!a.pos.empty()) {
      const Value &init = a.pos[0];
      if (init.isObject()) {
        for (auto it = init.data->begin(); it != init.data->end(); ++it)
          attrs.emplace_back(it.key(), Value::at(init, it.value()));
      } else {
        for (const Value &pair : iterate(init, p)) {
          std::vector<Value> kv = iterate(pair, p);
          if (kv.size() != 2)
            fail(p, name + "() sequence elements must be pairs");
          attrs.emplace_back(needString(kv[0], p, name + "() key"), kv[1]);
        }
      }
    }
    for (const auto &[k, v] : a.kw)
      attrs.emplace_back(k, v);
    if (name == "namespace") {
      Value v;
      v.kind = Value::Kind::Namespace;
      v.ns = std::make_shared<NamespaceObject>();
      namespaces_.push_back(v.ns);
      for (auto &[k, val] : attrs) {
        if (!k.empty() && k[0] == '_')
          fail(p, "namespace attributes cannot start with '_' ('" + k + "')");
        if (Value *slot = v.ns->find(k))
          *slot = val;
        else
          v.ns->attrs.emplace_back(k, val);
      }
      return v;
    }
    Json obj = Json::object();
    for (const auto &[k, val] : attrs)
      obj[k] = toJson(val, p);
    return Value::of(std::move(obj));
  }
  if (name == "range") {
    if (!a.kw.empty() || a.pos.empty() || a.pos.size() > 3)
      fail(p, "range() takes 1 to 3 positional arguments");
    int64_t start = 0, stop, step = 1;
    if (a.pos.size() == 1) {
      stop = needInt(a.pos[0], p, "range()");
    } else {
      start = needInt(a.pos[0], p, "range()");
      stop = needInt(a.pos[1], p, "range()");
      if (a.pos.size() == 3)
        step = needInt(a.pos[2], p, "range()");
    }
    if (step == 0)
      fail(p, "range() arg 3 must not be zero");
    Json r = Json::array();
    for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
      if (r.size() >= 100000) // jinja2.sandbox.MAX_RANGE
        fail(p, "range too big, maximum size for range is 100000");
      r.push_back(i);
    }
    return Value::of(std::move(r));
  }
  refuse(p, "global '" + name + "()'");
}

Value Renderer::callMethod(const Function &f, const Args &a, Pos p) {
  const Value &self = f.self;
  if (f.unsafe)
    fail(p, "access to attribute '" + f.name + "' of '" + typeName(self) +
                "' object is unsafe (the sandbox forbids changing values)");
  if (self.kind == Value::Kind::Loop) {
    if (f.name == "cycle") {
      if (a.pos.empty())
        fail(p, "no items for cycling given");
      return a.pos[self.loop->index % a.pos.size()];
    }
    // changed(*values): whether the values differ from the last call's.
    Json now = Json::array();
    for (const Value &v : a.pos)
      now.push_back(toJson(v, p));
    bool changed =
        !self.loop->hasLast || !jsonEquals(now, self.loop->lastChanged);
    self.loop->lastChanged = std::move(now);
    self.loop->hasLast = true;
    return Value::boolean(changed);
  }
  const Json &j = *self.data;
  const std::string what = typeName(self) + "." + f.name;
  if (j.is_string())
    return callStrMethod(self, f.name, a, p);
  if (j.is_object()) {
    if (f.name == "get") {
      auto v = bindArgs(what, a, {"key", "default"}, 1, p);
      if (v[0]->isString()) {
        auto it = j.find(v[0]->string());
        if (it != j.end())
          return Value::at(self, *it);
      }
      return v[1] ? *v[1] : Value::none();
    }
    bindArgs(what, a, {}, 0, p);
    if (f.name == "copy")
      return self;
    Json r = Json::array();
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (f.name == "items")
        r.push_back(Json::array({it.key(), it.value()}));
      else if (f.name == "keys")
        r.push_back(it.key());
      else if (f.name == "values")
        r.push_back(it.value());
      else
        refuse(p, "method '" + what + "()'");
    }
    return Value::of(std::move(r), f.name == "items"  ? Shape::Items
                                   : f.name == "keys" ? Shape::Keys
                                                      : Shape::Values);
  }
  if (j.is_array()) {
    if (f.name == "copy") {
      bindArgs(what, a, {}, 0, p);
      return Value::of(j);
    }
    auto v = bindArgs(what, a, {"value"}, 1, p);
    size_t count = 0;
    for (size_t k = 0; k < j.size(); ++k) {
      if (equals(Value::at(self, j[k]), *v[0])) {
        if (f.name == "index")
          return Value::of(Json(static_cast<int64_t>(k)));
        ++count;
      }
    }
    if (f.name == "index")
      fail(p, valueStr(*v[0]) + " is not in list");
    return Value::of(Json(static_cast<int64_t>(count)));
  }
  refuse(p, "method '" + what + "()'");
}

Value Renderer::callStrMethod(const Value &self, const std::string &name,
                              const Args &a, Pos p) {
  const std::string &s = self.string();
  const std::string what = "str." + name;
  auto strList = [](const std::vector<std::string> &parts) {
    Json r = Json::array();
    for (const auto &part : parts)
      r.push_back(part);
    return Value::of(std::move(r));
  };
  auto optStr = [&](const Value *v) -> std::optional<std::string> {
    if (!v || v->isNone())
      return std::nullopt;
    return needString(*v, p, what + "()");
  };
  auto optInt = [&](const Value *v, int64_t dflt) {
    return !v || v->isNone() ? dflt : needInt(*v, p, what + "()");
  };
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    auto v = bindArgs(what, a, {"chars"}, 0, p);
    std::optional<std::string> chars = optStr(v[0]);
    std::u32string set = chars ? toU32(*chars) : std::u32string();
    return Value::str(
        pyStrip(s, chars ? &set : nullptr, name != "rstrip", name != "lstrip"));
  }
  if (name == "split" || name == "rsplit") {
    auto v = bindArgs(what, a, {"sep", "maxsplit"}, 0, p);
    std::optional<std::string> sep = optStr(v[0]);
    long maxsplit = static_cast<long>(optInt(v[1], -1));
    if (sep && sep->empty())
      fail(p, "empty separator");
    if (!sep) {
      if (name == "split" || maxsplit < 0)
        return strList(pySplitWhitespace(s, maxsplit));
      // rsplit(None, n): split from the right, leading text kept whole.
      std::u32string u = toU32(s);
      std::vector<std::string> parts;
      long e = static_cast<long>(u.size());
      while (e > 0) {
        while (e > 0 && isPySpace(u[e - 1]))
          --e;
        if (e == 0)
          break;
        if (static_cast<long>(parts.size()) == maxsplit) {
          parts.push_back(fromU32(std::u32string_view(u).substr(0, e)));
          break;
        }
        long b = e;
        while (b > 0 && !isPySpace(u[b - 1]))
          --b;
        parts.push_back(fromU32(std::u32string_view(u).substr(b, e - b)));
        e = b;
      }
      std::reverse(parts.begin(), parts.end());
      return strList(parts);
    }
    return strList(name == "split" ? pySplit(s, *sep, maxsplit)
                                   : pyRSplit(s, *sep, maxsplit));
  }
  if (name == "splitlines") {
    auto v = bindArgs(what, a, {"keepends"}, 0, p);
    bool keep = v[0] && truthy(*v[0]);
    std::u32string u = toU32(s);
    std::vector<std::string> parts;
    size_t start = 0;
    for (size_t i = 0; i < u.size(); ++i) {
      char32_t c = u[i];
      bool brk = c == '\n' || c == '\r' || c == 0x0B || c == 0x0C ||
                 (c >= 0x1C && c <= 0x1E) || c == 0x85 || c == 0x2028 ||
                 c == 0x2029;
      if (!brk)
        continue;
      size_t end = i;
      if (c == '\r' && i + 1 < u.size() && u[i + 1] == '\n')
        ++i;
      parts.push_back(fromU32(
          std::u32string_view(u).substr(start, (keep ? i + 1 : end) - start)));
      start = i + 1;
    }
    if (start < u.size())
      parts.push_back(fromU32(std::u32string_view(u).substr(start)));
    return strList(parts);
  }
  if (name == "startswith" || name == "endswith") {
    auto v = bindArgs(what, a, {"prefix", "start", "end"}, 1, p);
    if (v[1] || v[2])
      refuse(p, "construct '" + what + "() with start/end'");
    std::vector<std::string> options;
    if (v[0]->isArray() && v[0]->shape == Shape::Tuple) {
      for (const Value &o : iterate(*v[0], p))
        options.push_back(needString(o, p, what + "()"));
    } else {
      options.push_back(needString(*v[0], p, what + "()"));
    }
    for (const auto &o : options) {
      bool hit = name == "startswith"
                     ? s.compare(0, o.size(), o) == 0
                     : s.size() >= o.size() &&
                           s.compare(s.size() - o.size(), o.size(), o) == 0;
      if (hit)
        return Value::boolean(true);
    }
    return Value::boolean(false);
  }
  if (name == "replace") {
    auto v = bindArgs(what, a, {"old", "new", "count"}, 2, p);
    return Value::str(pyReplace(s, needString(*v[0], p, what + "()"),
                                needString(*v[1], p, what + "()"),
                                static_cast<long>(optInt(v[2], -1))));
  }
  if (name == "upper" || name == "lower" || name == "title" ||
      name == "capitalize" || name == "casefold" || name == "swapcase") {
    bindArgs(what, a, {}, 0, p);
    if (name == "upper")
      return Value::str(pyUpper(s));
    if (name == "lower" || name == "casefold")
      return Value::str(pyLower(s));
    if (name == "title")
      return Value::str(pyTitle(s));
    if (name == "capitalize")
      return Value::str(pyCapitalize(s));
    std::string r;
    for (size_t i = 0; i < s.size();) {
      char32_t c = nextCodePoint(s, i);
      if (isUpperCp(c))
        appendUtf8(r, lowerOf(c));
      else
        appendUpper(r, c);
    }
    return Value::str(std::move(r));
  }
  if (name == "find" || name == "rfind" || name == "index" ||
      name == "rindex" || name == "count") {
    auto v = bindArgs(what, a, {"sub", "start", "end"}, 1, p);
    if (v[1] || v[2])
      refuse(p, "construct '" + what + "() with start/end'");
    std::string sub = needString(*v[0], p, what + "()");
    if (name == "count") {
      if (sub.empty())
        return Value::of(Json(static_cast<int64_t>(codePointCount(s) + 1)));
      int64_t n = 0;
      for (size_t k = s.find(sub); k != std::string::npos;
           k = s.find(sub, k + sub.size()))
        ++n;
      return Value::of(Json(n));
    }
    size_t k = name[0] == 'r' ? s.rfind(sub) : s.find(sub);
    if (k == std::string::npos) {
      if (name == "index" || name == "rindex")
        fail(p, "substring not found");
      return Value::of(Json(-1));
    }
    return Value::of(Json(static_cast<int64_t>(
        codePointCount(std::string_view(s).substr(0, k)))));
  }
  if (name == "join") {
    auto v = bindArgs(what, a, {"iterable"}, 1, p);
    std::string r;
    size_t k = 0;
    for (const Value &item : iterate(*v[0], p)) {
      if (!item.isString())
        fail(p, "sequence item " + std::to_string(k) +
                    ": expected str instance, " + typeName(item) + " found");
      if (k++)
        r += s;
      r += item.string();
    }
    return Value::str(std::move(r));
  }
  if (name.compare(0, 2, "is") == 0 && name != "isidentifier" &&
      name != "isprintable" && name != "istitle") {
    bindArgs(what, a, {}, 0, p);
    std::u32string u = toU32(s);
    if (name == "islower" || name == "isupper") {
      bool cased = false;
      for (char32_t c : u) {
        if (name == "islower" ? isUpperCp(c) : isLowerCp(c))
          return Value::boolean(false);
        cased = cased || isCased(c);
      }
      return Value::boolean(cased);
    }
    if (u.empty())
      return Value::boolean(name == "isascii");
    for (char32_t c : u) {
      bool ok = name == "isspace"   ? isPySpace(c)
                : name == "isalpha" ? isAlphaCp(c)
                : name == "isalnum" ? isAlphaCp(c) || isDigitCp(c)
                : name == "isascii" ? c < 0x80
                                    : isDigitCp(c); // isdigit/decimal/numeric
      if (!ok)
        return Value::boolean(false);
    }
    return Value::boolean(true);
  }
  if (name == "removeprefix" || name == "removesuffix") {
    auto v = bindArgs(what, a, {"affix"}, 1, p);
    std::string x = needString(*v[0], p, what + "()");
    if (name == "removeprefix" && s.compare(0, x.size(), x) == 0)
      return Value::str(s.substr(x.size()));
    if (name == "removesuffix" && !x.empty() && s.size() >= x.size() &&
        s.compare(s.size() - x.size(), x.size(), x) == 0)
      return Value::str(s.substr(0, s.size() - x.size()));
    return self;
  }
  if (name == "center" || name == "ljust" || name == "rjust" ||
      name == "zfill") {
    auto v = name == "zfill" ? bindArgs(what, a, {"width"}, 1, p)
                             : bindArgs(what, a, {"width", "fillchar"}, 1, p);
    int64_t width = needInt(*v[0], p, what + "()");
    std::string fill = " ";
    if (name != "zfill" && v[1]) {
      fill = needString(*v[1], p, what + "()");
      if (codePointCount(fill) != 1)
        fail(p, "the fill character must be exactly one character long");
    }
    int64_t len = static_cast<int64_t>(codePointCount(s));
    if (width <= len)
      return self;
    int64_t marg = width - len, left = 0;
    if (name == "center")
      left = marg / 2 + (marg & width & 1);
    else if (name == "rjust")
      left = marg;
    if (name == "zfill") {
      size_t signLen = !s.empty() && (s[0] == '+' || s[0] == '-');
      return Value::str(s.substr(0, signLen) + std::string(marg, '0') +
                        s.substr(signLen));
    }
    std::string r;
    for (int64_t k = 0; k < left; ++k)
      r += fill;
    r += s;
    for (int64_t k = left; k < marg; ++k)
      r += fill;
    return Value::str(std::move(r));
  }
  if (name == "partition" || name == "rpartition") {
    auto v = bindArgs(what, a, {"sep"}, 1, p);
    std::string sep = needString(*v[0], p, what + "()");
    if (sep.empty())
      fail(p, "empty separator");
    size_t k = name == "partition" ? s.find(sep) : s.rfind(sep);
    Json r;
    if (k == std::string::npos)
      r = name == "partition" ? Json::array({s, "", ""})
                              : Json::array({"", "", s});
    else
      r = Json::array({s.substr(0, k), sep, s.substr(k + sep.size())});
    return Value::of(std::move(r), Shape::Tuple);
  }
  refuse(p, "method '" + what + "()'");
}

//===----------------------------------------------------------------------===//
// Filters and tests
//===----------------------------------------------------------------------===//

/// Python float(str): surrounding whitespace, underscores between digits,
/// inf/infinity/nan in any case.
bool parsePyFloat(const std::string &text, double &out) {
  std::string s = pyStrip(text, nullptr, true, true);
  std::string lower = pyLower(s);
  size_t signLen = !lower.empty() && (lower[0] == '+' || lower[0] == '-');
  std::string body = lower.substr(signLen);
  if (body == "inf" || body == "infinity" || body == "nan") {
    out =
        body == "nan" ? std::nan("") : std::numeric_limits<double>::infinity();
    if (lower[0] == '-')
      out = -out;
    return true;
  }
  std::string clean;
  bool digits = false, dot = false, exp = false;
  for (size_t i = 0; i < body.size(); ++i) {
    char c = body[i];
    if (std::isdigit(static_cast<unsigned char>(c))) {
      digits = true;
      clean += c;
    } else if (c == '_' && i > 0 && i + 1 < body.size() &&
               std::isdigit(static_cast<unsigned char>(body[i - 1])) &&
               std::isdigit(static_cast<unsigned char>(body[i + 1]))) {
      continue;
    } else if (c == '.' && !dot && !exp) {
      dot = true;
      clean += c;
    } else if (c == 'e' && digits && !exp) {
      exp = true;
      clean += c;
      if (i + 1 < body.size() && (body[i + 1] == '+' || body[i + 1] == '-'))
        clean += body[++i];
      if (i + 1 >= body.size() ||
          !std::isdigit(static_cast<unsigned char>(body[i + 1])))
        return false;
    } else {
      return false;
    }
  }
  if (!digits)
    return false;
  out = std::strtod(clean.c_str(), nullptr);
  if (lower[0] == '-')
    out = -out;
  return true;
}

/// Python int(str, base) for bases 2, 8, 10 and 16.
bool parsePyInt(const std::string &text, int base, int64_t &out) {
  std::string s = pyStrip(text, nullptr, true, true);
  bool negative = !s.empty() && s[0] == '-';
  size_t i = !s.empty() && (s[0] == '+' || s[0] == '-');
  if (base != 10 && i + 1 < s.size() && s[i] == '0') {
    char x = static_cast<char>(std::tolower(s[i + 1]));
    if ((base == 16 && x == 'x') || (base == 8 && x == 'o') ||
        (base == 2 && x == 'b')) {
      i += 2;
      if (i < s.size() && s[i] == '_')
        ++i;
    }
  }
  std::string digits;
  for (; i < s.size(); ++i) {
    char c = s[i];
    if (c == '_' && !digits.empty() && i + 1 < s.size() && s[i + 1] != '_')
      continue;
    int d = std::isdigit(static_cast<unsigned char>(c)) ? c - '0'
            : std::isalpha(static_cast<unsigned char>(c))
                ? std::tolower(c) - 'a' + 10
                : 99;
    if (d >= base)
      return false;
    digits += c;
  }
  if (digits.empty())
    return false;
  errno = 0;
  long long v = std::strtoll(digits.c_str(), nullptr, base);
  if (errno == ERANGE)
    return false;
  out = negative ? -v : v;
  return true;
}

std::vector<Value> Renderer::attrPath(const Value &attribute, Pos p) const {
  std::vector<Value> parts;
  if (attribute.isNone())
    return parts;
  if (attribute.isInt()) {
    parts.push_back(attribute);
    return parts;
  }
  std::string a = needString(attribute, p, "an attribute name");
  for (const auto &part : pySplit(a, ".", -1)) {
    bool digits =
        !part.empty() && std::all_of(part.begin(), part.end(), [](char c) {
          return std::isdigit(static_cast<unsigned char>(c));
        });
    parts.push_back(digits ? Value::of(Json(std::stoll(part)))
                           : Value::str(part));
  }
  return parts;
}

Value Renderer::lookupPath(Value item, const std::vector<Value> &path,
                           const Value *dflt, Pos p) const {
  for (const Value &part : path) {
    item = getItem(item, part, p);
    if (dflt && !dflt->isNone() && item.isUndefined())
      item = *dflt;
  }
  return item;
}

std::string htmlEscape(const std::string &s) {
  std::string r;
  for (char c : s) {
    switch (c) {
    case '&':
      r += "&amp;";
      break;
    case '<':
      r += "&lt;";
      break;
    case '>':
      r += "&gt;";
      break;
    case '"':
      r += "&#34;";
      break;
    case '\'':
      r += "&#39;";
      break;
    default:
      r += c;
    }
  }
  return r;
}

Value Renderer::filter(const std::string &name, const Value &v, const Args &a,
                       Pos p) {
  auto args = [&](std::initializer_list<const char *> names,
                  size_t required = 0) {
    return bindArgs(name, a, names, required, p);
  };
  auto boolArg = [&](const Value *x) { return x && truthy(*x); };
  // Jinja's filters apply str() to text arguments (soft_str).
  if (name == "trim") {
    auto x = args({"chars"});
    std::string s = str(v);
    if (x[0] && !x[0]->isNone()) {
      std::u32string set = toU32(needString(*x[0], p, "trim"));
      return Value::str(pyStrip(s, &set, true, true));
    }
    return Value::str(pyStrip(s, nullptr, true, true));
  }
  if (name == "upper" || name == "lower" || name == "capitalize" ||
      name == "title" || name == "string" || name == "e" || name == "escape" ||
      name == "forceescape" || name == "wordcount") {
    args({});
    std::string s = str(v);
    if (name == "upper")
      return Value::str(pyUpper(s));
    if (name == "lower")
      return Value::str(pyLower(s));
    if (name == "capitalize")
      return Value::str(pyCapitalize(s));
    if (name == "string")
      return v.isString() ? v : Value::str(std::move(s));
    if (name == "wordcount") {
      int64_t words = 0;
      bool in = false;
      for (size_t i = 0; i < s.size();) {
        char32_t c = nextCodePoint(s, i);
        bool w = isAlphaCp(c) || isDigitCp(c) || c == '_';
        words += w && !in;
        in = w;
      }
      return Value::of(Json(words));
    }
    if (name == "title") {
      // Words begin after "-", whitespace or an opening bracket.
      std::string r;
      bool start = true;
      for (size_t i = 0; i < s.size();) {
        char32_t c = nextCodePoint(s, i);
        bool sep = c == '-' || c == '(' || c == '{' || c == '[' || c == '<' ||
                   isPySpace(c);
        if (sep)
          appendUtf8(r, c);
        else if (start)
          appendUpper(r, c);
        else
          appendUtf8(r, lowerOf(c));
        start = sep;
      }
      return Value::str(std::move(r));
    }
    return Value::str(htmlEscape(s));
  }
  if (name == "length" || name == "count") {
    args({});
    return Value::of(Json(static_cast<int64_t>(length(v, p))));
  }
  if (name == "default" || name == "d") {
    auto x = args({"default_value", "boolean"});
    if (v.isUndefined() || (boolArg(x[1]) && !truthy(v)))
      return x[0] ? *x[0] : Value::str("");
    return v;
  }
  if (name == "safe")
    return v;
  if (name == "tojson") {
    auto x = args({"ensure_ascii", "indent", "separators", "sort_keys"});
    if (!v.isData())
      fail(p, "Object of type " + typeName(v) + " is not JSON serializable");
    if (v.isArray() && v.shape == Shape::Generator)
      fail(p, "Object of type generator is not JSON serializable");
    JsonStyle st;
    st.ensureAscii = boolArg(x[0]);
    st.sortKeys = boolArg(x[3]);
    if (x[1] && !x[1]->isNone()) {
      st.indented = true;
      if (x[1]->isString())
        st.indent = x[1]->string();
      else
        st.indent = std::string(
            std::max<int64_t>(0, needInt(*x[1], p, "tojson indent")), ' ');
      st.itemSep = ",";
    }
    if (x[2] && !x[2]->isNone()) {
      std::vector<Value> seps = iterate(*x[2], p);
      if (seps.size() != 2)
        fail(p, "tojson separators must be a pair of strings");
      st.itemSep = needString(seps[0], p, "tojson separators");
      st.keySep = needString(seps[1], p, "tojson separators");
    }
    std::string out;
    appendJson(out, *v.data, st, 0);
    return Value::str(std::move(out));
  }
  if (name == "join") {
    auto x = args({"d", "attribute"});
    std::string sep = x[0] ? str(*x[0]) : "";
    std::vector<Value> path;
    if (x[1])
      path = attrPath(*x[1], p);
    std::string r;
    bool first = true;
    for (const Value &item : iterate(v, p)) {
      if (!first)
        r += sep;
      first = false;
      appendValueStr(r, x[1] ? lookupPath(item, path, nullptr, p) : item);
    }
    return Value::str(std::move(r));
  }
  if (name == "first" || name == "last") {
    args({});
    if (name == "last" && v.isArray() && v.shape == Shape::Generator)
      fail(p, "'generator' object is not reversible");
    std::vector<Value> items = iterate(v, p);
    if (items.empty())
      return Value::undefined(std::string("No ") + name +
                              " item, sequence was empty.");
    return name == "first" ? items.front() : items.back();
  }
  if (name == "list") {
    args({});
    return listOf(iterate(v, p), Shape::List, p);
  }
  if (name == "items") {
    args({});
    if (v.isUndefined())
      return Value::of(Json::array(), Shape::Generator);
    if (!v.isObject())
      fail(p, "Can only get item pairs from a mapping.");
    Json r = Json::array();
    for (auto it = v.data->begin(); it != v.data->end(); ++it)
      r.push_back(Json::array({it.key(), it.value()}));
    Value out = Value::of(std::move(r), Shape::Generator);
    out.tupleElems = true;
    return out;
  }
  if (name == "int") {
    auto x = args({"default", "base"});
    Value dflt = x[0] ? *x[0] : Value::of(Json(0));
    int base = static_cast<int>(x[1] ? needInt(*x[1], p, "int base") : 10);
    if (v.isUndefined())
      failUndefined(p, v);
    if (v.isString()) {
      int64_t r;
      if (parsePyInt(v.string(), base, r))
        return Value::of(Json(r));
      double d;
      if (parsePyFloat(v.string(), d) && !std::isnan(d)) {
        if (std::isinf(d))
          fail(p, "cannot convert float infinity to integer");
        return Value::of(Json(static_cast<int64_t>(d)));
      }
      return dflt;
    }
    if (v.isNumber()) {
      if (v.data->is_number_float()) {
        double d = v.data->get<double>();
        if (std::isnan(d))
          return dflt;
        if (std::isinf(d))
          fail(p, "cannot convert float infinity to integer");
        return Value::of(Json(static_cast<int64_t>(d)));
      }
      return Value::of(Json(needInt(v, p, "int")));
    }
    return dflt;
  }
  if (name == "float") {
    auto x = args({"default"});
    Value dflt = x[0] ? *x[0] : Value::of(Json(0.0));
    if (v.isUndefined())
      failUndefined(p, v);
    if (v.isNumber())
      return Value::of(Json(needNumber(v, p, "float")));
    double d;
    if (v.isString() && parsePyFloat(v.string(), d))
      return Value::of(Json(d));
    return dflt;
  }
  if (name == "abs") {
    args({});
    if (v.isNumber() && v.data->is_number_float())
      return Value::of(Json(std::fabs(v.data->get<double>())));
    if (v.isNumber()) {
      int64_t x = needInt(v, p, "abs");
      if (x == std::numeric_limits<int64_t>::min())
        fail(p, "integer overflow (integers are 64-bit here)");
      return Value::of(Json(x < 0 ? -x : x));
    }
    if (v.isUndefined())
      failUndefined(p, v);
    fail(p, "bad operand type for abs(): '" + typeName(v) + "'");
  }
  if (name == "round") {
    auto x = args({"precision", "method"});
    int64_t prec = x[0] ? needInt(*x[0], p, "round precision") : 0;
    std::string method = x[1] ? needString(*x[1], p, "round method") : "common";
    if (method != "common" && method != "ceil" && method != "floor")
      fail(p, "method must be common, ceil or floor");
    if (prec < 0)
      refuse(p, "construct 'round with a negative precision'");
    if (method == "common" && v.isInt())
      return Value::of(Json(needInt(v, p, "round")));
    double d = needNumber(v, p, "round");
    if (method == "common") {
      char buf[512];
      std::snprintf(buf, sizeof buf, "%.*f", static_cast<int>(prec), d);
      return Value::of(Json(std::strtod(buf, nullptr)));
    }
    double scale = std::pow(10.0, static_cast<double>(prec));
    return Value::of(
        Json((method == "ceil" ? std::ceil(d * scale) : std::floor(d * scale)) /
             scale));
  }
  if (name == "replace") {
    auto x = args({"old", "new", "count"}, 2);
    long count = x[2] && !x[2]->isNone()
                     ? static_cast<long>(needInt(*x[2], p, "replace count"))
                     : -1;
    return Value::str(pyReplace(str(v), str(*x[0]), str(*x[1]), count));
  }
  if (name == "center") {
    auto x = args({"width"});
    Args inner;
    inner.pos.push_back(x[0] ? *x[0] : Value::of(Json(80)));
    return callStrMethod(Value::str(str(v)), "center", inner, p);
  }
  if (name == "indent") {
    auto x = args({"width", "first", "blank"});
    std::string ind = "    ";
    if (x[0])
      ind = x[0]->isString()
                ? x[0]->string()
                : std::string(
                      std::max<int64_t>(0, needInt(*x[0], p, "indent width")),
                      ' ');
    Args none;
    Value lines =
        callStrMethod(Value::str(str(v) + "\n"), "splitlines", none, p);
    std::string r;
    size_t k = 0;
    for (const Value &line : iterate(lines, p)) {
      const std::string &l = line.string();
      if (k++) {
        r += '\n';
        if (boolArg(x[2]) || !l.empty())
          r += ind;
      }
      r += l;
    }
    if (boolArg(x[1]))
      r = ind + r;
    return Value::str(std::move(r));
  }
  if (name == "format") {
    if (!a.pos.empty() && !a.kw.empty())
      fail(p, "can't handle positional and keyword arguments at the same "
              "time");
    if (!a.kw.empty()) {
      Json obj = Json::object();
      for (const auto &[k, val] : a.kw)
        obj[k] = toJson(val, p);
      return percentFormat(str(v), Value::of(std::move(obj)), p);
    }
    return percentFormat(str(v), listOf(a.pos, Shape::Tuple, p), p);
  }
  if (name == "reverse") {
    args({});
    if (v.isString()) {
      std::u32string u = toU32(v.string());
      std::reverse(u.begin(), u.end());
      return Value::str(fromU32(u));
    }
    std::vector<Value> items = iterate(v, p);
    std::reverse(items.begin(), items.end());
    bool iteratorResult = !v.isArray() || v.shape != Shape::Generator;
    return listOf(items, iteratorResult ? Shape::Generator : Shape::List, p);
  }
  if (name == "map") {
    std::vector<Value> items = iterate(v, p);
    std::vector<Value> out;
    if (a.pos.empty()) {
      const Value *attribute = nullptr, *dflt = nullptr;
      for (const auto &[k, val] : a.kw) {
        if (k == "attribute")
          attribute = &val;
        else if (k == "default")
          dflt = &val;
        else
          fail(p, "map: unexpected keyword argument '" + k + "'");
      }
      if (!attribute)
        fail(p, "map requires a filter argument");
      std::vector<Value> path = attrPath(*attribute, p);
      for (const Value &item : items)
        out.push_back(lookupPath(item, path, dflt, p));
    } else {
      std::string f = needString(a.pos[0], p, "map filter name");
      if (!known(kFilters, f))
        refuse(p, "filter '" + f + "'");
      Args rest;
      rest.pos.assign(a.pos.begin() + 1, a.pos.end());
      rest.kw = a.kw;
      for (const Value &item : items)
        out.push_back(filter(f, item, rest, p));
    }
    return listOf(out, Shape::Generator, p);
  }
  if (name == "select" || name == "reject" || name == "selectattr" ||
      name == "rejectattr") {
    bool attr = name == "selectattr" || name == "rejectattr";
    bool keep = name == "select" || name == "selectattr";
    std::vector<Value> out;
    if (truthy(v)) {
      size_t off = 0;
      std::vector<Value> path;
      if (attr) {
        if (a.pos.empty())
          fail(p, "Missing parameter for attribute name");
        path = attrPath(a.pos[0], p);
        off = 1;
      }
      std::optional<std::string> testName;
      Args rest;
      if (a.pos.size() > off) {
        testName = needString(a.pos[off], p, name + " test name");
        if (!known(kTests, *testName))
          refuse(p, "test '" + *testName + "'");
        rest.pos.assign(a.pos.begin() + off + 1, a.pos.end());
      }
      rest.kw = a.kw;
      for (const Value &item : iterate(v, p)) {
        Value probe = attr ? lookupPath(item, path, nullptr, p) : item;
        bool r = testName ? test(*testName, probe, rest, p) : truthy(probe);
        if (r == keep)
          out.push_back(item);
      }
    }
    return listOf(out, Shape::Generator, p);
  }
  if (name == "sort" || name == "unique" || name == "min" || name == "max") {
    auto x = name == "sort" ? args({"reverse", "case_sensitive", "attribute"})
                            : args({"case_sensitive", "attribute"});
    bool reverse = name == "sort" && boolArg(x[0]);
    const Value *cs = name == "sort" ? x[1] : x[0];
    const Value *attribute = name == "sort" ? x[2] : x[1];
    bool caseSensitive = boolArg(cs);
    std::vector<Value> path;
    if (attribute)
      path = attrPath(*attribute, p);
    auto key = [&](const Value &item) {
      Value k = attribute ? lookupPath(item, path, nullptr, p) : item;
      if (!caseSensitive && k.isString())
        return Value::str(pyLower(k.string()));
      return k;
    };
    std::vector<Value> items = iterate(v, p);
    if (name == "unique") {
      std::vector<Value> out, seen;
      for (const Value &item : items) {
        Value k = key(item);
        bool dup = false;
        for (const Value &s : seen)
          dup = dup || equals(s, k);
        if (!dup) {
          seen.push_back(k);
          out.push_back(item);
        }
      }
      return listOf(out, Shape::Generator, p);
    }
    if (name == "min" || name == "max") {
      if (items.empty())
        return Value::undefined("No aggregated item, sequence was empty.");
      size_t best = 0;
      Value bestKey = key(items[0]);
      for (size_t k = 1; k < items.size(); ++k) {
        Value kk = key(items[k]);
        int c = compare(kk, bestKey, p, name == "min" ? "<" : ">");
        if (name == "min" ? c < 0 : c > 0) {
          best = k;
          bestKey = kk;
        }
      }
      return items[best];
    }
    std::vector<std::pair<Value, Value>> keyed;
    for (const Value &item : items)
      keyed.emplace_back(key(item), item);
    // Jinja compares one-element lists of keys: equal keys (undefined ones
    // included) are never ordered.
    std::stable_sort(keyed.begin(), keyed.end(),
                     [&](const auto &l, const auto &r) {
                       if (equals(l.first, r.first))
                         return false;
                       return reverse ? compare(r.first, l.first, p, "<") < 0
                                      : compare(l.first, r.first, p, "<") < 0;
                     });
    std::vector<Value> out;
    for (auto &kv : keyed)
      out.push_back(std::move(kv.second));
    return listOf(out, Shape::List, p);
  }
  if (name == "dictsort") {
    auto x = args({"case_sensitive", "by", "reverse"});
    if (!v.isObject())
      fail(p, "dictsort expects a mapping");
    std::string by = x[1] ? needString(*x[1], p, "dictsort by") : "key";
    if (by != "key" && by != "value")
      fail(p, "You can only sort by either \"key\" or \"value\"");
    bool caseSensitive = boolArg(x[0]), reverse = boolArg(x[2]);
    std::vector<std::pair<Value, Json>> keyed;
    for (auto it = v.data->begin(); it != v.data->end(); ++it) {
      Value k = by == "key" ? Value::str(it.key()) : Value::at(v, it.value());
      if (!caseSensitive && k.isString())
        k = Value::str(pyLower(k.string()));
      keyed.emplace_back(k, Json::array({it.key(), it.value()}));
    }
    std::stable_sort(keyed.begin(), keyed.end(),
                     [&](const auto &l, const auto &r) {
                       return reverse ? compare(r.first, l.first, p, "<") < 0
                                      : compare(l.first, r.first, p, "<") < 0;
                     });
    Json r = Json::array();
    for (auto &kv : keyed)
      r.push_back(std::move(kv.second));
    Value out = Value::of(std::move(r));
    out.tupleElems = true;
    return out;
  }
  if (name == "sum") {
    auto x = args({"attribute", "start"});
    Value total = x[1] ? *x[1] : Value::of(Json(0));
    std::vector<Value> path;
    if (x[0])
      path = attrPath(*x[0], p);
    for (const Value &item : iterate(v, p))
      total = arith("+", total,
                    x[0] ? lookupPath(item, path, nullptr, p) : item, p);
    return total;
  }
  refuse(p, "filter '" + name + "'");
}

bool Renderer::test(const std::string &name, const Value &v, const Args &a,
                    Pos p) {
  auto one = [&]() -> const Value & {
    return *bindArgs(name, a, {"other"}, 1, p)[0];
  };
  static const char *const kNoArgs[] = {
      "defined", "undefined", "none",     "boolean",  "false",
      "true",    "integer",   "float",    "number",   "string",
      "mapping", "iterable",  "sequence", "callable", "escaped",
      "odd",     "even",      "lower",    "upper"};
  if (inList(kNoArgs, name))
    bindArgs(name, a, {}, 0, p);
  if (name == "defined" || name == "undefined")
    return v.isUndefined() == (name == "undefined");
  if (name == "none")
    return v.isNone();
  if (name == "boolean")
    return v.isBool();
  if (name == "true" || name == "false")
    return v.isBool() && v.data->get<bool>() == (name == "true");
  if (name == "integer")
    return v.isData() && v.data->is_number_integer();
  if (name == "float")
    return v.isData() && v.data->is_number_float();
  if (name == "number")
    return v.isNumber();
  if (name == "string")
    return v.isString();
  if (name == "mapping")
    return v.isObject();
  if (name == "iterable")
    return v.isUndefined() || v.isString() || v.isArray() || v.isObject();
  if (name == "sequence")
    return v.isUndefined() || v.isString() || v.isObject() ||
           (v.isArray() && (v.shape == Shape::List || v.shape == Shape::Tuple));
  if (name == "callable")
    return v.kind == Value::Kind::Function || v.kind == Value::Kind::Loop;
  if (name == "escaped")
    return false;
  if (name == "sameas") {
    // Python identity: None, True and False are singletons, and CPython
    // caches the ints from -5 to 256.
    const Value &o = one();
    if (v.isData() && o.isData() && v.data->is_primitive() &&
        o.data->is_primitive() && (v.isNone() || v.isBool()))
      return v.data->type() == o.data->type() && *v.data == *o.data;
    if (v.isData() && o.isData() && v.data->is_number_integer() &&
        o.data->is_number_integer()) {
      int64_t x = v.data->get<int64_t>();
      return x >= -5 && x <= 256 && x == o.data->get<int64_t>();
    }
    if (v.isData() && o.isData())
      return v.data == o.data;
    return v.kind == o.kind && equals(v, o);
  }
  if (name == "in")
    return contains(one(), v, p);
  if (name == "eq" || name == "equalto" || name == "==")
    return equals(v, one());
  if (name == "ne" || name == "!=")
    return !equals(v, one());
  if (name == "lt" || name == "lessthan" || name == "<")
    return compare(v, one(), p, "<") < 0;
  if (name == "le" || name == "<=")
    return compare(v, one(), p, "<=") <= 0;
  if (name == "gt" || name == "greaterthan" || name == ">")
    return compare(v, one(), p, ">") > 0;
  if (name == "ge" || name == ">=")
    return compare(v, one(), p, ">=") >= 0;
  if (name == "odd" || name == "even") {
    Value m = arith("%", v, Value::of(Json(2)), p);
    return jsonEquals(*m.data, Json(name == "odd" ? 1 : 0));
  }
  if (name == "divisibleby") {
    Value m = arith("%", v, one(), p);
    return jsonEquals(*m.data, Json(0));
  }
  if (name == "lower" || name == "upper") {
    Args none;
    Value r = callStrMethod(Value::str(str(v)),
                            name == "lower" ? "islower" : "isupper", none, p);
    return r.data->get<bool>();
  }
  refuse(p, "test '" + name + "'");
}

} // namespace
} // namespace kiln::chat

//===----------------------------------------------------------------------===//
// Public API
//===----------------------------------------------------------------------===//

namespace kiln {

ChatTemplate::ChatTemplate(std::shared_ptr<const chat::Program> program)
    : program_(std::move(program)) {}

ChatTemplate::~ChatTemplate() = default;

ChatTemplate ChatTemplate::parse(std::string source, std::string name) {
  auto program = std::make_shared<chat::Program>();
  program->name = std::move(name);
  chat::Lexer lexer(source, program->name);
  chat::Parser parser(lexer.run(), program->name);
  program->body = parser.parseTemplate();
  return ChatTemplate(std::move(program));
}

std::string ChatTemplate::render(const Json &context) const {
  if (!context.is_object())
    throw Error(KILN_ERROR_INVALID_ARGUMENT,
                "chat template '" + program_->name +
                    "': the context must be a JSON object of variables");
  chat::Renderer renderer(*program_);
  return renderer.run(context);
}

const std::string &ChatTemplate::name() const { return program_->name; }

namespace {

/// Reads `path`; false when it does not exist.
bool readFile(const std::string &path, std::string &out) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0)
    return false;
  if (S_ISDIR(st.st_mode))
    throw Error(KILN_ERROR_FORMAT, path + ": is a directory, expected a file");
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw Error(KILN_ERROR_NOT_FOUND, path + ": cannot be opened");
  std::ostringstream ss;
  ss << in.rdbuf();
  out = ss.str();
  return true;
}

bool readJson(const std::string &path, Json &out) {
  std::string text;
  if (!readFile(path, text))
    return false;
  try {
    out = Json::parse(text);
  } catch (const Json::exception &e) {
    throw Error(KILN_ERROR_FORMAT,
                path + ": not valid JSON (" + e.what() + ")");
  }
  if (!out.is_object())
    throw Error(KILN_ERROR_FORMAT, path + ": expected a JSON object");
  return true;
}

/// A special token's text: a string, or an AddedToken object's "content".
std::optional<std::string> tokenText(const Json &v, const std::string &path,
                                     const std::string &field) {
  if (v.is_string())
    return v.get<std::string>();
  if (v.is_object()) {
    auto it = v.find("content");
    if (it != v.end() && it->is_string())
      return it->get<std::string>();
  }
  if (v.is_null())
    return std::nullopt;
  throw Error(KILN_ERROR_FORMAT, path + ": " + field +
                                     " is neither a string nor an object "
                                     "with a string \"content\"");
}

const char *const kSpecialTokens[] = {"bos_token", "eos_token", "unk_token",
                                      "sep_token", "pad_token", "cls_token",
                                      "mask_token"};

} // namespace

ChatTemplateSource loadChatTemplateSource(const std::string &dir,
                                          const std::string &templateName,
                                          const std::string &templateFile) {
  std::string want = templateName.empty() ? "default" : templateName;
  std::string configPath = dir + "/tokenizer_config.json";
  Json config = Json::object();
  bool haveConfig = readJson(configPath, config);

  ChatTemplateSource out;
  out.name = want;
  std::string jinjaPath = dir + "/chat_template.jinja";
  if (!templateFile.empty()) {
    if (!readFile(templateFile, out.source))
      throw Error(KILN_ERROR_NOT_FOUND,
                  templateFile + ": cannot read the chat template file");
    out.path = templateFile;
    out.name = templateFile;
  } else if (want == "default" && readFile(jinjaPath, out.source)) {
    out.path = jinjaPath;
  } else {
    auto it = config.find("chat_template");
    if (!haveConfig || it == config.end() || it->is_null())
      throw Error(KILN_ERROR_NOT_FOUND,
                  dir + ": no chat template (neither chat_template.jinja nor "
                        "a \"chat_template\" in tokenizer_config.json)");
    out.path = configPath;
    if (it->is_string()) {
      if (want != "default")
        throw Error(KILN_ERROR_NOT_FOUND,
                    configPath + ": has a single chat template, none named '" +
                        want + "'");
      out.source = it->get<std::string>();
    } else if (it->is_array()) {
      std::string names;
      bool found = false;
      for (size_t k = 0; k < it->size(); ++k) {
        const Json &entry = (*it)[k];
        std::string at = "chat_template[" + std::to_string(k) + "]";
        if (!entry.is_object() || !entry.contains("name") ||
            !entry["name"].is_string() || !entry.contains("template") ||
            !entry["template"].is_string())
          throw Error(KILN_ERROR_FORMAT,
                      configPath + ": " + at +
                          ": expected an object with string \"name\" and "
                          "\"template\"");
        std::string n = entry["name"].get<std::string>();
        names += (names.empty() ? "'" : ", '") + n + "'";
        if (n == want && !found) {
          out.source = entry["template"].get<std::string>();
          found = true;
        }
      }
      if (!found)
        throw Error(KILN_ERROR_NOT_FOUND,
                    configPath + ": no chat template named '" + want +
                        "' (found " + (names.empty() ? "none" : names) + ")");
    } else {
      throw Error(KILN_ERROR_FORMAT,
                  configPath + ": chat_template is neither a string nor a "
                               "list of {\"name\", \"template\"}");
    }
  }

  // tokenizer.special_tokens_map: the standard names, any other "*_token"
  // string, and named extra_special_tokens.
  for (const char *name : kSpecialTokens) {
    auto it = config.find(name);
    if (it != config.end())
      if (auto text = tokenText(*it, configPath, name))
        out.specialTokens[name] = *text;
  }
  for (auto it = config.begin(); it != config.end(); ++it) {
    const std::string &key = it.key();
    bool standard = false;
    for (const char *name : kSpecialTokens)
      standard = standard || key == name;
    if (standard || key.size() < 6 ||
        key.compare(key.size() - 6, 6, "_token") != 0)
      continue;
    if (it->is_string() ||
        (it->is_object() && it->value("__type", "") == "AddedToken"))
      if (auto text = tokenText(*it, configPath, key))
        out.specialTokens[key] = *text;
  }
  auto extra = config.find("extra_special_tokens");
  if (extra != config.end() && extra->is_object())
    for (auto it = extra->begin(); it != extra->end(); ++it)
      if (auto text =
              tokenText(*it, configPath, "extra_special_tokens." + it.key()))
        out.specialTokens[it.key()] = *text;
  if (!config.contains("added_tokens_decoder")) {
    // transformers' legacy path: special_tokens_map.json fills what the
    // config leaves unset.
    std::string mapPath = dir + "/special_tokens_map.json";
    Json map;
    if (readJson(mapPath, map)) {
      for (const char *name : kSpecialTokens) {
        auto it = map.find(name);
        if (it == map.end() || out.specialTokens.contains(name))
          continue;
        auto cfg = config.find(name);
        if (cfg != config.end() && !cfg->is_null())
          continue;
        if (auto text = tokenText(*it, mapPath, name))
          out.specialTokens[name] = *text;
      }
    }
  }
  return out;
}

Json chatTemplateContext(const ChatTemplateSource &source, const Json &messages,
                         bool addGenerationPrompt, const Json &extra) {
  if (!messages.is_array() || messages.empty())
    throw Error(KILN_ERROR_INVALID_ARGUMENT,
                "messages: expected a non-empty array of message objects");
  Json ctx =
      source.specialTokens.is_object() ? source.specialTokens : Json::object();
  if (!extra.is_null()) {
    if (!extra.is_object())
      throw Error(KILN_ERROR_INVALID_ARGUMENT,
                  "chat template variables: expected a JSON object");
    for (auto it = extra.begin(); it != extra.end(); ++it) {
      const std::string &k = it.key();
      if (k == "messages" || k == "tools" || k == "documents" ||
          k == "add_generation_prompt")
        throw Error(KILN_ERROR_INVALID_ARGUMENT,
                    "chat template variables: '" + k +
                        "' is set by the request itself");
      ctx[k] = it.value();
    }
  }
  Json msgs = Json::array();
  for (size_t i = 0; i < messages.size(); ++i) {
    const Json &m = messages[i];
    if (!m.is_object())
      throw Error(KILN_ERROR_INVALID_ARGUMENT,
                  "messages[" + std::to_string(i) + "]: expected an object");
    Json clean = Json::object();
    for (auto it = m.begin(); it != m.end(); ++it)
      if (!it->is_null())
        clean[it.key()] = it.value();
    const Json *reasoning = nullptr;
    for (const char *field : {"reasoning_content", "thinking", "reasoning"}) {
      auto it = clean.find(field);
      if (it != clean.end()) {
        reasoning = &*it;
        break;
      }
    }
    if (reasoning) {
      // {"thinking": r, **message, "reasoning_content": r}
      Json r = *reasoning;
      Json aliased = Json::object();
      aliased["thinking"] = r;
      for (auto it = clean.begin(); it != clean.end(); ++it)
        aliased[it.key()] = it.value();
      aliased["reasoning_content"] = r;
      clean = std::move(aliased);
    }
    msgs.push_back(std::move(clean));
  }
  ctx["messages"] = std::move(msgs);
  ctx["tools"] = nullptr;
  ctx["documents"] = nullptr;
  ctx["add_generation_prompt"] = addGenerationPrompt;
  return ctx;
}

} // namespace kiln
