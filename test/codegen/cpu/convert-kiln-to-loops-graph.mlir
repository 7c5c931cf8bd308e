// RUN: kiln-opt %s --split-input-file --convert-kiln-to-loops=graph=true --verify-diagnostics | FileCheck %s

// The graph mode: arguments read from inputs[i], results copied to
// outputs[j] (a result may be an argument itself), no step inputs.
// CHECK-LABEL: module @copy_out
// CHECK: func.func @kiln_graph_run(%[[IN:.+]]: !llvm.ptr, %[[OUT:.+]]: !llvm.ptr, %[[ARENA:.+]]: !llvm.ptr, %[[KERNELS:.+]]: !llvm.ptr) -> i32
// CHECK: llvm.getelementptr %[[IN]][%{{.+}}] : (!llvm.ptr, i64) -> !llvm.ptr, !llvm.ptr
// CHECK: call @__kiln_add_
// CHECK: llvm.getelementptr %[[OUT]][%{{.+}}] : (!llvm.ptr, i64) -> !llvm.ptr, !llvm.ptr
// CHECK: linalg.copy
// CHECK: linalg.copy
// CHECK: @kiln_graph_arena_bytes(64 : i64)
module @copy_out {
  func.func @main(%a: tensor<2x3xf32>, %b: tensor<3xf32>) -> (tensor<2x3xf32>, tensor<3xf32>) {
    %c = kiln.add %a, %b : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
    return %c, %b : tensor<2x3xf32>, tensor<3xf32>
  }
}

// -----

module {
  // expected-error @+1 {{the graph mode needs static shapes; argument #0 is 'tensor<?xf32, #kiln.dims<[n]>>'}}
  func.func @main(%a: tensor<?xf32, #kiln.dims<[n]>>) -> tensor<?xf32, #kiln.dims<[n]>> {
    %c = kiln.neg %a : tensor<?xf32, #kiln.dims<[n]>>
    return %c : tensor<?xf32, #kiln.dims<[n]>>
  }
}

// -----

module {
  func.func @main(%a: tensor<4xf8E5M2>) -> tensor<4xf8E5M2> {
    // expected-error @+1 {{element type 'f8E5M2' is supported by the CPU backend in casts only (kiln.cast to or from it)}}
    %c = kiln.add %a, %a : (tensor<4xf8E5M2>, tensor<4xf8E5M2>) -> tensor<4xf8E5M2>
    return %c : tensor<4xf8E5M2>
  }
}

// -----

// Comparisons, is_nan and not are elementwise; an unsigned comparison
// compares unsigned (ule), a float one ordered (oge). not(is_nan(a)) is
// one loop (is_nan fused into the not's).
// CHECK-LABEL: module @compare
// CHECK: func.func @kiln_graph_run
// CHECK: call @__kiln_greater_equal_
// CHECK: call @__kiln_less_equal_
// CHECK-NOT: call @__kiln_is_nan_
// CHECK: call @__kiln_not_
// CHECK-LABEL: func.func private @__kiln_greater_equal_
// CHECK: arith.cmpf oge
// CHECK-LABEL: func.func private @__kiln_less_equal_{{[0-9]+}}(%{{.+}}: memref<3xi8>, %{{.+}}: memref<3xi8>, %{{.+}}: memref<3xi1>)
// CHECK: arith.cmpi ule
// CHECK-LABEL: func.func private @__kiln_not_{{[0-9]+}}(%{{.+}}: memref<2x3xf32>, %{{.+}}: memref<2x3xi1>)
// CHECK: arith.cmpf uno, %[[X:.+]], %[[X]] : f32
// CHECK: arith.xori %{{.+}}, %true : i1
module @compare {
  func.func @main(%a: tensor<2x3xf32>, %b: tensor<3xf32>, %u: tensor<3xui8>, %v: tensor<3xui8>) -> (tensor<2x3xi1>, tensor<3xi1>, tensor<2x3xi1>) {
    %ge = kiln.greater_equal %a, %b : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xi1>
    %le = kiln.less_equal %u, %v : (tensor<3xui8>, tensor<3xui8>) -> tensor<3xi1>
    %n = kiln.is_nan %a : tensor<2x3xf32> -> tensor<2x3xi1>
    %x = kiln.not %n : tensor<2x3xi1>
    return %ge, %le, %x : tensor<2x3xi1>, tensor<3xi1>, tensor<2x3xi1>
  }
}

