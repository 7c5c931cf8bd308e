//===- KilnDialect.cpp - kiln dialect, attributes and types ---------------===//

#include "dialects/kiln/IR/KilnDialect.h"

#include "mlir/IR/DialectImplementation.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace mlir::kiln;

#include "dialects/kiln/IR/KilnDialect.cpp.inc"
#include "dialects/kiln/IR/KilnEnums.cpp.inc"

#define GET_ATTRDEF_CLASSES
#include "dialects/kiln/IR/KilnAttrs.cpp.inc"

#define GET_TYPEDEF_CLASSES
#include "dialects/kiln/IR/KilnTypes.cpp.inc"

void KilnDialect::initialize() {
  registerAttributes();
  registerTypes();
  addOperations<
#define GET_OP_LIST
#include "dialects/kiln/IR/KilnOps.cpp.inc"
      >();
}

void KilnDialect::registerAttributes() {
  addAttributes<
#define GET_ATTRDEF_LIST
#include "dialects/kiln/IR/KilnAttrs.cpp.inc"
      >();
}

void KilnDialect::registerTypes() {
  addTypes<
#define GET_TYPEDEF_LIST
#include "dialects/kiln/IR/KilnTypes.cpp.inc"
      >();
}

Operation *KilnDialect::materializeConstant(OpBuilder &builder, Attribute value,
                                            Type type, Location loc) {
  auto elements = dyn_cast<ElementsAttr>(value);
  if (!elements || elements.getType() != type)
    return nullptr;
  return ConstantOp::create(builder, loc, elements);
}

//===----------------------------------------------------------------------===//
// #kiln.dims
//===----------------------------------------------------------------------===//

DimsAttr DimsAttr::get(MLIRContext *ctx, ArrayRef<DimExpr> dims) {
  SmallVector<Attribute> texts;
  for (const DimExpr &d : dims)
    texts.push_back(StringAttr::get(ctx, d.str()));
  return get(ctx, ArrayAttr::get(ctx, texts));
}

SmallVector<DimExpr> DimsAttr::getDims() const {
  SmallVector<DimExpr> dims;
  for (Attribute a : getExprs()) {
    std::optional<DimExpr> e = DimExpr::parse(cast<StringAttr>(a).getValue());
    dims.push_back(e ? *e : DimExpr());
  }
  return dims;
}

Attribute DimsAttr::parse(AsmParser &parser, Type) {
  SmallVector<DimExpr> dims;
  auto parseOne = [&]() -> ParseResult {
    // Gather the tokens of one expression into text, then parse the text
    // with the same grammar DimExpr::parse uses everywhere else.
    std::string text;
    SMLoc loc = parser.getCurrentLocation();
    if (succeeded(parser.parseOptionalQuestion())) {
      dims.push_back(DimExpr());
      return success();
    }
    while (true) {
      StringRef keyword;
      int64_t value;
      if (succeeded(parser.parseOptionalKeyword(&keyword)))
        text += keyword.str();
      else if (OptionalParseResult r = parser.parseOptionalInteger(value);
               r.has_value()) {
        if (failed(*r))
          return failure();
        text += std::to_string(value);
      } else
        return parser.emitError(loc, "expected a dimension expression");
      if (succeeded(parser.parseOptionalPlus()))
        text += " + ";
      else if (succeeded(parser.parseOptionalMinus()))
        text += " - ";
      else if (succeeded(parser.parseOptionalStar()))
        text += " * ";
      else
        break;
    }
    std::optional<DimExpr> e = DimExpr::parse(text);
    if (!e)
      return parser.emitError(loc, "malformed dimension expression '")
             << text << "'";
    dims.push_back(*e);
    return success();
  };
  if (parser.parseLess() ||
      parser.parseCommaSeparatedList(AsmParser::Delimiter::Square, parseOne) ||
      parser.parseGreater())
    return {};
  return DimsAttr::get(parser.getContext(), dims);
}

void DimsAttr::print(AsmPrinter &printer) const {
  printer << "<[";
  llvm::interleaveComma(getDims(), printer,
                        [&](const DimExpr &e) { printer << e.str(); });
  printer << "]>";
}

LogicalResult
DimsAttr::verifyEncoding(ArrayRef<int64_t> shape, Type,
                         function_ref<InFlightDiagnostic()> emitError) const {
  int64_t dynamic = llvm::count(shape, ShapedType::kDynamic);
  if (static_cast<int64_t>(getExprs().size()) != dynamic)
    return emitError() << "#kiln.dims names " << getExprs().size()
                       << " dimensions but the tensor has " << dynamic
                       << " dynamic dimensions";
  for (const DimExpr &e : getDims())
    if (e.getConstant())
      return emitError() << "#kiln.dims entry '" << e.str()
                         << "' is a constant; make that dimension static";
  return success();
}

