//===- kilnc.cpp - the kiln compiler driver -------------------------------===//
//
// kilnc MODEL.onnx -o NAME.kiln [--max-batch-tokens N] [--block-size N]
//       [--quant-compute=auto|f32|int8] [--cpu=NAME] [--cpu-features=+f,-g]
//       [--force] [--mlir-timing]
// kilnc MODEL.onnx --emit=canonical|mlir|llvm|asm [-o FILE]
// kilnc MODEL.onnx --emit=graph -o FILE.so
//
// Imports an ONNX decoder, brings it to the kiln canonical form, moves
// attention onto the runtime's paged KV cache, lowers the step function to
// LLVM, compiles it in process for the target CPU and writes the artifact
// (see compiler/artifact/ArtifactWriter.h). --emit stops at a stage and
// writes it instead: `canonical` (after raising), `mlir` (the step
// function), `llvm` (optimized LLVM IR), `asm`. --emit=graph compiles any
// static-shape graph (no KV cache) into a library exporting kiln_graph_run,
// which the ONNX node tests execute.
//
//===----------------------------------------------------------------------===//

#include "codegen/cpu/CpuPasses.h"
#include "codegen/cpu/Target.h"
#include "compiler/Registration.h"
#include "compiler/artifact/ArtifactWriter.h"
#include "compiler/onnx/OnnxImporter.h"
#include "passes/Passes.h"
#include "runtime/include/kiln/model_abi.h"

#include "mlir/IR/AsmState.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Support/FileUtilities.h"
#include "mlir/Support/Timing.h"
#include "mlir/Transforms/Passes.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Process.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/Timer.h"
#include "llvm/Support/ToolOutputFile.h"

#include <chrono>

using namespace llvm;

static cl::opt<std::string> inputFile(cl::Positional, cl::desc("<model.onnx>"),
                                      cl::Required);
static cl::opt<std::string>
    outputFile("o",
               cl::desc("output: the artifact directory, or a file for "
                        "--emit ('-' for stdout)"),
               cl::value_desc("path"));
static cl::opt<std::string>
    emit("emit",
         cl::desc("what to write: artifact (default), canonical (kiln IR "
                  "after raising), mlir (the step function), llvm, asm, "
                  "graph (a static-shape graph as a library running it once, "
                  "for tests)"),
         cl::init("artifact"));
static cl::opt<bool>
    noCanonicalize("no-canonicalize",
                   cl::desc("with --emit=canonical: the IR as imported"));
static cl::opt<bool> force("force", cl::desc("overwrite an existing output"));
static cl::opt<int64_t> maxBatchTokens(
    "max-batch-tokens",
    cl::desc("most tokens one step may carry; sizes the arena (default 256)"),
    cl::init(256));
static cl::opt<int64_t>
    blockSize("block-size", cl::desc("tokens per KV-cache block (default 16)"),
              cl::init(16));
static cl::opt<int64_t> contextLength(
    "context-length",
    cl::desc("longest sequence (default: max_position_embeddings from the "
             "model's config.json)"),
    cl::init(0));
static cl::opt<std::string>
    cpu("cpu", cl::desc("target CPU (default: this machine's)"));
static cl::opt<std::string> cpuFeatures(
    "cpu-features",
    cl::desc("target features, e.g. +avx2,+fma (default: the CPU's)"));
static cl::opt<mlir::kiln::QuantCompute> quantCompute(
    "quant-compute",
    cl::desc("how matmuls with 4/8-bit weights treat their activations"),
    cl::values(
        clEnumValN(mlir::kiln::QuantCompute::Auto, "auto",
                   "as the model's accuracy_level says (default): int8 at "
                   "level 4, as onnxruntime computes; else fp32"),
        clEnumValN(mlir::kiln::QuantCompute::F32, "f32", "always fp32"),
        clEnumValN(mlir::kiln::QuantCompute::Int8, "int8",
                   "rounded to int8 per group wherever the int8 kernel "
                   "applies (groups of 16 to 256)")),
    cl::init(mlir::kiln::QuantCompute::Auto));
static cl::opt<bool> fuseMatMuls(
    "fuse-matmuls",
    cl::desc("join matmuls of one activation by weights (Q/K/V, gate/up) "
             "into one, --kiln-fuse-matmuls (default off: on SmolLM2 no "
             "faster within measurement noise, docs/benchmarks.md)"),
    cl::init(false));
static cl::opt<bool> quiet("quiet", cl::desc("no progress lines"));

