//===- Passes.td - kiln passes -------------------------------*- tablegen -*-===//
//
// Passes that bring imported IR to kiln's canonical form, compress and fuse
// it. Each pass says in its description when it does nothing.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_PASSES_TD
#define KILN_PASSES_TD

include "mlir/Pass/PassBase.td"

def RaiseNormsPass : Pass<"kiln-raise-norms"> {
  let summary = "Raise decomposed RMS normalizations to kiln.rms_norm";
  let description = [{
    Exporters that predate ONNX's RMSNormalization (Optimum, torch.onnx at
    opset < 23) spell RMSNorm as elementwise ops:

    ```
    y = w * (x * 1 / sqrt(mean(x^2, axis = -1, keepdims) + eps))
    ```

    with `x^2` as `pow(x, 2)` or `x * x`, `1 / sqrt(..)` as `div(1, ..)` or
    `reciprocal`, or the whole as `x / sqrt(..)`, multiplications in either
    operand order. This pass matches that structure, wherever it appears
    (no per-architecture code), and replaces it with

    ```mlir
    %y = kiln.rms_norm %x, %w {axis = 2 : i64, epsilon = 1.0e-05 : f32}
    ```

    It does nothing when the mean is not over the last axis alone, `eps` is
    not a scalar constant, the normalized value is not the squared value, or
    the scale is not a 1-D weight of the last dimension's size; the
    decomposed ops then stay as they are.
  }];
  let dependentDialects = ["::mlir::kiln::KilnDialect"];
}

def RaiseGeluPass : Pass<"kiln-raise-gelu"> {
  let summary = "Raise decomposed GELU activations to kiln.gelu";
  let description = [{
    Exporters write GELU as arithmetic. Two forms are recognized, with the
    factors of each product in any order and grouping:

    ```
    tanh: 0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x^3)))
    erf:  0.5 * x * (1 + erf(x / sqrt(2)))      (or x * (1/sqrt(2)))
    ```

    `x^3` may be `pow(x, 3)` or `x * x * x`. Matches become

    ```mlir
    %y = kiln.gelu %x {approximate = "tanh"} : tensor<?x?x256xf32>
    ```

    Constants must equal the formula's to within 1e-5 relative error. The
    pass does nothing when any factor differs (another constant, another
    value than `x`, a different activation such as `x * sigmoid(1.702 x)`).
  }];
  let dependentDialects = ["::mlir::kiln::KilnDialect"];
}

def RaiseGluPass : Pass<"kiln-raise-glu"> {
  let summary = "Raise gated activations (SwiGLU, GeGLU) to kiln.glu";
  let description = [{
    A gated MLP computes `down(activation(gate(x)) * up(x))`. The product
    in the middle is raised to one op, whatever the order and grouping of
    its factors:

    ```
    silu:            g * sigmoid(g) * u
    gelu, gelu_tanh: kiln.gelu(g) * u      (run --kiln-raise-gelu first)
    relu:            kiln.relu(g) * u
    sigmoid:         sigmoid(g) * u        (u other than g)
    ```

    becomes

    ```mlir
    %h = kiln.glu %g, %u {activation = "silu"} : tensor<1x?x1536xf32, #kiln.dims<[tokens]>>
    ```

    The CPU backend computes it in one loop instead of three, and reads
    `g` and `u` in place when they are the two halves of one fused gate/up
    matmul (`--kiln-fuse-matmuls`).

    The pass does nothing when the product has a constant factor or a
    factor besides the gate, its activation and up; when `g`, `u` and the
    product do not have one type (a broadcast); or to a plain SiLU
    `x * sigmoid(x)`, which gates nothing.
  }];
  let dependentDialects = ["::mlir::kiln::KilnDialect"];
}