// -----

// Unsigned integers live in signless buffers (constants too); the ops read
// the signedness from the kiln types, so ui8 and i8 divisions, alike in
// their buffers, get loops of their own (divui, divsi). Integer powers
// square over the exponent's 32 bits (math.ipowi has no LLVM lowering).
// CHECK-LABEL: module @unsigned
// CHECK-DAG: memref.global "private" constant @[[CST:__kiln_constant_[0-9]+]] : memref<2xi8> = dense<[-1, 2]>
// CHECK: func.func @kiln_graph_run
// CHECK: call @[[UDIV:__kiln_div_[0-9]+]](
// CHECK: call @[[SDIV:__kiln_div_[0-9]+]](
// CHECK: memref.get_global @[[CST]] : memref<2xi8>
// CHECK: call @__kiln_cast_
// CHECK: call @__kiln_pow_
// CHECK: func.func private @[[UDIV]](%{{.+}}: memref<2xi8>
// CHECK: arith.divui
// CHECK: func.func private @[[SDIV]](%{{.+}}: memref<2xi8>
// CHECK: arith.divsi
// CHECK-LABEL: func.func private @__kiln_cast_
// CHECK: arith.uitofp %{{.+}} : i8 to f32
// CHECK-LABEL: func.func private @__kiln_pow_
// CHECK-NOT: math.ipowi
// CHECK: %[[BITS:.+]] = arith.constant 32 : index
// CHECK: scf.for %{{.+}} = %{{.+}} to %[[BITS]]
// CHECK: arith.shrui
module @unsigned {
  func.func @main(%u: tensor<2xui8>, %s: tensor<2xi8>, %e: tensor<2xi32>) -> (tensor<2xui8>, tensor<2xi8>, tensor<2xf32>, tensor<2xi32>) {
    %a = kiln.div %u, %u : (tensor<2xui8>, tensor<2xui8>) -> tensor<2xui8>
    %b = kiln.div %s, %s : (tensor<2xi8>, tensor<2xi8>) -> tensor<2xi8>
    %c = kiln.constant dense<[255, 2]> : tensor<2xui8>
    %d = kiln.cast %c : tensor<2xui8> -> tensor<2xf32>
    %p = kiln.pow %e, %e : (tensor<2xi32>, tensor<2xi32>) -> tensor<2xi32>
    return %a, %b, %d, %p : tensor<2xui8>, tensor<2xi8>, tensor<2xf32>, tensor<2xi32>
  }
}

// -----

