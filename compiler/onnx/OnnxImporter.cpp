//===- OnnxImporter.cpp - ONNX to the kiln dialect ------------------------===//
//
// One handler per ONNX op (default domain and com.microsoft). Each handler
// reads its inputs and attributes, infers the result type with symbolic
// dimensions, and creates kiln ops. Exporter patterns are imported
// faithfully; raising them (attention, norms, KV cache) is for passes.
//
// Errors are user errors: they name the file, the node, its op type, domain
// and opset, and what was expected. Nothing here asserts on input data.
//
//===----------------------------------------------------------------------===//

#include "compiler/onnx/OnnxImporter.h"
#include "compiler/onnx/OnnxText.h"
#include "compiler/onnx/OnnxWire.h"

#include "dialects/kiln/IR/KilnDialect.h"
#include "dialects/kiln/IR/SymbolicValue.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Matchers.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Tools/mlir-translate/Translation.h"
#include "llvm/ADT/SmallBitVector.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/SourceMgr.h"

#include <cmath>
#include <functional>
#include <limits>

using namespace mlir;
using namespace mlir::kiln;
using ::kiln::ByteRange;
using ::kiln::OnnxImportOptions;
using ::kiln::WeightStore;

namespace {

constexpr int64_t kMinOpset = 1;
constexpr int64_t kMaxOpset = 28; // the newest opset of the pinned onnx package

/// The oldest version of each default-domain op whose meaning kiln's handler
/// implements. A model's opset selects the newest version of an op that is
/// not newer than the opset, so an opset below the listed version means an
/// older version of the op, which is refused; `why` says what differed.
/// Versions that changed only the accepted element types are not listed
/// separately. An op missing here needs opset 13 (what kiln required of
/// every model before the older forms were reviewed).
struct OpSince {
  llvm::StringLiteral op;
  int64_t version;
  llvm::StringLiteral why;
};
constexpr int64_t kDefaultOpSince = 13;
constexpr llvm::StringLiteral kLegacyBroadcast =
    "broadcasts with the 'broadcast' and 'axis' attributes";
constexpr llvm::StringLiteral kLegacyAttrs =
    "has the legacy 'consumed_inputs' attribute";
constexpr OpSince kOpSince[] = {
    // Same meaning since opset 1.
    {"Not", 1, ""},
    {"Identity", 1, ""},
    {"Transpose", 1, ""},
    {"MatMul", 1, ""},
    {"Flatten", 1, ""},
    {"Gather", 1, ""},
    {"Shape", 1, ""},
    {"Size", 1, ""},
    {"Constant", 1, ""},
    {"ArgMax", 1, ""},
    // Axes as an attribute (before 13 or 18) are read as well as the input.
    {"Squeeze", 1, ""},
    {"Unsqueeze", 1, ""},
    {"ReduceMean", 1, ""},
    {"ReduceSum", 1, ""},
    {"ReduceMax", 1, ""},
    {"Split", 1, ""},
    {"Concat", 4, "has a default axis of 1"},
    {"Reshape", 5, "takes the shape as an attribute"},
    {"Abs", 6, kLegacyAttrs},
    {"Exp", 6, kLegacyAttrs},
    {"Log", 6, kLegacyAttrs},
    {"Neg", 6, kLegacyAttrs},
    {"Reciprocal", 6, kLegacyAttrs},
    {"Relu", 6, kLegacyAttrs},
    {"Sigmoid", 6, kLegacyAttrs},
    {"Sqrt", 6, kLegacyAttrs},
    {"Tanh", 6, kLegacyAttrs},
    {"Max", 6, kLegacyAttrs},
    {"Min", 6, kLegacyAttrs},
    {"Cast", 6, "names the target type with a string"},
    {"Tile", 6, "takes tiles and axis inputs"},
    {"Add", 7, kLegacyBroadcast},
    {"Sub", 7, kLegacyBroadcast},
    {"Mul", 7, kLegacyBroadcast},
    {"Div", 7, kLegacyBroadcast},
    {"Pow", 7, kLegacyBroadcast},
    {"Equal", 7, kLegacyBroadcast},
    {"Less", 7, kLegacyBroadcast},
    {"Greater", 7, kLegacyBroadcast},
    {"And", 7, kLegacyBroadcast},
    {"Or", 7, kLegacyBroadcast},
    {"Gemm", 7, kLegacyBroadcast},
    {"Cos", 7, ""},
    {"Sin", 7, ""},
    {"Expand", 8, ""},
    {"Erf", 9, ""},
    {"IsNaN", 9, ""},
    {"Where", 9, ""},
    {"ConstantOfShape", 9, ""},
    {"Dropout", 10, "has a mask of the input's type or an is_test attribute"},
    {"DequantizeLinear", 10, ""},
    {"QuantizeLinear", 10, ""},
    {"Slice", 10, "takes starts, ends and axes as attributes"},
    {"Range", 11, ""},
    {"GatherElements", 11, ""},
    {"GatherND", 11, ""},
    {"ScatterND", 11, ""},
    {"LessOrEqual", 12, ""},
    {"GreaterOrEqual", 12, ""},
    {"Softmax", 13, "flattens the input to 2-D at the axis"},
    {"LogSoftmax", 13, "flattens the input to 2-D at the axis"},
    {"Trilu", 14, ""},
    {"CastLike", 15, ""},
    {"LayerNormalization", 17, ""},
    {"Gelu", 20, ""},
    {"Attention", 23, ""},
    {"RMSNormalization", 23, ""},
    {"RotaryEmbedding", 23, ""},
    {"TensorScatter", 24, ""},
};
constexpr llvm::StringLiteral kMsDomain = "com.microsoft";

using Dims = SmallVector<DimExpr>;

/// Makes a dim_param usable as a symbol: ONNX allows any text
/// ("past_sequence_length + 1" is common), so parse it as an expression
/// when possible and otherwise turn it into one identifier.
DimExpr dimFromParam(StringRef param) {
  if (std::optional<DimExpr> e = DimExpr::parse(param))
    return *e;
  std::string name;
  for (char c : param)
    name += (llvm::isAlnum(c) || c == '_') ? c : '_';
  if (name.empty() || llvm::isDigit(name[0]))
    name = "d_" + name;
  return DimExpr::symbol(name);
}

class Importer {
public:
  Importer(MLIRContext *ctx, WeightStore &store, const OnnxImportOptions &opts,
           StringRef displayName, StringRef blobFile)
      : ctx(ctx), builder(ctx), store(store), opts(opts),
        displayName(displayName.str()), blobFile(blobFile.str()),
        fileLoc(FileLineColLoc::get(ctx, displayName, 0, 0)) {}

  OwningOpRef<ModuleOp> run(const onnx::ModelProto &model,
                            const std::map<int, ByteRange> &rawData);

private:
  //===--- diagnostics ---------------------------------------------------===//
  InFlightDiagnostic error() {
    InFlightDiagnostic d = emitError(fileLoc);
    if (node && !node->name().empty())
      d << "node '" << node->name() << "' (" << opLabel() << "): ";
    else if (node)
      d << "node #" << nodeIndex << " (" << opLabel() << "): ";
    return d;
  }
  std::string opLabel() const {
    std::string domain = node->domain().empty() ? "ai.onnx" : node->domain();
    int64_t version = opsetOf(node->domain());
    return domain + "::" + node->op_type() + ", opset " +
           std::to_string(version);
  }
  int64_t opsetOf(StringRef domain) const {
    auto it = opsets.find(domain == "ai.onnx" ? "" : domain.str());
    return it == opsets.end() ? -1 : it->second;
  }
  Location loc() {
    if (!node)
      return fileLoc;
    std::string name = node->name().empty() ? node->op_type() : node->name();
    return NameLoc::get(StringAttr::get(ctx, name), fileLoc);
  }

  //===--- types ----------------------------------------------------------===//
  FailureOr<Type> elementType(int32_t dataType, StringRef what);
  FailureOr<RankedTensorType> valueInfoType(const onnx::ValueInfoProto &info);

  //===--- initializers and constants -------------------------------------===//
  FailureOr<Value> initializerValue(StringRef name);
  FailureOr<mlir::kiln::BlobAttr> tensorBlob(const onnx::TensorProto &t,
                                             int index, uint64_t expectedBytes);
  FailureOr<ElementsAttr> tensorElements(const onnx::TensorProto &t, int index);
  FailureOr<Value> materializeTensor(const onnx::TensorProto &t, int index,
                                     StringRef symbol);
  std::string uniqueSymbol(StringRef name);
  FailureOr<Value> quantizedWeight(StringRef symbol, ArrayRef<int64_t> shape,
                                   QuantAttr quant,
                                   ArrayRef<mlir::kiln::BlobAttr> blobs);

  //===--- node handling --------------------------------------------------===//
  LogicalResult importNode(const onnx::NodeProto &n);
  FailureOr<Value> input(int i, bool required = true);
  bool hasInput(int i) const {
    return i < node->input_size() && !node->input(i).empty();
  }
  LogicalResult setOutput(int i, Value v);
  bool outputUsed(int i) const {
    return i < node->output_size() && !node->output(i).empty();
  }
  const onnx::AttributeProto *attr(StringRef name) const;
  int64_t attrInt(StringRef name, int64_t dflt) const;
  float attrFloat(StringRef name, float dflt) const;
  std::string attrString(StringRef name, StringRef dflt) const;
  std::optional<SmallVector<int64_t>> attrInts(StringRef name) const;
  FailureOr<int64_t> normAxis(int64_t axis, int64_t rank,
                              StringRef what = "axis");
  FailureOr<SmallVector<int64_t>> constInts(Value v, StringRef what);

  Dims dims(Value v) {
    return getShapeExprs(cast<RankedTensorType>(v.getType()));
  }
  Type elt(Value v) { return cast<ShapedType>(v.getType()).getElementType(); }
  int64_t rank(Value v) {
    return cast<RankedTensorType>(v.getType()).getRank();
  }
  RankedTensorType ty(ArrayRef<DimExpr> d, Type e) {
    return getTensorType(d, e);
  }
  Value i64Const(ArrayRef<int64_t> values, bool scalar = false);
  Value reshapeTo(Value v, ArrayRef<DimExpr> target);
  Value transpose(Value v, ArrayRef<int64_t> perm);
  template <typename OpTy>
  LogicalResult binary(bool boolResult = false, bool variadic = false);
  template <typename OpTy> LogicalResult unary();

  // Handlers (named after the ONNX op).
  LogicalResult importConstant();
  LogicalResult importMatMul();
  LogicalResult importGemm();
  LogicalResult importTranspose();
  LogicalResult importReshape();
  LogicalResult importFlatten();
  LogicalResult importSqueeze(bool unsqueeze);
  LogicalResult importConcat();
  LogicalResult importSplit();
  LogicalResult importSlice();
  LogicalResult importGather();
  LogicalResult importGatherElements();
  LogicalResult importScatterND();
  LogicalResult importExpand();
  LogicalResult importTile();
  LogicalResult importWhere();
  LogicalResult importCast(bool like);
  LogicalResult importShape();
  LogicalResult importSize();
  LogicalResult importConstantOfShape();
  LogicalResult importRange();
  LogicalResult importTrilu();
  template <typename OpTy> LogicalResult importReduce();
  LogicalResult importArgMax();
  LogicalResult importSoftmax(bool log);
  LogicalResult importGelu();
  LogicalResult importLayerNorm();
  LogicalResult importRMSNorm();
  LogicalResult importSkipNorm(bool simplified);
  LogicalResult importIdentity();
  LogicalResult importDequantizeLinear();
  /// `zeroPoint` reshaped to the shape of `scale` where both hold one
  /// element (a per-tensor zero point spelled [1] beside a scalar scale);
  /// otherwise `zeroPoint` unchanged (null stays null).
  Value perTensorZeroPoint(Value scale, Value zeroPoint);
  LogicalResult importQuantizeLinear();
  LogicalResult importRotary(bool microsoft);
  LogicalResult importAttention();
  /// ONNX Attention's qk_matmul_output: the scores [batch, q_heads, q_len,
  /// kv_len] of Q (4-D) against K (4-D, past appended) at the step
  /// qk_matmul_output_mode names, with the mask already padded to kv_len;
  /// `offset` is the position of the first query (the past's length).
  FailureOr<Value> attentionScores(Value Q, Value K, Value mask, float scale,
                                   int64_t offset);
  /// A rank-0 constant of float type `e`.
  Value scalarConst(Type e, double v);
  LogicalResult importGroupQueryAttention();
  LogicalResult importMatMulNBits();
  LogicalResult importGatherBlockQuantized();
  LogicalResult importTensorScatter();

  // Shared pieces of attention imports.
  FailureOr<Value> splitHeads(Value x, int64_t heads);
  /// The KV cache after this step: `past` with `cur` appended along the
  /// sequence axis (both [batch, kv_heads, len, head_dim]).
  FailureOr<Value> appendPast(Value past, Value cur);
  /// `cache` with `update` written at positions start[b] + s along `axis`
  /// (start: [batch] i64, or null for 0). Both have the same rank. With
  /// `circular`, positions wrap around the cache's length (ONNX
  /// TensorScatter mode "circular").
  Value writeRows(Value cache, Value update, Value start, int64_t axis,
                  bool circular = false);
  Value mergeHeads(Value x);
  FailureOr<Value> rotary4D(Value x, Value cos, Value sin, Value positions,
                            int64_t rotaryDim, bool interleaved);

  MLIRContext *ctx;
  OpBuilder builder;
  WeightStore &store;
  const OnnxImportOptions &opts;
  std::string displayName, blobFile;
  Location fileLoc;
  ModuleOp module;
  std::map<std::string, int64_t> opsets;
  const onnx::NodeProto *node = nullptr;
  int nodeIndex = 0; // position of `node` in the graph, for unnamed nodes
  /// Inputs of `node` that its handler consumed; any other non-empty input
  /// would be silently dropped, so importNode() rejects it.
  llvm::SmallBitVector inputsRead;
  llvm::StringMap<Value> values;
  struct Init {
    const onnx::TensorProto *tensor;
    int index;
    /// A Reshape of an initializer to a constant shape is the same bytes
    /// under another shape (ORT GenAI reshapes the tied int4 lm_head for
    /// the embedding's GatherBlockQuantized): the alias's shape.
    std::optional<SmallVector<int64_t>> shape;
    SmallVector<int64_t> dims() const {
      if (shape)
        return *shape;
      return SmallVector<int64_t>(tensor->dims().begin(), tensor->dims().end());
    }
  };
  llvm::StringMap<Init> initializers;
  const std::map<int, ByteRange> *rawData = nullptr;
  llvm::StringSet<> symbols;
  using Handler = std::function<LogicalResult()>;
  llvm::StringMap<Handler> handlers;
  void registerHandlers();
};

} // namespace

//===----------------------------------------------------------------------===//
// Types
//===----------------------------------------------------------------------===//

FailureOr<Type> Importer::elementType(int32_t dataType, StringRef what) {
  using T = onnx::TensorProto;
  auto si = [&](unsigned w) { return IntegerType::get(ctx, w); };
  auto ui = [&](unsigned w) {
    return IntegerType::get(ctx, w, IntegerType::Unsigned);
  };
  switch (dataType) {
  case T::FLOAT:
    return Type(Float32Type::get(ctx));
  case T::DOUBLE:
    return Type(Float64Type::get(ctx));
  case T::FLOAT16:
    return Type(Float16Type::get(ctx));
  case T::BFLOAT16:
    return Type(BFloat16Type::get(ctx));
  case T::FLOAT8E4M3FN:
    return Type(Float8E4M3FNType::get(ctx));
  case T::FLOAT8E4M3FNUZ:
    return Type(Float8E4M3FNUZType::get(ctx));
  case T::FLOAT8E5M2:
    return Type(Float8E5M2Type::get(ctx));
  case T::FLOAT8E5M2FNUZ:
    return Type(Float8E5M2FNUZType::get(ctx));
  case T::BOOL:
    return Type(si(1));
  case T::INT4:
    return Type(si(4));
  case T::INT8:
    return Type(si(8));
  case T::INT16:
    return Type(si(16));
  case T::INT32:
    return Type(si(32));
  case T::INT64:
    return Type(si(64));
  case T::UINT4:
    return Type(ui(4));
  case T::UINT8:
    return Type(ui(8));
  case T::UINT16:
    return Type(ui(16));
  case T::UINT32:
    return Type(ui(32));
  case T::UINT64:
    return Type(ui(64));
  default:
    break;
  }
  std::string typeName =
      T::DataType_IsValid(dataType)
          ? T::DataType_Name(static_cast<T::DataType>(dataType))
          : "unknown";
  error() << what << " has data type " << dataType << " (" << typeName
          << "), which kiln does not support; expected a float, integer or "
             "bool type";
  return failure();
}

FailureOr<RankedTensorType>
Importer::valueInfoType(const onnx::ValueInfoProto &info) {
  if (!info.type().has_tensor_type()) {
    error() << "value '" << info.name() << "' is not a tensor; kiln imports "
            << "tensor inputs and outputs only";
    return failure();
  }
  const onnx::TypeProto::Tensor &t = info.type().tensor_type();
  FailureOr<Type> e = elementType(t.elem_type(), "value '" + info.name() + "'");
  if (failed(e))
    return failure();
  if (!t.has_shape()) {
    error() << "graph value '" << info.name()
            << "' has no shape; kiln needs at least its rank";
    return failure();
  }
  Dims d;
  for (const auto &dim : t.shape().dim()) {
    if (dim.has_dim_value()) {
      if (dim.dim_value() < 0) {
        error() << "value '" << info.name() << "' has negative dimension "
                << dim.dim_value();
        return failure();
      }
      d.push_back(DimExpr::constant(dim.dim_value()));
    } else if (dim.has_dim_param() && !dim.dim_param().empty()) {
      d.push_back(dimFromParam(dim.dim_param()));
    } else {
      d.push_back(DimExpr());
    }
  }
  return getTensorType(d, *e);
}

