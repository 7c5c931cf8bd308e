//===- OnnxImportFuzzer.cpp - libFuzzer target for the ONNX importer ------===//
//
// Feeds arbitrary bytes to importOnnxBytes(). Any outcome but a crash, a
// sanitizer report or a hang is fine: bad input must end in a diagnostic.
// Build with -DKILN_BUILD_FUZZERS=ON (clang only), then
//   build-fuzz/bin/kiln-fuzz-onnx-import test/fuzz/corpus/onnx-import
//
//===----------------------------------------------------------------------===//

#include "compiler/onnx/OnnxImporter.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  // One context for the whole run: creating one per input would dominate.
  static mlir::MLIRContext *ctx = [] {
    auto *c = new mlir::MLIRContext(mlir::MLIRContext::Threading::DISABLED);
    c->loadDialect<mlir::kiln::KilnDialect, mlir::func::FuncDialect>();
    return c;
  }();
  mlir::ScopedDiagnosticHandler quiet(
      ctx, [](mlir::Diagnostic &) { return mlir::success(); });
  kiln::WeightStore store(".");
  mlir::OwningOpRef<mlir::ModuleOp> module = kiln::importOnnxBytes(
      llvm::ArrayRef<uint8_t>(data, size), "fuzz.onnx", ctx, store);
  return 0;
}
