//===- DimExpr.cpp - symbolic tensor dimensions ---------------------------===//

#include "dialects/kiln/IR/DimExpr.h"

#include "llvm/ADT/StringExtras.h"

#include <algorithm>

using namespace mlir::kiln;

DimExpr DimExpr::constant(int64_t value) {
  DimExpr e;
  e.unknown = false;
  e.terms[{}] = value;
  e.normalize();
  return e;
}

DimExpr DimExpr::symbol(llvm::StringRef name) {
  DimExpr e;
  e.unknown = false;
  e.terms[{name.str()}] = 1;
  return e;
}

void DimExpr::normalize() {
  for (auto it = terms.begin(); it != terms.end();)
    it = it->second == 0 ? terms.erase(it) : std::next(it);
}

std::optional<int64_t> DimExpr::getConstant() const {
  if (unknown)
    return std::nullopt;
  if (terms.empty())
    return 0;
  if (terms.size() == 1 && terms.begin()->first.empty())
    return terms.begin()->second;
  return std::nullopt;
}

std::optional<std::string> DimExpr::getSymbol() const {
  if (unknown || terms.size() != 1)
    return std::nullopt;
  const auto &[mono, coeff] = *terms.begin();
  if (mono.size() != 1 || coeff != 1)
    return std::nullopt;
  return mono.front();
}

// Dimension arithmetic that overflows int64 describes no real tensor: the
// result is an unknown dimension rather than undefined behaviour.
DimExpr DimExpr::operator+(const DimExpr &other) const {
  if (unknown || other.unknown)
    return DimExpr();
  DimExpr r = *this;
  for (const auto &[mono, coeff] : other.terms)
    if (__builtin_add_overflow(r.terms[mono], coeff, &r.terms[mono]))
      return DimExpr();
  r.normalize();
  return r;
}

DimExpr DimExpr::operator-(const DimExpr &other) const {
  return *this + other * constant(-1);
}

DimExpr DimExpr::operator*(const DimExpr &other) const {
  if (unknown || other.unknown)
    return DimExpr();
  DimExpr r;
  r.unknown = false;
  for (const auto &[ma, ca] : terms)
    for (const auto &[mb, cb] : other.terms) {
      Monomial m = ma;
      m.insert(m.end(), mb.begin(), mb.end());
      std::sort(m.begin(), m.end());
      int64_t product;
      if (__builtin_mul_overflow(ca, cb, &product) ||
          __builtin_add_overflow(r.terms[m], product, &r.terms[m]))
        return DimExpr();
    }
  r.normalize();
  return r;
}

/// Divides a single term (coeff * mono) by another; nullopt if inexact.
static std::optional<std::pair<DimExpr::Monomial, int64_t>>
divideTerm(const DimExpr::Monomial &mono, int64_t coeff,
           const DimExpr::Monomial &divMono, int64_t divCoeff) {
  if (divCoeff == 0 || divCoeff == INT64_MIN || coeff == INT64_MIN ||
      coeff % divCoeff != 0)
    return std::nullopt;
  DimExpr::Monomial rest = mono;
  for (const std::string &s : divMono) {
    auto it = std::find(rest.begin(), rest.end(), s);
    if (it == rest.end())
      return std::nullopt;
    rest.erase(it);
  }
  return std::make_pair(rest, coeff / divCoeff);
}

DimExpr DimExpr::exactDiv(const DimExpr &other) const {
  if (unknown || other.unknown || other.terms.empty())
    return DimExpr();
  if (other.terms.size() == 1) {
    // Division by one term: divide every term.
    const auto &[divMono, divCoeff] = *other.terms.begin();
    DimExpr r;
    r.unknown = false;
    for (const auto &[mono, coeff] : terms) {
      auto q = divideTerm(mono, coeff, divMono, divCoeff);
      if (!q)
        return DimExpr();
      r.terms[q->first] += q->second;
    }
    r.normalize();
    return r;
  }
  // Division by a sum: look for a one-term quotient q with q * other equal
  // to this expression (Reshape's -1 over `(past + seq) * 16` is the case).
  const auto &[firstMono, firstCoeff] = *other.terms.begin();
  for (const auto &[mono, coeff] : terms) {
    auto q = divideTerm(mono, coeff, firstMono, firstCoeff);
    if (!q)
      continue;
    DimExpr quotient;
    quotient.unknown = false;
    quotient.terms[q->first] = q->second;
    quotient.normalize();
    if (quotient * other == *this)
      return quotient;
  }
  return DimExpr();
}

