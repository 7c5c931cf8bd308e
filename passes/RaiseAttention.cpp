//===- RaiseAttention.cpp - raise decomposed SDPA to kiln.attention -------===//
//
// Rooted at the final `probabilities @ values` matmul and walked backwards;
// every step accepts the spellings exporters use (where the scale goes,
// mask operand order, NaN guards, repeat_kv for grouped-query attention).
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"
#include "passes/PatternUtils.h"

#include "mlir/IR/Matchers.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace mlir::kiln {
#define GEN_PASS_DEF_RAISEATTENTIONPASS
#include "passes/Passes.h.inc"

namespace {

/// Peels `x * c` / `c * x` / `x / c` with a scalar constant c, multiplying
/// `scale` by the factor.
Value peelScale(Value v, double &scale) {
  while (true) {
    if (auto mul = v.getDefiningOp<MulOp>()) {
      if (std::optional<double> c = getScalarFloat(mul.getRhs())) {
        scale *= *c;
        v = mul.getLhs();
        continue;
      }
      if (std::optional<double> c = getScalarFloat(mul.getLhs())) {
        scale *= *c;
        v = mul.getRhs();
        continue;
      }
    }
    if (auto div = v.getDefiningOp<DivOp>()) {
      if (std::optional<double> c = getScalarFloat(div.getRhs());
          c && *c != 0) {
        scale /= *c;
        v = div.getLhs();
        continue;
      }
    }
    return v;
  }
}

/// The scores `scale * q k^T` below `v`, possibly soft-capped as
/// `cap * tanh(x / cap)` (Gemma 2): returns the value under the scale
/// factors, multiplies `scale` by them and sets `softcap`. Inside the tanh
/// only the product scale / cap is seen, which with the outer cap gives
/// the scale.
Value peelScores(Value v, double &scale, double &softcap) {
  double outer = 1.0;
  Value t = peelScale(v, outer);
  if (auto tanh = t.getDefiningOp<TanhOp>()) {
    double inner = 1.0;
    Value x = peelScale(tanh.getInput(), inner);
    if (!(outer > 0))
      return {};
    softcap = outer;
    scale *= inner * outer;
    return x;
  }
  scale *= outer;
  return t;
}

/// Matches the 5-D middle of repeat_kv: expand(reshape(k)) where k is
/// [B, H, T, D], the reshape gives [B, H, 1, T, D] and the expand
/// [B, H, n, T, D]. Returns k and n.
std::optional<std::pair<Value, DimExpr>> matchRepeated5D(Value v) {
  auto expand = v.getDefiningOp<ExpandOp>();
  if (!expand)
    return std::nullopt;
  auto inner = expand.getInput().getDefiningOp<ReshapeOp>();
  if (!inner || inner.getShape())
    return std::nullopt;
  Value k = inner.getInput();
  SmallVector<DimExpr> kd = dimsOf(k), id = dimsOf(inner.getResult()),
                       ed = dimsOf(expand.getResult());
  if (kd.size() != 4 || id.size() != 5 || ed.size() != 5)
    return std::nullopt;
  DimExpr one = DimExpr::constant(1);
  if (id != SmallVector<DimExpr>{kd[0], kd[1], one, kd[2], kd[3]} ||
      ed[0] != kd[0] || ed[1] != kd[1] || ed[3] != kd[2] || ed[4] != kd[3] ||
      !ed[2].getConstant())
    return std::nullopt;
  return std::make_pair(k, ed[2]);
}

/// Unwraps repeat_kv (reshape to [B, H*n, T, D] of the 5-D repetition) and
/// returns the [B, H, T, D] input, or `v` itself when it is not repeated.
Value unrepeat(Value v) {
  auto outer = v.getDefiningOp<ReshapeOp>();
  if (!outer || outer.getShape())
    return v;
  auto rep = matchRepeated5D(outer.getInput());
  if (!rep)
    return v;
  SmallVector<DimExpr> kd = dimsOf(rep->first), od = dimsOf(v);
  if (od != SmallVector<DimExpr>{kd[0], kd[1] * rep->second, kd[2], kd[3]})
    return v;
  return rep->first;
}

/// If `kT` is k with its last two dimensions swapped, returns k: a 4-D
/// transpose [0, 1, 3, 2], or (torch dynamo) heads merged into batch,
/// transposed [0, 2, 1] and split again.
Value untranspose(Value kT) {
  if (auto t = kT.getDefiningOp<TransposeOp>())
    return t.getPerm() == ArrayRef<int64_t>{0, 1, 3, 2} ? t.getInput()
                                                        : Value();
  auto split = kT.getDefiningOp<ReshapeOp>();
  if (!split || split.getShape())
    return {};
  auto t = split.getInput().getDefiningOp<TransposeOp>();
  if (!t || t.getPerm() != ArrayRef<int64_t>{0, 2, 1})
    return {};
  auto merge = t.getInput().getDefiningOp<ReshapeOp>();
  if (!merge || merge.getShape())
    return {};
  // The merged tensor is [B * H, T, D] of a 4-D k, or of the 5-D middle of
  // repeat_kv when canonicalization collapsed the reshapes between them.
  Value k = merge.getInput();
  SmallVector<DimExpr> kd = dimsOf(k);
  if (auto rep = matchRepeated5D(k)) {
    k = rep->first;
    kd = dimsOf(k);
    kd[1] = kd[1] * rep->second;
  }
  SmallVector<DimExpr> md = dimsOf(merge.getResult()), sd = dimsOf(kT);
  if (kd.size() != 4 || md.size() != 3 || sd.size() != 4)
    return {};
  if (md[1] != kd[2] || md[2] != kd[3])
    return {};
  if (sd != SmallVector<DimExpr>{kd[0], kd[1], kd[3], kd[2]})
    return {};
  return k;
}

struct RaiseAttention : OpRewritePattern<MatMulOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(MatMulOp op,
                                PatternRewriter &rewriter) const override {
    // probabilities @ values
    Value probs = op.getLhs();
    if (auto guard = probs.getDefiningOp<WhereOp>()) {
      // where(is_nan(p), 0, p)
      auto isNan = guard.getCondition().getDefiningOp<IsNaNOp>();
      if (isNan && isNan.getInput() == guard.getRhs() &&
          getScalarFloat(guard.getLhs()) == 0.0)
        probs = guard.getRhs();
    }
    auto softmax = probs.getDefiningOp<SoftmaxOp>();
    if (!softmax)
      return rewriter.notifyMatchFailure(op, "not softmax(...) @ v");
    int64_t rank = cast<RankedTensorType>(softmax.getType()).getRank();
    if (rank != 4 || softmax.getAxis() != 3)
      return rewriter.notifyMatchFailure(op, "softmax not over the last axis");

    // scores (+ mask)
    double scale = 1.0, softcap = 0.0;
    Value scores = softmax.getInput(), mask;
    if (auto add = scores.getDefiningOp<AddOp>()) {
      for (auto [s, m] : {std::pair(add.getLhs(), add.getRhs()),
                          std::pair(add.getRhs(), add.getLhs())}) {
        double trialScale = 1.0, trialCap = 0.0;
        Value under = peelScores(s, trialScale, trialCap);
        if (under && under.getDefiningOp<MatMulOp>()) {
          scores = s;
          mask = m;
          break;
        }
      }
    }
    Value under = peelScores(scores, scale, softcap);
    auto qk = under ? under.getDefiningOp<MatMulOp>() : MatMulOp();
    if (!qk)
      return rewriter.notifyMatchFailure(op, "scores are not q @ k^T");
    Value q = peelScale(qk.getLhs(), scale);
    Value keys = untranspose(peelScale(qk.getRhs(), scale));
    if (!keys)
      return rewriter.notifyMatchFailure(op, "key is not k^T");
    Value k = unrepeat(peelScale(keys, scale));
    Value v = unrepeat(op.getRhs());

    // Shapes must be [B, H, S, D] / [B, Hkv, T, D] / [B, Hkv, T, Dv].
    SmallVector<DimExpr> qd = dimsOf(q), kd = dimsOf(k), vd = dimsOf(v);
    if (qd.size() != 4 || kd.size() != 4 || vd.size() != 4 || kd[1] != vd[1] ||
        kd[2] != vd[2] || qd[3] != kd[3] || qd[0] != kd[0] || qd[0] != vd[0])
      return rewriter.notifyMatchFailure(op, "operands are not [B, H, S, D]");
    std::optional<int64_t> hq = qd[1].getConstant(), hk = kd[1].getConstant();
    if (!hq || !hk || *hq % *hk != 0)
      return rewriter.notifyMatchFailure(op, "heads are not a GQA grouping");
    if (mask) {
      if (!isa<FloatType>(cast<ShapedType>(mask.getType()).getElementType()))
        return rewriter.notifyMatchFailure(op, "additive mask must be float");
      FailureOr<SmallVector<DimExpr>> b =
          broadcastShapes({qd[0], qd[1], qd[2], kd[2]}, dimsOf(mask));
      if (failed(b) || b->size() != 4)
        return rewriter.notifyMatchFailure(op, "mask does not broadcast");
    }
    if (op.getType() != RankedTensorType(getTensorType(
                            {qd[0], qd[1], qd[2], vd[3]},
                            cast<ShapedType>(q.getType()).getElementType())))
      return rewriter.notifyMatchFailure(op, "result is not [B, H, S, Dv]");

    rewriter.replaceOpWithNewOp<AttentionOp>(
        op, op.getType(), q, k, v, mask, Value(),
        rewriter.getF32FloatAttr(static_cast<float>(scale)), nullptr,
        rewriter.getF32FloatAttr(static_cast<float>(softcap)),
        rewriter.getI64IntegerAttr(-1), rewriter.getI64IntegerAttr(-1));
    return success();
  }
};

struct RaiseAttentionPass : impl::RaiseAttentionPassBase<RaiseAttentionPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<RaiseAttention>(&getContext());
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};

} // namespace
} // namespace mlir::kiln
