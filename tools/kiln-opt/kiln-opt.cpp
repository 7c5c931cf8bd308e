//===- kiln-opt.cpp - run kiln passes on MLIR -----------------------------===//
//
// The pass driver for compiler engineers: every kiln dialect and pass is
// registered, so `kiln-opt --kiln-... in.mlir | FileCheck in.mlir` works
// under lit.
//
//===----------------------------------------------------------------------===//

#include "compiler/Registration.h"

#include "mlir/Tools/mlir-opt/MlirOptMain.h"

int main(int argc, char **argv) {
  mlir::DialectRegistry registry;
  kiln::registerAllDialects(registry);
  kiln::registerAllPasses();
  return mlir::asMainReturnCode(
      mlir::MlirOptMain(argc, argv, "kiln optimizer driver\n", registry));
}
