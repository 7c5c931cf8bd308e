// RUN: kiln-opt %s --split-input-file --convert-kiln-to-loops=graph=true | FileCheck %s

// A residual stream: s = x + a is read by a norm and by the next residual
// add, s2 = s + m only by the last norm. Neither add has a loop of its own:
// each norm adds its rows in its first pass. The first stores the sum into
// the add's buffer (an extra argument, read by the second norm's call);
// the last, the sum's only reader, into its output, which its scaling loop
// then normalizes in place. The norm between them (m) is a plain one.
// CHECK-LABEL: module @residual
// CHECK: func.func @kiln_graph_run
// CHECK-NOT: call @__kiln_add_
// CHECK: call @[[FIRST:__kiln_rms_norm_[0-9]+]](%{{[^,]+}}, %{{[^,]+}}, %[[W:[^,]+]], %[[N:[^,]+]], %[[S:[^)]+]]) : (memref<1x4x8xf32>, memref<1x4x8xf32>, memref<8xf32>, memref<1x4x8xf32>, memref<1x4x8xf32>) -> ()
// CHECK-NOT: call @__kiln_add_
// CHECK: call @__kiln_rms_norm_{{[0-9]+}}(%[[N]], %[[W]], %[[M:[^)]+]]) : (memref<1x4x8xf32>, memref<8xf32>, memref<1x4x8xf32>) -> ()
// CHECK-NOT: call @__kiln_add_
// CHECK: call @[[LAST:__kiln_rms_norm_[0-9]+]](%[[S]], %[[M]], %[[W]], %{{[^)]+}}) : (memref<1x4x8xf32>, memref<1x4x8xf32>, memref<8xf32>, memref<1x4x8xf32>) -> ()
// CHECK-NOT: call @__kiln_add_
// CHECK: func.func private @[[FIRST]](%[[X1:[^:]+]]: memref<1x4x8xf32>, %[[A1:[^:]+]]: memref<1x4x8xf32>, %{{[^:]+}}: memref<8xf32>, %{{[^:]+}}: memref<1x4x8xf32>, %[[S1:[^:]+]]: memref<1x4x8xf32>)
// CHECK-DAG: %[[SUM1:.+]] = memref.collapse_shape %[[S1]]
// CHECK-DAG: %[[LHS1:.+]] = memref.collapse_shape %[[X1]]
// CHECK-DAG: %[[RHS1:.+]] = memref.collapse_shape %[[A1]]
// CHECK: %[[L1:.+]] = memref.load %[[LHS1]]
// CHECK: %[[R1:.+]] = memref.load %[[RHS1]]
// CHECK: %[[V1:.+]] = arith.addf %[[L1]], %[[R1]] : f32
// CHECK: memref.store %[[V1]], %[[SUM1]]
// CHECK: math.rsqrt
// CHECK: memref.load %[[SUM1]]
// CHECK: func.func private @[[LAST]](%[[X2:[^:]+]]: memref<1x4x8xf32>, %[[A2:[^:]+]]: memref<1x4x8xf32>, %{{[^:]+}}: memref<8xf32>, %[[Y2:[^:]+]]: memref<1x4x8xf32>)
// CHECK-DAG: %[[OUT2:.+]] = memref.collapse_shape %[[Y2]]
// CHECK-DAG: %[[LHS2:.+]] = memref.collapse_shape %[[X2]]
// CHECK-DAG: %[[RHS2:.+]] = memref.collapse_shape %[[A2]]
// CHECK: %[[L2:.+]] = memref.load %[[LHS2]]
// CHECK: %[[R2:.+]] = memref.load %[[RHS2]]
// CHECK: %[[V2:.+]] = arith.addf %[[L2]], %[[R2]] : f32
// CHECK: memref.store %[[V2]], %[[OUT2]]
// CHECK: math.rsqrt
// CHECK: memref.load %[[OUT2]]
// CHECK: memref.store %{{.+}}, %[[OUT2]]
module @residual {
  func.func @main(%x: tensor<1x4x8xf32>, %a: tensor<1x4x8xf32>, %w: tensor<8xf32>) -> tensor<1x4x8xf32> {
    %s = kiln.add %x, %a : (tensor<1x4x8xf32>, tensor<1x4x8xf32>) -> tensor<1x4x8xf32>
    %n = kiln.rms_norm %s, %w {axis = 2 : i64, epsilon = 1.0e-05 : f32} : (tensor<1x4x8xf32>, tensor<8xf32>) -> tensor<1x4x8xf32>
    %m = kiln.rms_norm %n, %w {axis = 2 : i64, epsilon = 1.0e-05 : f32} : (tensor<1x4x8xf32>, tensor<8xf32>) -> tensor<1x4x8xf32>
    %s2 = kiln.add %s, %m : (tensor<1x4x8xf32>, tensor<1x4x8xf32>) -> tensor<1x4x8xf32>
    %n2 = kiln.rms_norm %s2, %w {axis = 2 : i64, epsilon = 1.0e-05 : f32} : (tensor<1x4x8xf32>, tensor<8xf32>) -> tensor<1x4x8xf32>
    return %n2 : tensor<1x4x8xf32>
  }
}