namespace {

/// One line per phase on stderr with its wall time.
class Progress {
public:
  void begin(StringRef what) {
    phase = what.str();
    start = std::chrono::steady_clock::now();
    if (!quiet)
      errs() << "kilnc: " << phase << "...";
  }
  void end(StringRef detail = "") {
    double s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
            .count();
    if (!quiet) {
      errs() << format(" %.2f s", s);
      if (!detail.empty())
        errs() << " (" << detail << ")";
      errs() << "\n";
    }
  }

private:
  std::string phase;
  std::chrono::steady_clock::time_point start;
};

int fail(const Twine &message) {
  errs() << "\nkilnc: error: " << message << "\n";
  return 1;
}

/// A JSON file of the model directory, or null when absent.
std::optional<json::Value> readJson(StringRef dir, StringRef name) {
  SmallString<256> path(dir);
  sys::path::append(path, name);
  auto buffer = MemoryBuffer::getFile(path);
  if (!buffer)
    return std::nullopt;
  Expected<json::Value> v = json::parse((*buffer)->getBuffer());
  if (!v) {
    consumeError(v.takeError());
    return std::nullopt;
  }
  return std::move(*v);
}

/// eos ids: generation_config.json, then config.json; an int or a list.
json::Array eosTokens(ArrayRef<const std::optional<json::Value> *> sources) {
  json::Array ids;
  for (const std::optional<json::Value> *p : sources) {
    const std::optional<json::Value> &source = *p;
    if (!source || !source->getAsObject())
      continue;
    const json::Value *eos = source->getAsObject()->get("eos_token_id");
    if (!eos)
      continue;
    if (auto one = eos->getAsInteger())
      ids.push_back(*one);
    else if (const json::Array *many = eos->getAsArray())
      for (const json::Value &v : *many)
        if (auto id = v.getAsInteger())
          ids.push_back(*id);
    if (!ids.empty())
      break;
  }
  return ids;
}

/// --quant-compute as spelled on the command line.
const char *quantComputeName(mlir::kiln::QuantCompute mode) {
  switch (mode) {
  case mlir::kiln::QuantCompute::Auto:
    return "auto";
  case mlir::kiln::QuantCompute::F32:
    return "f32";
  case mlir::kiln::QuantCompute::Int8:
    return "int8";
  }
  return "auto";
}

/// The weight quantization schemes in the model (before lowering): each
/// distinct #kiln.quant with the number of weights using it, or "none".
json::Value quantizationSummary(mlir::ModuleOp module) {
  std::map<std::string, int64_t> schemes;
  for (auto global : module.getOps<mlir::kiln::GlobalOp>())
    if (auto q = dyn_cast<mlir::kiln::QTensorType>(global.getType())) {
      std::string text;
      raw_string_ostream os(text);
      os << q.getQuant();
      ++schemes[text];
    }
  if (schemes.empty())
    return "none";
  json::Array list;
  for (const auto &[scheme, count] : schemes)
    list.push_back(json::Object{{"scheme", scheme}, {"weights", count}});
  return list;
}

} // namespace

