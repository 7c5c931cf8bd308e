//===- KilnAttrs.td - kiln attributes and types -------------*- tablegen -*-===//

#ifndef KILN_ATTRS_TD
#define KILN_ATTRS_TD

include "dialects/kiln/IR/KilnDialect.td"
include "mlir/IR/BuiltinAttributeInterfaces.td"
include "mlir/IR/TensorEncoding.td"
include "mlir/IR/EnumAttr.td"

class Kiln_Attr<string name, string attrMnemonic, list<Trait> traits = []>
    : AttrDef<Kiln_Dialect, name, traits> {
  let mnemonic = attrMnemonic;
}

class Kiln_Type<string name, string typeMnemonic, list<Trait> traits = []>
    : TypeDef<Kiln_Dialect, name, traits> {
  let mnemonic = typeMnemonic;
}

def Kiln_DimsAttr : Kiln_Attr<"Dims", "dims",
    [DeclareAttrInterfaceMethods<VerifiableTensorEncoding>]> {
  let summary = "Names of the dynamic dimensions of a tensor";
  let description = [{
    A tensor encoding that gives each dynamic (`?`) dimension of a tensor a
    symbolic expression: a polynomial over named symbols with integer
    coefficients, such as `batch`, `past + seq` or `2 * seq`. `?` leaves a
    dimension anonymous. The list has one entry per dynamic dimension, in
    order.

    Example:

    ```mlir
    tensor<?x3x?x64xf32, #kiln.dims<[batch, past + seq]>>
    ```

    Symbols come from the names ONNX gives its graph inputs' dimensions
    (`dim_param`), so two tensors whose dimensions print the same name are
    known to agree at run time.
  }];
  // Stored as the canonical text of each expression so that uniquing is
  // plain string equality.
  let parameters = (ins "::mlir::ArrayAttr":$exprs);
  let hasCustomAssemblyFormat = 1;
  let builders = [
    AttrBuilder<(ins "::llvm::ArrayRef<::mlir::kiln::DimExpr>":$dims)>
  ];
  let extraClassDeclaration = [{
    /// One expression per dynamic dimension, in order.
    ::llvm::SmallVector<::mlir::kiln::DimExpr> getDims() const;
  }];
}

def Kiln_ZeroPointNone : I32EnumAttrCase<"None", 0, "none">;
def Kiln_ZeroPointInt : I32EnumAttrCase<"Int", 1, "int">;
def Kiln_ZeroPointFloat : I32EnumAttrCase<"Float", 2, "float">;
def Kiln_ZeroPointMid : I32EnumAttrCase<"Mid", 3, "mid">;
def Kiln_ZeroPointKind : I32EnumAttr<"ZeroPointKind",
    "how a quantized weight stores its zero points",
    [Kiln_ZeroPointNone, Kiln_ZeroPointInt, Kiln_ZeroPointFloat,
     Kiln_ZeroPointMid]> {
  let cppNamespace = "::mlir::kiln";
  let genSpecializedAttr = 0;
}

def Kiln_QuantAttr : Kiln_Attr<"Quant", "quant"> {
  let summary = "Quantization scheme of a weight";
  let description = [{
    Records how integers stored in a weight map back to real values:
    `real = (q - zero_point) * scale`, with one scale (and zero point) per
    `group` consecutive elements along `axis`. A group of 0 means one scale
    per slice along `axis` (per-channel); axis -1 with group 0 means a single
    per-tensor scale.

    * `bits` (4 or 8) and signedness of the stored integers (`i4`, `u4`,
      `i8`, `u8`). 4-bit values are packed two per byte, low nibble first,
      in row-major order of the logical shape.
    * `scale` is the element type of the scales, laid out row-major with the
      grouped axis divided by the group size.
    * `zero_point` is `none` (0), `mid` (an implied 2^(bits-1), as
      MatMulNBits without zero points: unsigned storage, symmetric values),
      `int` (stored, same type as the weight, packed the same way) or
      `float` (stored, scale's type).

    Example:

    ```mlir
    #kiln.quant<u4, group = 32, axis = 1, scale = f32, zero_point = int>
    ```

    ONNX `MatMulNBits`, blocked `DequantizeLinear` (opset 21) and kiln's own
    quantization pass all produce this attribute, so one set of kernels
    serves them all.
  }];
  let parameters = (ins
    "unsigned":$bits,
    "bool":$isSigned,
    "int64_t":$groupSize,
    "int64_t":$axis,
    "::mlir::Type":$scaleType,
    "::mlir::kiln::ZeroPointKind":$zeroPoint);
  let hasCustomAssemblyFormat = 1;
  let genVerifyDecl = 1;
  let extraClassDeclaration = [{
    /// The integer type of one stored element (e.g. `ui4`).
    ::mlir::IntegerType getStorageType() const;
  }];
}

def Kiln_BlobAttr : Kiln_Attr<"Blob", "blob"> {
  let summary = "A byte range of a file that holds weight data";
  let description = [{
    Where the bytes of a weight (or one part of a quantized weight) live:
    a file, a byte offset and a byte size. The weight store maps these
    ranges; they are never copied into the IR. A relative path is relative
    to the model's directory.

    Example: `#kiln.blob<"model.onnx_data", offset = 4096, size = 131072>`
  }];
  let parameters = (ins
    StringRefParameter<"file path">:$file,
    "uint64_t":$offset,
    "uint64_t":$size);
  let assemblyFormat = "`<` $file `,` `offset` `=` $offset `,` `size` `=` $size `>`";
}

def Kiln_QTensorType : Kiln_Type<"QTensor", "qtensor"> {
  let summary = "A quantized weight tensor";
  let description = [{
    A weight stored as packed integers with scales (and optionally zero
    points) described by a `#kiln.quant` attribute. Its shape is the logical
    (unpacked) shape. Only `kiln.dequantize` and the quantized kernels read
    it.

    Example:

    ```mlir
    !kiln.qtensor<1536x576, #kiln.quant<u4, group = 32, axis = 1, scale = f32, zero_point = int>>
    ```
  }];
  let parameters = (ins
    ArrayRefParameter<"int64_t">:$shape,
    Kiln_QuantAttr:$quant);
  let hasCustomAssemblyFormat = 1;
  let genVerifyDecl = 1;
  let extraClassDeclaration = [{
    /// Shape of the scale (and zero-point) array implied by the scheme.
    ::llvm::SmallVector<int64_t> getScaleShape() const;
  }];
}

def Kiln_KVCacheType : Kiln_Type<"KVCache", "kv_cache"> {
  let summary = "Handle to the runtime-owned paged KV cache";
  let description = [{
    The KV cache belongs to the runtime: blocks of `block` tokens for every
    layer, each holding keys and values of `heads` KV heads of `head_dim`
    elements. Compiled code only reads and writes it through
    `kiln.kv_cache_write` and `kiln.kv_cache_read`.

    Example: `!kiln.kv_cache<layers = 30, heads = 3, head_dim = 64, block = 16, f32>`
  }];
  let parameters = (ins "int64_t":$layers, "int64_t":$heads,
                        "int64_t":$headDim, "int64_t":$block,
                        "::mlir::Type":$elementType);
  let genVerifyDecl = 1;
  let assemblyFormat = [{
    `<` `layers` `=` $layers `,` `heads` `=` $heads `,` `head_dim` `=` $headDim
    `,` `block` `=` $block `,` $elementType `>`
  }];
}

#endif // KILN_ATTRS_TD