//===----------------------------------------------------------------------===//
// Initializers
//===----------------------------------------------------------------------===//

std::string Importer::uniqueSymbol(StringRef name) {
  std::string base = name.empty() ? "weight" : name.str();
  std::string s = base;
  for (int i = 1; !symbols.insert(s).second; ++i)
    s = base + "_" + std::to_string(i);
  return s;
}

static std::optional<uint64_t> numElements(const onnx::TensorProto &t) {
  uint64_t n = 1;
  for (int64_t d : t.dims()) {
    if (d < 0)
      return std::nullopt;
    n *= static_cast<uint64_t>(d);
  }
  return n;
}

FailureOr<mlir::kiln::BlobAttr> Importer::tensorBlob(const onnx::TensorProto &t,
                                                     int index,
                                                     uint64_t expectedBytes) {
  auto check =
      [&](mlir::kiln::BlobAttr blob) -> FailureOr<mlir::kiln::BlobAttr> {
    if (blob.getSize() != expectedBytes) {
      error() << "tensor '" << t.name() << "' holds " << blob.getSize()
              << " bytes of data, expected " << expectedBytes
              << " for its type and shape";
      return failure();
    }
    return blob;
  };
  if (t.data_location() == onnx::TensorProto::EXTERNAL) {
    std::string location;
    uint64_t offset = 0, length = 0;
    bool haveLength = false;
    for (const auto &kv : t.external_data()) {
      if (kv.key() == "location")
        location = kv.value();
      else if (kv.key() == "offset" && !llvm::to_integer(kv.value(), offset)) {
        error() << "tensor '" << t.name() << "' has a malformed external "
                << "data offset '" << kv.value() << "'";
        return failure();
      } else if (kv.key() == "length") {
        if (!llvm::to_integer(kv.value(), length)) {
          error() << "tensor '" << t.name() << "' has a malformed external "
                  << "data length '" << kv.value() << "'";
          return failure();
        }
        haveLength = true;
      }
    }
    if (location.empty()) {
      error() << "tensor '" << t.name()
              << "' is stored externally but names no location";
      return failure();
    }
    if (llvm::sys::path::is_absolute(location) ||
        StringRef(location).contains("..")) {
      error() << "tensor '" << t.name() << "' has external data location '"
              << location << "'; expected a path inside the model directory";
      return failure();
    }
    llvm::Expected<uint64_t> fileSize = store.openFile(location);
    if (!fileSize) {
      error() << "tensor '" << t.name()
              << "': " << llvm::toString(fileSize.takeError());
      return failure();
    }
    if (!haveLength)
      length = expectedBytes;
    if (offset + length > *fileSize) {
      error() << "tensor '" << t.name() << "' needs bytes [" << offset << ", "
              << offset + length << ") of external data file '" << location
              << "', which has only " << *fileSize << " bytes";
      return failure();
    }
    return check(mlir::kiln::BlobAttr::get(ctx, location, offset, length));
  }
  auto raw = rawData->find(index);
  if (index >= 0 && raw != rawData->end())
    return check(mlir::kiln::BlobAttr::get(ctx, blobFile, raw->second.offset,
                                           raw->second.size));
  if (t.has_raw_data()) {
    std::vector<uint8_t> bytes(t.raw_data().begin(), t.raw_data().end());
    return check(store.addBuffer(ctx, std::move(bytes)));
  }
  // Typed fields: ONNX stores small types widened to int32.
  std::vector<uint8_t> bytes;
  auto append = [&](const void *p, size_t n) {
    const auto *b = static_cast<const uint8_t *>(p);
    bytes.insert(bytes.end(), b, b + n);
  };
  using T = onnx::TensorProto;
  switch (t.data_type()) {
  case T::FLOAT:
    append(t.float_data().data(), t.float_data_size() * 4);
    break;
  case T::DOUBLE:
    append(t.double_data().data(), t.double_data_size() * 8);
    break;
  case T::INT64:
    append(t.int64_data().data(), t.int64_data_size() * 8);
    break;
  case T::UINT64:
  case T::UINT32:
    for (uint64_t v : t.uint64_data()) {
      if (t.data_type() == T::UINT32) {
        uint32_t w = v;
        append(&w, 4);
      } else {
        append(&v, 8);
      }
    }
    break;
  case T::INT32:
    append(t.int32_data().data(), t.int32_data_size() * 4);
    break;
  case T::INT16:
  case T::UINT16:
  case T::FLOAT16:
  case T::BFLOAT16:
    for (int32_t v : t.int32_data()) {
      uint16_t w = v;
      append(&w, 2);
    }
    break;
  case T::INT8:
  case T::UINT8:
  case T::BOOL:
  case T::FLOAT8E4M3FN:
  case T::FLOAT8E4M3FNUZ:
  case T::FLOAT8E5M2:
  case T::FLOAT8E5M2FNUZ:
    for (int32_t v : t.int32_data())
      bytes.push_back(static_cast<uint8_t>(v));
    break;
  case T::INT4:
  case T::UINT4:
    // int32_data holds packed pairs already.
    for (int32_t v : t.int32_data())
      bytes.push_back(static_cast<uint8_t>(v));
    break;
  default:
    error() << "tensor '" << t.name() << "' has data type " << t.data_type()
            << " whose typed storage kiln cannot read";
    return failure();
  }
  return check(store.addBuffer(ctx, std::move(bytes)));
}

FailureOr<ElementsAttr> Importer::tensorElements(const onnx::TensorProto &t,
                                                 int index) {
  FailureOr<Type> e = elementType(t.data_type(), "tensor '" + t.name() + "'");
  if (failed(e))
    return failure();
  std::optional<uint64_t> n = numElements(t);
  if (!n) {
    error() << "tensor '" << t.name() << "' has a negative dimension";
    return failure();
  }
  unsigned bits = e->getIntOrFloatBitWidth();
  if (bits < 8 && bits != 1) {
    error() << "tensor '" << t.name() << "' is a " << bits
            << "-bit constant outside a quantized weight; expected it to "
               "feed DequantizeLinear, MatMulNBits or GatherBlockQuantized";
    return failure();
  }
  uint64_t bytesPer = bits == 1 ? 1 : bits / 8;
  FailureOr<mlir::kiln::BlobAttr> blob = tensorBlob(t, index, *n * bytesPer);
  if (failed(blob))
    return failure();
  llvm::Expected<ArrayRef<uint8_t>> bytes = store.getBytes(*blob);
  if (!bytes) {
    error() << llvm::toString(bytes.takeError());
    return failure();
  }
  auto type = RankedTensorType::get(
      SmallVector<int64_t>(t.dims().begin(), t.dims().end()), *e);
  if (bits == 1) {
    SmallVector<bool> b;
    for (uint8_t v : *bytes)
      b.push_back(v != 0);
    return ElementsAttr(DenseElementsAttr::get(type, b));
  }
  ArrayRef<char> chars(reinterpret_cast<const char *>(bytes->data()),
                       bytes->size());
  return ElementsAttr(DenseElementsAttr::getFromRawBuffer(type, chars));
}

FailureOr<Value> Importer::materializeTensor(const onnx::TensorProto &t,
                                             int index, StringRef symbol) {
  std::optional<uint64_t> n = numElements(t);
  if (!n) {
    error() << "tensor '" << t.name() << "' has a negative dimension";
    return failure();
  }
  OpBuilder::InsertionGuard guard(builder);
  if (static_cast<int64_t>(*n) <= opts.maxConstantElements) {
    FailureOr<ElementsAttr> elements = tensorElements(t, index);
    if (failed(elements))
      return failure();
    return ConstantOp::create(builder, loc(), *elements).getResult();
  }
  FailureOr<Type> e = elementType(t.data_type(), "tensor '" + t.name() + "'");
  if (failed(e))
    return failure();
  unsigned bits = e->getIntOrFloatBitWidth();
  if (bits < 8 && bits != 1) {
    error() << "tensor '" << t.name() << "' is a " << bits
            << "-bit tensor outside a quantized weight; expected it to feed "
               "DequantizeLinear, MatMulNBits or GatherBlockQuantized";
    return failure();
  }
  uint64_t bytes = *n * (bits == 1 ? 1 : bits / 8);
  FailureOr<mlir::kiln::BlobAttr> blob = tensorBlob(t, index, bytes);
  if (failed(blob))
    return failure();
  auto type = RankedTensorType::get(
      SmallVector<int64_t>(t.dims().begin(), t.dims().end()), *e);
  std::string sym = uniqueSymbol(symbol);
  {
    OpBuilder::InsertionGuard g(builder);
    // Globals go before the function so that the module reads top-down.
    builder.setInsertionPoint(&module.getBody()->front());
    GlobalOp::create(builder, loc(), builder.getStringAttr(sym),
                     TypeAttr::get(type), builder.getArrayAttr({*blob}));
  }
  return WeightOp::create(builder, loc(), type, sym).getResult();
}

FailureOr<Value> Importer::initializerValue(StringRef name) {
  auto it = initializers.find(name);
  if (it == initializers.end())
    return failure();
  if (it->second.shape) { // a reshaped initializer read as a tensor
    FailureOr<Value> original = initializerValue(it->second.tensor->name());
    if (failed(original))
      return failure();
    auto type = cast<RankedTensorType>(original->getType());
    OpBuilder::InsertionGuard guard(builder);
    builder.setInsertionPointAfterValue(*original);
    Value v = ReshapeOp::create(
        builder, loc(),
        RankedTensorType::get(*it->second.shape, type.getElementType()),
        *original, Value());
    values[name] = v;
    return v;
  }
  // Materialize at the start of the function so every later node sees it.
  OpBuilder::InsertionGuard guard(builder);
  auto func = cast<func::FuncOp>(module.getBody()->back());
  builder.setInsertionPointToStart(&func.getBody().front());
  FailureOr<Value> v =
      materializeTensor(*it->second.tensor, it->second.index, name);
  if (succeeded(v))
    values[name] = *v;
  return v;
}

FailureOr<Value>
Importer::quantizedWeight(StringRef symbol, ArrayRef<int64_t> shape,
                          QuantAttr quant,
                          ArrayRef<mlir::kiln::BlobAttr> blobs) {
  auto type =
      QTensorType::getChecked([&] { return error(); }, ctx, shape, quant);
  if (!type)
    return failure();
  SmallVector<Attribute> blobAttrs(blobs.begin(), blobs.end());
  // The same bytes read as the same quantized type (a tied embedding and
  // lm_head) are one weight.
  for (auto global : module.getOps<GlobalOp>())
    if (global.getType() == type &&
        global.getBlobs() == builder.getArrayAttr(blobAttrs))
      return WeightOp::create(builder, loc(), type, global.getSymName())
          .getResult();
  std::string sym = uniqueSymbol(symbol);
  {
    OpBuilder::InsertionGuard g(builder);
    builder.setInsertionPoint(&module.getBody()->front());
    auto global =
        GlobalOp::create(builder, loc(), builder.getStringAttr(sym),
                         TypeAttr::get(type), builder.getArrayAttr(blobAttrs));
    if (failed(global.verify())) {
      error() << "quantized weight '" << symbol
              << "' does not match its declared scheme";
      return failure();
    }
  }
  return WeightOp::create(builder, loc(), type, sym).getResult();
}

//===----------------------------------------------------------------------===//
// Node plumbing
//===----------------------------------------------------------------------===//

FailureOr<Value> Importer::input(int i, bool required) {
  if (i < static_cast<int>(inputsRead.size()))
    inputsRead.set(i);
  if (!hasInput(i)) {
    if (required) {
      error() << "missing required input " << i;
      return failure();
    }
    return Value();
  }
  StringRef name = node->input(i);
  auto it = values.find(name);
  if (it != values.end())
    return it->second;
  if (initializers.count(name))
    return initializerValue(name);
  error() << "input " << i << " '" << name
          << "' is not produced by any earlier node, graph input or "
             "initializer";
  return failure();
}

LogicalResult Importer::setOutput(int i, Value v) {
  if (i >= node->output_size() || node->output(i).empty())
    return success();
  values[node->output(i)] = v;
  return success();
}

const onnx::AttributeProto *Importer::attr(StringRef name) const {
  for (const auto &a : node->attribute())
    if (a.name() == name)
      return &a;
  return nullptr;
}
int64_t Importer::attrInt(StringRef name, int64_t dflt) const {
  const auto *a = attr(name);
  return a ? a->i() : dflt;
}
float Importer::attrFloat(StringRef name, float dflt) const {
  const auto *a = attr(name);
  return a ? a->f() : dflt;
}
std::string Importer::attrString(StringRef name, StringRef dflt) const {
  const auto *a = attr(name);
  return a ? a->s() : dflt.str();
}
std::optional<SmallVector<int64_t>> Importer::attrInts(StringRef name) const {
  const auto *a = attr(name);
  if (!a)
    return std::nullopt;
  return SmallVector<int64_t>(a->ints().begin(), a->ints().end());
}

FailureOr<int64_t> Importer::normAxis(int64_t axis, int64_t r, StringRef what) {
  int64_t a = axis < 0 ? axis + r : axis;
  if (a < 0 || a >= r) {
    error() << what << " " << axis << " is out of range for rank " << r;
    return failure();
  }
  return a;
}

FailureOr<SmallVector<int64_t>> Importer::constInts(Value v, StringRef what) {
  std::optional<Dims> e = evaluateSymbolic(v);
  SmallVector<int64_t> out;
  if (e)
    for (const DimExpr &d : *e) {
      std::optional<int64_t> c = d.getConstant();
      if (!c)
        break;
      out.push_back(*c);
    }
  if (!e || out.size() != e->size()) {
    error() << what << " must be a constant known at compile time";
    return failure();
  }
  return out;
}

Value Importer::i64Const(ArrayRef<int64_t> values, bool scalar) {
  auto type = RankedTensorType::get(
      scalar ? ArrayRef<int64_t>{} : ArrayRef<int64_t>{(int64_t)values.size()},
      builder.getI64Type());
  return ConstantOp::create(builder, loc(),
                            DenseElementsAttr::get(type, values));
}

Value Importer::reshapeTo(Value v, ArrayRef<DimExpr> target) {
  RankedTensorType type = ty(target, elt(v));
  if (type == v.getType())
    return v;
  return ReshapeOp::create(builder, loc(), type, v, Value(), nullptr);
}

Value Importer::transpose(Value v, ArrayRef<int64_t> perm) {
  Dims in = dims(v), out;
  for (int64_t p : perm)
    out.push_back(in[p]);
  return TransposeOp::create(builder, loc(), ty(out, elt(v)), v,
                             builder.getDenseI64ArrayAttr(perm));
}

template <typename OpTy>
LogicalResult Importer::binary(bool boolResult, bool variadic) {
  // Variadic ops (Max, Min) fold their inputs left to right; one input is
  // the identity.
  int count = variadic ? node->input_size() : 2;
  if (count < 1) {
    error() << "needs at least one input";
    return failure();
  }
  FailureOr<Value> acc = input(0);
  if (failed(acc))
    return failure();
  for (int i = 1; i < count; ++i) {
    FailureOr<Value> b = input(i);
    if (failed(b))
      return failure();
    if (elt(*acc) != elt(*b)) {
      error() << "operand element types differ: " << elt(*acc) << " vs "
              << elt(*b);
      return failure();
    }
    FailureOr<Dims> shape = broadcastShapes(dims(*acc), dims(*b));
    if (failed(shape)) {
      error() << "operand shapes " << acc->getType() << " and " << b->getType()
              << " do not broadcast";
      return failure();
    }
    Type e = boolResult ? Type(builder.getI1Type()) : elt(*acc);
    acc = OpTy::create(builder, loc(), ty(*shape, e), *acc, *b).getResult();
  }
  return setOutput(0, *acc);
}

template <typename OpTy> LogicalResult Importer::unary() {
  FailureOr<Value> x = input(0);
  if (failed(x))
    return failure();
  return setOutput(0, OpTy::create(builder, loc(), x->getType(), *x));
}

//===----------------------------------------------------------------------===//
// Handlers: tensors and shapes
//===----------------------------------------------------------------------===//

LogicalResult Importer::importConstant() {
  auto scalarOrVector = [&](Type e, auto values, bool scalar) {
    auto type = RankedTensorType::get(
        scalar ? ArrayRef<int64_t>{}
               : ArrayRef<int64_t>{(int64_t)values.size()},
        e);
    return ConstantOp::create(builder, loc(),
                              DenseElementsAttr::get(type, ArrayRef(values)))
        .getResult();
  };
  if (const auto *a = attr("value")) {
    FailureOr<Value> v = materializeTensor(
        a->t(), -1, node->output_size() ? node->output(0) : "constant");
    if (failed(v))
      return failure();
    return setOutput(0, *v);
  }
  if (const auto *a = attr("value_float"))
    return setOutput(0, scalarOrVector(builder.getF32Type(),
                                       SmallVector<float>{a->f()}, true));
  if (const auto *a = attr("value_floats"))
    return setOutput(0, scalarOrVector(builder.getF32Type(),
                                       SmallVector<float>(a->floats().begin(),
                                                          a->floats().end()),
                                       false));
  if (const auto *a = attr("value_int"))
    return setOutput(0, i64Const({a->i()}, true));
  if (const auto *a = attr("value_ints"))
    return setOutput(
        0, i64Const(SmallVector<int64_t>(a->ints().begin(), a->ints().end())));
  error() << "expected one of the attributes value, value_float, "
             "value_floats, value_int, value_ints (sparse and string "
             "constants are not supported)";
  return failure();
}

