//===- WeightStore.cpp - weights outside the IR ---------------------------===//

#include "compiler/weights/WeightStore.h"

#include "llvm/ADT/SmallString.h"
#include "llvm/Support/Path.h"

using namespace kiln;

static constexpr llvm::StringLiteral kBufferPrefix = "kiln-buffer:";

std::string WeightStore::resolve(llvm::StringRef path) const {
  if (llvm::sys::path::is_absolute(path) || baseDir.empty())
    return path.str();
  llvm::SmallString<256> full(baseDir);
  llvm::sys::path::append(full, path);
  return std::string(full);
}

llvm::Expected<uint64_t> WeightStore::openFile(llvm::StringRef path) {
  auto it = files.find(path);
  if (it != files.end())
    return it->second->getBufferSize();
  std::string full = resolve(path);
  // mmap, never read: the OS pages weights in only when something uses them.
  auto buffer = llvm::MemoryBuffer::getFile(full, /*IsText=*/false,
                                            /*RequiresNullTerminator=*/false,
                                            /*IsVolatile=*/false);
  if (!buffer)
    return llvm::createStringError(
        buffer.getError(), "cannot open weight file '%s': %s", full.c_str(),
        buffer.getError().message().c_str());
  uint64_t size = (*buffer)->getBufferSize();
  files[path] = std::move(*buffer);
  return size;
}

llvm::Expected<llvm::ArrayRef<uint8_t>>
WeightStore::getBytes(mlir::kiln::BlobAttr blob) {
  llvm::StringRef file = blob.getFile();
  if (file.starts_with(kBufferPrefix)) {
    size_t index;
    if (file.drop_front(kBufferPrefix.size()).getAsInteger(10, index) ||
        index >= buffers.size())
      return llvm::createStringError("unknown in-memory weight buffer '%s'",
                                     file.str().c_str());
    const std::vector<uint8_t> &b = buffers[index];
    if (blob.getOffset() + blob.getSize() > b.size())
      return llvm::createStringError("blob range exceeds buffer '%s'",
                                     file.str().c_str());
    return llvm::ArrayRef<uint8_t>(b.data() + blob.getOffset(), blob.getSize());
  }
  llvm::Expected<uint64_t> size = openFile(file);
  if (!size)
    return size.takeError();
  if (blob.getOffset() + blob.getSize() > *size)
    return llvm::createStringError(
        "weight file '%s' has %llu bytes but a weight needs bytes [%llu, %llu)",
        resolve(file).c_str(), (unsigned long long)*size,
        (unsigned long long)blob.getOffset(),
        (unsigned long long)(blob.getOffset() + blob.getSize()));
  const auto *data =
      reinterpret_cast<const uint8_t *>(files[file]->getBufferStart());
  return llvm::ArrayRef<uint8_t>(data + blob.getOffset(), blob.getSize());
}

mlir::kiln::BlobAttr WeightStore::addBuffer(mlir::MLIRContext *ctx,
                                            std::vector<uint8_t> bytes) {
  std::string name = (kBufferPrefix + llvm::Twine(buffers.size())).str();
  uint64_t size = bytes.size();
  buffers.push_back(std::move(bytes));
  return mlir::kiln::BlobAttr::get(ctx, name, 0, size);
}
