//===- Target.h - LLVM dialect to a shared library --------------*- C++ -*-===//
//
// The last step of CPU codegen: translate the LLVM-dialect module to LLVM
// IR, optimize it for the target CPU, emit an object in process and link
// it into `model.so` with lld.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_CODEGEN_CPU_TARGET_H
#define KILN_CODEGEN_CPU_TARGET_H

#include "mlir/IR/BuiltinOps.h"
#include "llvm/Support/Error.h"

#include <string>
#include <vector>

namespace mlir::kiln {

/// What the code is compiled for. Empty cpu/features mean the host's.
struct CpuTarget {
  std::string triple;
  std::string cpu;
  /// LLVM feature string, e.g. "+avx2,+fma".
  std::string features;
};

/// The host CPU, with the features it has.
CpuTarget hostCpuTarget();

/// Fills in the host for empty fields and checks that LLVM knows the target.
llvm::Error resolveCpuTarget(CpuTarget &target);

/// The features of `target` that are enabled ("avx2", "fma", ...), for the
/// manifest and the runtime's load-time check.
std::vector<std::string> enabledFeatures(const CpuTarget &target);

/// What to write besides the library.
struct EmitOutputs {
  std::string *llvmIR = nullptr;   ///< optimized LLVM IR text
  std::string *assembly = nullptr; ///< target assembly
};

/// Compiles `module` (LLVM dialect only) for `target` and links
/// `libraryPath`. Uses `ld.lld` found on PATH.
llvm::Error emitSharedLibrary(ModuleOp module, const CpuTarget &target,
                              llvm::StringRef libraryPath,
                              EmitOutputs outputs = {});

} // namespace mlir::kiln

#endif // KILN_CODEGEN_CPU_TARGET_H