SmallVector<DimExpr> mlir::kiln::getShapeExprs(RankedTensorType type) {
  SmallVector<DimExpr> names;
  if (auto dims = dyn_cast_or_null<DimsAttr>(type.getEncoding()))
    names = dims.getDims();
  SmallVector<DimExpr> result;
  size_t next = 0;
  for (int64_t d : type.getShape()) {
    if (!ShapedType::isDynamic(d))
      result.push_back(DimExpr::constant(d));
    else
      result.push_back(next < names.size() ? names[next++] : DimExpr());
  }
  return result;
}

RankedTensorType mlir::kiln::getTensorType(ArrayRef<DimExpr> dims,
                                           Type elementType) {
  SmallVector<int64_t> shape;
  SmallVector<DimExpr> names;
  bool anyNamed = false;
  for (const DimExpr &d : dims) {
    if (std::optional<int64_t> c = d.getConstant()) {
      shape.push_back(*c);
      continue;
    }
    shape.push_back(ShapedType::kDynamic);
    names.push_back(d);
    anyNamed |= !d.isUnknown();
  }
  Attribute encoding;
  if (anyNamed)
    encoding = DimsAttr::get(elementType.getContext(), names);
  return RankedTensorType::get(shape, elementType, encoding);
}

bool mlir::kiln::dimsCompatible(const DimExpr &a, const DimExpr &b) {
  if (a.isUnknown() || b.isUnknown())
    return true;
  if (a == b)
    return true;
  // Two different symbolic expressions may still be equal at run time (two
  // names for one dimension); only two different constants are a proof of
  // mismatch.
  return !(a.getConstant() && b.getConstant());
}

FailureOr<SmallVector<DimExpr>>
mlir::kiln::broadcastShapes(ArrayRef<DimExpr> a, ArrayRef<DimExpr> b) {
  size_t rank = std::max(a.size(), b.size());
  SmallVector<DimExpr> result(rank);
  for (size_t i = 0; i < rank; ++i) {
    DimExpr da =
        i < rank - a.size() ? DimExpr::constant(1) : a[i - (rank - a.size())];
    DimExpr db =
        i < rank - b.size() ? DimExpr::constant(1) : b[i - (rank - b.size())];
    if (da.getConstant() == 1)
      result[i] = db;
    else if (db.getConstant() == 1)
      result[i] = da;
    else if (da == db)
      result[i] = da;
    else if (!dimsCompatible(da, db))
      return failure();
    else if (da.getConstant())
      result[i] = da;
    else if (db.getConstant())
      result[i] = db;
    else
      result[i] = da.isUnknown() ? db : da;
  }
  return result;
}

//===----------------------------------------------------------------------===//
// #kiln.quant
//===----------------------------------------------------------------------===//

IntegerType QuantAttr::getStorageType() const {
  return IntegerType::get(getContext(), getBits(),
                          getIsSigned() ? IntegerType::Signed
                                        : IntegerType::Unsigned);
}

LogicalResult QuantAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                                unsigned bits, bool, int64_t groupSize,
                                int64_t axis, Type scaleType, ZeroPointKind) {
  if (bits != 4 && bits != 8)
    return emitError() << "#kiln.quant supports 4 or 8 bits, got " << bits;
  if (groupSize < 0)
    return emitError() << "#kiln.quant group size must be >= 0, got "
                       << groupSize;
  if (axis < -1)
    return emitError() << "#kiln.quant axis must be >= -1, got " << axis;
  if (axis == -1 && groupSize != 0)
    return emitError() << "#kiln.quant per-tensor scheme (axis -1) cannot "
                          "have a group size";
  if (!isa<FloatType>(scaleType))
    return emitError() << "#kiln.quant scale type must be a float, got "
                       << scaleType;
  return success();
}

