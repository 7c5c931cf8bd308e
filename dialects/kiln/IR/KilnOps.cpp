//===- KilnOps.cpp - kiln operations: verifiers, folders, patterns --------===//
//
// Verifiers check what a pass may rely on. Shapes are compared with
// dimsCompatible(): a dynamic dimension may equal anything, but two
// different static sizes, or two different `#kiln.dims` constants, are an
// error.
//
//===----------------------------------------------------------------------===//

#include "dialects/kiln/IR/KilnDialect.h"
#include "dialects/kiln/IR/SymbolicValue.h"

#include "mlir/IR/Matchers.h"
#include "mlir/IR/PatternMatch.h"

#include <cmath>

using namespace mlir;
using namespace mlir::kiln;

#define GET_OP_CLASSES
#include "dialects/kiln/IR/KilnOps.cpp.inc"

namespace {

SmallVector<DimExpr> exprsOf(Value v) {
  return getShapeExprs(cast<RankedTensorType>(v.getType()));
}

Type elementOf(Value v) {
  return cast<ShapedType>(v.getType()).getElementType();
}

int64_t rankOf(Value v) {
  return cast<RankedTensorType>(v.getType()).getRank();
}

/// Checks that `actual` may be the shape `expected` describes.
LogicalResult verifyShape(Operation *op, ArrayRef<DimExpr> expected,
                          Value actual, StringRef what) {
  SmallVector<DimExpr> got = exprsOf(actual);
  if (got.size() != expected.size())
    return op->emitOpError() << what << " has rank " << got.size()
                             << ", expected " << expected.size();
  for (auto [i, pair] : llvm::enumerate(llvm::zip(expected, got)))
    if (!dimsCompatible(std::get<0>(pair), std::get<1>(pair)))
      return op->emitOpError()
             << what << " dimension " << i << " is " << std::get<1>(pair)
             << ", expected " << std::get<0>(pair);
  return success();
}

LogicalResult verifyAxis(Operation *op, int64_t axis, int64_t rank,
                         StringRef name = "axis") {
  if (axis < 0 || axis >= rank)
    return op->emitOpError()
           << name << " " << axis << " is out of range for rank " << rank;
  return success();
}

LogicalResult verifyBroadcast(Operation *op, ArrayRef<Value> operands,
                              Value result) {
  SmallVector<DimExpr> shape = exprsOf(operands.front());
  for (Value v : operands.drop_front()) {
    FailureOr<SmallVector<DimExpr>> b = broadcastShapes(shape, exprsOf(v));
    if (failed(b))
      return op->emitOpError()
             << "operand shapes " << operands.front().getType() << " and "
             << v.getType() << " do not broadcast";
    shape = *b;
  }
  return verifyShape(op, shape, result, "result");
}

LogicalResult verifySameElement(Operation *op, Value a, Value b) {
  if (elementOf(a) != elementOf(b))
    return op->emitOpError() << "element types differ: " << elementOf(a)
                             << " vs " << elementOf(b);
  return success();
}

/// Constant integer values of a rank-0/1 tensor when they are all known.
std::optional<SmallVector<int64_t>> constantInts(Value v) {
  std::optional<SmallVector<DimExpr>> exprs = evaluateSymbolic(v);
  if (!exprs)
    return std::nullopt;
  SmallVector<int64_t> out;
  for (const DimExpr &e : *exprs) {
    std::optional<int64_t> c = e.getConstant();
    if (!c)
      return std::nullopt;
    out.push_back(*c);
  }
  return out;
}

/// Builds the integer tensor constant `values` with the type of `like`.
Attribute intConstant(Type like, ArrayRef<int64_t> values) {
  auto type = cast<RankedTensorType>(like);
  if (!type.hasStaticShape() ||
      type.getNumElements() != static_cast<int64_t>(values.size()))
    return {};
  unsigned width = type.getElementType().getIntOrFloatBitWidth();
  SmallVector<APInt> ints;
  for (int64_t v : values)
    ints.push_back(APInt(width, v, /*isSigned=*/true, /*implicitTrunc=*/true));
  return DenseElementsAttr::get(type, ints);
}

/// Folds integer shape arithmetic whose operands are all known constants.
/// With `needConstantOperands` false (shape queries), folds whenever the
/// dimensions read are static.
OpFoldResult foldIntArith(Operation *op, bool needConstantOperands = true) {
  auto type = cast<RankedTensorType>(op->getResult(0).getType());
  if (!type.getElementType().isSignlessInteger() || type.getRank() > 1)
    return {};
  if (needConstantOperands && !llvm::all_of(op->getOperands(), [](Value v) {
        return matchPattern(v, m_Constant());
      }))
    return {};
  std::optional<SmallVector<int64_t>> values = constantInts(op->getResult(0));
  if (!values)
    return {};
  return intConstant(type, *values);
}

} // namespace

//===----------------------------------------------------------------------===//
// Weights and constants
//===----------------------------------------------------------------------===//

static std::optional<uint64_t> byteSize(ArrayRef<int64_t> shape, Type element,
                                        unsigned bitsOverride = 0) {
  unsigned bits = bitsOverride ? bitsOverride : element.getIntOrFloatBitWidth();
  uint64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0)
      return std::nullopt;
    n *= d;
  }
  if (bits == 1)
    return n; // booleans are stored one per byte, as ONNX does
  return (n * bits + 7) / 8;
}

/// Bits and byte size of each part (data, scales, zero points) of a weight
/// of `type`, in blob order. Fails for a type no global may have.
static FailureOr<SmallVector<std::pair<uint64_t, uint64_t>>>
componentSizes(Type type) {
  SmallVector<std::pair<uint64_t, uint64_t>> sizes;
  auto add = [&](ArrayRef<int64_t> shape, Type element, unsigned bits = 0) {
    uint64_t n = 1;
    for (int64_t d : shape)
      n *= d;
    unsigned b = bits ? bits : element.getIntOrFloatBitWidth();
    sizes.push_back({n * (b == 1 ? 8 : b), *byteSize(shape, element, bits)});
  };
  if (auto tensor = dyn_cast<RankedTensorType>(type)) {
    if (!tensor.hasStaticShape() || !tensor.getElementType().isIntOrFloat())
      return failure();
    add(tensor.getShape(), tensor.getElementType());
  } else if (auto q = dyn_cast<QTensorType>(type)) {
    QuantAttr quant = q.getQuant();
    add(q.getShape(), quant.getStorageType(), quant.getBits());
    SmallVector<int64_t> scaleShape = q.getScaleShape();
    add(scaleShape, quant.getScaleType());
    if (quant.getZeroPoint() == ZeroPointKind::Int)
      add(scaleShape, quant.getStorageType(), quant.getBits());
    else if (quant.getZeroPoint() == ZeroPointKind::Float)
      add(scaleShape, quant.getScaleType());
  } else {
    return failure();
  }
  return sizes;
}