LogicalResult Importer::importMatMul() {
  FailureOr<Value> a = input(0), b = input(1);
  if (failed(a) || failed(b))
    return failure();
  Dims da = dims(*a), db = dims(*b);
  if (da.empty() || db.empty()) {
    error() << "operands must have rank >= 1";
    return failure();
  }
  if (elt(*a) != elt(*b)) {
    error() << "operand element types differ: " << elt(*a) << " vs " << elt(*b);
    return failure();
  }
  Dims pa = da, pb = db;
  if (pa.size() == 1)
    pa.insert(pa.begin(), DimExpr::constant(1));
  if (pb.size() == 1)
    pb.push_back(DimExpr::constant(1));
  if (!dimsCompatible(pa.back(), pb[pb.size() - 2])) {
    error() << "contraction dimensions differ: " << a->getType() << " x "
            << b->getType();
    return failure();
  }
  FailureOr<Dims> batch =
      broadcastShapes(ArrayRef(pa).drop_back(2), ArrayRef(pb).drop_back(2));
  if (failed(batch)) {
    error() << "batch dimensions of " << a->getType() << " and " << b->getType()
            << " do not broadcast";
    return failure();
  }
  Dims out = *batch;
  if (da.size() > 1)
    out.push_back(pa[pa.size() - 2]);
  if (db.size() > 1)
    out.push_back(pb.back());
  return setOutput(0,
                   MatMulOp::create(builder, loc(), ty(out, elt(*a)), *a, *b));
}

LogicalResult Importer::importGemm() {
  FailureOr<Value> a = input(0), b = input(1), c = input(2, false);
  if (failed(a) || failed(b) || failed(c))
    return failure();
  if (rank(*a) != 2 || rank(*b) != 2) {
    error() << "A and B must be 2-D";
    return failure();
  }
  Value A = attrInt("transA", 0) ? transpose(*a, {1, 0}) : *a;
  Value B = attrInt("transB", 0) ? transpose(*b, {1, 0}) : *b;
  if (!dimsCompatible(dims(A)[1], dims(B)[0])) {
    error() << "contraction dimensions differ: " << A.getType() << " x "
            << B.getType();
    return failure();
  }
  Type e = elt(A);
  auto scalar = [&](float f) {
    auto t = RankedTensorType::get({}, e);
    Attribute v = isa<FloatType>(e)
                      ? Attribute(builder.getFloatAttr(e, f))
                      : Attribute(builder.getIntegerAttr(e, int64_t(f)));
    return ConstantOp::create(builder, loc(), DenseElementsAttr::get(t, v))
        .getResult();
  };
  Dims out = {dims(A)[0], dims(B)[1]};
  Value y = MatMulOp::create(builder, loc(), ty(out, e), A, B);
  float alpha = attrFloat("alpha", 1.0f), beta = attrFloat("beta", 1.0f);
  if (!isa<FloatType>(e) &&
      (alpha != std::trunc(alpha) || (*c && beta != std::trunc(beta)))) {
    error() << "alpha and beta must be whole numbers for integer inputs, got "
            << alpha << " and " << beta;
    return failure();
  }
  if (alpha != 1.0f)
    y = MulOp::create(builder, loc(), y.getType(), y, scalar(alpha));
  if (*c && beta != 0.0f) {
    Value C = *c;
    if (beta != 1.0f)
      C = MulOp::create(builder, loc(), C.getType(), C, scalar(beta));
    FailureOr<Dims> s = broadcastShapes(out, dims(C));
    if (failed(s) || s->size() != 2) {
      error() << "C of type " << C.getType() << " does not broadcast to the "
              << "product's shape";
      return failure();
    }
    y = AddOp::create(builder, loc(), ty(*s, e), y, C);
  }
  return setOutput(0, y);
}

LogicalResult Importer::importTranspose() {
  FailureOr<Value> x = input(0);
  if (failed(x))
    return failure();
  int64_t r = rank(*x);
  SmallVector<int64_t> perm;
  if (auto p = attrInts("perm"))
    perm = *p;
  else
    for (int64_t i = r - 1; i >= 0; --i)
      perm.push_back(i);
  if (static_cast<int64_t>(perm.size()) != r) {
    error() << "perm has " << perm.size() << " entries for an input of rank "
            << r;
    return failure();
  }
  SmallVector<bool> seen(r, false);
  for (int64_t &p : perm) {
    if (p < 0)
      p += r;
    if (p < 0 || p >= r || seen[p]) {
      error() << "perm is not a permutation of [0, " << r << ")";
      return failure();
    }
    seen[p] = true;
  }
  return setOutput(0, transpose(*x, perm));
}

LogicalResult Importer::importReshape() {
  // An initializer reshaped to a constant shape stays an initializer (an
  // alias with that shape), so that quantized ops can read its bytes.
  if (hasInput(0) && hasInput(1) && !values.count(node->input(0)) &&
      initializers.count(node->input(0)) && node->output_size() == 1) {
    Init init = initializers.lookup(node->input(0));
    FailureOr<Value> s = input(1);
    if (failed(s))
      return failure();
    Dims from;
    for (int64_t d : init.dims())
      from.push_back(DimExpr::constant(d));
    std::optional<Dims> known = evaluateSymbolic(*s);
    std::optional<Dims> to =
        known ? resolveReshapeTarget(from, *known, attrInt("allowzero", 0) != 0)
              : std::nullopt;
    SmallVector<int64_t> shape;
    int64_t in = 1, out = 1;
    for (int64_t d : init.dims())
      in *= d;
    for (const DimExpr &d : to ? *to : Dims())
      if (std::optional<int64_t> c = d.getConstant()) {
        shape.push_back(*c);
        out *= *c;
      }
    if (to && shape.size() == to->size() && in == out) {
      inputsRead.set(0);
      init.shape = shape;
      initializers[node->output(0)] = init;
      return success();
    }
  }
  FailureOr<Value> x = input(0), s = input(1);
  if (failed(x) || failed(s))
    return failure();
  auto shapeType = cast<RankedTensorType>(s->getType());
  if (shapeType.getRank() != 1) {
    error() << "shape input must be 1-D, got " << s->getType();
    return failure();
  }
  bool allowZero = attrInt("allowzero", 0) != 0;
  Dims target;
  if (std::optional<Dims> known = evaluateSymbolic(*s)) {
    std::optional<Dims> resolved =
        resolveReshapeTarget(dims(*x), *known, allowZero);
    if (!resolved) {
      std::string text;
      llvm::raw_string_ostream os(text);
      llvm::interleaveComma(*known, os);
      error() << "cannot reshape " << x->getType() << " to [" << text
              << "]: more than one -1, a 0 past the input's rank, or a "
                 "negative size";
      return failure();
    }
    target = *resolved;
    // Element counts that are provably different are a bad model.
    DimExpr in = DimExpr::constant(1), out = DimExpr::constant(1);
    for (const DimExpr &d : dims(*x))
      in = in * d;
    for (const DimExpr &d : target)
      out = out * d;
    if (!dimsCompatible(in, out)) {
      error() << "cannot reshape " << x->getType() << " (" << in
              << " elements) to a shape of " << out << " elements";
      return failure();
    }
  } else if (!shapeType.isDynamicDim(0)) {
    target.assign(shapeType.getDimSize(0), DimExpr());
  } else {
    error() << "the rank of the result is unknown: the shape input has a "
               "dynamic length";
    return failure();
  }
  auto type = ty(target, elt(*x));
  return setOutput(
      0, ReshapeOp::create(builder, loc(), type, *x, *s,
                           allowZero ? builder.getUnitAttr() : nullptr));
}

LogicalResult Importer::importFlatten() {
  FailureOr<Value> x = input(0);
  if (failed(x))
    return failure();
  Dims d = dims(*x);
  int64_t axis = attrInt("axis", 1);
  if (axis < 0)
    axis += d.size();
  if (axis < 0 || axis > static_cast<int64_t>(d.size())) {
    error() << "axis " << attrInt("axis", 1) << " is out of range for rank "
            << d.size();
    return failure();
  }
  DimExpr outer = DimExpr::constant(1), inner = DimExpr::constant(1);
  for (int64_t i = 0; i < static_cast<int64_t>(d.size()); ++i)
    (i < axis ? outer : inner) = (i < axis ? outer : inner) * d[i];
  return setOutput(0, reshapeTo(*x, {outer, inner}));
}

LogicalResult Importer::importSqueeze(bool unsqueeze) {
  FailureOr<Value> x = input(0), axesIn = input(1, false);
  if (failed(x) || failed(axesIn))
    return failure();
  std::optional<SmallVector<int64_t>> axes = attrInts("axes");
  if (*axesIn) {
    FailureOr<SmallVector<int64_t>> a = constInts(*axesIn, "axes input");
    if (failed(a))
      return failure();
    axes = *a;
  }
  Dims d = dims(*x);
  if (unsqueeze) {
    if (!axes) {
      error() << "Unsqueeze needs axes";
      return failure();
    }
    int64_t outRank = d.size() + axes->size();
    SmallVector<bool> isNew(outRank, false);
    for (int64_t a : *axes) {
      FailureOr<int64_t> n = normAxis(a, outRank);
      if (failed(n))
        return failure();
      if (isNew[*n]) {
        error() << "axes contain " << a << " twice";
        return failure();
      }
      isNew[*n] = true;
    }
    Dims out;
    size_t next = 0;
    for (int64_t i = 0; i < outRank; ++i)
      out.push_back(isNew[i] ? DimExpr::constant(1) : d[next++]);
    return setOutput(0, reshapeTo(*x, out));
  }
  SmallVector<bool> drop(d.size(), false);
  if (axes) {
    for (int64_t a : *axes) {
      FailureOr<int64_t> n = normAxis(a, d.size());
      if (failed(n))
        return failure();
      if (d[*n].getConstant() && *d[*n].getConstant() != 1) {
        error() << "cannot squeeze dimension " << *n << " of size " << d[*n];
        return failure();
      }
      drop[*n] = true;
    }
  } else {
    for (size_t i = 0; i < d.size(); ++i) {
      if (d[i].getConstant() == 1)
        drop[i] = true;
      else if (!d[i].getConstant()) {
        error() << "Squeeze without axes on dynamic dimension " << i << " of "
                << x->getType() << ": the result rank is unknown";
        return failure();
      }
    }
  }
  Dims out;
  for (size_t i = 0; i < d.size(); ++i)
    if (!drop[i])
      out.push_back(d[i]);
  return setOutput(0, reshapeTo(*x, out));
}

LogicalResult Importer::importConcat() {
  SmallVector<Value> ins;
  for (int i = 0; i < node->input_size(); ++i) {
    FailureOr<Value> v = input(i);
    if (failed(v))
      return failure();
    ins.push_back(*v);
  }
  if (ins.empty()) {
    error() << "needs at least one input";
    return failure();
  }
  FailureOr<int64_t> axis = normAxis(attrInt("axis", 0), rank(ins[0]));
  if (failed(axis))
    return failure();
  Dims out = dims(ins[0]);
  for (Value v : ArrayRef(ins).drop_front()) {
    Dims d = dims(v);
    if (d.size() != out.size() || elt(v) != elt(ins[0])) {
      error() << "inputs " << ins[0].getType() << " and " << v.getType()
              << " differ in rank or element type";
      return failure();
    }
    for (size_t i = 0; i < d.size(); ++i) {
      if (static_cast<int64_t>(i) == *axis)
        continue;
      if (!dimsCompatible(out[i], d[i])) {
        error() << "inputs differ in dimension " << i << ": " << out[i]
                << " vs " << d[i];
        return failure();
      }
      if (out[i].isUnknown())
        out[i] = d[i];
    }
    out[*axis] = out[*axis] + d[*axis];
  }
  return setOutput(0, ConcatOp::create(builder, loc(), ty(out, elt(ins[0])),
                                       ins, builder.getI64IntegerAttr(*axis)));
}

LogicalResult Importer::importSplit() {
  FailureOr<Value> x = input(0), splitIn = input(1, false);
  if (failed(x) || failed(splitIn))
    return failure();
  Dims d = dims(*x);
  FailureOr<int64_t> axis = normAxis(attrInt("axis", 0), d.size());
  if (failed(axis))
    return failure();
  int n = node->output_size();
  Dims sizes;
  std::optional<SmallVector<int64_t>> split = attrInts("split");
  if (*splitIn) {
    FailureOr<SmallVector<int64_t>> s = constInts(*splitIn, "split input");
    if (failed(s))
      return failure();
    split = *s;
  }
  if (split) {
    if (static_cast<int>(split->size()) != n) {
      error() << "split has " << split->size() << " sizes for " << n
              << " outputs";
      return failure();
    }
    DimExpr total = DimExpr::constant(0);
    for (int64_t s : *split) {
      sizes.push_back(DimExpr::constant(s));
      total = total + sizes.back();
    }
    if (!dimsCompatible(total, d[*axis])) {
      error() << "split sizes add up to " << total << ", expected " << d[*axis];
      return failure();
    }
  } else {
    int64_t pieces = attrInt("num_outputs", n);
    if (n <= 0 || pieces != n) {
      error() << "num_outputs (" << pieces << ") must equal the number of "
              << "outputs (" << n << ") and be positive";
      return failure();
    }
    std::optional<int64_t> len = d[*axis].getConstant();
    if (len) {
      int64_t chunk = (*len + pieces - 1) / pieces;
      for (int i = 0; i < n; ++i)
        sizes.push_back(DimExpr::constant(
            std::max<int64_t>(0, std::min(chunk, *len - chunk * i))));
    } else {
      for (int i = 0; i < n; ++i)
        sizes.push_back(d[*axis].exactDiv(DimExpr::constant(n)));
    }
  }
  SmallVector<Type> types;
  for (const DimExpr &s : sizes) {
    Dims o = d;
    o[*axis] = s;
    types.push_back(ty(o, elt(*x)));
  }
  auto op = SplitOp::create(builder, loc(), types, *x,
                            builder.getI64IntegerAttr(*axis));
  for (int i = 0; i < n; ++i)
    (void)setOutput(i, op.getResult(i));
  return success();
}

LogicalResult Importer::importSlice() {
  FailureOr<Value> x = input(0), starts = input(1), ends = input(2),
                   axesIn = input(3, false), stepsIn = input(4, false);
  if (failed(x) || failed(starts) || failed(ends) || failed(axesIn) ||
      failed(stepsIn))
    return failure();
  Dims d = dims(*x);
  std::optional<Dims> s = evaluateSymbolic(*starts),
                      e = evaluateSymbolic(*ends);
  int64_t count = cast<RankedTensorType>(starts->getType()).getRank() == 1
                      ? cast<RankedTensorType>(starts->getType()).getDimSize(0)
                      : -1;
  if (count < 0) {
    error() << "starts must be a 1-D tensor of static length";
    return failure();
  }
  SmallVector<int64_t> axes, steps(count, 1);
  if (*axesIn) {
    FailureOr<SmallVector<int64_t>> a = constInts(*axesIn, "axes input");
    if (failed(a))
      return failure();
    axes = *a;
  } else {
    for (int64_t i = 0; i < count; ++i)
      axes.push_back(i);
  }
  if (*stepsIn) {
    FailureOr<SmallVector<int64_t>> st = constInts(*stepsIn, "steps input");
    if (failed(st))
      return failure();
    steps = *st;
  }
  auto endsType = cast<RankedTensorType>(ends->getType());
  if (static_cast<int64_t>(axes.size()) != count ||
      static_cast<int64_t>(steps.size()) != count || endsType.getRank() != 1 ||
      endsType.getDimSize(0) != count ||
      (s && static_cast<int64_t>(s->size()) != count) ||
      (e && static_cast<int64_t>(e->size()) != count)) {
    error() << "starts, ends, axes and steps must be 1-D of the same length";
    return failure();
  }
  Dims out = d;
  for (int64_t i = 0; i < count; ++i) {
    FailureOr<int64_t> a = normAxis(axes[i], d.size());
    if (failed(a))
      return failure();
    axes[i] = *a;
    if (steps[i] == 0) {
      error() << "steps must be non-zero";
      return failure();
    }
    out[*a] = DimExpr();
    if (!s || !e)
      continue;
    DimExpr dim = d[*a];
    std::optional<int64_t> sc = (*s)[i].getConstant(),
                           ec = (*e)[i].getConstant();
    std::optional<int64_t> dc = dim.getConstant();
    if (dc && sc && ec) {
      // Fully static: ONNX clamping rules.
      int64_t n = *dc, st = steps[i];
      auto clampIdx = [&](int64_t v, bool isEnd) {
        if (v < 0)
          v += n;
        if (st > 0)
          return std::clamp<int64_t>(v, 0, n);
        return std::clamp<int64_t>(v, -1, n - 1);
        (void)isEnd;
      };
      int64_t b = clampIdx(*sc, false), f = clampIdx(*ec, true);
      int64_t len = st > 0 ? std::max<int64_t>(0, (f - b + st - 1) / st)
                           : std::max<int64_t>(0, (b - f + (-st) - 1) / (-st));
      out[*a] = DimExpr::constant(len);
      continue;
    }
    if (steps[i] != 1)
      continue;
    // Symbolic forms exporters produce: [0 : dim], [k : INT_MAX], [a : b].
    DimExpr begin = (*s)[i], end = (*e)[i];
    if (sc && *sc < 0)
      begin = dim + begin;
    if (ec && *ec >= (int64_t(1) << 31))
      end = dim;
    else if (ec && *ec < 0)
      end = dim + end;
    if (!begin.isUnknown() && !end.isUnknown())
      out[*a] = end - begin;
    if (out[*a].getConstant() && *out[*a].getConstant() < 0)
      out[*a] = DimExpr();
  }
  return setOutput(0, SliceOp::create(builder, loc(), ty(out, elt(*x)), *x,
                                      *starts, *ends,
                                      builder.getDenseI64ArrayAttr(axes),
                                      builder.getDenseI64ArrayAttr(steps)));
}

