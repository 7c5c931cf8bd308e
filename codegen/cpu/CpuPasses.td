//===- CpuPasses.td - kiln CPU code generation ------------*- tablegen -*-===//

#ifndef KILN_CODEGEN_CPU_PASSES_TD
#define KILN_CODEGEN_CPU_PASSES_TD

include "mlir/Pass/PassBase.td"

def ConvertKilnToLoopsPass
    : Pass<"convert-kiln-to-loops", "::mlir::ModuleOp"> {
  let summary = "Lower the step function to buffers, loops and kernel calls";
  let description = [{
    Takes the step function `--kiln-insert-kv-cache` produced and emits
    `kiln_model_step(const kiln_step_args *, const kiln_kernels *) -> i32`,
    the entry point of `model.so` (runtime/include/kiln/model_abi.h):

    * a static memory plan: every intermediate tensor gets a byte offset in
      one arena sized for `max-batch-tokens` tokens; tensors whose
      lifetimes do not overlap share bytes; reshapes alias their input; the
      logits go straight into the caller's buffer. The arena size is
      exported as `kiln_model_arena_bytes` and recorded in the module's
      `kiln.arena_bytes`.
    * weights are views of the mapped weights file at each `kiln.global`'s
      `kiln.offset` (assigned here when kilnc has not already done so).
    * `kiln.matmul` with a static 2-D f32 right-hand side (or its
      transpose) and `kiln.paged_attention` call the runtime's kernels
      through the kernel table; other ops become `linalg.generic` and `scf`
      loops.
    * splits and transposes are strided views read in place where every
      reader can take one; paged attention writes its output in the layout
      of a transpose that is its only reader. A `kiln.rotary` of q and of k
      with the same angles, read only by a `kiln.paged_attention`, is done
      by the attention kernel (k rotated as it is written into the cache)
      when its tables are per-token rows or caches indexed by the step's
      positions; otherwise it stays a loop nest. A single-use elementwise
      producer of its user's shape is computed inside its user's loop, and
      an f32 `kiln.add` of two operands of its shape, read by a norm, in
      the norm's first pass over each row (the sum stored where something
      else reads it).
    * `matmul(x, transpose(dequantize(w)))` with `w` a 4- or 8-bit weight
      calls `matmul_quant_f32` (fp32 math on the packed weight) or, where
      `quant-compute` asks for int8 and the group is 16, 32, 64, 128 or
      256, `matmul_quant_a8_f32` (activations rounded to int8 per group,
      as onnxruntime computes MatMulNBits at accuracy_level 4). With
      `auto`, the default, a matmul gets int8 when its `accuracy_level` is
      4.

    ```mlir
    func.func @kiln_model_step(%step: !llvm.ptr, %kernels: !llvm.ptr) -> i32
    ```

    With `graph`, the function is any graph with static shapes instead of
    a step function (no KV cache, no step inputs), lowered to

    ```mlir
    func.func @kiln_graph_run(%inputs: !llvm.ptr, %outputs: !llvm.ptr,
                              %arena: !llvm.ptr, %kernels: !llvm.ptr) -> i32
    ```

    reading argument `i` from `inputs[i]` and writing result `j` to
    `outputs[j]` (arrays of pointers to dense row-major buffers), with the
    arena size exported as `kiln_graph_arena_bytes`. This runs single ops
    and small graphs (the ONNX node tests) through the same lowering; it
    does not support weights.

    An op the CPU backend cannot lower yet is an error naming it. The pass
    does nothing when the module has no function to lower.
  }];
  let options = [
    Option<"maxBatchTokens", "max-batch-tokens", "int64_t", "256",
           "Most tokens one step may carry (sizes the arena)">,
    Option<"graphMode", "graph", "bool", "false",
           "Lower a whole static-shape graph to kiln_graph_run instead of a "
           "step function">,
    Option<"quantCompute", "quant-compute", "::mlir::kiln::QuantCompute",
           "::mlir::kiln::QuantCompute::Auto",
           "How matmuls with 4/8-bit weights treat their activations",
           [{::llvm::cl::values(
             clEnumValN(::mlir::kiln::QuantCompute::Auto, "auto",
                        "int8 where the matmul's accuracy_level is 4 "
                        "(onnxruntime's choice), else fp32"),
             clEnumValN(::mlir::kiln::QuantCompute::F32, "f32",
                        "always fp32"),
             clEnumValN(::mlir::kiln::QuantCompute::Int8, "int8",
                        "int8 wherever the int8 kernel applies"))}]>,
  ];
  let dependentDialects = [
    "::mlir::arith::ArithDialect", "::mlir::func::FuncDialect",
    "::mlir::linalg::LinalgDialect", "::mlir::LLVM::LLVMDialect",
    "::mlir::math::MathDialect", "::mlir::memref::MemRefDialect",
    "::mlir::scf::SCFDialect",
  ];
}

def PackWeightsPass : Pass<"kiln-cpu-pack-weights", "::mlir::ModuleOp"> {
  let summary = "Store matmul weights in the panels the CPU kernels read";
  let description = [{
    Marks every `kiln.global` that is only ever the right-hand side of a
    kernel matmul (a static 2-D f32 [K][N] weight times f32 activations,
    not transposed) with `kiln.layout = "panels"`: weights.bin then holds it
    in KILN_PANEL_COLUMNS-column panels (runtime/include/kiln/model_abi.h)
    and the matmul calls `matmul_packed_f32`, which streams each panel in
    order instead of copying strided rows of B before every multiply.

    ```mlir
    kiln.global @w : tensor<576x1536xf32> [#kiln.blob<...>]
        {kiln.layout = "panels"}
    ```

    Does nothing for a global that is read any other way (a gather, a
    transposed matmul such as a tied output projection, an element-wise
    op), that is quantized or not f32, that already has a layout, or that
    already has its place in the weights file (`kiln.offset`: kilnc runs
    this pass before it writes weights.bin, so that running it again as
    part of `--kiln-cpu-pipeline` changes nothing).
  }];
}

def ApproximateMathPass : Pass<"kiln-cpu-approximate-math"> {
  let summary = "f32 exp, log, tanh and erf as polynomials";
  let description = [{
    Rewrites f32 `math.exp`, `expm1`, `log`, `log1p`, `log2`, `tanh` and
    `erf` (what softmax, SiLU, GELU and log-softmax lower to) into MLIR's
    polynomial approximations: arithmetic LLVM's loop vectorizer widens,
    where a call to libm's scalar `expf` keeps a whole loop scalar. The
    approximations are accurate to a few ulp over the f32 range (the model
    logit checks and the ONNX node tests hold them to onnxruntime and
    ONNX's reference outputs).

    Does nothing to other element types (f64, f16 stay libm calls) or to
    other math ops.
  }];
  let dependentDialects = ["::mlir::arith::ArithDialect",
                           "::mlir::vector::VectorDialect",
                           "::mlir::math::MathDialect"];
}

#endif // KILN_CODEGEN_CPU_PASSES_TD
