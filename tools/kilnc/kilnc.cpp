//===- kilnc.cpp - the kiln compiler driver -------------------------------===//
//
// kilnc MODEL.onnx [-o OUT] [--emit=mlir] [--time-passes]
//
// Imports an ONNX decoder, brings it to the kiln canonical form and writes
// the result. Code generation and the `.kiln` artifact are later stages of
// the pipeline (see docs/architecture.md); today kilnc stops at
// `--emit=mlir`, and says so for any other --emit value.
//
//===----------------------------------------------------------------------===//

#include "compiler/Registration.h"
#include "compiler/onnx/OnnxImporter.h"
#include "passes/Passes.h"

#include "mlir/IR/AsmState.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Support/FileUtilities.h"
#include "mlir/Transforms/Passes.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/ToolOutputFile.h"

using namespace llvm;

static cl::opt<std::string> inputFile(cl::Positional, cl::desc("<model.onnx>"),
                                      cl::Required);
static cl::opt<std::string> outputFile("o",
                                       cl::desc("output file ('-' for stdout)"),
                                       cl::value_desc("path"), cl::init("-"));
static cl::opt<std::string> emit("emit", cl::desc("what to write: mlir"),
                                 cl::init("mlir"));
static cl::opt<bool> noCanonicalize(
    "no-canonicalize",
    cl::desc("write the IR as imported, before canonicalization"));
static cl::opt<bool> force("force",
                           cl::desc("overwrite an existing output file"));

int main(int argc, char **argv) {
  InitLLVM y(argc, argv);
  mlir::registerPassManagerCLOptions();
  mlir::registerAsmPrinterCLOptions();
  mlir::registerMLIRContextCLOptions();
  cl::ParseCommandLineOptions(argc, argv, "kiln compiler\n");

  if (emit != "mlir") {
    errs() << "kilnc: error: --emit=" << emit
           << " is not available yet; this build emits 'mlir' only\n";
    return 2;
  }
  if (outputFile != "-" && sys::fs::exists(outputFile) && !force) {
    errs() << "kilnc: error: output '" << outputFile
           << "' exists; pass --force to overwrite it\n";
    return 2;
  }

  mlir::DialectRegistry registry;
  kiln::registerAllDialects(registry);
  mlir::MLIRContext ctx(registry);
  ctx.loadAllAvailableDialects();
  SourceMgr sourceMgr;
  mlir::SourceMgrDiagnosticHandler diagHandler(sourceMgr, &ctx);

  kiln::WeightStore store(sys::path::parent_path(inputFile).str());
  mlir::OwningOpRef<mlir::ModuleOp> module =
      kiln::importOnnxFile(inputFile, &ctx, store);
  if (!module)
    return 1;

  if (!noCanonicalize) {
    mlir::PassManager pm(&ctx);
    if (failed(mlir::applyPassManagerCLOptions(pm)))
      return 1;
    mlir::kiln::buildCanonicalFormPipeline(pm);
    if (failed(pm.run(*module)))
      return 1;
  }

  std::string error;
  auto out = mlir::openOutputFile(outputFile, &error);
  if (!out) {
    errs() << "kilnc: error: " << error << "\n";
    return 1;
  }
  module->print(out->os());
  out->keep();
  return 0;
}