LogicalResult Importer::importGather() {
  FailureOr<Value> x = input(0), idx = input(1);
  if (failed(x) || failed(idx))
    return failure();
  Dims d = dims(*x), i = dims(*idx);
  FailureOr<int64_t> axis = normAxis(attrInt("axis", 0), d.size());
  if (failed(axis))
    return failure();
  if (!elt(*idx).isInteger(64) && !elt(*idx).isInteger(32)) {
    error() << "indices must be int32 or int64, got " << elt(*idx);
    return failure();
  }
  Dims out(d.begin(), d.begin() + *axis);
  out.append(i.begin(), i.end());
  out.append(d.begin() + *axis + 1, d.end());
  return setOutput(0, GatherOp::create(builder, loc(), ty(out, elt(*x)), *x,
                                       *idx, builder.getI64IntegerAttr(*axis)));
}

LogicalResult Importer::importGatherElements() {
  FailureOr<Value> x = input(0), idx = input(1);
  if (failed(x) || failed(idx))
    return failure();
  FailureOr<int64_t> axis = normAxis(attrInt("axis", 0), rank(*x));
  if (failed(axis))
    return failure();
  if (rank(*idx) != rank(*x)) {
    error() << "indices must have the data's rank " << rank(*x);
    return failure();
  }
  return setOutput(
      0, GatherElementsOp::create(builder, loc(), ty(dims(*idx), elt(*x)), *x,
                                  *idx, builder.getI64IntegerAttr(*axis)));
}

LogicalResult Importer::importScatterND() {
  FailureOr<Value> x = input(0), idx = input(1), upd = input(2);
  if (failed(x) || failed(idx) || failed(upd))
    return failure();
  return setOutput(0,
                   ScatterNDOp::create(
                       builder, loc(), x->getType(), *x, *idx, *upd,
                       builder.getStringAttr(attrString("reduction", "none"))));
}

LogicalResult Importer::importExpand() {
  FailureOr<Value> x = input(0), s = input(1);
  if (failed(x) || failed(s))
    return failure();
  Dims target;
  if (std::optional<Dims> known = evaluateSymbolic(*s)) {
    target = *known;
  } else {
    auto st = cast<RankedTensorType>(s->getType());
    if (st.getRank() != 1 || st.isDynamicDim(0)) {
      error() << "shape input must be 1-D with a static length";
      return failure();
    }
    target.assign(st.getDimSize(0), DimExpr());
  }
  FailureOr<Dims> out = broadcastShapes(dims(*x), target);
  if (failed(out)) {
    error() << "cannot expand " << x->getType() << " to the requested shape";
    return failure();
  }
  // A target dim that is unknown but meets a non-1 input dim is that dim.
  return setOutput(0,
                   ExpandOp::create(builder, loc(), ty(*out, elt(*x)), *x, *s));
}

LogicalResult Importer::importTile() {
  FailureOr<Value> x = input(0), r = input(1);
  if (failed(x) || failed(r))
    return failure();
  Dims d = dims(*x);
  std::optional<Dims> reps = evaluateSymbolic(*r);
  Dims out;
  for (size_t i = 0; i < d.size(); ++i)
    out.push_back(reps && reps->size() == d.size() ? d[i] * (*reps)[i]
                                                   : DimExpr());
  return setOutput(0, TileOp::create(builder, loc(), ty(out, elt(*x)), *x, *r));
}

LogicalResult Importer::importWhere() {
  FailureOr<Value> c = input(0), a = input(1), b = input(2);
  if (failed(c) || failed(a) || failed(b))
    return failure();
  if (!elt(*c).isInteger(1) || elt(*a) != elt(*b)) {
    error() << "expected a bool condition and two inputs of one element type";
    return failure();
  }
  FailureOr<Dims> s1 = broadcastShapes(dims(*c), dims(*a));
  FailureOr<Dims> s2 = failed(s1) ? s1 : broadcastShapes(*s1, dims(*b));
  if (failed(s2)) {
    error() << "input shapes do not broadcast";
    return failure();
  }
  return setOutput(
      0, WhereOp::create(builder, loc(), ty(*s2, elt(*a)), *c, *a, *b));
}

LogicalResult Importer::importCast(bool like) {
  FailureOr<Value> x = input(0);
  if (failed(x))
    return failure();
  Type target;
  if (like) {
    FailureOr<Value> t = input(1);
    if (failed(t))
      return failure();
    target = elt(*t);
  } else {
    const auto *to = attr("to");
    if (!to) {
      error() << "missing attribute 'to'";
      return failure();
    }
    FailureOr<Type> e = elementType(to->i(), "attribute 'to'");
    if (failed(e))
      return failure();
    target = *e;
  }
  auto type = ty(dims(*x), target);
  if (type == x->getType())
    return setOutput(0, *x);
  // `saturate` matters only for float8 targets.
  bool noSaturate = attrInt("saturate", 1) == 0 && isa<FloatType>(target) &&
                    target.getIntOrFloatBitWidth() == 8;
  return setOutput(0, CastOp::create(builder, loc(), type, *x, noSaturate));
}

LogicalResult Importer::importShape() {
  FailureOr<Value> x = input(0);
  if (failed(x))
    return failure();
  int64_t r = rank(*x);
  auto clampIdx = [&](int64_t v) {
    return std::clamp<int64_t>(v < 0 ? v + r : v, 0, r);
  };
  int64_t start = clampIdx(attrInt("start", 0));
  int64_t end = std::max(start, clampIdx(attrInt("end", r)));
  auto type = RankedTensorType::get({end - start}, builder.getI64Type());
  return setOutput(0, ShapeOp::create(builder, loc(), type, *x,
                                      builder.getI64IntegerAttr(start),
                                      builder.getI64IntegerAttr(end)));
}

LogicalResult Importer::importSize() {
  FailureOr<Value> x = input(0);
  if (failed(x))
    return failure();
  auto type = RankedTensorType::get({}, builder.getI64Type());
  return setOutput(0, SizeOp::create(builder, loc(), type, *x));
}

LogicalResult Importer::importConstantOfShape() {
  FailureOr<Value> s = input(0);
  if (failed(s))
    return failure();
  TypedAttr value = builder.getF32FloatAttr(0.0f);
  if (const auto *a = attr("value")) {
    FailureOr<ElementsAttr> e = tensorElements(a->t(), -1);
    if (failed(e))
      return failure();
    if (e->getNumElements() != 1) {
      error() << "attribute 'value' must hold one element";
      return failure();
    }
    value = cast<TypedAttr>(*e->getValues<Attribute>().begin());
  }
  Dims target;
  if (std::optional<Dims> known = evaluateSymbolic(*s)) {
    target = *known;
  } else {
    auto st = cast<RankedTensorType>(s->getType());
    if (st.getRank() != 1 || st.isDynamicDim(0)) {
      error() << "shape input must be 1-D with a static length";
      return failure();
    }
    target.assign(st.getDimSize(0), DimExpr());
  }
  return setOutput(0, ConstantOfShapeOp::create(builder, loc(),
                                                ty(target, value.getType()), *s,
                                                value));
}

LogicalResult Importer::importRange() {
  FailureOr<Value> a = input(0), b = input(1), c = input(2);
  if (failed(a) || failed(b) || failed(c))
    return failure();
  DimExpr len;
  std::optional<Dims> sa = evaluateSymbolic(*a), sb = evaluateSymbolic(*b),
                      sc = evaluateSymbolic(*c);
  if (sa && sb && sc && sa->size() == 1 && sb->size() == 1 && sc->size() == 1 &&
      (*sc)[0].getConstant() == 1)
    len = (*sb)[0] - (*sa)[0];
  if (len.getConstant() && *len.getConstant() < 0)
    len = DimExpr::constant(0);
  return setOutput(
      0, RangeOp::create(builder, loc(), ty({len}, elt(*a)), *a, *b, *c));
}

LogicalResult Importer::importTrilu() {
  FailureOr<Value> x = input(0), k = input(1, false);
  if (failed(x) || failed(k))
    return failure();
  Value kv = *k;
  if (kv && rank(kv) == 1)
    kv = reshapeTo(kv, {});
  return setOutput(
      0,
      TriluOp::create(builder, loc(), x->getType(), *x, kv,
                      attrInt("upper", 1) ? builder.getUnitAttr() : nullptr));
}

template <typename OpTy> LogicalResult Importer::importReduce() {
  FailureOr<Value> x = input(0), axesIn = input(1, false);
  if (failed(x) || failed(axesIn))
    return failure();
  std::optional<SmallVector<int64_t>> axes = attrInts("axes");
  if (*axesIn) {
    FailureOr<SmallVector<int64_t>> a = constInts(*axesIn, "axes input");
    if (failed(a))
      return failure();
    axes = *a;
  }
  Dims d = dims(*x);
  bool keep = attrInt("keepdims", 1) != 0;
  if ((!axes || axes->empty()) && attrInt("noop_with_empty_axes", 0))
    return setOutput(0, *x);
  SmallVector<int64_t> norm;
  if (axes)
    for (int64_t a : *axes) {
      FailureOr<int64_t> n = normAxis(a, d.size());
      if (failed(n))
        return failure();
      norm.push_back(*n);
    }
  llvm::sort(norm);
  norm.erase(std::unique(norm.begin(), norm.end()), norm.end());
  SmallVector<bool> reduced(d.size(), norm.empty());
  for (int64_t a : norm)
    reduced[a] = true;
  Dims out;
  for (size_t i = 0; i < d.size(); ++i) {
    if (!reduced[i])
      out.push_back(d[i]);
    else if (keep)
      out.push_back(DimExpr::constant(1));
  }
  return setOutput(0, OpTy::create(builder, loc(), ty(out, elt(*x)), *x,
                                   builder.getDenseI64ArrayAttr(norm),
                                   keep ? builder.getUnitAttr() : nullptr));
}

LogicalResult Importer::importArgMax() {
  FailureOr<Value> x = input(0);
  if (failed(x))
    return failure();
  Dims d = dims(*x);
  FailureOr<int64_t> axis = normAxis(attrInt("axis", 0), d.size());
  if (failed(axis))
    return failure();
  bool keep = attrInt("keepdims", 1) != 0;
  if (keep)
    d[*axis] = DimExpr::constant(1);
  else
    d.erase(d.begin() + *axis);
  return setOutput(0,
                   ArgMaxOp::create(builder, loc(), ty(d, builder.getI64Type()),
                                    *x, builder.getI64IntegerAttr(*axis),
                                    keep ? builder.getUnitAttr() : nullptr,
                                    attrInt("select_last_index", 0)
                                        ? builder.getUnitAttr()
                                        : nullptr));
}

LogicalResult Importer::importSoftmax(bool log) {
  FailureOr<Value> x = input(0);
  if (failed(x))
    return failure();
  FailureOr<int64_t> axis = normAxis(attrInt("axis", -1), rank(*x));
  if (failed(axis))
    return failure();
  auto a = builder.getI64IntegerAttr(*axis);
  if (log)
    return setOutput(0,
                     LogSoftmaxOp::create(builder, loc(), x->getType(), *x, a));
  return setOutput(0, SoftmaxOp::create(builder, loc(), x->getType(), *x, a));
}

LogicalResult Importer::importGelu() {
  FailureOr<Value> x = input(0);
  if (failed(x))
    return failure();
  std::string approx = attrString("approximate", "none");
  if (approx != "none" && approx != "tanh") {
    error() << "approximate must be \"none\" or \"tanh\", got \"" << approx
            << "\"";
    return failure();
  }
  return setOutput(0, GeluOp::create(builder, loc(), x->getType(), *x,
                                     builder.getStringAttr(approx)));
}

LogicalResult Importer::importLayerNorm() {
  FailureOr<Value> x = input(0), g = input(1), b = input(2, false);
  if (failed(x) || failed(g) || failed(b))
    return failure();
  FailureOr<int64_t> axis = normAxis(attrInt("axis", -1), rank(*x));
  if (failed(axis))
    return failure();
  float epsilon = attrFloat("epsilon", 1e-5f);
  (void)setOutput(0, LayerNormOp::create(builder, loc(), x->getType(), *x, *g,
                                         *b, builder.getI64IntegerAttr(*axis),
                                         builder.getF32FloatAttr(epsilon)));
  if (!outputUsed(1) && !outputUsed(2))
    return success();
  // The statistics (Mean and InvStdDev) are computed beside the fused op as
  // ONNX's function body does: in stash_type, over the axes from `axis` on,
  // kept as dims of size 1. Unused, they are dead code.
  FailureOr<Type> stash =
      elementType(attrInt("stash_type", 1), "attribute 'stash_type'");
  if (failed(stash))
    return failure();
  if (!isa<FloatType>(*stash)) {
    error() << "stash_type must be a float type, got " << *stash;
    return failure();
  }
  Value xs = *x;
  if (elt(xs) != *stash)
    xs = CastOp::create(builder, loc(), ty(dims(xs), *stash), xs);
  SmallVector<int64_t> axes;
  Dims stat = dims(xs);
  for (int64_t a = *axis; a < rank(xs); ++a) {
    axes.push_back(a);
    stat[a] = DimExpr::constant(1);
  }
  auto statType = ty(stat, *stash);
  auto mean = [&](Value v) {
    return ReduceMeanOp::create(builder, loc(), statType, v,
                                builder.getDenseI64ArrayAttr(axes),
                                builder.getUnitAttr())
        .getResult();
  };
  Value m = mean(xs);
  Value d = SubOp::create(builder, loc(), xs.getType(), xs, m);
  Value var = mean(MulOp::create(builder, loc(), xs.getType(), d, d));
  Value eps = ConstantOp::create(
      builder, loc(),
      DenseElementsAttr::get(RankedTensorType::get({}, *stash),
                             builder.getFloatAttr(*stash, epsilon)));
  Value std = SqrtOp::create(builder, loc(), statType,
                             AddOp::create(builder, loc(), statType, var, eps));
  (void)setOutput(1, m);
  return setOutput(2, ReciprocalOp::create(builder, loc(), statType, std));
}

LogicalResult Importer::importRMSNorm() {
  FailureOr<Value> x = input(0), g = input(1);
  if (failed(x) || failed(g))
    return failure();
  if (outputUsed(1)) {
    error() << "the inv_std_var output is not supported; expected only the "
               "normalized output to be used";
    return failure();
  }
  FailureOr<int64_t> axis = normAxis(attrInt("axis", -1), rank(*x));
  if (failed(axis))
    return failure();
  return setOutput(0, RMSNormOp::create(builder, loc(), x->getType(), *x, *g,
                                        builder.getI64IntegerAttr(*axis),
                                        builder.getF32FloatAttr(
                                            attrFloat("epsilon", 1e-5f))));
}

LogicalResult Importer::importSkipNorm(bool simplified) {
  // com.microsoft Skip[Simplified]LayerNormalization:
  //   sum = input + skip (+ bias); output = norm(sum); output 3 = sum.
  FailureOr<Value> x = input(0), skip = input(1), g = input(2);
  if (failed(x) || failed(skip) || failed(g))
    return failure();
  FailureOr<Value> beta =
      simplified ? FailureOr<Value>(Value()) : input(3, false);
  FailureOr<Value> bias = input(simplified ? 3 : 4, false);
  if (failed(beta) || failed(bias))
    return failure();
  if (outputUsed(1) || outputUsed(2)) {
    error() << "the mean and inv_std_var outputs are not supported; expected "
               "only outputs 0 and 3 to be used";
    return failure();
  }
  FailureOr<Dims> s = broadcastShapes(dims(*x), dims(*skip));
  if (failed(s) || s->size() != static_cast<size_t>(rank(*x))) {
    error() << "skip of type " << skip->getType()
            << " does not broadcast to the input " << x->getType();
    return failure();
  }
  Value sum = AddOp::create(builder, loc(), x->getType(), *x, *skip);
  if (*bias)
    sum = AddOp::create(builder, loc(), sum.getType(), sum, *bias);
  auto axis = builder.getI64IntegerAttr(rank(*x) - 1);
  auto eps = builder.getF32FloatAttr(attrFloat("epsilon", 1e-5f));
  Value y = simplified ? RMSNormOp::create(builder, loc(), sum.getType(), sum,
                                           *g, axis, eps)
                             .getResult()
                       : LayerNormOp::create(builder, loc(), sum.getType(), sum,
                                             *g, *beta, axis, eps)
                             .getResult();
  (void)setOutput(0, y);
  return setOutput(3, sum);
}

LogicalResult Importer::importIdentity() {
  FailureOr<Value> x = input(0);
  if (failed(x))
    return failure();
  if (node->op_type() == "Dropout") {
    // The ratio does not matter at inference; training mode must be off.
    FailureOr<Value> ratio = input(1, false), training = input(2, false);
    if (failed(ratio) || failed(training))
      return failure();
    if (*training) {
      DenseElementsAttr c;
      if (!matchPattern(*training, m_Constant(&c)) || c.getSplatValue<bool>()) {
        error() << "training_mode must be a constant false; kiln compiles "
                   "for inference";
        return failure();
      }
    }
    // Nothing is dropped at inference: the mask is all true.
    if (outputUsed(1)) {
      Dims d = dims(*x);
      RankedTensorType maskType = ty(d, builder.getI1Type());
      Value mask;
      if (maskType.hasStaticShape()) {
        mask = ConstantOp::create(builder, loc(),
                                  DenseElementsAttr::get(maskType, true));
      } else {
        Value shape = ShapeOp::create(
            builder, loc(),
            RankedTensorType::get({rank(*x)}, builder.getI64Type()), *x,
            builder.getI64IntegerAttr(0), builder.getI64IntegerAttr(rank(*x)));
        mask = ConstantOfShapeOp::create(builder, loc(), maskType, shape,
                                         builder.getBoolAttr(true));
      }
      (void)setOutput(1, mask);
    }
  }
  return setOutput(0, *x);
}