// Trilu keeps j - i >= k (upper) with k read from its operand; argmax
// loops along the axis (oge: the last maximum wins with
// select_last_index); gather_elements and gather_nd load at indices (a
// negative one counts from the end); scatter_nd copies its input, then
// combines every update in order in a loop nest.
// CHECK-LABEL: module @index_ops
// CHECK: func.func @kiln_graph_run
// CHECK-LABEL: func.func private @__kiln_trilu_
// CHECK: %[[K:.+]] = memref.load %{{.+}}[] : memref<i64>
// CHECK: %[[KI:.+]] = arith.index_cast %[[K]] : i64 to index
// CHECK: linalg.generic
// CHECK: %[[I:.+]] = linalg.index 0
// CHECK: %[[J:.+]] = linalg.index 1
// CHECK: %[[D:.+]] = arith.subi %[[J]], %[[I]]
// CHECK: arith.cmpi sge, %[[D]], %[[KI]]
// CHECK-LABEL: func.func private @__kiln_argmax_
// CHECK: scf.for
// CHECK: arith.cmpf oge
// CHECK: arith.index_cast %{{.+}} : index to i64
// CHECK-LABEL: func.func private @__kiln_gather_elements_
// CHECK: %[[N:.+]] = memref.dim %{{.+}}, %c1 : memref<3x4xf32>
// CHECK: ^bb0(%[[IDX:.+]]: i64,
// CHECK: %[[ROW:.+]] = linalg.index 0
// CHECK: %[[AT:.+]] = arith.index_cast %[[IDX]]
// CHECK: %[[NEG:.+]] = arith.cmpi slt, %[[AT]]
// CHECK: %[[WRAP:.+]] = arith.addi %[[AT]], %[[N]]
// CHECK: %[[COL:.+]] = arith.select %[[NEG]], %[[WRAP]], %[[AT]]
// CHECK: memref.load %{{.+}}[%[[ROW]], %[[COL]]] : memref<3x4xf32>
// CHECK-LABEL: func.func private @__kiln_gather_nd_
// CHECK: memref.load %{{.+}} : memref<2x1xi64>
// CHECK: memref.load %{{.+}} : memref<3x4xf32>
// CHECK-LABEL: func.func private @__kiln_scatter_nd_
// CHECK: linalg.copy
// CHECK: scf.for
// CHECK: scf.for
// CHECK: %[[OLD:.+]] = memref.load %[[OUT:.+]][%{{.+}}, %{{.+}}] : memref<3x4xf32>
// CHECK: %[[NEW:.+]] = arith.addf %[[OLD]]
// CHECK: memref.store %[[NEW]], %[[OUT]]
module @index_ops {
  func.func @main(%x: tensor<3x4xf32>, %k: tensor<i64>, %i: tensor<3x2xi64>, %nd: tensor<2x1xi64>, %u: tensor<2x4xf32>) -> (tensor<3x4xf32>, tensor<3xi64>, tensor<3x2xf32>, tensor<2x4xf32>, tensor<3x4xf32>) {
    %t = kiln.trilu %x, %k {upper} : (tensor<3x4xf32>, tensor<i64>) -> tensor<3x4xf32>
    %a = kiln.argmax %x {axis = 1 : i64, select_last_index} : tensor<3x4xf32> -> tensor<3xi64>
    %g = kiln.gather_elements %x, %i {axis = 1 : i64} : (tensor<3x4xf32>, tensor<3x2xi64>) -> tensor<3x2xf32>
    %n = kiln.gather_nd %x, %nd {batch_dims = 0 : i64} : (tensor<3x4xf32>, tensor<2x1xi64>) -> tensor<2x4xf32>
    %s = kiln.scatter_nd %x, %nd, %u {reduction = "add"} : (tensor<3x4xf32>, tensor<2x1xi64>, tensor<2x4xf32>) -> tensor<3x4xf32>
    return %t, %a, %g, %n, %s : tensor<3x4xf32>, tensor<3xi64>, tensor<3x2xf32>, tensor<2x4xf32>, tensor<3x4xf32>
  }
}

// -----

// Lower triangle, argmax without select_last_index: sle and ogt.
// CHECK-LABEL: module @lower_triangle
// CHECK-LABEL: func.func private @__kiln_trilu_
// CHECK: arith.cmpi sle
// CHECK-LABEL: func.func private @__kiln_argmax_
// CHECK: arith.cmpf ogt
module @lower_triangle {
  func.func @main(%x: tensor<3x4xf32>) -> (tensor<3x4xf32>, tensor<1x4xi64>) {
    %t = kiln.trilu %x : (tensor<3x4xf32>) -> tensor<3x4xf32>
    %a = kiln.argmax %x {axis = 0 : i64, keepdims} : tensor<3x4xf32> -> tensor<1x4xi64>
    return %t, %a : tensor<3x4xf32>, tensor<1x4xi64>
  }
}

// -----

