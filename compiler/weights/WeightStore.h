//===- WeightStore.h - weights outside the IR -------------------*- C++ -*-===//
//
// The weight store owns the bytes of every weight; the IR only names byte
// ranges of files (`#kiln.blob`). Files are memory-mapped read-only, so
// importing a model does not read its weights: peak compile memory stays
// near the size of what passes actually touch. Passes that make new weights
// (quantize, prune, share) add in-memory buffers, which get names of the
// form `kiln-buffer:N` and live as long as the store.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_COMPILER_WEIGHTS_WEIGHTSTORE_H
#define KILN_COMPILER_WEIGHTS_WEIGHTSTORE_H

#include "dialects/kiln/IR/KilnDialect.h"

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/MemoryBuffer.h"

#include <memory>
#include <string>
#include <vector>

namespace kiln {

class WeightStore {
public:
  /// `baseDir` resolves relative blob paths (the model's directory).
  explicit WeightStore(std::string baseDir = ".")
      : baseDir(std::move(baseDir)) {}

  /// Maps `path` (relative to the base directory) if not mapped yet and
  /// returns its size; an error names the file when it cannot be opened.
  llvm::Expected<uint64_t> openFile(llvm::StringRef path);

  /// The bytes of a blob. Fails, naming the file, when the file is missing
  /// or shorter than the blob's range.
  llvm::Expected<llvm::ArrayRef<uint8_t>> getBytes(mlir::kiln::BlobAttr blob);

  /// Keeps `bytes` in memory and returns a blob that names them.
  mlir::kiln::BlobAttr addBuffer(mlir::MLIRContext *ctx,
                                 std::vector<uint8_t> bytes);

  const std::string &getBaseDir() const { return baseDir; }

private:
  std::string resolve(llvm::StringRef path) const;

  std::string baseDir;
  llvm::StringMap<std::unique_ptr<llvm::MemoryBuffer>> files;
  std::vector<std::vector<uint8_t>> buffers;
};

} // namespace kiln

#endif // KILN_COMPILER_WEIGHTS_WEIGHTSTORE_H