//===----------------------------------------------------------------------===//
// Handlers: quantization
//===----------------------------------------------------------------------===//

LogicalResult Importer::importDequantizeLinear() {
  int64_t axisAttr = attrInt("axis", 1), block = attrInt("block_size", 0);
  auto outputType = [&](Type scaleType) -> FailureOr<Type> {
    if (const auto *a = attr("output_dtype"); a && a->i() != 0)
      return elementType(a->i(), "attribute 'output_dtype'");
    return scaleType;
  };
  // A quantized weight (x, scale and zero point all initializers, x of 4 or
  // 8 bits) keeps its bytes packed and is described by #kiln.quant, exactly
  // as MatMulNBits and kiln's quantizer do. Decide that before reading any
  // input: reading would materialize the initializers as constants.
  auto initOf = [&](int i) -> const Init * {
    if (!hasInput(i) || values.count(node->input(i)))
      return nullptr;
    auto it = initializers.find(node->input(i));
    return it == initializers.end() ? nullptr : &it->second;
  };
  const Init *xi = initOf(0), *si = initOf(1), *zi = initOf(2);
  std::optional<IntegerType> storage;
  if (xi && (xi->tensor->data_type() == onnx::TensorProto::INT4 ||
             xi->tensor->data_type() == onnx::TensorProto::UINT4)) {
    // 4-bit data exists only as a packed weight: its scale and zero point
    // must be weights too.
    for (int i : {1, 2})
      if (hasInput(i) && !initOf(i)) {
        error() << "input " << i << " '" << node->input(i)
                << "' of a quantized weight must be an initializer";
        return failure();
      }
  }
  if (xi && si && (!hasInput(2) || zi)) {
    using T = onnx::TensorProto;
    switch (xi->tensor->data_type()) {
    case T::INT4:
    case T::INT8:
      storage = IntegerType::get(
          ctx, xi->tensor->data_type() == T::INT4 ? 4 : 8, IntegerType::Signed);
      break;
    case T::UINT4:
    case T::UINT8:
      storage =
          IntegerType::get(ctx, xi->tensor->data_type() == T::UINT4 ? 4 : 8,
                           IntegerType::Unsigned);
      break;
    default:
      break;
    }
  }
  if (storage) {
    for (int i = 0; i < 3; ++i)
      if (i < static_cast<int>(inputsRead.size()))
        inputsRead.set(i);
    const onnx::TensorProto &t = *xi->tensor;
    SmallVector<int64_t> shape(t.dims().begin(), t.dims().end());
    SmallVector<int64_t> scaleShape(si->tensor->dims().begin(),
                                    si->tensor->dims().end());
    FailureOr<Type> scaleType =
        elementType(si->tensor->data_type(), "scale '" + node->input(1) + "'");
    if (failed(scaleType))
      return failure();
    if (!isa<FloatType>(*scaleType)) {
      error() << "scale must be a float tensor, got " << *scaleType;
      return failure();
    }
    FailureOr<Type> outType = outputType(*scaleType);
    if (failed(outType))
      return failure();
    int64_t r = shape.size();
    int64_t axis = -1, group = 0;
    SmallVector<int64_t> expectedScale;
    // A scalar (or one-element 1-D) scale without blocks is per-tensor.
    bool perTensor =
        scaleShape.empty() ||
        (block == 0 && scaleShape.size() == 1 && scaleShape[0] == 1);
    if (!perTensor) {
      FailureOr<int64_t> n = normAxis(axisAttr, r);
      if (failed(n))
        return failure();
      axis = *n;
      group = block;
      if (block > 0) {
        if (shape[axis] % block != 0) {
          error() << "dimension " << axis << " of '" << t.name() << "' ("
                  << shape[axis] << ") is not a multiple of block_size "
                  << block;
          return failure();
        }
        expectedScale = shape;
        expectedScale[axis] /= block;
      } else {
        expectedScale = {shape[axis]};
      }
      if (scaleShape != expectedScale) {
        std::string want;
        llvm::raw_string_ostream os(want);
        llvm::interleave(expectedScale, os, "x");
        error() << "scale '" << node->input(1) << "' must have shape [" << want
                << "] for " << (block ? "blocked" : "per-axis")
                << " quantization along axis " << axis;
        return failure();
      }
    }
    ZeroPointKind zpKind = ZeroPointKind::None;
    if (zi) {
      if (zi->tensor->data_type() != t.data_type()) {
        FailureOr<Type> zt = elementType(zi->tensor->data_type(),
                                         "zero point '" + node->input(2) + "'");
        FailureOr<Type> xt =
            elementType(t.data_type(), "tensor '" + t.name() + "'");
        if (succeeded(zt) && succeeded(xt))
          error() << "zero point type " << *zt
                  << " differs from the quantized type " << *xt;
        return failure();
      }
      SmallVector<int64_t> zpShape(zi->tensor->dims().begin(),
                                   zi->tensor->dims().end());
      if (zpShape != scaleShape) {
        error() << "zero point '" << node->input(2)
                << "' must have the scale's shape";
        return failure();
      }
      zpKind = ZeroPointKind::Int;
    }
    unsigned bits = storage->getWidth();
    auto quant = QuantAttr::getChecked([&] { return error(); }, ctx, bits,
                                       storage->isSigned(), group, axis,
                                       *scaleType, zpKind);
    if (!quant)
      return failure();
    auto bytesOf = [](ArrayRef<int64_t> dims, uint64_t width) {
      uint64_t n = 1;
      for (int64_t d : dims)
        n *= d;
      return (n * width + 7) / 8;
    };
    FailureOr<mlir::kiln::BlobAttr> data =
        tensorBlob(t, xi->index, bytesOf(shape, bits));
    if (failed(data))
      return failure();
    FailureOr<mlir::kiln::BlobAttr> scales =
        tensorBlob(*si->tensor, si->index,
                   bytesOf(scaleShape, scaleType->getIntOrFloatBitWidth()));
    if (failed(scales))
      return failure();
    SmallVector<mlir::kiln::BlobAttr> blobs = {*data, *scales};
    if (zi) {
      FailureOr<mlir::kiln::BlobAttr> zeros =
          tensorBlob(*zi->tensor, zi->index, bytesOf(scaleShape, bits));
      if (failed(zeros))
        return failure();
      blobs.push_back(*zeros);
    }
    FailureOr<Value> w = quantizedWeight(node->input(0), shape, quant, blobs);
    if (failed(w))
      return failure();
    return setOutput(
        0, DequantizeOp::create(builder, loc(),
                                RankedTensorType::get(shape, *outType), *w));
  }
  FailureOr<Value> x = input(0), scale = input(1), zp = input(2, false);
  if (failed(x) || failed(scale) || failed(zp))
    return failure();
  FailureOr<Type> outType = outputType(elt(*scale));
  if (failed(outType))
    return failure();
  int64_t axis = 0;
  if (rank(*scale) > 0) {
    FailureOr<int64_t> n = normAxis(axisAttr, rank(*x));
    if (failed(n))
      return failure();
    axis = *n;
  }
  Value zero = perTensorZeroPoint(*scale, *zp);
  if (isa<FloatType>(elt(*x))) {
    // Float8 data: y = (float(x) - float(zero point)) * scale, in the
    // scale's type. kiln.dequantize_linear is for integer data only.
    if (block != 0 || rank(*scale) > 1) {
      error() << "blocked dequantization of float data is not supported; "
                 "expected a per-tensor or per-axis scale";
      return failure();
    }
    if (zero && (rank(zero) != rank(*scale) ||
                 (rank(zero) == 1 &&
                  !dimsCompatible(dims(zero)[0], dims(*scale)[0])))) {
      error() << "zero point " << zero.getType()
              << " must have the scale's shape " << scale->getType();
      return failure();
    }
    // A per-axis scale (and zero point) broadcasts along `axis`.
    auto alongAxis = [&](Value v) {
      if (rank(v) != 1)
        return v;
      Dims b(rank(*x), DimExpr::constant(1));
      b[axis] = dims(v)[0];
      return reshapeTo(v, b);
    };
    Type st = elt(*scale);
    Value s = alongAxis(*scale);
    Value y = CastOp::create(builder, loc(), ty(dims(*x), st), *x);
    if (zero) {
      Value z = alongAxis(zero);
      z = CastOp::create(builder, loc(), ty(dims(z), st), z);
      y = SubOp::create(builder, loc(), y.getType(), y, z);
    }
    y = MulOp::create(builder, loc(), y.getType(), y, s);
    if (st != *outType)
      y = CastOp::create(builder, loc(), ty(dims(y), *outType), y);
    return setOutput(0, y);
  }
  return setOutput(0, DequantizeLinearOp::create(
                          builder, loc(), ty(dims(*x), *outType), *x, *scale,
                          zero, builder.getI64IntegerAttr(axis),
                          builder.getI64IntegerAttr(block)));
}

Value Importer::perTensorZeroPoint(Value scale, Value zeroPoint) {
  // ONNX's own tests give a per-tensor zero point as [1] beside a scalar
  // scale: one element each, so the zero point takes the scale's shape.
  if (!zeroPoint || zeroPoint.getType() == scale.getType() ||
      rank(zeroPoint) == rank(scale))
    return zeroPoint;
  auto isOne = [](Value v) {
    auto t = cast<RankedTensorType>(v.getType());
    return t.hasStaticShape() && t.getNumElements() == 1;
  };
  if (!isOne(scale) || !isOne(zeroPoint))
    return zeroPoint;
  return reshapeTo(zeroPoint, dims(scale));
}

LogicalResult Importer::importQuantizeLinear() {
  FailureOr<Value> x = input(0), scale = input(1), zp = input(2, false);
  if (failed(x) || failed(scale) || failed(zp))
    return failure();
  Type outType = IntegerType::get(ctx, 8, IntegerType::Unsigned);
  if (*zp)
    outType = elt(*zp);
  else if (const auto *a = attr("output_dtype"); a && a->i() != 0) {
    FailureOr<Type> e = elementType(a->i(), "attribute 'output_dtype'");
    if (failed(e))
      return failure();
    outType = *e;
  }
  if (!isa<IntegerType>(outType)) {
    error() << "quantizing to " << outType
            << " is not supported; expected an integer type";
    return failure();
  }
  int64_t axis = 0;
  if (rank(*scale) > 0) {
    FailureOr<int64_t> n = normAxis(attrInt("axis", 1), rank(*x));
    if (failed(n))
      return failure();
    axis = *n;
  }
  return setOutput(0, QuantizeLinearOp::create(
                          builder, loc(), ty(dims(*x), outType), *x, *scale,
                          perTensorZeroPoint(*scale, *zp),
                          builder.getI64IntegerAttr(axis),
                          builder.getI64IntegerAttr(attrInt("block_size", 0))));
}

LogicalResult Importer::importMatMulNBits() {
  FailureOr<Value> a = input(0);
  if (failed(a))
    return failure();
  int64_t K = attrInt("K", -1), N = attrInt("N", -1);
  int64_t bits = attrInt("bits", 4), block = attrInt("block_size", -1);
  if (K <= 0 || N <= 0 || block < 16 || (block & (block - 1)) != 0) {
    error() << "attributes K and N must be positive and block_size a power "
               "of two >= 16 (got K="
            << K << ", N=" << N << ", block_size=" << block << ")";
    return failure();
  }
  if (bits != 4 && bits != 8) {
    error() << "bits=" << bits << " is not supported; expected 4 or 8";
    return failure();
  }
  if (hasInput(4)) {
    error() << "g_idx (act-order) is not supported";
    return failure();
  }
  // How precisely onnxruntime multiplies (4: activations rounded to int8),
  // kept on the matmul so that the backend can compute the same.
  int64_t accuracy = attrInt("accuracy_level", 0);
  if (accuracy < 0 || accuracy > 4) {
    error() << "accuracy_level=" << accuracy
            << " is not one of 0 (unset), 1 (fp32), 2 (fp16), 3 (bf16), "
               "4 (int8)";
    return failure();
  }
  if (K % block != 0) {
    error() << "K=" << K << " is not a multiple of block_size=" << block
            << "; padded blocks are not supported";
    return failure();
  }
  int64_t nBlocks = K / block;
  auto initOf = [&](int i) -> const Init * {
    if (i < static_cast<int>(inputsRead.size()))
      inputsRead.set(i);
    if (!hasInput(i))
      return nullptr;
    auto it = initializers.find(node->input(i));
    return it == initializers.end() ? nullptr : &it->second;
  };
  const Init *b = initOf(1), *s = initOf(2), *z = initOf(3);
  if (!b || !s || (hasInput(3) && !z)) {
    error() << "B, scales and zero_points must be initializers (weights)";
    return failure();
  }
  FailureOr<Type> scaleType = elementType(s->tensor->data_type(), "scales");
  if (failed(scaleType))
    return failure();
  ZeroPointKind zpKind = ZeroPointKind::Mid;
  if (z) {
    if (z->tensor->data_type() == onnx::TensorProto::UINT8) {
      if (bits == 4 && nBlocks % 2 != 0) {
        error() << "packed 4-bit zero points with an odd number of blocks per "
                   "row ("
                << nBlocks << ") are not supported";
        return failure();
      }
      zpKind = ZeroPointKind::Int;
    } else {
      zpKind = ZeroPointKind::Float;
    }
  }
  auto quant = QuantAttr::getChecked(
      [&] { return error(); }, ctx, static_cast<unsigned>(bits),
      /*isSigned=*/false, block, /*axis=*/int64_t(1), *scaleType, zpKind);
  if (!quant)
    return failure();
  uint64_t scaleBytes = N * nBlocks * scaleType->getIntOrFloatBitWidth() / 8;
  FailureOr<mlir::kiln::BlobAttr> bBlob =
      tensorBlob(*b->tensor, b->index, N * K * bits / 8);
  FailureOr<mlir::kiln::BlobAttr> sBlob =
      failed(bBlob) ? bBlob : tensorBlob(*s->tensor, s->index, scaleBytes);
  if (failed(bBlob) || failed(sBlob))
    return failure();
  SmallVector<mlir::kiln::BlobAttr> blobs = {*bBlob, *sBlob};
  if (z) {
    uint64_t zpBytes =
        zpKind == ZeroPointKind::Int ? N * nBlocks * bits / 8 : scaleBytes;
    FailureOr<mlir::kiln::BlobAttr> zBlob =
        tensorBlob(*z->tensor, z->index, zpBytes);
    if (failed(zBlob))
      return failure();
    blobs.push_back(*zBlob);
  }
  Dims da = dims(*a);
  if (da.empty() || !dimsCompatible(da.back(), DimExpr::constant(K))) {
    error() << "input A of type " << a->getType() << " must end in K=" << K;
    return failure();
  }
  FailureOr<Value> w = quantizedWeight(node->input(1), {N, K}, quant, blobs);
  if (failed(w))
    return failure();
  Type e = elt(*a);
  Value deq = DequantizeOp::create(builder, loc(),
                                   RankedTensorType::get({N, K}, e), *w);
  Value wt = transpose(deq, {1, 0});
  Dims out = da;
  out.back() = DimExpr::constant(N);
  Value y = MatMulOp::create(builder, loc(), ty(out, e), *a, wt, accuracy);
  if (hasInput(5)) {
    FailureOr<Value> bias = input(5);
    if (failed(bias))
      return failure();
    y = AddOp::create(builder, loc(), y.getType(), y, *bias);
  }
  return setOutput(0, y);
}

