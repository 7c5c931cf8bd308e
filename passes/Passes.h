//===- Passes.h - kiln passes -----------------------------------*- C++ -*-===//

#ifndef KILN_PASSES_PASSES_H
#define KILN_PASSES_PASSES_H

#include "dialects/kiln/IR/KilnDialect.h"

#include "mlir/Pass/Pass.h"

namespace mlir::kiln {

#define GEN_PASS_DECL
#include "passes/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "passes/Passes.h.inc"

/// The passes kilnc runs after import to reach the kiln canonical form
/// (see docs/architecture.md): canonicalization, raising, CSE.
void buildCanonicalFormPipeline(OpPassManager &pm);

/// Registers `--kiln-canonical-form` for kiln-opt.
void registerKilnPipelines();

} // namespace mlir::kiln

#endif // KILN_PASSES_PASSES_H