void DimExpr::print(llvm::raw_ostream &os) const {
  if (unknown) {
    os << "?";
    return;
  }
  if (terms.empty()) {
    os << 0;
    return;
  }
  // Symbol terms first, in sorted order, then the constant: `past + seq + 1`.
  bool first = true;
  auto emit = [&](const Monomial &mono, int64_t coeff) {
    if (!first)
      os << (coeff < 0 ? " - " : " + ");
    else if (coeff < 0)
      os << "-";
    int64_t mag = coeff < 0 ? -coeff : coeff;
    first = false;
    if (mono.empty()) {
      os << mag;
      return;
    }
    if (mag != 1)
      os << mag << " * ";
    for (size_t i = 0; i < mono.size(); ++i)
      os << (i ? " * " : "") << mono[i];
  };
  for (const auto &[mono, coeff] : terms)
    if (!mono.empty())
      emit(mono, coeff);
  auto c = terms.find({});
  if (c != terms.end())
    emit(c->first, c->second);
}

std::string DimExpr::str() const {
  std::string s;
  llvm::raw_string_ostream os(s);
  print(os);
  return s;
}

llvm::hash_code mlir::kiln::hash_value(const DimExpr &e) {
  if (e.isUnknown())
    return llvm::hash_value(0xdeadbeefULL);
  llvm::hash_code h = llvm::hash_value(1);
  for (const auto &[mono, coeff] : e.getTerms()) {
    for (const std::string &s : mono)
      h = llvm::hash_combine(h, s);
    h = llvm::hash_combine(h, mono.size(), coeff);
  }
  return h;
}

std::optional<DimExpr> DimExpr::parse(llvm::StringRef text) {
  text = text.trim();
  if (text == "?")
    return DimExpr();
  DimExpr result = constant(0);
  // sum := ['-'] product (('+' | '-') product)*
  int64_t sign = 1;
  if (text.consume_front("-"))
    sign = -1;
  while (true) {
    DimExpr product = constant(sign);
    while (true) {
      text = text.ltrim();
      if (text.empty())
        return std::nullopt;
      size_t len = 0;
      if (llvm::isDigit(text[0])) {
        while (len < text.size() && llvm::isDigit(text[len]))
          ++len;
        int64_t v;
        if (text.substr(0, len).getAsInteger(10, v))
          return std::nullopt;
        product = product * constant(v);
      } else if (llvm::isAlpha(text[0]) || text[0] == '_') {
        while (len < text.size() && (llvm::isAlnum(text[len]) ||
                                     text[len] == '_' || text[len] == '.'))
          ++len;
        product = product * symbol(text.substr(0, len));
      } else {
        return std::nullopt;
      }
      text = text.drop_front(len).ltrim();
      if (!text.consume_front("*"))
        break;
    }
    result = result + product;
    if (text.empty())
      return result;
    if (text.consume_front("+"))
      sign = 1;
    else if (text.consume_front("-"))
      sign = -1;
    else
      return std::nullopt;
  }
}

DimExpr
DimExpr::substitute(const std::map<std::string, DimExpr> &values) const {
  if (unknown)
    return *this;
  DimExpr sum = constant(0);
  for (const auto &[monomial, coefficient] : terms) {
    DimExpr product = constant(coefficient);
    for (const std::string &name : monomial) {
      auto it = values.find(name);
      product = product * (it == values.end() ? symbol(name) : it->second);
    }
    sum = sum + product;
  }
  return sum;
}

std::vector<std::string> DimExpr::symbols() const {
  std::vector<std::string> names;
  for (const auto &term : terms)
    for (const std::string &name : term.first)
      if (std::find(names.begin(), names.end(), name) == names.end())
        names.push_back(name);
  return names;
}