// Range: start + i * delta; constant_of_shape: a fill of the (static)
// result with the value in the buffer's signless type.
// CHECK-LABEL: module @range
// CHECK-LABEL: func.func private @__kiln_range_
// CHECK: %[[START:.+]] = memref.load %{{.+}}[] : memref<i64>
// CHECK: %[[DELTA:.+]] = memref.load %{{.+}}[] : memref<i64>
// CHECK: %[[I:.+]] = arith.index_cast %{{.+}} : index to i64
// CHECK: %[[STEP:.+]] = arith.muli %[[I]], %[[DELTA]]
// CHECK: arith.addi %[[START]], %[[STEP]]
// CHECK-LABEL: func.func private @__kiln_constant_of_shape_
// CHECK: %[[V:.+]] = arith.constant 7 : i16
// CHECK: linalg.fill ins(%[[V]] : i16) outs(%{{.+}} : memref<2x3xi16>)
module @range {
  func.func @main(%s: tensor<i64>, %l: tensor<i64>, %d: tensor<i64>) -> (tensor<5xi64>, tensor<2x3xui16>) {
    %r = kiln.range %s, %l, %d : (tensor<i64>, tensor<i64>, tensor<i64>) -> tensor<5xi64>
    %shape = kiln.constant dense<[2, 3]> : tensor<2xi64>
    %c = kiln.constant_of_shape %shape {value = 7 : ui16} : (tensor<2xi64>) -> tensor<2x3xui16>
    return %r, %c : tensor<5xi64>, tensor<2x3xui16>
  }
}

// -----

// QuantizeLinear rounds half to even and clamps to the unsigned range;
// DequantizeLinear subtracts the (unsigned) zero point in f32.
// CHECK-LABEL: module @quantize
// CHECK-LABEL: func.func private @__kiln_quantize_linear_
// CHECK: math.roundeven
// CHECK: arith.extui %{{.+}} : i8 to i64
// CHECK: arith.maxsi %{{.+}}, %c0_i64
// CHECK: arith.minsi %{{.+}}, %c255_i64
// CHECK: arith.trunci %{{.+}} : i64 to i8
// CHECK-LABEL: func.func private @__kiln_dequantize_linear_
// CHECK: %[[X:.+]] = arith.uitofp %{{.+}} : i8 to f32
// CHECK: %[[Z:.+]] = arith.uitofp %{{.+}} : i8 to f32
// CHECK: %[[D:.+]] = arith.subf %[[X]], %[[Z]]
// CHECK: arith.mulf %[[D]]
module @quantize {
  func.func @main(%x: tensor<4xf32>, %s: tensor<f32>, %z: tensor<ui8>, %q: tensor<4xui8>) -> (tensor<4xui8>, tensor<4xf32>) {
    %a = kiln.quantize_linear %x, %s, %z {axis = 0 : i64, block_size = 0 : i64} : (tensor<4xf32>, tensor<f32>, tensor<ui8>) -> tensor<4xui8>
    %b = kiln.dequantize_linear %q, %s, %z {axis = 0 : i64, block_size = 0 : i64} : (tensor<4xui8>, tensor<f32>, tensor<ui8>) -> tensor<4xf32>
    return %a, %b : tensor<4xui8>, tensor<4xf32>
  }
}

// -----

