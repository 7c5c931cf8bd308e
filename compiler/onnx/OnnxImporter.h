//===- OnnxImporter.h - ONNX to the kiln dialect ----------------*- C++ -*-===//
//
// Imports an ONNX ModelProto into a module holding one `func.func @main`
// whose arguments and results are the graph's inputs and outputs, plus a
// `kiln.global` for every weight. Weights stay in the WeightStore (mapped
// files); dynamic dimensions keep their ONNX names as `#kiln.dims`.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_COMPILER_ONNX_ONNXIMPORTER_H
#define KILN_COMPILER_ONNX_ONNXIMPORTER_H

#include "compiler/weights/WeightStore.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"

namespace kiln {

struct OnnxImportOptions {
  /// Initializers with at most this many elements become `kiln.constant`
  /// (shape vectors, scalars); larger ones become weights.
  int64_t maxConstantElements = 64;
  /// Name of the generated function.
  std::string functionName = "main";
};

/// Imports the ONNX file at `path`. External data files are resolved next to
/// it and mapped by `store`. On failure a diagnostic naming the file, node,
/// op and what was expected has been emitted on `ctx`, and null is returned.
mlir::OwningOpRef<mlir::ModuleOp>
importOnnxFile(llvm::StringRef path, mlir::MLIRContext *ctx, WeightStore &store,
               const OnnxImportOptions &options = {});

/// Imports an ONNX model held in memory (`name` is used in messages and as
/// the file name of embedded weights, which must stay readable through
/// `store` — importOnnxFile arranges that). Used for stdin and fuzzing.
mlir::OwningOpRef<mlir::ModuleOp>
importOnnxBytes(llvm::ArrayRef<uint8_t> bytes, llvm::StringRef name,
                mlir::MLIRContext *ctx, WeightStore &store,
                const OnnxImportOptions &options = {});

/// Registers `--import-onnx` with mlir-translate style tools.
void registerOnnxImportTranslation();

} // namespace kiln

#endif // KILN_COMPILER_ONNX_ONNXIMPORTER_H
