//===- Registration.cpp - everything a kiln tool registers ----------------===//

#include "compiler/Registration.h"

#include "codegen/cpu/CpuPasses.h"
#include "dialects/kiln/IR/KilnDialect.h"
#include "passes/Passes.h"

#include "mlir/Dialect/Affine/IR/AffineOps.h"
#include "mlir/Dialect/ControlFlow/IR/ControlFlow.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Transforms/Passes.h"

void kiln::registerAllDialects(mlir::DialectRegistry &registry) {
  registry.insert<mlir::kiln::KilnDialect, mlir::func::FuncDialect,
                  mlir::arith::ArithDialect, mlir::math::MathDialect,
                  mlir::memref::MemRefDialect, mlir::linalg::LinalgDialect,
                  mlir::scf::SCFDialect, mlir::cf::ControlFlowDialect,
                  mlir::affine::AffineDialect, mlir::LLVM::LLVMDialect>();
}

void kiln::registerAllPasses() {
  mlir::registerCanonicalizerPass();
  mlir::registerCSEPass();
  mlir::registerSymbolDCEPass();
  mlir::kiln::registerKilnPasses();
  mlir::kiln::registerKilnPipelines();
  mlir::kiln::registerCpuCodegen();
}
