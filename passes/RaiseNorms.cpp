//===- RaiseNorms.cpp - raise decomposed RMSNorm to kiln.rms_norm ---------===//
//
// Matches structure, not an exporter: the pattern is rooted at the final
// scale multiply and walks back through the normalization, accepting each
// spelling exporters use for the same arithmetic.
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"
#include "passes/PatternUtils.h"

#include "mlir/IR/Matchers.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace mlir::kiln {
#define GEN_PASS_DEF_RAISENORMSPASS
#include "passes/Passes.h.inc"

namespace {

/// If `v` is `x * x` or `pow(x, 2)`, returns x.
Value matchSquare(Value v) {
  if (auto mul = v.getDefiningOp<MulOp>())
    return mul.getLhs() == mul.getRhs() ? mul.getLhs() : Value();
  if (auto pow = v.getDefiningOp<PowOp>())
    return getScalarFloat(pow.getRhs()) == 2.0 ? pow.getLhs() : Value();
  return {};
}

/// If `v` is `sqrt(mean(x^2, last axis, keepdims) + eps)`, returns x and eps.
std::optional<std::pair<Value, double>> matchRootMeanSquare(Value v) {
  auto sqrt = v.getDefiningOp<SqrtOp>();
  if (!sqrt)
    return std::nullopt;
  auto add = sqrt.getInput().getDefiningOp<AddOp>();
  if (!add)
    return std::nullopt;
  Value meanValue = add.getLhs();
  std::optional<double> eps = getScalarFloat(add.getRhs());
  if (!eps) {
    meanValue = add.getRhs();
    eps = getScalarFloat(add.getLhs());
  }
  auto mean = meanValue.getDefiningOp<ReduceMeanOp>();
  if (!eps || *eps < 0 || !mean || !mean.getKeepdims())
    return std::nullopt;
  int64_t rank = cast<RankedTensorType>(mean.getInput().getType()).getRank();
  if (mean.getAxes().size() != 1 || mean.getAxes()[0] != rank - 1)
    return std::nullopt;
  Value x = matchSquare(mean.getInput());
  if (!x)
    return std::nullopt;
  return std::make_pair(x, *eps);
}

/// If `v` is x normalized by its RMS (`x * (1 / rms)`, `x * reciprocal(rms)`
/// or `x / rms`, either order), returns x and eps.
std::optional<std::pair<Value, double>> matchNormalized(Value v) {
  if (auto div = v.getDefiningOp<DivOp>()) {
    auto rms = matchRootMeanSquare(div.getRhs());
    if (rms && rms->first == div.getLhs())
      return rms;
    return std::nullopt;
  }
  auto mul = v.getDefiningOp<MulOp>();
  if (!mul)
    return std::nullopt;
  for (auto [x, inv] : {std::pair(mul.getLhs(), mul.getRhs()),
                        std::pair(mul.getRhs(), mul.getLhs())}) {
    Value root;
    if (auto recip = inv.getDefiningOp<ReciprocalOp>())
      root = recip.getInput();
    else if (auto div = inv.getDefiningOp<DivOp>();
             div && getScalarFloat(div.getLhs()) == 1.0)
      root = div.getRhs();
    if (!root)
      continue;
    auto rms = matchRootMeanSquare(root);
    if (rms && rms->first == x)
      return rms;
  }
  return std::nullopt;
}

/// w * normalized(x) -> kiln.rms_norm(x, w).
struct RaiseRMSNorm : OpRewritePattern<MulOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(MulOp op,
                                PatternRewriter &rewriter) const override {
    for (auto [normalized, weight] : {std::pair(op.getLhs(), op.getRhs()),
                                      std::pair(op.getRhs(), op.getLhs())}) {
      std::optional<std::pair<Value, double>> match =
          matchNormalized(normalized);
      if (!match)
        continue;
      auto [x, eps] = *match;
      auto xType = cast<RankedTensorType>(x.getType());
      auto wType = cast<RankedTensorType>(weight.getType());
      int64_t last = xType.getRank() - 1;
      if (last < 0 || wType.getRank() != 1 || xType.isDynamicDim(last) ||
          wType.getDimSize(0) != xType.getDimSize(last) ||
          wType.getElementType() != xType.getElementType() ||
          op.getType() != x.getType())
        continue;
      rewriter.replaceOpWithNewOp<RMSNormOp>(
          op, op.getType(), x, weight, rewriter.getI64IntegerAttr(last),
          rewriter.getF32FloatAttr(static_cast<float>(eps)));
      return success();
    }
    return rewriter.notifyMatchFailure(op, "not a scaled RMS normalization");
  }
};

struct RaiseNormsPass : impl::RaiseNormsPassBase<RaiseNormsPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<RaiseRMSNorm>(&getContext());
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};

} // namespace
} // namespace mlir::kiln
