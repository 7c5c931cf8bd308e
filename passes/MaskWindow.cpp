//===- MaskWindow.cpp - what an exported attention mask admits -----------===//
//
// A mask built only from padding masks, constants and sizes is evaluated
// here, element by element, for a few concrete (past, tokens) sizes: a
// small interpreter over the kiln ops that mask arithmetic uses. Shapes
// come from the result types with the size symbols bound, so only the mask's
// own values are computed, never the hidden states its sizes are read from.
//
//===----------------------------------------------------------------------===//

#include "passes/MaskWindow.h"

#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/TypeSwitch.h"

#include <cmath>
#include <limits>
#include <vector>

namespace mlir::kiln {
namespace {

/// Larger tensors are not evaluated: a mask computation that builds one at
/// the context length is refused with its size.
constexpr int64_t kMaxElements = int64_t(1) << 24;

/// Additive mask values at or below this exclude a key (exp underflows to
/// 0 in fp32); exporters use -inf, the float minimum or -1e4 .. -1e9.
constexpr double kExcluded = -1e4;

struct Tensor {
  SmallVector<int64_t> shape;
  std::vector<double> values;
};

int64_t numElements(ArrayRef<int64_t> shape) {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

/// Row-major strides of `shape`.
SmallVector<int64_t> stridesOf(ArrayRef<int64_t> shape) {
  SmallVector<int64_t> s(shape.size(), 1);
  for (int64_t i = static_cast<int64_t>(shape.size()) - 2; i >= 0; --i)
    s[i] = s[i + 1] * shape[i + 1];
  return s;
}

/// The linear index into `in` (numpy-broadcast to `out`) of the element at
/// multi-index `idx` of `out`.
int64_t broadcastIndex(ArrayRef<int64_t> in, ArrayRef<int64_t> inStrides,
                       ArrayRef<int64_t> idx) {
  int64_t lead = static_cast<int64_t>(idx.size() - in.size()), r = 0;
  for (size_t i = 0; i < in.size(); ++i)
    if (in[i] != 1)
      r += idx[lead + i] * inStrides[i];
  return r;
}

/// Calls fn(linear, multi-index) for every element of `shape`.
template <typename Fn> void forEachIndex(ArrayRef<int64_t> shape, Fn fn) {
  int64_t n = numElements(shape);
  SmallVector<int64_t> idx(shape.size(), 0);
  for (int64_t linear = 0; linear < n; ++linear) {
    fn(linear, ArrayRef<int64_t>(idx));
    for (int64_t d = static_cast<int64_t>(shape.size()) - 1; d >= 0; --d) {
      if (++idx[d] < shape[d])
        break;
      idx[d] = 0;
    }
  }
}

class Evaluator {
public:
  Evaluator(Operation *attention, const MaskSizes &sizes,
            std::map<std::string, DimExpr> bindings, int64_t total)
      : attention(attention), sizes(sizes), bindings(std::move(bindings)),
        total(total) {}

  FailureOr<const Tensor *> evaluate(Value v);

private:
  FailureOr<SmallVector<int64_t>> shapeOf(Value v, Operation *user);
  FailureOr<Tensor> compute(Operation *op);
  InFlightDiagnostic error(Operation *op) {
    InFlightDiagnostic d = attention->emitError();
    d << "cannot check the attention mask before mapping it to the paged "
         "cache: ";
    if (op)
      d.attachNote(op->getLoc()) << "at this op";
    return d;
  }

  Operation *attention;
  const MaskSizes &sizes;
  std::map<std::string, DimExpr> bindings;
  int64_t total;
  llvm::DenseMap<Value, Tensor> memo;
};

FailureOr<SmallVector<int64_t>> Evaluator::shapeOf(Value v, Operation *user) {
  auto type = dyn_cast<RankedTensorType>(v.getType());
  if (!type) {
    error(user) << "an operand is not a ranked tensor";
    return failure();
  }
  SmallVector<int64_t> shape;
  for (const DimExpr &d : getShapeExprs(type)) {
    std::optional<int64_t> c = d.substitute(bindings).getConstant();
    if (!c) {
      error(user) << "its size " << d
                  << " is not determined by the batch, the new tokens and "
                     "the cached tokens";
      return failure();
    }
    shape.push_back(*c);
  }
  if (numElements(shape) > kMaxElements) {
    error(user) << "it builds a tensor of " << numElements(shape)
                << " elements (" << v.getType() << ") for a context of "
                << total << " tokens, more than the check evaluates";
    return failure();
  }
  return shape;
}

FailureOr<const Tensor *> Evaluator::evaluate(Value v) {
  auto it = memo.find(v);
  if (it != memo.end())
    return &it->second;
  FailureOr<Tensor> t = failure();
  if (auto arg = dyn_cast<BlockArgument>(v)) {
    if (!sizes.padding.contains(arg)) {
      error(nullptr) << "it reads function argument #" << arg.getArgNumber()
                     << ", which is not a padding mask";
      return failure();
    }
    FailureOr<SmallVector<int64_t>> shape = shapeOf(v, attention);
    if (failed(shape))
      return failure();
    t = Tensor{*shape, std::vector<double>(numElements(*shape), 1.0)};
  } else {
    t = compute(v.getDefiningOp());
  }
  if (failed(t))
    return failure();
  return &memo.try_emplace(v, std::move(*t)).first->second;
}

bool isIntegerTensor(Value v) {
  return cast<RankedTensorType>(v.getType()).getElementType().isInteger();
}

/// Rounds `x` as a value of `v`'s element type holds it.
double asElement(Value v, double x) {
  Type e = cast<RankedTensorType>(v.getType()).getElementType();
  if (e.isInteger(1))
    return x != 0.0 ? 1.0 : 0.0;
  if (e.isInteger())
    return std::trunc(x);
  if (e.isF32())
    return static_cast<float>(x);
  return x;
}

FailureOr<Tensor> Evaluator::compute(Operation *op) {
  Value result = op->getResult(0);
  FailureOr<SmallVector<int64_t>> outShape = shapeOf(result, op);
  if (failed(outShape))
    return failure();
  Tensor out{*outShape, std::vector<double>(numElements(*outShape))};
  auto operand = [&](unsigned i) { return evaluate(op->getOperand(i)); };
  bool integer = isIntegerTensor(result);

  // Elementwise over broadcast operands.
  auto elementwise =
      [&](ArrayRef<const Tensor *> ins,
          function_ref<double(ArrayRef<double>)> fn) -> FailureOr<Tensor> {
    SmallVector<SmallVector<int64_t>> strides;
    for (const Tensor *in : ins)
      strides.push_back(stridesOf(in->shape));
    SmallVector<double> args(ins.size());
    forEachIndex(out.shape, [&](int64_t linear, ArrayRef<int64_t> idx) {
      for (size_t i = 0; i < ins.size(); ++i)
        args[i] =
            ins[i]->values[broadcastIndex(ins[i]->shape, strides[i], idx)];
      out.values[linear] = asElement(result, fn(args));
    });
    return std::move(out);
  };
  auto binary =
      [&](function_ref<double(double, double)> fn) -> FailureOr<Tensor> {
    FailureOr<const Tensor *> a = operand(0), b = operand(1);
    if (failed(a) || failed(b))
      return failure();
    return elementwise({*a, *b},
                       [&](ArrayRef<double> x) { return fn(x[0], x[1]); });
  };
  auto unary = [&](function_ref<double(double)> fn) -> FailureOr<Tensor> {
    FailureOr<const Tensor *> a = operand(0);
    if (failed(a))
      return failure();
    return elementwise({*a}, [&](ArrayRef<double> x) { return fn(x[0]); });
  };
  // The first element of a scalar (or one-element) operand.
  auto scalar = [&](Value v) -> FailureOr<double> {
    FailureOr<const Tensor *> t = evaluate(v);
    if (failed(t))
      return failure();
    if ((*t)->values.empty()) {
      error(op) << "an operand that should be a scalar is empty";
      return failure();
    }
    return (*t)->values[0];
  };
  auto dimOf = [&](Value v, int64_t i) -> FailureOr<double> {
    auto type = cast<RankedTensorType>(v.getType());
    std::optional<int64_t> c =
        getShapeExprs(type)[i].substitute(bindings).getConstant();
    if (!c) {
      error(op) << "dimension " << i << " of " << type
                << " is not determined by the batch, the new tokens and the "
                   "cached tokens";
      return failure();
    }
    return static_cast<double>(*c);
  };
  auto fill = [&](double x) -> FailureOr<Tensor> {
    std::fill(out.values.begin(), out.values.end(), asElement(result, x));
    return std::move(out);
  };

  return llvm::TypeSwitch<Operation *, FailureOr<Tensor>>(op)
      .Case([&](ConstantOp c) -> FailureOr<Tensor> {
        auto dense = dyn_cast<DenseElementsAttr>(c.getValue());
        if (!dense || dense.getNumElements() != numElements(out.shape)) {
          error(op) << "a constant of an unexpected form";
          return failure();
        }
        int64_t i = 0;
        if (dense.getElementType().isInteger(1)) {
          for (bool x : dense.getValues<bool>())
            out.values[i++] = x;
        } else if (dense.getElementType().isInteger()) {
          for (const APInt &x : dense.getValues<APInt>())
            out.values[i++] = static_cast<double>(x.getSExtValue());
        } else {
          for (const APFloat &x : dense.getValues<APFloat>())
            out.values[i++] = x.convertToDouble();
        }
        return std::move(out);
      })
      .Case([&](DimOp d) -> FailureOr<Tensor> {
        FailureOr<double> x = dimOf(d.getInput(), d.getIndex());
        if (failed(x))
          return failure();
        return fill(*x);
      })
      .Case([&](SizeOp s) -> FailureOr<Tensor> {
        auto type = cast<RankedTensorType>(s.getInput().getType());
        double n = 1;
        for (int64_t i = 0; i < type.getRank(); ++i) {
          FailureOr<double> x = dimOf(s.getInput(), i);
          if (failed(x))
            return failure();
          n *= *x;
        }
        return fill(n);
      })
      .Case([&](ShapeOp s) -> FailureOr<Tensor> {
        auto [start, end] = s.getDimRange();
        for (int64_t i = start; i < end; ++i) {
          FailureOr<double> x = dimOf(s.getInput(), i);
          if (failed(x))
            return failure();
          out.values[i - start] = *x;
        }
        return std::move(out);
      })
      .Case([&](ReshapeOp r) -> FailureOr<Tensor> {
        FailureOr<const Tensor *> in = evaluate(r.getInput());
        if (failed(in))
          return failure();
        out.values = (*in)->values;
        return std::move(out);
      })
      .Case([&](ExpandOp e) -> FailureOr<Tensor> {
        FailureOr<const Tensor *> in = evaluate(e.getInput());
        if (failed(in))
          return failure();
        return elementwise({*in}, [](ArrayRef<double> x) { return x[0]; });
      })
      .Case([&](CastOp) { return unary([](double x) { return x; }); })
      .Case([&](AddOp) {
        return binary([](double a, double b) { return a + b; });
      })
      .Case([&](SubOp) {
        return binary([](double a, double b) { return a - b; });
      })
      .Case([&](MulOp) {
        return binary([](double a, double b) { return a * b; });
      })
      .Case([&](DivOp) {
        return binary([&](double a, double b) {
          if (integer)
            return b == 0.0 ? 0.0 : std::trunc(a / b);
          return a / b;
        });
      })
      .Case([&](PowOp) {
        return binary([](double a, double b) { return std::pow(a, b); });
      })
      .Case([&](MaxOp) {
        return binary([](double a, double b) { return std::max(a, b); });
      })
      .Case([&](MinOp) {
        return binary([](double a, double b) { return std::min(a, b); });
      })
      .Case([&](EqualOp) {
        return binary([](double a, double b) { return double(a == b); });
      })
      .Case([&](LessOp) {
        return binary([](double a, double b) { return double(a < b); });
      })
      .Case([&](GreaterOp) {
        return binary([](double a, double b) { return double(a > b); });
      })
      .Case([&](LessEqualOp) {
        return binary([](double a, double b) { return double(a <= b); });
      })
      .Case([&](GreaterEqualOp) {
        return binary([](double a, double b) { return double(a >= b); });
      })
      .Case([&](AndOp) {
        return binary(
            [](double a, double b) { return double(a != 0 && b != 0); });
      })
      .Case([&](OrOp) {
        return binary(
            [](double a, double b) { return double(a != 0 || b != 0); });
      })
      .Case(
          [&](NotOp) { return unary([](double a) { return double(a == 0); }); })
      .Case([&](NegOp) { return unary([](double a) { return -a; }); })
      .Case([&](AbsOp) { return unary([](double a) { return std::abs(a); }); })
      .Case([&](IsNaNOp) {
        return unary([](double a) { return double(std::isnan(a)); });
      })
      .Case([&](WhereOp w) -> FailureOr<Tensor> {
        FailureOr<const Tensor *> c = operand(0), a = operand(1),
                                  b = operand(2);
        if (failed(c) || failed(a) || failed(b))
          return failure();
        return elementwise({*c, *a, *b}, [](ArrayRef<double> x) {
          return x[0] != 0 ? x[1] : x[2];
        });
      })
      .Case([&](RangeOp r) -> FailureOr<Tensor> {
        FailureOr<double> start = scalar(r.getStart()),
                          delta = scalar(r.getDelta());
        if (failed(start) || failed(delta))
          return failure();
        for (size_t i = 0; i < out.values.size(); ++i)
          out.values[i] = *start + static_cast<double>(i) * *delta;
        return std::move(out);
      })
      .Case([&](ConstantOfShapeOp c) -> FailureOr<Tensor> {
        double x = 0;
        if (auto f = dyn_cast<FloatAttr>(c.getValue()))
          x = f.getValueAsDouble();
        else if (auto i = dyn_cast<IntegerAttr>(c.getValue()))
          x = static_cast<double>(i.getType().isInteger(1)
                                      ? i.getValue().getZExtValue()
                                      : i.getValue().getSExtValue());
        else if (auto d = dyn_cast<DenseElementsAttr>(c.getValue());
                 d && d.getNumElements() == 1)
          x = d.getElementType().isInteger()
                  ? static_cast<double>(
                        d.getElementType().isInteger(1)
                            ? (*d.getValues<APInt>().begin()).getZExtValue()
                            : (*d.getValues<APInt>().begin()).getSExtValue())
                  : (*d.getValues<APFloat>().begin()).convertToDouble();
        else {
          error(op) << "a fill value of an unexpected form";
          return failure();
        }
        return fill(x);
      })
      .Case([&](TransposeOp t) -> FailureOr<Tensor> {
        FailureOr<const Tensor *> in = evaluate(t.getInput());
        if (failed(in))
          return failure();
        SmallVector<int64_t> inStrides = stridesOf((*in)->shape);
        ArrayRef<int64_t> perm = t.getPerm();
        forEachIndex(out.shape, [&](int64_t linear, ArrayRef<int64_t> idx) {
          int64_t src = 0;
          for (size_t i = 0; i < perm.size(); ++i)
            src += idx[i] * inStrides[perm[i]];
          out.values[linear] = (*in)->values[src];
        });
        return std::move(out);
      })
      .Case([&](ConcatOp c) -> FailureOr<Tensor> {
        int64_t axis = c.getAxis(), offset = 0;
        SmallVector<int64_t> outStrides = stridesOf(out.shape);
        for (Value input : c.getInputs()) {
          FailureOr<const Tensor *> in = evaluate(input);
          if (failed(in))
            return failure();
          forEachIndex((*in)->shape,
                       [&](int64_t linear, ArrayRef<int64_t> idx) {
                         int64_t dst = 0;
                         for (size_t i = 0; i < idx.size(); ++i)
                           dst += (idx[i] + (int64_t(i) == axis ? offset : 0)) *
                                  outStrides[i];
                         out.values[dst] = (*in)->values[linear];
                       });
          offset += (*in)->shape[axis];
        }
        return std::move(out);
      })
      .Case([&](SliceOp s) -> FailureOr<Tensor> {
        FailureOr<const Tensor *> in = evaluate(s.getInput()),
                                  starts = evaluate(s.getStarts());
        if (failed(in) || failed(starts))
          return failure();
        const SmallVector<int64_t> &inShape = (*in)->shape;
        SmallVector<int64_t> first(inShape.size(), 0), step(inShape.size(), 1);
        for (auto [i, axis] : llvm::enumerate(s.getAxes())) {
          int64_t dim = inShape[axis];
          double st = (*starts)->values[i];
          int64_t k = s.getSteps()[i];
          if (st < 0)
            st += dim;
          st = k > 0 ? std::clamp<double>(st, 0, dim)
                     : std::clamp<double>(st, 0, dim - 1);
          first[axis] = static_cast<int64_t>(st);
          step[axis] = k;
        }
        SmallVector<int64_t> inStrides = stridesOf(inShape);
        forEachIndex(out.shape, [&](int64_t linear, ArrayRef<int64_t> idx) {
          int64_t src = 0;
          for (size_t i = 0; i < idx.size(); ++i)
            src += (first[i] + idx[i] * step[i]) * inStrides[i];
          out.values[linear] = (*in)->values[src];
        });
        return std::move(out);
      })
      .Case([&](GatherOp g) -> FailureOr<Tensor> {
        FailureOr<const Tensor *> in = evaluate(g.getInput()),
                                  indices = evaluate(g.getIndices());
        if (failed(in) || failed(indices))
          return failure();
        const SmallVector<int64_t> &inShape = (*in)->shape;
        int64_t axis = g.getAxis();
        int64_t indexRank = static_cast<int64_t>((*indices)->shape.size());
        SmallVector<int64_t> inStrides = stridesOf(inShape),
                             idxStrides = stridesOf((*indices)->shape);
        bool bad = false;
        forEachIndex(out.shape, [&](int64_t linear, ArrayRef<int64_t> idx) {
          int64_t at = 0;
          for (int64_t i = 0; i < indexRank; ++i)
            at += idx[axis + i] * idxStrides[i];
          int64_t k = static_cast<int64_t>((*indices)->values[at]);
          if (k < 0)
            k += inShape[axis];
          if (k < 0 || k >= inShape[axis]) {
            bad = true;
            return;
          }
          int64_t src = k * inStrides[axis];
          for (int64_t i = 0; i < axis; ++i)
            src += idx[i] * inStrides[i];
          for (int64_t i = axis + 1; i < int64_t(inShape.size()); ++i)
            src += idx[i + indexRank - 1] * inStrides[i];
          out.values[linear] = (*in)->values[src];
        });
        if (bad) {
          error(op) << "a gather index is out of range";
          return failure();
        }
        return std::move(out);
      })
      .Case([&](GatherNDOp g) -> FailureOr<Tensor> {
        FailureOr<const Tensor *> in = evaluate(g.getInput()),
                                  indices = evaluate(g.getIndices());
        if (failed(in) || failed(indices))
          return failure();
        const SmallVector<int64_t> &inShape = (*in)->shape,
                                   &idxShape = (*indices)->shape;
        int64_t batch = g.getBatchDims(), k = idxShape.back();
        int64_t idxRank = static_cast<int64_t>(idxShape.size());
        SmallVector<int64_t> inStrides = stridesOf(inShape),
                             idxStrides = stridesOf(idxShape);
        bool bad = false;
        forEachIndex(out.shape, [&](int64_t linear, ArrayRef<int64_t> idx) {
          // idx = indices' leading dims, then the sliced input dims.
          int64_t at = 0, src = 0;
          for (int64_t i = 0; i < idxRank - 1; ++i)
            at += idx[i] * idxStrides[i];
          for (int64_t i = 0; i < batch; ++i)
            src += idx[i] * inStrides[i];
          for (int64_t i = 0; i < k; ++i) {
            int64_t dim = inShape[batch + i];
            int64_t x = static_cast<int64_t>((*indices)->values[at + i]);
            if (x < 0)
              x += dim;
            if (x < 0 || x >= dim)
              bad = true;
            src += std::clamp<int64_t>(x, 0, dim - 1) * inStrides[batch + i];
          }
          for (int64_t i = batch + k; i < int64_t(inShape.size()); ++i)
            src += idx[idxRank - 1 + i - batch - k] * inStrides[i];
          out.values[linear] = (*in)->values[src];
        });
        if (bad) {
          error(op) << "a gather index is out of range";
          return failure();
        }
        return std::move(out);
      })
      .Case([&](TriluOp t) -> FailureOr<Tensor> {
        FailureOr<const Tensor *> in = evaluate(t.getInput());
        if (failed(in))
          return failure();
        double k = 0;
        if (t.getK()) {
          FailureOr<double> kv = scalar(t.getK());
          if (failed(kv))
            return failure();
          k = *kv;
        }
        int64_t rank = static_cast<int64_t>(out.shape.size());
        forEachIndex(out.shape, [&](int64_t linear, ArrayRef<int64_t> idx) {
          double diag = double(idx[rank - 1]) - double(idx[rank - 2]);
          bool keep = t.getUpper() ? diag >= k : diag <= k;
          out.values[linear] = keep ? (*in)->values[linear] : 0.0;
        });
        return std::move(out);
      })
      .Default([&](Operation *) -> FailureOr<Tensor> {
        error(op) << "'" << op->getName()
                  << "' is not among the ops the mask check evaluates";
        return failure();
      });
}

/// One evaluation of the mask: `past` cached tokens, `tokens` new ones.
struct Probe {
  int64_t past, tokens;
};

/// Where the visible keys of one query begin (they end at its position).
struct Row {
  int64_t position, firstVisible;
};

std::string shapeString(ArrayRef<int64_t> shape) {
  std::string s;
  llvm::raw_string_ostream os(s);
  llvm::interleaveComma(shape, os);
  return s;
}

} // namespace

FailureOr<int64_t> maskWindow(Operation *attention, Value mask, bool causal,
                              const MaskSizes &sizes) {
  auto fail = [&]() -> InFlightDiagnostic {
    InFlightDiagnostic d = attention->emitError();
    d << "cannot map the attention mask to the paged cache: ";
    return d;
  };
  std::optional<std::string> pastName = sizes.past.getSymbol();
  std::optional<std::string> tokenName = sizes.tokens.getSymbol();
  std::optional<std::string> batchName = sizes.batch.getSymbol();
  if (!tokenName) {
    fail() << "the token dimension " << sizes.tokens
           << " is not a named symbol";
    return failure();
  }
  int64_t context = std::max<int64_t>(sizes.context, 16);
  if (!pastName && !sizes.past.isUnknown()) {
    fail() << "the cached length " << sizes.past << " is not a named symbol";
    return failure();
  }

  // Small sizes first (every query row checked against every key), then
  // the last queries of a full context, where a window shows.
  SmallVector<Probe> probes;
  if (pastName) {
    probes = {{0, 7}, {5, 4}, {0, 1}};
    if (context > 12)
      probes.push_back({context - 3, 3});
  } else {
    // Without a cache the new tokens are the whole context: the mask is
    // tokens x tokens.
    probes = {{0, 7}, {0, std::min<int64_t>(context, 2048)}};
  }

  SmallVector<Row> rows;
  for (const Probe &probe : probes) {
    std::map<std::string, DimExpr> bindings;
    bindings[*tokenName] = DimExpr::constant(probe.tokens);
    if (batchName)
      bindings[*batchName] = DimExpr::constant(1);
    if (pastName)
      bindings[*pastName] = DimExpr::constant(probe.past);
    int64_t total = probe.past + probe.tokens;
    // A padding mask's length may be its own symbol: it is the total.
    for (Value p : sizes.padding) {
      SmallVector<DimExpr> dims =
          getShapeExprs(cast<RankedTensorType>(p.getType()));
      if (std::optional<std::string> name = dims.back().getSymbol())
        if (!bindings.count(*name))
          bindings[*name] = DimExpr::constant(total);
    }
    Evaluator evaluator(attention, sizes, bindings, total);
    FailureOr<const Tensor *> evaluated = evaluator.evaluate(mask);
    if (failed(evaluated))
      return failure();
    const Tensor &m = **evaluated;
    bool boolean =
        cast<RankedTensorType>(mask.getType()).getElementType().isInteger(1);
    // The mask broadcasts to [batch, heads, tokens, total].
    SmallVector<int64_t> shape(4 - std::min<size_t>(4, m.shape.size()), 1);
    shape.append(m.shape.begin(), m.shape.end());
    if (shape.size() != 4 || shape[0] != 1 ||
        (shape[2] != 1 && shape[2] != probe.tokens) || shape[3] != total) {
      fail() << "with " << probe.past << " cached and " << probe.tokens
             << " new tokens it has shape [" << shapeString(m.shape)
             << "], which does not broadcast to [batch, heads, " << probe.tokens
             << ", " << total << "]";
      return failure();
    }
    SmallVector<int64_t> strides = stridesOf(shape);
    for (int64_t h = 0; h < shape[1]; ++h)
      for (int64_t t = 0; t < probe.tokens; ++t) {
        int64_t p = probe.past + t;
        int64_t row = h * strides[1] + (shape[2] == 1 ? 0 : t * strides[2]);
        int64_t firstVisible = -1, lastVisible = -1, visibleCount = 0;
        for (int64_t j = 0; j < total; ++j) {
          // A causal op ignores what the mask says of later keys.
          if (causal && j > p)
            break;
          double x = m.values[row + j];
          bool visible;
          if (boolean) {
            visible = x != 0;
          } else if (x == 0.0) {
            visible = true;
          } else if (x <= kExcluded || std::isnan(x)) {
            visible = false;
          } else {
            fail() << "it adds " << x << " to the score of key " << j
                   << " for the query at position " << p
                   << " (a bias such as ALiBi); only 0 and large negative "
                      "values are understood";
            return failure();
          }
          if (visible) {
            if (firstVisible < 0)
              firstVisible = j;
            lastVisible = j;
            ++visibleCount;
          }
        }
        if (lastVisible != p || firstVisible < 0 ||
            visibleCount != lastVisible - firstVisible + 1) {
          InFlightDiagnostic d = fail();
          d << "it is neither causal nor a sliding window: with " << probe.past
            << " cached and " << probe.tokens
            << " new tokens, the query at position " << p << " (head " << h
            << ") sees ";
          if (firstVisible < 0)
            d << "no key";
          else
            d << visibleCount << " keys between positions " << firstVisible
              << " and " << lastVisible;
          d << " instead of the keys up to its own position";
          return failure();
        }
        rows.push_back({p, firstVisible});
      }
  }

  // One window must explain every row: a query at position p sees
  // [max(0, p - window), p].
  std::optional<int64_t> window;
  for (const Row &r : rows)
    if (r.firstVisible > 0) {
      int64_t w = r.position - r.firstVisible;
      if (window && *window != w) {
        fail() << "its window changes: one query sees " << w + 1
               << " keys, another " << *window + 1;
        return failure();
      }
      window = w;
    }
  if (!window)
    return int64_t(-1);
  for (const Row &r : rows)
    if (r.firstVisible == 0 && r.position > *window) {
      fail() << "its window changes: the query at position " << r.position
             << " sees every earlier key, others only " << *window + 1;
      return failure();
    }
  return *window;
}

} // namespace mlir::kiln