// -----

// LayerNorm with a bias: the first pass (the mean) adds and stores into
// the output, the variance and scaling passes read the sum there. The
// arena holds the output alone (unfused, the sum too: 256 bytes).
// CHECK-LABEL: module @layer_norm
// CHECK: func.func @kiln_graph_run
// CHECK-NOT: call @__kiln_add_
// CHECK: call @[[LN:__kiln_layer_norm_[0-9]+]]({{.+}}) : (memref<1x4x8xf32>, memref<1x4x8xf32>, memref<8xf32>, memref<8xf32>, memref<1x4x8xf32>) -> ()
// CHECK: func.func private @[[LN]](%[[X:[^:]+]]: memref<1x4x8xf32>, %[[A:[^:]+]]: memref<1x4x8xf32>, %[[W:[^:]+]]: memref<8xf32>, %[[B:[^:]+]]: memref<8xf32>, %[[Y:[^:]+]]: memref<1x4x8xf32>)
// CHECK-DAG: %[[OUT:.+]] = memref.collapse_shape %[[Y]]
// CHECK-DAG: %[[LHS:.+]] = memref.collapse_shape %[[X]]
// CHECK-DAG: %[[RHS:.+]] = memref.collapse_shape %[[A]]
// CHECK: %[[L:.+]] = memref.load %[[LHS]]
// CHECK: %[[R:.+]] = memref.load %[[RHS]]
// CHECK: %[[V:.+]] = arith.addf %[[L]], %[[R]] : f32
// CHECK: memref.store %[[V]], %[[OUT]]
// CHECK: arith.divf
// CHECK: memref.load %[[OUT]]
// CHECK: math.rsqrt
// CHECK: memref.load %[[OUT]]
// CHECK: memref.load %[[W]]
// CHECK: memref.load %[[B]]
// CHECK: memref.store %{{.+}}, %[[OUT]]
// CHECK: @kiln_graph_arena_bytes(128 : i64)
module @layer_norm {
  func.func @main(%x: tensor<1x4x8xf32>, %a: tensor<1x4x8xf32>, %w: tensor<8xf32>, %b: tensor<8xf32>) -> tensor<1x4x8xf32> {
    %s = kiln.add %x, %a : (tensor<1x4x8xf32>, tensor<1x4x8xf32>) -> tensor<1x4x8xf32>
    %n = kiln.layer_norm %s, %w, %b {axis = 2 : i64, epsilon = 1.0e-05 : f32} : (tensor<1x4x8xf32>, tensor<8xf32>, tensor<8xf32>) -> tensor<1x4x8xf32>
    return %n : tensor<1x4x8xf32>
  }
}

// -----