LogicalResult Importer::importGatherBlockQuantized() {
  FailureOr<Value> idx = input(1);
  if (failed(idx))
    return failure();
  auto initOf = [&](int i) -> const Init * {
    if (i < static_cast<int>(inputsRead.size()))
      inputsRead.set(i);
    if (!hasInput(i))
      return nullptr;
    auto it = initializers.find(node->input(i));
    return it == initializers.end() ? nullptr : &it->second;
  };
  const Init *d = initOf(0), *s = initOf(2), *z = initOf(3);
  if (!d || !s || (hasInput(3) && !z)) {
    error() << "data, scales and zero_points must be initializers (weights)";
    return failure();
  }
  int64_t bits = attrInt("bits", 4), block = attrInt("block_size", 128);
  SmallVector<int64_t> shape = d->dims();
  if (shape.size() != 2 || attrInt("gather_axis", 0) != 0 ||
      (attrInt("quantize_axis", 1) != 1 && attrInt("quantize_axis", 1) != -1)) {
    error() << "only a 2-D table gathered along axis 0 and quantized along "
               "axis 1 is supported";
    return failure();
  }
  using T = onnx::TensorProto;
  int32_t dt = d->tensor->data_type();
  bool isSigned = dt == T::INT4;
  ZeroPointKind zpKind = ZeroPointKind::None;
  if (dt == T::UINT8) {
    if (bits == 4)
      shape[1] *= 2; // two 4-bit values per byte
    zpKind = ZeroPointKind::Mid;
  } else if (dt != T::INT4 && dt != T::UINT4) {
    error() << "data must be int4, uint4 or packed uint8";
    return failure();
  } else {
    bits = 4;
  }
  if (z)
    zpKind =
        (z->tensor->data_type() == T::UINT8 || z->tensor->data_type() == dt)
            ? ZeroPointKind::Int
            : ZeroPointKind::Float;
  FailureOr<Type> scaleType = elementType(s->tensor->data_type(), "scales");
  if (failed(scaleType))
    return failure();
  auto quant = QuantAttr::getChecked([&] { return error(); }, ctx,
                                     static_cast<unsigned>(bits), isSigned,
                                     block, int64_t(1), *scaleType, zpKind);
  if (!quant)
    return failure();
  if (shape[1] % block != 0) {
    error() << "row length " << shape[1] << " is not a multiple of block_size "
            << block;
    return failure();
  }
  uint64_t groups = shape[0] * (shape[1] / block);
  uint64_t scaleBytes = groups * scaleType->getIntOrFloatBitWidth() / 8;
  FailureOr<mlir::kiln::BlobAttr> dBlob =
      tensorBlob(*d->tensor, d->index, shape[0] * shape[1] * bits / 8);
  FailureOr<mlir::kiln::BlobAttr> sBlob =
      failed(dBlob) ? dBlob : tensorBlob(*s->tensor, s->index, scaleBytes);
  if (failed(dBlob) || failed(sBlob))
    return failure();
  SmallVector<mlir::kiln::BlobAttr> blobs = {*dBlob, *sBlob};
  if (z) {
    FailureOr<mlir::kiln::BlobAttr> zBlob = tensorBlob(
        *z->tensor, z->index,
        zpKind == ZeroPointKind::Int ? (groups * bits + 7) / 8 : scaleBytes);
    if (failed(zBlob))
      return failure();
    blobs.push_back(*zBlob);
  }
  FailureOr<Value> w = quantizedWeight(node->input(0), shape, quant, blobs);
  if (failed(w))
    return failure();
  Value table = DequantizeOp::create(
      builder, loc(), RankedTensorType::get(shape, *scaleType), *w);
  Dims out = dims(*idx);
  out.push_back(DimExpr::constant(shape[1]));
  return setOutput(0,
                   GatherOp::create(builder, loc(), ty(out, *scaleType), table,
                                    *idx, builder.getI64IntegerAttr(0)));
}

//===----------------------------------------------------------------------===//
// Handlers: transformer blocks
//===----------------------------------------------------------------------===//

FailureOr<Value> Importer::appendPast(Value past, Value cur) {
  Dims p = dims(past), c = dims(cur);
  if (p.size() != 4 || elt(past) != elt(cur) || !dimsCompatible(p[0], c[0]) ||
      !dimsCompatible(p[1], c[1]) || !dimsCompatible(p[3], c[3])) {
    error() << "past cache " << past.getType()
            << " must be 4-D [batch, kv_heads, past, head_dim] matching the "
               "new keys/values "
            << cur.getType();
    return failure();
  }
  p[2] = p[2] + c[2];
  return ConcatOp::create(builder, loc(), ty(p, elt(cur)),
                          ValueRange{past, cur}, builder.getI64IntegerAttr(2))
      .getResult();
}

FailureOr<Value> Importer::splitHeads(Value x, int64_t heads) {
  Dims d = dims(x); // [B, S, H*D]
  if (d.size() != 3) {
    error() << "expected a 3-D [batch, seq, heads * head_dim] tensor, got "
            << x.getType();
    return failure();
  }
  std::optional<int64_t> width = d[2].getConstant();
  if (!width || heads <= 0 || *width % heads != 0) {
    error() << "hidden size " << d[2] << " is not a static multiple of "
            << heads << " heads";
    return failure();
  }
  Value r = reshapeTo(x, {d[0], d[1], DimExpr::constant(heads),
                          DimExpr::constant(*width / heads)});
  return transpose(r, {0, 2, 1, 3});
}

Value Importer::mergeHeads(Value x) {
  Value t = transpose(x, {0, 2, 1, 3}); // [B, S, H, D]
  Dims d = dims(t);
  return reshapeTo(t, {d[0], d[1], d[2] * d[3]});
}

FailureOr<Value> Importer::rotary4D(Value x, Value cos, Value sin,
                                    Value positions, int64_t rotaryDim,
                                    bool interleaved) {
  // With position ids the caches are tables of positions; without, one row
  // per token.
  int64_t cacheRank = positions ? 2 : 3;
  if (rank(cos) != cacheRank || rank(sin) != cacheRank) {
    error() << (positions ? "cos/sin caches must be 2-D [max_position, "
                            "rotary_dim / 2] with position_ids"
                          : "cos/sin caches must be 3-D [batch, sequence, "
                            "rotary_dim / 2] without position_ids")
            << ", got " << cos.getType() << " and " << sin.getType();
    return failure();
  }
  std::optional<int64_t> half = dims(cos).back().getConstant();
  if (!half) {
    error() << "cos cache must have a static last dimension";
    return failure();
  }
  if (rotaryDim == 0)
    rotaryDim = 2 * *half;
  if (positions && rank(positions) != 2) {
    error() << "position ids must be [batch, sequence], got "
            << positions.getType();
    return failure();
  }
  if (positions && !elt(positions).isInteger(64))
    positions = CastOp::create(
        builder, loc(), ty(dims(positions), builder.getI64Type()), positions);
  auto op = RotaryOp::create(builder, loc(), x.getType(), x, cos, sin,
                             positions, builder.getI64IntegerAttr(rotaryDim),
                             interleaved ? builder.getUnitAttr() : nullptr);
  if (failed(op.verify()))
    return failure();
  return op.getResult();
}

LogicalResult Importer::importRotary(bool microsoft) {
  // ai.onnx (23): X, cos_cache, sin_cache, position_ids?
  // com.microsoft: input, position_ids, cos_cache, sin_cache
  FailureOr<Value> x = input(0);
  FailureOr<Value> cos = input(microsoft ? 2 : 1),
                   sin = input(microsoft ? 3 : 2);
  FailureOr<Value> pos = input(microsoft ? 1 : 3, microsoft);
  if (failed(x) || failed(cos) || failed(sin) || failed(pos))
    return failure();
  // Without position_ids (ai.onnx only) the caches hold one row per token:
  // [batch, sequence, rotary_dim / 2].
  int64_t cacheRank = *pos ? 2 : 3;
  if (rank(*cos) != cacheRank || rank(*sin) != cacheRank) {
    error() << "cos/sin caches must be "
            << (*pos ? "2-D [max_position, rotary_dim / 2] with position_ids"
                     : "3-D [batch, sequence, rotary_dim / 2] without "
                       "position_ids")
            << ", got " << cos->getType() << " and " << sin->getType();
    return failure();
  }
  int64_t heads = attrInt("num_heads", 0);
  int64_t rotaryDim = attrInt("rotary_embedding_dim", 0);
  bool interleaved = attrInt("interleaved", 0) != 0;
  if (microsoft && attrInt("is_packed_batching", 0)) {
    error() << "packed batching is not supported";
    return failure();
  }
  if (rank(*x) == 4) {
    FailureOr<Value> r = rotary4D(*x, *cos, *sin, *pos, rotaryDim, interleaved);
    return failed(r) ? failure() : setOutput(0, *r);
  }
  if (rank(*x) != 3) {
    error() << "input must be 3-D [batch, seq, hidden] or 4-D [batch, heads, "
               "seq, head_dim], got "
            << x->getType();
    return failure();
  }
  if (heads == 0) {
    // Full rotation: the head size is twice the cache width.
    std::optional<int64_t> half = dims(*cos).back().getConstant();
    std::optional<int64_t> hidden = dims(*x)[2].getConstant();
    if (half && *half > 0 && hidden && rotaryDim == 0 &&
        *hidden % (2 * *half) == 0)
      heads = *hidden / (2 * *half);
  }
  if (heads <= 0) {
    error() << "a 3-D input needs the num_heads attribute";
    return failure();
  }
  FailureOr<Value> split = splitHeads(*x, heads);
  if (failed(split))
    return failure();
  FailureOr<Value> r =
      rotary4D(*split, *cos, *sin, *pos, rotaryDim, interleaved);
  if (failed(r))
    return failure();
  return setOutput(0, reshapeTo(mergeHeads(*r), dims(*x)));
}

static float defaultScale(Value q) {
  std::optional<int64_t> d =
      getShapeExprs(cast<RankedTensorType>(q.getType()))[3].getConstant();
  return d ? 1.0f / std::sqrt(static_cast<float>(*d)) : 0.0f;
}

LogicalResult Importer::importAttention() {
  FailureOr<Value> q = input(0), k = input(1), v = input(2),
                   mask0 = input(3, false), pastK = input(4, false),
                   pastV = input(5, false), nonpad = input(6, false);
  if (failed(q) || failed(k) || failed(v) || failed(mask0) || failed(pastK) ||
      failed(pastV) || failed(nonpad))
    return failure();
  if (outputUsed(3) && *nonpad) {
    error() << "the qk_matmul_output output with nonpad_kv_seqlen is not "
               "supported";
    return failure();
  }

  if (!!*pastK != !!*pastV) {
    error() << "past_key and past_value must be given together";
    return failure();
  }
  bool threeD = rank(*q) == 3;
  Value Q = *q, K = *k, V = *v;
  if (threeD) {
    int64_t hq = attrInt("q_num_heads", 0), hkv = attrInt("kv_num_heads", 0);
    if (hq <= 0 || hkv <= 0) {
      error() << "3-D inputs need the q_num_heads and kv_num_heads attributes";
      return failure();
    }
    FailureOr<Value> sq = splitHeads(Q, hq);
    FailureOr<Value> sk = failed(sq) ? sq : splitHeads(K, hkv);
    FailureOr<Value> sv = failed(sk) ? sk : splitHeads(V, hkv);
    if (failed(sv))
      return failure();
    Q = *sq;
    K = *sk;
    V = *sv;
  } else if (rank(*q) != 4 || rank(*k) != 4 || rank(*v) != 4) {
    error() << "Q, K and V must all be 3-D or all be 4-D";
    return failure();
  }
  if (*pastK) {
    FailureOr<Value> pk = appendPast(*pastK, K);
    FailureOr<Value> pv = failed(pk) ? pk : appendPast(*pastV, V);
    if (failed(pv))
      return failure();
    K = *pk;
    V = *pv;
  }
  // ONNX pads a mask shorter than the keys: -inf (or false) for the
  // missing positions.
  Value mask = *mask0;
  if (mask && rank(mask) >= 1) {
    Dims md = dims(mask);
    std::optional<int64_t> have = md.back().getConstant(),
                           want = dims(K)[2].getConstant();
    if (have && want && *have < *want) {
      auto i64 = builder.getI64Type();
      Value lead = ShapeOp::create(builder, loc(),
                                   RankedTensorType::get({rank(mask) - 1}, i64),
                                   mask, builder.getI64IntegerAttr(0),
                                   builder.getI64IntegerAttr(rank(mask) - 1));
      Value padShape = ConcatOp::create(
          builder, loc(), RankedTensorType::get({rank(mask)}, i64),
          ValueRange{lead, i64Const({*want - *have})},
          builder.getI64IntegerAttr(0));
      Type e = elt(mask);
      TypedAttr fill = e.isInteger(1)
                           ? TypedAttr(builder.getBoolAttr(false))
                           : TypedAttr(builder.getFloatAttr(
                                 e, -std::numeric_limits<double>::infinity()));
      Dims pd = md;
      pd.back() = DimExpr::constant(*want - *have);
      Value pad =
          ConstantOfShapeOp::create(builder, loc(), ty(pd, e), padShape, fill);
      Dims cd = md;
      cd.back() = DimExpr::constant(*want);
      mask = ConcatOp::create(builder, loc(), ty(cd, e), ValueRange{mask, pad},
                              builder.getI64IntegerAttr(rank(mask) - 1));
    }
  }
  // ONNX aligns the causal and window constraints at the past length (or
  // at 0 without a cache: top left); kiln.attention aligns them at total -
  // seq (bottom right: the queries are the last keys). The two agree when
  // there are as many new keys as queries. Where static sizes say they do
  // not, the constraints become an explicit boolean mask, combined with
  // the given one.
  bool causal = attrInt("is_causal", 0) != 0;
  int64_t windowLeft = attrInt("left_window_size", -1),
          windowRight = attrInt("right_window_size", -1);
  if ((causal || windowLeft >= 0 || windowRight >= 0) && !*nonpad) {
    DimExpr past = *pastK ? dims(*pastK)[2] : DimExpr::constant(0);
    std::optional<int64_t> seq = dims(Q)[2].getConstant(),
                           total = dims(K)[2].getConstant(),
                           pastLen = past.getConstant();
    if (seq && total && pastLen && *total - *seq != *pastLen) {
      SmallVector<bool> allowed;
      for (int64_t i = 0; i < *seq; ++i)
        for (int64_t j = 0; j < *total; ++j) {
          int64_t p = i + *pastLen;
          allowed.push_back((!causal || j <= p) &&
                            (windowLeft < 0 || j >= p - windowLeft) &&
                            (windowRight < 0 || j <= p + windowRight));
        }
      auto boolType =
          RankedTensorType::get({*seq, *total}, builder.getI1Type());
      Value bias = ConstantOp::create(
          builder, loc(), DenseElementsAttr::get(boolType, allowed));
      if (!mask) {
        mask = bias;
      } else {
        FailureOr<Dims> md = broadcastShapes(dims(mask), dims(bias));
        if (failed(md)) {
          error() << "attn_mask " << mask.getType()
                  << " does not broadcast to [q_sequence_length, "
                     "kv_sequence_length]";
          return failure();
        }
        Type e = elt(mask);
        if (e.isInteger(1)) {
          mask = AndOp::create(builder, loc(), ty(*md, e), mask, bias);
        } else {
          auto scalar = RankedTensorType::get({}, e);
          Value negInf = ConstantOp::create(
              builder, loc(),
              DenseElementsAttr::get(
                  scalar, ArrayRef<Attribute>{builder.getFloatAttr(
                              e, -std::numeric_limits<double>::infinity())}));
          mask =
              WhereOp::create(builder, loc(), ty(*md, e), bias, mask, negInf);
        }
      }
      causal = false;
      windowLeft = windowRight = -1;
    }
  }
  float scale = attrFloat("scale", 0.0f);
  if (scale == 0.0f)
    scale = defaultScale(Q);
  if (scale == 0.0f) {
    error() << "the head size is dynamic; expected a static head size or "
               "the scale attribute";
    return failure();
  }
  Dims qd = dims(Q), vd = dims(V);
  auto op = AttentionOp::create(
      builder, loc(), ty({qd[0], qd[1], qd[2], vd[3]}, elt(Q)), Q, K, V, mask,
      *nonpad, builder.getF32FloatAttr(scale),
      causal ? builder.getUnitAttr() : nullptr,
      builder.getF32FloatAttr(attrFloat("softcap", 0.0f)),
      builder.getI64IntegerAttr(windowLeft),
      builder.getI64IntegerAttr(windowRight));
  if (failed(op.verify()))
    return failure();
  Value y = op.getResult();
  (void)setOutput(0, threeD ? mergeHeads(y) : y);
  (void)setOutput(1, K);
  (void)setOutput(2, V);
  if (!outputUsed(3))
    return success();
  int64_t offset = 0; // keys before the first query: the past's length
  if (*pastK) {
    std::optional<int64_t> past = dims(*pastK)[2].getConstant();
    if (!past) {
      error() << "the qk_matmul_output output needs a static past length";
      return failure();
    }
    offset = *past;
  }
  FailureOr<Value> qk = attentionScores(Q, K, mask, scale, offset);
  return failed(qk) ? failure() : setOutput(3, *qk);
}

Value Importer::scalarConst(Type e, double v) {
  return ConstantOp::create(
      builder, loc(),
      DenseElementsAttr::get(RankedTensorType::get({}, e),
                             TypedAttr(builder.getFloatAttr(e, v))));
}