// Attention on static shapes: per (batch, head, query) the scores of the
// keys the query sees (causal: j <= i + total - seq; window_left: j >=
// p - 2; the boolean mask), softcapped, into a stack row; then the
// softmax-weighted sum of the values of KV head h / 2 (GQA), and zeros for
// a query that sees no key.
// CHECK-LABEL: module @attention
// CHECK-LABEL: func.func private @__kiln_attention_
// CHECK-DAG: %[[SCORES:.+]] = memref.alloca() : memref<5xf32>
// CHECK-DAG: %[[ACC:.+]] = memref.alloca() : memref<6xf32>
// CHECK: scf.for %[[B:.+]] = %c0 to %c1
// CHECK: scf.for %[[H:.+]] = %c0 to %c4
// CHECK: scf.for %[[I:.+]] = %c0 to %c3
// CHECK: %[[KH:.+]] = arith.divui %[[H]], %c2
// CHECK: %[[P:.+]] = arith.addi %[[I]],
// CHECK: scf.for %[[J:.+]] = %c0 to %c5
// CHECK: arith.cmpi sle, %[[J]], %[[P]]
// CHECK: %[[LEFT:.+]] = arith.subi %[[P]], %c2
// CHECK: arith.cmpi sge, %[[J]], %[[LEFT]]
// CHECK: memref.load %{{.+}}[%[[B]], %[[KH]], %[[J]], %{{.+}}] : memref<1x2x5x8xf32>
// CHECK: math.tanh
// CHECK: memref.load %{{.+}}[%[[I]], %[[J]]] : memref<3x5xi1>
// CHECK: memref.store %{{.+}}, %[[SCORES]][%[[J]]]
// CHECK: arith.maximumf
// CHECK: math.exp
// CHECK: memref.load %{{.+}}[%[[B]], %[[KH]], %{{.+}}, %{{.+}}] : memref<1x2x5x6xf32>
// CHECK: %[[NONE:.+]] = arith.cmpf oeq
// CHECK: arith.divf
// CHECK: arith.select %[[NONE]]
// CHECK: memref.store %{{.+}}, %{{.+}}[%[[B]], %[[H]], %[[I]], %{{.+}}] : memref<1x4x3x6xf32>
module @attention {
  func.func @main(%q: tensor<1x4x3x8xf32>, %k: tensor<1x2x5x8xf32>, %v: tensor<1x2x5x6xf32>, %m: tensor<3x5xi1>) -> tensor<1x4x3x6xf32> {
    %o = kiln.attention %q, %k, %v mask(%m) {causal, scale = 0.35 : f32, softcap = 2.0 : f32, window_left = 2 : i64} : (tensor<1x4x3x8xf32>, tensor<1x2x5x8xf32>, tensor<1x2x5x6xf32>, tensor<3x5xi1>) -> tensor<1x4x3x6xf32>
    return %o : tensor<1x4x3x6xf32>
  }
}

// -----

// Without causal, window, softcap or mask: no comparison of key positions,
// no tanh, no mask load; an f16 attention computes in f32.
// CHECK-LABEL: module @attention_plain
// CHECK-LABEL: func.func private @__kiln_attention_
// CHECK: memref.alloca() : memref<5xf32>
// CHECK-NOT: arith.cmpi s
// CHECK-NOT: math.tanh
// CHECK: arith.extf %{{.+}} : f16 to f32
// CHECK: arith.truncf %{{.+}} : f32 to f16
module @attention_plain {
  func.func @main(%q: tensor<1x2x3x8xf16>, %k: tensor<1x2x5x8xf16>, %v: tensor<1x2x5x8xf16>) -> tensor<1x2x3x8xf16> {
    %o = kiln.attention %q, %k, %v {scale = 0.35 : f32} : (tensor<1x2x3x8xf16>, tensor<1x2x5x8xf16>, tensor<1x2x5x8xf16>) -> tensor<1x2x3x8xf16>
    return %o : tensor<1x2x3x8xf16>
  }
}

// -----

// mul(x, x) reads one buffer twice: its loop reads a single argument, so
// mul(x, w) of the same types must not call them (it did, computing w * w).
// (Both results are returned, so the square is not fused into the mul.)
// CHECK-LABEL: module @repeated_operand
// CHECK: call @[[SQUARE:__kiln_mul_[0-9]+]](%[[X:.+]], %[[X]], %{{.+}})
// CHECK: call @[[MUL:__kiln_mul_[0-9]+]](
// CHECK-NOT: call @[[SQUARE]](
// CHECK: func.func private @[[SQUARE]](%{{.+}}: memref<3x4xf32>, %[[B:.+]]: memref<3x4xf32>, %{{.+}}: memref<3x4xf32>)
// CHECK: ins(%[[B]] : memref<3x4xf32>)
// CHECK: arith.mulf %[[E:.+]], %[[E]]
// CHECK: func.func private @[[MUL]](%[[L:.+]]: memref<3x4xf32>, %[[R:.+]]: memref<3x4xf32>, %{{.+}}: memref<3x4xf32>)
// CHECK: ins(%[[L]], %[[R]] : memref<3x4xf32>, memref<3x4xf32>)
module @repeated_operand {
  func.func @main(%x: tensor<3x4xf32>, %w: tensor<3x4xf32>) -> (tensor<3x4xf32>, tensor<3x4xf32>) {
    %s = kiln.mul %x, %x : (tensor<3x4xf32>, tensor<3x4xf32>) -> tensor<3x4xf32>
    %y = kiln.mul %s, %w : (tensor<3x4xf32>, tensor<3x4xf32>) -> tensor<3x4xf32>
    return %s, %y : tensor<3x4xf32>, tensor<3x4xf32>
  }
}