LogicalResult GlobalOp::verify() {
  Type type = getType();
  if (auto tensor = dyn_cast<RankedTensorType>(type)) {
    if (!tensor.hasStaticShape())
      return emitOpError("weight type must have a static shape");
    if (!tensor.getElementType().isIntOrFloat())
      return emitOpError("weight element type must be an integer or float");
  } else if (!isa<QTensorType>(type)) {
    return emitOpError(
               "weight type must be a ranked tensor or !kiln.qtensor, got ")
           << type;
  }
  // Held in a variable: `for (... : *componentSizes(type))` binds a
  // reference into the temporary FailureOr, which dies before the loop runs
  // (ASan: stack-use-after-scope, found by the importer fuzzer).
  auto sizes = componentSizes(type);
  SmallVector<uint64_t> expected;
  for (auto [bits, bytes] : *sizes)
    expected.push_back(bytes);

  // A weight joined from pieces along N (--kiln-fuse-matmuls): the last
  // axis of a tensor, the first (rows of W) of a qtensor. Each component
  // has one blob per piece, pieces in order; a qtensor's pieces must fill
  // whole bytes so that their bytes concatenate.
  if (auto parts = (*this)->getAttrOfType<DenseI64ArrayAttr>("kiln.parts")) {
    SmallVector<int64_t> shape;
    if (auto tensor = dyn_cast<RankedTensorType>(type))
      shape.assign(tensor.getShape().begin(), tensor.getShape().end());
    else
      shape.assign(cast<QTensorType>(type).getShape().begin(),
                   cast<QTensorType>(type).getShape().end());
    auto q = dyn_cast<QTensorType>(type);
    if (shape.empty() || (q && q.getQuant().getAxis() == 0))
      return emitOpError("kiln.parts needs a tensor of rank >= 1 or a "
                         "qtensor not quantized along its first axis");
    size_t axis = q ? 0 : shape.size() - 1;
    int64_t total = 0;
    for (int64_t p : parts.asArrayRef()) {
      if (p <= 0)
        return emitOpError("kiln.parts sizes must be positive");
      total += p;
    }
    if (total != shape[axis])
      return emitOpError() << "kiln.parts sizes add up to " << total
                           << ", expected " << shape[axis];
    size_t components = expected.size();
    expected.assign(components * parts.size(), 0);
    for (auto [i, p] : llvm::enumerate(parts.asArrayRef())) {
      SmallVector<int64_t> pieceShape = shape;
      pieceShape[axis] = p;
      Type piece =
          q ? Type(QTensorType::get(getContext(), pieceShape, q.getQuant()))
            : Type(RankedTensorType::get(
                  pieceShape, cast<RankedTensorType>(type).getElementType()));
      auto pieceSizes = componentSizes(piece);
      for (auto [c, size] : llvm::enumerate(*pieceSizes)) {
        if (q && size.first % 8)
          return emitOpError() << "piece " << i << " of '" << getSymName()
                               << "' does not fill whole bytes";
        expected[c * parts.size() + i] = size.second;
      }
    }
  }

  if (getBlobs().size() != expected.size())
    return emitOpError() << "needs " << expected.size() << " blob(s) for "
                         << type << ", got " << getBlobs().size();
  for (auto [i, pair] : llvm::enumerate(llvm::zip(getBlobs(), expected))) {
    auto blob = cast<BlobAttr>(std::get<0>(pair));
    if (blob.getSize() != std::get<1>(pair))
      return emitOpError() << "blob " << i << " of '" << getSymName()
                           << "' holds " << blob.getSize()
                           << " bytes, expected " << std::get<1>(pair);
  }
  return success();
}

LogicalResult WeightOp::verifySymbolUses(SymbolTableCollection &symbols) {
  auto global = symbols.lookupNearestSymbolFrom<GlobalOp>(*this, getNameAttr());
  if (!global)
    return emitOpError() << "'" << getName() << "' does not name a kiln.global";
  if (global.getType() != getType())
    return emitOpError() << "type " << getType() << " differs from the type "
                         << global.getType() << " of global '" << getName()
                         << "'";
  return success();
}

OpFoldResult ConstantOp::fold(FoldAdaptor) { return getValue(); }

LogicalResult ConstantOp::inferReturnTypes(MLIRContext *,
                                           std::optional<Location>,
                                           ConstantOp::Adaptor adaptor,
                                           SmallVectorImpl<Type> &inferred) {
  inferred.push_back(adaptor.getValue().getType());
  return success();
}

//===----------------------------------------------------------------------===//
// Elementwise
//===----------------------------------------------------------------------===//

static LogicalResult verifyBinary(Operation *op, bool boolResult,
                                  bool boolOperands) {
  Value lhs = op->getOperand(0), rhs = op->getOperand(1);
  Value result = op->getResult(0);
  if (failed(verifySameElement(op, lhs, rhs)))
    return failure();
  if (boolOperands && !elementOf(lhs).isInteger(1))
    return op->emitOpError("operands must be i1 tensors");
  Type expected =
      boolResult ? IntegerType::get(op->getContext(), 1) : elementOf(lhs);
  if (elementOf(result) != expected)
    return op->emitOpError() << "result element type must be " << expected
                             << ", got " << elementOf(result);
  return verifyBroadcast(op, {lhs, rhs}, result);
}

#define KILN_BINARY_VERIFIER(OP, BOOL_RESULT, BOOL_OPERANDS)                   \
  LogicalResult OP::verify() {                                                 \
    return verifyBinary(*this, BOOL_RESULT, BOOL_OPERANDS);                    \
  }
KILN_BINARY_VERIFIER(AddOp, false, false)
KILN_BINARY_VERIFIER(SubOp, false, false)
KILN_BINARY_VERIFIER(MulOp, false, false)
KILN_BINARY_VERIFIER(DivOp, false, false)
KILN_BINARY_VERIFIER(PowOp, false, false)
KILN_BINARY_VERIFIER(MaxOp, false, false)
KILN_BINARY_VERIFIER(MinOp, false, false)
KILN_BINARY_VERIFIER(EqualOp, true, false)
KILN_BINARY_VERIFIER(LessOp, true, false)
KILN_BINARY_VERIFIER(GreaterOp, true, false)
KILN_BINARY_VERIFIER(LessEqualOp, true, false)
KILN_BINARY_VERIFIER(GreaterEqualOp, true, false)
KILN_BINARY_VERIFIER(AndOp, true, true)
KILN_BINARY_VERIFIER(OrOp, true, true)
#undef KILN_BINARY_VERIFIER

