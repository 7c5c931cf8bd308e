//===- Target.cpp - LLVM dialect to a shared library ----------------------===//

#include "codegen/cpu/Target.h"

#include "mlir/Target/LLVMIR/Dialect/Builtin/BuiltinToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/LLVMIR/LLVMToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Export.h"
#include "llvm/IR/LegacyPassManager.h"
#include "llvm/IR/Module.h"
#include "llvm/MC/MCSubtargetInfo.h"
#include "llvm/MC/TargetRegistry.h"
#include "llvm/Passes/PassBuilder.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/TargetSelect.h"
#include "llvm/Support/raw_ostream.h"
#include "llvm/Target/TargetMachine.h"
#include "llvm/Target/TargetOptions.h"
#include "llvm/TargetParser/Host.h"

using namespace mlir;
using namespace mlir::kiln;

static void initializeNativeTarget() {
  static bool done = [] {
    llvm::InitializeNativeTarget();
    llvm::InitializeNativeTargetAsmPrinter();
    return true;
  }();
  (void)done;
}

CpuTarget mlir::kiln::hostCpuTarget() {
  CpuTarget t;
  t.triple = llvm::sys::getProcessTriple();
  t.cpu = llvm::sys::getHostCPUName().str();
  std::vector<std::string> on;
  for (const auto &f : llvm::sys::getHostCPUFeatures())
    on.push_back((f.second ? "+" : "-") + f.first().str());
  std::sort(on.begin(), on.end());
  t.features = llvm::join(on, ",");
  return t;
}

llvm::Error mlir::kiln::resolveCpuTarget(CpuTarget &target) {
  initializeNativeTarget();
  CpuTarget host = hostCpuTarget();
  if (target.triple.empty())
    target.triple = host.triple;
  if (target.cpu.empty() && target.features.empty()) {
    target.cpu = host.cpu;
    target.features = host.features;
  } else if (target.cpu.empty()) {
    target.cpu = "x86-64";
  }
  std::string error;
  const llvm::Target *t =
      llvm::TargetRegistry::lookupTarget(llvm::Triple(target.triple), error);
  if (!t)
    return llvm::createStringError("unknown target '" + target.triple +
                                   "': " + error);
  std::unique_ptr<llvm::MCSubtargetInfo> sti(t->createMCSubtargetInfo(
      llvm::Triple(target.triple), target.cpu, target.features));
  if (!sti || !sti->isCPUStringValid(target.cpu))
    return llvm::createStringError("unknown CPU '" + target.cpu +
                                   "' for target '" + target.triple + "'");
  return llvm::Error::success();
}

std::vector<std::string> mlir::kiln::enabledFeatures(const CpuTarget &target) {
  std::vector<std::string> on;
  llvm::SmallVector<llvm::StringRef> parts;
  llvm::StringRef(target.features).split(parts, ',', -1, false);
  for (llvm::StringRef p : parts)
    if (p.consume_front("+"))
      on.push_back(p.str());
  std::sort(on.begin(), on.end());
  return on;
}

