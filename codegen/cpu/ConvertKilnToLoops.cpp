//===- ConvertKilnToLoops.cpp - the step function as buffers and loops ----===//
//
// Lowers the step function that --kiln-insert-kv-cache produced to a C
// entry point, `int kiln_model_step(const kiln_step_args *, const
// kiln_kernels *)` (runtime/include/kiln/model_abi.h), in the memref,
// linalg, scf and llvm dialects:
//
//  * Memory plan: every intermediate tensor gets a static byte offset in
//    one arena, sized for --max-batch-tokens; buffers whose lifetimes do not
//    overlap share bytes (linear scan, first fit). Reshapes alias their
//    input; splits and transposes are views of theirs (strided, read in
//    place) wherever every reader takes a strided operand. The logits are
//    written straight into the caller's buffer.
//  * Weights are views of the mapped weights file at the offsets the
//    artifact writer assigned (`kiln.offset` on each kiln.global).
//  * Matmuls with a weight and paged attention call the runtime's
//    micro-kernels through the kernel table; everything else becomes
//    linalg.generic / scf loops that LLVM vectorizes.
//  * Fusion: an elementwise producer read once by an elementwise op of its
//    shape is computed in that op's loop (no loop or buffer of its own),
//    and a residual add read by a norm in the norm's first pass over each
//    row (no loop of its own; a buffer only where something else reads the
//    sum).
//
//===----------------------------------------------------------------------===//

#include "codegen/cpu/CpuPasses.h"

#include "compiler/weights/WeightLayout.h"
#include "dialects/kiln/IR/KilnDialect.h"
#include "runtime/include/kiln/model_abi.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "llvm/ADT/TypeSwitch.h"

#include <map>

namespace mlir::kiln {
#define GEN_PASS_DEF_CONVERTKILNTOLOOPSPASS
#include "codegen/cpu/CpuPasses.h.inc"

namespace {

/// Field indices of kiln_step_args (model_abi.h); every field is 8 bytes.
enum StepField {
  kNumTokens = 0,
  kTokenIds = 1,
  kPositions = 2,
  kNumLogitRows = 9,
  kLogitRows = 10,
  kLogits = 11,
  kArena = 12,
  kWeights = 13,
  kPool = 14,
  kNumStepFields = 15,
};
/// Field indices of kiln_kernels after the two u32 header fields.
enum KernelField {
  kMatmul = 2,
  kAttention = 3,
  kMatmulBT = 4,
  kMatmulQuant = 5,
  kMatmulPacked = 6,
  kMatmulQuantA8 = 7,
  kNumKernelFields = 8,
};

constexpr int64_t kAlign = 64;

int64_t alignUp(int64_t v) { return (v + kAlign - 1) / kAlign * kAlign; }

int64_t elementBytes(Type t) {
  return std::max<int64_t>(1, (t.getIntOrFloatBitWidth() + 7) / 8);
}

/// The float8 types casts convert from and to (LLVM has no arithmetic on
/// them; their buffers hold the bytes).
static bool isFloat8(Type t) {
  return isa<Float8E4M3FNType, Float8E5M2Type, Float8E4M3FNUZType,
             Float8E5M2FNUZType>(t);
}

/// The element type of a buffer of `t`: unsigned integers are stored as
/// signless integers of their width (arith computes on signless integers;
/// the lowerings that care read the signedness from the kiln op's types),
/// float8 values as their bytes.
static Type storageType(Type t) {
  if (auto i = dyn_cast<IntegerType>(t); i && !i.isSignless())
    return IntegerType::get(t.getContext(), i.getWidth());
  if (isFloat8(t))
    return IntegerType::get(t.getContext(), 8);
  return t;
}

/// The element type of a tensor value as the kiln op sees it (unsigned
/// integers stay unsigned here; their buffers hold signless integers).
static Type tensorElementOf(Value v) {
  return cast<RankedTensorType>(v.getType()).getElementType();
}

/// Where a buffer lives: a base pointer and a byte offset from it.
struct Placement {
  Value ptr;   // !llvm.ptr
  Value bytes; // memref<?xi8> over the same memory
  int64_t offset = 0;
};

class StepLowering {
public:
  StepLowering(ModuleOp module, func::FuncOp graph, int64_t maxTokens,
               QuantCompute quantCompute)
      : module(module), graph(graph), maxTokens(maxTokens),
        quantCompute(quantCompute), ctx(module.getContext()), b(ctx) {}

  LogicalResult run();
  /// The graph mode: kiln_graph_run(inputs, outputs, arena, kernels).
  LogicalResult runGraph();

private:
  // Planning.
  LogicalResult planAndDeclareTypes();
  LogicalResult lowerBody(Block &entry);
  Value root(Value v) const;
  /// Where the elements of a tensor lie in the buffer of its root.
  struct View {
    Value base; // the root: a value with a buffer of its own
    DimExpr offset = DimExpr::constant(0); // in elements
    SmallVector<DimExpr> strides;          // in elements, per dimension
    Operation *origin = nullptr; // the in-place split/transpose that made it
  };
  View layoutOf(Value v) const;
  bool contiguous(Value v) const;
  std::optional<View> reshapedView(const View &in, Value input,
                                   Value result) const;
  bool readsViews(OpOperand &use, const View &view) const;
  void computeViews();
  void computeFusion();
  void computeAttentionRotary();
  bool isStepPositions(Value v);
  Operation *anchorOf(Operation *op) const;
  SmallVector<Value> fusedLeaves(Operation *op) const;
  AddOp residualAddOf(Operation *norm) const;
  FailureOr<Value> strideOf(Value tensor, int64_t dim, Operation *user);
  bool isSkippedTranspose(Operation *op) const;
  bool isSkippedDequantize(Operation *op) const;
  std::optional<int64_t> maxBytes(Value v) const;
  LogicalResult plan();

  // Building blocks.
  Value loadStepField(StepField field, Type type);
  Value bytesView(Value ptr);
  Value index(int64_t v) { return arith::ConstantIndexOp::create(b, loc, v); }
  FailureOr<Value> dimValue(const DimExpr &e, Operation *user);
  FailureOr<Value> memrefOf(Value tensor, Operation *user);
  FailureOr<Value> pointerOf(Value tensor, Operation *user);
  Value kernel(KernelField field);
  Value i64(int64_t v) {
    return LLVM::ConstantOp::create(b, loc, b.getI64Type(),
                                    b.getI64IntegerAttr(v));
  }
  Value toI64(Value idx) {
    return arith::IndexCastOp::create(b, loc, b.getI64Type(), idx);
  }

  // Ops.
  LogicalResult lower(Operation *op);
  LogicalResult lowerElementwise(Operation *op);
  LogicalResult lowerMatMul(MatMulOp op);
  LogicalResult lowerNorm(Operation *op, Value input, Value scale, Value bias,
                          int64_t axis, float eps, bool rms);
  LogicalResult lowerQuantMatMul(MatMulOp op, DequantizeOp dq);
  LogicalResult lowerQuantGather(GatherOp op, DequantizeOp dq);
  LogicalResult lowerPagedAttention(PagedAttentionOp op);
  LogicalResult lowerRotary(RotaryOp op);
  LogicalResult lowerReduce(Operation *op, ArrayRef<int64_t> axes,
                            bool keepdims);
  LogicalResult lowerSoftmax(Operation *op, int64_t axis, bool log);
  FailureOr<Value> view3d(Value tensor, int64_t axis, Operation *user);
  LogicalResult lowerGather(GatherOp op);
  LogicalResult lowerSlice(SliceOp op);
  LogicalResult lowerConcat(ConcatOp op);
  LogicalResult lowerSplit(SplitOp op);
  LogicalResult lowerTrilu(TriluOp op);
  LogicalResult lowerArgMax(ArgMaxOp op);
  LogicalResult lowerGatherElements(GatherElementsOp op);
  LogicalResult lowerGatherND(GatherNDOp op);
  LogicalResult lowerScatterND(ScatterNDOp op);
  LogicalResult lowerRange(RangeOp op);
  LogicalResult lowerConstantOfShape(ConstantOfShapeOp op);
  LogicalResult lowerDequantizeLinear(DequantizeLinearOp op);
  LogicalResult lowerQuantizeLinear(QuantizeLinearOp op);
  LogicalResult lowerAttention(AttentionOp op);
  LogicalResult dispatch(Operation *op);
  LogicalResult outlined(Operation *op);
  void emitGeneric(ValueRange inputs, Value output,
                   function_ref<Value(OpBuilder &, Location, ValueRange)> body);

  ModuleOp module;
  func::FuncOp graph;
  int64_t maxTokens;
  QuantCompute quantCompute;
  MLIRContext *ctx;
  OpBuilder b;
  Location loc = UnknownLoc::get(ctx);

  // Plan.
  DenseMap<Value, int64_t> arenaOffset;
  DenseMap<Value, View> views; // every value without its own buffer
  llvm::SmallPtrSet<Operation *, 32> inPlace; // splits/transposes as views
  llvm::SmallPtrSet<Operation *, 32> fused;   // computed in their user's loop
  /// Rotaries of q and k that paged attention applies (model_abi.h).
  llvm::SmallPtrSet<Operation *, 32> rotaryInAttention;
  /// Transposes that paged attention writes directly: its result is a
  /// view of theirs.
  llvm::SmallPtrSet<Operation *, 32> writtenTransposed;
  /// Residual adds computed in the row loop of the norm that reads them
  /// (add -> norm).
  DenseMap<Operation *, Operation *> addNorms;
  Value output; // root of the returned value
  int64_t arenaBytes = 0;