/// Folds float arithmetic on small constants (scale factors computed from
/// static head sizes: sqrt(1 / sqrt(cast(dim)))). Only splat/scalar operands:
/// weights never fold here.
static OpFoldResult foldFloatArith(Operation *op, ArrayRef<Attribute> operands,
                                   double (*fn)(double, double)) {
  auto type = dyn_cast<RankedTensorType>(op->getResult(0).getType());
  if (!type || !type.hasStaticShape() || !isa<FloatType>(type.getElementType()))
    return {};
  SmallVector<double> values;
  for (Attribute a : operands) {
    auto dense = dyn_cast_or_null<DenseFPElementsAttr>(a);
    if (!dense || !dense.isSplat())
      return {};
    values.push_back(dense.getSplatValue<APFloat>().convertToDouble());
  }
  double r = values.size() == 1 ? fn(values[0], 0) : fn(values[0], values[1]);
  APFloat f(r);
  bool lost;
  f.convert(cast<FloatType>(type.getElementType()).getFloatSemantics(),
            APFloat::rmNearestTiesToEven, &lost);
  return DenseElementsAttr::get(type, f);
}

OpFoldResult AddOp::fold(FoldAdaptor a) {
  if (OpFoldResult r = foldIntArith(*this))
    return r;
  return foldFloatArith(*this, a.getOperands(),
                        [](double x, double y) { return x + y; });
}
OpFoldResult SubOp::fold(FoldAdaptor a) {
  if (OpFoldResult r = foldIntArith(*this))
    return r;
  return foldFloatArith(*this, a.getOperands(),
                        [](double x, double y) { return x - y; });
}
OpFoldResult MulOp::fold(FoldAdaptor a) {
  if (OpFoldResult r = foldIntArith(*this))
    return r;
  return foldFloatArith(*this, a.getOperands(),
                        [](double x, double y) { return x * y; });
}
OpFoldResult DivOp::fold(FoldAdaptor a) {
  if (OpFoldResult r = foldIntArith(*this))
    return r;
  return foldFloatArith(*this, a.getOperands(),
                        [](double x, double y) { return x / y; });
}
OpFoldResult SqrtOp::fold(FoldAdaptor a) {
  return foldFloatArith(*this, a.getOperands(),
                        [](double x, double) { return std::sqrt(x); });
}

static LogicalResult verifyUnary(Operation *op, bool floatOnly, bool boolOnly) {
  Value in = op->getOperand(0), out = op->getResult(0);
  if (floatOnly && !isa<FloatType>(elementOf(in)))
    return op->emitOpError() << "expects a float tensor, got " << in.getType();
  if (boolOnly && !elementOf(in).isInteger(1))
    return op->emitOpError() << "expects an i1 tensor, got " << in.getType();
  if (failed(verifySameElement(op, in, out)))
    return failure();
  return verifyShape(op, exprsOf(in), out, "result");
}

#define KILN_UNARY_VERIFIER(OP, FLOAT_ONLY, BOOL_ONLY)                         \
  LogicalResult OP::verify() {                                                 \
    return verifyUnary(*this, FLOAT_ONLY, BOOL_ONLY);                          \
  }
KILN_UNARY_VERIFIER(SqrtOp, true, false)
KILN_UNARY_VERIFIER(ReciprocalOp, true, false)
KILN_UNARY_VERIFIER(NegOp, false, false)
KILN_UNARY_VERIFIER(AbsOp, false, false)
KILN_UNARY_VERIFIER(ExpOp, true, false)
KILN_UNARY_VERIFIER(LogOp, true, false)
KILN_UNARY_VERIFIER(TanhOp, true, false)
KILN_UNARY_VERIFIER(ErfOp, true, false)
KILN_UNARY_VERIFIER(SigmoidOp, true, false)
KILN_UNARY_VERIFIER(ReluOp, false, false)
KILN_UNARY_VERIFIER(CosOp, true, false)
KILN_UNARY_VERIFIER(SinOp, true, false)
KILN_UNARY_VERIFIER(NotOp, false, true)
#undef KILN_UNARY_VERIFIER

LogicalResult IsNaNOp::verify() {
  return verifyShape(*this, exprsOf(getInput()), getResult(), "result");
}

LogicalResult GeluOp::verify() {
  if (getApproximate() != "none" && getApproximate() != "tanh")
    return emitOpError() << "approximate must be \"none\" or \"tanh\", got \""
                         << getApproximate() << "\"";
  return verifyUnary(*this, true, false);
}

LogicalResult GluOp::verify() {
  StringRef a = getActivation();
  if (a != "silu" && a != "gelu" && a != "gelu_tanh" && a != "relu" &&
      a != "sigmoid")
    return emitOpError() << "activation must be \"silu\", \"gelu\", "
                            "\"gelu_tanh\", \"relu\" or \"sigmoid\", got \""
                         << a << "\"";
  return verifyUnary(*this, true, false);
}

LogicalResult CastOp::verify() {
  return verifyShape(*this, exprsOf(getInput()), getResult(), "result");
}

OpFoldResult CastOp::fold(FoldAdaptor adaptor) {
  if (getInput().getType() == getType())
    return getInput();
  auto outType = cast<RankedTensorType>(getType());
  // A splat integer cast to float (a head size turned into a scale).
  if (auto splat = dyn_cast_or_null<DenseIntElementsAttr>(adaptor.getInput());
      splat && splat.isSplat() && outType.hasStaticShape() &&
      isa<FloatType>(outType.getElementType()) &&
      !splat.getElementType().isInteger(1)) {
    APFloat f(static_cast<double>(splat.getSplatValue<APInt>().getSExtValue()));
    bool lost;
    f.convert(cast<FloatType>(outType.getElementType()).getFloatSemantics(),
              APFloat::rmNearestTiesToEven, &lost);
    return DenseElementsAttr::get(outType, f);
  }
  // Integer-to-integer casts of shape constants (i32 <-> i64).
  auto in = dyn_cast_or_null<DenseIntElementsAttr>(adaptor.getInput());
  if (!in || !outType.getElementType().isSignlessInteger() ||
      outType.getElementType().isInteger(1))
    return {};
  SmallVector<int64_t> values;
  for (const APInt &v : in.getValues<APInt>())
    values.push_back(v.getBitWidth() == 1 ? v.getZExtValue()
                                          : v.getSExtValue());
  return intConstant(outType, values);
}

LogicalResult WhereOp::verify() {
  if (failed(verifySameElement(*this, getLhs(), getRhs())) ||
      failed(verifySameElement(*this, getLhs(), getResult())))
    return failure();
  return verifyBroadcast(*this, {getCondition(), getLhs(), getRhs()},
                         getResult());
}

//===----------------------------------------------------------------------===//
// Normalization
//===----------------------------------------------------------------------===//

static LogicalResult verifyAxisOp(Operation *op, int64_t axis) {
  if (failed(verifyAxis(op, axis, rankOf(op->getOperand(0)))))
    return failure();
  return verifyUnary(op, true, false);
}
LogicalResult SoftmaxOp::verify() { return verifyAxisOp(*this, getAxis()); }
LogicalResult LogSoftmaxOp::verify() { return verifyAxisOp(*this, getAxis()); }

