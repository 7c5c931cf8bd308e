//===- WeightLayout.h - how a weight is laid out in weights.bin -*- C++ -*-===//
//
// A kiln.global's bytes go to weights.bin as the weight store holds them
// (row-major, as imported) unless the global carries `kiln.layout`, set by
// a backend that reads the weight in another order. One layout exists:
//
//   kiln.layout = "panels"   a [K][N] f32 matrix in KILN_PANEL_COLUMNS-column
//                            panels, zero-padded to whole panels
//                            (runtime/include/kiln/model_abi.h,
//                            matmul_packed_f32)
//
// A global may also be joined from pieces (--kiln-fuse-matmuls):
//
//   kiln.parts = array<i64: 576, 192, 192>
//                            the weight is its pieces concatenated along N
//                            (the last axis of a tensor, the first of a
//                            qtensor), one blob per piece and component
//                            (a qtensor: every piece's data, then every
//                            piece's scales, then zero points); the
//                            writer interleaves the rows of a tensor's
//                            pieces (or cuts its panels across them) and
//                            concatenates a qtensor's bytes
//
// assignWeightOffsets sizes a global with storedBytes(); the artifact
// writer writes it with writeStored().
//
//===----------------------------------------------------------------------===//

#ifndef KILN_COMPILER_WEIGHTS_WEIGHTLAYOUT_H
#define KILN_COMPILER_WEIGHTS_WEIGHTLAYOUT_H

#include "compiler/weights/WeightStore.h"
#include "dialects/kiln/IR/KilnDialect.h"

#include "llvm/ADT/STLFunctionalExtras.h"
#include "llvm/ADT/SmallVector.h"

namespace kiln {

inline constexpr llvm::StringLiteral kLayoutAttr = "kiln.layout";
inline constexpr llvm::StringLiteral kPanelsLayout = "panels";
inline constexpr llvm::StringLiteral kPartsAttr = "kiln.parts";

/// Whether `global` is stored in panels.
bool isPanelLayout(mlir::kiln::GlobalOp global);

/// Whether `global` can be stored in panels: a static 2-D f32 tensor in one
/// blob of exactly its size, or one blob per piece (kiln.parts). Names what is
/// missing in `why` otherwise.
bool canUsePanelLayout(mlir::kiln::GlobalOp global, std::string *why = nullptr);

/// The columns of each piece of a tensor `global` joined along its last
/// axis (kiln.parts), or its one piece: all its columns.
llvm::SmallVector<int64_t> partColumns(mlir::kiln::GlobalOp global);

/// The bytes `global` takes in weights.bin.
uint64_t storedBytes(mlir::kiln::GlobalOp global);

/// Hands `sink` the bytes of `global` in its stored layout, in order (in
/// pieces; storedBytes() in all).
llvm::Error writeStored(mlir::kiln::GlobalOp global, WeightStore &store,
                        llvm::function_ref<void(llvm::ArrayRef<uint8_t>)> sink);

} // namespace kiln

#endif // KILN_COMPILER_WEIGHTS_WEIGHTLAYOUT_H