llvm::Error mlir::kiln::emitSharedLibrary(ModuleOp module,
                                          const CpuTarget &target,
                                          llvm::StringRef libraryPath,
                                          EmitOutputs outputs) {
  initializeNativeTarget();
  registerBuiltinDialectTranslation(*module.getContext());
  registerLLVMDialectTranslation(*module.getContext());

  llvm::LLVMContext llvmContext;
  std::unique_ptr<llvm::Module> llvmModule =
      translateModuleToLLVMIR(module, llvmContext, "kiln_model");
  if (!llvmModule)
    return llvm::createStringError("translation to LLVM IR failed");

  llvm::Triple triple(target.triple);
  std::string error;
  const llvm::Target *t = llvm::TargetRegistry::lookupTarget(triple, error);
  if (!t)
    return llvm::createStringError("unknown target '" + target.triple +
                                   "': " + error);
  llvm::TargetOptions options;
  std::unique_ptr<llvm::TargetMachine> machine(t->createTargetMachine(
      triple, target.cpu, target.features, options, llvm::Reloc::PIC_,
      std::nullopt, llvm::CodeGenOptLevel::Aggressive));
  llvmModule->setTargetTriple(triple);
  llvmModule->setDataLayout(machine->createDataLayout());
  for (llvm::Function &f : *llvmModule)
    if (!f.isDeclaration()) {
      f.addFnAttr("target-cpu", target.cpu);
      f.addFnAttr("target-features", target.features);
    }

  // -O3 with the target's cost model (vectorizes the generated loops).
  {
    llvm::LoopAnalysisManager lam;
    llvm::FunctionAnalysisManager fam;
    llvm::CGSCCAnalysisManager cgam;
    llvm::ModuleAnalysisManager mam;
    llvm::PassBuilder pb(machine.get());
    pb.registerModuleAnalyses(mam);
    pb.registerCGSCCAnalyses(cgam);
    pb.registerFunctionAnalyses(fam);
    pb.registerLoopAnalyses(lam);
    pb.crossRegisterProxies(lam, fam, cgam, mam);
    llvm::ModulePassManager mpm =
        pb.buildPerModuleDefaultPipeline(llvm::OptimizationLevel::O3);
    mpm.run(*llvmModule, mam);
  }
  if (outputs.llvmIR) {
    llvm::raw_string_ostream os(*outputs.llvmIR);
    llvmModule->print(os, nullptr);
  }
  auto emit = [&](llvm::CodeGenFileType type,
                  llvm::SmallVectorImpl<char> &buffer) -> llvm::Error {
    llvm::raw_svector_ostream os(buffer);
    llvm::legacy::PassManager pm;
    if (machine->addPassesToEmitFile(pm, os, nullptr, type))
      return llvm::createStringError("the target cannot emit this file type");
    pm.run(*llvmModule);
    return llvm::Error::success();
  };
  if (outputs.assembly) {
    llvm::SmallString<0> text;
    if (llvm::Error e = emit(llvm::CodeGenFileType::AssemblyFile, text))
      return e;
    *outputs.assembly = text.str().str();
  }
  llvm::SmallString<0> object;
  if (llvm::Error e = emit(llvm::CodeGenFileType::ObjectFile, object))
    return e;

  // Link with lld: the object, libm for the math the loops call.
  llvm::SmallString<128> objectPath;
  int fd;
  if (std::error_code ec =
          llvm::sys::fs::createTemporaryFile("kiln-model", "o", fd, objectPath))
    return llvm::createStringError("cannot create a temporary object file: " +
                                   ec.message());
  {
    llvm::raw_fd_ostream os(fd, /*shouldClose=*/true);
    os << object;
  }
  llvm::ErrorOr<std::string> lld = llvm::sys::findProgramByName("ld.lld-22");
  if (!lld)
    lld = llvm::sys::findProgramByName("ld.lld");
  if (!lld) {
    llvm::sys::fs::remove(objectPath);
    return llvm::createStringError(
        "cannot find ld.lld to link model.so: install lld-22 "
        "(scripts/setup.sh does)");
  }
  std::string out = libraryPath.str();
  llvm::SmallVector<llvm::StringRef> args = {
      *lld, "-shared",  "--no-undefined-version",      "-o",
      out,  objectPath, "-L/usr/lib/x86_64-linux-gnu", "-lm"};
  std::string message;
  int rc =
      llvm::sys::ExecuteAndWait(*lld, args, std::nullopt, {}, 0, 0, &message);
  llvm::sys::fs::remove(objectPath);
  if (rc != 0)
    return llvm::createStringError("linking " + out + " with " + *lld +
                                   " failed" +
                                   (message.empty() ? "" : ": " + message));
  return llvm::Error::success();
}