// -----

module {
  func.func @main(%a: tensor<4xf8E8M0FNU>) -> tensor<4xf32> {
    // expected-error @+1 {{element type 'f8E8M0FNU' is not supported by the CPU backend yet}}
    %c = kiln.cast %a : tensor<4xf8E8M0FNU> -> tensor<4xf32>
    return %c : tensor<4xf32>
  }
}

// -----

// Float8 buffers hold bytes. Decoding reads a 256-entry f32 table;
// encoding rounds |x| to the type's spacing in x's binade (ties to even)
// and saturates at the largest finite value (448 for f8E4M3FN), or with
// no_saturate makes an infinity of f8E5M2 (0x7C) beyond it.
// CHECK-LABEL: module @float8
// The table starts 0, 2^-16 (0x37800000, the smallest subnormal).
// CHECK-DAG: memref.global "private" constant @[[TABLE:__kiln_f8E5M2_to_f32]] : memref<256xf32> = dense<"0x0000000000008037
// CHECK: func.func private @__kiln_cast_{{[0-9]+}}(%{{.+}}: memref<4xf32>, %{{.+}}: memref<4xi8>)
// CHECK: math.roundeven
// CHECK: %[[OVER:.+]] = arith.cmpf ogt, %{{.+}}, %[[MAX:cst.*]] : f32
// CHECK: arith.select %[[OVER]], %[[MAX]]
// CHECK-NOT: %c124_i32
// CHECK: arith.trunci %{{.+}} : i32 to i8
// CHECK: func.func private @__kiln_cast_{{[0-9]+}}(%{{.+}}: memref<4xf32>, %{{.+}}: memref<4xi8>)
// CHECK: %[[INF:.+]] = arith.constant 124 : i32
// CHECK: arith.select %{{.+}}, %[[INF]]
// CHECK: func.func private @__kiln_cast_{{[0-9]+}}(%{{.+}}: memref<4xi8>, %{{.+}}: memref<4xf16>)
// CHECK: %[[T:.+]] = memref.get_global @[[TABLE]] : memref<256xf32>
// CHECK: %[[I:.+]] = arith.index_castui %{{.+}} : i8 to index
// CHECK: %[[V:.+]] = memref.load %[[T]][%[[I]]]
// CHECK: arith.truncf %[[V]] : f32 to f16
module @float8 {
  func.func @main(%x: tensor<4xf32>, %y: tensor<4xf8E5M2>) -> (tensor<4xf8E4M3FN>, tensor<4xf8E5M2>, tensor<4xf16>) {
    %a = kiln.cast %x : tensor<4xf32> -> tensor<4xf8E4M3FN>
    %b = kiln.cast %x {no_saturate} : tensor<4xf32> -> tensor<4xf8E5M2>
    %c = kiln.cast %y : tensor<4xf8E5M2> -> tensor<4xf16>
    return %a, %b, %c : tensor<4xf8E4M3FN>, tensor<4xf8E5M2>, tensor<4xf16>
  }
}

// -----

