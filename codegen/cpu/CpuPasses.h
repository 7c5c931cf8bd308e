//===- CpuPasses.h - kiln CPU code generation -------------------*- C++ -*-===//

#ifndef KILN_CODEGEN_CPU_CPUPASSES_H
#define KILN_CODEGEN_CPU_CPUPASSES_H

#include "dialects/kiln/IR/KilnDialect.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/Pass.h"

namespace mlir::kiln {

#define GEN_PASS_DECL
#include "codegen/cpu/CpuPasses.h.inc"

#define GEN_PASS_REGISTRATION
#include "codegen/cpu/CpuPasses.h.inc"

/// Whether `op` is lowered to a matmul kernel call: f32 activations times a
/// static 2-D f32 right-hand side.
bool isKernelMatMul(MatMulOp op);

/// Gives every kiln.global without one a `kiln.offset`: its 64-byte-aligned
/// place in the artifact's weights file, in declaration order. Returns the
/// file's size.
int64_t assignWeightOffsets(ModuleOp module);

/// --convert-kiln-to-loops and then the standard conversions down to the
/// LLVM dialect (`--kiln-cpu-pipeline`); `graphMode` as the pass's `graph`.
void buildCpuPipeline(OpPassManager &pm, int64_t maxBatchTokens,
                      bool graphMode = false);

/// Registers the CPU passes and `--kiln-cpu-pipeline` for kiln-opt.
void registerCpuCodegen();

} // namespace mlir::kiln

#endif // KILN_CODEGEN_CPU_CPUPASSES_H