// A norm that computes its add and one that does not must not share a
// function, even where their buffers have the same types: here (x, w, b,
// y) and (p, q, w, y), all memref<8xf32>.
// CHECK-LABEL: module @not_shared
// CHECK: call @[[PLAIN:__kiln_layer_norm_[0-9]+]]({{.+}}) : (memref<8xf32>, memref<8xf32>, memref<8xf32>, memref<8xf32>) -> ()
// CHECK: call @[[FUSED:__kiln_layer_norm_[0-9]+]]({{.+}}) : (memref<8xf32>, memref<8xf32>, memref<8xf32>, memref<8xf32>) -> ()
// CHECK: func.func private @[[PLAIN]](
// CHECK: func.func private @[[FUSED]](
// CHECK: arith.addf %{{.+}}, %{{.+}} : f32
module @not_shared {
  func.func @main(%x: tensor<8xf32>, %w: tensor<8xf32>, %b: tensor<8xf32>, %p: tensor<8xf32>, %q: tensor<8xf32>) -> (tensor<8xf32>, tensor<8xf32>) {
    %y = kiln.layer_norm %x, %w, %b {axis = 0 : i64, epsilon = 1.0e-05 : f32} : (tensor<8xf32>, tensor<8xf32>, tensor<8xf32>) -> tensor<8xf32>
    %s = kiln.add %p, %q : (tensor<8xf32>, tensor<8xf32>) -> tensor<8xf32>
    %z = kiln.layer_norm %s, %w {axis = 0 : i64, epsilon = 1.0e-05 : f32} : (tensor<8xf32>, tensor<8xf32>) -> tensor<8xf32>
    return %y, %z : tensor<8xf32>, tensor<8xf32>
  }
}

// -----

// Not fused: an add that broadcasts (a bias) keeps its loop.
// CHECK-LABEL: module @broadcast
// CHECK: call @__kiln_add_{{[0-9]+}}({{.+}}) : (memref<1x4x8xf32>, memref<8xf32>, memref<1x4x8xf32>) -> ()
// CHECK: call @__kiln_rms_norm_{{[0-9]+}}({{.+}}) : (memref<1x4x8xf32>, memref<8xf32>, memref<1x4x8xf32>) -> ()
module @broadcast {
  func.func @main(%x: tensor<1x4x8xf32>, %c: tensor<8xf32>, %w: tensor<8xf32>) -> tensor<1x4x8xf32> {
    %s = kiln.add %x, %c : (tensor<1x4x8xf32>, tensor<8xf32>) -> tensor<1x4x8xf32>
    %n = kiln.rms_norm %s, %w {axis = 2 : i64, epsilon = 1.0e-05 : f32} : (tensor<1x4x8xf32>, tensor<8xf32>) -> tensor<1x4x8xf32>
    return %n : tensor<1x4x8xf32>
  }
}

// -----

// Not fused: the exp reads the sum before the norm would compute it.
// CHECK-LABEL: module @read_before
// CHECK: call @__kiln_add_
// CHECK: call @__kiln_exp_
// CHECK: call @__kiln_rms_norm_{{[0-9]+}}({{.+}}) : (memref<1x4x8xf32>, memref<8xf32>, memref<1x4x8xf32>) -> ()
module @read_before {
  func.func @main(%x: tensor<1x4x8xf32>, %a: tensor<1x4x8xf32>, %w: tensor<8xf32>) -> (tensor<1x4x8xf32>, tensor<1x4x8xf32>) {
    %s = kiln.add %x, %a : (tensor<1x4x8xf32>, tensor<1x4x8xf32>) -> tensor<1x4x8xf32>
    %e = kiln.exp %s : tensor<1x4x8xf32>
    %n = kiln.rms_norm %s, %w {axis = 2 : i64, epsilon = 1.0e-05 : f32} : (tensor<1x4x8xf32>, tensor<8xf32>) -> tensor<1x4x8xf32>
    return %n, %e : tensor<1x4x8xf32>, tensor<1x4x8xf32>
  }
}

// -----

