//===- KilnOps.td - kiln operations -------------------------*- tablegen -*-===//
//
// Operations mirror what a decoder needs. Where an op keeps an ONNX
// semantic (broadcasting, negative axes already normalized), the description
// says so; the importer normalizes attributes (axes are non-negative,
// constant operands become attributes) so that passes see one form.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_OPS_TD
#define KILN_OPS_TD

include "dialects/kiln/IR/KilnAttrs.td"
include "mlir/IR/SymbolInterfaces.td"
include "mlir/Interfaces/InferTypeOpInterface.td"
include "mlir/Interfaces/SideEffectInterfaces.td"
include "mlir/IR/BuiltinAttributeInterfaces.td"

def Kiln_Tensor : RankedTensorOf<[AnyType]>;
def Kiln_FloatTensor : RankedTensorOf<[AnyFloat]>;
def Kiln_IntTensor : RankedTensorOf<[AnyInteger]>;
def Kiln_IndexTensor : RankedTensorOf<[I32, I64]>;
def Kiln_BoolTensor : RankedTensorOf<[I1]>;
def Kiln_WeightType : AnyTypeOf<[Kiln_Tensor, Kiln_QTensorType]>;

//===----------------------------------------------------------------------===//
// Weights and constants
//===----------------------------------------------------------------------===//

def Kiln_GlobalOp : Kiln_Op<"global", [Symbol]> {
  let summary = "Declares a weight held by the weight store";
  let description = [{
    Declares a named weight: its type and the byte ranges (`#kiln.blob`)
    that hold its data. A plain tensor has one blob; a `!kiln.qtensor` has
    the packed data, the scales and, when its scheme has them, the zero
    points, in that order. The data never enters the IR.

    A weight joined from pieces along N (`--kiln-fuse-matmuls`) carries
    `kiln.parts = array<i64: ...>`, each piece's size along the last axis
    of a tensor or the first of a qtensor, and lists one blob per piece
    for each of the parts above (a qtensor: every piece's data, then
    every piece's scales, then zero points; each piece filling whole
    bytes). The verifier checks the sizes; compiler/weights/WeightLayout.h
    writes such a weight as one.

    Example:

    ```mlir
    kiln.global @embed : tensor<49152x576xf32>
        [#kiln.blob<"model.onnx_data", offset = 0, size = 113246208>]
    ```
  }];
  let arguments = (ins SymbolNameAttr:$sym_name, TypeAttr:$type,
                       TypedArrayAttrBase<Kiln_BlobAttr, "blobs">:$blobs);
  let assemblyFormat = "$sym_name `:` $type $blobs attr-dict";
  let hasVerifier = 1;
}

def Kiln_WeightOp : Kiln_Op<"weight",
    [Pure, DeclareOpInterfaceMethods<SymbolUserOpInterface>]> {
  let summary = "Reads a weight declared by kiln.global";
  let description = [{
    Produces the value of the `kiln.global` named by `name`. The result type
    must equal the global's type.

    Example: `%w = kiln.weight @embed : tensor<49152x576xf32>`
  }];
  let arguments = (ins FlatSymbolRefAttr:$name);
  let results = (outs Kiln_WeightType:$result);
  let assemblyFormat = "$name attr-dict `:` type($result)";
}

def Kiln_ConstantOp : Kiln_Op<"constant",
    [ConstantLike, Pure, InferTypeOpAdaptor]> {
  let summary = "A small constant tensor";
  let description = [{
    A constant small enough to live in the IR: shape vectors, scalars,
    masks of a handful of elements. Weights use `kiln.weight` instead; the
    importer keeps initializers above a size threshold out of the IR.

    Example: `%c = kiln.constant dense<[1, 2]> : tensor<2xi64>`
  }];
  let arguments = (ins ElementsAttr:$value);
  let results = (outs Kiln_Tensor:$result);
  let assemblyFormat = "$value attr-dict";
  let hasFolder = 1;
}

//===----------------------------------------------------------------------===//
// Elementwise
//===----------------------------------------------------------------------===//

class Kiln_BinaryOp<string mnemonic, string what, list<Trait> traits = []>
    : Kiln_Op<mnemonic, !listconcat([Pure], traits)> {
  let summary = "Elementwise " # what # " with numpy broadcasting";
  let description = [{
    Computes the elementwise }] # what # [{ of `lhs` and `rhs`, broadcasting
    their shapes as numpy does. Both operands have the same element type.

    Example:

    ```mlir
    %r = kiln.}] # mnemonic # [{ %a, %b : (tensor<?x576xf32>, tensor<576xf32>) -> tensor<?x576xf32>
    ```
  }];
  let arguments = (ins Kiln_Tensor:$lhs, Kiln_Tensor:$rhs);
  let results = (outs Kiln_Tensor:$result);
  let assemblyFormat = "$lhs `,` $rhs attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Kiln_AddOp : Kiln_BinaryOp<"add", "sum", [Commutative]> { let hasFolder = 1; }