// f64 to f16 goes through f32 rounded to odd (a direct truncation would
// call compiler-rt's __truncdfhf2, which model.so does not link).
// CHECK-LABEL: module @f64_to_f16
// CHECK: func.func private @__kiln_cast_
// CHECK-NOT: arith.truncf %{{.+}} : f64 to f16
// CHECK: arith.truncf %{{.+}} : f64 to f32
// CHECK: arith.ori
// CHECK: arith.truncf %{{.+}} : f32 to f16
module @f64_to_f16 {
  func.func @main(%x: tensor<4xf64>) -> tensor<4xf16> {
    %a = kiln.cast %x : tensor<4xf64> -> tensor<4xf16>
    return %a : tensor<4xf16>
  }
}

// -----

// A norm over trailing axes 1 and 2 reads [rows, 12] views (a unit dim in
// front, then the leading and the normalized axes collapsed) and a 1-D
// scale of 12; a one-element bias is read at 0 for every column.
// CHECK-LABEL: module @norm_axes
// CHECK: func.func private @__kiln_layer_norm_
// CHECK: %[[PAD:.+]] = memref.expand_shape %{{.+}} {{\[}}[0, 1], [2], [3]] output_shape [1, 2, 3, 4] : memref<2x3x4xf32> into memref<1x2x3x4xf32>
// CHECK: %[[X:.+]] = memref.collapse_shape %[[PAD]] {{\[}}[0, 1], [2, 3]] : memref<1x2x3x4xf32> into memref<2x12xf32>
// CHECK: %[[W:.+]] = memref.collapse_shape %{{.+}} {{\[}}[0, 1]] : memref<3x4xf32> into memref<12xf32>
// CHECK: %[[B:.+]] = memref.expand_shape %{{.+}} [] output_shape [1] : memref<f32> into memref<1xf32>
// CHECK: %[[FIRST:.+]] = arith.constant 0 : index
// CHECK: scf.for
// CHECK: memref.load %[[W]][%[[K:.+]]] : memref<12xf32>
// CHECK: memref.load %[[B]][%[[FIRST]]] : memref<1xf32>
module @norm_axes {
  func.func @main(%x: tensor<2x3x4xf32>, %w: tensor<3x4xf32>, %b: tensor<f32>) -> tensor<2x3x4xf32> {
    %y = kiln.layer_norm %x, %w, %b {axis = 1 : i64, epsilon = 1.0e-05 : f32} : (tensor<2x3x4xf32>, tensor<3x4xf32>, tensor<f32>) -> tensor<2x3x4xf32>
    return %y : tensor<2x3x4xf32>
  }
}

// -----

module {
  func.func @main(%x: tensor<2x3x4xf32>, %w: tensor<3x1xf32>) -> tensor<2x3x4xf32> {
    // expected-error @+1 {{the CPU backend needs a scale and bias of the normalized shape or of one element, got 'tensor<3x1xf32>'}}
    %y = kiln.rms_norm %x, %w {axis = 1 : i64, epsilon = 1.0e-05 : f32} : (tensor<2x3x4xf32>, tensor<3x1xf32>) -> tensor<2x3x4xf32>
    return %y : tensor<2x3x4xf32>
  }
}

// -----

// A 1-D operand of a matmul is a vector: [2x3x4] x [4] reads the vector
// at k alone and writes [2x3]; the reduction is the last loop.
// (The maps print before the module.)
// CHECK-DAG: #[[LHS:.+]] = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
// CHECK-DAG: #[[VEC:.+]] = affine_map<(d0, d1, d2) -> (d2)>
// CHECK-DAG: #[[OUT:.+]] = affine_map<(d0, d1, d2) -> (d0, d1)>
// CHECK-LABEL: module @matvec
// CHECK: func.func private @__kiln_matmul_
// CHECK: linalg.generic {indexing_maps = [#[[LHS]], #[[VEC]], #[[OUT]]], iterator_types = ["parallel", "parallel", "reduction"]}
module @matvec {
  func.func @main(%a: tensor<2x3x4xf32>, %v: tensor<4xf32>) -> tensor<2x3xf32> {
    %y = kiln.matmul %a, %v : (tensor<2x3x4xf32>, tensor<4xf32>) -> tensor<2x3xf32>
    return %y : tensor<2x3xf32>
  }
}