def RaiseRotaryPass : Pass<"kiln-raise-rotary"> {
  let summary = "Raise decomposed rotary position embeddings to kiln.rotary";
  let description = [{
    Exporters without ONNX's RotaryEmbedding (Optimum, torch.onnx, dynamo)
    write RoPE as `x * C + rotate(x) * S`. Two rotations are recognized,
    with the products and the sum in either operand order and the negation
    as `neg` or `* -1`:

    ```
    halves (Llama, Qwen2, GPT-NeoX): rotate(x) = concat(-x[d/2:], x[:d/2])
    pairs (GPT-J rotate_every_two):  rotate(x) = flatten(stack(-x[1::2], x[::2]))
    ```

    x is `[batch, heads, seq, d]`, or `[batch, seq, heads, d]` (GPT-J
    rotates before moving the heads; the raised op then reads a transpose
    of x, and a transpose back that the exporter's own transpose undoes is
    removed). C and S must broadcast over the heads only (`[batch or 1, 1,
    seq, d]` or `[batch or 1, seq, 1, d]`, up to leading unit dimensions)
    and be provably duplicated along the last axis: `concat(w, w)` or
    `tile(w, [1, .., 2])` (halves), or each value repeated twice (pairs:
    `repeat_interleave`, i.e. a flattened concat, expand or tile of
    `[..., d/2, 1]`), possibly followed by cos/sin/neg/cast, a product or
    quotient with a one-element value (attention scaling) and reshapes,
    expands, transposes, slices or gathers that keep the last axis. The
    match
    becomes

    ```mlir
    %q2 = kiln.rotary %q, %c, %s {rotary_dim = 64 : i64}
        : (tensor<?x9x?x64xf32>, tensor<?x?x32xf32>, tensor<?x?x32xf32>) -> tensor<?x9x?x64xf32>
    ```

    with `%c`/`%s` the same chain rebuilt on `w` (`cos(f) * scale` instead
    of `cos(concat(f, f)) * scale`, so half the cos/sin work), one row per
    token. Partial rotary, `concat(rotary(x[:r]), x[r:])` on the last axis,
    becomes one `kiln.rotary` of x with `rotary_dim = r`.

    It does nothing when the duplication of C or S cannot be proven (the
    halves may differ, e.g. `cos(w)` of a weight read as a whole), when the
    rotated value is not the multiplied one, when the slices or the concat
    are not on the last axis or do not split it in halves (or pairs), or
    when C/S vary over the heads; the arithmetic then stays as it is.
  }];
  let dependentDialects = ["::mlir::kiln::KilnDialect"];
}

def RaiseAttentionPass : Pass<"kiln-raise-attention"> {
  let summary = "Raise decomposed scaled dot-product attention to kiln.attention";
  let description = [{
    Matches `softmax(scale * q k^T + mask) v` as exporters write it and
    replaces it with one `kiln.attention`:

    * the scale may be applied to q, to k^T (either side of the transpose),
      or to the scores (multiply or divide by a scalar constant); factors
      multiply. No scale at all means 1.
    * soft-capped scores `cap * tanh(scores / cap)` (Gemma 2) become the
      op's `softcap`.
    * the mask is an added float tensor (either operand order) or absent;
      it becomes the op's additive mask.
    * a NaN guard `where(is_nan(p), 0, p)` after the softmax is absorbed
      (kiln.attention yields zeros for rows that see no key).
    * keys and values repeated for grouped-query attention
      (`reshape -> expand -> reshape`, "repeat_kv") are unwrapped, so the op
      reads the KV heads once.

    Example result:

    ```mlir
    %o = kiln.attention %q, %k, %v mask(%m) {scale = 2.500000e-01 : f32}
        : (tensor<?x4x?x16xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>, tensor<?x1x?x?xf32>) -> tensor<?x4x?x16xf32>
    ```

    It does nothing when the softmax is not over the last axis, the key
    operand is not a transpose of the last two dimensions, a scale is not a
    scalar constant, or shapes do not line up as [batch, heads, seq, dim].
  }];
  let dependentDialects = ["::mlir::kiln::KilnDialect"];
}