def Kiln_SubOp : Kiln_BinaryOp<"sub", "difference"> { let hasFolder = 1; }
def Kiln_MulOp : Kiln_BinaryOp<"mul", "product", [Commutative]> { let hasFolder = 1; }
def Kiln_DivOp : Kiln_BinaryOp<"div", "quotient (integer division truncates)"> { let hasFolder = 1; }
def Kiln_PowOp : Kiln_BinaryOp<"pow", "power">;
def Kiln_MaxOp : Kiln_BinaryOp<"max", "maximum", [Commutative]>;
def Kiln_MinOp : Kiln_BinaryOp<"min", "minimum", [Commutative]>;
def Kiln_EqualOp : Kiln_BinaryOp<"equal", "equality test (i1 result)", [Commutative]>;
def Kiln_LessOp : Kiln_BinaryOp<"less", "less-than test (i1 result)">;
def Kiln_GreaterOp : Kiln_BinaryOp<"greater", "greater-than test (i1 result)">;
def Kiln_LessEqualOp : Kiln_BinaryOp<"less_equal", "less-or-equal test (i1 result)">;
def Kiln_GreaterEqualOp : Kiln_BinaryOp<"greater_equal", "greater-or-equal test (i1 result)">;
def Kiln_AndOp : Kiln_BinaryOp<"and", "logical and of i1 tensors", [Commutative]>;
def Kiln_OrOp : Kiln_BinaryOp<"or", "logical or of i1 tensors", [Commutative]>;

class Kiln_UnaryOp<string mnemonic, string what, list<Trait> traits = []>
    : Kiln_Op<mnemonic, !listconcat([Pure, AllTypesMatch<["input", "result"]>], traits)> {
  let summary = "Elementwise " # what;
  let description = [{
    Applies }] # what # [{ to every element. The result has the operand's
    type.

    Example: `%r = kiln.}] # mnemonic # [{ %x : tensor<?x576xf32>`
  }];
  let arguments = (ins Kiln_Tensor:$input);
  let results = (outs Kiln_Tensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($result)";
  let hasVerifier = 1;
}

def Kiln_SqrtOp : Kiln_UnaryOp<"sqrt", "square root"> { let hasFolder = 1; }
def Kiln_ReciprocalOp : Kiln_UnaryOp<"reciprocal", "1 / x">;
def Kiln_NegOp : Kiln_UnaryOp<"neg", "negation">;
def Kiln_AbsOp : Kiln_UnaryOp<"abs", "absolute value">;
def Kiln_ExpOp : Kiln_UnaryOp<"exp", "natural exponential">;
def Kiln_LogOp : Kiln_UnaryOp<"log", "natural logarithm">;
def Kiln_TanhOp : Kiln_UnaryOp<"tanh", "hyperbolic tangent">;
def Kiln_ErfOp : Kiln_UnaryOp<"erf", "the error function">;
def Kiln_SigmoidOp : Kiln_UnaryOp<"sigmoid", "the logistic function 1 / (1 + exp(-x))">;
def Kiln_ReluOp : Kiln_UnaryOp<"relu", "max(x, 0)">;
def Kiln_CosOp : Kiln_UnaryOp<"cos", "cosine">;
def Kiln_SinOp : Kiln_UnaryOp<"sin", "sine">;
def Kiln_NotOp : Kiln_UnaryOp<"not", "logical negation of an i1 tensor">;

