//===- SymbolicValue.cpp - values of shape computations -------------------===//

#include "dialects/kiln/IR/SymbolicValue.h"

#include "dialects/kiln/IR/KilnDialect.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/Matchers.h"

using namespace mlir;
using namespace mlir::kiln;

namespace {
/// Shape computations are tiny; anything larger is data, not a shape.
constexpr int64_t kMaxElements = 64;
/// Bounds the backward walk so a pathological graph cannot recurse deeply.
constexpr int kMaxDepth = 48;

using Values = SmallVector<DimExpr>;

std::optional<Values> evaluate(Value value, int depth);

std::optional<Values> evaluateBinary(Operation *op, int depth,
                                     DimExpr (*fn)(const DimExpr &,
                                                   const DimExpr &)) {
  std::optional<Values> a = evaluate(op->getOperand(0), depth + 1);
  std::optional<Values> b = evaluate(op->getOperand(1), depth + 1);
  if (!a || !b)
    return std::nullopt;
  if (a->size() != b->size() && a->size() != 1 && b->size() != 1)
    return std::nullopt;
  size_t n = std::max(a->size(), b->size());
  Values r;
  for (size_t i = 0; i < n; ++i)
    r.push_back(fn((*a)[a->size() == 1 ? 0 : i], (*b)[b->size() == 1 ? 0 : i]));
  return r;
}

std::optional<Values> evaluateKnown(Value value, int depth);

/// Like evaluateKnown(), but a tensor of static length whose elements cannot
/// be derived still yields that many unknown elements, so that a Concat
/// keeps the parts it does know.
std::optional<Values> evaluate(Value value, int depth) {
  if (std::optional<Values> v = evaluateKnown(value, depth))
    return v;
  auto type = dyn_cast<RankedTensorType>(value.getType());
  if (!type || type.getRank() > 1 || !type.hasStaticShape() ||
      type.getNumElements() > kMaxElements ||
      !type.getElementType().isSignlessInteger())
    return std::nullopt;
  return Values(type.getNumElements(), DimExpr());
}

std::optional<Values> evaluateKnown(Value value, int depth) {
  auto type = dyn_cast<RankedTensorType>(value.getType());
  if (!type || depth > kMaxDepth || type.getRank() > 1 ||
      !type.getElementType().isSignlessInteger())
    return std::nullopt;
  if (type.hasStaticShape() && type.getNumElements() > kMaxElements)
    return std::nullopt;

  DenseIntElementsAttr dense;
  if (matchPattern(value, m_Constant(&dense))) {
    Values r;
    for (const APInt &v : dense.getValues<APInt>())
      r.push_back(DimExpr::constant(v.getBitWidth() == 1 ? v.getZExtValue()
                                                         : v.getSExtValue()));
    return r;
  }
  Operation *op = value.getDefiningOp();
  if (!op)
    return std::nullopt;

  if (auto shape = dyn_cast<ShapeOp>(op)) {
    Values dims =
        getShapeExprs(cast<RankedTensorType>(shape.getInput().getType()));
    auto [start, end] = shape.getDimRange();
    return Values(dims.begin() + start, dims.begin() + end);
  }
  if (auto dim = dyn_cast<DimOp>(op))
    return Values{getShapeExprs(
        cast<RankedTensorType>(dim.getInput().getType()))[dim.getIndex()]};
  if (auto size = dyn_cast<SizeOp>(op)) {
    DimExpr n = DimExpr::constant(1);
    for (const DimExpr &d :
         getShapeExprs(cast<RankedTensorType>(size.getInput().getType())))
      n = n * d;
    return Values{n};
  }
  if (auto concat = dyn_cast<ConcatOp>(op)) {
    Values r;
    for (Value in : concat.getInputs()) {
      std::optional<Values> part = evaluate(in, depth + 1);
      if (!part)
        return std::nullopt;
      r.append(*part);
    }
    return r;
  }
  if (auto gather = dyn_cast<GatherOp>(op)) {
    std::optional<Values> data = evaluate(gather.getInput(), depth + 1);
    std::optional<Values> idx = evaluate(gather.getIndices(), depth + 1);
    if (!data || !idx)
      return std::nullopt;
    Values r;
    for (const DimExpr &i : *idx) {
      std::optional<int64_t> c = i.getConstant();
      if (!c)
        return std::nullopt;
      int64_t k = *c < 0 ? *c + static_cast<int64_t>(data->size()) : *c;
      if (k < 0 || k >= static_cast<int64_t>(data->size()))
        return std::nullopt;
      r.push_back((*data)[k]);
    }
    return r;
  }
  if (isa<ReshapeOp, CastOp>(op)) {
    // A reshape of a rank <= 1 tensor (Unsqueeze/Squeeze of a scalar) keeps
    // the elements; integer casts between i32/i64 keep shape values.
    return evaluate(op->getOperand(0), depth + 1);
  }
  if (auto slice = dyn_cast<SliceOp>(op)) {
    std::optional<Values> data = evaluate(slice.getInput(), depth + 1);
    std::optional<Values> starts = evaluate(slice.getStarts(), depth + 1);
    std::optional<Values> ends = evaluate(slice.getEnds(), depth + 1);
    if (!data || !starts || !ends || starts->size() != 1 || ends->size() != 1 ||
        slice.getSteps().size() != 1 || slice.getSteps()[0] != 1)
      return std::nullopt;
    std::optional<int64_t> s = (*starts)[0].getConstant();
    std::optional<int64_t> e = (*ends)[0].getConstant();
    if (!s || !e)
      return std::nullopt;
    int64_t n = data->size();
    int64_t b = std::clamp<int64_t>(*s < 0 ? *s + n : *s, 0, n);
    int64_t f = std::clamp<int64_t>(*e < 0 ? *e + n : *e, b, n);
    return Values(data->begin() + b, data->begin() + f);
  }
  if (isa<NegOp>(op)) {
    std::optional<Values> a = evaluate(op->getOperand(0), depth + 1);
    if (!a)
      return std::nullopt;
    for (DimExpr &e : *a)
      e = e * DimExpr::constant(-1);
    return a;
  }
  if (auto fill = dyn_cast<ConstantOfShapeOp>(op)) {
    std::optional<Values> shape = evaluate(fill.getShape(), depth + 1);
    auto value = dyn_cast<IntegerAttr>(fill.getValue());
    if (!shape || shape->size() > 1 || !value)
      return std::nullopt;
    std::optional<int64_t> n = shape->empty() ? 1 : (*shape)[0].getConstant();
    if (!n || *n < 0 || *n > kMaxElements)
      return std::nullopt;
    return Values(*n, DimExpr::constant(value.getInt()));
  }
  if (auto range = dyn_cast<RangeOp>(op)) {
    std::optional<Values> a = evaluate(range.getStart(), depth + 1);
    std::optional<Values> b = evaluate(range.getLimit(), depth + 1);
    std::optional<Values> c = evaluate(range.getDelta(), depth + 1);
    if (!a || !b || !c || a->size() != 1 || b->size() != 1 || c->size() != 1)
      return std::nullopt;
    std::optional<int64_t> x = (*a)[0].getConstant(), y = (*b)[0].getConstant(),
                           d = (*c)[0].getConstant();
    if (!x || !y || !d || *d == 0)
      return std::nullopt;
    Values r;
    for (int64_t v = *x; (*d > 0 ? v < *y : v > *y); v += *d) {
      if (static_cast<int64_t>(r.size()) >= kMaxElements)
        return std::nullopt;
      r.push_back(DimExpr::constant(v));
    }
    return r;
  }
  if (isa<EqualOp>(op)) {
    // Shape vectors compared with a constant (exporters test for -1): a
    // symbolic dimension is a size, so it never equals a negative constant.
    return evaluateBinary(op, depth, [](const DimExpr &a, const DimExpr &b) {
      if (a == b && !a.isUnknown())
        return DimExpr::constant(1);
      std::optional<int64_t> x = a.getConstant(), y = b.getConstant();
      if (x && y)
        return DimExpr::constant(*x == *y);
      if ((x && *x < 0 && !b.isUnknown()) || (y && *y < 0 && !a.isUnknown()))
        return DimExpr::constant(0);
      return DimExpr();
    });
  }
  if (auto where = dyn_cast<WhereOp>(op)) {
    std::optional<Values> c = evaluate(where.getCondition(), depth + 1);
    std::optional<Values> a = evaluate(where.getLhs(), depth + 1);
    std::optional<Values> b = evaluate(where.getRhs(), depth + 1);
    if (!c || !a || !b)
      return std::nullopt;
    size_t n = std::max({c->size(), a->size(), b->size()});
    auto at = [&](const Values &v, size_t i) -> const DimExpr & {
      return v[v.size() == 1 ? 0 : i];
    };
    for (const Values *v : {&*c, &*a, &*b})
      if (v->size() != n && v->size() != 1)
        return std::nullopt;
    Values r;
    for (size_t i = 0; i < n; ++i) {
      std::optional<int64_t> cond = at(*c, i).getConstant();
      r.push_back(!cond ? DimExpr() : *cond ? at(*a, i) : at(*b, i));
    }
    return r;
  }
  if (isa<AddOp>(op))
    return evaluateBinary(
        op, depth, [](const DimExpr &a, const DimExpr &b) { return a + b; });
  if (isa<SubOp>(op))
    return evaluateBinary(
        op, depth, [](const DimExpr &a, const DimExpr &b) { return a - b; });
  if (isa<MulOp>(op))
    return evaluateBinary(
        op, depth, [](const DimExpr &a, const DimExpr &b) { return a * b; });
  if (isa<DivOp>(op))
    return evaluateBinary(op, depth, [](const DimExpr &a, const DimExpr &b) {
      std::optional<int64_t> x = a.getConstant(), y = b.getConstant();
      if (x && y && *y != 0 && !(*x == INT64_MIN && *y == -1))
        return DimExpr::constant(*x / *y); // truncation, as ONNX integer Div
      return a.exactDiv(b);
    });
  return std::nullopt;
}
} // namespace

std::optional<SmallVector<DimExpr>> mlir::kiln::evaluateSymbolic(Value value) {
  return evaluate(value, 0);
}

std::optional<SmallVector<DimExpr>>
mlir::kiln::resolveReshapeTarget(ArrayRef<DimExpr> input,
                                 ArrayRef<DimExpr> target, bool allowZero) {
  SmallVector<DimExpr> result;
  int64_t inferAt = -1;
  DimExpr known = DimExpr::constant(1);
  for (auto [i, t] : llvm::enumerate(target)) {
    std::optional<int64_t> c = t.getConstant();
    if (c && *c == -1) {
      if (inferAt >= 0)
        return std::nullopt;
      inferAt = i;
      result.push_back(DimExpr());
      continue;
    }
    if (c && *c == 0 && !allowZero) {
      if (i >= input.size())
        return std::nullopt;
      result.push_back(input[i]);
    } else if (c && *c < 0) {
      return std::nullopt;
    } else {
      result.push_back(t);
    }
    known = known * result.back();
  }
  if (inferAt >= 0) {
    DimExpr total = DimExpr::constant(1);
    for (const DimExpr &d : input)
      total = total * d;
    result[inferAt] = total.exactDiv(known);
  }
  return result;
}