Attribute QuantAttr::parse(AsmParser &parser, Type) {
  // <u4, group = 32, axis = 1, scale = f32, zero_point = int>
  Type scale;
  int64_t group = 0, axis = -1;
  std::string zp = "none";
  SMLoc loc = parser.getCurrentLocation();
  StringRef storage;
  if (parser.parseLess() || parser.parseKeyword(&storage))
    return {};
  // `i4`/`i8` are signed, `u4`/`u8` unsigned (stored integers are never
  // signless).
  unsigned bits = 0;
  bool isSigned = storage.starts_with("i");
  if ((!storage.consume_front("i") && !storage.consume_front("u")) ||
      storage.getAsInteger(10, bits))
    return parser.emitError(loc, "expected i4, u4, i8 or u8"), Attribute();
  llvm::StringSet<> seen;
  while (succeeded(parser.parseOptionalComma())) {
    StringRef key;
    SMLoc keyLoc = parser.getCurrentLocation();
    if (parser.parseKeyword(&key) || parser.parseEqual())
      return {};
    if (!seen.insert(key).second)
      return parser.emitError(keyLoc, "#kiln.quant key '")
                 << key << "' appears twice",
             Attribute();
    if (key == "group") {
      if (parser.parseInteger(group))
        return {};
    } else if (key == "axis") {
      if (parser.parseInteger(axis))
        return {};
    } else if (key == "scale") {
      if (parser.parseType(scale))
        return {};
    } else if (key == "zero_point") {
      if (parser.parseKeywordOrString(&zp))
        return {};
    } else {
      return parser.emitError(keyLoc, "unknown #kiln.quant key '")
                 << key << "', expected group, axis, scale or zero_point",
             Attribute();
    }
  }
  if (parser.parseGreater())
    return {};
  if (!scale)
    scale = Float32Type::get(parser.getContext());
  std::optional<ZeroPointKind> kind = symbolizeZeroPointKind(zp);
  if (!kind)
    return parser.emitError(loc, "zero_point must be none, mid, int or float"),
           Attribute();
  return parser.getChecked<QuantAttr>(loc, parser.getContext(), bits, isSigned,
                                      group, axis, scale, *kind);
}

void QuantAttr::print(AsmPrinter &printer) const {
  printer << "<" << (getIsSigned() ? "i" : "u") << getBits();
  if (getGroupSize())
    printer << ", group = " << getGroupSize();
  printer << ", axis = " << getAxis() << ", scale = " << getScaleType()
          << ", zero_point = " << stringifyZeroPointKind(getZeroPoint()) << ">";
}

//===----------------------------------------------------------------------===//
// !kiln.qtensor
//===----------------------------------------------------------------------===//

LogicalResult QTensorType::verify(function_ref<InFlightDiagnostic()> emitError,
                                  ArrayRef<int64_t> shape, QuantAttr quant) {
  for (int64_t d : shape)
    if (d <= 0)
      return emitError() << "!kiln.qtensor needs a static, positive shape";
  int64_t axis = quant.getAxis();
  if (axis >= static_cast<int64_t>(shape.size()))
    return emitError() << "#kiln.quant axis " << axis << " is out of range for "
                       << "rank " << shape.size();
  if (quant.getGroupSize() && shape[axis] % quant.getGroupSize() != 0)
    return emitError() << "dimension " << axis << " (" << shape[axis]
                       << ") is not a multiple of the group size "
                       << quant.getGroupSize();
  return success();
}

SmallVector<int64_t> QTensorType::getScaleShape() const {
  QuantAttr q = getQuant();
  if (q.getAxis() < 0)
    return {};
  SmallVector<int64_t> shape(getShape());
  if (q.getGroupSize()) {
    shape[q.getAxis()] /= q.getGroupSize();
    return shape;
  }
  return {shape[q.getAxis()]};
}

Type QTensorType::parse(AsmParser &parser) {
  SmallVector<int64_t> shape;
  QuantAttr quant;
  SMLoc loc = parser.getCurrentLocation();
  if (parser.parseLess() ||
      parser.parseDimensionList(shape, /*allowDynamic=*/false,
                                /*withTrailingX=*/false) ||
      parser.parseComma() || parser.parseAttribute(quant) ||
      parser.parseGreater())
    return {};
  return parser.getChecked<QTensorType>(loc, parser.getContext(), shape, quant);
}

void QTensorType::print(AsmPrinter &printer) const {
  printer << "<";
  printer.printDimensionList(getShape());
  printer << ", " << getQuant() << ">";
}

//===----------------------------------------------------------------------===//
// !kiln.kv_cache
//===----------------------------------------------------------------------===//

LogicalResult KVCacheType::verify(function_ref<InFlightDiagnostic()> emitError,
                                  int64_t layers, int64_t heads,
                                  int64_t headDim, int64_t block,
                                  Type elementType) {
  if (layers <= 0 || heads <= 0 || headDim <= 0 || block <= 0)
    return emitError() << "!kiln.kv_cache needs positive layers, heads, "
                          "head_dim and block, got "
                       << layers << ", " << heads << ", " << headDim << ", "
                       << block;
  if (!isa<FloatType>(elementType))
    return emitError() << "!kiln.kv_cache element type must be a float, got "
                       << elementType;
  return success();
}
