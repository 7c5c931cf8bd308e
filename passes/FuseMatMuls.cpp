//===- FuseMatMuls.cpp - one matmul for projections of the same input -----===//
//
// The Q, K and V projections of an attention block, and the gate and up
// projections of a gated MLP, multiply one activation by several weights.
// Joined along N they are one matmul: a decode step streams the activation
// once and makes one kernel call (one thread-pool dispatch) instead of
// three. The joined weight is not copied into the IR or the weight store:
// its kiln.global lists the pieces' blobs under `kiln.parts`, and the
// weights writer lays the pieces out as one weight (WeightLayout.h).
//
// Numerics do not change: column j of x * [W1 W2 W3] is column j of
// x * Wi, summed over the same K in the same order, provided the kernels
// compute a column independently of N and of where it lies. They do:
// matmul_packed_f32 runs one microkernel per 32-column panel with fixed
// K blocks, every column a vector lane of its own, so a column's sum does
// not depend on N or on its place in a panel. The quantized kernels cut N
// into tiles of 8 rows of W (some reduce a tile's rows together, and rows
// past the last whole tile take a one-row tile) and thread ranges of whole
// 8- or 32-row units: pieces of a multiple of 32 rows keep every row in
// the same place of the same kind of tile as alone.
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/SymbolTable.h"
#include "llvm/ADT/MapVector.h"

#include <tuple>

