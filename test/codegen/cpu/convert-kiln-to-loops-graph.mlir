// RUN: kiln-opt %s --split-input-file --convert-kiln-to-loops=graph=true --verify-diagnostics | FileCheck %s

// The graph mode: arguments read from inputs[i], results copied to
// outputs[j] (a result may be an argument itself), no step inputs.
// CHECK: func.func @kiln_graph_run(%[[IN:.+]]: !llvm.ptr, %[[OUT:.+]]: !llvm.ptr, %[[ARENA:.+]]: !llvm.ptr, %[[KERNELS:.+]]: !llvm.ptr) -> i32
// CHECK: llvm.getelementptr %[[IN]][%{{.+}}] : (!llvm.ptr, i64) -> !llvm.ptr, !llvm.ptr
// CHECK: call @__kiln_add_
// CHECK: llvm.getelementptr %[[OUT]][%{{.+}}] : (!llvm.ptr, i64) -> !llvm.ptr, !llvm.ptr
// CHECK: linalg.copy
// CHECK: linalg.copy
// CHECK: @kiln_graph_arena_bytes(64 : i64)
module {
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
  func.func @main(%a: tensor<4xui8>) -> tensor<4xui8> {
    // expected-error @+1 {{element type 'ui8' is not supported by the CPU backend yet (unsigned integers)}}
    %c = kiln.add %a, %a : (tensor<4xui8>, tensor<4xui8>) -> tensor<4xui8>
    return %c : tensor<4xui8>
  }
}

// -----

// An op reading one buffer twice (a + a) does not share its function with
// one reading two (a + b): inside it, the repeated operand is one argument.
// CHECK: func.func @kiln_graph_run
// CHECK: call @[[SAME:__kiln_add_[0-9]+]](%[[A:[^,]+]], %[[A]], %{{[^,]+}})
// CHECK: call @[[TWO:__kiln_add_[0-9]+]](%[[A]], %[[B:[^,]+]], %{{[^,]+}})
// CHECK: call @[[SAME]](%[[B]], %[[B]], %{{[^,]+}})
// CHECK: func.func private @[[TWO]](%[[X:[^:]+]]: memref<4xf32>, %[[Y:[^:]+]]: memref<4xf32>, %{{.+}}: memref<4xf32>)
// CHECK: linalg.generic {{.*}} ins(%[[X]], %[[Y]] :
module {
  func.func @main(%a: tensor<4xf32>, %b: tensor<4xf32>) -> (tensor<4xf32>, tensor<4xf32>, tensor<4xf32>) {
    %0 = kiln.add %a, %a : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
    %1 = kiln.add %a, %b : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
    %2 = kiln.add %b, %b : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
    return %0, %1, %2 : tensor<4xf32>, tensor<4xf32>, tensor<4xf32>
  }
}