static LogicalResult verifyNorm(Operation *op, Value input, Value scale,
                                Value bias, int64_t axis, float epsilon) {
  if (failed(verifyAxis(op, axis, rankOf(input))))
    return failure();
  if (!(epsilon >= 0)) // also rejects NaN
    return op->emitOpError() << "epsilon must be >= 0, got " << epsilon;
  SmallVector<DimExpr> inShape = exprsOf(input);
  SmallVector<DimExpr> normalized(inShape.begin() + axis, inShape.end());
  for (Value param : {scale, bias}) {
    if (!param)
      continue;
    if (failed(verifySameElement(op, input, param)))
      return failure();
    FailureOr<SmallVector<DimExpr>> b =
        broadcastShapes(normalized, exprsOf(param));
    if (failed(b) || b->size() != normalized.size())
      return op->emitOpError() << "parameter of type " << param.getType()
                               << " does not broadcast to the normalized "
                                  "dimensions of "
                               << input.getType();
  }
  return verifyShape(op, exprsOf(input), op->getResult(0), "result");
}

LogicalResult LayerNormOp::verify() {
  return verifyNorm(*this, getInput(), getScale(), getBias(), getAxis(),
                    getEpsilon().convertToFloat());
}
LogicalResult RMSNormOp::verify() {
  return verifyNorm(*this, getInput(), getScale(), nullptr, getAxis(),
                    getEpsilon().convertToFloat());
}

//===----------------------------------------------------------------------===//
// Linear algebra and quantization
//===----------------------------------------------------------------------===//

LogicalResult MatMulOp::verify() {
  if (failed(verifySameElement(*this, getLhs(), getRhs())) ||
      failed(verifySameElement(*this, getLhs(), getResult())))
    return failure();
  SmallVector<DimExpr> a = exprsOf(getLhs()), b = exprsOf(getRhs());
  if (a.empty() || b.empty())
    return emitOpError("operands must have rank >= 1");
  bool aVec = a.size() == 1, bVec = b.size() == 1;
  if (aVec)
    a.insert(a.begin(), DimExpr::constant(1));
  if (bVec)
    b.push_back(DimExpr::constant(1));
  if (!dimsCompatible(a.back(), b[b.size() - 2]))
    return emitOpError() << "contraction dimensions differ: " << a.back()
                         << " vs " << b[b.size() - 2];
  FailureOr<SmallVector<DimExpr>> batch =
      broadcastShapes(ArrayRef(a).drop_back(2), ArrayRef(b).drop_back(2));
  if (failed(batch))
    return emitOpError("batch dimensions do not broadcast");
  SmallVector<DimExpr> expected = *batch;
  if (!aVec)
    expected.push_back(a[a.size() - 2]);
  if (!bVec)
    expected.push_back(b.back());
  return verifyShape(*this, expected, getResult(), "result");
}

LogicalResult DequantizeOp::verify() {
  auto q = cast<QTensorType>(getInput().getType());
  if (cast<RankedTensorType>(getType()).getShape() != q.getShape())
    return emitOpError() << "result shape must equal the quantized shape";
  return success();
}

static LogicalResult verifyQuantLinear(Operation *op, Value input, Value scale,
                                       Value zeroPoint, int64_t axis,
                                       int64_t blockSize) {
  int64_t rank = rankOf(input);
  if (rankOf(scale) > 0 && failed(verifyAxis(op, axis, rank)))
    return failure();
  if (blockSize < 0)
    return op->emitOpError() << "block_size must be >= 0, got " << blockSize;
  if (zeroPoint &&
      failed(verifyShape(op, exprsOf(scale), zeroPoint, "zero point")))
    return failure();
  // Per-axis: one scale per slice along `axis`.
  if (rankOf(scale) == 1 && blockSize == 0 &&
      !dimsCompatible(exprsOf(scale)[0], exprsOf(input)[axis]) &&
      exprsOf(scale)[0].getConstant() != 1)
    return op->emitOpError() << "per-axis scale has " << exprsOf(scale)[0]
                             << " elements for axis " << axis << " of size "
                             << exprsOf(input)[axis];
  return verifyShape(op, exprsOf(input), op->getResult(0), "result");
}

LogicalResult DequantizeLinearOp::verify() {
  return verifyQuantLinear(*this, getInput(), getScale(), getZeroPoint(),
                           getAxis(), getBlockSize());
}
LogicalResult QuantizeLinearOp::verify() {
  return verifyQuantLinear(*this, getInput(), getScale(), getZeroPoint(),
                           getAxis(), getBlockSize());
}

//===----------------------------------------------------------------------===//
// Shape manipulation
//===----------------------------------------------------------------------===//

LogicalResult TransposeOp::verify() {
  ArrayRef<int64_t> perm = getPerm();
  SmallVector<DimExpr> in = exprsOf(getInput());
  if (perm.size() != in.size())
    return emitOpError() << "perm has " << perm.size() << " entries for rank "
                         << in.size();
  SmallVector<bool> seen(in.size(), false);
  SmallVector<DimExpr> expected;
  for (int64_t p : perm) {
    if (p < 0 || p >= static_cast<int64_t>(in.size()) || seen[p])
      return emitOpError("perm must be a permutation of [0, rank)");
    seen[p] = true;
    expected.push_back(in[p]);
  }
  if (failed(verifySameElement(*this, getInput(), getResult())))
    return failure();
  return verifyShape(*this, expected, getResult(), "result");
}

OpFoldResult TransposeOp::fold(FoldAdaptor) {
  if (llvm::equal(getPerm(), llvm::seq<int64_t>(0, getPerm().size())) &&
      getInput().getType() == getType())
    return getInput();
  return {};
}

LogicalResult ReshapeOp::verify() {
  if (failed(verifySameElement(*this, getInput(), getResult())))
    return failure();
  auto resultType = cast<RankedTensorType>(getType());
  if (getShape()) {
    auto shapeType = cast<RankedTensorType>(getShape().getType());
    if (shapeType.getRank() != 1)
      return emitOpError("shape operand must be 1-D");
    if (!shapeType.isDynamicDim(0) &&
        shapeType.getDimSize(0) != resultType.getRank())
      return emitOpError() << "shape operand has " << shapeType.getDimSize(0)
                           << " elements for a result of rank "
                           << resultType.getRank();
  }
  // The element counts must agree whenever both are known.
  DimExpr in = DimExpr::constant(1), out = DimExpr::constant(1);
  for (const DimExpr &d : exprsOf(getInput()))
    in = in * d;
  for (const DimExpr &d : exprsOf(getResult()))
    out = out * d;
  if (!dimsCompatible(in, out))
    return emitOpError() << "element counts differ: " << in << " vs " << out;
  return success();
}

