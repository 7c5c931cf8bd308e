//===- RaiseRotary.cpp - raise decomposed RoPE to kiln.rotary -------------===//
//
// Matches structure, not an exporter: `x * C + rotate(x) * S` with C and S
// proven to hold each angle's cos/sin twice along the last axis. The proof
// is what makes the rewrite safe: kiln.rotary reads one cos/sin per pair,
// so if the two copies could differ, raising would silently change the
// result. Where the copies cannot be proven equal, nothing is raised.
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"
#include "passes/PatternUtils.h"

#include "mlir/IR/IRMapping.h"
#include "mlir/IR/Matchers.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/IR/TypeUtilities.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

#include <algorithm>

namespace mlir::kiln {
#define GEN_PASS_DEF_RAISEROTARYPASS
#include "passes/Passes.h.inc"

namespace {

int64_t rankOf(Value v) {
  return cast<RankedTensorType>(v.getType()).getRank();
}

/// The static size of the last dimension of `v`, if any.
std::optional<int64_t> lastDim(Value v) {
  auto type = cast<RankedTensorType>(v.getType());
  if (type.getRank() == 0 || type.isDynamicDim(type.getRank() - 1))
    return std::nullopt;
  return type.getDimSize(type.getRank() - 1);
}

/// Whether every dimension is known (no `?`) and `a` equals `b`.
bool sameKnownDims(ArrayRef<DimExpr> a, ArrayRef<DimExpr> b) {
  return a.size() == b.size() &&
         llvm::all_of(a, [](const DimExpr &d) { return !d.isUnknown(); }) &&
         llvm::equal(a, b);
}

/// The value of a one-element integer constant (slice starts and ends).
std::optional<int64_t> getScalarInt(Value v) {
  DenseIntElementsAttr attr;
  if (!matchPattern(v, m_Constant(&attr)) || attr.getNumElements() != 1)
    return std::nullopt;
  return (*attr.getValues<APInt>().begin()).getSExtValue();
}

/// A slice of the last axis with constant bounds: `input[start::step]`
/// taking `count` elements.
struct LastAxisSlice {
  Value input;
  int64_t start, step, count;
};

/// Matches `v` as a slice of its input's last axis alone, with constant
/// bounds (normalized as ONNX does) and a positive step.
std::optional<LastAxisSlice> matchLastAxisSlice(Value v) {
  auto slice = v.getDefiningOp<SliceOp>();
  if (!slice || slice.getAxes().size() != 1 ||
      slice.getAxes()[0] != rankOf(slice.getInput()) - 1)
    return std::nullopt;
  std::optional<int64_t> size = lastDim(slice.getInput()),
                         start = getScalarInt(slice.getStarts()),
                         end = getScalarInt(slice.getEnds()),
                         got = lastDim(slice.getResult());
  int64_t step = slice.getSteps()[0];
  if (!size || !start || !end || !got || step <= 0)
    return std::nullopt;
  auto clamp = [&](int64_t i) {
    if (i < 0)
      i += *size;
    return std::clamp<int64_t>(i, 0, *size);
  };
  int64_t s = clamp(*start), e = clamp(*end);
  int64_t count = e > s ? (e - s + step - 1) / step : 0;
  if (count != *got)
    return std::nullopt;
  return LastAxisSlice{slice.getInput(), s, step, count};
}

/// If `v` is `-y` (`neg(y)`, or `y * -1` in either order), returns y.
Value matchNegation(Value v) {
  if (auto neg = v.getDefiningOp<NegOp>())
    return neg.getInput();
  if (auto mul = v.getDefiningOp<MulOp>()) {
    if (getScalarFloat(mul.getRhs()) == -1.0 &&
        mul.getType() == mul.getLhs().getType())
      return mul.getLhs();
    if (getScalarFloat(mul.getLhs()) == -1.0 &&
        mul.getType() == mul.getRhs().getType())
      return mul.getRhs();
  }
  return {};
}

/// Whether `s` takes `count` elements of `x` from `start` with `step`.
bool isSliceOf(const std::optional<LastAxisSlice> &s, Value x, int64_t start,
               int64_t step, int64_t count) {
  return s && s->input == x && s->start == start && s->count == count &&
         (s->step == step || count == 1);
}

/// rotate_half (GPT-NeoX, Llama): `concat(-x[h:2h], x[0:h])` on the last
/// axis of x, whose last dimension is 2h. Returns x.
Value matchRotateHalf(Value r) {
  auto concat = r.getDefiningOp<ConcatOp>();
  if (!concat || concat.getInputs().size() != 2 ||
      static_cast<int64_t>(concat.getAxis()) != rankOf(r) - 1)
    return {};
  Value negated = matchNegation(concat.getInputs()[0]);
  if (!negated)
    return {};
  std::optional<LastAxisSlice> hi = matchLastAxisSlice(negated),
                               lo = matchLastAxisSlice(concat.getInputs()[1]);
  if (!hi)
    return {};
  Value x = hi->input;
  std::optional<int64_t> d = lastDim(x);
  if (!d || *d % 2 != 0 || *d == 0 || x.getType() != r.getType())
    return {};
  int64_t h = *d / 2;
  if (!isSliceOf(hi, x, h, 1, h) || !isSliceOf(lo, x, 0, 1, h))
    return {};
  return x;
}

/// Looks through reshapes that append a unit dimension (`unsqueeze(y, -1)`).
Value peelUnsqueeze(Value v) {
  if (auto reshape = v.getDefiningOp<ReshapeOp>()) {
    SmallVector<DimExpr> in = dimsOf(reshape.getInput()), out = dimsOf(v);
    if (out.size() == in.size() + 1 && out.back() == DimExpr::constant(1) &&
        sameKnownDims(ArrayRef(out).drop_back(), in))
      return reshape.getInput();
  }
  return v;
}

/// rotate_every_two (GPT-J): pairs `(-x[2i+1], x[2i])`, exported as
/// `reshape(concat(unsqueeze(-x[1::2]), unsqueeze(x[0::2]), axis = -1))`
/// back to x's shape (torch.stack + flatten). Returns x.
Value matchRotateEveryTwo(Value r) {
  auto flatten = r.getDefiningOp<ReshapeOp>();
  if (!flatten || flatten.getShape())
    return {};
  auto concat = flatten.getInput().getDefiningOp<ConcatOp>();
  if (!concat || concat.getInputs().size() != 2 ||
      static_cast<int64_t>(concat.getAxis()) != rankOf(concat.getResult()) - 1)
    return {};
  // The negation may come before or after the unsqueeze.
  Value odd = peelUnsqueeze(concat.getInputs()[0]);
  Value negated = matchNegation(odd);
  if (!negated)
    return {};
  odd = peelUnsqueeze(negated);
  Value even = peelUnsqueeze(concat.getInputs()[1]);
  std::optional<LastAxisSlice> o = matchLastAxisSlice(odd),
                               e = matchLastAxisSlice(even);
  if (!o)
    return {};
  Value x = o->input;
  std::optional<int64_t> d = lastDim(x);
  if (!d || *d % 2 != 0 || *d == 0 || x.getType() != r.getType())
    return {};
  int64_t h = *d / 2;
  if (!isSliceOf(o, x, 1, 2, h) || !isSliceOf(e, x, 0, 2, h))
    return {};
  // concat must be [..., h, 2] over x's leading dimensions, each operand
  // [..., h, 1], so that the flatten interleaves them.
  SmallVector<DimExpr> xd = dimsOf(x), pairs(xd.begin(), xd.end() - 1);
  pairs.push_back(DimExpr::constant(h));
  SmallVector<DimExpr> one = pairs, two = pairs;
  one.push_back(DimExpr::constant(1));
  two.push_back(DimExpr::constant(2));
  if (!sameKnownDims(dimsOf(concat.getResult()), two) ||
      !sameKnownDims(dimsOf(concat.getInputs()[0]), one) ||
      !sameKnownDims(dimsOf(concat.getInputs()[1]), one))
    return {};
  return x;
}

/// If `v` is `tile(w, [1, ..., 1, 2])` (a copy of w along the last axis),
/// returns w.
Value matchTileTwiceOnLastAxis(Value v) {
  auto tile = v.getDefiningOp<TileOp>();
  DenseIntElementsAttr repeats;
  if (!tile || !matchPattern(tile.getRepeats(), m_Constant(&repeats)))
    return {};
  SmallVector<int64_t> r;
  for (const APInt &i : repeats.getValues<APInt>())
    r.push_back(i.getSExtValue());
  if (r.empty() || r.back() != 2 ||
      !llvm::all_of(ArrayRef(r).drop_back(), [](int64_t i) { return i == 1; }))
    return {};
  return tile.getInput();
}

/// Whether `v` has one element (a scalar that broadcasts uniformly).
bool isOneElement(Value v) {
  auto type = cast<RankedTensorType>(v.getType());
  return type.hasStaticShape() && type.getNumElements() == 1;
}

/// Proves that the last axis of `v` holds every value twice, as halves
/// (`v = concat(w, w)`) or as pairs (`v[2i] = v[2i+1]`, interleaved), and
/// builds w (v's shape with the last dimension halved) before `root`.
///
/// The duplication is `concat(w, w)` or `tile(w, [1, .., 2])` (halves), or
/// `[..., h, 2]` flattened to `[..., 2h]` where the pair axis is
/// `concat(w, w)`, an expand or a tile of `w = [..., h, 1]` (pairs: what
/// `repeat_interleave(w, 2)` exports to).
///
/// Between `v` and the duplication, ops that act the same on every
/// position of the last axis are looked through and rebuilt on the half:
/// elementwise cos/sin/neg/cast, a product or quotient with a one-element
/// value (an attention scaling factor), and reshapes, expands, transposes,
/// slices and gathers that keep the last axis as it is. Returns null (building
/// nothing) when the duplication cannot be proven; without a rewriter it
/// only checks, and returns `v` when the proof holds.
Value buildHalf(Value v, bool interleaved, Operation *root,
                PatternRewriter *rewriter) {
  // The ops from v down to the duplication, and the halved value.
  SmallVector<Operation *> chain;
  Value half;
  int64_t halfSize = 0;
  while (!half) {
    std::optional<int64_t> d = lastDim(v);
    if (!d || *d % 2 != 0 || *d == 0 ||
        !isa<FloatType>(getElementTypeOrSelf(v.getType())))
      return {};
    Operation *op = v.getDefiningOp();
    if (!op || op->getNumResults() != 1)
      return {};
    int64_t last = rankOf(v) - 1;
    if (Value w = matchTileTwiceOnLastAxis(v); w && !interleaved) {
      SmallVector<DimExpr> wd = dimsOf(w), expected = dimsOf(v);
      expected.back() = DimExpr::constant(*d / 2);
      if (!sameKnownDims(wd, expected))
        return {};
      half = w;
      halfSize = *d / 2;
      break;
    }
    if (auto concat = dyn_cast<ConcatOp>(op); concat && !interleaved) {
      if (concat.getInputs().size() != 2 ||
          static_cast<int64_t>(concat.getAxis()) != last ||
          concat.getInputs()[0] != concat.getInputs()[1])
        return {};
      half = concat.getInputs()[0];
      halfSize = *d / 2;
      break;
    }
    if (auto reshape = dyn_cast<ReshapeOp>(op)) {
      if (reshape.getShape())
        return {};
      SmallVector<DimExpr> in = dimsOf(reshape.getInput()), out = dimsOf(v);
      if (in.size() >= 1 && in.back() == out.back()) {
        chain.push_back(op);
        v = reshape.getInput();
        continue;
      }
      // Interleaved: [..., h, 2] flattened to [..., 2h], the pair axis a
      // copy of one value (concat(w, w) or an expand of [..., h, 1]).
      if (!interleaved || in.size() != out.size() + 1 ||
          in.back() != DimExpr::constant(2) ||
          in[in.size() - 2] != DimExpr::constant(*d / 2) ||
          !sameKnownDims(ArrayRef(in).drop_back(2), ArrayRef(out).drop_back()))
        return {};
      Value pair = reshape.getInput(), w;
      if (auto concat = pair.getDefiningOp<ConcatOp>()) {
        if (concat.getInputs().size() == 2 &&
            static_cast<int64_t>(concat.getAxis()) == rankOf(pair) - 1 &&
            concat.getInputs()[0] == concat.getInputs()[1])
          w = concat.getInputs()[0];
      } else if (auto expand = pair.getDefiningOp<ExpandOp>()) {
        if (!expand.getShape())
          w = expand.getInput();
      } else {
        w = matchTileTwiceOnLastAxis(pair);
      }
      if (!w)
        return {};
      SmallVector<DimExpr> wd = dimsOf(w);
      SmallVector<DimExpr> expected(in.begin(), in.end() - 1);
      expected.push_back(DimExpr::constant(1));
      if (!sameKnownDims(wd, expected))
        return {};
      half = w; // [..., h, 1]; reshaped to [..., h] below
      halfSize = *d / 2;
      break;
    }
    if (isa<CosOp, SinOp, NegOp, CastOp>(op)) {
      chain.push_back(op);
      v = op->getOperand(0);
      continue;
    }
    if (isa<MulOp, DivOp>(op)) {
      Value lhs = op->getOperand(0), rhs = op->getOperand(1);
      // The duplicated operand must carry the whole shape; the other is one
      // value for every element. Division only by the scalar.
      if (isOneElement(rhs) && lhs.getType() == v.getType()) {
        chain.push_back(op);
        v = lhs;
        continue;
      }
      if (isa<MulOp>(op) && isOneElement(lhs) && rhs.getType() == v.getType()) {
        chain.push_back(op);
        v = rhs;
        continue;
      }
      return {};
    }
    if (auto expand = dyn_cast<ExpandOp>(op)) {
      if (expand.getShape() || lastDim(expand.getInput()) != d)
        return {};
      chain.push_back(op);
      v = expand.getInput();
      continue;
    }
    if (auto transpose = dyn_cast<TransposeOp>(op)) {
      if (transpose.getPerm().back() != last)
        return {};
      chain.push_back(op);
      v = transpose.getInput();
      continue;
    }
    if (auto slice = dyn_cast<SliceOp>(op)) {
      if (llvm::is_contained(slice.getAxes(), last))
        return {};
      chain.push_back(op);
      v = slice.getInput();
      continue;
    }
    if (auto gather = dyn_cast<GatherOp>(op)) {
      if (static_cast<int64_t>(gather.getAxis()) ==
          rankOf(gather.getInput()) - 1)
        return {};
      chain.push_back(op);
      v = gather.getInput();
      continue;
    }
    return {};
  }

  if (!rewriter)
    return v;
  // Rebuild the chain on the half, outermost op last.
  OpBuilder::InsertionGuard guard(*rewriter);
  rewriter->setInsertionPoint(root);
  auto halved = [&](Value of) {
    SmallVector<DimExpr> d = dimsOf(of);
    d.back() = DimExpr::constant(halfSize);
    return getTensorType(d, getElementTypeOrSelf(of.getType()));
  };
  if (interleaved) {
    SmallVector<DimExpr> d = dimsOf(half);
    d.pop_back();
    auto type = getTensorType(d, getElementTypeOrSelf(half));
    // Usually [..., h, 1] is itself an unsqueeze of what we want.
    if (auto unsqueeze = half.getDefiningOp<ReshapeOp>();
        unsqueeze && unsqueeze.getInput().getType() == type)
      half = unsqueeze.getInput();
    else
      half = ReshapeOp::create(*rewriter, root->getLoc(), type, half, Value());
  }
  for (Operation *op : llvm::reverse(chain)) {
    IRMapping mapping;
    Value from = isa<MulOp>(op) && isOneElement(op->getOperand(0)) &&
                         !isOneElement(op->getOperand(1))
                     ? op->getOperand(1)
                     : op->getOperand(0);
    mapping.map(from, half);
    Operation *clone = rewriter->clone(*op, mapping);
    clone->getResult(0).setType(halved(op->getResult(0)));
    half = clone->getResult(0);
  }
  return half;
}

/// Where the sequence axis of x is when `c` may serve as its per-token
/// cos/sin: c broadcasts over the heads alone and has x's element type.
/// Left-padded with ones to rank 4, c is `[batch or 1, 1, seq, d]` for x
/// `[batch, heads, seq, d]` (2), or `[batch or 1, seq, 1, d]` for x
/// `[batch, seq, heads, d]` (1, GPT-J rotates before moving the heads).
std::optional<int64_t> sequenceAxis(Value c, Value x) {
  SmallVector<DimExpr> xd = dimsOf(x), cd = dimsOf(c);
  if (cd.empty() || cd.size() > 4 ||
      getElementTypeOrSelf(c) != getElementTypeOrSelf(x) || xd[0].isUnknown() ||
      cd.back() != xd.back())
    return std::nullopt;
  while (cd.size() < 4)
    cd.insert(cd.begin(), DimExpr::constant(1));
  DimExpr one = DimExpr::constant(1);
  if (cd[0] != one && cd[0] != xd[0])
    return std::nullopt;
  if (cd[1] == one && cd[2] == xd[2] && !xd[2].isUnknown())
    return 2;
  if (cd[2] == one && cd[1] == xd[1] && !xd[1].isUnknown())
    return 1;
  return std::nullopt;
}

/// The permutation that swaps the heads and sequence axes.
constexpr int64_t kSwapHeadsAndSeq[] = {0, 2, 1, 3};

bool isHeadsSeqSwap(TransposeOp t) {
  return t && llvm::equal(t.getPerm(), kSwapHeadsAndSeq);
}

/// transpose(x, [0, 2, 1, 3]).
Value swapHeadsAndSeq(PatternRewriter &rewriter, Location loc, Value x) {
  SmallVector<DimExpr> d = dimsOf(x);
  std::swap(d[1], d[2]);
  return TransposeOp::create(rewriter, loc,
                             getTensorType(d, getElementTypeOrSelf(x)), x,
                             rewriter.getDenseI64ArrayAttr(kSwapHeadsAndSeq));
}

/// kiln.rotary of x, which is [batch, heads, seq, d], or [batch, seq,
/// heads, d] when `swapped`: then it is rotated between two transposes (the
/// outer one cancels against the one that usually follows,
/// CancelSwapsAfterRotary).
Value buildRotary(PatternRewriter &rewriter, Location loc, Value x,
                  bool swapped, Value cos, Value sin, Value positions,
                  IntegerAttr rotaryDim, UnitAttr interleaved) {
  Value in = swapped ? swapHeadsAndSeq(rewriter, loc, x) : x;
  Value rotated = RotaryOp::create(rewriter, loc, in.getType(), in, cos, sin,
                                   positions, rotaryDim, interleaved);
  return swapped ? swapHeadsAndSeq(rewriter, loc, rotated) : rotated;
}

/// `x * C + rotate(x) * S` -> `kiln.rotary x, c, s` with per-token c, s.
struct RaiseRotaryArithmetic : OpRewritePattern<AddOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(AddOp op,
                                PatternRewriter &rewriter) const override {
    for (auto [direct, rotatedTerm] : {std::pair(op.getLhs(), op.getRhs()),
                                       std::pair(op.getRhs(), op.getLhs())}) {
      auto rotMul = rotatedTerm.getDefiningOp<MulOp>();
      auto directMul = direct.getDefiningOp<MulOp>();
      if (!rotMul || !directMul)
        continue;
      for (auto [rotated, s] : {std::pair(rotMul.getLhs(), rotMul.getRhs()),
                                std::pair(rotMul.getRhs(), rotMul.getLhs())}) {
        bool interleaved = false;
        Value x = matchRotateHalf(rotated);
        if (!x) {
          x = matchRotateEveryTwo(rotated);
          interleaved = true;
        }
        if (!x || rankOf(x) != 4 || op.getType() != x.getType() ||
            rotMul.getType() != x.getType() ||
            directMul.getType() != x.getType())
          continue;
        Value c;
        if (directMul.getLhs() == x)
          c = directMul.getRhs();
        else if (directMul.getRhs() == x)
          c = directMul.getLhs();
        if (!c)
          continue;
        std::optional<int64_t> seqAxis = sequenceAxis(c, x);
        if (!seqAxis || sequenceAxis(s, x) != seqAxis)
          continue;
        if (failed(raise(op, x, c, s, interleaved, *seqAxis, rewriter)))
          continue;
        return success();
      }
    }
    return rewriter.notifyMatchFailure(op, "not a rotary embedding");
  }