  // Lowering state.
  Value stepArg, kernelsArg;
  Value arenaPtr, arenaBytesView, weightsPtr, weightsBytesView, poolPtr;
  DenseMap<Value, Placement> placements;
  DenseMap<Value, Value> memrefs;
  std::map<std::string, Value> symbols;
  LLVM::LLVMStructType stepType, kernelsType;
  int constantCount = 0;
  /// Loop nests are outlined into functions; ops that differ only in their
  /// buffers (the same op in every layer) share one.
  llvm::StringMap<func::FuncOp> outlinedFunctions;
};

/// The operands an elementwise op reads element by element (not an
/// expand's target shape).
static SmallVector<Value> elementwiseOperands(Operation *op) {
  if (isa<ExpandOp>(op))
    return {op->getOperand(0)};
  return SmallVector<Value>(op->getOperands());
}

/// Ops computed element by element in one loop (lowerElementwise, as is a
/// transpose that copies), which fuse: a producer
/// with one use, by another such op of its own shape, computes its
/// element inside that op's loop instead of into a buffer of its own.
static bool isFusibleElementwise(Operation *op) {
  return isa<AddOp, SubOp, MulOp, DivOp, PowOp, MaxOp, MinOp, AndOp, OrOp,
             NegOp, SqrtOp, ReciprocalOp, ExpOp, LogOp, TanhOp, ErfOp, CosOp,
             SinOp, AbsOp, SigmoidOp, ReluOp, GeluOp, GluOp, WhereOp, ExpandOp,
             EqualOp, LessOp, GreaterOp, LessEqualOp, GreaterEqualOp, IsNaNOp,
             NotOp, CastOp>(op);
}

Value StepLowering::root(Value v) const {
  auto it = views.find(v);
  return it == views.end() ? v : it->second.base;
}

static SmallVector<DimExpr> shapeOf(Value v) {
  return getShapeExprs(cast<RankedTensorType>(v.getType()));
}

static SmallVector<DimExpr> contiguousStrides(ArrayRef<DimExpr> dims) {
  SmallVector<DimExpr> strides(dims.size(), DimExpr::constant(1));
  for (int64_t i = static_cast<int64_t>(dims.size()) - 2; i >= 0; --i)
    strides[i] = strides[i + 1] * dims[i + 1];
  return strides;
}

StepLowering::View StepLowering::layoutOf(Value v) const {
  auto it = views.find(v);
  if (it != views.end())
    return it->second;
  View own;
  own.base = v;
  if (isa<RankedTensorType>(v.getType())) // not a quantized weight
    own.strides = contiguousStrides(shapeOf(v));
  return own;
}

/// Whether `v`'s elements lie in row-major order (at some offset): an
/// identity-layout memref.view reads it. Strides of size-1 dimensions do
/// not matter.
bool StepLowering::contiguous(Value v) const {
  View view = layoutOf(v);
  SmallVector<DimExpr> dims = shapeOf(v);
  SmallVector<DimExpr> want = contiguousStrides(dims);
  for (size_t i = 0; i < dims.size(); ++i)
    if (dims[i].getConstant() != 1 && view.strides[i] != want[i])
      return false;
  return true;
}

/// The view a reshape of `in` (the layout of `input`) gives `result`, if
/// one exists: dimensions map one to one, or static runs of dimensions
/// split or merge where the merged ones are contiguous among themselves.
std::optional<StepLowering::View>
StepLowering::reshapedView(const View &in, Value input, Value result) const {
  SmallVector<DimExpr> from = shapeOf(input), to = shapeOf(result);
  View out = in;
  out.strides.assign(to.size(), DimExpr::constant(1));
  auto isOne = [](const DimExpr &d) { return d.getConstant() == 1; };
  size_t i = 0, j = 0;
  auto skipOnes = [&] {
    while (i < from.size() && isOne(from[i]))
      ++i;
    while (j < to.size() && isOne(to[j]))
      ++j;
  };
  for (skipOnes(); i < from.size() && j < to.size(); skipOnes()) {
    if (from[i] == to[j]) {
      out.strides[j++] = in.strides[i++];
      continue;
    }
    std::optional<int64_t> a = from[i].getConstant(), c = to[j].getConstant();
    if (!a || !c)
      return std::nullopt;
    size_t i0 = i, j0 = j;
    int64_t pin = *a, pout = *c;
    while (pin != pout) {
      std::optional<int64_t> next =
          pin < pout
              ? (++i < from.size() ? from[i].getConstant() : std::nullopt)
              : (++j < to.size() ? to[j].getConstant() : std::nullopt);
      if (!next)
        return std::nullopt;
      (pin < pout ? pin : pout) *= *next;
    }
    for (size_t k = i0; k < i; ++k)
      if (in.strides[k] != in.strides[k + 1] * from[k + 1])
        return std::nullopt;
    out.strides[j] = in.strides[i];
    for (size_t k = j; k > j0; --k)
      out.strides[k - 1] = out.strides[k] * to[k];
    ++i, ++j;
  }
  skipOnes();
  if (i != from.size() || j != to.size())
    return std::nullopt;
  return out;
}

/// Whether `use` can read `view` of its operand in place: loops through a
/// strided memref, or a kernel through a pointer and strides.
bool StepLowering::readsViews(OpOperand &use, const View &view) const {
  Operation *user = use.getOwner();
  unsigned n = use.getOperandNumber();
  auto innerUnit = [&] { return view.strides.back().getConstant() == 1; };
  auto leadingOnes = [&](int64_t keep) {
    auto type = cast<RankedTensorType>(use.get().getType());
    for (int64_t i = 0; i + keep < type.getRank(); ++i)
      if (type.getDimSize(i) != 1)
        return false;
    return true;
  };
  if (isa<ReshapeOp>(user) || inPlace.contains(user))
    return true; // the result is a view in turn, checked at its own readers
  if (isFusibleElementwise(user) || isa<TransposeOp, RotaryOp>(user))
    return true; // loops over strided memrefs
  if (isa<PagedAttentionOp>(user))
    return n >= 1 && innerUnit() && leadingOnes(3);
  if (auto mm = dyn_cast<MatMulOp>(user))
    return n == 0 && isKernelMatMul(mm) && innerUnit() && leadingOnes(2);
  return false;
}

/// Chooses the splits and transposes read in place and computes every
/// view. Starts from all of them and gives up, one at a time, those with
/// a reader that needs a buffer of its own.
void StepLowering::computeViews() {
  Block &body = graph.getBody().front();
  // Paged attention writes its output with strides: read only by a
  // transpose to [1, tokens, heads, d] (before the output projection), it
  // writes that layout, and the transpose costs nothing.
  writtenTransposed.clear();
  for (Operation &op : body) {
    auto t = dyn_cast<TransposeOp>(op);
    auto attn = t ? t.getInput().getDefiningOp<PagedAttentionOp>() : nullptr;
    if (attn && attn.getResult().hasOneUse() &&
        t.getPerm() == ArrayRef<int64_t>{0, 2, 1, 3} &&
        llvm::none_of(t.getResult().getUsers(),
                      [](Operation *u) { return isa<func::ReturnOp>(u); }))
      writtenTransposed.insert(t);
  }
  inPlace.clear();
  for (Operation &op : body) {
    bool candidate =
        isa<SplitOp>(op) || (isa<TransposeOp>(op) && !isSkippedTranspose(&op) &&
                             !writtenTransposed.contains(&op));
    if (candidate && !isa_and_nonnull<WeightOp, ConstantOp>(
                         root(op.getOperand(0)).getDefiningOp()))
      inPlace.insert(&op);
  }
  while (true) {
    views.clear();
    for (Operation *op : writtenTransposed) {
      auto t = cast<TransposeOp>(op);
      View out = layoutOf(t.getResult());
      View in = out;
      for (auto [j, p] : llvm::enumerate(t.getPerm()))
        in.strides[p] = out.strides[j];
      views[t.getInput()] = in;
    }
    Operation *giveUp = nullptr;
    for (Operation &op : body) {
      if (auto r = dyn_cast<ReshapeOp>(op)) {
        View in = layoutOf(r.getInput());
        if (contiguous(r.getInput())) {
          in.strides = contiguousStrides(shapeOf(r.getResult()));
          views[r.getResult()] = in;
          continue;
        }
        std::optional<View> v = reshapedView(in, r.getInput(), r.getResult());
        if (!v) {
          giveUp = in.origin;
          break;
        }
        views[r.getResult()] = *v;
        continue;
      }
      if (!inPlace.contains(&op))
        continue;
      View in = layoutOf(op.getOperand(0));
      in.origin = &op;
      if (auto t = dyn_cast<TransposeOp>(op)) {
        View v = in;
        for (auto [j, p] : llvm::enumerate(t.getPerm()))
          v.strides[j] = in.strides[p];
        views[t.getResult()] = v;
        continue;
      }
      auto split = cast<SplitOp>(op);
      int64_t axis = split.getAxis();
      DimExpr start = DimExpr::constant(0);
      for (Value piece : split.getResults()) {
        View v = in;
        v.offset = in.offset + start * in.strides[axis];
        views[piece] = v;
        start = start + shapeOf(piece)[axis];
      }
    }
    if (!giveUp)
      for (Operation &op : body) {
        for (OpOperand &use : op.getOpOperands()) {
          auto it = views.find(use.get());
          if (it == views.end() || !it->second.origin)
            continue;
          if (isa<func::ReturnOp>(op) ||
              (!contiguous(use.get()) && !readsViews(use, it->second))) {
            giveUp = it->second.origin;
            break;
          }
        }
        if (giveUp)
          break;
      }
    if (!giveUp)
      return;
    inPlace.erase(giveUp);
  }
}

/// `transpose(w)` of a static 2-D matrix read only as matmul right-hand
/// sides: the matmul reads w as [N][K] instead.
bool StepLowering::isSkippedTranspose(Operation *op) const {
  auto t = dyn_cast<TransposeOp>(op);
  if (!t || t.getPerm().size() != 2 || t.getPerm()[0] != 1)
    return false;
  auto in = cast<RankedTensorType>(t.getInput().getType());
  if (!in.hasStaticShape() || !in.getElementType().isF32())
    return false;
  for (OpOperand &use : t.getResult().getUses()) {
    auto mm = dyn_cast<MatMulOp>(use.getOwner());
    if (!mm || use.getOperandNumber() != 1)
      return false;
  }
  return true;
}

/// The quantization schemes the quantized matmul kernel reads: unsigned 4-
/// or 8-bit weights stored [N][K], grouped along K, f32 scales, implied or
/// stored integer zero points. Anything else has no kernel (nullopt gives
/// the reason).
static std::optional<std::string> quantKernelMismatch(QTensorType type) {
  QuantAttr q = type.getQuant();
  if (type.getShape().size() != 2 || q.getAxis() != 1)
    return std::string("the weight is not [N][K] grouped along K (axis 1)");
  if ((q.getBits() != 4 && q.getBits() != 8) || q.getIsSigned())
    return std::string("only unsigned 4- and 8-bit weights have a kernel");
  int64_t k = type.getShape()[1];
  if (q.getGroupSize() <= 0 || q.getGroupSize() % 2 != 0 ||
      k % q.getGroupSize() != 0)
    return std::string("the group size must be even and divide K");
  if (!q.getScaleType().isF32())
    return std::string("only f32 scales have a kernel");
  if (q.getZeroPoint() != ZeroPointKind::Mid &&
      q.getZeroPoint() != ZeroPointKind::Int)
    return std::string("only implied or integer zero points have a kernel");
  return std::nullopt;
}

/// Whether a quantized matmul rounds its activations to int8
/// (matmul_quant_a8_f32): onnxruntime 1.31 does so for MatMulNBits at
/// accuracy_level 4 with 4- and 8-bit weights and every block size it
/// accepts (16 to 256; measured on AVX-512 VNNI against its fp32 result).
static bool int8Activations(MatMulOp op, QuantAttr quant, QuantCompute mode) {
  int64_t g = quant.getGroupSize();
  bool kernel = g >= 16 && g <= 256 && (g & (g - 1)) == 0;
  switch (mode) {
  case QuantCompute::F32:
    return false;
  case QuantCompute::Int8:
    return kernel;
  case QuantCompute::Auto:
    return kernel && op.getAccuracyLevel() == 4;
  }
  llvm_unreachable("unknown QuantCompute");
}

/// `dequantize(weight)` read only through skipped transposes by matmuls:
/// the quantized matmul kernel reads the packed weight directly.
bool StepLowering::isSkippedDequantize(Operation *op) const {
  auto dq = dyn_cast<DequantizeOp>(op);
  if (!dq || !dq.getInput().getDefiningOp<WeightOp>() ||
      quantKernelMismatch(cast<QTensorType>(dq.getInput().getType())))
    return false;
  for (OpOperand &use : dq.getResult().getUses()) {
    auto gather = dyn_cast<GatherOp>(use.getOwner());
    bool rowGather = gather && use.getOperandNumber() == 0 &&
                     gather.getAxis() == 0 &&
                     gather.getResult().getType().getElementType().isF32();
    if (!rowGather && !isSkippedTranspose(use.getOwner()))
      return false;
  }
  return true;
}

/// A gather of rows of a quantized table (an embedding) read straight from
/// the packed weight.
static DequantizeOp quantizedTableOf(GatherOp op) {
  return op.getInput().getDefiningOp<DequantizeOp>();
}

std::optional<int64_t> StepLowering::maxBytes(Value v) const {
  auto type = dyn_cast<RankedTensorType>(v.getType());
  if (!type)
    return std::nullopt;
  int64_t n = elementBytes(type.getElementType());
  std::map<std::string, DimExpr> at = {
      {"tokens", DimExpr::constant(maxTokens)},
      {"logit_rows", DimExpr::constant(maxTokens)}};
  for (const DimExpr &d : getShapeExprs(type)) {
    std::optional<int64_t> c = d.substitute(at).getConstant();
    if (!c || *c < 0)
      return std::nullopt;
    n *= *c;
  }
  return n;
}

LogicalResult StepLowering::plan() {
  Block &body = graph.getBody().front();
  computeViews();
  computeFusion();
  computeAttentionRotary();

  // Last use of every root, counting uses through aliases.
  DenseMap<Operation *, int64_t> order;
  int64_t i = 0;
  for (Operation &op : body)
    order[&op] = i++;
  // A fused producer's operands are read by its user's loop, a residual
  // add's by its norm's.
  DenseMap<Value, int64_t> lastUse;
  for (Operation &op : body)
    for (Value operand : op.getOperands()) {
      Value r = root(operand);
      lastUse[r] = std::max(lastUse.lookup(r), order[anchorOf(&op)]);
    }

  // Linear scan over the arena: live intervals [offset, offset + size).
  struct Live {
    int64_t offset, size, end;
  };
  std::vector<Live> live;
  for (Operation &op : body) {
    int64_t now = order[&op];
    llvm::erase_if(live, [&](const Live &l) { return l.end < now; });
    if (isa<ReshapeOp, WeightOp, ConstantOp, func::ReturnOp>(op) ||
        inPlace.contains(&op) || fused.contains(&op) ||
        rotaryInAttention.contains(&op) || writtenTransposed.contains(&op) ||
        isSkippedTranspose(&op) || isSkippedDequantize(&op))
      continue;
    // A residual add read by its norm alone: the norm keeps the sum in its
    // own output. One with other readers has its buffer from here on, a
    // little earlier than the norm that writes it.
    if (addNorms.count(&op) && op.getResult(0).hasOneUse())
      continue;
    for (Value r : op.getResults()) {
      // A result that is a view of a later op's (writtenTransposed): that
      // buffer is taken here, where it is first written.
      if (auto it = views.find(r); it != views.end())
        r = it->second.base;
      if (r == output || !isa<RankedTensorType>(r.getType()))
        continue;
      std::optional<int64_t> bytes = maxBytes(r);
      if (!bytes)
        return op.emitError()
               << "cannot size the buffer of result #"
               << cast<OpResult>(r).getResultNumber() << " (" << r.getType()
               << "): its dimensions must be static or "
                  "depend only on the step's tokens";
      int64_t size = alignUp(std::max<int64_t>(*bytes, 1));
      std::sort(live.begin(), live.end(), [](const Live &a, const Live &c) {
        return a.offset < c.offset;
      });
      int64_t offset = 0;
      for (const Live &l : live) {
        if (offset + size <= l.offset)
          break;
        offset = std::max(offset, alignUp(l.offset + l.size));
      }
      // A result nobody reads still needs its bytes during the op.
      int64_t end = lastUse.count(r) ? lastUse[r] : now;
      live.push_back({offset, size, end});
      arenaOffset[r] = offset;
      arenaBytes = std::max(arenaBytes, offset + size);
    }
  }
  return success();
}

Value StepLowering::loadStepField(StepField field, Type type) {
  auto ptrType = LLVM::LLVMPointerType::get(ctx);
  Value addr = LLVM::GEPOp::create(
      b, loc, ptrType, stepType, stepArg,
      ArrayRef<LLVM::GEPArg>{0, static_cast<int32_t>(field)});
  return LLVM::LoadOp::create(b, loc, type, addr);
}

/// A memref<?xi8> over the memory at `ptr` (its size is not checked: the
/// plan guarantees every view fits).
Value StepLowering::bytesView(Value ptr) {
  auto i64Type = b.getI64Type();
  auto ptrType = LLVM::LLVMPointerType::get(ctx);
  auto arrayType = LLVM::LLVMArrayType::get(i64Type, 1);
  auto descType = LLVM::LLVMStructType::getLiteral(
      ctx, {ptrType, ptrType, i64Type, arrayType, arrayType});
  Value desc = LLVM::PoisonOp::create(b, loc, descType);
  desc = LLVM::InsertValueOp::create(b, loc, desc, ptr, ArrayRef<int64_t>{0});
  desc = LLVM::InsertValueOp::create(b, loc, desc, ptr, ArrayRef<int64_t>{1});
  desc =
      LLVM::InsertValueOp::create(b, loc, desc, i64(0), ArrayRef<int64_t>{2});
  desc = LLVM::InsertValueOp::create(b, loc, desc, i64(INT64_MAX / 2),
                                     ArrayRef<int64_t>{3, 0});
  desc = LLVM::InsertValueOp::create(b, loc, desc, i64(1),
                                     ArrayRef<int64_t>{4, 0});
  auto memrefType = MemRefType::get({ShapedType::kDynamic}, b.getI8Type());
  return UnrealizedConversionCastOp::create(b, loc, memrefType, desc)
      .getResult(0);
}

FailureOr<Value> StepLowering::dimValue(const DimExpr &e, Operation *user) {
  if (e.isUnknown())
    return user->emitError("a dimension of an operand is unknown; the CPU "
                           "backend needs every size static or named");
  Value sum = index(0);
  for (const auto &[monomial, coefficient] : e.getTerms()) {
    Value term = index(coefficient);
    for (const std::string &name : monomial) {
      auto it = symbols.find(name);
      if (it == symbols.end())
        return user->emitError() << "dimension '" << name
                                 << "' is not known in a step (only tokens "
                                    "and logit_rows are)";
      term = arith::MulIOp::create(b, loc, term, it->second);
    }
    sum = arith::AddIOp::create(b, loc, sum, term);
  }
  return sum;
}

FailureOr<Value> StepLowering::memrefOf(Value tensor, Operation *user) {
  if (Value m = memrefs.lookup(tensor))
    return m;
  Value r = root(tensor);
  auto it = placements.find(r);
  if (it == placements.end())
    return user->emitError("operand has no buffer (its producer was not "
                           "lowered)");
  auto type = cast<RankedTensorType>(tensor.getType());
  Type elt = storageType(type.getElementType());
  View view = layoutOf(tensor);
  auto sizeValues = [&](Value of) -> FailureOr<SmallVector<Value>> {
    SmallVector<Value> dynSizes;
    auto t = cast<RankedTensorType>(of.getType());
    SmallVector<DimExpr> dims = shapeOf(of);
    for (int64_t i = 0; i < t.getRank(); ++i)
      if (t.isDynamicDim(i)) {
        FailureOr<Value> d = dimValue(dims[i], user);
        if (failed(d))
          return failure();
        dynSizes.push_back(*d);
      }
    return dynSizes;
  };
  if (contiguous(tensor)) {
    FailureOr<Value> offset = dimValue(view.offset, user);
    FailureOr<SmallVector<Value>> dynSizes = sizeValues(tensor);
    if (failed(offset) || failed(dynSizes))
      return failure();
    std::optional<int64_t> constant = view.offset.getConstant();
    Value bytes = constant
                      ? index(it->second.offset + *constant * elementBytes(elt))
                      : arith::AddIOp::create(
                            b, loc, index(it->second.offset),
                            arith::MulIOp::create(b, loc, *offset,
                                                  index(elementBytes(elt))))
                            .getResult();
    Value m =
        memref::ViewOp::create(b, loc, MemRefType::get(type.getShape(), elt),
                               it->second.bytes, bytes, *dynSizes);
    memrefs[tensor] = m;
    return m;
  }
  // A strided view: the root's elements as one dimension, reinterpreted.
  DimExpr count = DimExpr::constant(1);
  for (const DimExpr &d : shapeOf(r))
    count = count * d;
  FailureOr<Value> n = dimValue(count, user);
  if (failed(n))
    return failure();
  Value flat = memref::ViewOp::create(
      b, loc, MemRefType::get({ShapedType::kDynamic}, elt), it->second.bytes,
      index(it->second.offset), ValueRange{*n});
  auto mixed = [&](const DimExpr &e) -> FailureOr<OpFoldResult> {
    if (std::optional<int64_t> c = e.getConstant())
      return OpFoldResult(b.getIndexAttr(*c));
    FailureOr<Value> v = dimValue(e, user);
    if (failed(v))
      return failure();
    return OpFoldResult(*v);
  };
  auto staticOf = [](const DimExpr &e) {
    return e.getConstant().value_or(ShapedType::kDynamic);
  };
  SmallVector<OpFoldResult> sizes, strides;
  SmallVector<int64_t> staticStrides;
  for (auto [d, stride] : llvm::zip(shapeOf(tensor), view.strides)) {
    FailureOr<OpFoldResult> size = mixed(d), st = mixed(stride);
    if (failed(size) || failed(st))
      return failure();
    sizes.push_back(*size);
    strides.push_back(*st);
    staticStrides.push_back(staticOf(stride));
  }
  FailureOr<OpFoldResult> offset = mixed(view.offset);
  if (failed(offset))
    return failure();
  auto layout =
      StridedLayoutAttr::get(ctx, staticOf(view.offset), staticStrides);
  auto memrefType = MemRefType::get(type.getShape(), elt, layout);
  Value m = memref::ReinterpretCastOp::create(b, loc, memrefType, flat, *offset,
                                              sizes, strides);
  memrefs[tensor] = m;
  return m;
}

// Byte offsets go in as i64 values: the LLVM dialect's constant GEP
// indices are narrower than a large weights file.
FailureOr<Value> StepLowering::pointerOf(Value tensor, Operation *user) {
  auto it = placements.find(root(tensor));
  if (it == placements.end())
    return user->emitError("operand has no buffer");
  auto ptrType = LLVM::LLVMPointerType::get(ctx);
  Value bytes = i64(it->second.offset);
  View view = layoutOf(tensor);
  if (view.offset.getConstant() != 0) {
    FailureOr<Value> offset = dimValue(view.offset, user);
    if (failed(offset))
      return failure();
    int64_t eb =
        elementBytes(cast<RankedTensorType>(tensor.getType()).getElementType());
    bytes = LLVM::AddOp::create(
        b, loc, bytes, LLVM::MulOp::create(b, loc, toI64(*offset), i64(eb)));
  }
  return LLVM::GEPOp::create(b, loc, ptrType, b.getI8Type(), it->second.ptr,
                             ArrayRef<LLVM::GEPArg>{bytes})
      .getResult();
}

/// The stride of dimension `dim` of `tensor` in elements, as an i64.
FailureOr<Value> StepLowering::strideOf(Value tensor, int64_t dim,
                                        Operation *user) {
  DimExpr stride = layoutOf(tensor).strides[dim]; // a copy: View is a value
  if (std::optional<int64_t> c = stride.getConstant())
    return i64(*c);
  FailureOr<Value> s = dimValue(stride, user);
  if (failed(s))
    return failure();
  return toI64(*s);
}

Value StepLowering::kernel(KernelField field) {
  auto ptrType = LLVM::LLVMPointerType::get(ctx);
  Value addr = LLVM::GEPOp::create(
      b, loc, ptrType, kernelsType, kernelsArg,
      ArrayRef<LLVM::GEPArg>{0, static_cast<int32_t>(field)});
  return LLVM::LoadOp::create(b, loc, ptrType, addr);
}

void StepLowering::emitGeneric(
    ValueRange inputs, Value output,
    function_ref<Value(OpBuilder &, Location, ValueRange)> body) {
  auto outType = cast<MemRefType>(output.getType());
  int64_t rank = outType.getRank();
  SmallVector<AffineMap> maps;
  for (Value in : inputs) {
    auto inType = cast<MemRefType>(in.getType());
    SmallVector<AffineExpr> exprs;
    int64_t lead = rank - inType.getRank();
    for (int64_t i = 0; i < inType.getRank(); ++i) {
      bool broadcast =
          inType.getDimSize(i) == 1 && outType.getDimSize(lead + i) != 1;
      exprs.push_back(broadcast ? getAffineConstantExpr(0, ctx)
                                : getAffineDimExpr(lead + i, ctx));
    }
    maps.push_back(AffineMap::get(rank, 0, exprs, ctx));
  }
  maps.push_back(AffineMap::getMultiDimIdentityMap(rank, ctx));
  SmallVector<utils::IteratorType> iterators(rank,
                                             utils::IteratorType::parallel);
  linalg::GenericOp::create(b, loc, TypeRange{}, inputs, ValueRange{output},
                            maps, iterators,
                            [&](OpBuilder &nb, Location l, ValueRange args) {
                              Value r = body(nb, l, args.drop_back());
                              linalg::YieldOp::create(nb, l, r);
                            });
}

/// `v` converted between floating-point types (no-op when equal).
static Value convertFloat(OpBuilder &nb, Location l, Value v, Type to) {
  Type from = v.getType();
  if (from == to)
    return v;
  if (from.getIntOrFloatBitWidth() < to.getIntOrFloatBitWidth())
    return arith::ExtFOp::create(nb, l, to, v);
  return arith::TruncFOp::create(nb, l, to, v);
}

/// base^exponent on integers, by squaring over the exponent's bits (no
/// intrinsic: math.ipowi has no LLVM lowering). A negative exponent gives
/// what truncating 1 / base^-e gives: 1 or -1 for a base of 1 or -1, else 0.
static Value integerPower(OpBuilder &nb, Location l, Value base, Value exp,
                          bool isUnsigned) {
  Type t = base.getType();
  unsigned width = t.getIntOrFloatBitWidth();
  auto c = [&](int64_t v) -> Value {
    return arith::ConstantOp::create(nb, l, t, nb.getIntegerAttr(t, v));
  };
  Value lo = arith::ConstantIndexOp::create(nb, l, 0);
  Value hi = arith::ConstantIndexOp::create(nb, l, width);
  Value one = arith::ConstantIndexOp::create(nb, l, 1);
  auto loop = scf::ForOp::create(
      nb, l, lo, hi, one, ValueRange{c(1), base, exp},
      [&](OpBuilder &kb, Location kl, Value, ValueRange acc) {
        Value bit = arith::AndIOp::create(kb, kl, acc[2], c(1));
        Value set =
            arith::CmpIOp::create(kb, kl, arith::CmpIPredicate::ne, bit, c(0));
        Value r = arith::SelectOp::create(
            kb, kl, set, arith::MulIOp::create(kb, kl, acc[0], acc[1]), acc[0]);
        scf::YieldOp::create(
            kb, kl,
            ValueRange{r, arith::MulIOp::create(kb, kl, acc[1], acc[1]),
                       arith::ShRUIOp::create(kb, kl, acc[2], c(1))});
      });
  Value r = loop.getResult(0);
  if (isUnsigned || width == 1)
    return r;
  Value negative =
      arith::CmpIOp::create(nb, l, arith::CmpIPredicate::slt, exp, c(0));
  Value odd =
      arith::CmpIOp::create(nb, l, arith::CmpIPredicate::ne,
                            arith::AndIOp::create(nb, l, exp, c(1)), c(0));
  Value isOne =
      arith::CmpIOp::create(nb, l, arith::CmpIPredicate::eq, base, c(1));
  Value isMinusOne =
      arith::CmpIOp::create(nb, l, arith::CmpIPredicate::eq, base, c(-1));
  Value inverse = arith::SelectOp::create(
      nb, l, isOne, c(1),
      arith::SelectOp::create(nb, l, isMinusOne,
                              arith::SelectOp::create(nb, l, odd, c(-1), c(1)),
                              c(0)));
  return arith::SelectOp::create(nb, l, negative, inverse, r);
}

/// The f32 value of the float8 `byte` of `type`: a 256-entry table in a
/// constant global, made from APFloat once per type.
static Value decodeFloat8(OpBuilder &nb, Location l, ModuleOp module,
                          Value byte, Type type) {
  std::string name;
  llvm::raw_string_ostream os(name);
  os << "__kiln_" << type << "_to_f32";
  auto tableType = MemRefType::get({256}, nb.getF32Type());
  if (!module.lookupSymbol(name)) {
    OpBuilder::InsertionGuard guard(nb);
    nb.setInsertionPointToStart(module.getBody());
    SmallVector<float> values;
    const llvm::fltSemantics &sem = cast<FloatType>(type).getFloatSemantics();
    for (unsigned i = 0; i < 256; ++i) {
      APFloat f(sem, APInt(8, i));
      bool lost;
      f.convert(APFloat::IEEEsingle(), APFloat::rmNearestTiesToEven, &lost);
      values.push_back(f.convertToFloat());
    }
    memref::GlobalOp::create(
        nb, l, name, nb.getStringAttr("private"), tableType,
        DenseElementsAttr::get(RankedTensorType::get({256}, nb.getF32Type()),
                               ArrayRef<float>(values)),
        /*constant=*/true, nb.getI64IntegerAttr(kAlign));
  }
  Value table = memref::GetGlobalOp::create(nb, l, tableType, name);
  Value at = arith::IndexCastUIOp::create(nb, l, nb.getIndexType(), byte);
  return memref::LoadOp::create(nb, l, table, at);
}

/// The byte of the float8 `type` nearest to the f32 `x` (ties to even).
/// Saturating, infinities and values beyond the largest finite one become
/// that value (with their sign); otherwise infinities in f8E5M2 and NaN in
/// the types without. The FNUZ types have no negative zero.
static Value encodeFloat8(OpBuilder &nb, Location l, Value x, Type type,
                          bool saturate) {
  const llvm::fltSemantics &sem = cast<FloatType>(type).getFloatSemantics();
  int64_t mbits = APFloat::semanticsPrecision(sem) - 1;
  auto toFloat = [](APFloat f) {
    bool lost;
    f.convert(APFloat::IEEEsingle(), APFloat::rmNearestTiesToEven, &lost);
    return f.convertToFloat();
  };
  float maxFinite = toFloat(APFloat::getLargest(sem));
  APFloat minNormalF = APFloat::getSmallestNormalized(sem);
  float minNormal = toFloat(minNormalF);
  int64_t minExp = ilogb(minNormalF); // 1 - bias
  bool fnuz = isa<Float8E4M3FNUZType, Float8E5M2FNUZType>(type);
  bool hasInf = isa<Float8E5M2Type>(type);
  Type i32 = nb.getI32Type(), f32 = nb.getF32Type();
  auto ci = [&](int64_t v) -> Value {
    return arith::ConstantIntOp::create(nb, l, i32, v);
  };
  auto cf = [&](float v) -> Value {
    return arith::ConstantOp::create(nb, l, f32, nb.getF32FloatAttr(v));
  };
  auto exponentOf = [&](Value f) -> Value { // unbiased f32 exponent
    Value bits = arith::BitcastOp::create(nb, l, i32, f);
    return arith::SubIOp::create(
        nb, l,
        arith::AndIOp::create(
            nb, l, arith::ShRUIOp::create(nb, l, bits, ci(23)), ci(0xff)),
        ci(127));
  };
  Value sign = arith::ShRUIOp::create(
      nb, l, arith::BitcastOp::create(nb, l, i32, x), ci(31));
  Value a = math::AbsFOp::create(nb, l, x);
  // Round to the spacing of a's binade in the target (the subnormal
  // spacing below its smallest normal): a power of two, so exact.
  Value qexp = arith::SubIOp::create(
      nb, l, arith::MaxSIOp::create(nb, l, exponentOf(a), ci(minExp)),
      ci(mbits));
  Value quantum = arith::BitcastOp::create(
      nb, l, f32,
      arith::ShLIOp::create(nb, l, arith::AddIOp::create(nb, l, qexp, ci(127)),
                            ci(23)));
  Value r = arith::MulFOp::create(
      nb, l,
      math::RoundEvenOp::create(nb, l,
                                arith::DivFOp::create(nb, l, a, quantum)),
      quantum);
  Value over =
      arith::CmpFOp::create(nb, l, arith::CmpFPredicate::OGT, r, cf(maxFinite));
  Value rc = arith::SelectOp::create(nb, l, over, cf(maxFinite), r);
  Value rbits = arith::BitcastOp::create(nb, l, i32, rc);
  Value normal = arith::CmpFOp::create(nb, l, arith::CmpFPredicate::OGE, rc,
                                       cf(minNormal));
  Value codeNormal = arith::OrIOp::create(
      nb, l,
      arith::ShLIOp::create(
          nb, l, arith::AddIOp::create(nb, l, exponentOf(rc), ci(1 - minExp)),
          ci(mbits)),
      arith::AndIOp::create(
          nb, l, arith::ShRUIOp::create(nb, l, rbits, ci(23 - mbits)),
          ci((1 << mbits) - 1)));
  Value codeSubnormal = arith::FPToUIOp::create(
      nb, l, i32,
      arith::DivFOp::create(nb, l, rc,
                            cf(std::ldexp(1.0f, int(minExp - mbits)))));
  Value mag = arith::SelectOp::create(nb, l, normal, codeNormal, codeSubnormal);
  if (!saturate && hasInf) // the infinity: exponent all ones, mantissa 0
    mag = arith::SelectOp::create(nb, l, over, ci(0x7c), mag);
  Value code = arith::OrIOp::create(nb, l, mag,
                                    arith::ShLIOp::create(nb, l, sign, ci(7)));
  if (fnuz)
    code = arith::SelectOp::create(
        nb, l,
        arith::CmpIOp::create(nb, l, arith::CmpIPredicate::eq, mag, ci(0)),
        ci(0), code);
  Value nan = arith::CmpFOp::create(nb, l, arith::CmpFPredicate::UNO, x, x);
  if (!saturate && !hasInf)
    nan = arith::OrIOp::create(nb, l, nan, over);
  code = arith::SelectOp::create(nb, l, nan, ci(fnuz ? 0x80 : 0x7f), code);
  return arith::TruncIOp::create(nb, l, nb.getI8Type(), code);
}

/// f64 to f16/bf16 without the compiler-rt call LLVM would emit (model.so
/// links only libm): rounded to f32 with round-to-odd, which then rounds
/// to the narrow type exactly as one rounding would.
static Value truncF64ToHalf(OpBuilder &nb, Location l, Value x, Type to) {
  Type f32 = nb.getF32Type(), i32 = nb.getI32Type();
  Value t = arith::TruncFOp::create(nb, l, f32, x);
  Value back = arith::ExtFOp::create(nb, l, x.getType(), t);
  Value inexact =
      arith::CmpFOp::create(nb, l, arith::CmpFPredicate::ONE, back, x);
  Value away = arith::CmpFOp::create(nb, l, arith::CmpFPredicate::OGT,
                                     math::AbsFOp::create(nb, l, back),
                                     math::AbsFOp::create(nb, l, x));
  Value bits = arith::BitcastOp::create(nb, l, i32, t);
  Value one = arith::ConstantIntOp::create(nb, l, i32, 1);
  // Toward zero (one step down in magnitude if rounded away), then odd.
  Value tz = arith::SelectOp::create(
      nb, l, away, arith::SubIOp::create(nb, l, bits, one), bits);
  Value odd = arith::SelectOp::create(
      nb, l, inexact, arith::OrIOp::create(nb, l, tz, one), bits);
  return arith::TruncFOp::create(nb, l, to,
                                 arith::BitcastOp::create(nb, l, f32, odd));
}

/// Elementwise ops (with broadcasting), casts, where, expand, transpose.
/// 1 / (1 + exp(-x)).
static Value sigmoidOf(OpBuilder &nb, Location l, Value x,
                       arith::FastMathFlagsAttr fm) {
  Type t = x.getType();
  Value one = arith::ConstantOp::create(nb, l, t, nb.getFloatAttr(t, 1.0));
  Value e = math::ExpOp::create(nb, l, arith::NegFOp::create(nb, l, x));
  return arith::DivFOp::create(nb, l, one,
                               arith::AddFOp::create(nb, l, one, e, fm), fm);
}

static Value reluOf(OpBuilder &nb, Location l, Value x) {
  Type t = x.getType();
  Value zero = arith::ConstantOp::create(nb, l, t, nb.getFloatAttr(t, 0));
  return arith::MaximumFOp::create(nb, l, x, zero);
}

/// GELU, erf or tanh-approximated (kiln.gelu).
static Value geluOf(OpBuilder &nb, Location l, Value x, bool tanh,
                    arith::FastMathFlagsAttr fm) {
  Type t = x.getType();
  auto c = [&](double v) -> Value {
    return arith::ConstantOp::create(nb, l, t, nb.getFloatAttr(t, v));
  };
  Value inner;
  if (tanh) {
    Value x3 = arith::MulFOp::create(
        nb, l, x, arith::MulFOp::create(nb, l, x, x, fm), fm);
    Value poly = arith::AddFOp::create(
        nb, l, x, arith::MulFOp::create(nb, l, c(0.044715), x3, fm), fm);
    inner = math::TanhOp::create(
        nb, l, arith::MulFOp::create(nb, l, c(0.7978845608028654), poly, fm));
  } else {
    inner = math::ErfOp::create(
        nb, l, arith::MulFOp::create(nb, l, x, c(0.7071067811865476), fm));
  }
  Value half = arith::MulFOp::create(nb, l, c(0.5), x, fm);
  return arith::MulFOp::create(
      nb, l, half, arith::AddFOp::create(nb, l, c(1.0), inner, fm), fm);
}

/// Whether two tensors have the same shape, dimension by dimension (no
/// broadcasting between them).
static bool sameShape(Value a, Value b) {
  auto ta = cast<RankedTensorType>(a.getType()),
       tb = cast<RankedTensorType>(b.getType());
  return ta.getShape() == tb.getShape() &&
         getShapeExprs(ta) == getShapeExprs(tb);
}

/// Chooses the elementwise producers computed inside their user's loop, and
/// the residual adds computed inside their norm's.
void StepLowering::computeFusion() {
  Block &body = graph.getBody().front();
  fused.clear();
  for (Operation &op : body) {
    if (!isFusibleElementwise(&op))
      continue;
    for (Value operand : elementwiseOperands(&op)) {
      Operation *def = operand.getDefiningOp();
      if (!def || !isFusibleElementwise(def) || !operand.hasOneUse() ||
          views.count(operand) || !sameShape(operand, op.getResult(0)))
        continue;
      fused.insert(def);
    }
  }
  // `norm(a + b)`, the residual stream of every decoder: the norm's first
  // pass over a row computes the sum, stores it for its later passes and
  // for the add's other readers, and the add has no loop of its own (one
  // pass over the row instead of two). Only for an f32 add without
  // broadcasting whose operands the norm's row-major [rows, n] views can
  // read (contiguous, with buffers of their own: not a fused tree), and
  // only when nothing reads the sum before the norm computes it.
  addNorms.clear();
  auto computable = [&](AddOp add, Operation *norm) {
    Value sum = add.getResult();
    if (addNorms.count(add) || !tensorElementOf(sum).isF32())
      return false;
    for (Value operand : {add.getLhs(), add.getRhs()}) {
      Operation *def = operand.getDefiningOp();
      if (!tensorElementOf(operand).isF32() || !sameShape(operand, sum) ||
          !contiguous(operand) || (def && fused.contains(def)))
        return false;
    }
    // Every reader of the sum, also through reshapes and views of it.
    SmallVector<Value> aliases = {sum};
    while (!aliases.empty())
      for (Operation *user : aliases.pop_back_val().getUsers()) {
        if (isa<ReshapeOp>(user) || inPlace.contains(user) ||
            isSkippedTranspose(user))
          llvm::append_range(aliases, user->getResults());
        else if (user != norm && !norm->isBeforeInBlock(anchorOf(user)))
          return false;
      }
    return true;
  };
  for (Operation &op : body)
    if (isa<RMSNormOp, LayerNormOp>(op))
      if (auto add = op.getOperand(0).getDefiningOp<AddOp>();
          add && computable(add, &op))
        addNorms[add] = &op;
}

/// Whether `v` is the step's positions (a view of the step input).
bool StepLowering::isStepPositions(Value v) {
  auto arg = dyn_cast<BlockArgument>(root(v));
  if (!arg || arg.getOwner() != &graph.getBody().front())
    return false;
  auto role =
      graph.getArgAttrOfType<StringAttr>(arg.getArgNumber(), "kiln.step_input");
  return role && role.getValue() == "positions";
}

/// Chooses the rotary embeddings that paged attention applies itself
/// (model_abi.h): q and k rotated alike, each rotary read only by the
/// attention, its input readable by the kernel (unit inner stride), and
/// angles it can address: one row per token of a step-sized table, or
/// tables indexed by the step's positions. Anything else stays a loop.
void StepLowering::computeAttentionRotary() {
  rotaryInAttention.clear();
  for (Operation &op : graph.getBody().front()) {
    auto attn = dyn_cast<PagedAttentionOp>(op);
    if (!attn)
      continue;
    auto q = attn.getQuery().getDefiningOp<RotaryOp>();
    auto k = attn.getKey().getDefiningOp<RotaryOp>();
    if (!q || !k || q == k || !q->hasOneUse() || !k->hasOneUse() ||
        q.getCos() != k.getCos() || q.getSin() != k.getSin() ||
        q.getPositions() != k.getPositions() ||
        q.getRotaryDim() != k.getRotaryDim() ||
        q.getInterleaved() != k.getInterleaved())
      continue;
    int64_t d = cast<KVCacheType>(attn.getCache().getType()).getHeadDim();
    if (d > KILN_ROTARY_MAX_HEAD_DIM ||
        static_cast<int64_t>(q.getRotaryDim()) > d)
      continue;
    auto innerUnit = [&](Value v) {
      return layoutOf(v).strides.back().getConstant() == 1;
    };
    if (!innerUnit(q.getInput()) || !innerUnit(k.getInput()))
      continue;
    // The tables: f32 from a buffer (not a small constant, which has no
    // pointer), unit inner stride and one row stride for both.
    Value cos = q.getCos(), sin = q.getSin();
    auto tableType = cast<RankedTensorType>(cos.getType());
    bool tablesOk =
        tableType.getElementType().isF32() && sin.getType() == cos.getType();
    for (Value t : {cos, sin})
      tablesOk = tablesOk && innerUnit(t) &&
                 !isa_and_nonnull<ConstantOp>(root(t).getDefiningOp());
    int64_t rowDim = tableType.getRank() - 2;
    tablesOk = tablesOk && rowDim >= 0 &&
               layoutOf(cos).strides[rowDim] == layoutOf(sin).strides[rowDim];
    if (!tablesOk)
      continue;
    if (Value positions = q.getPositions()) {
      if (!isStepPositions(positions) || tableType.getRank() != 2)
        continue;
    } else {
      // [1, tokens, rotary_dim / 2]: row t is token t's.
      if (tableType.getRank() != 3 || tableType.getDimSize(0) != 1 ||
          shapeOf(cos)[1] != DimExpr::symbol("tokens"))
        continue;
    }
    rotaryInAttention.insert(q);
    rotaryInAttention.insert(k);
  }
}

/// The op whose loop computes `op`: op itself, the user it is fused into,
/// or the norm that computes a residual add.
Operation *StepLowering::anchorOf(Operation *op) const {
  while (fused.contains(op) || rotaryInAttention.contains(op))
    op = *op->getResult(0).getUsers().begin();
  if (Operation *norm = addNorms.lookup(op))
    return norm;
  return op;
}

/// The residual add whose sum `norm` computes in its first pass, if any.
AddOp StepLowering::residualAddOf(Operation *norm) const {
  auto add = norm->getOperand(0).getDefiningOp<AddOp>();
  return add && addNorms.lookup(add) == norm ? add : AddOp();
}

/// The values the loop of `op` reads: its operands, with every fused
/// producer replaced by its own operands, each value once.
SmallVector<Value> StepLowering::fusedLeaves(Operation *op) const {
  SmallVector<Value> leaves;
  std::function<void(Operation *)> walk = [&](Operation *node) {
    for (Value operand : elementwiseOperands(node)) {
      Operation *def = operand.getDefiningOp();
      if (def && fused.contains(def))
        walk(def);
      else if (!llvm::is_contained(leaves, operand))
        leaves.push_back(operand);
    }
  };
  walk(op);
  return leaves;
}

LogicalResult StepLowering::lowerElementwise(Operation *op) {
  Value result = op->getResult(0);
  FailureOr<Value> out = memrefOf(result, op);
  if (failed(out))
    return failure();
  if (auto t = dyn_cast<TransposeOp>(op)) {
    FailureOr<Value> in = memrefOf(t.getInput(), op);
    if (failed(in))
      return failure();
    linalg::TransposeOp::create(b, loc, *in, *out, t.getPerm());
    return success();
  }
  // The loop reads the leaves of the tree of producers fused into op.
  SmallVector<Value> leaves = fusedLeaves(op), ins;
  for (Value leaf : leaves) {
    FailureOr<Value> m = memrefOf(leaf, op);
    if (failed(m))
      return failure();
    ins.push_back(*m);
  }
  auto fm = arith::FastMathFlagsAttr::get(ctx, arith::FastMathFlags::contract);
  std::string unsupported;
  // One element of `node`'s result from its operands' elements `a`.
  auto scalar = [&](Operation *node, OpBuilder &nb, Location l,
                    ValueRange a) -> Value {
    // Signedness is the kiln types' (the buffers hold signless integers).
    Type kilnInElt =
        tensorElementOf(node->getOperand(isa<WhereOp>(node) ? 1 : 0));
    Type kilnOutElt = tensorElementOf(node->getResult(0));
    bool isUnsigned = kilnInElt.isUnsignedInteger();
    Type outElt = storageType(kilnOutElt);
    Type t = a[0].getType();
    bool isFloat = isa<FloatType>(t);
    auto one = [&]() -> Value {
      return arith::ConstantOp::create(nb, l, t, nb.getFloatAttr(t, 1.0));
    };
    auto compare = [&](OpBuilder &cb, Location cl, ValueRange x,
                       arith::CmpFPredicate fp,
                       arith::CmpIPredicate ip) -> Value {
      if (isFloat)
        return arith::CmpFOp::create(cb, cl, fp, x[0], x[1]);
      if (isUnsigned)
        ip = arith::CmpIPredicate(
            ip == arith::CmpIPredicate::slt   ? arith::CmpIPredicate::ult
            : ip == arith::CmpIPredicate::sle ? arith::CmpIPredicate::ule
            : ip == arith::CmpIPredicate::sgt ? arith::CmpIPredicate::ugt
            : ip == arith::CmpIPredicate::sge ? arith::CmpIPredicate::uge
                                              : ip);
      return arith::CmpIOp::create(cb, cl, ip, x[0], x[1]);
    };
    return llvm::TypeSwitch<Operation *, Value>(node)
        .Case([&](AddOp) -> Value {
          return isFloat ? arith::AddFOp::create(nb, l, a[0], a[1], fm)
                         : arith::AddIOp::create(nb, l, a[0], a[1]).getResult();
        })
        .Case([&](SubOp) -> Value {
          return isFloat ? arith::SubFOp::create(nb, l, a[0], a[1], fm)
                         : arith::SubIOp::create(nb, l, a[0], a[1]).getResult();
        })
        .Case([&](MulOp) -> Value {
          return isFloat ? arith::MulFOp::create(nb, l, a[0], a[1], fm)
                         : arith::MulIOp::create(nb, l, a[0], a[1]).getResult();
        })
        .Case([&](DivOp) -> Value {
          if (isFloat)
            return arith::DivFOp::create(nb, l, a[0], a[1], fm);
          if (isUnsigned)
            return arith::DivUIOp::create(nb, l, a[0], a[1]);
          return arith::DivSIOp::create(nb, l, a[0], a[1]);
        })
        .Case([&](PowOp) -> Value {
          if (isFloat)
            return math::PowFOp::create(nb, l, a[0], a[1]);
          return integerPower(nb, l, a[0], a[1], isUnsigned);
        })
        .Case([&](MaxOp) -> Value {
          if (isFloat)
            return arith::MaximumFOp::create(nb, l, a[0], a[1]);
          if (isUnsigned)
            return arith::MaxUIOp::create(nb, l, a[0], a[1]);
          return arith::MaxSIOp::create(nb, l, a[0], a[1]);
        })
        .Case([&](MinOp) -> Value {
          if (isFloat)
            return arith::MinimumFOp::create(nb, l, a[0], a[1]);
          if (isUnsigned)
            return arith::MinUIOp::create(nb, l, a[0], a[1]);
          return arith::MinSIOp::create(nb, l, a[0], a[1]);
        })
        .Case([&](AndOp) -> Value {
          return arith::AndIOp::create(nb, l, a[0], a[1]);
        })
        .Case([&](OrOp) -> Value {
          return arith::OrIOp::create(nb, l, a[0], a[1]);
        })
        .Case([&](NegOp) -> Value {
          return isFloat ? arith::NegFOp::create(nb, l, a[0]).getResult()
                         : arith::SubIOp::create(
                               nb, l,
                               arith::ConstantOp::create(
                                   nb, l, t, nb.getIntegerAttr(t, 0)),
                               a[0])
                               .getResult();
        })
        .Case(
            [&](SqrtOp) -> Value { return math::SqrtOp::create(nb, l, a[0]); })
        .Case([&](ReciprocalOp) -> Value {
          return arith::DivFOp::create(nb, l, one(), a[0], fm);
        })
        .Case([&](ExpOp) -> Value { return math::ExpOp::create(nb, l, a[0]); })
        .Case([&](LogOp) -> Value { return math::LogOp::create(nb, l, a[0]); })
        .Case(
            [&](TanhOp) -> Value { return math::TanhOp::create(nb, l, a[0]); })
        .Case([&](ErfOp) -> Value { return math::ErfOp::create(nb, l, a[0]); })
        .Case([&](CosOp) -> Value { return math::CosOp::create(nb, l, a[0]); })
        .Case([&](SinOp) -> Value { return math::SinOp::create(nb, l, a[0]); })
        .Case([&](AbsOp) -> Value {
          if (isFloat)
            return math::AbsFOp::create(nb, l, a[0]);
          if (isUnsigned)
            return a[0];
          return math::AbsIOp::create(nb, l, a[0]);
        })
        .Case([&](SigmoidOp) -> Value { return sigmoidOf(nb, l, a[0], fm); })
        .Case([&](ReluOp) -> Value { return reluOf(nb, l, a[0]); })
        .Case([&](GeluOp gelu) -> Value {
          return geluOf(nb, l, a[0], gelu.getApproximate() == "tanh", fm);
        })
        .Case([&](GluOp glu) -> Value {
          Value g = a[0];
          StringRef act = glu.getActivation();
          Value gated =
              act == "silu"
                  ? arith::MulFOp::create(nb, l, g, sigmoidOf(nb, l, g, fm), fm)
              : act == "sigmoid" ? sigmoidOf(nb, l, g, fm)
              : act == "relu"    ? reluOf(nb, l, g)
                                 : geluOf(nb, l, g, act == "gelu_tanh", fm);
          return arith::MulFOp::create(nb, l, gated, a[1], fm);
        })
        .Case([&](WhereOp) -> Value {
          return arith::SelectOp::create(nb, l, a[0], a[1], a[2]);
        })
        .Case([&](ExpandOp) -> Value { return a[0]; })
        .Case([&](EqualOp) -> Value {
          return compare(nb, l, a, arith::CmpFPredicate::OEQ,
                         arith::CmpIPredicate::eq);
        })
        .Case([&](LessOp) -> Value {
          return compare(nb, l, a, arith::CmpFPredicate::OLT,
                         arith::CmpIPredicate::slt);
        })
        .Case([&](GreaterOp) -> Value {
          return compare(nb, l, a, arith::CmpFPredicate::OGT,
                         arith::CmpIPredicate::sgt);
        })
        .Case([&](LessEqualOp) -> Value {
          return compare(nb, l, a, arith::CmpFPredicate::OLE,
                         arith::CmpIPredicate::sle);
        })
        .Case([&](GreaterEqualOp) -> Value {
          return compare(nb, l, a, arith::CmpFPredicate::OGE,
                         arith::CmpIPredicate::sge);
        })
        .Case([&](IsNaNOp) -> Value {
          return arith::CmpFOp::create(nb, l, arith::CmpFPredicate::UNO, a[0],
                                       a[0]);
        })
        .Case([&](NotOp) -> Value {
          return arith::XOrIOp::create(
              nb, l, a[0], arith::ConstantIntOp::create(nb, l, t, 1));
        })
        .Case([&](CastOp castOp) -> Value {
          // Float8 goes through f32 (decoded by table, encoded by rounding).
          if (isFloat8(kilnInElt) || isFloat8(kilnOutElt)) {
            Value v = a[0];
            Type from = t;
            if (isFloat8(kilnInElt)) {
              v = decodeFloat8(nb, l, module, v, kilnInElt);
              from = nb.getF32Type();
            }
            Type to = isFloat8(kilnOutElt) ? nb.getF32Type() : outElt;
            if (from != to && isa<FloatType>(from) && isa<FloatType>(to))
              v = convertFloat(nb, l, v, to);
            else if (from != to && isa<FloatType>(to))
              v = isUnsigned
                      ? arith::UIToFPOp::create(nb, l, to, v).getResult()
                      : arith::SIToFPOp::create(nb, l, to, v).getResult();
            else if (from != to)
              v = kilnOutElt.isUnsignedInteger()
                      ? arith::FPToUIOp::create(nb, l, to, v).getResult()
                      : arith::FPToSIOp::create(nb, l, to, v).getResult();
            if (!isFloat8(kilnOutElt))
              return v;
            return encodeFloat8(nb, l, v, kilnOutElt, !castOp.getNoSaturate());
          }
          Type from = t;
          if (from == outElt)
            return a[0];
          bool fromF = isa<FloatType>(from), toF = isa<FloatType>(outElt);
          if (fromF && toF && from.isF64() &&
              outElt.getIntOrFloatBitWidth() == 16)
            return truncF64ToHalf(nb, l, a[0], outElt);
          if (fromF && toF)
            return from.getIntOrFloatBitWidth() < outElt.getIntOrFloatBitWidth()
                       ? arith::ExtFOp::create(nb, l, outElt, a[0]).getResult()
                       : arith::TruncFOp::create(nb, l, outElt, a[0])
                             .getResult();
          if (fromF && outElt.isInteger(1))
            return arith::CmpFOp::create(
                nb, l, arith::CmpFPredicate::UNE, a[0],
                arith::ConstantOp::create(nb, l, from,
                                          nb.getFloatAttr(from, 0)));
          if (fromF && kilnOutElt.isUnsignedInteger())
            return arith::FPToUIOp::create(nb, l, outElt, a[0]);
          if (fromF)
            return arith::FPToSIOp::create(nb, l, outElt, a[0]);
          if (from.isInteger(1))
            return toF ? arith::UIToFPOp::create(nb, l, outElt, a[0])
                             .getResult()
                       : arith::ExtUIOp::create(nb, l, outElt, a[0])
                             .getResult();
          if (toF)
            return isUnsigned ? arith::UIToFPOp::create(nb, l, outElt, a[0])
                                    .getResult()
                              : arith::SIToFPOp::create(nb, l, outElt, a[0])
                                    .getResult();
          if (outElt.isInteger(1))
            return arith::CmpIOp::create(
                nb, l, arith::CmpIPredicate::ne, a[0],
                arith::ConstantOp::create(nb, l, from,
                                          nb.getIntegerAttr(from, 0)));
          if (from.getIntOrFloatBitWidth() == outElt.getIntOrFloatBitWidth())
            return a[0]; // e.g. i8 <-> ui8: the same bits
          if (from.getIntOrFloatBitWidth() > outElt.getIntOrFloatBitWidth())
            return arith::TruncIOp::create(nb, l, outElt, a[0]);
          return isUnsigned
                     ? arith::ExtUIOp::create(nb, l, outElt, a[0]).getResult()
                     : arith::ExtSIOp::create(nb, l, outElt, a[0]).getResult();
        })
        .Default([&](Operation *) -> Value {
          unsupported = node->getName().getStringRef().str();
          return a[0];
        });
  };
  emitGeneric(ins, *out, [&](OpBuilder &nb, Location l, ValueRange a) -> Value {
    DenseMap<Value, Value> elements;
    for (auto [leaf, element] : llvm::zip(leaves, a))
      elements[leaf] = element;
    std::function<Value(Operation *)> eval = [&](Operation *node) -> Value {
      SmallVector<Value> args;
      for (Value operand : elementwiseOperands(node)) {
        Operation *def = operand.getDefiningOp();
        args.push_back(def && fused.contains(def) ? eval(def)
                                                  : elements.lookup(operand));
      }
      return scalar(node, nb, l, args);
    };
    return eval(op);
  });
  if (!unsupported.empty())
    return op->emitError() << "'" << unsupported
                           << "' is not supported by the CPU backend yet";
  return success();
}

LogicalResult StepLowering::lowerMatMul(MatMulOp op) {
  auto lhsType = cast<RankedTensorType>(op.getLhs().getType());
  auto rhsType = cast<RankedTensorType>(op.getRhs().getType());
  auto transposed = op.getRhs().getDefiningOp<TransposeOp>();
  bool bt = transposed && isSkippedTranspose(transposed);
  if (auto dq = bt ? transposed.getInput().getDefiningOp<DequantizeOp>()
                   : DequantizeOp())
    if (isSkippedDequantize(dq))
      return lowerQuantMatMul(op, dq);
  if (isKernelMatMul(op)) {
    int64_t k = rhsType.getDimSize(0), n = rhsType.getDimSize(1);
    // M = the product of lhs's leading dims.
    SmallVector<DimExpr> dims = getShapeExprs(lhsType);
    DimExpr m = DimExpr::constant(1);
    for (size_t i = 0; i + 1 < dims.size(); ++i)
      m = m * dims[i];
    FailureOr<Value> mv = dimValue(m, op);
    FailureOr<Value> a = pointerOf(op.getLhs(), op);
    FailureOr<Value> w =
        pointerOf(bt ? transposed.getInput() : op.getRhs(), op);
    FailureOr<Value> c = pointerOf(op.getResult(), op);
    if (failed(mv) || failed(a) || failed(w) || failed(c))
      return failure();
    auto ptrType = LLVM::LLVMPointerType::get(ctx);
    auto i64Type = b.getI64Type();
    auto fnType = LLVM::LLVMFunctionType::get(LLVM::LLVMVoidType::get(ctx),
                                              {ptrType, ptrType, i64Type,
                                               ptrType, ptrType, i64Type,
                                               i64Type, i64Type, i64Type});
    // A weight kiln-cpu-pack-weights laid out in panels.
    bool packed = false;
    if (auto w = op.getRhs().getDefiningOp<WeightOp>())
      if (auto global = SymbolTable::lookupNearestSymbolFrom<GlobalOp>(
              w, w.getNameAttr()))
        packed = ::kiln::isPanelLayout(global);
    Value fn = kernel(bt ? kMatmulBT : packed ? kMatmulPacked : kMatmul);
    // The rows of lhs may be a view (a column range of a fused matmul).
    FailureOr<Value> lda = strideOf(op.getLhs(), lhsType.getRank() - 2, op);
    if (failed(lda))
      return failure();
    LLVM::CallOp::create(b, loc, fnType,
                         ValueRange{fn, poolPtr, *a, *lda, *w, *c, i64(n),
                                    toI64(*mv), i64(n), i64(k)});
    return success();
  }
  // Anything else: a generic batched matmul with broadcasting. A 1-D
  // operand is a vector, as in numpy: its M (or N) dimension is absent.
  FailureOr<Value> lhs = memrefOf(op.getLhs(), op),
                   rhs = memrefOf(op.getRhs(), op),
                   out = memrefOf(op.getResult(), op);
  if (failed(lhs) || failed(rhs) || failed(out))
    return failure();
  auto outType = cast<MemRefType>(out->getType());
  int64_t rank = outType.getRank(); // loops: out dims + k
  Type elt = outType.getElementType();
  Value zero = arith::ConstantOp::create(b, loc, elt, b.getZeroAttr(elt));
  linalg::FillOp::create(b, loc, zero, *out);
  // The output's batch dims, then M (unless lhs is a vector), then N
  // (unless rhs is).
  int64_t batch = rank - (lhsType.getRank() == 1 ? 0 : 1) -
                  (rhsType.getRank() == 1 ? 0 : 1);
  auto operandMap = [&](MemRefType t, bool isLhs) {
    AffineExpr mExpr = getAffineDimExpr(batch, ctx),
               nExpr = getAffineDimExpr(rank - 1, ctx),
               kExpr = getAffineDimExpr(rank, ctx);
    if (t.getRank() == 1)
      return AffineMap::get(rank + 1, 0, {kExpr}, ctx);
    SmallVector<AffineExpr> exprs;
    int64_t lead = batch - (t.getRank() - 2);
    for (int64_t i = 0; i + 2 < t.getRank(); ++i)
      exprs.push_back(t.getDimSize(i) == 1 && outType.getDimSize(lead + i) != 1
                          ? getAffineConstantExpr(0, ctx)
                          : getAffineDimExpr(lead + i, ctx));
    if (isLhs) {
      exprs.push_back(mExpr);
      exprs.push_back(kExpr);
    } else {
      exprs.push_back(kExpr);
      exprs.push_back(nExpr);
    }
    return AffineMap::get(rank + 1, 0, exprs, ctx);
  };
  SmallVector<AffineExpr> outExprs;
  for (int64_t i = 0; i < rank; ++i)
    outExprs.push_back(getAffineDimExpr(i, ctx));
  SmallVector<AffineMap> maps = {
      operandMap(cast<MemRefType>(lhs->getType()), true),
      operandMap(cast<MemRefType>(rhs->getType()), false),
      AffineMap::get(rank + 1, 0, outExprs, ctx)};
  SmallVector<utils::IteratorType> iterators(rank,
                                             utils::IteratorType::parallel);
  iterators.push_back(utils::IteratorType::reduction);
  linalg::GenericOp::create(
      b, loc, TypeRange{}, ValueRange{*lhs, *rhs}, ValueRange{*out}, maps,
      iterators, [&](OpBuilder &nb, Location l, ValueRange a) {
        Value p = arith::MulFOp::create(nb, l, a[0], a[1]);
        linalg::YieldOp::create(
            nb, l, ValueRange{arith::AddFOp::create(nb, l, a[2], p)});
      });
  return success();
}

/// matmul(x, transpose(dequantize(w))) with w a packed [N][K] weight: the
/// quantized kernel (fp32 or int8 activations, int8Activations) reads the
/// data, scales and zero points where the artifact writer put them, one
/// after the other from the weight's offset.
LogicalResult StepLowering::lowerQuantMatMul(MatMulOp op, DequantizeOp dq) {
  auto qType = cast<QTensorType>(dq.getInput().getType());
  QuantAttr quant = qType.getQuant();
  int64_t n = qType.getShape()[0], k = qType.getShape()[1];
  int64_t group = quant.getGroupSize(), bits = quant.getBits();
  int64_t dataBytes = n * k * bits / 8, scaleBytes = n * (k / group) * 4;
  SmallVector<DimExpr> dims =
      getShapeExprs(cast<RankedTensorType>(op.getLhs().getType()));
  DimExpr m = DimExpr::constant(1);
  for (size_t i = 0; i + 1 < dims.size(); ++i)
    m = m * dims[i];
  FailureOr<Value> mv = dimValue(m, op);
  FailureOr<Value> a = pointerOf(op.getLhs(), op);
  FailureOr<Value> w = pointerOf(dq.getInput(), op);
  FailureOr<Value> c = pointerOf(op.getResult(), op);
  if (failed(mv) || failed(a) || failed(w) || failed(c))
    return failure();
  auto ptrType = LLVM::LLVMPointerType::get(ctx);
  auto i64Type = b.getI64Type();
  auto at = [&](int64_t offset) -> Value {
    return LLVM::GEPOp::create(b, loc, ptrType, b.getI8Type(), *w,
                               ArrayRef<LLVM::GEPArg>{i64(offset)});
  };
  Value zeroPoints = quant.getZeroPoint() == ZeroPointKind::Int
                         ? at(dataBytes + scaleBytes)
                         : LLVM::ZeroOp::create(b, loc, ptrType).getResult();
  auto fnType = LLVM::LLVMFunctionType::get(
      LLVM::LLVMVoidType::get(ctx),
      {ptrType, ptrType, i64Type, ptrType, ptrType, ptrType, ptrType, i64Type,
       i64Type, i64Type, i64Type, i64Type, i64Type});
  Value fn = kernel(int8Activations(op, quant, quantCompute) ? kMatmulQuantA8
                                                             : kMatmulQuant);
  FailureOr<Value> lda = strideOf(op.getLhs(), dims.size() - 2, op);
  if (failed(lda))
    return failure();
  LLVM::CallOp::create(b, loc, fnType,
                       ValueRange{fn, poolPtr, *a, *lda, *w, at(dataBytes),
                                  zeroPoints, *c, i64(n), toI64(*mv), i64(n),
                                  i64(k), i64(group), i64(bits)});
  return success();
}

/// Rows of a packed [N][K] table: out[..., k] = (q(row, k) - zp) * scale,
/// with row = indices[...], unpacked from the weights file in the loop.
LogicalResult StepLowering::lowerQuantGather(GatherOp op, DequantizeOp dq) {
  auto qType = cast<QTensorType>(dq.getInput().getType());
  QuantAttr quant = qType.getQuant();
  int64_t n = qType.getShape()[0], k = qType.getShape()[1];
  int64_t group = quant.getGroupSize(), bits = quant.getBits();
  auto w = cast<WeightOp>(dq.getInput().getDefiningOp());
  auto global =
      SymbolTable::lookupNearestSymbolFrom<GlobalOp>(w, w.getNameAttr());
  int64_t offset = global->getAttrOfType<IntegerAttr>("kiln.offset").getInt();
  int64_t dataBytes = n * k * bits / 8, scaleBytes = n * (k / group) * 4;
  FailureOr<Value> idx = memrefOf(op.getIndices(), op),
                   out = memrefOf(op.getResult(), op);
  if (failed(idx) || failed(out))
    return failure();
  Value scales = memref::ViewOp::create(
      b, loc, MemRefType::get({n, k / group}, b.getF32Type()), weightsBytesView,
      index(offset + dataBytes), ValueRange{});
  int64_t idxRank = cast<MemRefType>(idx->getType()).getRank();
  int64_t rank = cast<MemRefType>(out->getType()).getRank();
  SmallVector<AffineExpr> idxExprs;
  for (int64_t i = 0; i < idxRank; ++i)
    idxExprs.push_back(getAffineDimExpr(i, ctx));
  SmallVector<AffineMap> maps = {AffineMap::get(rank, 0, idxExprs, ctx),
                                 AffineMap::getMultiDimIdentityMap(rank, ctx)};
  SmallVector<utils::IteratorType> iterators(rank,
                                             utils::IteratorType::parallel);
  Value bytes = weightsBytesView;
  bool storedZero = quant.getZeroPoint() == ZeroPointKind::Int;
  linalg::GenericOp::create(
      b, loc, TypeRange{}, ValueRange{*idx}, ValueRange{*out}, maps, iterators,
      [&](OpBuilder &nb, Location l, ValueRange a) {
        auto c = [&](int64_t v) -> Value {
          return arith::ConstantIndexOp::create(nb, l, v);
        };
        Type i32 = nb.getI32Type();
        // The `bits`-bit value number `element` of the array at `base`.
        auto unpack = [&](int64_t base, Value element) -> Value {
          Value at = bits == 8 ? element
                               : arith::DivUIOp::create(nb, l, element, c(2));
          Value byte = memref::LoadOp::create(
              nb, l, bytes,
              ValueRange{arith::AddIOp::create(nb, l, at, c(base))});
          Value v = arith::ExtUIOp::create(nb, l, i32, byte);
          if (bits == 8)
            return v;
          Value shift = arith::IndexCastOp::create(
              nb, l, i32,
              arith::MulIOp::create(
                  nb, l, arith::RemUIOp::create(nb, l, element, c(2)), c(4)));
          return arith::AndIOp::create(
              nb, l, arith::ShRUIOp::create(nb, l, v, shift),
              arith::ConstantIntOp::create(nb, l, i32, 15));
        };
        Value row = arith::IndexCastOp::create(nb, l, nb.getIndexType(), a[0]);
        Value col = linalg::IndexOp::create(nb, l, idxRank);
        Value g = arith::DivUIOp::create(nb, l, col, c(group));
        Value q = unpack(
            offset, arith::AddIOp::create(
                        nb, l, arith::MulIOp::create(nb, l, row, c(k)), col));
        Value zp =
            storedZero
                ? unpack(offset + dataBytes + scaleBytes,
                         arith::AddIOp::create(
                             nb, l,
                             arith::MulIOp::create(nb, l, row, c(k / group)),
                             g))
                : arith::ConstantIntOp::create(nb, l, i32,
                                               int64_t(1) << (bits - 1))
                      .getResult();
        Value real = arith::SIToFPOp::create(
            nb, l, nb.getF32Type(), arith::SubIOp::create(nb, l, q, zp));
        Value scale = memref::LoadOp::create(nb, l, scales, ValueRange{row, g});
        linalg::YieldOp::create(
            nb, l, ValueRange{arith::MulFOp::create(nb, l, real, scale)});
      });
  return success();
}

/// RMSNorm / LayerNorm over the last axis: one loop over rows, each with a
/// reduction loop (two for LayerNorm) and a scaling loop. A norm that
/// computes its residual add (computeFusion) sums the add's operands in its
/// first reduction loop.
LogicalResult StepLowering::lowerNorm(Operation *op, Value input, Value scale,
                                      Value bias, int64_t axis, float eps,
                                      bool rms) {
  auto type = cast<RankedTensorType>(input.getType());
  int64_t rank = type.getRank(), n = 1;
  for (int64_t i = axis; i < rank; ++i) {
    if (type.isDynamicDim(i))
      return op->emitError("the CPU backend normalizes over static axes "
                           "only");
    n *= type.getDimSize(i);
  }
  // 2-D views [rows, n] of input and output (the normalized axes
  // collapsed); 1-D scale/bias.
  auto view2d = [&](Value v) -> FailureOr<Value> {
    FailureOr<Value> m = memrefOf(v, op);
    if (failed(m))
      return failure();
    auto mt = cast<MemRefType>(m->getType());
    if (axis + 1 < rank) {
      // [1, d0, ..., dr-1] collapsed to [1 * d0 .. d(axis-1), n].
      SmallVector<int64_t> shape = {1};
      llvm::append_range(shape, mt.getShape());
      SmallVector<ReassociationIndices> pad = {{0, 1}};
      for (int64_t i = 1; i < rank; ++i)
        pad.push_back({i + 1});
      Value padded = memref::ExpandShapeOp::create(
          b, loc, MemRefType::get(shape, mt.getElementType()), *m, pad);
      ReassociationIndices lead, normalized;
      for (int64_t i = 0; i <= axis; ++i)
        lead.push_back(i);
      for (int64_t i = axis + 1; i <= rank; ++i)
        normalized.push_back(i);
      return memref::CollapseShapeOp::create(
                 b, loc, padded,
                 ArrayRef<ReassociationIndices>{lead, normalized})
          .getResult();
    }
    if (mt.getRank() == 1)
      return memref::ExpandShapeOp::create(
                 b, loc, MemRefType::get({1, n}, mt.getElementType()), *m,
                 ArrayRef<ReassociationIndices>{{0, 1}})
          .getResult();
    ReassociationIndices lead;
    for (int64_t i = 0; i + 1 < mt.getRank(); ++i)
      lead.push_back(i);
    return memref::CollapseShapeOp::create(
               b, loc, *m,
               ArrayRef<ReassociationIndices>{lead, {mt.getRank() - 1}})
        .getResult();
  };
  // With a residual add, x is where the first pass stores the sum for the
  // later ones: the add's buffer, or the output where the norm is the sum's
  // only reader (the last pass then normalizes each element in place).
  AddOp add = residualAddOf(op);
  FailureOr<Value> y = view2d(op->getResult(0));
  FailureOr<Value> x = add && add.getResult().hasOneUse() ? y : view2d(input);
  FailureOr<Value> lhs, rhs;
  if (add) {
    lhs = view2d(add.getLhs());
    rhs = view2d(add.getRhs());
    if (failed(lhs) || failed(rhs))
      return failure();
  }
  if (failed(x) || failed(y))
    return failure();
  Value rowCount = memref::DimOp::create(b, loc, *x, 0);
  // Scale and bias flattened to 1-D: n elements, or one for all.
  auto view1d = [&](Value v) -> FailureOr<Value> {
    FailureOr<Value> m = memrefOf(v, op);
    if (failed(m))
      return failure();
    auto mt = cast<MemRefType>(m->getType());
    if (!mt.hasStaticShape() ||
        (mt.getNumElements() != n && mt.getNumElements() != 1))
      return op->emitError()
             << "the CPU backend needs a scale and bias of the normalized "
                "shape or of one element, got "
             << v.getType();
    auto flatType = MemRefType::get({mt.getNumElements()}, mt.getElementType());
    if (mt.getRank() == 1)
      return *m;
    if (mt.getRank() == 0)
      return memref::ExpandShapeOp::create(b, loc, flatType, *m,
                                           ArrayRef<ReassociationIndices>{})
          .getResult();
    ReassociationIndices all;
    for (int64_t i = 0; i < mt.getRank(); ++i)
      all.push_back(i);
    return memref::CollapseShapeOp::create(b, loc, flatType, *m,
                                           ArrayRef<ReassociationIndices>{all})
        .getResult();
  };
  FailureOr<Value> w = view1d(scale);
  if (failed(w))
    return failure();
  Value biasMem;
  if (bias) {
    FailureOr<Value> bm = view1d(bias);
    if (failed(bm))
      return failure();
    biasMem = *bm;
  }
  // The element of a 1-D parameter for normalized index k.
  Value first = index(0);
  auto paramAt = [&](Value param, Value k) -> Value {
    return cast<MemRefType>(param.getType()).getDimSize(0) == 1 && n != 1
               ? first
               : k;
  };
  Type f32 = b.getF32Type();
  auto fm = arith::FastMathFlagsAttr::get(
      ctx, arith::FastMathFlags::reassoc | arith::FastMathFlags::contract);
  auto cst = [&](OpBuilder &nb, double v) -> Value {
    return arith::ConstantOp::create(nb, loc, f32, nb.getF32FloatAttr(v));
  };
  Value c0 = index(0), c1 = index(1), cn = index(n);
  scf::ForOp::create(
      b, loc, c0, rowCount, c1, ValueRange{},
      [&](OpBuilder &rb, Location l, Value r, ValueRange) {
        auto sumOf = [&](function_ref<Value(OpBuilder &, Value)> term) {
          return scf::ForOp::create(
                     rb, l, c0, cn, c1, ValueRange{cst(rb, 0)},
                     [&](OpBuilder &kb, Location kl, Value k, ValueRange acc) {
                       Value t = term(kb, k);
                       scf::YieldOp::create(kb, kl,
                                            ValueRange{arith::AddFOp::create(
                                                kb, kl, acc[0], t, fm)});
                     })
              .getResult(0);
        };
        // The input's element k of row r; in the first pass of a norm
        // that computes its residual add, the sum, stored into x.
        auto element = [&](OpBuilder &kb, Value k, bool first) -> Value {
          if (!add || !first)
            return memref::LoadOp::create(kb, l, *x, ValueRange{r, k});
          Value v = arith::AddFOp::create(
              kb, l, memref::LoadOp::create(kb, l, *lhs, ValueRange{r, k}),
              memref::LoadOp::create(kb, l, *rhs, ValueRange{r, k}));
          memref::StoreOp::create(kb, l, v, *x, ValueRange{r, k});
          return v;
        };
        Value mean = cst(rb, 0);
        if (!rms) {
          Value sum = sumOf(
              [&](OpBuilder &kb, Value k) { return element(kb, k, true); });
          mean = arith::DivFOp::create(rb, l, sum, cst(rb, n), fm);
        }
        Value sq = sumOf([&](OpBuilder &kb, Value k) -> Value {
          Value v = element(kb, k, rms);
          Value d = arith::SubFOp::create(kb, l, v, mean, fm);
          return arith::MulFOp::create(kb, l, d, d, fm);
        });
        Value var = arith::DivFOp::create(rb, l, sq, cst(rb, n), fm);
        Value inv = math::RsqrtOp::create(
            rb, l, arith::AddFOp::create(rb, l, var, cst(rb, eps), fm));
        scf::ForOp::create(
            rb, l, c0, cn, c1, ValueRange{},
            [&](OpBuilder &kb, Location kl, Value k, ValueRange) {
              Value v = element(kb, k, false);
              Value d = arith::SubFOp::create(kb, kl, v, mean, fm);
              Value g = memref::LoadOp::create(kb, kl, *w,
                                               ValueRange{paramAt(*w, k)});
              Value o = arith::MulFOp::create(
                  kb, kl, arith::MulFOp::create(kb, kl, d, inv, fm), g, fm);
              if (biasMem)
                o = arith::AddFOp::create(
                    kb, kl, o,
                    memref::LoadOp::create(kb, kl, biasMem,
                                           ValueRange{paramAt(biasMem, k)}),
                    fm);
              memref::StoreOp::create(kb, kl, o, *y, ValueRange{r, k});
              scf::YieldOp::create(kb, kl);
            });
        scf::YieldOp::create(rb, l);
      });
  return success();
}

LogicalResult StepLowering::lowerPagedAttention(PagedAttentionOp op) {
  auto cache = cast<KVCacheType>(op.getCache().getType());
  auto qType = cast<RankedTensorType>(op.getQuery().getType());
  int64_t qHeads = qType.getDimSize(1), d = cache.getHeadDim();
  // q and k before their rotary embedding, when the kernel applies it.
  auto rotary = op.getQuery().getDefiningOp<RotaryOp>();
  if (rotary && !rotaryInAttention.contains(rotary))
    rotary = nullptr;
  Value query = rotary ? rotary.getInput() : op.getQuery();
  Value key =
      rotary ? op.getKey().getDefiningOp<RotaryOp>().getInput() : op.getKey();
  FailureOr<Value> q = pointerOf(query, op), k = pointerOf(key, op),
                   v = pointerOf(op.getValue(), op),
                   o = pointerOf(op.getResult(), op);
  if (failed(q) || failed(k) || failed(v) || failed(o))
    return failure();
  // [1, heads, tokens, d]: q, k and v may be views (a transpose of the
  // projection's [1, tokens, heads, d], read in place), and so may the
  // result (writtenTransposed).
  SmallVector<Value> strides;
  for (Value t : {query, key, Value(op.getValue()), Value(op.getResult())})
    for (int64_t dim : {1, 2}) {
      FailureOr<Value> s = strideOf(t, dim, op);
      if (failed(s))
        return failure();
      strides.push_back(*s);
    }
  auto ptrType = LLVM::LLVMPointerType::get(ctx);
  Value cosPtr, sinPtr, rotStride;
  int64_t rotaryDim = 0, rotFlags = 0;
  if (rotary) {
    FailureOr<Value> c = pointerOf(rotary.getCos(), op),
                     s = pointerOf(rotary.getSin(), op);
    int64_t rowDim =
        cast<RankedTensorType>(rotary.getCos().getType()).getRank() - 2;
    FailureOr<Value> rs = strideOf(rotary.getCos(), rowDim, op);
    if (failed(c) || failed(s) || failed(rs))
      return failure();
    cosPtr = *c;
    sinPtr = *s;
    rotStride = *rs;
    rotaryDim = static_cast<int64_t>(rotary.getRotaryDim());
    if (rotary.getInterleaved())
      rotFlags |= KILN_ROTARY_INTERLEAVED;
    if (rotary.getPositions())
      rotFlags |= KILN_ROTARY_BY_POSITION;
  } else {
    cosPtr = sinPtr = LLVM::ZeroOp::create(b, loc, ptrType);
    rotStride = i64(0);
  }
  auto i64Type = b.getI64Type();
  auto f32Type = b.getF32Type();
  auto fnType = LLVM::LLVMFunctionType::get(
      LLVM::LLVMVoidType::get(ctx),
      {ptrType, i64Type, i64Type, i64Type, i64Type, i64Type, i64Type,
       f32Type, f32Type, i64Type, ptrType, i64Type, i64Type, ptrType,
       i64Type, i64Type, ptrType, i64Type, i64Type, ptrType, i64Type,
       i64Type, ptrType, ptrType, i64Type, i64Type, i64Type});
  auto f32 = [&](float x) {
    return LLVM::ConstantOp::create(b, loc, f32Type, b.getF32FloatAttr(x));
  };
  LLVM::CallOp::create(b, loc, fnType,
                       ValueRange{kernel(kAttention),
                                  stepArg,
                                  i64(static_cast<int64_t>(op.getLayer())),
                                  i64(cache.getLayers()),
                                  i64(qHeads),
                                  i64(cache.getHeads()),
                                  i64(d),
                                  i64(cache.getBlock()),
                                  f32(op.getScale().convertToFloat()),
                                  f32(op.getSoftcap().convertToFloat()),
                                  i64(static_cast<int64_t>(op.getWindow())),
                                  *q,
                                  strides[0],
                                  strides[1],
                                  *k,
                                  strides[2],
                                  strides[3],
                                  *v,
                                  strides[4],
                                  strides[5],
                                  *o,
                                  strides[6],
                                  strides[7],
                                  cosPtr,
                                  sinPtr,
                                  rotStride,
                                  i64(rotaryDim),
                                  i64(rotFlags)});
  return success();
}

/// Rotary embedding of [batch, heads, tokens, head_dim]: every element
/// reads itself, its partner (the other half, or the other of its pair when
/// interleaved) and the cos/sin entry of its token: the row of its position
/// in the caches, or without positions the token's own row
/// (`cos[b, t, j]`, b = 0 when the caches' batch is 1).
LogicalResult StepLowering::lowerRotary(RotaryOp op) {
  auto type = cast<RankedTensorType>(op.getInput().getType());
  if (type.getRank() != 4 || type.isDynamicDim(3))
    return op.emitError("the CPU backend rotates [batch, heads, tokens, "
                        "head_dim] tensors with a static head_dim only");
  bool perToken = !op.getPositions();
  FailureOr<Value> in = memrefOf(op.getInput(), op),
                   cosM = memrefOf(op.getCos(), op),
                   sinM = memrefOf(op.getSin(), op),
                   out = memrefOf(op.getResult(), op);
  FailureOr<Value> pos =
      perToken ? FailureOr<Value>(Value()) : memrefOf(op.getPositions(), op);
  if (failed(in) || failed(cosM) || failed(sinM) || failed(pos) || failed(out))
    return failure();
  int64_t rd = op.getRotaryDim(), half = rd / 2;
  bool interleaved = op.getInterleaved();
  // Per-token caches of batch 1 serve every sequence of the batch.
  bool cacheBatchOne = perToken &&
                       cast<MemRefType>(cosM->getType()).getDimSize(0) == 1 &&
                       cast<MemRefType>(sinM->getType()).getDimSize(0) == 1;
  SmallVector<AffineMap> maps;
  SmallVector<Value> inputs;
  if (!perToken) {
    maps.push_back(AffineMap::get(
        4, 0, {getAffineDimExpr(0, ctx), getAffineDimExpr(2, ctx)}, ctx));
    inputs.push_back(*pos);
  }
  maps.push_back(AffineMap::getMultiDimIdentityMap(4, ctx));
  SmallVector<utils::IteratorType> iterators(4, utils::IteratorType::parallel);
  auto fm = arith::FastMathFlagsAttr::get(ctx, arith::FastMathFlags::contract);
  linalg::GenericOp::create(
      b, loc, TypeRange{}, inputs, ValueRange{*out}, maps, iterators,
      [&](OpBuilder &nb, Location l, ValueRange a) {
        auto c = [&](int64_t v) -> Value {
          return arith::ConstantIndexOp::create(nb, l, v);
        };
        SmallVector<Value> at;
        for (int64_t i = 0; i < 4; ++i)
          at.push_back(linalg::IndexOp::create(nb, l, i));
        Value i = at[3];
        Value x = memref::LoadOp::create(nb, l, *in, at);
        Value rotated =
            arith::CmpIOp::create(nb, l, arith::CmpIPredicate::ult, i, c(rd));
        // Indices clamped into the rotated part, so that the loads stay in
        // bounds for the elements that pass through.
        Value ir = arith::SelectOp::create(nb, l, rotated, i, c(0));
        Value j, partner, first;
        if (interleaved) {
          j = arith::DivUIOp::create(nb, l, ir, c(2));
          partner = arith::XOrIOp::create(nb, l, ir, c(1));
          first = arith::CmpIOp::create(nb, l, arith::CmpIPredicate::eq,
                                        arith::RemUIOp::create(nb, l, ir, c(2)),
                                        c(0));
        } else {
          first = arith::CmpIOp::create(nb, l, arith::CmpIPredicate::ult, ir,
                                        c(half));
          j = arith::SelectOp::create(
              nb, l, first, ir, arith::SubIOp::create(nb, l, ir, c(half)));
          partner = arith::SelectOp::create(
              nb, l, first, arith::AddIOp::create(nb, l, ir, c(half)), j);
        }
        SmallVector<Value> row;
        if (perToken)
          row = {cacheBatchOne ? c(0) : at[0], at[2], j};
        else
          row = {arith::IndexCastOp::create(nb, l, nb.getIndexType(), a[0]), j};
        SmallVector<Value> partnerAt = {at[0], at[1], at[2], partner};
        Value xp = memref::LoadOp::create(nb, l, *in, partnerAt);
        Value cv = memref::LoadOp::create(nb, l, *cosM, row);
        Value sv = memref::LoadOp::create(nb, l, *sinM, row);
        // first half / even: x cos - x' sin; second half / odd: x cos + x' sin
        Value xs = arith::MulFOp::create(nb, l, xp, sv, fm);
        Value xc = arith::MulFOp::create(nb, l, x, cv, fm);
        Value r = arith::SelectOp::create(
            nb, l, first, arith::SubFOp::create(nb, l, xc, xs, fm),
            arith::AddFOp::create(nb, l, xc, xs, fm));
        linalg::YieldOp::create(
            nb, l, ValueRange{arith::SelectOp::create(nb, l, rotated, r, x)});
      });
  return success();
}

/// reduce_sum / reduce_mean / reduce_max: one linalg.generic with the
/// reduced axes as reduction iterators, into an output filled with the
/// identity; the mean divides by the count afterwards.
LogicalResult StepLowering::lowerReduce(Operation *op, ArrayRef<int64_t> axes,
                                        bool keepdims) {
  FailureOr<Value> in = memrefOf(op->getOperand(0), op),
                   out = memrefOf(op->getResult(0), op);
  if (failed(in) || failed(out))
    return failure();
  auto inType = cast<MemRefType>(in->getType());
  int64_t rank = inType.getRank();
  llvm::SmallDenseSet<int64_t> reduced(axes.begin(), axes.end());
  if (axes.empty())
    for (int64_t i = 0; i < rank; ++i)
      reduced.insert(i);
  SmallVector<AffineExpr> outExprs;
  SmallVector<utils::IteratorType> iterators;
  for (int64_t i = 0; i < rank; ++i) {
    bool r = reduced.contains(i);
    iterators.push_back(r ? utils::IteratorType::reduction
                          : utils::IteratorType::parallel);
    if (!r)
      outExprs.push_back(getAffineDimExpr(i, ctx));
    else if (keepdims)
      outExprs.push_back(getAffineConstantExpr(0, ctx));
  }
  Type elt = inType.getElementType();
  bool isFloat = isa<FloatType>(elt);
  bool isMax = isa<ReduceMaxOp>(op);
  bool isUnsigned = tensorElementOf(op->getOperand(0)).isUnsignedInteger();
  TypedAttr init =
      !isMax || isUnsigned ? b.getZeroAttr(elt)
      : isFloat
          ? TypedAttr(b.getFloatAttr(
                elt, APFloat::getInf(cast<FloatType>(elt).getFloatSemantics(),
                                     /*Negative=*/true)))
          : TypedAttr(b.getIntegerAttr(
                elt, APInt::getSignedMinValue(elt.getIntOrFloatBitWidth())));
  linalg::FillOp::create(
      b, loc, arith::ConstantOp::create(b, loc, init).getResult(), *out);
  SmallVector<AffineMap> maps = {AffineMap::getMultiDimIdentityMap(rank, ctx),
                                 AffineMap::get(rank, 0, outExprs, ctx)};
  auto fm = arith::FastMathFlagsAttr::get(
      ctx, arith::FastMathFlags::reassoc | arith::FastMathFlags::contract);
  linalg::GenericOp::create(
      b, loc, TypeRange{}, ValueRange{*in}, ValueRange{*out}, maps, iterators,
      [&](OpBuilder &nb, Location l, ValueRange a) {
        Value r;
        if (isMax)
          r = isFloat ? arith::MaximumFOp::create(nb, l, a[0], a[1]).getResult()
              : isUnsigned
                  ? arith::MaxUIOp::create(nb, l, a[0], a[1]).getResult()
                  : arith::MaxSIOp::create(nb, l, a[0], a[1]).getResult();
        else
          r = isFloat ? arith::AddFOp::create(nb, l, a[0], a[1], fm).getResult()
                      : arith::AddIOp::create(nb, l, a[0], a[1]).getResult();
        linalg::YieldOp::create(nb, l, r);
      });
  if (!isa<ReduceMeanOp>(op))
    return success();
  if (!isFloat)
    return op->emitError("the CPU backend averages floating-point tensors "
                         "only");
  Value count = index(1);
  for (int64_t axis : reduced)
    count = arith::MulIOp::create(b, loc, count,
                                  memref::DimOp::create(b, loc, *in, axis));
  Value n = arith::UIToFPOp::create(
      b, loc, elt, arith::IndexCastOp::create(b, loc, b.getI64Type(), count));
  int64_t outRank = cast<MemRefType>(out->getType()).getRank();
  linalg::GenericOp::create(
      b, loc, TypeRange{}, ValueRange{}, ValueRange{*out},
      ArrayRef<AffineMap>{AffineMap::getMultiDimIdentityMap(outRank, ctx)},
      SmallVector<utils::IteratorType>(outRank, utils::IteratorType::parallel),
      [&](OpBuilder &nb, Location l, ValueRange a) {
        linalg::YieldOp::create(
            nb, l, ValueRange{arith::DivFOp::create(nb, l, a[0], n)});
      });
  return success();
}

/// `tensor`'s buffer viewed as [outer, size of `axis`, inner]: unit dims
/// added at both ends (so every group is non-empty), then collapsed.
FailureOr<Value> StepLowering::view3d(Value tensor, int64_t axis,
                                      Operation *user) {
  FailureOr<Value> m = memrefOf(tensor, user);
  if (failed(m))
    return failure();
  auto type = cast<MemRefType>(m->getType());
  int64_t rank = type.getRank();
  SmallVector<int64_t> shape = {1};
  llvm::append_range(shape, type.getShape());
  shape.push_back(1);
  SmallVector<ReassociationIndices> pad;
  if (rank == 1) {
    pad.push_back({0, 1, 2});
  } else {
    pad.push_back({0, 1});
    for (int64_t i = 1; i + 1 < rank; ++i)
      pad.push_back({i + 1});
    pad.push_back({rank, rank + 1});
  }
  Value padded = memref::ExpandShapeOp::create(
      b, loc, MemRefType::get(shape, type.getElementType()), *m, pad);
  ReassociationIndices outer, inner;
  for (int64_t i = 0; i <= axis; ++i)
    outer.push_back(i);
  for (int64_t i = axis + 2; i < rank + 2; ++i)
    inner.push_back(i);
  return memref::CollapseShapeOp::create(
             b, loc, padded,
             ArrayRef<ReassociationIndices>{outer, {axis + 1}, inner})
      .getResult();
}

/// softmax / log_softmax along `axis`: per [outer, inner] position, a max
/// pass, a sum-of-exponentials pass and a writing pass.
LogicalResult StepLowering::lowerSoftmax(Operation *op, int64_t axis,
                                         bool log) {
  FailureOr<Value> x = view3d(op->getOperand(0), axis, op),
                   y = view3d(op->getResult(0), axis, op);
  if (failed(x) || failed(y))
    return failure();
  Type elt = cast<MemRefType>(x->getType()).getElementType();
  auto fm = arith::FastMathFlagsAttr::get(ctx, arith::FastMathFlags::contract);
  Value c0 = index(0), c1 = index(1);
  Value outer = memref::DimOp::create(b, loc, *x, 0),
        n = memref::DimOp::create(b, loc, *x, 1),
        inner = memref::DimOp::create(b, loc, *x, 2);
  auto cst = [&](OpBuilder &nb, double v) -> Value {
    return arith::ConstantOp::create(nb, loc, elt, nb.getFloatAttr(elt, v));
  };
  scf::ForOp::create(
      b, loc, c0, outer, c1, ValueRange{},
      [&](OpBuilder &ob, Location l, Value o, ValueRange) {
        scf::ForOp::create(
            ob, l, c0, inner, c1, ValueRange{},
            [&](OpBuilder &ib, Location, Value i, ValueRange) {
              auto fold =
                  [&](Value init,
                      function_ref<Value(OpBuilder &, Value, Value)> step) {
                    return scf::ForOp::create(
                               ib, l, c0, n, c1, ValueRange{init},
                               [&](OpBuilder &kb, Location kl, Value k,
                                   ValueRange acc) {
                                 Value v = memref::LoadOp::create(
                                     kb, kl, *x, ValueRange{o, k, i});
                                 scf::YieldOp::create(
                                     kb, kl, ValueRange{step(kb, acc[0], v)});
                               })
                        .getResult(0);
                  };
              Value max =
                  fold(cst(ib, -INFINITY),
                       [&](OpBuilder &kb, Value acc, Value v) -> Value {
                         return arith::MaximumFOp::create(kb, l, acc, v);
                       });
              Value sum = fold(
                  cst(ib, 0), [&](OpBuilder &kb, Value acc, Value v) -> Value {
                    Value e = math::ExpOp::create(
                        kb, l, arith::SubFOp::create(kb, l, v, max, fm));
                    return arith::AddFOp::create(kb, l, acc, e, fm);
                  });
              Value logSum = math::LogOp::create(ib, l, sum);
              scf::ForOp::create(
                  ib, l, c0, n, c1, ValueRange{},
                  [&](OpBuilder &kb, Location kl, Value k, ValueRange) {
                    Value v =
                        memref::LoadOp::create(kb, kl, *x, ValueRange{o, k, i});
                    Value d = arith::SubFOp::create(kb, kl, v, max, fm);
                    Value r = log ? arith::SubFOp::create(kb, kl, d, logSum, fm)
                                        .getResult()
                                  : arith::DivFOp::create(
                                        kb, kl, math::ExpOp::create(kb, kl, d),
                                        sum, fm)
                                        .getResult();
                    memref::StoreOp::create(kb, kl, r, *y, ValueRange{o, k, i});
                    scf::YieldOp::create(kb, kl);
                  });
              scf::YieldOp::create(ib, l);
            });
        scf::YieldOp::create(ob, l);
      });
  return success();
}

LogicalResult StepLowering::lowerGather(GatherOp op) {
  FailureOr<Value> in = memrefOf(op.getInput(), op),
                   idx = memrefOf(op.getIndices(), op),
                   out = memrefOf(op.getResult(), op);
  if (failed(in) || failed(idx) || failed(out))
    return failure();
  auto inType = cast<MemRefType>(in->getType());
  auto idxType = cast<MemRefType>(idx->getType());
  int64_t axis = op.getAxis(), idxRank = idxType.getRank();
  int64_t rank = cast<MemRefType>(out->getType()).getRank();
  SmallVector<AffineExpr> idxExprs;
  for (int64_t i = 0; i < idxRank; ++i)
    idxExprs.push_back(getAffineDimExpr(axis + i, ctx));
  SmallVector<AffineMap> maps = {AffineMap::get(rank, 0, idxExprs, ctx),
                                 AffineMap::getMultiDimIdentityMap(rank, ctx)};
  SmallVector<utils::IteratorType> iterators(rank,
                                             utils::IteratorType::parallel);
  Value axisSize = memref::DimOp::create(b, loc, *in, axis);
  linalg::GenericOp::create(
      b, loc, TypeRange{}, ValueRange{*idx}, ValueRange{*out}, maps, iterators,
      [&](OpBuilder &nb, Location l, ValueRange a) {
        Value id = arith::IndexCastOp::create(nb, l, nb.getIndexType(), a[0]);
        // Negative indices count from the end, as in ONNX.
        Value zero = arith::ConstantIndexOp::create(nb, l, 0);
        Value neg =
            arith::CmpIOp::create(nb, l, arith::CmpIPredicate::slt, id, zero);
        id = arith::SelectOp::create(
            nb, l, neg, arith::AddIOp::create(nb, l, id, axisSize), id);
        SmallVector<Value> at;
        for (int64_t i = 0; i < axis; ++i)
          at.push_back(linalg::IndexOp::create(nb, l, i));
        at.push_back(id);
        for (int64_t i = axis + 1; i < inType.getRank(); ++i)
          at.push_back(linalg::IndexOp::create(nb, l, i - 1 + idxRank));
        Value v = memref::LoadOp::create(nb, l, *in, at);
        linalg::YieldOp::create(nb, l, ValueRange{v});
      });
  return success();
}

/// Constant starts of a slice, clamped as ONNX does, per sliced axis.
static std::optional<SmallVector<int64_t>> constantInts(Value v) {
  auto c = v.getDefiningOp<ConstantOp>();
  if (!c)
    return std::nullopt;
  auto dense = dyn_cast<DenseIntElementsAttr>(c.getValue());
  if (!dense)
    return std::nullopt;
  SmallVector<int64_t> r;
  for (const APInt &x : dense.getValues<APInt>())
    r.push_back(x.getSExtValue());
  return r;
}

LogicalResult StepLowering::lowerSlice(SliceOp op) {
  auto inType = cast<RankedTensorType>(op.getInput().getType());
  std::optional<SmallVector<int64_t>> starts = constantInts(op.getStarts());
  if (!starts)
    return op.emitError("the CPU backend needs constant slice starts");
  FailureOr<Value> in = memrefOf(op.getInput(), op),
                   out = memrefOf(op.getResult(), op);
  if (failed(in) || failed(out))
    return failure();
  int64_t rank = inType.getRank();
  SmallVector<int64_t> steps, resolved;
  for (auto [i, axis] : llvm::enumerate(op.getAxes())) {
    int64_t step = op.getSteps()[i], start = (*starts)[i];
    if (inType.isDynamicDim(axis) && (start < 0 || step < 0))
      return op.emitError("the CPU backend slices a dynamic axis only from a "
                          "non-negative start with a positive step");
    if (!inType.isDynamicDim(axis)) {
      int64_t size = inType.getDimSize(axis);
      if (start < 0)
        start += size;
      start = step > 0 ? std::clamp<int64_t>(start, 0, size)
                       : std::clamp<int64_t>(start, 0, size - 1);
    }
    steps.push_back(step);
    resolved.push_back(start);
  }
  // The output alone drives the loops: the input is loaded at the mapped
  // indices. (As an input operand, an axis sliced from 0 with step 1 maps
  // by the identity, and linalg would take that loop's bound from the
  // input's larger size and write past the output.)
  Value input = *in;
  SmallVector<AffineMap> maps = {AffineMap::getMultiDimIdentityMap(rank, ctx)};
  SmallVector<utils::IteratorType> iterators(rank,
                                             utils::IteratorType::parallel);
  linalg::GenericOp::create(
      b, loc, TypeRange{}, ValueRange{}, ValueRange{*out}, maps, iterators,
      [&](OpBuilder &nb, Location l, ValueRange) {
        SmallVector<Value> at;
        for (int64_t i = 0; i < rank; ++i)
          at.push_back(linalg::IndexOp::create(nb, l, i));
        for (auto [axis, step, start] :
             llvm::zip(op.getAxes(), steps, resolved))
          at[axis] = arith::AddIOp::create(
              nb, l,
              arith::MulIOp::create(
                  nb, l, at[axis], arith::ConstantIndexOp::create(nb, l, step)),
              arith::ConstantIndexOp::create(nb, l, start));
        linalg::YieldOp::create(
            nb, l, memref::LoadOp::create(nb, l, input, at).getResult());
      });
  return success();
}

LogicalResult StepLowering::lowerConcat(ConcatOp op) {
  FailureOr<Value> out = memrefOf(op.getResult(), op);
  if (failed(out))
    return failure();
  int64_t axis = op.getAxis();
  int64_t rank = cast<MemRefType>(out->getType()).getRank();
  Value offset = index(0);
  for (Value input : op.getInputs()) {
    FailureOr<Value> in = memrefOf(input, op);
    if (failed(in))
      return failure();
    SmallVector<OpFoldResult> sizes = memref::getMixedSizes(b, loc, *in);
    SmallVector<OpFoldResult> offsets(rank, b.getIndexAttr(0));
    SmallVector<OpFoldResult> strides(rank, b.getIndexAttr(1));
    offsets[axis] = offset;
    Value sub =
        memref::SubViewOp::create(b, loc, *out, offsets, sizes, strides);
    linalg::CopyOp::create(b, loc, *in, sub);
    offset = arith::AddIOp::create(b, loc, offset,
                                   memref::DimOp::create(b, loc, *in, axis));
  }
  return success();
}

LogicalResult StepLowering::lowerSplit(SplitOp op) {
  FailureOr<Value> in = memrefOf(op.getInput(), op);
  if (failed(in))
    return failure();
  int64_t axis = op.getAxis();
  int64_t rank = cast<MemRefType>(in->getType()).getRank();
  Value offset = index(0);
  for (Value result : op.getResults()) {
    FailureOr<Value> out = memrefOf(result, op);
    if (failed(out))
      return failure();
    SmallVector<OpFoldResult> sizes = memref::getMixedSizes(b, loc, *out);
    SmallVector<OpFoldResult> offsets(rank, b.getIndexAttr(0));
    SmallVector<OpFoldResult> strides(rank, b.getIndexAttr(1));
    offsets[axis] = offset;
    Value sub = memref::SubViewOp::create(b, loc, *in, offsets, sizes, strides);
    linalg::CopyOp::create(b, loc, sub, *out);
    offset = arith::AddIOp::create(b, loc, offset,
                                   memref::DimOp::create(b, loc, *out, axis));
  }
  return success();
}

/// `v` (an integer) as an index, counted from the end of a dimension of
/// `size` when negative, as ONNX indices are.
static Value wrappedIndex(OpBuilder &nb, Location l, Value v, Value size) {
  Value id = arith::IndexCastOp::create(nb, l, nb.getIndexType(), v);
  Value zero = arith::ConstantIndexOp::create(nb, l, 0);
  Value neg = arith::CmpIOp::create(nb, l, arith::CmpIPredicate::slt, id, zero);
  return arith::SelectOp::create(nb, l, neg,
                                 arith::AddIOp::create(nb, l, id, size), id);
}

/// Trilu: keeps `j - i >= k` (upper) or `j - i <= k` (lower) of the last two
/// dims and zeroes the rest.
LogicalResult StepLowering::lowerTrilu(TriluOp op) {
  FailureOr<Value> in = memrefOf(op.getInput(), op),
                   out = memrefOf(op.getResult(), op);
  if (failed(in) || failed(out))
    return failure();
  Value k = index(0);
  if (op.getK()) {
    FailureOr<Value> km = memrefOf(op.getK(), op);
    if (failed(km))
      return failure();
    k = arith::IndexCastOp::create(b, loc, b.getIndexType(),
                                   memref::LoadOp::create(b, loc, *km));
  }
  int64_t rank = cast<MemRefType>(out->getType()).getRank();
  bool upper = op.getUpper();
  emitGeneric(*in, *out, [&](OpBuilder &nb, Location l, ValueRange a) {
    Value i = linalg::IndexOp::create(nb, l, rank - 2);
    Value j = linalg::IndexOp::create(nb, l, rank - 1);
    Value diff = arith::SubIOp::create(nb, l, j, i);
    Value keep = arith::CmpIOp::create(
        nb, l, upper ? arith::CmpIPredicate::sge : arith::CmpIPredicate::sle,
        diff, k);
    Type t = a[0].getType();
    Value zero = arith::ConstantOp::create(nb, l, t, nb.getZeroAttr(t));
    return arith::SelectOp::create(nb, l, keep, a[0], zero).getResult();
  });
  return success();
}

/// ArgMax: per output element, a loop along the axis keeping the best value
/// and its index; the first maximum wins, or the last with
/// select_last_index.
LogicalResult StepLowering::lowerArgMax(ArgMaxOp op) {
  FailureOr<Value> in = memrefOf(op.getInput(), op),
                   out = memrefOf(op.getResult(), op);
  if (failed(in) || failed(out))
    return failure();
  int64_t axis = op.getAxis();
  bool keepdims = op.getKeepdims(), last = op.getSelectLastIndex();
  Type elt = tensorElementOf(op.getInput());
  int64_t inRank = cast<MemRefType>(in->getType()).getRank();
  int64_t outRank = cast<MemRefType>(out->getType()).getRank();
  Value n = memref::DimOp::create(b, loc, *in, axis);
  Value input = *in;
  linalg::GenericOp::create(
      b, loc, TypeRange{}, ValueRange{}, ValueRange{*out},
      ArrayRef<AffineMap>{AffineMap::getMultiDimIdentityMap(outRank, ctx)},
      SmallVector<utils::IteratorType>(outRank, utils::IteratorType::parallel),
      [&](OpBuilder &nb, Location l, ValueRange) {
        // linalg.index only directly in the generic's region, not in the
        // loop below.
        SmallVector<Value> o;
        for (int64_t d = 0; d < outRank; ++d)
          o.push_back(linalg::IndexOp::create(nb, l, d));
        auto at = [&](Value j) {
          SmallVector<Value> idx;
          for (int64_t d = 0; d < inRank; ++d) {
            if (d == axis)
              idx.push_back(j);
            else
              idx.push_back(o[keepdims || d < axis ? d : d - 1]);
          }
          return idx;
        };
        Value c0 = arith::ConstantIndexOp::create(nb, l, 0);
        Value c1 = arith::ConstantIndexOp::create(nb, l, 1);
        Value first = memref::LoadOp::create(nb, l, input, at(c0));
        auto loop = scf::ForOp::create(
            nb, l, c1, n, c1, ValueRange{first, c0},
            [&](OpBuilder &kb, Location kl, Value j, ValueRange acc) {
              Value v = memref::LoadOp::create(kb, kl, input, at(j));
              Value better;
              if (isa<FloatType>(elt))
                better = arith::CmpFOp::create(kb, kl,
                                               last ? arith::CmpFPredicate::OGE
                                                    : arith::CmpFPredicate::OGT,
                                               v, acc[0]);
              else if (elt.isUnsignedInteger())
                better = arith::CmpIOp::create(kb, kl,
                                               last ? arith::CmpIPredicate::uge
                                                    : arith::CmpIPredicate::ugt,
                                               v, acc[0]);
              else
                better = arith::CmpIOp::create(kb, kl,
                                               last ? arith::CmpIPredicate::sge
                                                    : arith::CmpIPredicate::sgt,
                                               v, acc[0]);
              scf::YieldOp::create(
                  kb, kl,
                  ValueRange{
                      arith::SelectOp::create(kb, kl, better, v, acc[0]),
                      arith::SelectOp::create(kb, kl, better, j, acc[1])});
            });
        linalg::YieldOp::create(
            nb, l,
            ValueRange{arith::IndexCastOp::create(nb, l, nb.getI64Type(),
                                                  loop.getResult(1))});
      });
  return success();
}

/// GatherElements: out[i] = input[i with i[axis] = indices[i]].
LogicalResult StepLowering::lowerGatherElements(GatherElementsOp op) {
  FailureOr<Value> in = memrefOf(op.getInput(), op),
                   idx = memrefOf(op.getIndices(), op),
                   out = memrefOf(op.getResult(), op);
  if (failed(in) || failed(idx) || failed(out))
    return failure();
  int64_t axis = op.getAxis();
  int64_t rank = cast<MemRefType>(out->getType()).getRank();
  Value axisSize = memref::DimOp::create(b, loc, *in, axis);
  Value input = *in;
  emitGeneric(*idx, *out, [&](OpBuilder &nb, Location l, ValueRange a) {
    SmallVector<Value> at;
    for (int64_t d = 0; d < rank; ++d)
      at.push_back(d == axis ? wrappedIndex(nb, l, a[0], axisSize)
                             : linalg::IndexOp::create(nb, l, d).getResult());
    return memref::LoadOp::create(nb, l, input, at).getResult();
  });
  return success();
}

/// GatherND: each output element reads the input at its batch indices, the
/// k indices stored in `indices`, then its trailing indices.
LogicalResult StepLowering::lowerGatherND(GatherNDOp op) {
  FailureOr<Value> in = memrefOf(op.getInput(), op),
                   idx = memrefOf(op.getIndices(), op),
                   out = memrefOf(op.getResult(), op);
  if (failed(in) || failed(idx) || failed(out))
    return failure();
  auto idxType = cast<MemRefType>(idx->getType());
  int64_t batchDims = op.getBatchDims();
  int64_t idxLead = idxType.getRank() - 1, k = idxType.getShape().back();
  int64_t outRank = cast<MemRefType>(out->getType()).getRank();
  SmallVector<Value> sizes;
  for (int64_t t = 0; t < k; ++t)
    sizes.push_back(memref::DimOp::create(b, loc, *in, batchDims + t));
  Value input = *in, indices = *idx;
  linalg::GenericOp::create(
      b, loc, TypeRange{}, ValueRange{}, ValueRange{*out},
      ArrayRef<AffineMap>{AffineMap::getMultiDimIdentityMap(outRank, ctx)},
      SmallVector<utils::IteratorType>(outRank, utils::IteratorType::parallel),
      [&](OpBuilder &nb, Location l, ValueRange) {
        SmallVector<Value> o;
        for (int64_t d = 0; d < outRank; ++d)
          o.push_back(linalg::IndexOp::create(nb, l, d));
        SmallVector<Value> at(o.begin(), o.begin() + batchDims);
        SmallVector<Value> idxAt(o.begin(), o.begin() + idxLead);
        idxAt.push_back(Value());
        for (int64_t t = 0; t < k; ++t) {
          idxAt.back() = arith::ConstantIndexOp::create(nb, l, t);
          Value v = memref::LoadOp::create(nb, l, indices, idxAt);
          at.push_back(wrappedIndex(nb, l, v, sizes[t]));
        }
        at.append(o.begin() + idxLead, o.end());
        linalg::YieldOp::create(
            nb, l, memref::LoadOp::create(nb, l, input, at).getResult());
      });
  return success();
}

/// ScatterND: a copy of the input, then the updates written (or combined
/// with `reduction`) in order, one after the other, so that repeated
/// indices behave as ONNX's reference does.
LogicalResult StepLowering::lowerScatterND(ScatterNDOp op) {
  FailureOr<Value> in = memrefOf(op.getInput(), op),
                   idx = memrefOf(op.getIndices(), op),
                   upd = memrefOf(op.getUpdates(), op),
                   out = memrefOf(op.getResult(), op);
  if (failed(in) || failed(idx) || failed(upd) || failed(out))
    return failure();
  linalg::CopyOp::create(b, loc, *in, *out);
  auto idxType = cast<MemRefType>(idx->getType());
  auto updType = cast<MemRefType>(upd->getType());
  int64_t idxLead = idxType.getRank() - 1, k = idxType.getShape().back();
  SmallVector<Value> lbs, ubs, steps, sizes;
  for (int64_t d = 0; d < updType.getRank(); ++d) {
    lbs.push_back(index(0));
    ubs.push_back(memref::DimOp::create(b, loc, *upd, d));
    steps.push_back(index(1));
  }
  for (int64_t t = 0; t < k; ++t)
    sizes.push_back(memref::DimOp::create(b, loc, *out, t));
  StringRef reduction = op.getReduction();
  Type elt = tensorElementOf(op.getInput());
  bool isFloat = isa<FloatType>(elt), isUnsigned = elt.isUnsignedInteger();
  scf::buildLoopNest(
      b, loc, lbs, ubs, steps, [&](OpBuilder &nb, Location l, ValueRange ivs) {
        SmallVector<Value> idxAt(ivs.begin(), ivs.begin() + idxLead);
        idxAt.push_back(Value());
        SmallVector<Value> at;
        for (int64_t t = 0; t < k; ++t) {
          idxAt.back() = arith::ConstantIndexOp::create(nb, l, t);
          Value v = memref::LoadOp::create(nb, l, *idx, idxAt);
          at.push_back(wrappedIndex(nb, l, v, sizes[t]));
        }
        at.append(ivs.begin() + idxLead, ivs.end());
        Value u = memref::LoadOp::create(nb, l, *upd, ivs);
        if (reduction != "none") {
          Value old = memref::LoadOp::create(nb, l, *out, at);
          if (reduction == "add")
            u = isFloat ? arith::AddFOp::create(nb, l, old, u).getResult()
                        : arith::AddIOp::create(nb, l, old, u).getResult();
          else if (reduction == "mul")
            u = isFloat ? arith::MulFOp::create(nb, l, old, u).getResult()
                        : arith::MulIOp::create(nb, l, old, u).getResult();
          else if (reduction == "max")
            u = isFloat ? arith::MaximumFOp::create(nb, l, old, u).getResult()
                : isUnsigned
                    ? arith::MaxUIOp::create(nb, l, old, u).getResult()
                    : arith::MaxSIOp::create(nb, l, old, u).getResult();
          else
            u = isFloat ? arith::MinimumFOp::create(nb, l, old, u).getResult()
                : isUnsigned
                    ? arith::MinUIOp::create(nb, l, old, u).getResult()
                    : arith::MinSIOp::create(nb, l, old, u).getResult();
        }
        memref::StoreOp::create(nb, l, u, *out, at);
      });
  return success();
}

/// Range: out[i] = start + i * delta (the length is the result's static or
/// planned size).
LogicalResult StepLowering::lowerRange(RangeOp op) {
  FailureOr<Value> start = memrefOf(op.getStart(), op),
                   delta = memrefOf(op.getDelta(), op),
                   out = memrefOf(op.getResult(), op);
  if (failed(start) || failed(delta) || failed(out))
    return failure();
  Value s = memref::LoadOp::create(b, loc, *start);
  Value d = memref::LoadOp::create(b, loc, *delta);
  Type t = s.getType();
  emitGeneric(
      ValueRange{}, *out, [&](OpBuilder &nb, Location l, ValueRange) -> Value {
        Value i = linalg::IndexOp::create(nb, l, 0);
        Value n = isa<FloatType>(t)
                      ? arith::SIToFPOp::create(nb, l, t,
                                                arith::IndexCastOp::create(
                                                    nb, l, nb.getI64Type(), i))
                            .getResult()
                      : arith::IndexCastOp::create(nb, l, t, i).getResult();
        return isa<FloatType>(t)
                   ? arith::AddFOp::create(nb, l, s,
                                           arith::MulFOp::create(nb, l, n, d))
                         .getResult()
                   : arith::AddIOp::create(nb, l, s,
                                           arith::MulIOp::create(nb, l, n, d))
                         .getResult();
      });
  return success();
}

/// ConstantOfShape: the result (whose shape the plan sized) filled with the
/// value.
LogicalResult StepLowering::lowerConstantOfShape(ConstantOfShapeOp op) {
  FailureOr<Value> out = memrefOf(op.getResult(), op);
  if (failed(out))
    return failure();
  TypedAttr value = op.getValue();
  if (auto i = dyn_cast<IntegerAttr>(value))
    value = b.getIntegerAttr(storageType(i.getType()), i.getValue());
  linalg::FillOp::create(
      b, loc, arith::ConstantOp::create(b, loc, value).getResult(), *out);
  return success();
}

/// The scale (or zero point) of element `at` of a quantize/dequantize_linear
/// input: one per tensor, one per slice along `axis`, or one per block of
/// `blockSize` along `axis`.
static Value quantParam(OpBuilder &nb, Location l, Value param, ValueRange at,
                        int64_t axis, int64_t blockSize) {
  auto type = cast<MemRefType>(param.getType());
  if (type.getRank() == 0)
    return memref::LoadOp::create(nb, l, param);
  if (type.getNumElements() == 1)
    return memref::LoadOp::create(
        nb, l, param,
        SmallVector<Value>(type.getRank(),
                           arith::ConstantIndexOp::create(nb, l, 0)));
  if (blockSize == 0)
    return memref::LoadOp::create(nb, l, param, at[axis]);
  SmallVector<Value> idx(at);
  idx[axis] = arith::DivUIOp::create(
      nb, l, at[axis], arith::ConstantIndexOp::create(nb, l, blockSize));
  return memref::LoadOp::create(nb, l, param, idx);
}

/// An integer of `type` (signed or unsigned, as the kiln tensor says) as a
/// float of `to`.
static Value intToFloat(OpBuilder &nb, Location l, Value v, Type type,
                        Type to) {
  if (type.isUnsignedInteger())
    return arith::UIToFPOp::create(nb, l, to, v);
  return arith::SIToFPOp::create(nb, l, to, v);
}

/// DequantizeLinear: (float(x) - float(zero_point)) * scale in f32 (as
/// ONNX's reference computes it), then rounded to the scale's type.
LogicalResult StepLowering::lowerDequantizeLinear(DequantizeLinearOp op) {
  FailureOr<Value> in = memrefOf(op.getInput(), op),
                   scale = memrefOf(op.getScale(), op),
                   out = memrefOf(op.getResult(), op);
  FailureOr<Value> zp = op.getZeroPoint() ? memrefOf(op.getZeroPoint(), op)
                                          : FailureOr<Value>(Value());
  if (failed(in) || failed(scale) || failed(zp) || failed(out))
    return failure();
  Type inElt = tensorElementOf(op.getInput());
  Type outElt = tensorElementOf(op.getResult());
  Type ct = outElt.isF64() ? outElt : b.getF32Type();
  int64_t axis = op.getAxis(), blockSize = op.getBlockSize();
  int64_t rank = cast<MemRefType>(out->getType()).getRank();
  Value scaleM = *scale, zpM = *zp;
  Type zpElt = zpM ? tensorElementOf(op.getZeroPoint()) : Type();
  emitGeneric(*in, *out, [&](OpBuilder &nb, Location l, ValueRange a) {
    SmallVector<Value> at;
    for (int64_t d = 0; d < rank; ++d)
      at.push_back(linalg::IndexOp::create(nb, l, d));
    Value x = intToFloat(nb, l, a[0], inElt, ct);
    if (zpM)
      x = arith::SubFOp::create(
          nb, l, x,
          intToFloat(nb, l, quantParam(nb, l, zpM, at, axis, blockSize), zpElt,
                     ct));
    Value s =
        convertFloat(nb, l, quantParam(nb, l, scaleM, at, axis, blockSize), ct);
    return convertFloat(nb, l, arith::MulFOp::create(nb, l, x, s), outElt);
  });
  return success();
}

/// QuantizeLinear: clamp(round_half_even(x / scale) + zero_point) to the
/// result type's range; the division in x's type, as ONNX's reference.
LogicalResult StepLowering::lowerQuantizeLinear(QuantizeLinearOp op) {
  FailureOr<Value> in = memrefOf(op.getInput(), op),
                   scale = memrefOf(op.getScale(), op),
                   out = memrefOf(op.getResult(), op);
  FailureOr<Value> zp = op.getZeroPoint() ? memrefOf(op.getZeroPoint(), op)
                                          : FailureOr<Value>(Value());
  if (failed(in) || failed(scale) || failed(zp) || failed(out))
    return failure();
  Type outElt = tensorElementOf(op.getResult());
  unsigned bits = outElt.getIntOrFloatBitWidth();
  if (bits > 32)
    return op.emitError() << "the CPU backend quantizes to integers of at "
                             "most 32 bits, got "
                          << outElt;
  bool isUnsigned = outElt.isUnsignedInteger();
  int64_t lo = isUnsigned ? 0 : -(int64_t(1) << (bits - 1));
  int64_t hi =
      isUnsigned ? (int64_t(1) << bits) - 1 : (int64_t(1) << (bits - 1)) - 1;
  int64_t axis = op.getAxis(), blockSize = op.getBlockSize();
  int64_t rank = cast<MemRefType>(out->getType()).getRank();
  Value scaleM = *scale, zpM = *zp;
  Type zpElt = zpM ? tensorElementOf(op.getZeroPoint()) : Type();
  Type store = storageType(outElt);
  emitGeneric(*in, *out, [&](OpBuilder &nb, Location l, ValueRange a) {
    SmallVector<Value> at;
    for (int64_t d = 0; d < rank; ++d)
      at.push_back(linalg::IndexOp::create(nb, l, d));
    Type ft = a[0].getType();
    Type i64 = nb.getI64Type();
    Value s =
        convertFloat(nb, l, quantParam(nb, l, scaleM, at, axis, blockSize), ft);
    Value r =
        math::RoundEvenOp::create(nb, l, arith::DivFOp::create(nb, l, a[0], s));
    // Clamped in floating point first, so that the conversion is defined.
    auto fc = [&](double v) -> Value {
      return arith::ConstantOp::create(nb, l, ft, nb.getFloatAttr(ft, v));
    };
    r = arith::MaximumFOp::create(nb, l, r, fc(-2147483648.0));
    r = arith::MinimumFOp::create(nb, l, r, fc(2147483647.0));
    Value q = arith::FPToSIOp::create(nb, l, i64, r);
    if (zpM) {
      Value z = quantParam(nb, l, zpM, at, axis, blockSize);
      z = zpElt.isUnsignedInteger()
              ? arith::ExtUIOp::create(nb, l, i64, z).getResult()
              : arith::ExtSIOp::create(nb, l, i64, z).getResult();
      q = arith::AddIOp::create(nb, l, q, z);
    }
    q = arith::MaxSIOp::create(nb, l, q,
                               arith::ConstantIntOp::create(nb, l, i64, lo));
    q = arith::MinSIOp::create(nb, l, q,
                               arith::ConstantIntOp::create(nb, l, i64, hi));
    return arith::TruncIOp::create(nb, l, store, q).getResult();
  });
  return success();
}

/// kiln.attention on static shapes (graph mode; the step function has
/// kiln.paged_attention instead). Per (batch, head, query): scores of every
/// key the query may see (key_lengths, causal, window and a boolean or -inf
/// mask decide which), softcapped, plus an additive mask; softmax; the
/// weighted sum of the values. Math in f32 (f64 for f64 tensors); a query
/// that sees no key yields zeros.
LogicalResult StepLowering::lowerAttention(AttentionOp op) {
  for (Value v : {op.getQuery(), op.getKey(), op.getValue()})
    if (!cast<RankedTensorType>(v.getType()).hasStaticShape())
      return op.emitError()
             << "the CPU backend runs 'kiln.attention' on static shapes only "
                "(graph mode), got "
             << v.getType()
             << "; a model's attention must become kiln.paged_attention "
                "(--kiln-insert-kv-cache)";
  FailureOr<Value> q = memrefOf(op.getQuery(), op),
                   k = memrefOf(op.getKey(), op),
                   v = memrefOf(op.getValue(), op),
                   out = memrefOf(op.getResult(), op);
  FailureOr<Value> mask =
      op.getMask() ? memrefOf(op.getMask(), op) : FailureOr<Value>(Value());
  FailureOr<Value> lengths = op.getKeyLengths()
                                 ? memrefOf(op.getKeyLengths(), op)
                                 : FailureOr<Value>(Value());
  if (failed(q) || failed(k) || failed(v) || failed(out) || failed(mask) ||
      failed(lengths))
    return failure();
  auto qt = cast<MemRefType>(q->getType()), kt = cast<MemRefType>(k->getType()),
       vt = cast<MemRefType>(v->getType());
  int64_t batch = qt.getDimSize(0), hq = qt.getDimSize(1),
          seq = qt.getDimSize(2), d = qt.getDimSize(3);
  int64_t hkv = kt.getDimSize(1), total = kt.getDimSize(2),
          dv = vt.getDimSize(3);
  Type elt = qt.getElementType();
  Type ct = elt.isF64() ? elt : b.getF32Type();
  float scale = op.getScale().convertToFloat();
  float softcap = op.getSoftcap().convertToFloat();
  int64_t wl = op.getWindowLeft(), wr = op.getWindowRight();
  bool causal = op.getCausal();
  Value maskM = *mask, lengthsM = *lengths;
  bool boolMask =
      maskM && cast<MemRefType>(maskM.getType()).getElementType().isInteger(1);
  Value qM = *q, kM = *k, vM = *v, outM = *out;
  // Per-query scratch on the stack: the scores of one row and the
  // accumulated output row.
  Value scores = memref::AllocaOp::create(b, loc, MemRefType::get({total}, ct));
  Value acc = memref::AllocaOp::create(b, loc, MemRefType::get({dv}, ct));
  auto fm = arith::FastMathFlagsAttr::get(ctx, arith::FastMathFlags::contract);
  Value c0 = index(0), c1 = index(1);
  scf::buildLoopNest(
      b, loc, ValueRange{c0, c0, c0},
      ValueRange{index(batch), index(hq), index(seq)}, ValueRange{c1, c1, c1},
      [&](OpBuilder &nb, Location l, ValueRange ivs) {
        auto c = [&](int64_t x) -> Value {
          return arith::ConstantIndexOp::create(nb, l, x);
        };
        auto f = [&](OpBuilder &fb, double x) -> Value {
          return arith::ConstantOp::create(fb, l, ct, fb.getFloatAttr(ct, x));
        };
        Value bi = ivs[0], hi = ivs[1], i = ivs[2];
        Value kh = arith::DivUIOp::create(nb, l, hi, c(hq / hkv));
        Value len = c(total);
        if (lengthsM)
          len = arith::IndexCastOp::create(
              nb, l, nb.getIndexType(),
              memref::LoadOp::create(nb, l, lengthsM, ValueRange{bi}));
        // The query's absolute position: the queries are the last `seq`
        // of the `len` keys.
        Value p = arith::AddIOp::create(
            nb, l, i, arith::SubIOp::create(nb, l, len, c(seq)));
        Value negInf = f(nb, -INFINITY);
        // Pass 1: scores (-inf where the key is not seen) and their max.
        Value max =
            scf::ForOp::create(
                nb, l, c0, c(total), c1, ValueRange{negInf},
                [&](OpBuilder &jb, Location jl, Value j, ValueRange m) {
                  Value seen = arith::ConstantIntOp::create(jb, jl, 1, 1);
                  auto also = [&](arith::CmpIPredicate pred, Value x, Value y) {
                    seen = arith::AndIOp::create(
                        jb, jl, seen,
                        arith::CmpIOp::create(jb, jl, pred, x, y));
                  };
                  if (lengthsM)
                    also(arith::CmpIPredicate::slt, j, len);
                  if (causal)
                    also(arith::CmpIPredicate::sle, j, p);
                  if (wl >= 0)
                    also(arith::CmpIPredicate::sge, j,
                         arith::SubIOp::create(jb, jl, p, c(wl)));
                  if (wr >= 0)
                    also(arith::CmpIPredicate::sle, j,
                         arith::AddIOp::create(jb, jl, p, c(wr)));
                  Value dot =
                      scf::ForOp::create(
                          jb, jl, c0, c(d), c1, ValueRange{f(jb, 0)},
                          [&](OpBuilder &eb, Location el, Value e,
                              ValueRange s) {
                            Value x = convertFloat(
                                eb, el,
                                memref::LoadOp::create(
                                    eb, el, qM, ValueRange{bi, hi, i, e}),
                                ct);
                            Value y = convertFloat(
                                eb, el,
                                memref::LoadOp::create(
                                    eb, el, kM, ValueRange{bi, kh, j, e}),
                                ct);
                            scf::YieldOp::create(
                                eb, el,
                                ValueRange{arith::AddFOp::create(
                                    eb, el, s[0],
                                    arith::MulFOp::create(eb, el, x, y, fm),
                                    fm)});
                          })
                          .getResult(0);
                  Value s = arith::MulFOp::create(jb, jl, dot, f(jb, scale));
                  if (softcap > 0)
                    s = arith::MulFOp::create(
                        jb, jl, f(jb, softcap),
                        math::TanhOp::create(
                            jb, jl,
                            arith::DivFOp::create(jb, jl, s, f(jb, softcap))));
                  if (maskM) {
                    // Broadcast to [batch, q_heads, seq, total], aligned
                    // right.
                    auto mt = cast<MemRefType>(maskM.getType());
                    Value full[4] = {bi, hi, i, j};
                    SmallVector<Value> at;
                    for (int64_t x = 0; x < mt.getRank(); ++x)
                      at.push_back(mt.getDimSize(x) == 1
                                       ? c0
                                       : full[4 - mt.getRank() + x]);
                    Value mv = memref::LoadOp::create(jb, jl, maskM, at);
                    if (boolMask) {
                      seen = arith::AndIOp::create(jb, jl, seen, mv);
                    } else {
                      mv = convertFloat(jb, jl, mv, ct);
                      seen = arith::AndIOp::create(
                          jb, jl, seen,
                          arith::CmpFOp::create(
                              jb, jl, arith::CmpFPredicate::UNE, mv, negInf));
                      s = arith::AddFOp::create(jb, jl, s, mv);
                    }
                  }
                  s = arith::SelectOp::create(jb, jl, seen, s, negInf);
                  memref::StoreOp::create(jb, jl, s, scores, ValueRange{j});
                  scf::YieldOp::create(
                      jb, jl,
                      ValueRange{arith::MaximumFOp::create(jb, jl, m[0], s)});
                })
                .getResult(0);
        // Pass 2: exponentials, their sum, and the weighted values.
        scf::ForOp::create(
            nb, l, c0, c(dv), c1, ValueRange{},
            [&](OpBuilder &eb, Location el, Value e, ValueRange) {
              memref::StoreOp::create(eb, el, f(eb, 0), acc, ValueRange{e});
              scf::YieldOp::create(eb, el);
            });
        Value sum =
            scf::ForOp::create(
                nb, l, c0, c(total), c1, ValueRange{f(nb, 0)},
                [&](OpBuilder &jb, Location jl, Value j, ValueRange s) {
                  Value sj =
                      memref::LoadOp::create(jb, jl, scores, ValueRange{j});
                  Value unseen = arith::CmpFOp::create(
                      jb, jl, arith::CmpFPredicate::OEQ, sj, negInf);
                  Value pj = arith::SelectOp::create(
                      jb, jl, unseen, f(jb, 0),
                      math::ExpOp::create(
                          jb, jl, arith::SubFOp::create(jb, jl, sj, max)));
                  // Keys not seen add nothing (not even 0 * a NaN value).
                  scf::IfOp::create(
                      jb, jl,
                      arith::XOrIOp::create(
                          jb, jl, unseen,
                          arith::ConstantIntOp::create(jb, jl, 1, 1)),
                      [&](OpBuilder &ib, Location il) {
                        scf::ForOp::create(
                            ib, il, c0, c(dv), c1, ValueRange{},
                            [&](OpBuilder &eb, Location el, Value e,
                                ValueRange) {
                              Value x = convertFloat(
                                  eb, el,
                                  memref::LoadOp::create(
                                      eb, el, vM, ValueRange{bi, kh, j, e}),
                                  ct);
                              Value a = memref::LoadOp::create(eb, el, acc,
                                                               ValueRange{e});
                              memref::StoreOp::create(
                                  eb, el,
                                  arith::AddFOp::create(
                                      eb, el, a,
                                      arith::MulFOp::create(eb, el, pj, x, fm),
                                      fm),
                                  acc, ValueRange{e});
                              scf::YieldOp::create(eb, el);
                            });
                        scf::YieldOp::create(ib, il);
                      });
                  scf::YieldOp::create(
                      jb, jl,
                      ValueRange{arith::AddFOp::create(jb, jl, s[0], pj, fm)});
                })
                .getResult(0);
        // Pass 3: normalize; a query that sees no key gets zeros.
        Value none = arith::CmpFOp::create(nb, l, arith::CmpFPredicate::OEQ,
                                           max, negInf);
        scf::ForOp::create(
            nb, l, c0, c(dv), c1, ValueRange{},
            [&](OpBuilder &eb, Location el, Value e, ValueRange) {
              Value a = memref::LoadOp::create(eb, el, acc, ValueRange{e});
              Value o = arith::SelectOp::create(
                  eb, el, none, f(eb, 0),
                  arith::DivFOp::create(eb, el, a, sum));
              memref::StoreOp::create(eb, el, convertFloat(eb, el, o, elt),
                                      outM, ValueRange{bi, hi, i, e});
              scf::YieldOp::create(eb, el);
            });
      });
  return success();
}

/// Element types the loops handle: signless and unsigned integers (stored
/// as signless, storageType) and IEEE floats of 16 to 64 bits (plus
/// bfloat16); float8 in casts only. Anything else is named in an error.
static LogicalResult checkElementTypes(Operation *op) {
  for (Value v : llvm::concat<Value>(op->getOperands(), op->getResults())) {
    auto type = dyn_cast<RankedTensorType>(v.getType());
    if (!type)
      continue;
    Type e = type.getElementType();
    bool ok = e.isSignlessInteger() || e.isUnsignedInteger() || e.isF16() ||
              e.isBF16() || e.isF32() || e.isF64();
    if (isFloat8(e) && !isa<CastOp, ReshapeOp, ConstantOp>(op))
      return op->emitError() << "element type " << e
                             << " is supported by the CPU backend in casts "
                                "only (kiln.cast to or from it)";
    if (!ok && !isFloat8(e))
      return op->emitError() << "element type " << e
                             << " is not supported by the CPU backend yet";
  }
  return success();
}

LogicalResult StepLowering::lower(Operation *op) {
  loc = op->getLoc();
  if (failed(checkElementTypes(op)))
    return failure();
  if (isa<ReshapeOp>(op) || inPlace.contains(op) || isSkippedTranspose(op))
    return success(); // aliases / views read in place by their users
  if (writtenTransposed.contains(op))
    return success(); // its input's producer wrote it
  if (fused.contains(op) || rotaryInAttention.contains(op))
    return success(); // computed in its user's loop or kernel
  if (isSkippedDequantize(op))
    return success(); // the quantized matmul kernel reads the weight
  if (auto w = dyn_cast<WeightOp>(op)) {
    auto global =
        SymbolTable::lookupNearestSymbolFrom<GlobalOp>(op, w.getNameAttr());
    auto offset = global ? global->getAttrOfType<IntegerAttr>("kiln.offset")
                         : IntegerAttr();
    if (!offset)
      return op->emitError("weight has no offset in the weights file "
                           "(kiln.offset on its kiln.global)");
    placements[w.getResult()] = {weightsPtr, weightsBytesView, offset.getInt()};
    return success();
  }
  if (auto c = dyn_cast<ConstantOp>(op)) {
    auto type = cast<RankedTensorType>(c.getType());
    auto memrefType =
        MemRefType::get(type.getShape(), storageType(type.getElementType()));
    auto value = dyn_cast<DenseElementsAttr>(c.getValue());
    if (!value)
      return op->emitError("the CPU backend needs dense constants");
    if (memrefType.getElementType() != type.getElementType())
      value = value.bitcast(memrefType.getElementType());
    std::string name = "__kiln_constant_" + std::to_string(constantCount++);
    {
      OpBuilder::InsertionGuard g(b);
      b.setInsertionPointToStart(module.getBody());
      memref::GlobalOp::create(
          b, loc, name, b.getStringAttr("private"), memrefType,
          value.reshape(RankedTensorType::get(type.getShape(),
                                              memrefType.getElementType())),
          /*constant=*/true, b.getI64IntegerAttr(kAlign));
    }
    memrefs[c.getResult()] =
        memref::GetGlobalOp::create(b, loc, memrefType, name);
    return success();
  }
  for (Value r : op->getResults()) {
    if (auto it = views.find(r); it != views.end())
      r = it->second.base; // written through a view (writtenTransposed)
    if (arenaOffset.count(r))
      placements[r] = {arenaPtr, arenaBytesView, arenaOffset[r]};
  }
  if (addNorms.count(op))
    return success(); // computed in its norm's loop
  // Reads the weights file directly: not outlined (the outlined functions
  // see only their tensors' buffers).
  if (auto g = dyn_cast<GatherOp>(op))
    if (DequantizeOp dq = quantizedTableOf(g); dq && isSkippedDequantize(dq))
      return lowerQuantGather(g, dq);
  bool kernelCall = isa<PagedAttentionOp>(op);
  if (auto mm = dyn_cast<MatMulOp>(op))
    kernelCall = isKernelMatMul(mm);
  return kernelCall ? dispatch(op) : outlined(op);
}

/// The loops of `op` in a private function of its operand and result
/// buffers, created once per distinct op (name, attributes, buffer types,
/// constant operands, the fused tree or residual add) and called with this
/// op's buffers.
LogicalResult StepLowering::outlined(Operation *op) {
  SmallVector<Value> tensors, buffers;
  std::string key;
  llvm::raw_string_ostream os(key);
  os << op->getName() << op->getAttrDictionary();
  // With fused producers: their leaves are the function's inputs, and the
  // tree's ops are part of what the function computes.
  SmallVector<Value> operands(op->getOperands()), results(op->getResults());
  if (AddOp add = residualAddOf(op)) {
    // A norm that computes its residual add reads the add's operands, and
    // writes the sum where the add has other readers: a norm of the same
    // buffers that does not must not share its function.
    bool stored = !add.getResult().hasOneUse();
    operands.assign({add.getLhs(), add.getRhs()});
    llvm::append_range(operands, op->getOperands().drop_front());
    if (stored)
      results.push_back(add.getResult());
    os << "(add" << (stored ? ", stored" : "") << ")";
  } else if (llvm::any_of(op->getOperands(), [&](Value v) {
               return v.getDefiningOp() && fused.contains(v.getDefiningOp());
             })) {
    operands = fusedLeaves(op);
    std::function<void(Operation *)> describe = [&](Operation *node) {
      os << "(" << node->getName() << node->getAttrDictionary() << ":"
         << node->getResult(0).getType();
      for (Value operand : elementwiseOperands(node)) {
        Operation *def = operand.getDefiningOp();
        if (def && fused.contains(def))
          describe(def);
        else
          os << " #" << llvm::find(operands, operand) - operands.begin();
      }
      os << ")";
    };
    describe(op);
  }
  for (Value v : llvm::concat<Value>(operands, results)) {
    if (!isa<RankedTensorType>(v.getType()))
      continue;
    FailureOr<Value> m = memrefOf(v, op);
    if (failed(m))
      return failure();
    // An operand repeated (x * x) is one buffer inside the function: only
    // ops that repeat the same operands share it.
    if (auto *same = llvm::find(tensors, v); same != tensors.end())
      os << "|=#" << same - tensors.begin();
    tensors.push_back(v);
    buffers.push_back(*m);
    os << "|" << m->getType();
    // Unsigned and signless integers share buffer types, not loops.
    if (Type e = tensorElementOf(v); e != storageType(e))
      os << "(" << e << ")";
    if (auto c = v.getDefiningOp<ConstantOp>())
      os << "=" << c.getValue();
  }
  func::FuncOp &fn = outlinedFunctions[key];
  if (!fn) {
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToEnd(module.getBody());
    SmallVector<Type> types;
    for (Value m : buffers)
      types.push_back(m.getType());
    std::string name = "__kiln_" + op->getName().stripDialect().str() + "_" +
                       std::to_string(outlinedFunctions.size());
    fn = func::FuncOp::create(b, op->getLoc(), name,
                              b.getFunctionType(types, {}));
    fn.setPrivate();
    fn->setAttr("no_inline", b.getUnitAttr());
    Block *entry = fn.addEntryBlock();
    b.setInsertionPointToStart(entry);
    DenseMap<Value, Value> saved;
    std::swap(saved, memrefs);
    for (auto [t, arg] : llvm::zip(tensors, entry->getArguments()))
      memrefs[t] = arg;
    LogicalResult result = dispatch(op);
    std::swap(saved, memrefs);
    func::ReturnOp::create(b, op->getLoc());
    if (failed(result))
      return failure();
  }
  func::CallOp::create(b, op->getLoc(), fn, buffers);
  return success();
}

LogicalResult StepLowering::dispatch(Operation *op) {
  return llvm::TypeSwitch<Operation *, LogicalResult>(op)
      .Case([&](MatMulOp m) { return lowerMatMul(m); })
      .Case([&](RMSNormOp n) {
        return lowerNorm(n, n.getInput(), n.getScale(), Value(), n.getAxis(),
                         n.getEpsilon().convertToFloat(), true);
      })
      .Case([&](LayerNormOp n) {
        return lowerNorm(n, n.getInput(), n.getScale(), n.getBias(),
                         n.getAxis(), n.getEpsilon().convertToFloat(), false);
      })
      .Case([&](PagedAttentionOp a) { return lowerPagedAttention(a); })
      .Case([&](RotaryOp r) { return lowerRotary(r); })
      .Case<ReduceSumOp, ReduceMeanOp, ReduceMaxOp>(
          [&](auto r) { return lowerReduce(r, r.getAxes(), r.getKeepdims()); })
      .Case([&](SoftmaxOp s) { return lowerSoftmax(s, s.getAxis(), false); })
      .Case([&](LogSoftmaxOp s) { return lowerSoftmax(s, s.getAxis(), true); })
      .Case([&](DequantizeOp d) -> LogicalResult {
        auto type = cast<QTensorType>(d.getInput().getType());
        std::optional<std::string> why = quantKernelMismatch(type);
        return d.emitError()
               << "the CPU backend reads quantized weights only as the "
                  "right-hand side of a matmul (matmul(x, transpose(dequantize("
                  "w)))) or as a table gathered by rows on axis 0"
               << (why ? "; this one has no kernel: " + *why : std::string());
      })
      .Case([&](GatherOp g) { return lowerGather(g); })
      .Case([&](SliceOp s) { return lowerSlice(s); })
      .Case([&](ConcatOp c) { return lowerConcat(c); })
      .Case([&](SplitOp s) { return lowerSplit(s); })
      .Case([&](TriluOp t) { return lowerTrilu(t); })
      .Case([&](ArgMaxOp a) { return lowerArgMax(a); })
      .Case([&](GatherElementsOp g) { return lowerGatherElements(g); })
      .Case([&](GatherNDOp g) { return lowerGatherND(g); })
      .Case([&](ScatterNDOp s) { return lowerScatterND(s); })
      .Case([&](RangeOp r) { return lowerRange(r); })
      .Case([&](ConstantOfShapeOp c) { return lowerConstantOfShape(c); })
      .Case([&](DequantizeLinearOp d) { return lowerDequantizeLinear(d); })
      .Case([&](QuantizeLinearOp q) { return lowerQuantizeLinear(q); })
      .Case([&](AttentionOp a) { return lowerAttention(a); })
      .Default([&](Operation *other) -> LogicalResult {
        if (isFusibleElementwise(other) || isa<TransposeOp>(other))
          return lowerElementwise(other);
        return other->emitError()
               << "'" << other->getName()
               << "' is not supported by the CPU backend yet";
      });
}

/// The kiln_step_args and kiln_kernels struct types.
LogicalResult StepLowering::planAndDeclareTypes() {
  if (failed(plan()))
    return failure();
  auto ptrType = LLVM::LLVMPointerType::get(ctx);
  auto i64Type = b.getI64Type();
  auto i32Type = b.getI32Type();
  // kiln_step_args: every field is 8 bytes, pointers except the counts.
  SmallVector<Type> stepFields(kNumStepFields, ptrType);
  stepFields[kNumTokens] = i64Type;
  stepFields[4] = i64Type; // num_seqs
  stepFields[7] = i64Type; // max_blocks_per_seq
  stepFields[kNumLogitRows] = i64Type;
  stepType = LLVM::LLVMStructType::getLiteral(ctx, stepFields);
  SmallVector<Type> kernelFields(kNumKernelFields, ptrType);
  kernelFields[0] = kernelFields[1] = i32Type;
  kernelsType = LLVM::LLVMStructType::getLiteral(ctx, kernelFields);
  return success();
}

/// Lowers every op of the graph into `entry` (the builder's block).
LogicalResult StepLowering::lowerBody(Block &entry) {
  for (Operation &op : graph.getBody().front()) {
    if (isa<func::ReturnOp>(op))
      break;
    if (failed(lower(&op)))
      return failure();
  }
  return success();
}

LogicalResult StepLowering::run() {
  Block &body = graph.getBody().front();
  output = root(body.getTerminator()->getOperand(0));
  if (!output.getDefiningOp() ||
      isa<WeightOp, ConstantOp>(output.getDefiningOp()))
    return graph.emitError("the logits must be computed, not a weight, "
                           "constant or argument");
  if (failed(planAndDeclareTypes()))
    return failure();
  auto ptrType = LLVM::LLVMPointerType::get(ctx);
  auto i64Type = b.getI64Type();
  auto i32Type = b.getI32Type();

  b.setInsertionPointToEnd(module.getBody());
  auto fn =
      func::FuncOp::create(b, graph.getLoc(), "kiln_model_step",
                           b.getFunctionType({ptrType, ptrType}, {i32Type}));
  Block *entry = fn.addEntryBlock();
  stepArg = entry->getArgument(0);
  kernelsArg = entry->getArgument(1);
  b.setInsertionPointToStart(entry);
  loc = graph.getLoc();
  arenaPtr = loadStepField(kArena, ptrType);
  arenaBytesView = bytesView(arenaPtr);
  weightsPtr = loadStepField(kWeights, ptrType);
  weightsBytesView = bytesView(weightsPtr);
  poolPtr = loadStepField(kPool, ptrType);
  symbols["tokens"] = arith::IndexCastOp::create(
      b, loc, b.getIndexType(), loadStepField(kNumTokens, i64Type));
  symbols["logit_rows"] = arith::IndexCastOp::create(
      b, loc, b.getIndexType(), loadStepField(kNumLogitRows, i64Type));

  // Step inputs.
  for (BlockArgument arg : body.getArguments()) {
    auto role = graph.getArgAttrOfType<StringAttr>(arg.getArgNumber(),
                                                   "kiln.step_input");
    if (!role)
      return graph.emitError() << "argument #" << arg.getArgNumber()
                               << " is not a step input; run "
                                  "--kiln-insert-kv-cache first";
    StepField field;
    if (role.getValue() == "token_ids")
      field = kTokenIds;
    else if (role.getValue() == "positions")
      field = kPositions;
    else if (role.getValue() == "logit_rows")
      field = kLogitRows;
    else if (role.getValue() == "kv_cache")
      continue;
    else
      return graph.emitError()
             << "unknown step input '" << role.getValue() << "'";
    if (!cast<RankedTensorType>(arg.getType()).getElementType().isInteger(64))
      return graph.emitError()
             << "step input '" << role.getValue() << "' must be i64";
    Value ptr = loadStepField(field, ptrType);
    placements[arg] = {ptr, bytesView(ptr), 0};
  }
  Value logitsPtr = loadStepField(kLogits, ptrType);
  placements[output] = {logitsPtr, bytesView(logitsPtr), 0};

  if (failed(lowerBody(*entry)))
    return failure();
  b.setInsertionPointToEnd(entry);
  func::ReturnOp::create(b, loc,
                         ValueRange{arith::ConstantOp::create(
                             b, loc, i32Type, b.getI32IntegerAttr(0))});

  // What the runtime checks when it opens the library.
  b.setInsertionPointToEnd(module.getBody());
  auto exportConstant = [&](StringRef name, int64_t value) {
    LLVM::GlobalOp::create(b, loc, i64Type, /*isConstant=*/true,
                           LLVM::Linkage::External, name,
                           b.getI64IntegerAttr(value));
  };
  exportConstant("kiln_model_abi_version", KILN_MODEL_ABI_VERSION);
  exportConstant("kiln_model_arena_bytes", arenaBytes);
  exportConstant("kiln_model_max_tokens", maxTokens);
  module->setAttr("kiln.arena_bytes", b.getI64IntegerAttr(arenaBytes));
  // When every layer attends a sliding window, the keys a query at p can
  // see start at p - kv_window: the runtime frees the KV blocks before
  // that (-1: some layer attends every earlier key).
  int64_t kvWindow = 0;
  graph.walk([&](PagedAttentionOp op) {
    auto window = static_cast<int64_t>(op.getWindow()); // I64Attr: unsigned
    kvWindow = window < 0 || kvWindow < 0 ? -1 : std::max(kvWindow, window);
  });
  exportConstant("kiln_model_kv_window", kvWindow);
  module->setAttr("kiln.kv_window", b.getI64IntegerAttr(kvWindow));

  // The graph and its weight declarations are now in the step function.
  graph.erase();
  for (auto global : llvm::make_early_inc_range(module.getOps<GlobalOp>()))
    global.erase();
  return success();
}

LogicalResult StepLowering::runGraph() {
  if (!module.getOps<GlobalOp>().empty())
    return graph.emitError("the graph mode does not support weights");
  Block &body = graph.getBody().front();
  for (BlockArgument arg : body.getArguments()) {
    auto type = dyn_cast<RankedTensorType>(arg.getType());
    if (!type || !type.hasStaticShape())
      return graph.emitError()
             << "the graph mode needs static shapes; argument #"
             << arg.getArgNumber() << " is " << arg.getType();
  }
  if (failed(planAndDeclareTypes()))
    return failure();
  auto ptrType = LLVM::LLVMPointerType::get(ctx);
  auto i32Type = b.getI32Type();
  b.setInsertionPointToEnd(module.getBody());
  auto fn = func::FuncOp::create(
      b, graph.getLoc(), "kiln_graph_run",
      b.getFunctionType({ptrType, ptrType, ptrType, ptrType}, {i32Type}));
  Block *entry = fn.addEntryBlock();
  kernelsArg = entry->getArgument(3);
  b.setInsertionPointToStart(entry);
  loc = graph.getLoc();
  // Element `i` of an array of pointers.
  auto pointerAt = [&](Value array, int64_t i) -> Value {
    Value addr = LLVM::GEPOp::create(b, loc, ptrType, ptrType, array,
                                     ArrayRef<LLVM::GEPArg>{i64(i)});
    return LLVM::LoadOp::create(b, loc, ptrType, addr);
  };
  arenaPtr = entry->getArgument(2);
  arenaBytesView = bytesView(arenaPtr);
  poolPtr = LLVM::ZeroOp::create(b, loc, ptrType);
  for (BlockArgument arg : body.getArguments()) {
    Value ptr = pointerAt(entry->getArgument(0), arg.getArgNumber());
    placements[arg] = {ptr, bytesView(ptr), 0};
  }
  if (failed(lowerBody(*entry)))
    return failure();
  // Results are copied out: they may be arguments, constants or aliases.
  for (auto [j, result] :
       llvm::enumerate(body.getTerminator()->getOperands())) {
    auto type = cast<RankedTensorType>(result.getType());
    if (!type.hasStaticShape())
      return graph.emitError() << "the graph mode needs static shapes; "
                                  "result #"
                               << j << " is " << type;
    FailureOr<Value> from = memrefOf(result, graph);
    if (failed(from))
      return failure();
    Value ptr = pointerAt(entry->getArgument(1), j);
    auto memrefType =
        MemRefType::get(type.getShape(), storageType(type.getElementType()));
    Value to = memref::ViewOp::create(b, loc, memrefType, bytesView(ptr),
                                      index(0), ValueRange{});
    linalg::CopyOp::create(b, loc, *from, to);
  }
  func::ReturnOp::create(b, loc,
                         ValueRange{arith::ConstantOp::create(
                             b, loc, i32Type, b.getI32IntegerAttr(0))});
  b.setInsertionPointToEnd(module.getBody());
  LLVM::GlobalOp::create(b, loc, b.getI64Type(), /*isConstant=*/true,
                         LLVM::Linkage::External, "kiln_graph_arena_bytes",
                         b.getI64IntegerAttr(arenaBytes));
  module->setAttr("kiln.arena_bytes", b.getI64IntegerAttr(arenaBytes));
  graph.erase();
  return success();
}

struct ConvertKilnToLoopsPass
    : public impl::ConvertKilnToLoopsPassBase<ConvertKilnToLoopsPass> {
  using ConvertKilnToLoopsPassBase::ConvertKilnToLoopsPassBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (maxBatchTokens <= 0) {
      module.emitError() << "max-batch-tokens must be positive";
      return signalPassFailure();
    }
    func::FuncOp graph;
    for (auto f : module.getOps<func::FuncOp>())
      if (!f.isExternal() && f.getName() != "kiln_model_step" &&
          f.getName() != "kiln_graph_run")
        graph = f;
    if (!graph)
      return;
    StepLowering lowering(module, graph, maxBatchTokens, quantCompute);
    if (graphMode) {
      if (failed(lowering.runGraph()))
        signalPassFailure();
      return;
    }
    assignWeightOffsets(module);
    if (failed(lowering.run()))
      signalPassFailure();
  }
};

} // namespace

