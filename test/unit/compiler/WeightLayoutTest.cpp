#include "compiler/weights/WeightLayout.h"

#include "runtime/include/kiln/model_abi.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/OwningOpRef.h"

#include <gtest/gtest.h>

#include <cstring>

using namespace kiln;

namespace {
/// Weights joined along N (kiln.parts, --kiln-fuse-matmuls) must be written
/// as the weight they stand for, row-major or in panels.
struct WeightLayoutTest : ::testing::Test {
  WeightLayoutTest() : builder(&ctx) {
    ctx.loadDialect<mlir::kiln::KilnDialect>();
    module = mlir::ModuleOp::create(builder.getUnknownLoc());
    builder.setInsertionPointToEnd(module->getBody());
  }

  /// A [rows][cols] f32 matrix whose element (r, c) is `base + r * 1000 + c`.
  std::vector<float> matrix(int64_t rows, int64_t cols, float base) {
    std::vector<float> m(rows * cols);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c)
        m[r * cols + c] = base + r * 1000 + c;
    return m;
  }
  mlir::kiln::BlobAttr blob(const std::vector<float> &m) {
    std::vector<uint8_t> bytes(m.size() * sizeof(float));
    std::memcpy(bytes.data(), m.data(), bytes.size());
    return store.addBuffer(&ctx, std::move(bytes));
  }
  mlir::kiln::GlobalOp global(llvm::StringRef name, int64_t k, int64_t n,
                              llvm::ArrayRef<mlir::Attribute> blobs) {
    auto type = mlir::RankedTensorType::get({k, n}, builder.getF32Type());
    return mlir::kiln::GlobalOp::create(
        builder, builder.getUnknownLoc(), builder.getStringAttr(name),
        mlir::TypeAttr::get(type), builder.getArrayAttr(blobs));
  }
  std::vector<uint8_t> stored(mlir::kiln::GlobalOp g) {
    std::vector<uint8_t> out;
    llvm::Error e = writeStored(g, store, [&](llvm::ArrayRef<uint8_t> b) {
      out.insert(out.end(), b.begin(), b.end());
    });
    EXPECT_FALSE(bool(e)) << llvm::toString(std::move(e));
    EXPECT_EQ(out.size(), storedBytes(g));
    return out;
  }

  mlir::MLIRContext ctx;
  mlir::OpBuilder builder;
  mlir::OwningOpRef<mlir::ModuleOp> module;
  WeightStore store;
};

/// [a b c] of pieces [k][na], [k][nb], [k][nc], row-major.
std::vector<float> joined(int64_t k, llvm::ArrayRef<std::vector<float>> pieces,
                          llvm::ArrayRef<int64_t> cols) {
  std::vector<float> out;
  for (int64_t r = 0; r < k; ++r)
    for (auto [p, n] : llvm::zip(pieces, cols))
      out.insert(out.end(), p.begin() + r * n, p.begin() + (r + 1) * n);
  return out;
}
} // namespace

TEST_F(WeightLayoutTest, JoinedPiecesAreRowMajorRowsSideBySide) {
  const int64_t k = 3;
  auto a = matrix(k, 2, 0), b = matrix(k, 3, 0.5f);
  auto g = global("ab", k, 5, {blob(a), blob(b)});
  g->setAttr(kPartsAttr, builder.getDenseI64ArrayAttr({2, 3}));
  std::vector<float> expected = joined(k, {a, b}, {2, 3});
  std::vector<uint8_t> bytes = stored(g);
  ASSERT_EQ(bytes.size(), expected.size() * sizeof(float));
  EXPECT_EQ(std::memcmp(bytes.data(), expected.data(), bytes.size()), 0);
}

TEST_F(WeightLayoutTest, JoinedPiecesInPanelsEqualTheWholeInPanels) {
  // Pieces of 40, 30 and 32 columns: panel boundaries fall inside pieces
  // and the last panel is padded.
  const int64_t k = 5;
  auto a = matrix(k, 40, 0), b = matrix(k, 30, 0.25f), c = matrix(k, 32, 0.5f);
  auto whole =
      global("whole", k, 102, {blob(joined(k, {a, b, c}, {40, 30, 32}))});
  auto parts = global("parts", k, 102, {blob(a), blob(b), blob(c)});
  parts->setAttr(kPartsAttr, builder.getDenseI64ArrayAttr({40, 30, 32}));
  EXPECT_TRUE(canUsePanelLayout(parts));
  for (auto g : {whole, parts})
    g->setAttr(kLayoutAttr, builder.getStringAttr(kPanelsLayout));
  EXPECT_EQ(storedBytes(parts),
            static_cast<uint64_t>(4 * k * KILN_PANEL_COLUMNS * sizeof(float)));
  EXPECT_EQ(stored(parts), stored(whole));
}
