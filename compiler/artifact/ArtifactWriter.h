//===- ArtifactWriter.h - the NAME.kiln directory ---------------*- C++ -*-===//
//
// An artifact is a directory:
//
//   NAME.kiln/
//     manifest.json   format version, model config, target, compile options,
//                     file sizes and SHA-256 hashes
//     model.so        the compiled step function (model_abi.h)
//     weights.bin     every weight at its 64-byte-aligned kiln.offset
//     tokenizer.json  (+ tokenizer_config.json, generation_config.json,
//                     config.json) copied from the model's directory
//
// It is written into a temporary directory beside the destination and
// renamed into place, so a failed compile never leaves half an artifact.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_COMPILER_ARTIFACT_ARTIFACTWRITER_H
#define KILN_COMPILER_ARTIFACT_ARTIFACTWRITER_H

#include "compiler/weights/WeightStore.h"

#include "mlir/IR/BuiltinOps.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/JSON.h"

#include <string>

namespace kiln {

/// Version of the artifact layout; the runtime refuses other versions.
constexpr int kArtifactFormatVersion = 1;

/// An artifact directory being written.
class ArtifactWriter {
public:
  /// Prepares a temporary directory next to `path`. With `force`, an
  /// existing artifact at `path` is replaced on commit(); anything else at
  /// `path` is never deleted.
  static llvm::Expected<ArtifactWriter> create(llvm::StringRef path,
                                               bool force);

  /// Where files go until commit().
  std::string file(llvm::StringRef name) const;

  /// Writes weights.bin from the kiln.globals of `module` (each at its
  /// kiln.offset) and returns its size and SHA-256 in `manifest["files"]`.
  llvm::Error writeWeights(mlir::ModuleOp module, WeightStore &store,
                           int64_t size);

  /// Copies the tokenizer and config files found in `modelDir`; records
  /// them in the manifest.
  llvm::Error copyModelFiles(llvm::StringRef modelDir);

  /// Adds a file already written under file(name) to the manifest's list.
  llvm::Error recordFile(llvm::StringRef name);

  /// The manifest, filled by the caller.
  llvm::json::Object &manifest() { return manifestObject; }

  /// Writes manifest.json and moves the directory into place.
  llvm::Error commit();

  /// Removes the temporary directory (when commit() was not reached).
  void discard();

private:
  std::string finalPath, tempPath;
  bool force = false;
  llvm::json::Object manifestObject;
  llvm::json::Object files;
};

} // namespace kiln

#endif // KILN_COMPILER_ARTIFACT_ARTIFACTWRITER_H