int main(int argc, char **argv) {
  InitLLVM y(argc, argv);
  mlir::registerPassManagerCLOptions();
  mlir::registerAsmPrinterCLOptions();
  mlir::registerMLIRContextCLOptions();
  mlir::registerDefaultTimingManagerCLOptions();
  cl::ParseCommandLineOptions(argc, argv, "kiln compiler\n");

  static const char *stages[] = {"artifact", "canonical", "mlir",
                                 "llvm",     "asm",       "graph"};
  if (llvm::find(stages, emit) == std::end(stages))
    return fail("--emit=" + emit +
                " is not one of artifact, canonical, mlir, llvm, asm, graph");
  if (emit == "artifact" && outputFile.empty())
    return fail("pass -o NAME.kiln (the artifact directory to write)");
  if (emit == "graph" && (outputFile.empty() || outputFile == "-"))
    return fail("pass -o FILE.so (the graph library to write)");
  if (outputFile.empty())
    outputFile = "-";
  if (maxBatchTokens <= 0 || maxBatchTokens > (1 << 20))
    return fail("--max-batch-tokens must be in 1..1048576, got " +
                Twine(maxBatchTokens));
  if (blockSize <= 0 || blockSize > 4096)
    return fail("--block-size must be in 1..4096, got " + Twine(blockSize));
  if (emit != "artifact" && outputFile != "-" && sys::fs::exists(outputFile) &&
      !force)
    return fail("output '" + outputFile +
                "' exists; pass --force to "
                "overwrite it");

  mlir::kiln::CpuTarget target;
  target.cpu = cpu;
  target.features = cpuFeatures;
  if (Error e = mlir::kiln::resolveCpuTarget(target))
    return fail(toString(std::move(e)));

  mlir::DialectRegistry registry;
  kiln::registerAllDialects(registry);
  mlir::MLIRContext ctx(registry);
  ctx.loadAllAvailableDialects();
  SourceMgr sourceMgr;
  mlir::SourceMgrDiagnosticHandler diagHandler(sourceMgr, &ctx);
  // Diagnostics name the op on their first line; the whole op is noise.
  ctx.printOpOnDiagnostic(false);

  std::string modelDir = sys::path::parent_path(inputFile).str();
  if (modelDir.empty())
    modelDir = ".";
  // --mlir-timing: a report of every pass's time when kilnc exits.
  mlir::DefaultTimingManager timingManager;
  mlir::applyDefaultTimingManagerCLOptions(timingManager);
  mlir::TimingScope timing = timingManager.getRootScope();
  Progress progress;
  progress.begin("importing " + inputFile);
  kiln::WeightStore store(modelDir);
  mlir::OwningOpRef<mlir::ModuleOp> module =
      kiln::importOnnxFile(inputFile, &ctx, store);
  if (!module)
    return 1;
  progress.end();

  auto writeText = [&](function_ref<void(raw_ostream &)> print) -> int {
    std::string error;
    auto out = mlir::openOutputFile(outputFile, &error);
    if (!out)
      return fail(error);
    print(out->os());
    out->keep();
    return 0;
  };
  auto runPasses = [&](function_ref<void(mlir::PassManager &)> build) {
    mlir::PassManager pm(&ctx);
    if (failed(mlir::applyPassManagerCLOptions(pm)))
      return false;
    pm.enableTiming(timing);
    build(pm);
    return succeeded(pm.run(*module));
  };

  if (!(emit == "canonical" && noCanonicalize)) {
    progress.begin("canonical form");
    if (!runPasses([](mlir::PassManager &pm) {
          mlir::kiln::buildCanonicalFormPipeline(pm);
        }))
      return 1;
    progress.end();
  }
  if (emit == "canonical")
    return writeText([&](raw_ostream &os) { module->print(os); });

  // The whole graph once, without a KV cache: a shared library exporting
  // kiln_graph_run (codegen/cpu/CpuPasses.td), for testing single ops.
  if (emit == "graph") {
    progress.begin("lowering the graph to LLVM");
    if (!runPasses([](mlir::PassManager &pm) {
          mlir::kiln::buildCpuPipeline(pm, 1, /*graphMode=*/true, quantCompute);
        }))
      return 1;
    progress.end();
    progress.begin("compiling for " + target.cpu);
    if (Error e = mlir::kiln::emitSharedLibrary(*module, target, outputFile,
                                                mlir::kiln::EmitOutputs()))
      return fail(toString(std::move(e)));
    progress.end();
    return 0;
  }

  // The model's configuration: the manifest records it, and the KV-cache
  // insertion checks masks up to the context length.
  std::optional<json::Value> config = readJson(modelDir, "config.json");
  std::optional<json::Value> generation =
      readJson(modelDir, "generation_config.json");
  // ONNX Runtime GenAI models describe themselves in genai_config.json.
  std::optional<json::Value> genai;
  if (std::optional<json::Value> g = readJson(modelDir, "genai_config.json"))
    if (g->getAsObject())
      if (const json::Object *model = g->getAsObject()->getObject("model"))
        genai = json::Value(json::Object(*model));
  int64_t context = contextLength;
  for (const auto &[source, key] :
       {std::pair{&config, "max_position_embeddings"},
        std::pair{&config, "n_positions"}, std::pair{&genai, "context_length"}})
    if (context == 0 && *source && (*source)->getAsObject())
      if (auto v = (*source)->getAsObject()->getInteger(key))
        context = *v;
  if (context <= 0 && emit == "artifact")
    return fail("cannot tell the context length: no max_position_embeddings "
                "in " +
                modelDir +
                "/config.json (nor context_length in genai_config.json); "
                "pass --context-length");

  progress.begin("KV-cache insertion");
  if (!runPasses([&](mlir::PassManager &pm) {
        mlir::kiln::InsertKVCachePassOptions options;
        options.blockSize = blockSize;
        if (context > 0)
          options.contextLength = context;
        pm.addPass(mlir::kiln::createInsertKVCachePass(options));
        pm.addPass(mlir::createCanonicalizerPass());
        pm.addPass(mlir::createCSEPass());
        // Joined weights before layouts, layouts before offsets: a packed
        // weight's size is its panels'.
        if (fuseMatMuls)
          pm.addPass(mlir::kiln::createFuseMatMulsPass());
        pm.addPass(mlir::kiln::createPackWeightsPass());
      }))
    return 1;
  progress.end();
  int64_t weightBytes = mlir::kiln::assignWeightOffsets(*module);
  json::Value quantization = quantizationSummary(*module);
  if (emit == "mlir")
    return writeText([&](raw_ostream &os) { module->print(os); });

  // What the manifest records about the model, read before lowering erases
  // the step function's signature.
  mlir::func::FuncOp step;
  for (auto f : module->getOps<mlir::func::FuncOp>())
    step = f;
  mlir::kiln::KVCacheType cacheType;
  for (mlir::Type t : step.getArgumentTypes())
    if (auto c = dyn_cast<mlir::kiln::KVCacheType>(t))
      cacheType = c;
  if (!cacheType)
    return fail("the model has no attention, so no KV cache: kiln compiles "
                "decoders only");
  auto logitsType =
      cast<mlir::RankedTensorType>(step.getFunctionType().getResult(0));
  int64_t vocab = logitsType.getShape().back();
  std::unique_ptr<kiln::ArtifactWriter> artifact;
  if (emit == "artifact") {
    Expected<kiln::ArtifactWriter> w =
        kiln::ArtifactWriter::create(outputFile, force);
    if (!w)
      return fail(toString(w.takeError()));
    artifact = std::make_unique<kiln::ArtifactWriter>(std::move(*w));
    progress.begin("writing weights.bin");
    if (Error e = artifact->writeWeights(*module, store, weightBytes)) {
      artifact->discard();
      return fail(toString(std::move(e)));
    }
    progress.end(formatv("{0:f1} MiB", weightBytes / 1048576.0).str());
  }

  progress.begin("lowering to LLVM");
  if (!runPasses([](mlir::PassManager &pm) {
        mlir::kiln::buildCpuPipeline(pm, maxBatchTokens, /*graphMode=*/false,
                                     quantCompute);
      })) {
    if (artifact)
      artifact->discard();
    return 1;
  }
  int64_t arenaBytes = 0, kvWindow = -1;
  if (auto a = (*module)->getAttrOfType<mlir::IntegerAttr>("kiln.arena_bytes"))
    arenaBytes = a.getInt();
  if (auto w = (*module)->getAttrOfType<mlir::IntegerAttr>("kiln.kv_window"))
    kvWindow = w.getInt();
  progress.end(formatv("arena {0:f2} MiB for {1} tokens",
                       arenaBytes / 1048576.0, maxBatchTokens.getValue())
                   .str());

  std::string llvmIR, assembly;
  mlir::kiln::EmitOutputs outputs;
  if (emit == "llvm")
    outputs.llvmIR = &llvmIR;
  if (emit == "asm")
    outputs.assembly = &assembly;
  SmallString<128> library;
  if (artifact) {
    library = artifact->file("model.so");
  } else {
    int fd;
    if (sys::fs::createTemporaryFile("kiln-model", "so", fd, library))
      return fail("cannot create a temporary file");
    sys::Process::SafelyCloseFileDescriptor(fd);
  }
  progress.begin("compiling for " + target.cpu);
  if (Error e =
          mlir::kiln::emitSharedLibrary(*module, target, library, outputs)) {
    if (artifact)
      artifact->discard();
    return fail(toString(std::move(e)));
  }
  progress.end();
  if (!artifact) {
    sys::fs::remove(library);
    return writeText(
        [&](raw_ostream &os) { os << (emit == "llvm" ? llvmIR : assembly); });
  }

  // The manifest.
  json::Array features;
  for (const std::string &f : mlir::kiln::enabledFeatures(target))
    features.push_back(f);
  json::Object &m = artifact->manifest();
  m["format_version"] = kiln::kArtifactFormatVersion;
  m["producer"] = "kilnc";
  m["source"] = sys::path::filename(inputFile).str();
  m["model"] = json::Object{
      {"vocab_size", vocab},
      {"layers", cacheType.getLayers()},
      {"kv_heads", cacheType.getHeads()},
      {"head_dim", cacheType.getHeadDim()},
      {"context_length", context},
      {"eos_token_ids", eosTokens({&generation, &config, &genai})},
  };
  m["compile"] = json::Object{
      {"max_batch_tokens", static_cast<int64_t>(maxBatchTokens)},
      {"block_size", static_cast<int64_t>(blockSize)},
      {"arena_bytes", arenaBytes},
      {"kv_window", kvWindow},
      {"weights_bytes", weightBytes},
      {"model_abi_version", KILN_MODEL_ABI_VERSION},
      {"quant_compute", quantComputeName(quantCompute)},
      {"fuse_matmuls", static_cast<bool>(fuseMatMuls)},
  };
  m["target"] = json::Object{{"triple", target.triple},
                             {"cpu", target.cpu},
                             {"features", std::move(features)}};
  m["quantization"] = std::move(quantization);
  if (Error e = artifact->recordFile("model.so")) {
    artifact->discard();
    return fail(toString(std::move(e)));
  }
  if (Error e = artifact->copyModelFiles(modelDir)) {
    artifact->discard();
    return fail(toString(std::move(e)));
  }
  if (Error e = artifact->commit()) {
    artifact->discard();
    return fail(toString(std::move(e)));
  }
  if (!quiet)
    errs() << "kilnc: wrote " << outputFile << "\n";
  return 0;
}