OpFoldResult ReshapeOp::fold(FoldAdaptor adaptor) {
  // Equal types prove an identity only when every dimension is static or
  // named; `?` to `?` may still move elements between dimensions.
  if (getInput().getType() == getType() &&
      (!getShape() || llvm::none_of(exprsOf(getResult()), [](const DimExpr &d) {
        return d.isUnknown();
      })))
    return getInput();
  if (auto dense = dyn_cast_or_null<DenseElementsAttr>(adaptor.getInput()))
    if (cast<RankedTensorType>(getType()).hasStaticShape())
      return dense.reshape(cast<ShapedType>(getType()));
  return {};
}

/// Whether the type of `result` states exactly the (fully known) `derived`
/// dimensions: then an operand that computes them is redundant.
static bool statesExactly(ArrayRef<DimExpr> derived, Value result) {
  SmallVector<DimExpr> stated = exprsOf(result);
  if (derived.size() != stated.size())
    return false;
  for (auto [d, s] : llvm::zip(derived, stated))
    if (d.isUnknown() || d != s)
      return false;
  return true;
}

namespace {
/// Drops the shape operand of a reshape when its symbolic value equals what
/// the result type already states: the shape subgraph then has no user left
/// and dies. This is what makes exported Shape->Gather->Concat->Reshape
/// chains disappear.
struct DropKnownReshapeShape : OpRewritePattern<ReshapeOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(ReshapeOp op,
                                PatternRewriter &rewriter) const override {
    if (!op.getShape())
      return failure();
    std::optional<SmallVector<DimExpr>> target =
        evaluateSymbolic(op.getShape());
    if (!target)
      return failure();
    std::optional<SmallVector<DimExpr>> resolved = resolveReshapeTarget(
        exprsOf(op.getInput()), *target, op.getAllowzero());
    if (!resolved)
      return failure();
    if (!statesExactly(*resolved, op.getResult()))
      return failure();
    rewriter.replaceOpWithNewOp<ReshapeOp>(op, op.getType(), op.getInput(),
                                           Value(), nullptr);
    return success();
  }
};

/// reshape(reshape(x)) -> reshape(x) when both are fully described by their
/// types.
struct CollapseReshapes : OpRewritePattern<ReshapeOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(ReshapeOp op,
                                PatternRewriter &rewriter) const override {
    auto inner = op.getInput().getDefiningOp<ReshapeOp>();
    if (op.getShape() || !inner || inner.getShape())
      return failure();
    rewriter.replaceOpWithNewOp<ReshapeOp>(op, op.getType(), inner.getInput(),
                                           Value(), nullptr);
    return success();
  }
};

/// shape(x)[i] -> dim(x, i) / constant: a Gather of a Shape with constant
/// indices reads one dimension.
struct GatherOfShape : OpRewritePattern<GatherOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(GatherOp op,
                                PatternRewriter &rewriter) const override {
    auto shape = op.getInput().getDefiningOp<ShapeOp>();
    auto resultType = cast<RankedTensorType>(op.getType());
    if (!shape || resultType.getRank() > 1 || !resultType.hasStaticShape() ||
        resultType.getNumElements() != 1 ||
        !resultType.getElementType().isInteger(64))
      return failure();
    std::optional<SmallVector<int64_t>> idx = constantInts(op.getIndices());
    if (!idx || idx->size() != 1)
      return failure();
    auto [start, end] = shape.getDimRange();
    int64_t len = end - start;
    int64_t i = (*idx)[0] < 0 ? (*idx)[0] + len : (*idx)[0];
    if (i < 0 || i >= len)
      return failure();
    rewriter.replaceOpWithNewOp<DimOp>(op, resultType, shape.getInput(),
                                       rewriter.getI64IntegerAttr(start + i));
    return success();
  }
};

/// A Shape with dynamic dims becomes a concat of its constant and dynamic
/// parts, so that later Gathers, Slices and Concats see single elements.
struct ExpandShape : OpRewritePattern<ShapeOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(ShapeOp op,
                                PatternRewriter &rewriter) const override {
    // Only when some user can fold a part: a concat that builds a target
    // shape from parts of this one.
    if (!llvm::any_of(op->getUsers(),
                      [](Operation *u) { return isa<ConcatOp, SliceOp>(u); }))
      return failure();
    auto type = cast<RankedTensorType>(op.getInput().getType());
    auto [start, end] = op.getDimRange();
    auto one = RankedTensorType::get({1}, rewriter.getI64Type());
    SmallVector<Value> parts;
    for (int64_t i = start; i < end; ++i) {
      if (type.isDynamicDim(i))
        parts.push_back(DimOp::create(rewriter, op.getLoc(), one, op.getInput(),
                                      rewriter.getI64IntegerAttr(i)));
      else
        parts.push_back(ConstantOp::create(
            rewriter, op.getLoc(),
            DenseElementsAttr::get(
                one,
                rewriter.getI64IntegerAttr(type.getDimSize(i)).getValue())));
    }
    if (parts.size() < 2)
      return failure();
    rewriter.replaceOpWithNewOp<ConcatOp>(op, op.getType(), parts,
                                          rewriter.getI64IntegerAttr(0));
    return success();
  }
};
} // namespace

void ReshapeOp::getCanonicalizationPatterns(RewritePatternSet &results,
                                            MLIRContext *context) {
  results.add<DropKnownReshapeShape, CollapseReshapes>(context);
}

LogicalResult ExpandOp::verify() {
  if (failed(verifySameElement(*this, getInput(), getResult())))
    return failure();
  SmallVector<DimExpr> in = exprsOf(getInput()), out = exprsOf(getResult());
  if (in.size() > out.size())
    return emitOpError("result rank must be at least the input rank");
  if (getShape()) {
    if (rankOf(getShape()) != 1)
      return emitOpError("shape operand must be 1-D");
    return success();
  }
  for (size_t i = 0; i < in.size(); ++i) {
    const DimExpr &o = out[out.size() - in.size() + i];
    if (in[i].getConstant() != 1 && !dimsCompatible(in[i], o))
      return emitOpError() << "input dimension " << i << " (" << in[i]
                           << ") is neither 1 nor the result's " << o;
  }
  return success();
}

namespace {
/// Drops the shape operand of an Expand whose symbolic value, broadcast with
/// the input, gives exactly the result type.
struct DropKnownExpandShape : OpRewritePattern<ExpandOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(ExpandOp op,
                                PatternRewriter &rewriter) const override {
    if (!op.getShape())
      return failure();
    std::optional<SmallVector<DimExpr>> target =
        evaluateSymbolic(op.getShape());
    if (!target)
      return failure();
    FailureOr<SmallVector<DimExpr>> b =
        broadcastShapes(exprsOf(op.getInput()), *target);
    if (failed(b) || !statesExactly(*b, op.getResult()))
      return failure();
    rewriter.replaceOpWithNewOp<ExpandOp>(op, op.getType(), op.getInput(),
                                          Value());
    return success();
  }
};
} // namespace

OpFoldResult ExpandOp::fold(FoldAdaptor) {
  if (!getShape() && getInput().getType() == getType())
    return getInput();
  return {};
}

