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

} // namespace mlir::kiln

#endif // KILN_PASSES_PATTERNUTILS_H
