//===- SymbolicValue.h - values of shape computations -----------*- C++ -*-===//
//
// Exporters compute shapes at run time: Shape -> Gather -> Concat -> Reshape.
// evaluateSymbolic() reads such a computation backwards and returns the value
// of a small integer tensor as DimExprs (`[batch, seq, 9, 64]`), or nothing
// when some element depends on data rather than on dimensions. The importer
// uses it to give results precise symbolic types; canonicalization uses it
// to drop shape operands whose value the result type already states.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_DIALECTS_KILN_IR_SYMBOLICVALUE_H
#define KILN_DIALECTS_KILN_IR_SYMBOLICVALUE_H

#include "dialects/kiln/IR/DimExpr.h"
#include "mlir/IR/Value.h"
#include "llvm/ADT/SmallVector.h"

#include <optional>

namespace mlir::kiln {

/// The elements of integer tensor `value` (rank 0 or 1, at most a few dozen
/// elements) as symbolic expressions, row-major. An element may be unknown
/// (`DimExpr()`); nullopt when even the element count is not known.
std::optional<llvm::SmallVector<DimExpr>> evaluateSymbolic(Value value);

/// Applies ONNX Reshape rules (`0` copies, `-1` infers) to a symbolic
/// target; nullopt when the target is inconsistent with `input`.
std::optional<llvm::SmallVector<DimExpr>>
resolveReshapeTarget(llvm::ArrayRef<DimExpr> input,
                     llvm::ArrayRef<DimExpr> target, bool allowZero);

} // namespace mlir::kiln

#endif // KILN_DIALECTS_KILN_IR_SYMBOLICVALUE_H