void ExpandOp::getCanonicalizationPatterns(RewritePatternSet &results,
                                           MLIRContext *context) {
  results.add<DropKnownExpandShape>(context);
}

LogicalResult TileOp::verify() {
  if (failed(verifySameElement(*this, getInput(), getResult())))
    return failure();
  if (rankOf(getInput()) != rankOf(getResult()))
    return emitOpError("result rank must equal input rank");
  auto reps = cast<RankedTensorType>(getRepeats().getType());
  if (reps.getRank() != 1 ||
      (!reps.isDynamicDim(0) && reps.getDimSize(0) != rankOf(getInput())))
    return emitOpError() << "repeats must be 1-D with one entry per input "
                            "dimension, got "
                         << reps;
  return success();
}

LogicalResult ConcatOp::verify() {
  if (getInputs().empty())
    return emitOpError("needs at least one operand");
  Value first = getInputs().front();
  int64_t rank = rankOf(first);
  if (failed(verifyAxis(*this, getAxis(), rank)))
    return failure();
  SmallVector<DimExpr> expected = exprsOf(first);
  for (Value v : getInputs().drop_front()) {
    if (failed(verifySameElement(*this, first, v)))
      return failure();
    SmallVector<DimExpr> s = exprsOf(v);
    if (static_cast<int64_t>(s.size()) != rank)
      return emitOpError("operands must have the same rank");
    for (int64_t i = 0; i < rank; ++i) {
      if (i == getAxis())
        continue;
      if (!dimsCompatible(expected[i], s[i]))
        return emitOpError() << "operands differ in dimension " << i << ": "
                             << expected[i] << " vs " << s[i];
    }
    expected[getAxis()] = expected[getAxis()] + s[getAxis()];
  }
  return verifyShape(*this, expected, getResult(), "result");
}

OpFoldResult ConcatOp::fold(FoldAdaptor adaptor) {
  if (getInputs().size() == 1 && getInputs().front().getType() == getType())
    return getInputs().front();
  return foldIntArith(*this, false);
}

LogicalResult SplitOp::verify() {
  if (failed(verifyAxis(*this, getAxis(), rankOf(getInput()))))
    return failure();
  SmallVector<DimExpr> in = exprsOf(getInput());
  DimExpr total = DimExpr::constant(0);
  for (Value r : getResults()) {
    if (failed(verifySameElement(*this, getInput(), r)))
      return failure();
    SmallVector<DimExpr> s = exprsOf(r);
    if (s.size() != in.size())
      return emitOpError("results must have the input's rank");
    for (size_t i = 0; i < in.size(); ++i)
      if (static_cast<int64_t>(i) != getAxis() && !dimsCompatible(in[i], s[i]))
        return emitOpError() << "result dimension " << i << " is " << s[i]
                             << ", expected " << in[i];
    total = total + s[getAxis()];
  }
  if (!dimsCompatible(total, in[getAxis()]))
    return emitOpError() << "pieces add up to " << total << " along axis "
                         << getAxis() << ", expected " << in[getAxis()];
  return success();
}

LogicalResult SliceOp::verify() {
  int64_t rank = rankOf(getInput());
  if (getAxes().size() != getSteps().size())
    return emitOpError("axes and steps must have the same length");
  SmallVector<bool> seen(rank, false);
  for (int64_t a : getAxes()) {
    if (failed(verifyAxis(*this, a, rank, "slice axis")))
      return failure();
    if (seen[a])
      return emitOpError() << "slice axis " << a << " appears twice";
    seen[a] = true;
  }
  for (int64_t s : getSteps())
    if (s == 0)
      return emitOpError("steps must be non-zero");
  if (rankOf(getResult()) != rank)
    return emitOpError("result rank must equal input rank");
  return verifySameElement(*this, getInput(), getResult());
}

LogicalResult GatherOp::verify() {
  int64_t rank = rankOf(getInput());
  if (failed(verifyAxis(*this, getAxis(), rank)))
    return failure();
  SmallVector<DimExpr> in = exprsOf(getInput()), idx = exprsOf(getIndices());
  SmallVector<DimExpr> expected(in.begin(), in.begin() + getAxis());
  expected.append(idx.begin(), idx.end());
  expected.append(in.begin() + getAxis() + 1, in.end());
  if (failed(verifySameElement(*this, getInput(), getResult())))
    return failure();
  return verifyShape(*this, expected, getResult(), "result");
}

// Shape-vector gathers, slices and concats fold whenever the elements they
// produce are known constants, even if their operands are not (a static
// dimension read out of a partially dynamic shape).
OpFoldResult GatherOp::fold(FoldAdaptor) { return foldIntArith(*this, false); }

OpFoldResult SliceOp::fold(FoldAdaptor) { return foldIntArith(*this, false); }

LogicalResult GatherNDOp::verify() {
  SmallVector<DimExpr> in = exprsOf(getInput()), idx = exprsOf(getIndices());
  int64_t b = getBatchDims();
  std::optional<int64_t> k =
      idx.empty() ? std::nullopt : idx.back().getConstant();
  if (!k || b < 0 || *k < 0 || b > static_cast<int64_t>(in.size()) ||
      *k > static_cast<int64_t>(in.size()) - b ||
      b >= static_cast<int64_t>(idx.size()))
    return emitOpError("indices must end in a static size k with batch_dims + "
                       "k <= input rank");
  SmallVector<DimExpr> expected(idx.begin(), idx.end() - 1);
  expected.append(in.begin() + b + *k, in.end());
  if (failed(verifySameElement(*this, getInput(), getResult())))
    return failure();
  return verifyShape(*this, expected, getResult(), "result");
}

LogicalResult GatherElementsOp::verify() {
  if (failed(verifyAxis(*this, getAxis(), rankOf(getInput()))))
    return failure();
  if (rankOf(getIndices()) != rankOf(getInput()))
    return emitOpError("indices must have the input's rank");
  if (failed(verifySameElement(*this, getInput(), getResult())))
    return failure();
  return verifyShape(*this, exprsOf(getIndices()), getResult(), "result");
}

LogicalResult ScatterNDOp::verify() {
  StringRef r = getReduction();
  if (r != "none" && r != "add" && r != "mul" && r != "max" && r != "min")
    return emitOpError() << "reduction must be none, add, mul, max or min, got "
                         << r;
  if (failed(verifySameElement(*this, getInput(), getUpdates())))
    return failure();
  // updates.shape = indices.shape[:-1] + input.shape[k:], k = indices[-1].
  SmallVector<DimExpr> in = exprsOf(getInput()), idx = exprsOf(getIndices());
  std::optional<int64_t> k =
      idx.empty() ? std::nullopt : idx.back().getConstant();
  if (!k || *k < 1 || *k > static_cast<int64_t>(in.size()))
    return emitOpError() << "indices must end in a static size between 1 and "
                            "the input rank, got "
                         << getIndices().getType();
  SmallVector<DimExpr> expected(idx.begin(), idx.end() - 1);
  expected.append(in.begin() + *k, in.end());
  if (failed(verifyShape(*this, expected, getUpdates(), "updates")))
    return failure();
  return verifyShape(*this, in, getResult(), "result");
}

