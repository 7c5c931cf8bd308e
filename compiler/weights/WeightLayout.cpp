//===- WeightLayout.cpp - how a weight is laid out in weights.bin ---------===//

#include "compiler/weights/WeightLayout.h"

#include "runtime/include/kiln/model_abi.h"

#include <algorithm>
#include <cstring>
#include <vector>

using namespace kiln;
using mlir::kiln::BlobAttr;
using mlir::kiln::GlobalOp;

namespace {
constexpr int64_t kPanel = KILN_PANEL_COLUMNS;

struct PanelShape {
  int64_t k, n;
  int64_t panels() const { return (n + kPanel - 1) / kPanel; }
  uint64_t bytes() const { return panels() * k * kPanel * sizeof(float); }
};

PanelShape panelShape(GlobalOp global) {
  auto type = llvm::cast<mlir::RankedTensorType>(global.getType());
  return {type.getDimSize(0), type.getDimSize(1)};
}
} // namespace

bool kiln::isPanelLayout(GlobalOp global) {
  auto layout = global->getAttrOfType<mlir::StringAttr>(kLayoutAttr);
  return layout && layout.getValue() == kPanelsLayout;
}

bool kiln::canUsePanelLayout(GlobalOp global, std::string *why) {
  auto fail = [&](const char *reason) {
    if (why)
      *why = reason;
    return false;
  };
  auto type = llvm::dyn_cast<mlir::RankedTensorType>(global.getType());
  if (!type || type.getRank() != 2 || !type.hasStaticShape() ||
      !type.getElementType().isF32())
    return fail("not a static 2-D f32 tensor");
  uint64_t bytes = 0;
  for (mlir::Attribute blob : global.getBlobs())
    bytes += llvm::cast<BlobAttr>(blob).getSize();
  size_t pieces = global->hasAttr(kPartsAttr) ? partColumns(global).size() : 1;
  if (global.getBlobs().size() != pieces ||
      bytes != static_cast<uint64_t>(type.getNumElements()) * sizeof(float))
    return fail("not one blob per piece, of the tensor's size in all");
  return true;
}

llvm::SmallVector<int64_t> kiln::partColumns(GlobalOp global) {
  if (auto parts = global->getAttrOfType<mlir::DenseI64ArrayAttr>(kPartsAttr))
    return llvm::SmallVector<int64_t>(parts.asArrayRef());
  auto type = llvm::cast<mlir::RankedTensorType>(global.getType());
  return {type.getShape().back()};
}

uint64_t kiln::storedBytes(GlobalOp global) {
  if (isPanelLayout(global))
    return panelShape(global).bytes();
  uint64_t size = 0;
  for (mlir::Attribute blob : global.getBlobs())
    size += llvm::cast<BlobAttr>(blob).getSize();
  return size;
}

llvm::Error
kiln::writeStored(GlobalOp global, WeightStore &store,
                  llvm::function_ref<void(llvm::ArrayRef<uint8_t>)> sink) {
  auto tensor = llvm::dyn_cast<mlir::RankedTensorType>(global.getType());
  bool pieces = tensor && global->hasAttr(kPartsAttr);
  if (!isPanelLayout(global) && !pieces) {
    // One blob, or a qtensor's pieces, whose bytes concatenate.
    for (mlir::Attribute a : global.getBlobs()) {
      auto bytes = store.getBytes(llvm::cast<BlobAttr>(a));
      if (!bytes)
        return bytes.takeError();
      sink(*bytes);
    }
    return llvm::Error::success();
  }
  std::string why;
  if (isPanelLayout(global) && !canUsePanelLayout(global, &why))
    return llvm::createStringError("weight @" + global.getSymName().str() +
                                   " cannot be stored in panels: " + why);
  // The pieces along the last axis, each row-major [rows][columns].
  struct Piece {
    llvm::ArrayRef<uint8_t> bytes;
    int64_t columns;
  };
  llvm::SmallVector<Piece> parts;
  for (auto [blob, columns] :
       llvm::zip(global.getBlobs(), partColumns(global))) {
    auto bytes = store.getBytes(llvm::cast<BlobAttr>(blob));
    if (!bytes)
      return bytes.takeError();
    parts.push_back({*bytes, columns});
  }
  int64_t elementBytes = (tensor.getElementTypeBitWidth() + 7) / 8;
  if (!isPanelLayout(global)) {
    // Row-major: row r of the whole is row r of each piece in turn.
    int64_t rows = tensor.getNumElements() / tensor.getShape().back();
    for (int64_t row = 0; row < rows; ++row)
      for (const Piece &p : parts)
        sink(p.bytes.slice(row * p.columns * elementBytes,
                           p.columns * elementBytes));
    return llvm::Error::success();
  }
  // Columns [j0, j0 + cols) of `row`, wherever they lie among the pieces.
  auto copyRow = [&](int64_t row, int64_t j0, int64_t cols, float *dst) {
    int64_t start = 0;
    for (const Piece &p : parts) {
      int64_t lo = std::max(j0, start),
              hi = std::min(j0 + cols, start + p.columns);
      if (lo < hi)
        std::memcpy(dst + (lo - j0),
                    p.bytes.data() +
                        (row * p.columns + lo - start) * sizeof(float),
                    (hi - lo) * sizeof(float));
      start += p.columns;
    }
  };
  PanelShape s = panelShape(global);
  // One panel at a time: K x 32 floats, columns past N zero.
  std::vector<float> panel(s.k * kPanel);
  for (int64_t p = 0; p < s.panels(); ++p) {
    int64_t j0 = p * kPanel, cols = std::min(kPanel, s.n - j0);
    std::fill(panel.begin(), panel.end(), 0.0f);
    for (int64_t row = 0; row < s.k; ++row)
      copyRow(row, j0, cols, &panel[row * kPanel]);
    sink(
        llvm::ArrayRef<uint8_t>(reinterpret_cast<const uint8_t *>(panel.data()),
                                panel.size() * sizeof(float)));
  }
  return llvm::Error::success();
}