def InsertKVCachePass : Pass<"kiln-insert-kv-cache", "::mlir::ModuleOp"> {
  let summary = "Move attention onto the runtime's paged KV cache";
  let description = [{
    Turns the graph into kiln's step function, whatever the export style:

    * `past_*` inputs concatenated (axis 2) with the new keys/values and
      returned as `present_*` (Optimum, torch.onnx), or
    * no cache at all (keys are the step's own tokens, causal).

    Every `kiln.attention` becomes a `kiln.paged_attention` that writes the
    new keys/values into the cache and attends over the token's sequence;
    the `past` arguments, `present` results and padding masks disappear.
    The batch dimension becomes 1 and the token dimension the symbol
    `tokens` (all sequences of a step packed in one row). Positions computed
    as `range(past_length, past_length + tokens)` become a `positions`
    argument. The logits matmul reads only the rows of a new `logit_rows`
    argument (elementwise ops with constants after it, a bias or soft-
    capping, are redone on those rows). Step inputs are marked with `kiln.step_input`:

    ```mlir
    func.func @main(%ids: tensor<1x?xi64, #kiln.dims<[tokens]>> {kiln.step_input = "token_ids"}, ...,
                    %cache: !kiln.kv_cache<layers = 30, heads = 3, head_dim = 64, block = 16, f32> {kiln.step_input = "kv_cache"},
                    %rows: tensor<?xi64, #kiln.dims<[logit_rows]>> {kiln.step_input = "logit_rows"})
        -> tensor<1x?x49152xf32, #kiln.dims<[logit_rows]>>
    ```

    Masks may be computed only from padding-mask arguments, constants and
    tensor sizes; the cache then provides what they say. To know what that
    is, the pass evaluates each mask with the padding masks all ones, for a
    few small sizes and for the last tokens of a `context-length` context,
    and checks every query row: a causal mask needs nothing more, a sliding
    window (the query at position p sees keys p - w .. p) becomes the
    paged attention's `window = w`, and anything else (bidirectional
    attention, a bias such as ALiBi, keys in the future, a window that
    changes) is an error that says what the query sees. An attention it
    cannot map (a shared-buffer cache without key_lengths, a mask computed
    from anything else, a past argument still used after the rewrite) is an
    error naming the op. It does nothing when the function has no
    `kiln.attention`.
  }];
  let options = [
    Option<"blockSize", "block-size", "int64_t", "16",
           "Tokens per KV-cache block">,
    Option<"contextLength", "context-length", "int64_t", "4096",
           "The longest sequence the artifact serves: masks are checked up "
           "to it">,
  ];
  let dependentDialects = ["::mlir::kiln::KilnDialect"];
}

def FuseMatMulsPass : Pass<"kiln-fuse-matmuls", "::mlir::ModuleOp"> {
  let summary = "Join matmuls of one activation by constant weights into one";
  let description = [{
    Finds `kiln.matmul`s in one block that read the same activation and
    whose right-hand sides are weights (the Q, K and V projections of an
    attention block; the gate and up projections of a gated MLP) and
    replaces them by one matmul on the weights joined along N, followed by
    a `kiln.split` of its result. A decode step then reads the activation
    once and makes one kernel call instead of two or three.

    ```mlir
    %q = kiln.matmul %x, %wq : (tensor<1x?x576xf32, #kiln.dims<[tokens]>>, tensor<576x576xf32>) -> tensor<1x?x576xf32, #kiln.dims<[tokens]>>
    %k = kiln.matmul %x, %wk : (tensor<1x?x576xf32, #kiln.dims<[tokens]>>, tensor<576x192xf32>) -> tensor<1x?x192xf32, #kiln.dims<[tokens]>>
    ```

    becomes

    ```mlir
    kiln.global @"q+k" : tensor<576x768xf32> [#kiln.blob<...q...>, #kiln.blob<...k...>]
        {kiln.parts = array<i64: 576, 192>}
    %w = kiln.weight @"q+k" : tensor<576x768xf32>
    %qk = kiln.matmul %x, %w : (...) -> tensor<1x?x768xf32, #kiln.dims<[tokens]>>
    %q, %k = kiln.split %qk {axis = 2 : i64} : tensor<1x?x768xf32, #kiln.dims<[tokens]>> -> (...)
    ```

    The joined global lists the pieces' blobs (no data is copied); the
    weights writer lays them out as one weight, in panels if
    `--kiln-cpu-pack-weights` asks for them (compiler/weights/
    WeightLayout.h). The pieces' globals are erased. A column of the result
    is computed as before, so results do not change.

    Right-hand sides that fuse: a 2-D static `kiln.weight` of a plain
    tensor ([K][N], same element type and K), or `transpose(dequantize(w))`
    of a [N][K] `!kiln.qtensor` grouped along K (MatMulNBits), all with the
    same `#kiln.quant` (bits, signedness, group size, scale type, zero
    points) and dequantized type, each piece a multiple of 32 rows of W
    (the quantized CPU kernels cut N into tiles and thread ranges of 8 or
    32 rows and reduce a tile's rows together; at a multiple of 32 every
    row is computed as it was alone). The matmuls must have the same attributes
    (`accuracy_level`). The fused matmul takes the place of the first one;
    since the activation is defined before it and the others' users come
    after their own matmuls, no op moves.

    It does nothing to a matmul whose right-hand side is not a weight (a
    computed value, a transposed plain weight such as a tied output
    projection), whose weight is read anywhere else, is already placed in
    the weights file or laid out (`kiln.offset`, `kiln.layout`: kilnc runs
    this pass before `--kiln-cpu-pack-weights` and offsets), or has a
    dynamic N; to matmuls of different activations, element types, K,
    quantization schemes or attributes; and to a lone matmul.
  }];
  let dependentDialects = ["::mlir::kiln::KilnDialect"];
}

#endif // KILN_PASSES_TD