std::pair<int64_t, int64_t> ShapeOp::getDimRange() {
  int64_t rank = rankOf(getInput());
  auto clampIdx = [&](int64_t v) {
    return std::clamp<int64_t>(v < 0 ? v + rank : v, 0, rank);
  };
  int64_t start = clampIdx(getStart());
  return {start, std::max(start, clampIdx(getEnd().value_or(rank)))};
}

LogicalResult ShapeOp::verify() {
  auto type = cast<RankedTensorType>(getType());
  if (type.getRank() != 1)
    return emitOpError("result must be 1-D");
  auto [start, end] = getDimRange();
  if (!type.isDynamicDim(0) && type.getDimSize(0) != end - start)
    return emitOpError() << "result has " << type.getDimSize(0)
                         << " elements, expected " << end - start;
  return success();
}

OpFoldResult ShapeOp::fold(FoldAdaptor) { return foldIntArith(*this, false); }

void ShapeOp::getCanonicalizationPatterns(RewritePatternSet &results,
                                          MLIRContext *context) {
  results.add<ExpandShape>(context);
  results.add<GatherOfShape>(context);
}

LogicalResult DimOp::verify() {
  if (failed(verifyAxis(*this, getIndex(), rankOf(getInput()), "index")))
    return failure();
  auto type = cast<RankedTensorType>(getType());
  if (!type.hasStaticShape() || type.getNumElements() != 1 ||
      type.getRank() > 1)
    return emitOpError("result must be tensor<i64> or tensor<1xi64>");
  return success();
}

OpFoldResult DimOp::fold(FoldAdaptor) { return foldIntArith(*this, false); }

OpFoldResult SizeOp::fold(FoldAdaptor) { return foldIntArith(*this, false); }

LogicalResult ConstantOfShapeOp::verify() {
  auto shapeType = cast<RankedTensorType>(getShape().getType());
  if (shapeType.getRank() != 1)
    return emitOpError("shape operand must be 1-D");
  if (!shapeType.isDynamicDim(0) &&
      shapeType.getDimSize(0) != rankOf(getResult()))
    return emitOpError() << "shape operand has " << shapeType.getDimSize(0)
                         << " elements for a result of rank "
                         << rankOf(getResult());
  if (getValue().getType() != elementOf(getResult()))
    return emitOpError() << "value type " << getValue().getType()
                         << " differs from the result element type "
                         << elementOf(getResult());
  return success();
}

LogicalResult RangeOp::verify() {
  for (Value v : {getStart(), getLimit(), getDelta()}) {
    if (rankOf(v) != 0)
      return emitOpError("start, limit and delta must be rank-0 tensors");
    if (failed(verifySameElement(*this, v, getResult())))
      return failure();
  }
  if (rankOf(getResult()) != 1)
    return emitOpError("result must be 1-D");
  return success();
}

LogicalResult TriluOp::verify() {
  if (rankOf(getInput()) < 2)
    return emitOpError("input must have rank >= 2");
  if (getK() && rankOf(getK()) != 0)
    return emitOpError("k must be a rank-0 tensor");
  return verifyUnary(*this, false, false);
}

//===----------------------------------------------------------------------===//
// Reductions
//===----------------------------------------------------------------------===//

static LogicalResult verifyReduce(Operation *op, ArrayRef<int64_t> axes,
                                  bool keepdims) {
  Value in = op->getOperand(0), out = op->getResult(0);
  SmallVector<DimExpr> shape = exprsOf(in);
  int64_t rank = shape.size();
  SmallVector<bool> reduced(rank, axes.empty());
  int64_t prev = -1;
  for (int64_t a : axes) {
    if (failed(verifyAxis(op, a, rank)))
      return failure();
    if (a <= prev)
      return op->emitOpError("axes must be sorted and unique");
    prev = a;
    reduced[a] = true;
  }
  SmallVector<DimExpr> expected;
  for (int64_t i = 0; i < rank; ++i) {
    if (!reduced[i])
      expected.push_back(shape[i]);
    else if (keepdims)
      expected.push_back(DimExpr::constant(1));
  }
  if (failed(verifySameElement(op, in, out)))
    return failure();
  return verifyShape(op, expected, out, "result");
}

LogicalResult ReduceMeanOp::verify() {
  return verifyReduce(*this, getAxes(), getKeepdims());
}
LogicalResult ReduceSumOp::verify() {
  return verifyReduce(*this, getAxes(), getKeepdims());
}
LogicalResult ReduceMaxOp::verify() {
  return verifyReduce(*this, getAxes(), getKeepdims());
}

LogicalResult ArgMaxOp::verify() {
  SmallVector<DimExpr> shape = exprsOf(getInput());
  if (failed(verifyAxis(*this, getAxis(), shape.size())))
    return failure();
  if (getKeepdims())
    shape[getAxis()] = DimExpr::constant(1);
  else
    shape.erase(shape.begin() + getAxis());
  return verifyShape(*this, shape, getResult(), "result");
}

//===----------------------------------------------------------------------===//
// Transformer blocks
//===----------------------------------------------------------------------===//

LogicalResult RotaryOp::verify() {
  SmallVector<DimExpr> in = exprsOf(getInput());
  if (in.size() != 4)
    return emitOpError() << "input must be [batch, heads, seq, head_dim], got "
                         << getInput().getType();
  int64_t rot = getRotaryDim();
  std::optional<int64_t> headDim = in[3].getConstant();
  if (rot <= 0 || rot % 2 != 0 || (headDim && rot > *headDim))
    return emitOpError() << "rotary_dim must be even, positive and at most "
                            "the head dimension, got "
                         << rot;
  Value positions = getPositions();
  for (Value cache : {getCos(), getSin()}) {
    SmallVector<DimExpr> c = exprsOf(cache);
    if (positions &&
        (c.size() != 2 || !dimsCompatible(c[1], DimExpr::constant(rot / 2))))
      return emitOpError() << "cos/sin caches must be [max_position, "
                           << rot / 2 << "], got " << cache.getType();
    if (!positions &&
        (c.size() != 3 ||
         !(c[0] == DimExpr::constant(1) || dimsCompatible(c[0], in[0])) ||
         !dimsCompatible(c[1], in[2]) ||
         !dimsCompatible(c[2], DimExpr::constant(rot / 2))))
      return emitOpError() << "without positions, cos/sin must be [batch, "
                              "seq, "
                           << rot / 2 << "] (batch may be 1), got "
                           << cache.getType();
    if (failed(verifySameElement(*this, getInput(), cache)))
      return failure();
  }
  if (positions) {
    SmallVector<DimExpr> pos = exprsOf(positions);
    if (pos.size() != 2 || !dimsCompatible(pos[1], in[2]))
      return emitOpError() << "positions must be [batch, seq], got "
                           << positions.getType();
  }
  return verifyUnary(*this, true, false);
}

