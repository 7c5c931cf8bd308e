#include "compiler/onnx/OnnxWire.h"

#include <gtest/gtest.h>

#include <random>

using namespace kiln;

namespace {
onnx::ModelProto makeModel() {
  onnx::ModelProto m;
  m.set_ir_version(10);
  m.set_producer_name("kiln-test");
  auto *g = m.mutable_graph();
  g->set_name("g");
  auto *big = g->add_initializer();
  big->set_name("big");
  big->add_dims(1024);
  big->set_data_type(onnx::TensorProto::FLOAT);
  std::string raw(4096, '\0');
  for (size_t i = 0; i < raw.size(); ++i)
    raw[i] = static_cast<char>(i * 7);
  big->set_raw_data(raw);
  auto *small = g->add_initializer();
  small->set_name("small");
  small->add_dims(2);
  small->set_data_type(onnx::TensorProto::INT64);
  small->set_raw_data(std::string(16, '\1'));
  g->add_node()->set_op_type("Identity");
  return m;
}
} // namespace

TEST(OnnxWire, LargeRawDataIsLeftInTheFile) {
  onnx::ModelProto original = makeModel();
  std::string bytes = original.SerializeAsString();
  onnx::ModelProto lean;
  std::map<int, ByteRange> raw;
  llvm::ArrayRef<uint8_t> data(reinterpret_cast<const uint8_t *>(bytes.data()),
                               bytes.size());
  ASSERT_FALSE(bool(parseModelLean(data, lean, raw, 1024)));
  ASSERT_EQ(lean.graph().initializer_size(), 2);
  EXPECT_FALSE(lean.graph().initializer(0).has_raw_data());
  EXPECT_EQ(lean.graph().initializer(1).raw_data().size(), 16u);
  EXPECT_EQ(lean.graph().initializer(0).name(), "big");
  EXPECT_EQ(lean.producer_name(), "kiln-test");
  ASSERT_EQ(raw.count(0), 1u);
  EXPECT_EQ(raw.count(1), 0u);
  EXPECT_EQ(bytes.substr(raw[0].offset, raw[0].size),
            original.graph().initializer(0).raw_data());
}

TEST(OnnxWire, TruncatedInputFailsWithAnOffset) {
  std::string bytes = makeModel().SerializeAsString();
  for (size_t cut : {size_t(1), bytes.size() / 2, bytes.size() - 1}) {
    onnx::ModelProto lean;
    std::map<int, ByteRange> raw;
    llvm::ArrayRef<uint8_t> data(
        reinterpret_cast<const uint8_t *>(bytes.data()), cut);
    llvm::Error e = parseModelLean(data, lean, raw);
    ASSERT_TRUE(bool(e)) << "cut at " << cut;
    EXPECT_NE(llvm::toString(std::move(e)).find("byte"), std::string::npos);
  }
}

TEST(OnnxWire, RandomBytesNeverCrash) {
  std::mt19937 rng(42);
  for (int i = 0; i < 2000; ++i) {
    std::vector<uint8_t> bytes(rng() % 512);
    for (uint8_t &b : bytes)
      b = rng();
    onnx::ModelProto lean;
    std::map<int, ByteRange> raw;
    llvm::consumeError(parseModelLean(bytes, lean, raw));
  }
}
