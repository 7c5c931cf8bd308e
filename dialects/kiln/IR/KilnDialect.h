//===- KilnDialect.h - the kiln dialect -------------------------*- C++ -*-===//

#ifndef KILN_DIALECTS_KILN_IR_KILNDIALECT_H
#define KILN_DIALECTS_KILN_IR_KILNDIALECT_H

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/Dialect.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/IR/TensorEncoding.h"
#include "mlir/Interfaces/InferTypeOpInterface.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include "dialects/kiln/IR/DimExpr.h"

#include "dialects/kiln/IR/KilnDialect.h.inc"
#include "dialects/kiln/IR/KilnEnums.h.inc"

#define GET_ATTRDEF_CLASSES
#include "dialects/kiln/IR/KilnAttrs.h.inc"

#define GET_TYPEDEF_CLASSES
#include "dialects/kiln/IR/KilnTypes.h.inc"

#define GET_OP_CLASSES
#include "dialects/kiln/IR/KilnOps.h.inc"

namespace mlir::kiln {

/// Lets diagnostics print dimensions: `<< dim` gives `past + seq`.
inline Diagnostic &operator<<(Diagnostic &d, const DimExpr &e) {
  return d << e.str();
}

/// The symbolic expression of every dimension of `type`: constants for
/// static dims, the `#kiln.dims` names (or unknown) for dynamic ones.
llvm::SmallVector<DimExpr> getShapeExprs(RankedTensorType type);

/// A ranked tensor type for `dims`: static where a dim is constant, dynamic
/// otherwise, with a `#kiln.dims` encoding when any dynamic dim is named.
RankedTensorType getTensorType(llvm::ArrayRef<DimExpr> dims, Type elementType);

/// Whether `a` and `b` may describe the same run-time dimension.
bool dimsCompatible(const DimExpr &a, const DimExpr &b);

/// The numpy broadcast of two shapes, or failure when they cannot broadcast.
FailureOr<llvm::SmallVector<DimExpr>>
broadcastShapes(llvm::ArrayRef<DimExpr> a, llvm::ArrayRef<DimExpr> b);

} // namespace mlir::kiln

#endif // KILN_DIALECTS_KILN_IR_KILNDIALECT_H
