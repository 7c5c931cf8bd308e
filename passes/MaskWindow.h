//===- MaskWindow.h - what an exported attention mask admits ----*- C++ -*-===//
//
// Exporters build causal (and sliding-window) masks out of ranges,
// comparisons and sizes. Before the paged cache replaces such a mask, kiln
// evaluates it on small concrete sizes and at the model's context length,
// with every padding mask all ones, and checks which keys each query sees.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_PASSES_MASKWINDOW_H
#define KILN_PASSES_MASKWINDOW_H

#include "dialects/kiln/IR/KilnDialect.h"

#include "mlir/Support/LLVM.h"
#include "llvm/ADT/SmallPtrSet.h"

#include <map>
#include <string>

namespace mlir::kiln {

/// What the mask evaluation needs to know about the graph's sizes.
struct MaskSizes {
  /// The batch dimension of the queries (bound to 1).
  DimExpr batch;
  /// The token dimension of the queries (the step's new tokens).
  DimExpr tokens;
  /// The number of cached tokens before the step (a past argument's
  /// dimension 2); unknown when the graph has no cache.
  DimExpr past;
  /// The [batch, total] padding-mask arguments, evaluated as all ones.
  llvm::SmallPtrSet<Value, 4> padding;
  /// The longest context the artifact serves: windows of this size or more
  /// never exclude a key and count as plain causal.
  int64_t context = 0;
};

/// The keys `mask` lets the queries of `attention` see when every padding
/// mask is all ones: query t at absolute position p sees keys
/// [p - window, p]. Returns the window, -1 for plain causal attention over
/// the whole context, or emits an error on `attention` saying what the mask
/// admits instead (a bidirectional mask, a bias, keys in the future, a
/// computation the check cannot evaluate) and fails.
FailureOr<int64_t> maskWindow(Operation *attention, Value mask, bool causal,
                              const MaskSizes &sizes);

} // namespace mlir::kiln

#endif // KILN_PASSES_MASKWINDOW_H
