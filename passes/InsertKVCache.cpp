//===- InsertKVCache.cpp - one paged-cache form for every export style ----===//
//
// Exporters hand the KV cache around as graph tensors: `past_*` inputs
// concatenated with the new keys and returned as `present_*` (Optimum,
// torch.onnx); a shared buffer the new keys are scattered into, with the
// valid length per sequence passed separately (ORT GenAI's
// GroupQueryAttention: the buffer's capacity is not the number of valid
// tokens); or no cache at all (the graph recomputes the whole prefix).
// All become the same step function: it takes the step's packed tokens,
// their positions and the rows that need logits, and every attention reads
// and writes the runtime's paged cache through kiln.paged_attention.
//
//===----------------------------------------------------------------------===//

#include "passes/MaskWindow.h"
#include "passes/Passes.h"
#include "passes/PatternUtils.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/Transforms/RegionUtils.h"
#include "llvm/ADT/SetVector.h"

namespace mlir::kiln {
#define GEN_PASS_DEF_INSERTKVCACHEPASS
#include "passes/Passes.h.inc"

namespace {

constexpr llvm::StringLiteral kTokens = "tokens";
constexpr llvm::StringLiteral kLogitRows = "logit_rows";

/// One attention with its cache operands taken apart.
struct CachedAttention {
  AttentionOp op;
  Value keyNew, valueNew;
  /// The `past` arguments and the concatenations returned as `present`
  /// (null without a cache).
  BlockArgument pastKey, pastValue;
  Value presentKey, presentValue;
  /// What a shared-buffer cache computes from the padding mask: the scatter
  /// positions of the new keys and values and the valid lengths.
  SmallVector<Value> maskDerived;
  /// Sliding window: a token at position p sees keys p - window .. p; -1:
  /// every earlier key.
  int64_t window;
};

/// Whether `op` never lets a query see a later key by itself.
bool isCausal(AttentionOp op) {
  return op.getCausal() || static_cast<int64_t>(op.getWindowRight()) == 0;
}

/// The input of `v` when `v` is a transpose with permutation `perm`.
Value throughTranspose(Value v, ArrayRef<int64_t> perm) {
  auto t = v.getDefiningOp<TransposeOp>();
  return t && t.getPerm() == perm ? t.getInput() : Value();
}

/// `concat(past, new)` on the token axis with `past` a function argument.
std::optional<std::pair<BlockArgument, Value>> matchAppend(Value v) {
  auto concat = v.getDefiningOp<ConcatOp>();
  if (!concat || concat.getInputs().size() != 2 || concat.getAxis() != 2)
    return std::nullopt;
  auto past = dyn_cast<BlockArgument>(concat.getInputs()[0]);
  if (!past)
    return std::nullopt;
  return std::make_pair(past, concat.getInputs()[1]);
}

/// A shared-buffer write (GroupQueryAttention): the new keys scattered
/// into the cache at each token's position, in the [batch, tokens, heads,
/// dim] layout, the cache coming from a past argument (directly or
/// through concat(past, new)):
///   transpose(scatter_nd(transpose(cache), indices, transpose(new)))
/// Returns the past argument, the new keys (or values) and the scatter
/// indices.
struct SharedWrite {
  BlockArgument past;
  Value written, indices;
};
std::optional<SharedWrite> matchSharedWrite(Value v) {
  const int64_t swap[] = {0, 2, 1, 3};
  Value scattered = throughTranspose(v, swap);
  auto scatter = scattered ? scattered.getDefiningOp<ScatterNDOp>() : nullptr;
  if (!scatter || scatter.getReduction() != "none")
    return std::nullopt;
  Value cache = throughTranspose(scatter.getInput(), swap);
  Value keyNew = throughTranspose(scatter.getUpdates(), swap);
  if (!cache || !keyNew)
    return std::nullopt;
  auto past = dyn_cast<BlockArgument>(cache);
  if (!past)
    if (auto append = matchAppend(cache))
      past = append->first;
  if (!past)
    return std::nullopt;
  return SharedWrite{past, keyNew, scatter.getIndices()};
}

/// A weight, possibly quantized (`dequantize(weight)`).
bool isWeight(Value v) {
  if (auto dq = v.getDefiningOp<DequantizeOp>())
    v = dq.getInput();
  return v.getDefiningOp<WeightOp>() != nullptr;
}

/// Whether `v` is `kiln.dim %past[2]` of one of the past arguments.
bool isPastLength(Value v, const llvm::SmallPtrSetImpl<Value> &pasts) {
  auto dim = v.getDefiningOp<DimOp>();
  return dim && pasts.contains(dim.getInput()) && dim.getIndex() == 2;
}

bool isIntConstant(Value v, int64_t expected) {
  auto c = v.getDefiningOp<ConstantOp>();
  if (!c)
    return false;
  auto dense = dyn_cast<DenseIntElementsAttr>(c.getValue());
  return dense && dense.getNumElements() == 1 &&
         (*dense.value_begin<APInt>()).getSExtValue() == expected;
}

/// The values a mask is computed from may only be padding masks, constants
/// and the sizes of other tensors: anything else (a weight, the token ids,
/// hidden states) would make it more than a causal/padding mask.
LogicalResult checkMaskSources(Value mask, Value tokenIds, const DimExpr &batch,
                               llvm::SmallPtrSetImpl<Value> &padding,
                               Operation *attention) {
  SmallVector<Value> work{mask};
  llvm::DenseSet<Value> seen;
  while (!work.empty()) {
    Value v = work.pop_back_val();
    if (!seen.insert(v).second)
      continue;
    if (isa<BlockArgument>(v)) {
      auto type = dyn_cast<RankedTensorType>(v.getType());
      if (v != tokenIds && type && type.getElementType().isInteger() &&
          type.getRank() == 2 && getShapeExprs(type)[0] == batch) {
        padding.insert(v);
        continue;
      }
      return attention->emitError()
             << "cannot map the attention mask to the paged cache: it "
                "depends on function argument #"
             << cast<BlockArgument>(v).getArgNumber()
             << ", which is not a [batch, total] padding mask";
    }
    Operation *def = v.getDefiningOp();
    if (isa<DimOp, ShapeOp, ConstantOp>(def))
      continue;
    if (isa<WeightOp>(def))
      return attention->emitError()
             << "cannot map the attention mask to the paged cache: it reads "
                "a weight, so it is not a causal/padding mask";
    for (Value operand : def->getOperands())
      work.push_back(operand);
  }
  return success();
}

/// Whether `v` is computed from a padding mask and nothing else but
/// constants and sizes (as a shared-buffer cache computes positions from
/// the valid length).
bool derivesFromPadding(Value v, const llvm::SmallPtrSetImpl<Value> &padding) {
  SmallVector<Value> work{v};
  llvm::DenseSet<Value> seen;
  bool reached = false;
  while (!work.empty()) {
    Value x = work.pop_back_val();
    if (!seen.insert(x).second)
      continue;
    if (isa<BlockArgument>(x)) {
      if (!padding.contains(x))
        return false;
      reached = true;
      continue;
    }
    Operation *def = x.getDefiningOp();
    if (isa<DimOp, ShapeOp, ConstantOp>(def))
      continue;
    if (isa<WeightOp>(def))
      return false;
    for (Value operand : def->getOperands())
      work.push_back(operand);
  }
  return reached;
}

/// For an elementwise op on the logits' rows (`rows` the logits' shape):
/// the operand that carries them, when every other operand is the same for
/// every row (its dims are constants of rank at most the logits').
std::optional<unsigned> rowwiseOperand(Operation *op, ArrayRef<DimExpr> rows) {
  if (!isa<AddOp, SubOp, MulOp, DivOp, MaxOp, MinOp, PowOp, TanhOp, NegOp,
           ExpOp, LogOp, SigmoidOp, ReciprocalOp, SqrtOp, AbsOp, ErfOp, ReluOp,
           GeluOp, CastOp>(op) ||
      op->getNumResults() != 1 || dimsOf(op->getResult(0)) != rows)
    return std::nullopt;
  std::optional<unsigned> carrier;
  for (auto [i, operand] : llvm::enumerate(op->getOperands())) {
    SmallVector<DimExpr> d = dimsOf(operand);
    if (d == SmallVector<DimExpr>(rows)) {
      if (carrier)
        return std::nullopt;
      carrier = i;
      continue;
    }
    if (d.size() > rows.size() ||
        llvm::any_of(d, [](const DimExpr &e) { return !e.getConstant(); }))
      return std::nullopt;
  }
  return carrier;
}

/// Substitutes `values` into every dimension of `type`.
Type substituteType(Type type, const std::map<std::string, DimExpr> &values) {
  auto ranked = dyn_cast<RankedTensorType>(type);
  if (!ranked)
    return type;
  SmallVector<DimExpr> dims = getShapeExprs(ranked);
  for (DimExpr &d : dims)
    d = d.substitute(values);
  return getTensorType(dims, ranked.getElementType());
}

struct InsertKVCachePass
    : public impl::InsertKVCachePassBase<InsertKVCachePass> {
  using InsertKVCachePassBase::InsertKVCachePassBase;

  void runOnOperation() override {
    func::FuncOp func;
    for (auto f : getOperation().getOps<func::FuncOp>())
      if (!f.isExternal()) {
        if (func) {
          getOperation().emitError(
              "kv-cache insertion expects one function (the imported graph)");
          return signalPassFailure();
        }
        func = f;
      }
    if (!func)
      return;
    if (failed(run(func)))
      signalPassFailure();
  }

  LogicalResult run(func::FuncOp func);
};

LogicalResult InsertKVCachePass::run(func::FuncOp func) {
  if (blockSize <= 0)
    return func.emitError() << "block-size must be positive, got " << blockSize;
  SmallVector<AttentionOp> attentions;
  func.walk([&](AttentionOp op) { attentions.push_back(op); });
  if (attentions.empty())
    return success();

  // Take every attention apart: new keys/values, and the cache tensors.
  SmallVector<CachedAttention> layers;
  llvm::SmallPtrSet<Value, 8> pasts;
  for (AttentionOp op : attentions) {
    CachedAttention layer{op, {}, {}, {}, {}, {}, {}, {}, -1};
    // window_right 0 is causal; more would see later tokens.
    int64_t right = static_cast<int64_t>(op.getWindowRight());
    if (right > 0 && !op.getCausal())
      return op.emitError()
             << "cannot map to the paged cache: window_right = " << right
             << " lets a query see later tokens";
    layer.window = static_cast<int64_t>(op.getWindowLeft());
    auto k = matchAppend(op.getKey()), v = matchAppend(op.getValue());
    auto sk = matchSharedWrite(op.getKey()),
         sv = matchSharedWrite(op.getValue());
    if (op.getKeyLengths() && !(sk && sv))
      return op.emitError("cannot map to the paged cache: attention with "
                          "key_lengths must read a shared buffer that the new "
                          "keys and values are scattered into "
                          "(transpose(scatter_nd(past, positions, new)))");
    // A cached layer: the past arguments, the new keys/values, and the
    // attention's key/value operands (returned as `present`).
    auto cached = [&](BlockArgument pastKey, Value keyNew,
                      BlockArgument pastValue, Value valueNew) {
      layer.pastKey = pastKey;
      layer.keyNew = keyNew;
      layer.presentKey = op.getKey();
      layer.pastValue = pastValue;
      layer.valueNew = valueNew;
      layer.presentValue = op.getValue();
      pasts.insert(pastKey);
      pasts.insert(pastValue);
    };
    if (sk && sv) {
      if (!op.getKeyLengths())
        return op.emitError("cannot map to the paged cache: a shared-buffer "
                            "cache without key_lengths (its valid length)");
      // The buffer's capacity is not the number of valid tokens: the paged
      // cache holds exactly the valid ones, so key_lengths (and the scatter
      // positions) must come from the padding mask, checked below.
      cached(sk->past, sk->written, sv->past, sv->written);
      layer.maskDerived = {sk->indices, sv->indices, op.getKeyLengths()};
    } else if (k.has_value() != v.has_value()) {
      return op.emitError("cannot map to the paged cache: keys and values "
                          "are not cached the same way");
    } else if (k) {
      cached(k->first, k->second, v->first, v->second);
    } else {
      layer.keyNew = op.getKey();
      layer.valueNew = op.getValue();
    }
    SmallVector<DimExpr> q = dimsOf(op.getQuery()), kn = dimsOf(layer.keyNew);
    if (kn[2] != q[2])
      return op.emitError()
             << "cannot map to the paged cache: the keys (" << kn[2]
             << " tokens) are neither the step's " << q[2]
             << " new tokens nor concat(past, new) on axis 2";
    if (!isCausal(op) && !op.getMask())
      return op.emitError("cannot map to the paged cache: attention is "
                          "neither causal nor masked (bidirectional)");
    layers.push_back(layer);
  }

  // The step's symbols: the batch and token dimensions of the queries.
  SmallVector<DimExpr> q0 = dimsOf(layers[0].op.getQuery());
  std::optional<std::string> batchName = q0[0].getSymbol();
  std::optional<std::string> tokenName = q0[2].getSymbol();
  if (!q0[0].getConstant() && !batchName)
    return layers[0].op.emitError()
           << "cannot map to the paged cache: the batch dimension " << q0[0]
           << " is not a named symbol";
  if (!tokenName)
    return layers[0].op.emitError()
           << "cannot map to the paged cache: the token dimension " << q0[2]
           << " is not a named symbol";
  SmallVector<DimExpr> k0 = dimsOf(layers[0].keyNew);
  if (!k0[1].getConstant() || !k0[3].getConstant())
    return layers[0].op.emitError("cannot map to the paged cache: KV heads "
                                  "and head size must be static");
  for (CachedAttention &l : layers) {
    SmallVector<DimExpr> q = dimsOf(l.op.getQuery()), k = dimsOf(l.keyNew),
                         v = dimsOf(l.valueNew);
    if (q[0] != q0[0] || q[2] != q0[2] || k[1] != k0[1] || k[3] != k0[3] ||
        v[1] != k0[1] || v[3] != k0[3])
      return l.op.emitError()
             << "cannot map to the paged cache: every layer must have the "
                "same batch, tokens, KV heads ("
             << k0[1] << ") and head size (" << k0[3] << ")";
  }

  Block &body = func.getBody().front();
  auto ret = cast<func::ReturnOp>(body.getTerminator());
  MLIRContext *ctx = func.getContext();
  OpBuilder b(ctx);

  // The token ids feed the embedding: a gather from a weight on axis 0.
  // With learned position embeddings (GPT-2) the positions index one too;
  // the token table is the one with a row per vocabulary entry.
  std::optional<int64_t> vocab;
  if (auto logits =
          dyn_cast<RankedTensorType>(func.getFunctionType().getResult(0)))
    if (logits.getRank() > 0 && !logits.isDynamicDim(logits.getRank() - 1))
      vocab = logits.getDimSize(logits.getRank() - 1);
  BlockArgument tokenIds;
  for (BlockArgument arg : body.getArguments())
    for (Operation *user : arg.getUsers())
      if (auto gather = dyn_cast<GatherOp>(user))
        if (gather.getIndices() == arg && gather.getAxis() == 0 &&
            isWeight(gather.getInput()) &&
            (!tokenIds ||
             (vocab && cast<RankedTensorType>(gather.getInput().getType())
                               .getDimSize(0) == *vocab)))
          tokenIds = arg;
  if (!tokenIds)
    return func.emitError("cannot find the token ids: no function argument "
                          "indexes an embedding weight (kiln.gather of a "
                          "kiln.weight, or of its dequantization, on axis "
                          "0)");

  // Padding masks: the 2-D integer [batch, *] arguments that masks are
  // computed from. Nothing else may feed a mask.
  llvm::SmallPtrSet<Value, 4> padding;
  for (CachedAttention &l : layers) {
    if (Value mask = l.op.getMask())
      if (failed(checkMaskSources(mask, tokenIds, q0[0], padding, l.op)))
        return failure();
    for (Value v : l.maskDerived)
      if (failed(checkMaskSources(v, tokenIds, q0[0], padding, l.op)))
        return failure();
  }

  // What each mask admits, evaluated with the padding masks all ones: the
  // paged cache replaces a causal mask and a sliding window; anything else
  // (bidirectional, a bias, another pattern) is an error.
  llvm::DenseMap<Value, int64_t> maskWindows;
  for (CachedAttention &l : layers) {
    Value mask = l.op.getMask();
    if (!mask)
      continue;
    MaskSizes sizes{q0[0], q0[2], l.pastKey ? dimsOf(l.pastKey)[2] : DimExpr(),
                    padding, contextLength};
    auto [it, inserted] = maskWindows.try_emplace(mask, -1);
    if (inserted) {
      FailureOr<int64_t> w = maskWindow(l.op, mask, isCausal(l.op), sizes);
      if (failed(w))
        return failure();
      it->second = *w;
    }
    if (it->second >= 0)
      l.window = l.window >= 0 ? std::min(l.window, it->second) : it->second;
  }

  // Explicit position ids: the other integer [batch, tokens] argument.
  BlockArgument positionIds;
  for (BlockArgument arg : body.getArguments()) {
    auto type = cast<RankedTensorType>(arg.getType());
    if (arg == tokenIds || padding.contains(arg) ||
        !type.getElementType().isInteger() ||
        getShapeExprs(type) != dimsOf(tokenIds))
      continue;
    if (positionIds)
      return func.emitError()
             << "cannot tell the position ids apart: "
                "arguments #"
             << positionIds.getArgNumber() << " and #" << arg.getArgNumber()
             << " both look like [batch, tokens] positions";
    positionIds = arg;
  }

  // New arguments: the cache, and positions when the graph computes them.
  auto cacheType = KVCacheType::get(
      ctx, static_cast<int64_t>(layers.size()), *k0[1].getConstant(),
      *k0[3].getConstant(), blockSize,
      cast<RankedTensorType>(layers[0].keyNew.getType()).getElementType());
  unsigned cacheIndex = body.getNumArguments();
  if (failed(func.insertArgument(cacheIndex, cacheType,
                                 b.getDictionaryAttr(b.getNamedAttr(
                                     "kiln.name", b.getStringAttr("kv_cache"))),
                                 func.getLoc())))
    return failure();
  BlockArgument cache = body.getArgument(cacheIndex);

  // Positions computed as range(past_length, past_length + tokens) (or from
  // 0 without a cache) are the step's positions.
  SmallVector<RangeOp> positionRanges;
  func.walk([&](RangeOp range) {
    SmallVector<DimExpr> d = dimsOf(range.getResult());
    if (d.size() == 1 && d[0] == q0[2] && isIntConstant(range.getDelta(), 1) &&
        (isPastLength(range.getStart(), pasts) ||
         (pasts.empty() && isIntConstant(range.getStart(), 0))))
      positionRanges.push_back(range);
  });
  if (!positionIds && !positionRanges.empty()) {
    unsigned index = body.getNumArguments();
    if (failed(func.insertArgument(
            index, cast<RankedTensorType>(positionRanges[0].getType()),
            b.getDictionaryAttr(
                b.getNamedAttr("kiln.name", b.getStringAttr("positions"))),
            func.getLoc())))
      return failure();
    positionIds = body.getArgument(index);
  }
  // With explicit position ids, ranges from 0 are mask arithmetic (dead
  // once the masks go); with computed positions they are the positions.
  if (positionIds && positionIds.getArgNumber() >= cacheIndex)
    for (RangeOp range : positionRanges)
      range.getResult().replaceAllUsesWith(positionIds);

  // Rotary positions computed from the padding mask (a shared-buffer cache
  // offsets range(tokens) by each sequence's valid length) are the step's
  // positions: in the paged cache every position is valid.
  SmallVector<RotaryOp> maskPositioned;
  func.walk([&](RotaryOp r) {
    // Per-token angles (no positions operand) were computed from the
    // positions upstream and need nothing here.
    if (r.getPositions() && r.getPositions() != positionIds &&
        derivesFromPadding(r.getPositions(), padding))
      maskPositioned.push_back(r);
  });
  if (!maskPositioned.empty()) {
    auto idsType = cast<RankedTensorType>(tokenIds.getType());
    auto positionsType = getTensorType(dimsOf(tokenIds), b.getI64Type());
    if (!positionIds) {
      unsigned index = body.getNumArguments();
      if (failed(func.insertArgument(
              index, positionsType,
              b.getDictionaryAttr(
                  b.getNamedAttr("kiln.name", b.getStringAttr("positions"))),
              func.getLoc())))
        return failure();
      positionIds = body.getArgument(index);
    }
    Value positions2d = positionIds;
    if (positionIds.getType() != positionsType) {
      b.setInsertionPointToStart(&body);
      positions2d = ReshapeOp::create(b, func.getLoc(), positionsType,
                                      positionIds, Value());
    }
    for (RotaryOp r : maskPositioned) {
      if (dimsOf(r.getPositions()) != dimsOf(positions2d))
        return r.emitError()
               << "cannot map to the paged cache: rotary positions computed "
                  "from the padding mask have shape "
               << r.getPositions().getType() << ", expected [batch, tokens] "
               << "like the token ids " << idsType;
      r.getPositionsMutable().assign(positions2d);
    }
  }

  // Attention reads and writes the paged cache. Its result has the value
  // head size of the new values; a symbol the cache buffer's head size had
  // (a shared buffer's `kv_cache_dim`) takes that value everywhere.
  std::map<std::string, DimExpr> step;
  for (auto [index, l] : llvm::enumerate(layers)) {
    b.setInsertionPoint(l.op);
    SmallVector<DimExpr> r = dimsOf(l.op.getResult()),
                         q = dimsOf(l.op.getQuery()), vn = dimsOf(l.valueNew);
    if (std::optional<std::string> name = r[3].getSymbol())
      step[*name] = vn[3];
    auto resultType = getTensorType(
        {q[0], q[1], q[2], vn[3]},
        cast<RankedTensorType>(l.op.getResult().getType()).getElementType());
    auto paged = PagedAttentionOp::create(
        b, l.op.getLoc(), resultType, cache, l.op.getQuery(), l.keyNew,
        l.valueNew, b.getI64IntegerAttr(index), l.op.getScaleAttr(),
        l.op.getSoftcapAttr(), b.getI64IntegerAttr(l.window));
    l.op.getResult().replaceAllUsesWith(paged.getResult());
    l.op.erase();
  }

  // Drop the present outputs.
  llvm::SmallPtrSet<Value, 16> presents;
  for (CachedAttention &l : layers)
    if (l.presentKey) {
      presents.insert(l.presentKey);
      presents.insert(l.presentValue);
    }
  SmallVector<Value> results;
  llvm::BitVector dropResults(ret.getNumOperands());
  for (auto [i, v] : llvm::enumerate(ret.getOperands())) {
    if (presents.contains(v))
      dropResults.set(i);
    else
      results.push_back(v);
  }
  if (results.size() != 1)
    return func.emitError() << "expected one output besides the cache "
                               "(the logits), found "
                            << results.size();

  // Logits only for the rows the runtime asks for: the last matmul acts
  // row by row, and so do the elementwise ops exporters put after it (a
  // bias, Gemma's tanh soft-capping), so gathering the matmul's input rows
  // first and redoing that tail on them is exact and saves the [tokens,
  // vocab] product in prefill.
  Value logits = results[0];
  SmallVector<Operation *> tail;
  Value headResult = logits;
  while (Operation *def = headResult.getDefiningOp()) {
    if (isa<MatMulOp>(def))
      break;
    std::optional<unsigned> rows = rowwiseOperand(def, dimsOf(logits));
    if (!rows)
      break;
    tail.push_back(def);
    headResult = def->getOperand(*rows);
  }
  auto lmHead = headResult.getDefiningOp<MatMulOp>();
  if (!lmHead ||
      !cast<RankedTensorType>(lmHead.getRhs().getType()).hasStaticShape() ||
      dimsOf(lmHead.getRhs()).size() != 2 ||
      dimsOf(lmHead.getLhs()).size() != 3)
    return func.emitError(
        "the logits output is not a matmul of the hidden states with a "
        "static 2-D matrix (followed by elementwise ops with constants, at "
        "most); cannot select logit rows");
  unsigned rowsIndex = body.getNumArguments();
  auto rowsType = getTensorType({DimExpr::symbol(kLogitRows)}, b.getI64Type());
  if (failed(
          func.insertArgument(rowsIndex, rowsType,
                              b.getDictionaryAttr(b.getNamedAttr(
                                  "kiln.name", b.getStringAttr("logit_rows"))),
                              func.getLoc())))
    return failure();
  BlockArgument rows = body.getArgument(rowsIndex);
  {
    b.setInsertionPoint(ret);
    SmallVector<DimExpr> x = dimsOf(lmHead.getLhs());
    auto gatheredType = getTensorType(
        {x[0], DimExpr::symbol(kLogitRows), x[2]},
        cast<RankedTensorType>(lmHead.getLhs().getType()).getElementType());
    Value gathered =
        GatherOp::create(b, lmHead.getLoc(), gatheredType, lmHead.getLhs(),
                         rows, b.getI64IntegerAttr(1));
    auto rowsOf = [&](Value v) {
      SmallVector<DimExpr> y = dimsOf(v);
      return getTensorType(
          {y[0], DimExpr::symbol(kLogitRows), y[2]},
          cast<RankedTensorType>(v.getType()).getElementType());
    };
    Value head =
        MatMulOp::create(b, lmHead.getLoc(), rowsOf(headResult), gathered,
                         lmHead.getRhs(), lmHead.getAccuracyLevel());
    // The tail again, on the selected rows.
    IRMapping mapping;
    mapping.map(headResult, head);
    for (Operation *op : llvm::reverse(tail)) {
      Operation *copy = b.clone(*op, mapping);
      copy->getResult(0).setType(rowsOf(op->getResult(0)));
      mapping.map(op->getResult(0), copy->getResult(0));
    }
    results[0] = mapping.lookup(logits);
  }
  b.setInsertionPoint(ret);
  func::ReturnOp::create(b, ret.getLoc(), results);
  ret.erase();

  // Remove what the old cache handling leaves dead.
  IRRewriter rewriter(ctx);
  (void)runRegionDCE(rewriter, func->getRegions());

  // Arguments that must be gone now: past caches and padding masks.
  llvm::BitVector dropArgs(body.getNumArguments());
  for (BlockArgument arg : body.getArguments()) {
    if (!pasts.contains(arg) && !padding.contains(arg))
      continue;
    if (!arg.use_empty()) {
      Operation *user = *arg.getUsers().begin();
      return user->emitError()
             << "cannot map to the paged cache: argument #"
             << arg.getArgNumber() << " ("
             << (pasts.contains(arg) ? "past keys/values" : "padding mask")
             << ") is still used here after attention moved to the cache";
    }
    dropArgs.set(arg.getArgNumber());
  }
  if (failed(func.eraseArguments(dropArgs)))
    return failure();
  SmallVector<Type> resultTypes{results[0].getType()};
  SmallVector<DictionaryAttr> resultAttrs;
  for (unsigned i = 0, e = dropResults.size(); i < e; ++i)
    if (!dropResults.test(i))
      resultAttrs.push_back(func.getResultAttrDict(i));
  func.setType(FunctionType::get(ctx, body.getArgumentTypes(), resultTypes));
  func.setAllResultAttrs(resultAttrs);

  // One row of packed tokens: batch 1, the token symbol `tokens`.
  if (batchName)
    step[*batchName] = DimExpr::constant(1);
  step[*tokenName] = DimExpr::symbol(kTokens);
  for (BlockArgument arg : body.getArguments())
    arg.setType(substituteType(arg.getType(), step));
  WalkResult walk = func.walk([&](Operation *op) -> WalkResult {
    for (OpResult r : op->getResults()) {
      r.setType(substituteType(r.getType(), step));
      if (auto ranked = dyn_cast<RankedTensorType>(r.getType()))
        for (const DimExpr &d : getShapeExprs(ranked)) {
          for (const std::string &name : d.symbols())
            if (name != kTokens && name != kLogitRows) {
              op->emitError() << "cannot map to the paged cache: result #"
                              << r.getResultNumber() << " still depends on '"
                              << name << "' after KV-cache insertion";
              return WalkResult::interrupt();
            }
        }
    }
    return WalkResult::advance();
  });
  if (walk.wasInterrupted())
    return failure();
  SmallVector<Type> finalResults;
  for (Value v : body.getTerminator()->getOperands())
    finalResults.push_back(v.getType());
  func.setType(FunctionType::get(ctx, body.getArgumentTypes(), finalResults));

  // Name the step inputs for the lowering.
  func.setArgAttr(tokenIds.getArgNumber(), "kiln.step_input",
                  b.getStringAttr("token_ids"));
  if (positionIds)
    func.setArgAttr(positionIds.getArgNumber(), "kiln.step_input",
                    b.getStringAttr("positions"));
  func.setArgAttr(cache.getArgNumber(), "kiln.step_input",
                  b.getStringAttr("kv_cache"));
  func.setArgAttr(rows.getArgNumber(), "kiln.step_input",
                  b.getStringAttr("logit_rows"));
  return success();
}

} // namespace
} // namespace mlir::kiln
