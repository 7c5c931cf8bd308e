//===- DimExpr.h - symbolic tensor dimensions -------------------*- C++ -*-===//
//
// A DimExpr is the size of one tensor dimension written as a polynomial over
// named symbols with integer coefficients (`past + seq`, `2 * batch`, `64`).
// The form is canonical (terms sorted, zero terms dropped), so two DimExprs
// compare equal exactly when the polynomials are equal. Division is exact or
// fails: shape inference only divides where the ONNX graph proves the
// quotient is an integer (Reshape with -1, Split).
//
//===----------------------------------------------------------------------===//

#ifndef KILN_DIALECTS_KILN_IR_DIMEXPR_H
#define KILN_DIALECTS_KILN_IR_DIMEXPR_H

#include "llvm/ADT/Hashing.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/raw_ostream.h"

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace mlir::kiln {

class DimExpr {
public:
  /// A product of symbols, sorted; empty for the constant term.
  using Monomial = std::vector<std::string>;

  /// An unknown dimension (printed `?`): no symbol names it.
  DimExpr() = default;
  /// The constant `value`.
  static DimExpr constant(int64_t value);
  /// The symbol `name`.
  static DimExpr symbol(llvm::StringRef name);

  bool isUnknown() const { return unknown; }
  /// The value when the expression is a known constant.
  std::optional<int64_t> getConstant() const;
  /// The symbol name when the expression is exactly one symbol.
  std::optional<std::string> getSymbol() const;

  /// Sum, product; unknown if either side is unknown.
  DimExpr operator+(const DimExpr &other) const;
  DimExpr operator-(const DimExpr &other) const;
  DimExpr operator*(const DimExpr &other) const;
  /// Exact quotient, or an unknown expression when `other` does not divide
  /// this one term by term.
  DimExpr exactDiv(const DimExpr &other) const;

  /// Replaces the symbols named in `values` by their expressions (other
  /// symbols stay); unknown stays unknown.
  DimExpr substitute(const std::map<std::string, DimExpr> &values) const;

  /// The symbols the expression mentions.
  std::vector<std::string> symbols() const;

  bool operator==(const DimExpr &other) const {
    return unknown == other.unknown && terms == other.terms;
  }
  bool operator!=(const DimExpr &other) const { return !(*this == other); }

  /// Parses the printed form (`?`, `past + seq - 1`, `2 * b`); nullopt on
  /// malformed text.
  static std::optional<DimExpr> parse(llvm::StringRef text);

  /// Prints `?`, an integer, or terms like `2 * a * b + c + 3`.
  void print(llvm::raw_ostream &os) const;
  std::string str() const;

  const std::map<Monomial, int64_t> &getTerms() const { return terms; }

private:
  bool unknown = true;
  std::map<Monomial, int64_t> terms;
  void normalize();
};

inline llvm::raw_ostream &operator<<(llvm::raw_ostream &os, const DimExpr &e) {
  e.print(os);
  return os;
}

/// Hash used by the attribute storage uniquer.
llvm::hash_code hash_value(const DimExpr &e);

} // namespace mlir::kiln

#endif // KILN_DIALECTS_KILN_IR_DIMEXPR_H
