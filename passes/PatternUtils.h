//===- PatternUtils.h - helpers shared by kiln's raising patterns -*- C++
//-*-===//

#ifndef KILN_PASSES_PATTERNUTILS_H
#define KILN_PASSES_PATTERNUTILS_H

#include "dialects/kiln/IR/KilnDialect.h"

#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/Matchers.h"
#include "mlir/IR/Value.h"

#include <optional>

namespace mlir::kiln {

/// The value of a scalar (or splat) float constant: the epsilons, scales and
/// coefficients that exporters materialize as small constant tensors.
inline std::optional<double> getScalarFloat(Value v) {
  DenseFPElementsAttr attr;
  if (!matchPattern(v, m_Constant(&attr)) || !attr.isSplat())
    return std::nullopt;
  return attr.getSplatValue<APFloat>().convertToDouble();
}

/// The symbolic dimensions of a ranked tensor value.
inline SmallVector<DimExpr> dimsOf(Value v) {
  return getShapeExprs(cast<RankedTensorType>(v.getType()));
}

/// A product flattened into its scalar-constant part and its other factors.
struct Factors {
  double constant = 1.0;
  SmallVector<Value, 4> values;
};

/// Flattens nested kiln.mul (and division by a constant) into factors.
inline void collectFactors(Value v, Factors &out, int depth = 0) {
  if (std::optional<double> c = getScalarFloat(v)) {
    out.constant *= *c;
    return;
  }
  if (depth < 8) {
    if (auto mul = v.getDefiningOp<MulOp>()) {
      collectFactors(mul.getLhs(), out, depth + 1);
      collectFactors(mul.getRhs(), out, depth + 1);
      return;
    }
    if (auto div = v.getDefiningOp<DivOp>()) {
      if (std::optional<double> c = getScalarFloat(div.getRhs());
          c && *c != 0) {
        collectFactors(div.getLhs(), out, depth + 1);
        out.constant /= *c;
        return;
      }
    }
  }
  out.values.push_back(v);
}

} // namespace mlir::kiln

#endif // KILN_PASSES_PATTERNUTILS_H