namespace mlir::kiln {
#define GEN_PASS_DEF_FUSEMATMULSPASS
#include "passes/Passes.h.inc"

namespace {

/// Quantized pieces must have a multiple of this many rows of W: the
/// quantized kernels cut N into tiles and thread ranges of 8 or 32 rows
/// and reduce a tile's rows together (runtime/src/kernels/matmul_quant*.cpp).
constexpr int64_t kQuantRowUnit = 32;

/// A matmul whose right-hand side is a weight only it reads.
struct Candidate {
  MatMulOp matmul;
  WeightOp weight;
  GlobalOp global;
  DequantizeOp dequantize; ///< quantized: matmul(x, transpose(dequantize(w)))
  TransposeOp transpose;
  int64_t n; ///< the columns of the matmul's result
};

/// What fused matmuls must share besides their activation: the weight's
/// element type or quantization scheme, K, and accuracy_level.
using GroupKey = std::tuple<Value, Attribute, int64_t, int64_t>;

/// Whether `global` can become a piece of a joined weight: not placed or
/// laid out yet, one blob per component, read by exactly one kiln.weight.
bool isFreeGlobal(GlobalOp global,
                  const llvm::DenseMap<StringAttr, int> &reads) {
  if (!global || global->hasAttr("kiln.offset") ||
      global->hasAttr("kiln.layout") || global->hasAttr("kiln.parts"))
    return false;
  auto it = reads.find(global.getSymNameAttr());
  return it != reads.end() && it->second == 1;
}

std::optional<std::pair<Candidate, GroupKey>>
matchCandidate(MatMulOp mm, SymbolTable &symbols,
               const llvm::DenseMap<StringAttr, int> &reads) {
  auto resultType = cast<RankedTensorType>(mm.getType());
  if (resultType.getRank() == 0 ||
      resultType.isDynamicDim(resultType.getRank() - 1))
    return std::nullopt;
  Candidate c{mm, {}, {}, {}, {}, resultType.getShape().back()};
  Attribute scheme;
  int64_t k;
  Value rhs = mm.getRhs();
  if (auto w = rhs.getDefiningOp<WeightOp>()) {
    // A plain [K][N] weight.
    auto type = dyn_cast<RankedTensorType>(w.getType());
    if (!type || type.getRank() != 2 || !type.hasStaticShape() ||
        !type.getElementType().isIntOrFloat() ||
        type.getElementTypeBitWidth() % 8 != 0)
      return std::nullopt;
    c.weight = w;
    scheme = TypeAttr::get(type.getElementType());
    k = type.getDimSize(0);
  } else if (auto t = rhs.getDefiningOp<TransposeOp>()) {
    // A [N][K] quantized weight grouped along K (MatMulNBits).
    auto dq = t.getInput().getDefiningOp<DequantizeOp>();
    auto w = dq ? dq.getInput().getDefiningOp<WeightOp>() : WeightOp();
    if (!w || t.getPerm() != ArrayRef<int64_t>{1, 0} || !t->hasOneUse() ||
        !dq->hasOneUse())
      return std::nullopt;
    auto type = cast<QTensorType>(w.getType());
    QuantAttr quant = type.getQuant();
    if (type.getShape().size() != 2 || quant.getAxis() != 1)
      return std::nullopt;
    int64_t n = type.getShape()[0];
    k = type.getShape()[1];
    // The pieces' bytes must concatenate (whole bytes per piece), and a
    // piece must start where the kernels start a tile, so that each row
    // of W is computed as alone: they cut N into units of 8 or 32 rows.
    int64_t groups = quant.getGroupSize() ? k / quant.getGroupSize() : 1;
    if (n % kQuantRowUnit != 0 || (n * k * quant.getBits()) % 8 != 0 ||
        (quant.getZeroPoint() == ZeroPointKind::Int &&
         (n * groups * quant.getBits()) % 8 != 0))
      return std::nullopt;
    c.weight = w;
    c.dequantize = dq;
    c.transpose = t;
    scheme = ArrayAttr::get(
        mm.getContext(), {quant, TypeAttr::get(dq.getType().getElementType())});
  } else {
    return std::nullopt;
  }
  if (!c.weight->hasOneUse())
    return std::nullopt;
  c.global = symbols.lookup<GlobalOp>(c.weight.getName());
  if (!isFreeGlobal(c.global, reads) ||
      (!c.dequantize && c.global.getBlobs().size() != 1))
    return std::nullopt;
  return std::make_pair(c,
                        GroupKey{mm.getLhs(), scheme, k,
                                 static_cast<int64_t>(mm.getAccuracyLevel())});
}

/// Replaces `group` (matmuls of one activation, in block order) by one
/// matmul on their weights joined along N and a kiln.split of its result.
void fuse(MutableArrayRef<Candidate> group, SymbolTable &symbols) {
  Candidate &first = group.front();
  MLIRContext *ctx = first.matmul.getContext();
  bool quantized = bool(first.dequantize);
  SmallVector<int64_t> parts;
  SmallVector<Location> locs;
  std::string name;
  for (Candidate &c : group) {
    parts.push_back(c.n);
    locs.push_back(c.matmul.getLoc());
    name += (name.empty() ? "" : "+") + c.global.getSymName().str();
  }
  int64_t n = 0;
  for (int64_t p : parts)
    n += p;

  // The joined global, where the first piece was declared: its blobs
  // component by component, each component's pieces in order.
  Type weightType;
  if (quantized) {
    auto q = cast<QTensorType>(first.weight.getType());
    weightType = QTensorType::get(ctx, {n, q.getShape()[1]}, q.getQuant());
  } else {
    auto t = cast<RankedTensorType>(first.weight.getType());
    weightType =
        RankedTensorType::get({t.getDimSize(0), n}, t.getElementType());
  }
  size_t components = first.global.getBlobs().size();
  SmallVector<Attribute> blobs;
  for (size_t i = 0; i < components; ++i)
    for (Candidate &c : group)
      blobs.push_back(c.global.getBlobs()[i]);
  OpBuilder b(ctx);
  auto global =
      GlobalOp::create(b, FusedLoc::get(ctx, locs), b.getStringAttr(name),
                       TypeAttr::get(weightType), b.getArrayAttr(blobs));
  global->setAttr("kiln.parts", b.getDenseI64ArrayAttr(parts));
  symbols.insert(global, Block::iterator(first.global));

  // One matmul where the first one was: the activation is defined before
  // it, and every other result is used after its own matmul, so after it.
  b.setInsertionPoint(first.matmul);
  Location loc = FusedLoc::get(ctx, locs);
  Value rhs = WeightOp::create(b, loc, weightType,
                               FlatSymbolRefAttr::get(global.getSymNameAttr()));
  if (quantized) {
    auto k = cast<QTensorType>(weightType).getShape()[1];
    Type element = first.dequantize.getType().getElementType();
    rhs = DequantizeOp::create(b, loc, RankedTensorType::get({n, k}, element),
                               rhs);
    rhs = TransposeOp::create(b, loc, RankedTensorType::get({k, n}, element),
                              rhs, b.getDenseI64ArrayAttr({1, 0}));
  }
  auto firstType = cast<RankedTensorType>(first.matmul.getType());
  SmallVector<int64_t> shape(firstType.getShape());
  shape.back() = n;
  auto fusedType = RankedTensorType::get(shape, firstType.getElementType(),
                                         firstType.getEncoding());
  auto fused = MatMulOp::create(b, loc, fusedType, first.matmul.getLhs(), rhs);
  fused->setAttrs(first.matmul->getAttrDictionary());
  SmallVector<Type> pieceTypes;
  for (Candidate &c : group)
    pieceTypes.push_back(c.matmul.getType());
  auto split = SplitOp::create(b, loc, pieceTypes, fused.getResult(),
                               static_cast<uint64_t>(shape.size() - 1));

  for (auto [c, piece] : llvm::zip(group, split.getResults())) {
    c.matmul.getResult().replaceAllUsesWith(piece);
    c.matmul->erase();
    if (c.transpose)
      c.transpose->erase();
    if (c.dequantize)
      c.dequantize->erase();
    c.weight->erase();
    symbols.erase(c.global);
  }
}

struct FuseMatMulsPass : impl::FuseMatMulsPassBase<FuseMatMulsPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    SymbolTable symbols(module);
    llvm::DenseMap<StringAttr, int> reads;
    module.walk([&](WeightOp w) { ++reads[w.getNameAttr().getAttr()]; });

    SmallVector<SmallVector<Candidate>> groups;
    module.walk([&](Block *block) {
      llvm::MapVector<GroupKey, SmallVector<Candidate>> byKey;
      for (auto mm : block->getOps<MatMulOp>())
        if (auto match = matchCandidate(mm, symbols, reads))
          byKey[match->second].push_back(match->first);
      for (auto &[key, group] : byKey)
        if (group.size() > 1)
          groups.push_back(std::move(group));
    });
    for (SmallVector<Candidate> &group : groups)
      fuse(group, symbols);
  }
};

} // namespace
} // namespace mlir::kiln