// Not fused: the same through a reshape (an alias of the sum's buffer).
// CHECK-LABEL: module @read_before_reshaped
// CHECK: call @__kiln_add_
// CHECK: call @__kiln_exp_{{[0-9]+}}({{.+}}) : (memref<4x8xf32>, memref<4x8xf32>) -> ()
// CHECK: call @__kiln_rms_norm_{{[0-9]+}}({{.+}}) : (memref<1x4x8xf32>, memref<8xf32>, memref<1x4x8xf32>) -> ()
module @read_before_reshaped {
  func.func @main(%x: tensor<1x4x8xf32>, %a: tensor<1x4x8xf32>, %w: tensor<8xf32>) -> (tensor<1x4x8xf32>, tensor<4x8xf32>) {
    %s = kiln.add %x, %a : (tensor<1x4x8xf32>, tensor<1x4x8xf32>) -> tensor<1x4x8xf32>
    %r = kiln.reshape %s : tensor<1x4x8xf32> -> tensor<4x8xf32>
    %e = kiln.exp %r : tensor<4x8xf32>
    %n = kiln.rms_norm %s, %w {axis = 2 : i64, epsilon = 1.0e-05 : f32} : (tensor<1x4x8xf32>, tensor<8xf32>) -> tensor<1x4x8xf32>
    return %n, %e : tensor<1x4x8xf32>, tensor<4x8xf32>
  }
}

// -----

// Not fused: an operand is a transpose read in place (strided), which the
// norm's row-major views cannot read.
// CHECK-LABEL: module @strided_operand
// CHECK-NOT: call @__kiln_transpose_
// CHECK: call @__kiln_add_{{[0-9]+}}({{.+}}) : (memref<1x4x8xf32, strided<[32, 1, 4]>>, memref<1x4x8xf32>, memref<1x4x8xf32>) -> ()
// CHECK: call @__kiln_rms_norm_{{[0-9]+}}({{.+}}) : (memref<1x4x8xf32>, memref<8xf32>, memref<1x4x8xf32>) -> ()
module @strided_operand {
  func.func @main(%y: tensor<1x8x4xf32>, %a: tensor<1x4x8xf32>, %w: tensor<8xf32>) -> tensor<1x4x8xf32> {
    %t = kiln.transpose %y {perm = array<i64: 0, 2, 1>} : tensor<1x8x4xf32> -> tensor<1x4x8xf32>
    %s = kiln.add %t, %a : (tensor<1x4x8xf32>, tensor<1x4x8xf32>) -> tensor<1x4x8xf32>
    %n = kiln.rms_norm %s, %w {axis = 2 : i64, epsilon = 1.0e-05 : f32} : (tensor<1x4x8xf32>, tensor<8xf32>) -> tensor<1x4x8xf32>
    return %n : tensor<1x4x8xf32>
  }
}

// -----

// Not fused: an operand is an elementwise producer fused into the add's
// loop (the exp), which stays one loop.
// CHECK-LABEL: module @fused_operand
// CHECK-NOT: call @__kiln_exp_
// CHECK: call @__kiln_add_{{[0-9]+}}({{.+}}) : (memref<1x4x8xf32>, memref<1x4x8xf32>, memref<1x4x8xf32>) -> ()
// CHECK: call @__kiln_rms_norm_{{[0-9]+}}({{.+}}) : (memref<1x4x8xf32>, memref<8xf32>, memref<1x4x8xf32>) -> ()
module @fused_operand {
  func.func @main(%x: tensor<1x4x8xf32>, %a: tensor<1x4x8xf32>, %w: tensor<8xf32>) -> tensor<1x4x8xf32> {
    %e = kiln.exp %x : tensor<1x4x8xf32>
    %s = kiln.add %e, %a : (tensor<1x4x8xf32>, tensor<1x4x8xf32>) -> tensor<1x4x8xf32>
    %n = kiln.rms_norm %s, %w {axis = 2 : i64, epsilon = 1.0e-05 : f32} : (tensor<1x4x8xf32>, tensor<8xf32>) -> tensor<1x4x8xf32>
    return %n : tensor<1x4x8xf32>
  }
}
