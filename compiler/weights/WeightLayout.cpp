//===- WeightLayout.cpp - how a weight is laid out in weights.bin ---------===//

#include "compiler/weights/WeightLayout.h"

#include "runtime/include/kiln/model_abi.h"

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
  if (global.getBlobs().size() != 1 ||
      llvm::cast<BlobAttr>(global.getBlobs()[0]).getSize() !=
          static_cast<uint64_t>(type.getNumElements()) * sizeof(float))
    return fail("not one blob of the tensor's size");
  return true;
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
  if (!isPanelLayout(global)) {
    for (mlir::Attribute a : global.getBlobs()) {
      auto bytes = store.getBytes(llvm::cast<BlobAttr>(a));
      if (!bytes)
        return bytes.takeError();
      sink(*bytes);
    }
    return llvm::Error::success();
  }
  std::string why;
  if (!canUsePanelLayout(global, &why))
    return llvm::createStringError("weight @" + global.getSymName().str() +
                                   " cannot be stored in panels: " + why);
  auto bytes = store.getBytes(llvm::cast<BlobAttr>(global.getBlobs()[0]));
  if (!bytes)
    return bytes.takeError();
  PanelShape s = panelShape(global);
  // One panel at a time: K x 32 floats, columns past N zero.
  std::vector<float> panel(s.k * kPanel);
  for (int64_t p = 0; p < s.panels(); ++p) {
    int64_t j0 = p * kPanel, cols = std::min(kPanel, s.n - j0);
    std::fill(panel.begin(), panel.end(), 0.0f);
    for (int64_t row = 0; row < s.k; ++row)
      std::memcpy(&panel[row * kPanel],
                  bytes->data() + (row * s.n + j0) * sizeof(float),
                  cols * sizeof(float));
    sink(
        llvm::ArrayRef<uint8_t>(reinterpret_cast<const uint8_t *>(panel.data()),
                                panel.size() * sizeof(float)));
  }
  return llvm::Error::success();
}
