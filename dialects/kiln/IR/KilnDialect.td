//===- KilnDialect.td - the kiln dialect --------------------*- tablegen -*-===//
//
// The kiln dialect holds a transformer decoder at tensor level, from import
// to codegen. Weights are referenced by symbol (see `kiln.global`), never
// stored as attributes; dynamic dimensions carry names through the
// `#kiln.dims` tensor encoding.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_DIALECT_TD
#define KILN_DIALECT_TD

include "mlir/IR/OpBase.td"
include "mlir/IR/AttrTypeBase.td"

def Kiln_Dialect : Dialect {
  let name = "kiln";
  let cppNamespace = "::mlir::kiln";
  let summary = "Tensor-level IR for transformer LLM inference";
  let description = [{
    The kiln dialect is the single IR of the kiln compiler. The ONNX importer
    produces it, passes canonicalize, compress and fuse it, and codegen lowers
    it. Its conventions:

    * Tensors are builtin ranked tensors. A dynamic dimension may be named by
      the `#kiln.dims` encoding, e.g.
      `tensor<?x?x576xf32, #kiln.dims<[batch, seq]>>`, so that shape
      reasoning survives import.
    * Weights live in a weight store outside the IR. A module declares them
      with `kiln.global` and functions read them with `kiln.weight`.
    * Quantized weights have their own type, `!kiln.qtensor`, whose
      `#kiln.quant` attribute records bits, signedness, group size, axis and
      the scale/zero-point layout.
  }];
  let useDefaultAttributePrinterParser = 1;
  let useDefaultTypePrinterParser = 1;
  let hasConstantMaterializer = 1;
  let extraClassDeclaration = [{
    void registerAttributes();
    void registerTypes();
  }];
}

class Kiln_Op<string mnemonic, list<Trait> traits = []>
    : Op<Kiln_Dialect, mnemonic, traits>;

#endif // KILN_DIALECT_TD
