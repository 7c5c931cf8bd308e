//===- OnnxText.h - ONNX's textual syntax -----------------------*- C++ -*-===//
//
// Parses the textual model syntax of onnx.parser (`<ir_version: 10, ...>
// graph (float[N] x) => (float[N] y) <initializers> { y = Relu(x) }`) into
// an onnx.ModelProto, so that kiln-translate reads the same test models the
// onnx package writes. Tests check this parser against the onnx package's
// own on every model in the lit suite (test/compiler/onnx/text-syntax.test).
//
// Supported: the model header (ir_version, opset_import, producer_name,
// producer_version, domain, model_version, doc_string), graph inputs and
// outputs with tensor types, initializers and value_infos in `<...>`, nodes
// with domains, optional (empty) inputs and attributes of every scalar, list
// and tensor kind. Not supported (a clear error): functions, graph-valued
// attributes, sequence/map/optional types, sparse tensors.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_COMPILER_ONNX_ONNXTEXT_H
#define KILN_COMPILER_ONNX_ONNXTEXT_H

#include "onnx/onnx.pb.h"

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

namespace kiln {

/// Whether `bytes` look like ONNX text rather than a binary model: the first
/// character that is not whitespace or part of a comment is `<`.
bool looksLikeOnnxText(llvm::StringRef bytes);

/// Parses ONNX text into `model`. Errors give the line and column.
llvm::Error parseOnnxText(llvm::StringRef text, onnx::ModelProto &model);

} // namespace kiln

#endif // KILN_COMPILER_ONNX_ONNXTEXT_H