bool isKernelMatMul(MatMulOp op) {
  auto lhsType = cast<RankedTensorType>(op.getLhs().getType());
  auto rhsType = cast<RankedTensorType>(op.getRhs().getType());
  return rhsType.getRank() == 2 && rhsType.hasStaticShape() &&
         lhsType.getElementType().isF32() && rhsType.getElementType().isF32();
}

int64_t assignWeightOffsets(ModuleOp module) {
  // Offsets already assigned (by kilnc before writing the weights file)
  // stay; otherwise every global gets the next 64-byte-aligned offset.
  bool complete = true;
  for (auto global : module.getOps<GlobalOp>())
    complete &= global->hasAttr("kiln.offset");
  Builder b(module.getContext());
  int64_t offset = 0;
  for (auto global : module.getOps<GlobalOp>()) {
    uint64_t size = ::kiln::storedBytes(global);
    if (complete)
      offset = std::max(
          offset,
          alignUp(global->getAttrOfType<IntegerAttr>("kiln.offset").getInt() +
                  static_cast<int64_t>(size)));
    else {
      global->setAttr("kiln.offset", b.getI64IntegerAttr(offset));
      offset = alignUp(offset + static_cast<int64_t>(size));
    }
  }
  return offset;
}

} // namespace mlir::kiln