def Kiln_IsNaNOp : Kiln_Op<"is_nan", [Pure]> {
  let summary = "Elementwise test for NaN";
  let description = [{
    `true` where the element is a NaN. The result has the operand's shape
    and element type i1.

    Example: `%m = kiln.is_nan %x : tensor<4xf32> -> tensor<4xi1>`
  }];
  let arguments = (ins Kiln_FloatTensor:$input);
  let results = (outs Kiln_BoolTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
  let hasVerifier = 1;
}

def Kiln_GeluOp : Kiln_Op<"gelu", [Pure, AllTypesMatch<["input", "result"]>]> {
  let summary = "Gaussian error linear unit";
  let description = [{
    `x * 0.5 * (1 + erf(x / sqrt(2)))`, or with `approximate = "tanh"` the
    tanh approximation `0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3)))`.

    Example: `%r = kiln.gelu %x {approximate = "tanh"} : tensor<?x64xf32>`
  }];
  let arguments = (ins Kiln_FloatTensor:$input,
                       DefaultValuedAttr<StrAttr, "\"none\"">:$approximate);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($result)";
  let hasVerifier = 1;
}

def Kiln_GluOp : Kiln_Op<"glu", [Pure, AllTypesMatch<["gate", "up", "result"]>]> {
  let summary = "Gated linear unit: an activation of one operand times the other";
  let description = [{
    `activation(gate) * up`, elementwise, as a gated MLP computes between
    its gate/up projections and its down projection. `activation` is one
    of `"silu"` (`x * sigmoid(x)`: SwiGLU, Llama, Qwen, Mistral, SmolLM2),
    `"gelu"` (erf GELU: GeGLU), `"gelu_tanh"` (tanh-approximated GELU:
    Gemma), `"relu"` (ReGLU) or `"sigmoid"` (the original GLU). `gate`, `up`
    and the result have one type; there is no broadcasting.

    Example:

    ```mlir
    %h = kiln.glu %gate, %up {activation = "silu"} : tensor<1x?x1536xf32, #kiln.dims<[tokens]>>
    ```
  }];
  let arguments = (ins Kiln_FloatTensor:$gate, Kiln_FloatTensor:$up,
                       StrAttr:$activation);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = "$gate `,` $up attr-dict `:` type($result)";
  let hasVerifier = 1;
}

def Kiln_CastOp : Kiln_Op<"cast", [Pure]> {
  let summary = "Converts the element type";
  let description = [{
    Converts every element to the result's element type, with ONNX `Cast`
    semantics (float to int truncates toward zero, to i1 tests for non-zero).
    The shape is unchanged. A cast to a float8 type rounds to nearest even
    and saturates (infinities and values beyond the largest finite one
    become that value, with their sign); with `no_saturate` (ONNX
    `saturate = 0`) they become infinities in f8E5M2 and NaN in the types
    without infinities.

    Example: `%r = kiln.cast %x : tensor<4xi64> -> tensor<4xf32>`
  }];
  let arguments = (ins Kiln_Tensor:$input, UnitAttr:$no_saturate);
  let results = (outs Kiln_Tensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
  let hasVerifier = 1;
  let hasFolder = 1;
}

def Kiln_WhereOp : Kiln_Op<"where", [Pure]> {
  let summary = "Elementwise select with numpy broadcasting";
  let description = [{
    `result = condition ? lhs : rhs`, broadcasting all three shapes.

    Example:

    ```mlir
    %r = kiln.where %c, %a, %b : (tensor<1x1x?x?xi1>, tensor<f32>, tensor<?x?xf32>) -> tensor<1x1x?x?xf32>
    ```
  }];
  let arguments = (ins Kiln_BoolTensor:$condition, Kiln_Tensor:$lhs, Kiln_Tensor:$rhs);
  let results = (outs Kiln_Tensor:$result);
  let assemblyFormat = "$condition `,` $lhs `,` $rhs attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Normalization and activations over an axis
//===----------------------------------------------------------------------===//

class Kiln_AxisOp<string mnemonic, string what>
    : Kiln_Op<mnemonic, [Pure, AllTypesMatch<["input", "result"]>]> {
  let summary = what # " along one axis";
  let description = [{
    Computes }] # what # [{ along `axis` (non-negative). The result has the
    operand's type.

    Example: `%p = kiln.}] # mnemonic # [{ %x {axis = 3 : i64} : tensor<1x9x?x?xf32>`
  }];
  let arguments = (ins Kiln_FloatTensor:$input, I64Attr:$axis);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($result)";
  let hasVerifier = 1;
}

def Kiln_SoftmaxOp : Kiln_AxisOp<"softmax", "softmax">;
def Kiln_LogSoftmaxOp : Kiln_AxisOp<"log_softmax", "log of softmax">;

def Kiln_LayerNormOp : Kiln_Op<"layer_norm", [Pure]> {
  let summary = "Layer normalization over the trailing axes";
  let description = [{
    Normalizes `input` over the axes from `axis` to the last:
    `(x - mean) / sqrt(var + epsilon) * scale + bias`. `scale` and the
    optional `bias` have the normalized shape (or broadcast to it).

    Example:

    ```mlir
    %y = kiln.layer_norm %x, %g, %b {axis = 2 : i64, epsilon = 1.0e-05 : f32}
        : (tensor<?x?x64xf32>, tensor<64xf32>, tensor<64xf32>) -> tensor<?x?x64xf32>
    ```
  }];
  let arguments = (ins Kiln_FloatTensor:$input, Kiln_FloatTensor:$scale,
                       Optional<Kiln_FloatTensor>:$bias,
                       I64Attr:$axis, F32Attr:$epsilon);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = "$input `,` $scale (`,` $bias^)? attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Kiln_RMSNormOp : Kiln_Op<"rms_norm", [Pure]> {
  let summary = "Root-mean-square normalization over the trailing axes";
  let description = [{
    `x / sqrt(mean(x^2) + epsilon) * scale`, the mean taken over the axes
    from `axis` to the last. ONNX `RMSNormalization` and com.microsoft
    `SimplifiedLayerNormalization` import to this op.

    Example:

    ```mlir
    %y = kiln.rms_norm %x, %g {axis = 2 : i64, epsilon = 1.0e-05 : f32}
        : (tensor<?x?x576xf32>, tensor<576xf32>) -> tensor<?x?x576xf32>
    ```
  }];
  let arguments = (ins Kiln_FloatTensor:$input, Kiln_FloatTensor:$scale,
                       I64Attr:$axis, F32Attr:$epsilon);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = "$input `,` $scale attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Linear algebra
//===----------------------------------------------------------------------===//

def Kiln_MatMulOp : Kiln_Op<"matmul", [Pure]> {
  let summary = "Batched matrix product with numpy semantics";
  let description = [{
    `numpy.matmul(lhs, rhs)`: 1-D operands are promoted and the promoted
    dimension dropped, batch dimensions broadcast.

    `accuracy_level` is ONNX `MatMulNBits`' attribute of that name, kept
    so that kiln computes what onnxruntime computes: the lowest precision
    the product may be computed in, 0 (unset, the default), 1 (fp32),
    2 (fp16), 3 (bf16) or 4 (int8: every row of `lhs` rounded to int8 per
    block of the weight's quantization group, symmetric with scale
    max |x| / 127, and the block products summed in integers, as
    onnxruntime's MLAS "CompInt8" does). It is a permission, not an order:
    a backend may compute more precisely. The CPU backend honours level 4
    when `rhs` is `transpose(dequantize(w))` of a 4- or 8-bit weight grouped
    along K by 16, 32, 64, 128 or 256 (what onnxruntime computes in int8)
    and computes everything else in fp32.

    Example:

    ```mlir
    %y = kiln.matmul %x, %w : (tensor<?x?x576xf32>, tensor<576x1536xf32>) -> tensor<?x?x1536xf32>
    %z = kiln.matmul %x, %wt {accuracy_level = 4 : i64} : (tensor<?x?x576xf32>, tensor<576x1536xf32>) -> tensor<?x?x1536xf32>
    ```
  }];
  let arguments = (ins Kiln_Tensor:$lhs, Kiln_Tensor:$rhs,
                       DefaultValuedAttr<ConfinedAttr<I64Attr,
                           [IntMinValue<0>, IntMaxValue<4>]>, "0">:$accuracy_level);
  let results = (outs Kiln_Tensor:$result);
  let assemblyFormat = "$lhs `,` $rhs attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Kiln_DequantizeOp : Kiln_Op<"dequantize", [Pure]> {
  let summary = "Expands a quantized weight to real values";
  let description = [{
    `real = (q - zero_point) * scale` for every element of a `!kiln.qtensor`,
    with the scheme in its `#kiln.quant`. Fusion later folds this op into the
    matmul that consumes it so that the expanded tensor never exists.

    Example:

    ```mlir
    %d = kiln.dequantize %w : !kiln.qtensor<64x64, #kiln.quant<u4, group = 32, axis = 1, scale = f32, zero_point = int>> -> tensor<64x64xf32>
    ```
  }];
  let arguments = (ins Kiln_QTensorType:$input);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = "$input attr-dict `:` qualified(type($input)) `->` type($result)";
  let hasVerifier = 1;
}

def Kiln_DequantizeLinearOp : Kiln_Op<"dequantize_linear", [Pure]> {
  let summary = "ONNX DequantizeLinear on a computed tensor";
  let description = [{
    `(x - zero_point) * scale` for integers produced at run time
    (activations). Per-tensor when `scale` is a scalar, per-axis along `axis`,
    or blocked when `block_size` is non-zero. Quantized *weights* use
    `!kiln.qtensor` and `kiln.dequantize` instead.

    Example:

    ```mlir
    %r = kiln.dequantize_linear %q, %s {axis = 1 : i64, block_size = 0 : i64}
        : (tensor<4x8xi8>, tensor<f32>) -> tensor<4x8xf32>
    ```
  }];
  let arguments = (ins Kiln_IntTensor:$input, Kiln_FloatTensor:$scale,
                       Optional<Kiln_IntTensor>:$zero_point,
                       I64Attr:$axis, I64Attr:$block_size);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = "$input `,` $scale (`,` $zero_point^)? attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Kiln_QuantizeLinearOp : Kiln_Op<"quantize_linear", [Pure]> {
  let summary = "ONNX QuantizeLinear: round(x / scale) + zero_point, saturated";
  let description = [{
    Quantizes to the result's integer element type with round-half-to-even
    and saturation; scale and zero point per tensor, per axis or blocked as
    for `kiln.dequantize_linear`.

    Example:

    ```mlir
    %q = kiln.quantize_linear %x, %s {axis = 1 : i64, block_size = 0 : i64}
        : (tensor<4x8xf32>, tensor<f32>) -> tensor<4x8xi8>
    ```
  }];
  let arguments = (ins Kiln_FloatTensor:$input, Kiln_FloatTensor:$scale,
                       Optional<Kiln_IntTensor>:$zero_point,
                       I64Attr:$axis, I64Attr:$block_size);
  let results = (outs Kiln_IntTensor:$result);
  let assemblyFormat = "$input `,` $scale (`,` $zero_point^)? attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Shape manipulation
//===----------------------------------------------------------------------===//

def Kiln_TransposeOp : Kiln_Op<"transpose", [Pure]> {
  let summary = "Permutes dimensions";
  let description = [{
    `result.shape[i] = input.shape[perm[i]]`.

    Example:

    ```mlir
    %t = kiln.transpose %x {perm = array<i64: 0, 2, 1, 3>} : tensor<?x?x9x64xf32> -> tensor<?x9x?x64xf32>
    ```
  }];
  let arguments = (ins Kiln_Tensor:$input, DenseI64ArrayAttr:$perm);
  let results = (outs Kiln_Tensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
  let hasVerifier = 1;
  let hasFolder = 1;
}

def Kiln_ReshapeOp : Kiln_Op<"reshape", [Pure]> {
  let summary = "Changes the shape, keeping the elements in order";
  let description = [{
    With no `shape` operand, the result type is the target shape: its static
    dimensions and its `#kiln.dims` names say what every dimension is. With a
    `shape` operand (a 1-D integer tensor computed at run time), ONNX
    `Reshape` semantics apply (`0` copies the input dimension unless
    `allowzero`, `-1` is inferred). Canonicalization removes the operand
    whenever its value is known symbolically.

    Example:

    ```mlir
    %r = kiln.reshape %x : tensor<?x?x576xf32, #kiln.dims<[b, s]>> -> tensor<?x?x9x64xf32, #kiln.dims<[b, s]>>
    ```
  }];
  let arguments = (ins Kiln_Tensor:$input, Optional<Kiln_IntTensor>:$shape,
                       UnitAttr:$allowzero);
  let results = (outs Kiln_Tensor:$result);
  let assemblyFormat = "$input (`,` $shape^ `:` type($shape))? attr-dict `:` type($input) `->` type($result)";
  let hasVerifier = 1;
  let hasFolder = 1;
  let hasCanonicalizer = 1;
}

def Kiln_ExpandOp : Kiln_Op<"expand", [Pure]> {
  let summary = "Broadcasts to a shape";
  let description = [{
    ONNX `Expand`: broadcasts `input` against the 1-D `shape` with numpy
    rules (the result may be larger than `shape`). Without a `shape` operand
    the result type is the target: every input dimension is 1 or equals the
    result's. Canonicalization drops the operand when its value is known.

    Example:

    ```mlir
    %r = kiln.expand %x, %s : (tensor<1x1x?x?xf32>, tensor<4xi64>) -> tensor<?x1x?x?xf32>
    %b = kiln.expand %y : (tensor<1x64xf32>) -> tensor<?x64xf32, #kiln.dims<[seq]>>
    ```
  }];
  let arguments = (ins Kiln_Tensor:$input, Optional<Kiln_IntTensor>:$shape);
  let results = (outs Kiln_Tensor:$result);
  let assemblyFormat = "$input (`,` $shape^)? attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
  let hasFolder = 1;
  let hasCanonicalizer = 1;
}

def Kiln_TileOp : Kiln_Op<"tile", [Pure]> {
  let summary = "Repeats a tensor along each axis";
  let description = [{
    ONNX `Tile`: `result.shape[i] = input.shape[i] * repeats[i]`.

    Example: `%r = kiln.tile %x, %n : (tensor<2x3xf32>, tensor<2xi64>) -> tensor<4x3xf32>`
  }];
  let arguments = (ins Kiln_Tensor:$input, Kiln_IntTensor:$repeats);
  let results = (outs Kiln_Tensor:$result);
  let assemblyFormat = "$input `,` $repeats attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Kiln_ConcatOp : Kiln_Op<"concat", [Pure]> {
  let summary = "Joins tensors along an axis";
  let description = [{
    All operands have the same rank and element type and agree on every
    dimension except `axis`.

    Example:

    ```mlir
    %kv = kiln.concat %past, %new {axis = 2 : i64}
        : (tensor<?x3x?x64xf32>, tensor<?x3x?x64xf32>) -> tensor<?x3x?x64xf32>
    ```
  }];
  let arguments = (ins Variadic<Kiln_Tensor>:$inputs, I64Attr:$axis);
  let results = (outs Kiln_Tensor:$result);
  let assemblyFormat = "$inputs attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
  let hasFolder = 1;
}

def Kiln_SplitOp : Kiln_Op<"split", [Pure]> {
  let summary = "Splits a tensor into pieces along an axis";
  let description = [{
    The result types give the size of each piece along `axis`.

    Example:

    ```mlir
    %a, %b = kiln.split %x {axis = 1 : i64} : tensor<?x128xf32> -> (tensor<?x64xf32>, tensor<?x64xf32>)
    ```
  }];
  let arguments = (ins Kiln_Tensor:$input, I64Attr:$axis);
  let results = (outs Variadic<Kiln_Tensor>:$results);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` `(` type($results) `)`";
  let hasVerifier = 1;
}

def Kiln_SliceOp : Kiln_Op<"slice", [Pure]> {
  let summary = "ONNX Slice with static axes and steps";
  let description = [{
    Takes `input[starts[i]:ends[i]:steps[i]]` along `axes[i]`; `starts` and
    `ends` are 1-D integer tensors (negative values count from the end and
    are clamped, as in ONNX). Constant starts/ends still go through the
    operands so that symbolic ends (`past + seq`) keep one form.

    Example:

    ```mlir
    %r = kiln.slice %x, %s, %e {axes = array<i64: 2>, steps = array<i64: 1>}
        : (tensor<1x1x128x128xi1>, tensor<1xi64>, tensor<1xi64>) -> tensor<1x1x?x128xi1>
    ```
  }];
  let arguments = (ins Kiln_Tensor:$input, Kiln_IntTensor:$starts,
                       Kiln_IntTensor:$ends, DenseI64ArrayAttr:$axes,
                       DenseI64ArrayAttr:$steps);
  let results = (outs Kiln_Tensor:$result);
  let assemblyFormat = "$input `,` $starts `,` $ends attr-dict `:` functional-type(operands, results)";
  let hasFolder = 1;
  let hasVerifier = 1;
}

def Kiln_GatherOp : Kiln_Op<"gather", [Pure]> {
  let summary = "Gathers slices along an axis (embedding lookup)";
  let description = [{
    ONNX `Gather`: `result` has shape
    `input.shape[:axis] + indices.shape + input.shape[axis+1:]`. Negative
    indices count from the end.

    Example:

    ```mlir
    %e = kiln.gather %table, %ids {axis = 0 : i64} : (tensor<49152x576xf32>, tensor<?x?xi64>) -> tensor<?x?x576xf32>
    ```
  }];
  let arguments = (ins Kiln_Tensor:$input, Kiln_IndexTensor:$indices, I64Attr:$axis);
  let results = (outs Kiln_Tensor:$result);
  let assemblyFormat = "$input `,` $indices attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
  let hasFolder = 1;
}

def Kiln_GatherNDOp : Kiln_Op<"gather_nd", [Pure]> {
  let summary = "Gathers slices at N-dimensional indices";
  let description = [{
    ONNX `GatherND`: the last dimension of `indices` (static, `k`) indexes
    dimensions `batch_dims .. batch_dims + k` of `input`. The result has
    shape `indices.shape[:-1] + input.shape[batch_dims + k:]`.

    Example:

    ```mlir
    %r = kiln.gather_nd %x, %i {batch_dims = 0 : i64} : (tensor<4x5xf32>, tensor<2x1xi64>) -> tensor<2x5xf32>
    ```
  }];
  let arguments = (ins Kiln_Tensor:$input, Kiln_IndexTensor:$indices,
                       I64Attr:$batch_dims);
  let results = (outs Kiln_Tensor:$result);
  let assemblyFormat = "$input `,` $indices attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Kiln_GatherElementsOp : Kiln_Op<"gather_elements", [Pure]> {
  let summary = "Gathers single elements along an axis";
  let description = [{
    ONNX `GatherElements`: the result has the shape of `indices`, and
    `result[i][j] = input[indices[i][j]][j]` for `axis = 0`.

    Example:

    ```mlir
    %r = kiln.gather_elements %x, %i {axis = 1 : i64} : (tensor<2x3xf32>, tensor<2x2xi64>) -> tensor<2x2xf32>
    ```
  }];
  let arguments = (ins Kiln_Tensor:$input, Kiln_IndexTensor:$indices, I64Attr:$axis);
  let results = (outs Kiln_Tensor:$result);
  let assemblyFormat = "$input `,` $indices attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Kiln_ScatterNDOp : Kiln_Op<"scatter_nd", [Pure]> {
  let summary = "Writes slices at N-dimensional indices";
  let description = [{
    ONNX `ScatterND`: a copy of `input` with `updates` written at `indices`
    (last dimension of `indices` indexes the leading dims of `input`).
    `reduction` is `none`, `add`, `mul`, `max` or `min`.

    Example:

    ```mlir
    %r = kiln.scatter_nd %x, %i, %u : (tensor<8xf32>, tensor<2x1xi64>, tensor<2xf32>) -> tensor<8xf32>
    ```
  }];
  let arguments = (ins Kiln_Tensor:$input, Kiln_IndexTensor:$indices,
                       Kiln_Tensor:$updates,
                       DefaultValuedAttr<StrAttr, "\"none\"">:$reduction);
  let results = (outs Kiln_Tensor:$result);
  let assemblyFormat = "$input `,` $indices `,` $updates attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Kiln_ShapeOp : Kiln_Op<"shape", [Pure]> {
  let summary = "The shape of a tensor as a 1-D i64 tensor";
  let description = [{
    `input.shape[start:end]` as a tensor. Folds to a constant when those
    dimensions are static; canonicalization turns it into `kiln.dim` values
    otherwise.

    Example: `%s = kiln.shape %x : tensor<?x?x576xf32> -> tensor<3xi64>`
  }];
  let arguments = (ins Kiln_Tensor:$input, DefaultValuedAttr<I64Attr, "0">:$start,
                       OptionalAttr<I64Attr>:$end);
  let results = (outs RankedTensorOf<[I64]>:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
  let extraClassDeclaration = [{
    /// The dimensions [start, end) this op reads, with ONNX's rules applied:
    /// negative values count from the end, then both clamp to [0, rank].
    std::pair<int64_t, int64_t> getDimRange();
  }];
  let hasVerifier = 1;
  let hasFolder = 1;
  let hasCanonicalizer = 1;
}

def Kiln_DimOp : Kiln_Op<"dim", [Pure]> {
  let summary = "One dimension of a tensor as a rank-0 or 1-element i64 tensor";
  let description = [{
    The size of dimension `index` of `input`, as a `tensor<i64>` or
    `tensor<1xi64>`. Canonicalization of shape computations produces it:
    it is what remains of `Shape -> Gather` when the dimension is dynamic.
    Its symbolic value is the dimension's `#kiln.dims` name.

    Example: `%n = kiln.dim %x[1] : tensor<?x?x576xf32> -> tensor<i64>`
  }];
  let arguments = (ins Kiln_Tensor:$input, I64Attr:$index);
  let results = (outs RankedTensorOf<[I64]>:$result);
  let assemblyFormat = "$input `[` $index `]` attr-dict `:` type($input) `->` type($result)";
  let hasVerifier = 1;
  let hasFolder = 1;
}

def Kiln_SizeOp : Kiln_Op<"size", [Pure]> {
  let summary = "Number of elements as a rank-0 i64 tensor";
  let description = [{
    Example: `%n = kiln.size %x : tensor<?x4xf32> -> tensor<i64>`
  }];
  let arguments = (ins Kiln_Tensor:$input);
  let results = (outs TensorOf<[I64]>:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
  let hasFolder = 1;
}

def Kiln_ConstantOfShapeOp : Kiln_Op<"constant_of_shape", [Pure]> {
  let summary = "A tensor of a computed shape filled with one value";
  let description = [{
    Example:

    ```mlir
    %z = kiln.constant_of_shape %s {value = 0.0 : f32} : (tensor<2xi64>) -> tensor<?x?xf32>
    ```
  }];
  let arguments = (ins RankedTensorOf<[I64]>:$shape, TypedAttrInterface:$value);
  let results = (outs Kiln_Tensor:$result);
  let assemblyFormat = "$shape attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Kiln_RangeOp : Kiln_Op<"range", [Pure]> {
  let summary = "Arithmetic sequence start, start+delta, ... below limit";
  let description = [{
    ONNX `Range` on rank-0 operands of one element type.

    Example:

    ```mlir
    %r = kiln.range %a, %b, %c : (tensor<i64>, tensor<i64>, tensor<i64>) -> tensor<?xi64>
    ```
  }];
  let arguments = (ins Kiln_Tensor:$start, Kiln_Tensor:$limit, Kiln_Tensor:$delta);
  let results = (outs Kiln_Tensor:$result);
  let assemblyFormat = "$start `,` $limit `,` $delta attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Kiln_TriluOp : Kiln_Op<"trilu", [Pure]> {
  let summary = "Keeps the upper or lower triangle of the last two dims";
  let description = [{
    ONNX `Trilu`: zeroes elements below (`upper`) or above (lower) the
    `k`-th diagonal. `k` is a rank-0 i64 tensor operand (0 when absent).

    Example: `%r = kiln.trilu %x {upper} : (tensor<8x8xf32>) -> tensor<8x8xf32>`
  }];
  let arguments = (ins Kiln_Tensor:$input, Optional<RankedTensorOf<[I64]>>:$k,
                       UnitAttr:$upper);
  let results = (outs Kiln_Tensor:$result);
  let assemblyFormat = "$input (`,` $k^)? attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Reductions
//===----------------------------------------------------------------------===//

class Kiln_ReduceOp<string mnemonic, string what> : Kiln_Op<mnemonic, [Pure]> {
  let summary = what # " over a set of axes";
  let description = [{
    Reduces `input` with }] # what # [{ over `axes` (sorted, non-negative;
    empty means all axes), keeping them as size-1 dims when `keepdims`.

    Example:

    ```mlir
    %m = kiln.}] # mnemonic # [{ %x {axes = array<i64: 2>, keepdims} : tensor<?x?x576xf32> -> tensor<?x?x1xf32>
    ```
  }];
  let arguments = (ins Kiln_Tensor:$input, DenseI64ArrayAttr:$axes, UnitAttr:$keepdims);
  let results = (outs Kiln_Tensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
  let hasVerifier = 1;
}

def Kiln_ReduceMeanOp : Kiln_ReduceOp<"reduce_mean", "the mean">;
def Kiln_ReduceSumOp : Kiln_ReduceOp<"reduce_sum", "the sum">;
def Kiln_ReduceMaxOp : Kiln_ReduceOp<"reduce_max", "the maximum">;

def Kiln_ArgMaxOp : Kiln_Op<"argmax", [Pure]> {
  let summary = "Index of the maximum along an axis";
  let description = [{
    i64 indices of the maximum along `axis`; ties pick the first index, or
    the last with `select_last_index`.

    Example: `%i = kiln.argmax %x {axis = 1 : i64} : tensor<?x49152xf32> -> tensor<?xi64>`
  }];
  let arguments = (ins Kiln_Tensor:$input, I64Attr:$axis, UnitAttr:$keepdims,
                       UnitAttr:$select_last_index);
  let results = (outs RankedTensorOf<[I64]>:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Transformer blocks
//===----------------------------------------------------------------------===//

def Kiln_RotaryOp : Kiln_Op<"rotary", [Pure]> {
  let summary = "Rotary position embedding";
  let description = [{
    Rotates the first `rotary_dim` elements of the last dimension of
    `input` (`[batch, heads, seq, head_dim]`) by the angles of each token's
    position. `interleaved` rotates pairs `(x[2i], x[2i+1])`; otherwise the
    halves `(x[i], x[i + d/2])` (GPT-NeoX / Llama style). Elements past
    `rotary_dim` pass through. With `c`, `s` the cos/sin entries of the
    token and `i < rotary_dim / 2` (halves) or the pair index (interleaved):

    ```
    out[i]     = x[i] * c[i] - x[i'] * s[i]      (first half / even)
    out[i']    = x[i'] * c[i] + x[i] * s[i]      (second half / odd)
    ```

    The angles come in one of two forms:

    * with `positions` (`[batch, seq]`, i64): `cos`/`sin` are caches of
      shape `[max_position, rotary_dim/2]` indexed by each token's
      position (ONNX and com.microsoft `RotaryEmbedding`);
    * without: `cos`/`sin` are `[batch, seq, rotary_dim/2]`, one row per
      token, already gathered (what `--kiln-raise-rotary` produces from
      exported arithmetic); a static batch dimension of 1 broadcasts.

    Example:

    ```mlir
    %q2 = kiln.rotary %q, %cos, %sin, %pos {rotary_dim = 64 : i64}
        : (tensor<?x9x?x64xf32>, tensor<2048x32xf32>, tensor<2048x32xf32>, tensor<?x?xi64>) -> tensor<?x9x?x64xf32>
    %k2 = kiln.rotary %k, %c, %s {rotary_dim = 64 : i64}
        : (tensor<?x3x?x64xf32>, tensor<?x?x32xf32>, tensor<?x?x32xf32>) -> tensor<?x3x?x64xf32>
    ```
  }];
  let arguments = (ins Kiln_FloatTensor:$input, Kiln_FloatTensor:$cos,
                       Kiln_FloatTensor:$sin,
                       Optional<Kiln_IndexTensor>:$positions,
                       I64Attr:$rotary_dim, UnitAttr:$interleaved);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = "$input `,` $cos `,` $sin (`,` $positions^)? attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Kiln_AttentionOp : Kiln_Op<"attention", [Pure, AttrSizedOperandSegments]> {
  let summary = "Scaled dot-product attention with causal and GQA semantics";
  let description = [{
    `softmax(q k^T * scale + mask) v` per head. Shapes:
    `q [batch, q_heads, seq, d]`, `key [batch, kv_heads, total, d]`,
    `value [batch, kv_heads, total, dv]`, result `[batch, q_heads, seq, dv]`.
    `q_heads` is a multiple of `kv_heads`; query head `h` reads KV head
    `h / (q_heads / kv_heads)` (grouped-query attention; MQA when
    `kv_heads = 1`).

    * `causal`: query `i` sees keys `j <= i + (total - seq)`, i.e. the
      queries are the last `seq` positions (bottom-right aligned, as after
      appending to a KV cache).
    * `mask` (optional) broadcasts to `[batch, q_heads, seq, total]`; an i1
      mask keeps `true` positions, a float mask is added to the scores.
    * `key_lengths` (optional, `[batch]` i32/i64): keys at or past
      `key_lengths[b]` are ignored; the cache may be longer than the valid
      tokens, and the causal offset then uses `key_lengths[b]` as `total`.
    * `softcap` > 0 applies `softcap * tanh(score / softcap)`.
    * A query row that sees no key at all (everything masked) yields zeros,
      as the NaN guards exporters put after softmax do.
    * `window_left` / `window_right` (-1: unbounded) restrict query `i`, at
      absolute position `p = i + (total - seq)`, to keys `j` with
      `p - window_left <= j <= p + window_right` (sliding-window attention).

    Example:

    ```mlir
    %o = kiln.attention %q, %k, %v {causal, scale = 1.250000e-01 : f32}
        : (tensor<?x9x?x64xf32>, tensor<?x3x?x64xf32>, tensor<?x3x?x64xf32>) -> tensor<?x9x?x64xf32>
    ```
  }];
  let arguments = (ins Kiln_FloatTensor:$query, Kiln_FloatTensor:$key,
                       Kiln_FloatTensor:$value,
                       Optional<Kiln_Tensor>:$mask,
                       Optional<Kiln_IndexTensor>:$key_lengths,
                       F32Attr:$scale, UnitAttr:$causal,
                       DefaultValuedAttr<F32Attr, "0.0f">:$softcap,
                       DefaultValuedAttr<I64Attr, "-1">:$window_left,
                       DefaultValuedAttr<I64Attr, "-1">:$window_right);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = [{
    $query `,` $key `,` $value (`mask` `(` $mask^ `)`)? (`key_lengths` `(` $key_lengths^ `)`)?
    attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Kiln_KVCacheWriteOp : Kiln_Op<"kv_cache_write"> {
  let summary = "Writes new keys and values into the paged KV cache";
  let description = [{
    Stores `key` and `value` (`[tokens, heads, head_dim]`) of layer `layer`
    at cache slots `slots` (`[tokens]`, i64: `block_id * block + offset`),
    chosen by the runtime. Writes the cache, so it is not `Pure`.

    Example:

    ```mlir
    kiln.kv_cache_write %cache, %k, %v, %slots {layer = 0 : i64}
        : !kiln.kv_cache<layers = 2, heads = 3, head_dim = 64, block = 16, f32>, tensor<?x3x64xf32>, tensor<?x3x64xf32>, tensor<?xi64>
    ```
  }];
  let arguments = (ins Kiln_KVCacheType:$cache, Kiln_FloatTensor:$key,
                       Kiln_FloatTensor:$value, Kiln_IndexTensor:$slots,
                       I64Attr:$layer);
  let assemblyFormat = [{
    $cache `,` $key `,` $value `,` $slots attr-dict `:` qualified(type($cache)) `,` type($key) `,` type($value) `,` type($slots)
  }];
  let hasVerifier = 1;
}

def Kiln_KVCacheReadOp : Kiln_Op<"kv_cache_read"> {
  let summary = "Gathers one layer's keys and values for a batch of sequences";
  let description = [{
    Reads layer `layer` for each sequence of the batch: `block_tables`
    (`[batch, max_blocks]`, i32) lists each sequence's cache blocks and
    `lengths` (`[batch]`) its number of valid tokens. The results are
    `[batch, heads, max_tokens, head_dim]`; positions past a sequence's
    length are undefined and must be masked (`kiln.attention` with
    `key_lengths`).

    Example:

    ```mlir
    %k, %v = kiln.kv_cache_read %cache, %tables, %lens {layer = 0 : i64}
        : !kiln.kv_cache<layers = 2, heads = 3, head_dim = 64, block = 16, f32>, tensor<?x?xi32>, tensor<?xi32>
        -> tensor<?x3x?x64xf32>, tensor<?x3x?x64xf32>
    ```
  }];
  let arguments = (ins Kiln_KVCacheType:$cache, Kiln_IndexTensor:$block_tables,
                       Kiln_IndexTensor:$lengths, I64Attr:$layer);
  let results = (outs Kiln_FloatTensor:$key, Kiln_FloatTensor:$value);
  let assemblyFormat = [{
    $cache `,` $block_tables `,` $lengths attr-dict `:` qualified(type($cache)) `,` type($block_tables) `,` type($lengths)
    `->` type($key) `,` type($value)
  }];
  let hasVerifier = 1;
}

def Kiln_PagedAttentionOp : Kiln_Op<"paged_attention"> {
  let summary = "Causal attention of the step's tokens over the paged KV cache";
  let description = [{
    The canonical form of every attention with a cache (inserted by
    `--kiln-insert-kv-cache`). The operands hold only the step's new
    tokens, packed into one row: `query [1, q_heads, tokens, d]`,
    `key`/`value [1, kv_heads, tokens, d]`. The op first writes `key` and
    `value` into layer `layer` of the runtime's paged cache at each token's
    position, then computes, for every token and query head `h`,
    `softmax(scale * q k^T) v` over the keys of the token's own sequence at
    positions up to its own (causal). Query head `h` reads KV head
    `h / (q_heads / kv_heads)`. Which sequence a token belongs to, its
    position and the sequences' block tables are the step's inputs, owned
    by the runtime (see `runtime/include/kiln/model_abi.h`). `softcap` > 0
    applies `softcap * tanh(score / softcap)`. `window` >= 0 makes it
    sliding-window attention: the token at position `p` sees only the keys
    at positions `p - window` to `p` (-1: every earlier key).

    Example:

    ```mlir
    %o = kiln.paged_attention %cache, %q, %k, %v {layer = 0 : i64, scale = 1.250000e-01 : f32}
        : !kiln.kv_cache<layers = 30, heads = 3, head_dim = 64, block = 16, f32>,
          tensor<1x9x?x64xf32>, tensor<1x3x?x64xf32>, tensor<1x3x?x64xf32> -> tensor<1x9x?x64xf32>
    ```
  }];
  let arguments = (ins Kiln_KVCacheType:$cache, Kiln_FloatTensor:$query,
                       Kiln_FloatTensor:$key, Kiln_FloatTensor:$value,
                       I64Attr:$layer, F32Attr:$scale,
                       DefaultValuedAttr<F32Attr, "0.0f">:$softcap,
                       DefaultValuedAttr<I64Attr, "-1">:$window);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = [{
    $cache `,` $query `,` $key `,` $value attr-dict `:` qualified(type($cache)) `,`
    type($query) `,` type($key) `,` type($value) `->` type($result)
  }];
  let hasVerifier = 1;
}

#endif // KILN_OPS_TD
