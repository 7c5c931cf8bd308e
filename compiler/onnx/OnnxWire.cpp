//===- OnnxWire.cpp - reading ONNX files without copying weights ----------===//

#include "compiler/onnx/OnnxWire.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/wire_format_lite.h>

#include <string>

using namespace kiln;
using google::protobuf::io::CodedInputStream;
using google::protobuf::io::CodedOutputStream;
using google::protobuf::io::StringOutputStream;
using WFL = google::protobuf::internal::WireFormatLite;

namespace {

// Field numbers from onnx.proto.
constexpr int kModelGraph = 7;
constexpr int kGraphInitializer = 5;
constexpr int kTensorRawData = 9;

struct Walker {
  const uint8_t *base;
  uint64_t threshold;
  std::map<int, ByteRange> &rawData;
  int initializerIndex = 0;

  llvm::Error malformed(uint64_t at) {
    return llvm::createStringError(
        "malformed or truncated protobuf near byte %llu",
        (unsigned long long)at);
  }

  /// Re-encodes the message in [begin, begin+size) into `out`. `level` says
  /// what the message is: 0 model, 1 graph, 2 initializer tensor.
  llvm::Error walk(uint64_t begin, uint64_t size, int level, std::string &out) {
    CodedInputStream in(base + begin, static_cast<int>(size));
    in.SetTotalBytesLimit(INT32_MAX);
    StringOutputStream sos(&out);
    CodedOutputStream cos(&sos);
    while (true) {
      uint64_t fieldStart = begin + in.CurrentPosition();
      uint32_t tag = in.ReadTag();
      if (tag == 0)
        break;
      int field = WFL::GetTagFieldNumber(tag);
      auto wireType = WFL::GetTagWireType(tag);
      bool nested = wireType == WFL::WIRETYPE_LENGTH_DELIMITED &&
                    ((level == 0 && field == kModelGraph) ||
                     (level == 1 && field == kGraphInitializer));
      bool dropRaw = level == 2 && field == kTensorRawData &&
                     wireType == WFL::WIRETYPE_LENGTH_DELIMITED;
      if (nested || dropRaw) {
        uint32_t length;
        if (!in.ReadVarint32(&length))
          return malformed(fieldStart);
        uint64_t payload = begin + in.CurrentPosition();
        if (payload + length > begin + size || !in.Skip(length))
          return malformed(fieldStart);
        if (dropRaw && length >= threshold) {
          rawData[initializerIndex] = {payload, length};
          continue;
        }
        if (dropRaw) {
          cos.WriteTag(tag);
          cos.WriteVarint32(length);
          cos.WriteRaw(base + payload, length);
          continue;
        }
        std::string inner;
        if (llvm::Error e = walk(payload, length, level + 1, inner))
          return e;
        if (level == 1)
          ++initializerIndex;
        cos.WriteTag(tag);
        cos.WriteVarint32(static_cast<uint32_t>(inner.size()));
        cos.WriteString(inner);
        continue;
      }
      if (!WFL::SkipField(&in, tag))
        return malformed(fieldStart);
      uint64_t fieldEnd = begin + in.CurrentPosition();
      cos.WriteRaw(base + fieldStart, static_cast<int>(fieldEnd - fieldStart));
    }
    if (!in.ConsumedEntireMessage() ||
        in.CurrentPosition() != static_cast<int>(size))
      return malformed(begin + in.CurrentPosition());
    return llvm::Error::success();
  }
};

} // namespace

llvm::Error kiln::parseModelLean(llvm::ArrayRef<uint8_t> bytes,
                                 onnx::ModelProto &model,
                                 std::map<int, ByteRange> &rawData,
                                 uint64_t threshold) {
  if (bytes.size() > INT32_MAX)
    return llvm::createStringError(
        "file is larger than 2 GiB; ONNX keeps weights of such models in "
        "external data files");
  Walker walker{bytes.data(), threshold, rawData};
  std::string lean;
  if (llvm::Error e = walker.walk(0, bytes.size(), 0, lean))
    return e;
  if (!model.ParseFromString(lean))
    return llvm::createStringError("not a valid ONNX ModelProto");
  return llvm::Error::success();
}
