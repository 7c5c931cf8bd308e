//===- RaiseGelu.cpp - raise decomposed GELU to kiln.gelu -----------------===//
//
// GELU is a product of factors whose grouping varies by exporter, so the
// match flattens products into factor lists and compares those as sets.
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"
#include "passes/PatternUtils.h"

#include "mlir/IR/Matchers.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

#include <cmath>

namespace mlir::kiln {
#define GEN_PASS_DEF_RAISEGELUPASS
#include "passes/Passes.h.inc"

namespace {

bool near(double a, double b) {
  return std::abs(a - b) <= 1e-5 * std::max(std::abs(a), std::abs(b));
}

/// If `v` is `1 + t` (either order), returns t.
Value matchOnePlus(Value v) {
  auto add = v.getDefiningOp<AddOp>();
  if (!add)
    return {};
  if (std::optional<double> c = getScalarFloat(add.getLhs());
      c && near(*c, 1.0))
    return add.getRhs();
  if (std::optional<double> c = getScalarFloat(add.getRhs());
      c && near(*c, 1.0))
    return add.getLhs();
  return {};
}

/// Whether `v` is x^3: pow(x, 3) or a product x * x * x.
bool isCube(Value v, Value x) {
  if (auto pow = v.getDefiningOp<PowOp>())
    return pow.getLhs() == x && getScalarFloat(pow.getRhs()) == 3.0;
  Factors f;
  collectFactors(v, f);
  return near(f.constant, 1.0) && f.values.size() == 3 &&
         llvm::all_of(f.values, [&](Value y) { return y == x; });
}

/// Whether `u` is sqrt(2/pi) * (x + 0.044715 * x^3).
bool isTanhArgument(Value u, Value x) {
  Factors f;
  collectFactors(u, f);
  if (!near(f.constant, std::sqrt(2.0 / M_PI)) || f.values.size() != 1)
    return false;
  auto add = f.values[0].getDefiningOp<AddOp>();
  if (!add)
    return false;
  Value other = add.getLhs() == x   ? add.getRhs()
                : add.getRhs() == x ? add.getLhs()
                                    : Value();
  if (!other)
    return false;
  Factors g;
  collectFactors(other, g);
  if (g.values.size() == 1)
    return near(g.constant, 0.044715) && isCube(g.values[0], x);
  return near(g.constant, 0.044715) && g.values.size() == 3 &&
         llvm::all_of(g.values, [&](Value y) { return y == x; });
}

/// Whether `u` is x / sqrt(2).
bool isErfArgument(Value u, Value x) {
  Factors f;
  collectFactors(u, f);
  return near(f.constant, 1.0 / std::sqrt(2.0)) && f.values.size() == 1 &&
         f.values[0] == x;
}

struct RaiseGelu : OpRewritePattern<MulOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(MulOp op,
                                PatternRewriter &rewriter) const override {
    Factors f;
    collectFactors(op.getResult(), f);
    if (!near(f.constant, 0.5) || f.values.size() != 2)
      return rewriter.notifyMatchFailure(op, "not 0.5 * x * (1 + t)");
    for (auto [x, onePlus] : {std::pair(f.values[0], f.values[1]),
                              std::pair(f.values[1], f.values[0])}) {
      Value t = matchOnePlus(onePlus);
      if (!t || x.getType() != op.getType() ||
          !isa<FloatType>(cast<ShapedType>(x.getType()).getElementType()))
        continue;
      StringRef mode;
      if (auto tanh = t.getDefiningOp<TanhOp>();
          tanh && isTanhArgument(tanh.getInput(), x))
        mode = "tanh";
      else if (auto erf = t.getDefiningOp<ErfOp>();
               erf && isErfArgument(erf.getInput(), x))
        mode = "none";
      if (mode.empty())
        continue;
      rewriter.replaceOpWithNewOp<GeluOp>(op, op.getType(), x,
                                          rewriter.getStringAttr(mode));
      return success();
    }
    return rewriter.notifyMatchFailure(op, "factors are not a GELU");
  }
};

struct RaiseGeluPass : impl::RaiseGeluPassBase<RaiseGeluPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<RaiseGelu>(&getContext());
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};

} // namespace
} // namespace mlir::kiln
