//===- Pipelines.cpp - kiln pass pipelines --------------------------------===//

#include "passes/Passes.h"

#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/Passes.h"

using namespace mlir;

void mlir::kiln::buildCanonicalFormPipeline(OpPassManager &pm) {
  // Fold shape computations first so that raising sees plain values, then
  // raise, then clean up what raising left dead.
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createRaiseNormsPass());
  pm.addPass(createRaiseGeluPass());
  pm.addPass(createRaiseGluPass());
  pm.addPass(createRaiseRotaryPass());
  pm.addPass(createRaiseAttentionPass());
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createCSEPass());
}

void mlir::kiln::registerKilnPipelines() {
  PassPipelineRegistration<>(
      "kiln-canonical-form",
      "Bring imported IR to the kiln canonical form (what kilnc runs)",
      [](OpPassManager &pm) { buildCanonicalFormPipeline(pm); });
}
