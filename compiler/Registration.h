//===- Registration.h - everything a kiln tool registers --------*- C++ -*-===//

#ifndef KILN_COMPILER_REGISTRATION_H
#define KILN_COMPILER_REGISTRATION_H

#include "mlir/IR/DialectRegistry.h"

namespace kiln {

/// Adds the kiln dialect and the upstream dialects kiln IR uses (func).
void registerAllDialects(mlir::DialectRegistry &registry);

/// Registers every kiln pass and the upstream passes kiln pipelines use, so
/// that they can be named on a kiln-opt command line.
void registerAllPasses();

} // namespace kiln

#endif // KILN_COMPILER_REGISTRATION_H
