//===- ArtifactWriter.cpp - the NAME.kiln directory -----------------------===//

#include "compiler/artifact/ArtifactWriter.h"
#include "compiler/weights/WeightLayout.h"

#include "dialects/kiln/IR/KilnDialect.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/SHA256.h"
#include "llvm/Support/raw_ostream.h"

using namespace kiln;
namespace fs = llvm::sys::fs;

static std::string hex(llvm::ArrayRef<uint8_t> digest) {
  return llvm::toHex(digest, /*LowerCase=*/true);
}

llvm::Expected<ArtifactWriter> ArtifactWriter::create(llvm::StringRef path,
                                                      bool force) {
  ArtifactWriter w;
  w.finalPath = path.str();
  w.force = force;
  if (fs::exists(path)) {
    if (!force)
      return llvm::createStringError("output '" + path.str() +
                                     "' exists; pass --force to replace it");
    llvm::SmallString<256> manifest(path);
    llvm::sys::path::append(manifest, "manifest.json");
    if (!fs::is_directory(path) || !fs::exists(manifest))
      return llvm::createStringError(
          "output '" + path.str() +
          "' exists and is not a kiln artifact (no manifest.json); refusing "
          "to replace it even with --force");
  }
  llvm::SmallString<256> parent(llvm::sys::path::parent_path(path));
  if (parent.empty())
    parent = ".";
  // Absolute: createUniqueDirectory puts a relative model under the
  // system's temporary directory, not next to the output.
  if (std::error_code ec = fs::make_absolute(parent))
    return llvm::createStringError("cannot resolve '" + path.str() +
                                   "': " + ec.message());
  llvm::SmallString<256> temp;
  if (std::error_code ec = fs::createUniqueDirectory(
          parent + "/." + llvm::sys::path::filename(path) + ".tmp", temp))
    return llvm::createStringError("cannot create a directory next to '" +
                                   path.str() + "': " + ec.message());
  w.tempPath = temp.str().str();
  return w;
}

std::string ArtifactWriter::file(llvm::StringRef name) const {
  llvm::SmallString<256> p(tempPath);
  llvm::sys::path::append(p, name);
  return p.str().str();
}

llvm::Error ArtifactWriter::recordFile(llvm::StringRef name) {
  auto buffer = llvm::MemoryBuffer::getFile(file(name), /*IsText=*/false,
                                            /*RequiresNullTerminator=*/false);
  if (!buffer)
    return llvm::createStringError("cannot read back '" + file(name) +
                                   "': " + buffer.getError().message());
  auto digest =
      llvm::SHA256::hash(llvm::arrayRefFromStringRef((*buffer)->getBuffer()));
  files[name] = llvm::json::Object{
      {"size", static_cast<int64_t>((*buffer)->getBufferSize())},
      {"sha256", hex(digest)}};
  return llvm::Error::success();
}

llvm::Error ArtifactWriter::writeWeights(mlir::ModuleOp module,
                                         WeightStore &store, int64_t size) {
  std::error_code ec;
  llvm::raw_fd_ostream os(file("weights.bin"), ec, fs::OF_None);
  if (ec)
    return llvm::createStringError("cannot write weights.bin: " + ec.message());
  llvm::SHA256 hash;
  int64_t written = 0;
  static const char zeros[64] = {};
  auto pad = [&](int64_t to) {
    while (written < to) {
      int64_t n = std::min<int64_t>(64, to - written);
      os.write(zeros, n);
      hash.update(
          llvm::ArrayRef<uint8_t>(reinterpret_cast<const uint8_t *>(zeros), n));
      written += n;
    }
  };
  for (auto global : module.getOps<mlir::kiln::GlobalOp>()) {
    auto offset = global->getAttrOfType<mlir::IntegerAttr>("kiln.offset");
    if (!offset)
      return llvm::createStringError("weight @" + global.getSymName().str() +
                                     " has no kiln.offset");
    if (offset.getInt() < written)
      return llvm::createStringError("weight offsets are not increasing at @" +
                                     global.getSymName().str());
    pad(offset.getInt());
    if (llvm::Error e =
            writeStored(global, store, [&](llvm::ArrayRef<uint8_t> bytes) {
              os.write(reinterpret_cast<const char *>(bytes.data()),
                       bytes.size());
              hash.update(bytes);
              written += bytes.size();
            }))
      return e;
  }
  pad(size);
  os.close();
  if (os.has_error())
    return llvm::createStringError("writing weights.bin failed: " +
                                   os.error().message());
  files["weights.bin"] =
      llvm::json::Object{{"size", written}, {"sha256", hex(hash.final())}};
  return llvm::Error::success();
}

llvm::Error ArtifactWriter::copyModelFiles(llvm::StringRef modelDir) {
  for (const char *name :
       {"tokenizer.json", "tokenizer_config.json", "generation_config.json",
        "config.json", "genai_config.json"}) {
    llvm::SmallString<256> from(modelDir);
    llvm::sys::path::append(from, name);
    if (!fs::exists(from))
      continue;
    if (std::error_code ec = fs::copy_file(from, file(name)))
      return llvm::createStringError("cannot copy '" + from.str().str() +
                                     "': " + ec.message());
    if (llvm::Error e = recordFile(name))
      return e;
  }
  return llvm::Error::success();
}

llvm::Error ArtifactWriter::commit() {
  manifestObject["files"] = std::move(files);
  {
    std::error_code ec;
    llvm::raw_fd_ostream os(file("manifest.json"), ec, fs::OF_Text);
    if (ec)
      return llvm::createStringError("cannot write manifest.json: " +
                                     ec.message());
    os << llvm::formatv("{0:2}", llvm::json::Value(std::move(manifestObject)))
       << "\n";
  }
  if (fs::exists(finalPath)) {
    // Only an artifact gets here (create() checked): remove its files.
    std::error_code ec;
    for (fs::directory_iterator it(finalPath, ec), end; it != end && !ec;
         it.increment(ec))
      fs::remove(it->path());
    if (std::error_code rm = fs::remove(finalPath))
      return llvm::createStringError("cannot replace '" + finalPath +
                                     "': " + rm.message());
  }
  if (std::error_code ec = fs::rename(tempPath, finalPath))
    return llvm::createStringError("cannot move the artifact to '" + finalPath +
                                   "': " + ec.message());
  tempPath.clear();
  return llvm::Error::success();
}

void ArtifactWriter::discard() {
  if (tempPath.empty())
    return;
  std::error_code ec;
  for (fs::directory_iterator it(tempPath, ec), end; it != end && !ec;
       it.increment(ec))
    fs::remove(it->path());
  fs::remove(tempPath);
  tempPath.clear();
}
