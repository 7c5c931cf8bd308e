//===- Registration.cpp - everything a kiln tool registers ----------------===//

#include "compiler/Registration.h"

#include "dialects/kiln/IR/KilnDialect.h"
#include "passes/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Transforms/Passes.h"

void kiln::registerAllDialects(mlir::DialectRegistry &registry) {
  registry.insert<mlir::kiln::KilnDialect, mlir::func::FuncDialect>();
}

void kiln::registerAllPasses() {
  mlir::registerCanonicalizerPass();
  mlir::registerCSEPass();
  mlir::registerSymbolDCEPass();
  mlir::kiln::registerKilnPasses();
  mlir::kiln::registerKilnPipelines();
}
