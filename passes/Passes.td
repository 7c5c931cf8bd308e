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

#endif // KILN_PASSES_TD
