//===- RaiseGlu.cpp - raise gated activations to kiln.glu -----------------===//
//
// A gated MLP multiplies an activation of the gate projection by the up
// projection. Exporters write the product with its factors in any order and
// grouping (SiLU as x * sigmoid(x) adds a third factor), so the match
// flattens products into factor lists, as RaiseGelu does.
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"
#include "passes/PatternUtils.h"

#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

#include <cmath>

namespace mlir::kiln {
#define GEN_PASS_DEF_RAISEGLUPASS
#include "passes/Passes.h.inc"

namespace {

/// The activation `v` applies to its input, by kiln.glu's names.
std::optional<std::pair<StringRef, Value>> activationOf(Value v) {
  Operation *def = v.getDefiningOp();
  if (auto gelu = dyn_cast_or_null<GeluOp>(def))
    return std::pair(
        StringRef(gelu.getApproximate() == "tanh" ? "gelu_tanh" : "gelu"),
        gelu.getInput());
  if (auto relu = dyn_cast_or_null<ReluOp>(def))
    return std::pair(StringRef("relu"), relu.getInput());
  if (auto sigmoid = dyn_cast_or_null<SigmoidOp>(def))
    return std::pair(StringRef("sigmoid"), sigmoid.getInput());
  return std::nullopt;
}

struct RaiseGlu : OpRewritePattern<MulOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(MulOp op,
                                PatternRewriter &rewriter) const override {
    Type type = op.getType();
    if (!isa<FloatType>(cast<ShapedType>(type).getElementType()))
      return rewriter.notifyMatchFailure(op, "not a float product");
    Factors f;
    collectFactors(op.getResult(), f);
    if (f.constant != 1.0)
      return rewriter.notifyMatchFailure(op, "the product has a constant");
    SmallVector<Value, 4> &v = f.values;
    auto rewrite = [&](StringRef activation, Value gate, Value up) {
      if (gate.getType() != type || up.getType() != type)
        return rewriter.notifyMatchFailure(op, "gate or up is broadcast");
      rewriter.replaceOpWithNewOp<GluOp>(op, type, gate, up,
                                         rewriter.getStringAttr(activation));
      return success();
    };
    // silu: {g, sigmoid(g), up}.
    if (v.size() == 3)
      for (int i = 0; i < 3; ++i) {
        auto sigmoid = v[i].getDefiningOp<SigmoidOp>();
        if (!sigmoid)
          continue;
        Value g = sigmoid.getInput();
        for (int j = 0; j < 3; ++j) {
          if (j == i || v[j] != g)
            continue;
          return rewrite("silu", g, v[3 - i - j]);
        }
      }
    // {act(g), up}. sigmoid(g) * g is a plain SiLU, not a gate: left alone,
    // so that the product it is part of can match as a whole.
    if (v.size() == 2)
      for (int i = 0; i < 2; ++i) {
        auto act = activationOf(v[i]);
        if (!act || (act->first == "sigmoid" && v[1 - i] == act->second))
          continue;
        return rewrite(act->first, act->second, v[1 - i]);
      }
    return rewriter.notifyMatchFailure(op, "not activation(gate) * up");
  }
};

struct RaiseGluPass : impl::RaiseGluPassBase<RaiseGluPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<RaiseGlu>(&getContext());
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};

} // namespace
} // namespace mlir::kiln
