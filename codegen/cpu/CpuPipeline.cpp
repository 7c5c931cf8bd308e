//===- CpuPipeline.cpp - kiln IR to the LLVM dialect ----------------------===//

#include "codegen/cpu/CpuPasses.h"
#include "passes/Passes.h"

#include "mlir/Conversion/AffineToStandard/AffineToStandard.h"
#include "mlir/Conversion/ArithToLLVM/ArithToLLVM.h"
#include "mlir/Conversion/ControlFlowToLLVM/ControlFlowToLLVM.h"
#include "mlir/Conversion/FuncToLLVM/ConvertFuncToLLVMPass.h"
#include "mlir/Conversion/IndexToLLVM/IndexToLLVM.h"
#include "mlir/Conversion/MathToLLVM/MathToLLVM.h"
#include "mlir/Conversion/MathToLibm/MathToLibm.h"
#include "mlir/Conversion/MemRefToLLVM/MemRefToLLVM.h"
#include "mlir/Conversion/ReconcileUnrealizedCasts/ReconcileUnrealizedCasts.h"
#include "mlir/Conversion/SCFToControlFlow/SCFToControlFlow.h"
#include "mlir/Dialect/Linalg/Passes.h"
#include "mlir/Dialect/MemRef/Transforms/Passes.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/Passes.h"

using namespace mlir;

void mlir::kiln::buildCpuPipeline(OpPassManager &pm, int64_t maxBatchTokens,
                                  bool graphMode, QuantCompute quantCompute) {
  ConvertKilnToLoopsPassOptions options;
  options.maxBatchTokens = maxBatchTokens;
  options.graphMode = graphMode;
  options.quantCompute = quantCompute;
  if (!graphMode) {
    // Both do nothing where kilnc ran them before placing the weights.
    pm.addPass(createFuseMatMulsPass());
    pm.addPass(createPackWeightsPass());
  }
  pm.addPass(createConvertKilnToLoopsPass(options));
  pm.addPass(createApproximateMathPass());
  pm.addPass(createConvertLinalgToLoopsPass());
  pm.addPass(memref::createExpandStridedMetadataPass());
  pm.addPass(createLowerAffinePass());
  pm.addPass(createSCFToControlFlowPass());
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createCSEPass());
  // Math ops LLVM has intrinsics for first; the rest (tanh, erf) call libm.
  pm.addPass(createConvertMathToLLVMPass());
  pm.addPass(createConvertMathToLibmPass());
  pm.addPass(createFinalizeMemRefToLLVMConversionPass());
  pm.addPass(createArithToLLVMConversionPass());
  pm.addPass(createConvertIndexToLLVMPass());
  pm.addPass(createConvertControlFlowToLLVMPass());
  pm.addPass(createConvertFuncToLLVMPass());
  pm.addPass(createReconcileUnrealizedCastsPass());
}

void mlir::kiln::registerCpuCodegen() {
  registerKilnCpuPasses();
  PassPipelineRegistration<>(
      "kiln-cpu-pipeline",
      "Lower the step function to the LLVM dialect (max-batch-tokens 256)",
      [](OpPassManager &pm) { buildCpuPipeline(pm, 256); });
}