  /// Builds the halves of c and s (or nothing, if either cannot be
  /// proven duplicated) and replaces `op`.
  static LogicalResult raise(AddOp op, Value x, Value c, Value s,
                             bool interleaved, int64_t seqAxis,
                             PatternRewriter &rewriter) {
    // Check both before building either: a failed match must leave the IR
    // as it was.
    if (!buildHalf(c, interleaved, op, nullptr) ||
        !buildHalf(s, interleaved, op, nullptr))
      return failure();
    Value cHalf = buildHalf(c, interleaved, op, &rewriter);
    Value sHalf = buildHalf(s, interleaved, op, &rewriter);
    assert(cHalf && sHalf && "the check and the build disagree");
    SmallVector<DimExpr> xd = dimsOf(x);
    int64_t rotaryDim = *lastDim(x);
    // The batch of the full C/S (left-padded to rank 4) is the per-token
    // operand's; the halves built from them have the same shape but for
    // the last dimension.
    auto perToken = [&](Value full, Value half) -> Value {
      SmallVector<DimExpr> cd = dimsOf(full);
      DimExpr batch = cd.size() == 4 ? cd[0] : DimExpr::constant(1);
      auto type =
          getTensorType({batch, xd[seqAxis], DimExpr::constant(rotaryDim / 2)},
                        getElementTypeOrSelf(half));
      // One reshape to [batch, seq, rotary_dim / 2] replaces the reshapes
      // the chain ended with (rebuilt on the half, now dead).
      while (auto reshape = half.getDefiningOp<ReshapeOp>()) {
        if (reshape.getShape())
          break;
        half = reshape.getInput();
      }
      if (half.getType() == type)
        return half;
      return ReshapeOp::create(rewriter, op.getLoc(), type, half, Value());
    };
    rewriter.replaceOp(
        op, buildRotary(rewriter, op.getLoc(), x, seqAxis == 1,
                        perToken(c, cHalf), perToken(s, sHalf), Value(),
                        rewriter.getI64IntegerAttr(rotaryDim),
                        interleaved ? rewriter.getUnitAttr() : nullptr));
    return success();
  }
};

/// Partial rotary (GPT-NeoX, Phi): `concat(rotary(x[0:r]), x[r:d])` on
/// the last axis -> `rotary(x)` with `rotary_dim = r`; with GPT-J's
/// `[batch, seq, heads, d]` layout the rotary sits between two transposes,
/// which move to the whole x.
struct RaisePartialRotary : OpRewritePattern<ConcatOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(ConcatOp op,
                                PatternRewriter &rewriter) const override {
    if (op.getInputs().size() != 2 ||
        static_cast<int64_t>(op.getAxis()) != rankOf(op) - 1)
      return rewriter.notifyMatchFailure(op,
                                         "not a two-piece last-axis concat");
    // The rotated piece, possibly between the two transposes of a
    // [batch, seq, heads, d] rotation.
    Value piece = op.getInputs()[0];
    auto outer = piece.getDefiningOp<TransposeOp>();
    bool swapped = isHeadsSeqSwap(outer);
    if (swapped)
      piece = outer.getInput();
    auto rotary = piece.getDefiningOp<RotaryOp>();
    if (!rotary)
      return rewriter.notifyMatchFailure(op, "first piece is not rotated");
    Value rotaryInput = rotary.getInput();
    if (swapped) {
      auto inner = rotaryInput.getDefiningOp<TransposeOp>();
      if (!isHeadsSeqSwap(inner))
        return rewriter.notifyMatchFailure(op, "unpaired transposes");
      rotaryInput = inner.getInput();
    }
    std::optional<LastAxisSlice> head = matchLastAxisSlice(rotaryInput),
                                 tail = matchLastAxisSlice(op.getInputs()[1]);
    int64_t r = rotary.getRotaryDim();
    if (!head || !tail || head->input != tail->input ||
        head->input.getType() != op.getType())
      return rewriter.notifyMatchFailure(op, "pieces are not slices of one x");
    std::optional<int64_t> d = lastDim(head->input);
    if (!d || !isSliceOf(head, head->input, 0, 1, r) ||
        lastDim(rotaryInput) != r ||
        !isSliceOf(tail, head->input, r, 1, *d - r) || *d == r)
      return rewriter.notifyMatchFailure(op,
                                         "slices do not split at rotary_dim");
    rewriter.replaceOp(op, buildRotary(rewriter, op.getLoc(), head->input,
                                       swapped, rotary.getCos(),
                                       rotary.getSin(), rotary.getPositions(),
                                       rotary.getRotaryDimAttr(),
                                       rotary.getInterleavedAttr()));
    return success();
  }
};

/// `transpose(transpose(rotary(..), swap), swap)` -> `rotary(..)`: the
/// swap a [batch, seq, heads, d] rotation ends with, undone by the
/// exporter's own move of the heads before attention. Limited to rotary
/// results so that no other pair of transposes changes shape here.
struct CancelSwapsAfterRotary : OpRewritePattern<TransposeOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(TransposeOp op,
                                PatternRewriter &rewriter) const override {
    auto inner = op.getInput().getDefiningOp<TransposeOp>();
    if (!isHeadsSeqSwap(op) || !isHeadsSeqSwap(inner) ||
        !inner.getInput().getDefiningOp<RotaryOp>() ||
        inner.getInput().getType() != op.getType())
      return rewriter.notifyMatchFailure(op, "not swaps around a rotary");
    rewriter.replaceOp(op, inner.getInput());
    return success();
  }
};

struct RaiseRotaryPass : impl::RaiseRotaryPassBase<RaiseRotaryPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns
        .add<RaiseRotaryArithmetic, RaisePartialRotary, CancelSwapsAfterRotary>(
            &getContext());
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};

} // namespace
} // namespace mlir::kiln