LogicalResult AttentionOp::verify() {
  SmallVector<DimExpr> q = exprsOf(getQuery()), k = exprsOf(getKey()),
                       v = exprsOf(getValue());
  if (q.size() != 4 || k.size() != 4 || v.size() != 4)
    return emitOpError("query, key and value must be 4-D [batch, heads, seq, "
                       "head_dim]");
  if (!dimsCompatible(q[3], k[3]))
    return emitOpError() << "query head_dim " << q[3]
                         << " differs from key head_dim " << k[3];
  if (!dimsCompatible(k[1], v[1]) || !dimsCompatible(k[2], v[2]))
    return emitOpError("key and value must agree in heads and length");
  std::optional<int64_t> hq = q[1].getConstant(), hk = k[1].getConstant();
  if (hq && hk && (*hk == 0 || *hq % *hk != 0))
    return emitOpError() << "query heads (" << *hq
                         << ") must be a multiple of KV heads (" << *hk << ")";
  if (!(getSoftcap().convertToFloat() >= 0)) // also rejects NaN
    return emitOpError("softcap must be >= 0");
  for (int64_t w : {static_cast<int64_t>(getWindowLeft()),
                    static_cast<int64_t>(getWindowRight())})
    if (w < -1)
      return emitOpError() << "window sizes must be >= -1 (unbounded), got "
                           << w;
  if (!dimsCompatible(q[0], k[0]) || !dimsCompatible(q[0], v[0]))
    return emitOpError() << "query, key and value batch sizes differ: " << q[0]
                         << ", " << k[0] << ", " << v[0];
  if (Value mask = getMask()) {
    // The mask broadcasts to [batch, q_heads, seq, total].
    FailureOr<SmallVector<DimExpr>> b =
        broadcastShapes({q[0], q[1], q[2], k[2]}, exprsOf(mask));
    if (failed(b) || b->size() != 4)
      return emitOpError() << "mask " << mask.getType()
                           << " does not broadcast to [batch, heads, seq, "
                              "total]";
  }
  if (getKeyLengths() && rankOf(getKeyLengths()) != 1)
    return emitOpError("key_lengths must be 1-D [batch]");
  if (failed(verifySameElement(*this, getQuery(), getKey())) ||
      failed(verifySameElement(*this, getQuery(), getValue())))
    return failure();
  return verifyShape(*this, {q[0], q[1], q[2], v[3]}, getResult(), "result");
}

LogicalResult KVCacheWriteOp::verify() {
  auto cache = cast<KVCacheType>(getCache().getType());
  int64_t layer = static_cast<int64_t>(getLayer());
  if (layer < 0 || layer >= cache.getLayers())
    return emitOpError() << "layer " << layer << " is out of range for "
                         << cache.getLayers() << " layers";
  if (rankOf(getSlots()) != 1)
    return emitOpError("slots must be 1-D [tokens]");
  if (elementOf(getKey()) != cache.getElementType() ||
      elementOf(getValue()) != cache.getElementType())
    return emitOpError() << "key and value must have the cache's element type "
                         << cache.getElementType();
  SmallVector<DimExpr> expected = {exprsOf(getSlots())[0],
                                   DimExpr::constant(cache.getHeads()),
                                   DimExpr::constant(cache.getHeadDim())};
  if (failed(verifyShape(*this, expected, getKey(), "key")) ||
      failed(verifyShape(*this, expected, getValue(), "value")))
    return failure();
  return success();
}

LogicalResult PagedAttentionOp::verify() {
  auto cache = cast<KVCacheType>(getCache().getType());
  int64_t layer = static_cast<int64_t>(getLayer());
  if (layer < 0 || layer >= cache.getLayers())
    return emitOpError() << "layer " << layer << " is out of range for "
                         << cache.getLayers() << " layers";
  if (static_cast<int64_t>(getWindow()) < -1)
    return emitOpError() << "window must be -1 (none) or >= 0, got "
                         << static_cast<int64_t>(getWindow());
  for (Value v : {getQuery(), getKey(), getValue(), getResult()}) {
    if (rankOf(v) != 4)
      return emitOpError("query, key, value and result must be 4-D "
                         "[1, heads, tokens, head_dim]");
    if (elementOf(v) != cache.getElementType())
      return emitOpError() << "operands must have the cache's element type "
                           << cache.getElementType();
  }
  SmallVector<DimExpr> q = exprsOf(getQuery());
  DimExpr one = DimExpr::constant(1), tokens = q[2];
  DimExpr headDim = DimExpr::constant(cache.getHeadDim());
  if (!dimsCompatible(q[0], one) || !dimsCompatible(q[3], headDim))
    return emitOpError() << "query must be [1, q_heads, tokens, "
                         << cache.getHeadDim() << "], got "
                         << getQuery().getType();
  if (!q[1].getConstant() || *q[1].getConstant() % cache.getHeads() != 0)
    return emitOpError() << "query heads must be a static multiple of the "
                         << cache.getHeads() << " cache heads";
  SmallVector<DimExpr> kv = {one, DimExpr::constant(cache.getHeads()), tokens,
                             headDim};
  if (failed(verifyShape(*this, kv, getKey(), "key")) ||
      failed(verifyShape(*this, kv, getValue(), "value")) ||
      failed(verifyShape(*this, q, getResult(), "result")))
    return failure();
  return success();
}

LogicalResult KVCacheReadOp::verify() {
  auto cache = cast<KVCacheType>(getCache().getType());
  int64_t layer = static_cast<int64_t>(getLayer());
  if (layer < 0 || layer >= cache.getLayers())
    return emitOpError() << "layer " << layer << " is out of range for "
                         << cache.getLayers() << " layers";

  if (rankOf(getBlockTables()) != 2 || rankOf(getLengths()) != 1)
    return emitOpError("block_tables must be 2-D and lengths 1-D");
  for (Value r : {getKey(), getValue()}) {
    SmallVector<DimExpr> s = exprsOf(r);
    if (s.size() != 4 ||
        !dimsCompatible(s[1], DimExpr::constant(cache.getHeads())) ||
        !dimsCompatible(s[3], DimExpr::constant(cache.getHeadDim())))
      return emitOpError() << "results must be [batch, " << cache.getHeads()
                           << ", tokens, " << cache.getHeadDim() << "], got "
                           << r.getType();
  }
  if (getKey().getType() != getValue().getType())
    return emitOpError("key and value results must have the same type");
  if (elementOf(getKey()) != cache.getElementType())
    return emitOpError() << "results must have the cache's element type "
                         << cache.getElementType();
  return success();
}
