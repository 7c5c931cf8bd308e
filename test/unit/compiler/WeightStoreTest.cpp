#include "compiler/weights/WeightStore.h"

#include "mlir/IR/MLIRContext.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/raw_ostream.h"

#include <gtest/gtest.h>

using namespace kiln;

namespace {
struct WeightStoreTest : ::testing::Test {
  void SetUp() override {
    ctx.loadDialect<mlir::kiln::KilnDialect>();
    llvm::SmallString<128> dir;
    ASSERT_FALSE(llvm::sys::fs::createUniqueDirectory("kiln-ws", dir));
    base = std::string(dir);
    std::error_code ec;
    llvm::raw_fd_ostream os(base + "/w.bin", ec);
    ASSERT_FALSE(ec);
    for (int i = 0; i < 256; ++i)
      os << static_cast<char>(i);
  }
  void TearDown() override { llvm::sys::fs::remove_directories(base); }
  mlir::MLIRContext ctx;
  std::string base;
};
} // namespace

TEST_F(WeightStoreTest, MapsRangesOfFiles) {
  WeightStore store(base);
  auto blob = mlir::kiln::BlobAttr::get(&ctx, "w.bin", 16, 4);
  auto bytes = store.getBytes(blob);
  ASSERT_TRUE(bool(bytes)) << llvm::toString(bytes.takeError());
  EXPECT_EQ((std::vector<uint8_t>(bytes->begin(), bytes->end())),
            (std::vector<uint8_t>{16, 17, 18, 19}));
}

TEST_F(WeightStoreTest, RangePastEndOfFileIsAnErrorNamingTheFile) {
  WeightStore store(base);
  auto bytes =
      store.getBytes(mlir::kiln::BlobAttr::get(&ctx, "w.bin", 250, 10));
  ASSERT_FALSE(bool(bytes));
  std::string msg = llvm::toString(bytes.takeError());
  EXPECT_NE(msg.find("w.bin"), std::string::npos) << msg;
  EXPECT_NE(msg.find("256 bytes"), std::string::npos) << msg;
}

TEST_F(WeightStoreTest, MissingFileIsAnError) {
  WeightStore store(base);
  auto size = store.openFile("nope.bin");
  ASSERT_FALSE(bool(size));
  EXPECT_NE(llvm::toString(size.takeError()).find("nope.bin"),
            std::string::npos);
}

TEST_F(WeightStoreTest, BuffersKeepTheirBytes) {
  WeightStore store(base);
  auto a = store.addBuffer(&ctx, {1, 2, 3});
  auto b = store.addBuffer(&ctx, {9});
  EXPECT_NE(a.getFile(), b.getFile());
  auto bytes = store.getBytes(a);
  ASSERT_TRUE(bool(bytes));
  EXPECT_EQ(bytes->size(), 3u);
  EXPECT_EQ((*bytes)[2], 3);
}
