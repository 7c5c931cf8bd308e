//===- PackWeights.cpp - weights in the layout the CPU kernels read -------===//

#include "codegen/cpu/CpuPasses.h"

#include "compiler/weights/WeightLayout.h"

#include "llvm/ADT/DenseMap.h"

namespace mlir::kiln {
#define GEN_PASS_DEF_PACKWEIGHTSPASS
#include "codegen/cpu/CpuPasses.h.inc"

namespace {

struct PackWeightsPass : impl::PackWeightsPassBase<PackWeightsPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    llvm::DenseMap<StringAttr, SmallVector<WeightOp>> reads;
    module.walk(
        [&](WeightOp w) { reads[w.getNameAttr().getAttr()].push_back(w); });
    Builder b(module.getContext());
    for (auto global : module.getOps<GlobalOp>()) {
      if (global->hasAttr("kiln.offset") ||
          global->hasAttr(::kiln::kLayoutAttr))
        continue; // placed or laid out already
      if (!::kiln::canUsePanelLayout(global))
        continue;
      auto it = reads.find(global.getSymNameAttr());
      if (it == reads.end())
        continue;
      bool onlyMatMulRhs = true;
      for (WeightOp w : it->second)
        for (OpOperand &use : w->getUses()) {
          auto mm = dyn_cast<MatMulOp>(use.getOwner());
          onlyMatMulRhs &=
              mm && use.getOperandNumber() == 1 && isKernelMatMul(mm);
        }
      if (onlyMatMulRhs)
        global->setAttr(::kiln::kLayoutAttr,
                        b.getStringAttr(::kiln::kPanelsLayout));
    }
  }
};

} // namespace
} // namespace mlir::kiln
