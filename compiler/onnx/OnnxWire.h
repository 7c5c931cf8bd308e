//===- OnnxWire.h - reading ONNX files without copying weights --*- C++ -*-===//
//
// Protobuf parsing copies every `bytes` field into a std::string; for an
// ONNX file with embedded weights that doubles memory. parseModelLean()
// first walks the wire format, re-encodes the model without the raw_data of
// large initializers, parses that small copy, and reports where each
// dropped raw_data lies in the original (memory-mapped) file.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_COMPILER_ONNX_ONNXWIRE_H
#define KILN_COMPILER_ONNX_ONNXWIRE_H

#include "onnx/onnx.pb.h"

#include "llvm/ADT/ArrayRef.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <map>

namespace kiln {

/// A byte range of the model file.
struct ByteRange {
  uint64_t offset = 0;
  uint64_t size = 0;
};

/// Parses `bytes` as an onnx.ModelProto. The raw_data of main-graph
/// initializers of at least `threshold` bytes is left out of `model`; its
/// range in `bytes` is stored in `rawData` under the initializer's index.
/// Fails with a message that gives the byte offset of malformed input.
llvm::Error parseModelLean(llvm::ArrayRef<uint8_t> bytes,
                           onnx::ModelProto &model,
                           std::map<int, ByteRange> &rawData,
                           uint64_t threshold = 1024);

} // namespace kiln

#endif // KILN_COMPILER_ONNX_ONNXWIRE_H