FailureOr<Value> Importer::attentionScores(Value Q, Value K, Value mask,
                                           float scale, int64_t offset) {
  // What ONNX's function body computes beside the fused op, step by step:
  // scaled QK^T, softcap, + bias (mask, causal and window), softmax. Mode
  // picks the step the output shows.
  int64_t mode = attrInt("qk_matmul_output_mode", 0);
  if (mode < 0 || mode > 3) {
    error() << "qk_matmul_output_mode must be 0, 1, 2 or 3, got " << mode;
    return failure();
  }
  Type e = elt(Q);
  Dims qd = dims(Q), kd = dims(K);
  std::optional<int64_t> hq = qd[1].getConstant(), hkv = kd[1].getConstant();
  if (!hq || !hkv || *hq <= 0 || *hkv <= 0 || *hq % *hkv != 0) {
    error() << "the qk_matmul_output output needs static head counts, the "
               "query's a multiple of the keys', got "
            << Q.getType() << " and " << K.getType();
    return failure();
  }
  if (*hq != *hkv) {
    // Grouped heads: each key head serves hq / hkv query heads in a row.
    Dims k5 = {kd[0], kd[1], DimExpr::constant(1), kd[2], kd[3]};
    Value k = reshapeTo(K, k5);
    k5[2] = DimExpr::constant(*hq / *hkv);
    k = ConcatOp::create(builder, loc(), ty(k5, e),
                         SmallVector<Value>(*hq / *hkv, k),
                         builder.getI64IntegerAttr(2));
    K = reshapeTo(k, {kd[0], qd[1], kd[2], kd[3]});
  }
  Dims sd = {qd[0], qd[1], qd[2], kd[2]};
  RankedTensorType st = ty(sd, e);
  Value qk =
      MatMulOp::create(builder, loc(), st, Q, transpose(K, {0, 1, 3, 2}));
  qk = MulOp::create(builder, loc(), st, qk, scalarConst(e, scale));
  if (mode == 0)
    return qk;
  if (float cap = attrFloat("softcap", 0.0f); cap > 0.0f) {
    Value c = scalarConst(e, cap);
    qk = MulOp::create(builder, loc(), st,
                       TanhOp::create(builder, loc(), st,
                                      DivOp::create(builder, loc(), st, qk, c)),
                       c);
  }
  if (mode == 1)
    return qk;
  // The additive bias: a bool mask allows where true.
  double ninf = -std::numeric_limits<double>::infinity();
  Value bias;
  if (mask && !elt(mask).isInteger(1) && elt(mask) != e) {
    error() << "attn_mask must be bool or of the query's type " << e << ", got "
            << mask.getType();
    return failure();
  }
  if (mask && rank(mask) < 2) {
    // Broadcasting aligns to the right: a scalar or a row of keys is the
    // same for every query. The row guard below needs a query axis.
    Dims md = dims(mask);
    md.insert(md.begin(), 2 - md.size(), DimExpr::constant(1));
    mask = reshapeTo(mask, md);
  }
  if (mask && elt(mask).isInteger(1))
    bias = WhereOp::create(builder, loc(), ty(dims(mask), e), mask,
                           scalarConst(e, 0.0), scalarConst(e, ninf));
  else if (mask)
    bias = mask;
  bool causal = attrInt("is_causal", 0) != 0;
  int64_t left = attrInt("left_window_size", -1),
          right = attrInt("right_window_size", -1);
  if (causal || left >= 0 || right >= 0) {
    // Query i is at position offset + i; it sees key j where j <= p
    // (causal) and p - left <= j <= p + right (each bound when >= 0).
    std::optional<int64_t> S = qd[2].getConstant(), T = kd[2].getConstant();
    if (!S || !T) {
      error() << "the qk_matmul_output output with is_causal or a window "
                 "needs static sequence lengths, got "
              << Q.getType() << " and " << K.getType();
      return failure();
    }
    // The mask is a constant; a huge one would exhaust memory (a small
    // file can declare any size).
    constexpr int64_t kMaxMaskCells = int64_t(1) << 22;
    if (*S > kMaxMaskCells / std::max<int64_t>(*T, 1)) {
      error() << "the qk_matmul_output output with is_causal or a window "
                 "builds a constant mask of "
              << *S << " x " << *T << " elements; at most " << kMaxMaskCells
              << " are supported";
      return failure();
    }
    SmallVector<Attribute> cells;
    for (int64_t i = 0; i < *S; ++i)
      for (int64_t j = 0; j < *T; ++j) {
        int64_t p = offset + i;
        bool ok = (!causal || j <= p) && (left < 0 || p - j <= left) &&
                  (right < 0 || j - p <= right);
        cells.push_back(builder.getFloatAttr(e, ok ? 0.0 : ninf));
      }
    Value structural = ConstantOp::create(
        builder, loc(),
        DenseElementsAttr::get(RankedTensorType::get({*S, *T}, e), cells));
    if (bias) {
      FailureOr<Dims> bd = broadcastShapes(dims(bias), dims(structural));
      if (failed(bd)) {
        error() << "attn_mask " << mask.getType() << " does not broadcast to ["
                << *S << ", " << *T << "]";
        return failure();
      }
      bias = AddOp::create(builder, loc(), ty(*bd, e), bias, structural);
    } else {
      bias = structural;
    }
  }
  if (bias) {
    FailureOr<Dims> bd = broadcastShapes(sd, dims(bias));
    bool fits = succeeded(bd) && bd->size() == sd.size();
    for (size_t i = 0; fits && i < sd.size(); ++i)
      fits = dimsCompatible((*bd)[i], sd[i]);
    if (!fits) {
      error() << "attn_mask " << bias.getType()
              << " does not broadcast to the scores " << st;
      return failure();
    }
    qk = AddOp::create(builder, loc(), st, qk, bias);
  }
  if (mode == 2)
    return qk;
  Type pt = e;
  if (int64_t p = attrInt("softmax_precision", 0); p != 0) {
    FailureOr<Type> t = elementType(p, "attribute 'softmax_precision'");
    if (failed(t))
      return failure();
    if (!isa<FloatType>(*t)) {
      error() << "softmax_precision must be a float type, got " << *t;
      return failure();
    }
    pt = *t;
  }
  if (pt != e)
    qk = CastOp::create(builder, loc(), ty(sd, pt), qk);
  Value probs = SoftmaxOp::create(builder, loc(), qk.getType(), qk,
                                  builder.getI64IntegerAttr(3));
  if (bias) {
    // A row whose bias is -inf everywhere sees no key: zeros, not NaN.
    Dims rd = dims(bias);
    rd.back() = DimExpr::constant(1);
    Value rowMax = ReduceMaxOp::create(
        builder, loc(), ty(rd, e), bias,
        builder.getDenseI64ArrayAttr({rank(bias) - 1}), builder.getUnitAttr());
    Value none = EqualOp::create(builder, loc(), ty(rd, builder.getI1Type()),
                                 rowMax, scalarConst(e, ninf));
    probs = WhereOp::create(builder, loc(), probs.getType(), none,
                            scalarConst(pt, 0.0), probs);
  }
  if (pt != e)
    probs = CastOp::create(builder, loc(), st, probs);
  return probs;
}

LogicalResult Importer::importGroupQueryAttention() {
  FailureOr<Value> query = input(0), key = input(1, false),
                   value = input(2, false), pastK = input(3, false),
                   pastV = input(4, false), seqlens = input(5),
                   cos = input(7, false), sin = input(8, false),
                   posIds = input(9, false);
  // total_sequence_length is max(seqlens_k) + 1; key_lengths carries the
  // per-sequence truth, so the scalar is not needed.
  if (failed(input(6, false)))
    return failure();
  if (failed(query) || failed(key) || failed(value) || failed(pastK) ||
      failed(pastV) || failed(seqlens) || failed(cos) || failed(sin) ||
      failed(posIds))
    return failure();
  for (int i : {10, 11})
    if (hasInput(i)) {
      error() << "input " << i
              << " (attention_bias / head_sink) is not supported";
      return failure();
    }
  if (attrInt("smooth_softmax", 0)) {
    error() << "smooth_softmax is not supported";
    return failure();
  }
  // local_window_size w > 0: the token at position p sees w keys, p - w + 1
  // .. p (measured: onnxruntime 1.31.1's CPU kernel matches that window
  // and neither w - 1 nor w + 1 keys), so window_left is w - 1.
  int64_t window = attrInt("local_window_size", -1);
  int64_t hq = attrInt("num_heads", 0), hkv = attrInt("kv_num_heads", 0);
  if (hq <= 0 || hkv <= 0 || hq % hkv != 0) {
    error() << "num_heads (" << hq << ") must be a positive multiple of "
            << "kv_num_heads (" << hkv << ")";
    return failure();
  }
  if (rank(*query) != 3) {
    error() << "query must be 3-D [batch, seq, hidden], got "
            << query->getType();
    return failure();
  }
  Value q = *query, k = *key, v = *value;
  Dims qd = dims(q);
  if (!k) {
    // Packed QKV: [B, S, (hq + 2 hkv) * D].
    std::optional<int64_t> packed = qd[2].getConstant();
    if (!packed || *packed % (hq + 2 * hkv) != 0) {
      error() << "packed QKV width " << qd[2] << " is not a multiple of "
              << hq + 2 * hkv << " heads";
      return failure();
    }
    int64_t d = *packed / (hq + 2 * hkv);
    auto piece = [&](int64_t w) {
      return ty({qd[0], qd[1], DimExpr::constant(w)}, elt(q));
    };
    auto split = SplitOp::create(
        builder, loc(),
        TypeRange{piece(hq * d), piece(hkv * d), piece(hkv * d)}, q,
        builder.getI64IntegerAttr(2));
    q = split.getResult(0);
    k = split.getResult(1);
    v = split.getResult(2);
  } else if (!v) {
    error() << "key is given without value";
    return failure();
  }
  FailureOr<Value> sq = splitHeads(q, hq);
  FailureOr<Value> sk = failed(sq) ? sq : splitHeads(k, hkv);
  FailureOr<Value> sv = failed(sk) ? sk : splitHeads(v, hkv);
  if (failed(sv))
    return failure();
  Value Q = *sq, K = *sk, V = *sv;
  // Valid keys per sequence: seqlens_k + 1 (ORT's convention). The cache
  // may be longer (a shared buffer); its capacity is not the token count.
  auto i64 = builder.getI64Type();
  Value lens = *seqlens;
  Dims ld = dims(lens);
  if (ld.size() != 1) {
    error() << "seqlens_k must be 1-D [batch], got " << lens.getType();
    return failure();
  }
  if (!elt(lens).isInteger(64))
    lens = CastOp::create(builder, loc(), ty(ld, i64), lens);
  Value keyLens =
      AddOp::create(builder, loc(), lens.getType(), lens, i64Const({1}, true));
  if (attrInt("do_rotary", 0)) {
    if (!*cos || !*sin) {
      error() << "do_rotary needs the cos_cache and sin_cache inputs";
      return failure();
    }
    Value pos = *posIds;
    if (!pos) {
      // Position of token s of sequence b: keyLens[b] - S + s.
      auto scalar = RankedTensorType::get({}, i64);
      Value seq = DimOp::create(builder, loc(), scalar, Q,
                                builder.getI64IntegerAttr(2));
      Value range =
          RangeOp::create(builder, loc(), ty({dims(Q)[2]}, i64),
                          i64Const({0}, true), seq, i64Const({1}, true));
      Value start =
          SubOp::create(builder, loc(), keyLens.getType(), keyLens, seq);
      Value startCol = reshapeTo(start, {ld[0], DimExpr::constant(1)});
      Value rangeRow = reshapeTo(range, {DimExpr::constant(1), dims(Q)[2]});
      pos = AddOp::create(builder, loc(), ty({ld[0], dims(Q)[2]}, i64),
                          startCol, rangeRow);
    }
    bool inter = attrInt("rotary_interleaved", 0) != 0;
    FailureOr<Value> rq = rotary4D(Q, *cos, *sin, pos, 0, inter);
    FailureOr<Value> rk =
        failed(rq) ? rq : rotary4D(K, *cos, *sin, pos, 0, inter);
    if (failed(rq) || failed(rk))
      return failure();
    Q = *rq;
    K = *rk;
  }
  if (*pastK) {
    if (!*pastV) {
      error() << "past_key and past_value must be given together";
      return failure();
    }
    FailureOr<Value> pk = appendPast(*pastK, K);
    FailureOr<Value> pv = failed(pk) ? pk : appendPast(*pastV, V);
    if (failed(pv))
      return failure();
    // ORT writes the new tokens at seqlens_k + 1 - S of each sequence: for
    // a padded batch or a shared buffer that is before the end of `past`.
    // Appending makes room; rewriting the rows puts them where the valid
    // keys end (for an unpadded batch both coincide).
    auto scalar = RankedTensorType::get({}, i64);
    Value seq =
        DimOp::create(builder, loc(), scalar, K, builder.getI64IntegerAttr(2));
    Value start =
        SubOp::create(builder, loc(), keyLens.getType(), keyLens, seq);
    K = writeRows(*pk, K, start, 2);
    V = writeRows(*pv, V, start, 2);
  }
  float scale = attrFloat("scale", 0.0f);
  if (scale == 0.0f)
    scale = defaultScale(Q);
  Dims d = dims(Q);
  auto op = AttentionOp::create(
      builder, loc(), ty({d[0], d[1], d[2], dims(V)[3]}, elt(Q)), Q, K, V,
      Value(), keyLens, builder.getF32FloatAttr(scale), builder.getUnitAttr(),
      builder.getF32FloatAttr(attrFloat("softcap", 0.0f)),
      builder.getI64IntegerAttr(window > 0 ? window - 1 : -1),
      builder.getI64IntegerAttr(-1));
  if (failed(op.verify()))
    return failure();
  (void)setOutput(0, mergeHeads(op.getResult()));
  (void)setOutput(1, K);
  return setOutput(2, V);
}

LogicalResult Importer::importTensorScatter() {
  // ai.onnx TensorScatter (24): writes `update` into `past_cache` at
  // write_indices[b] along `axis`, one run of positions per batch entry.
  FailureOr<Value> cache = input(0), update = input(1), idx = input(2, false);
  if (failed(cache) || failed(update) || failed(idx))
    return failure();
  std::string mode = attrString("mode", "linear");
  if (mode != "linear" && mode != "circular") {
    error() << "mode '" << mode
            << "' is not supported; expected \"linear\" or \"circular\"";
    return failure();
  }
  int64_t r = rank(*cache);
  FailureOr<int64_t> axis = normAxis(attrInt("axis", -2), r);
  if (failed(axis))
    return failure();
  if (*axis == 0 || rank(*update) != r) {
    error() << "axis must not be the batch axis and update must have the "
               "cache's rank";
    return failure();
  }
  Value start = *idx;
  if (start && !elt(start).isInteger(64))
    start = CastOp::create(builder, loc(),
                           ty(dims(start), builder.getI64Type()), start);
  return setOutput(
      0, writeRows(*cache, *update, start, *axis, mode == "circular"));
}

Value Importer::writeRows(Value cache, Value update, Value start, int64_t axis,
                          bool circular) {
  int64_t r = rank(cache);
  // Move the sequence axis next to batch, scatter rows [b, pos], move back.
  SmallVector<int64_t> perm = {0, axis};
  for (int64_t i = 1; i < r; ++i)
    if (i != axis)
      perm.push_back(i);
  SmallVector<int64_t> inverse(r);
  for (int64_t i = 0; i < r; ++i)
    inverse[perm[i]] = i;
  Value c = transpose(cache, perm), u = transpose(update, perm);
  Dims ud = dims(u);
  auto i64 = builder.getI64Type();
  if (!start) {
    start = ConstantOfShapeOp::create(
        builder, loc(), ty({ud[0]}, i64),
        ShapeOp::create(builder, loc(), RankedTensorType::get({1}, i64), u,
                        builder.getI64IntegerAttr(0),
                        builder.getI64IntegerAttr(1)),
        builder.getI64IntegerAttr(0));
  }
  auto scalar = RankedTensorType::get({}, i64);
  Value seq =
      DimOp::create(builder, loc(), scalar, u, builder.getI64IntegerAttr(1));
  Value batch =
      DimOp::create(builder, loc(), scalar, u, builder.getI64IntegerAttr(0));
  Value srange = RangeOp::create(builder, loc(), ty({ud[1]}, i64),
                                 i64Const({0}, true), seq, i64Const({1}, true));
  Value brange =
      RangeOp::create(builder, loc(), ty({ud[0]}, i64), i64Const({0}, true),
                      batch, i64Const({1}, true));
  Dims bs = {ud[0], ud[1]};
  Value pos = AddOp::create(builder, loc(), ty(bs, i64),
                            reshapeTo(start, {ud[0], DimExpr::constant(1)}),
                            reshapeTo(srange, {DimExpr::constant(1), ud[1]}));
  if (circular) {
    // pos mod capacity, as pos - (pos / capacity) * capacity: positions are
    // not negative, so the truncating division is the floor.
    Value cap =
        DimOp::create(builder, loc(), scalar, c, builder.getI64IntegerAttr(1));
    Value wraps = DivOp::create(builder, loc(), pos.getType(), pos, cap);
    pos =
        SubOp::create(builder, loc(), pos.getType(), pos,
                      MulOp::create(builder, loc(), pos.getType(), wraps, cap));
  }
  Value bIdx = ExpandOp::create(
      builder, loc(), ty(bs, i64),
      reshapeTo(brange, {ud[0], DimExpr::constant(1)}),
      ShapeOp::create(builder, loc(), RankedTensorType::get({2}, i64), pos,
                      builder.getI64IntegerAttr(0),
                      builder.getI64IntegerAttr(2)));
  Dims one = {ud[0], ud[1], DimExpr::constant(1)};
  Value indices = ConcatOp::create(
      builder, loc(), ty({ud[0], ud[1], DimExpr::constant(2)}, i64),
      ValueRange{reshapeTo(bIdx, one), reshapeTo(pos, one)},
      builder.getI64IntegerAttr(2));
  Value scattered = ScatterNDOp::create(builder, loc(), c.getType(), c, indices,
                                        u, builder.getStringAttr("none"));
  return transpose(scattered, inverse);
}

//===----------------------------------------------------------------------===//
// Dispatch and the graph
//===----------------------------------------------------------------------===//

