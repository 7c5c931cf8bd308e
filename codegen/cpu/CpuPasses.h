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

/// How a matmul with a quantized (4/8-bit) weight multiplies: `Auto` as its
/// `accuracy_level` says (4: activations rounded to int8 per group, as
/// onnxruntime computes; anything else fp32), or always `F32`, or `Int8`
/// wherever the int8 kernel applies (groups of 16 to 256).
enum class QuantCompute { Auto, F32, Int8 };

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
/// LLVM dialect (`--kiln-cpu-pipeline`); `graphMode` and `quantCompute` as
/// the pass's `graph` and `quant-compute`.
void buildCpuPipeline(OpPassManager &pm, int64_t maxBatchTokens,
                      bool graphMode = false,
                      QuantCompute quantCompute = QuantCompute::Auto);

/// Registers the CPU passes and `--kiln-cpu-pipeline` for kiln-opt.
void registerCpuCodegen();

} // namespace mlir::kiln

#endif // KILN_CODEGEN_CPU_CPUPASSES_H