void Importer::registerHandlers() {
  auto &h = handlers;
  h["Add"] = [this] { return binary<AddOp>(); };
  h["Sub"] = [this] { return binary<SubOp>(); };
  h["Mul"] = [this] { return binary<MulOp>(); };
  h["Div"] = [this] { return binary<DivOp>(); };
  h["Max"] = [this] { return binary<MaxOp>(false, true); };
  h["Min"] = [this] { return binary<MinOp>(false, true); };
  h["Equal"] = [this] { return binary<EqualOp>(true); };
  h["Less"] = [this] { return binary<LessOp>(true); };
  h["Greater"] = [this] { return binary<GreaterOp>(true); };
  h["LessOrEqual"] = [this] { return binary<LessEqualOp>(true); };
  h["GreaterOrEqual"] = [this] { return binary<GreaterEqualOp>(true); };
  h["And"] = [this] { return binary<AndOp>(true); };
  h["Or"] = [this] { return binary<OrOp>(true); };
  h["Pow"] = [this]() -> LogicalResult {
    // ONNX allows a different exponent type; kiln casts it to the base's.
    FailureOr<Value> a = input(0), b = input(1);
    if (failed(a) || failed(b))
      return failure();
    Value e = *b;
    if (elt(e) != elt(*a))
      e = CastOp::create(builder, loc(), ty(dims(e), elt(*a)), e);
    FailureOr<Dims> s = broadcastShapes(dims(*a), dims(e));
    if (failed(s)) {
      error() << "operand shapes " << a->getType() << " and " << e.getType()
              << " do not broadcast";
      return failure();
    }
    return setOutput(0, PowOp::create(builder, loc(), ty(*s, elt(*a)), *a, e));
  };
  h["Sqrt"] = [this] { return unary<SqrtOp>(); };
  h["Reciprocal"] = [this] { return unary<ReciprocalOp>(); };
  h["Neg"] = [this] { return unary<NegOp>(); };
  h["Abs"] = [this] { return unary<AbsOp>(); };
  h["Exp"] = [this] { return unary<ExpOp>(); };
  h["Log"] = [this] { return unary<LogOp>(); };
  h["Tanh"] = [this] { return unary<TanhOp>(); };
  h["Erf"] = [this] { return unary<ErfOp>(); };
  h["Sigmoid"] = [this] { return unary<SigmoidOp>(); };
  h["Relu"] = [this] { return unary<ReluOp>(); };
  h["Not"] = [this] { return unary<NotOp>(); };
  h["Cos"] = [this] { return unary<CosOp>(); };
  h["Sin"] = [this] { return unary<SinOp>(); };
  h["IsNaN"] = [this]() -> LogicalResult {
    FailureOr<Value> x = input(0);
    if (failed(x))
      return failure();
    if (!isa<FloatType>(elt(*x))) {
      error() << "expects a float input, got " << x->getType();
      return failure();
    }
    return setOutput(0, IsNaNOp::create(builder, loc(),
                                        ty(dims(*x), builder.getI1Type()), *x));
  };
  h["GatherND"] = [this]() -> LogicalResult {
    FailureOr<Value> x = input(0), idx = input(1);
    if (failed(x) || failed(idx))
      return failure();
    Dims d = dims(*x), i = dims(*idx);
    int64_t b = attrInt("batch_dims", 0);
    std::optional<int64_t> k =
        i.empty() ? std::nullopt : i.back().getConstant();
    if (!k || b < 0 || *k < 0 || b > static_cast<int64_t>(d.size()) ||
        *k > static_cast<int64_t>(d.size()) - b) {
      error() << "indices " << idx->getType()
              << " must end in a static size k with batch_dims + k <= "
              << d.size();
      return failure();
    }
    Dims out(i.begin(), i.end() - 1);
    out.append(d.begin() + b + *k, d.end());
    return setOutput(0, GatherNDOp::create(builder, loc(), ty(out, elt(*x)), *x,
                                           *idx, builder.getI64IntegerAttr(b)));
  };
  h["Gelu"] = [this] { return importGelu(); };
  h["Softmax"] = [this] { return importSoftmax(false); };
  h["LogSoftmax"] = [this] { return importSoftmax(true); };
  h["MatMul"] = [this] { return importMatMul(); };
  h["Gemm"] = [this] { return importGemm(); };
  h["Transpose"] = [this] { return importTranspose(); };
  h["Reshape"] = [this] { return importReshape(); };
  h["Flatten"] = [this] { return importFlatten(); };
  h["Squeeze"] = [this] { return importSqueeze(false); };
  h["Unsqueeze"] = [this] { return importSqueeze(true); };
  h["Concat"] = [this] { return importConcat(); };
  h["Split"] = [this] { return importSplit(); };
  h["Slice"] = [this] { return importSlice(); };
  h["Gather"] = [this] { return importGather(); };
  h["GatherElements"] = [this] { return importGatherElements(); };
  h["ScatterND"] = [this] { return importScatterND(); };
  h["Expand"] = [this] { return importExpand(); };
  h["Tile"] = [this] { return importTile(); };
  h["Where"] = [this] { return importWhere(); };
  h["Cast"] = [this] { return importCast(false); };
  h["CastLike"] = [this] { return importCast(true); };
  h["Shape"] = [this] { return importShape(); };
  h["Size"] = [this] { return importSize(); };
  h["ConstantOfShape"] = [this] { return importConstantOfShape(); };
  h["Constant"] = [this] { return importConstant(); };
  h["Range"] = [this] { return importRange(); };
  h["Trilu"] = [this] { return importTrilu(); };
  h["ReduceMean"] = [this] { return importReduce<ReduceMeanOp>(); };
  h["ReduceSum"] = [this] { return importReduce<ReduceSumOp>(); };
  h["ReduceMax"] = [this] { return importReduce<ReduceMaxOp>(); };
  h["ArgMax"] = [this] { return importArgMax(); };
  h["LayerNormalization"] = [this] { return importLayerNorm(); };
  h["RMSNormalization"] = [this] { return importRMSNorm(); };
  h["Identity"] = [this] { return importIdentity(); };
  // ORT registers SimplifiedLayerNormalization in the default domain.
  h["SimplifiedLayerNormalization"] = [this] { return importRMSNorm(); };
  h["Dropout"] = [this] { return importIdentity(); };
  h["DequantizeLinear"] = [this] { return importDequantizeLinear(); };
  h["QuantizeLinear"] = [this] { return importQuantizeLinear(); };
  h["RotaryEmbedding"] = [this] { return importRotary(false); };
  h["Attention"] = [this] { return importAttention(); };
  h["TensorScatter"] = [this] { return importTensorScatter(); };
  std::string ms = kMsDomain.str() + ":";
  h[ms + "GroupQueryAttention"] = [this] {
    return importGroupQueryAttention();
  };
  h[ms + "MatMulNBits"] = [this] { return importMatMulNBits(); };
  h[ms + "RotaryEmbedding"] = [this] { return importRotary(true); };
  h[ms + "SimplifiedLayerNormalization"] = [this] { return importRMSNorm(); };
  h[ms + "SkipSimplifiedLayerNormalization"] = [this] {
    return importSkipNorm(true);
  };
  h[ms + "SkipLayerNormalization"] = [this] { return importSkipNorm(false); };
  h[ms + "GatherBlockQuantized"] = [this] {
    return importGatherBlockQuantized();
  };
}

LogicalResult Importer::importNode(const onnx::NodeProto &n) {
  node = &n;
  StringRef domain = n.domain();
  if (domain == "ai.onnx")
    domain = "";
  if (!domain.empty() && domain != kMsDomain) {
    error() << "unsupported domain '" << domain
            << "'; kiln imports ai.onnx and com.microsoft ops";
    return failure();
  }
  if (opsetOf(domain) < 0) {
    error() << "the model imports no opset for domain '"
            << (domain.empty() ? "ai.onnx" : domain) << "'";
    return failure();
  }
  std::string key =
      domain.empty() ? n.op_type() : (domain + ":" + n.op_type()).str();
  auto it = handlers.find(key);
  if (it == handlers.end()) {
    error() << "unsupported op '" << n.op_type() << "'";
    return failure();
  }
  if (domain.empty()) {
    const OpSince *since = llvm::find_if(
        kOpSince, [&](const OpSince &s) { return s.op == n.op_type(); });
    int64_t version =
        since == std::end(kOpSince) ? kDefaultOpSince : since->version;
    if (opsetOf(domain) < version) {
      InFlightDiagnostic d = error();
      d << n.op_type() << " before opset " << version;
      if (since != std::end(kOpSince) && !since->why.empty())
        d << " (which " << since->why << ")";
      d << " is not supported; expected opset " << version << " or newer";
      return failure();
    }
  }
  inputsRead.clear();
  inputsRead.resize(n.input_size());
  Block *block = builder.getInsertionBlock();
  Operation *last = block->empty() ? nullptr : &block->back();
  if (failed(it->second()))
    return failure();
  // Op verifiers catch what the handler did not check (a bad enum string, a
  // cache that does not fit the head size). Report their message as this
  // node's one-line error instead of a generic-form dump at the end.
  Operation *first =
      last ? last->getNextNode() : (block->empty() ? nullptr : &block->front());
  for (Operation *op = first; op; op = op->getNextNode()) {
    std::string message;
    {
      ScopedDiagnosticHandler capture(ctx, [&](Diagnostic &d) {
        if (message.empty() && d.getSeverity() == DiagnosticSeverity::Error)
          message = d.str();
        return success();
      });
      if (succeeded(mlir::verify(op, /*verifyRecursively=*/false)))
        continue;
    }
    error() << message;
    return failure();
  }
  for (int i = 0; i < n.input_size(); ++i)
    if (!n.input(i).empty() && !inputsRead.test(i)) {
      error() << "input " << i << " '" << n.input(i)
              << "' is not supported by kiln's import of this op";
      return failure();
    }
  for (int i = 0; i < n.output_size(); ++i)
    if (!n.output(i).empty() && !values.count(n.output(i)) &&
        !initializers.count(n.output(i))) {
      error() << "output " << i << " '" << n.output(i)
              << "' is not produced by kiln's import of this op";
      return failure();
    }
  return success();
}

OwningOpRef<ModuleOp> Importer::run(const onnx::ModelProto &model,
                                    const std::map<int, ByteRange> &raw) {
  rawData = &raw;
  registerHandlers();
  if (!model.has_graph()) {
    emitError(fileLoc) << "not an ONNX model: no graph (is this an ONNX file?)";
    return nullptr;
  }
  if (model.ir_version() < 3) {
    emitError(fileLoc) << "ONNX IR version " << model.ir_version()
                       << " is not supported; expected 3 or newer";
    return nullptr;
  }
  for (const auto &o : model.opset_import())
    opsets[o.domain() == "ai.onnx" ? "" : o.domain()] = o.version();
  int64_t onnxOpset = opsetOf("");
  if (onnxOpset >= 0 && (onnxOpset < kMinOpset || onnxOpset > kMaxOpset)) {
    emitError(fileLoc) << "default-domain opset " << onnxOpset
                       << " is not supported; expected " << kMinOpset << " to "
                       << kMaxOpset;
    return nullptr;
  }
  const onnx::GraphProto &graph = model.graph();
  module = ModuleOp::create(fileLoc);
  OwningOpRef<ModuleOp> owner(module);
  if (!graph.name().empty())
    module.setSymName(graph.name());

  for (int i = 0; i < graph.initializer_size(); ++i) {
    const onnx::TensorProto &t = graph.initializer(i);
    if (t.name().empty()) {
      emitError(fileLoc) << "initializer " << i << " has no name";
      return nullptr;
    }
    initializers[t.name()] = {&t, i};
  }

  SmallVector<Type> argTypes;
  SmallVector<std::string> argNames;
  for (const auto &in : graph.input()) {
    if (initializers.count(in.name()))
      continue; // an initializer listed as input (IR < 4): a weight
    FailureOr<RankedTensorType> t = valueInfoType(in);
    if (failed(t))
      return nullptr;
    argTypes.push_back(*t);
    argNames.push_back(in.name());
  }
  builder.setInsertionPointToEnd(module.getBody());
  auto func = func::FuncOp::create(builder, fileLoc, opts.functionName,
                                   builder.getFunctionType(argTypes, {}));
  Block *entry = func.addEntryBlock();
  for (auto [i, name] : llvm::enumerate(argNames)) {
    values[name] = entry->getArgument(i);
    func.setArgAttr(i, "kiln.name", builder.getStringAttr(name));
  }
  builder.setInsertionPointToEnd(entry);

  for (int i = 0; i < graph.node_size(); ++i) {
    nodeIndex = i;
    builder.setInsertionPointToEnd(entry);
    if (failed(importNode(graph.node(i))))
      return nullptr;
  }
  node = nullptr;

  SmallVector<Value> results;
  for (const auto &out : graph.output()) {
    auto it = values.find(out.name());
    Value v;
    if (it != values.end()) {
      v = it->second;
    } else if (initializers.count(out.name())) {
      FailureOr<Value> w = initializerValue(out.name());
      if (failed(w))
        return nullptr;
      v = *w;
    } else {
      emitError(fileLoc) << "graph output '" << out.name()
                         << "' is not produced by any node";
      return nullptr;
    }
    // The declared type must agree with what the graph computes.
    FailureOr<RankedTensorType> declared = valueInfoType(out);
    if (failed(declared))
      return nullptr;
    auto computed = cast<RankedTensorType>(v.getType());
    Dims dd = getShapeExprs(*declared), cd = getShapeExprs(computed);
    bool ok = declared->getElementType() == computed.getElementType() &&
              dd.size() == cd.size();
    for (size_t i = 0; ok && i < dd.size(); ++i)
      ok = dimsCompatible(dd[i], cd[i]);
    if (!ok) {
      emitError(fileLoc) << "graph output '" << out.name()
                         << "' is declared as " << *declared
                         << " but the graph computes " << computed;
      return nullptr;
    }
    results.push_back(v);
  }
  builder.setInsertionPointToEnd(entry);
  func::ReturnOp::create(builder, fileLoc, results);
  func.setType(
      builder.getFunctionType(argTypes, ValueRange(results).getTypes()));
  for (auto [i, out] : llvm::enumerate(graph.output()))
    func.setResultAttr(i, "kiln.name", builder.getStringAttr(out.name()));
  if (failed(verify(module)))
    return nullptr;
  return owner;
}

//===----------------------------------------------------------------------===//
// Entry points
//===----------------------------------------------------------------------===//

static OwningOpRef<ModuleOp> importImpl(ArrayRef<uint8_t> bytes,
                                        StringRef displayName,
                                        StringRef blobFile, MLIRContext *ctx,
                                        WeightStore &store,
                                        const OnnxImportOptions &options) {
  ctx->loadDialect<KilnDialect, func::FuncDialect>();
  Location fileLoc = FileLineColLoc::get(ctx, displayName, 0, 0);
  if (bytes.empty()) {
    emitError(fileLoc) << "empty file; expected an ONNX model";
    return nullptr;
  }
  onnx::ModelProto model;
  std::map<int, ByteRange> raw;
  StringRef asText(reinterpret_cast<const char *>(bytes.data()), bytes.size());
  if (::kiln::looksLikeOnnxText(asText)) {
    // ONNX's textual syntax (tests and hand-written models).
    if (llvm::Error e = ::kiln::parseOnnxText(asText, model)) {
      emitError(fileLoc) << "cannot parse ONNX text: "
                         << llvm::toString(std::move(e));
      return nullptr;
    }
  } else if (llvm::Error e = ::kiln::parseModelLean(bytes, model, raw)) {
    emitError(fileLoc) << "cannot parse ONNX model: "
                       << llvm::toString(std::move(e));
    return nullptr;
  }
  Importer importer(ctx, store, options, displayName, blobFile);
  return importer.run(model, raw);
}

namespace kiln {
OwningOpRef<ModuleOp> importOnnxFile(StringRef path, MLIRContext *ctx,
                                     WeightStore &store,
                                     const OnnxImportOptions &options) {
  ctx->loadDialect<KilnDialect, func::FuncDialect>();
  StringRef fileName = llvm::sys::path::filename(path);
  llvm::Expected<uint64_t> size = store.openFile(fileName);
  if (!size) {
    emitError(FileLineColLoc::get(ctx, path, 0, 0))
        << llvm::toString(size.takeError());
    return nullptr;
  }
  llvm::Expected<ArrayRef<uint8_t>> bytes =
      store.getBytes(mlir::kiln::BlobAttr::get(ctx, fileName, 0, *size));
  if (!bytes) {
    emitError(FileLineColLoc::get(ctx, path, 0, 0))
        << llvm::toString(bytes.takeError());
    return nullptr;
  }
  return importImpl(*bytes, path, fileName, ctx, store, options);
}

OwningOpRef<ModuleOp> importOnnxBytes(ArrayRef<uint8_t> bytes, StringRef name,
                                      MLIRContext *ctx, WeightStore &store,
                                      const OnnxImportOptions &options) {
  ctx->loadDialect<KilnDialect, func::FuncDialect>();
  // Embedded weights must outlive the caller's buffer: keep a copy.
  mlir::kiln::BlobAttr copy =
      store.addBuffer(ctx, std::vector<uint8_t>(bytes.begin(), bytes.end()));
  llvm::Expected<ArrayRef<uint8_t>> held = store.getBytes(copy);
  if (!held) {
    llvm::consumeError(held.takeError());
    return nullptr;
  }
  return importImpl(*held, name, copy.getFile(), ctx, store, options);
}

void registerOnnxImportTranslation() {
  static llvm::cl::opt<int64_t> maxConstant(
      "onnx-max-constant-elements",
      llvm::cl::desc("initializers up to this many elements become "
                     "kiln.constant; larger ones become weights"),
      llvm::cl::init(64));
  TranslateToMLIRRegistration reg(
      "import-onnx", "import a binary ONNX model into the kiln dialect",
      [](llvm::SourceMgr &sourceMgr,
         MLIRContext *ctx) -> OwningOpRef<Operation *> {
        const llvm::MemoryBuffer *buffer =
            sourceMgr.getMemoryBuffer(sourceMgr.getMainFileID());
        StringRef name = buffer->getBufferIdentifier();
        OnnxImportOptions options;
        options.maxConstantElements = maxConstant;
        // The store must outlive the module: kiln-translate prints it after
        // this callback returns.
        static std::unique_ptr<WeightStore> store;
        if (llvm::sys::fs::exists(name) && name != "-") {
          store = std::make_unique<WeightStore>(
              llvm::sys::path::parent_path(name).str());
          return importOnnxFile(name, ctx, *store, options);
        }
        store = std::make_unique<WeightStore>(".");
        ArrayRef<uint8_t> bytes(
            reinterpret_cast<const uint8_t *>(buffer->getBufferStart()),
            buffer->getBufferSize());
        return importOnnxBytes(bytes, name, ctx, *store, options);
      },
      [](DialectRegistry &registry) {
        registry.insert<KilnDialect, func::FuncDialect>();
      });
}
} // namespace kiln
