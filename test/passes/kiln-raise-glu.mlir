// RUN: kiln-opt %s -kiln-raise-glu -split-input-file | FileCheck %s

// Llama's MLP: (g * sigmoid(g)) * u.
// CHECK-LABEL: func.func @swiglu
// CHECK-SAME: (%[[G:.+]]: tensor<1x?x64xf32, #kiln.dims<[tokens]>>, %[[U:.+]]: tensor<1x?x64xf32, #kiln.dims<[tokens]>>)
// CHECK-NEXT: %[[H:.+]] = kiln.glu %[[G]], %[[U]] {activation = "silu"} : tensor<1x?x64xf32, #kiln.dims<[tokens]>>
// CHECK-NEXT: return %[[H]]
func.func @swiglu(%g: tensor<1x?x64xf32, #kiln.dims<[tokens]>>, %u: tensor<1x?x64xf32, #kiln.dims<[tokens]>>) -> tensor<1x?x64xf32, #kiln.dims<[tokens]>> {
  %s = kiln.sigmoid %g : tensor<1x?x64xf32, #kiln.dims<[tokens]>>
  %a = kiln.mul %g, %s : (tensor<1x?x64xf32, #kiln.dims<[tokens]>>, tensor<1x?x64xf32, #kiln.dims<[tokens]>>) -> tensor<1x?x64xf32, #kiln.dims<[tokens]>>
  %h = kiln.mul %a, %u : (tensor<1x?x64xf32, #kiln.dims<[tokens]>>, tensor<1x?x64xf32, #kiln.dims<[tokens]>>) -> tensor<1x?x64xf32, #kiln.dims<[tokens]>>
  return %h : tensor<1x?x64xf32, #kiln.dims<[tokens]>>
}

// -----

// Another grouping: u * (sigmoid(g) * g).
// CHECK-LABEL: func.func @swiglu_regrouped
// CHECK: kiln.glu %arg0, %arg1 {activation = "silu"} : tensor<4x8xf32>
// CHECK-NOT: kiln.mul
func.func @swiglu_regrouped(%g: tensor<4x8xf32>, %u: tensor<4x8xf32>) -> tensor<4x8xf32> {
  %s = kiln.sigmoid %g : tensor<4x8xf32>
  %a = kiln.mul %s, %g : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
  %h = kiln.mul %u, %a : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
  return %h : tensor<4x8xf32>
}

// -----

// GeGLU (erf and tanh GELU), ReGLU and sigmoid GLU, the gate on either side.
// CHECK-LABEL: func.func @others
// CHECK: kiln.glu %arg0, %arg1 {activation = "gelu"}
// CHECK: kiln.glu %arg0, %arg1 {activation = "gelu_tanh"}
// CHECK: kiln.glu %arg0, %arg1 {activation = "relu"}
// CHECK: kiln.glu %arg0, %arg1 {activation = "sigmoid"}
func.func @others(%g: tensor<4x8xf32>, %u: tensor<4x8xf32>) -> (tensor<4x8xf32>, tensor<4x8xf32>, tensor<4x8xf32>, tensor<4x8xf32>) {
  %e = kiln.gelu %g : tensor<4x8xf32>
  %t = kiln.gelu %g {approximate = "tanh"} : tensor<4x8xf32>
  %r = kiln.relu %g : tensor<4x8xf32>
  %s = kiln.sigmoid %g : tensor<4x8xf32>
  %0 = kiln.mul %e, %u : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
  %1 = kiln.mul %u, %t : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
  %2 = kiln.mul %r, %u : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
  %3 = kiln.mul %u, %s : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
  return %0, %1, %2, %3 : tensor<4x8xf32>, tensor<4x8xf32>, tensor<4x8xf32>, tensor<4x8xf32>
}

// -----

// A product with a further factor: the gated part inside it is raised.
// CHECK-LABEL: func.func @scaled
// CHECK: %[[H:.+]] = kiln.glu %arg0, %arg1 {activation = "silu"}
// CHECK: kiln.mul %[[H]], %{{.+}}
func.func @scaled(%g: tensor<4x8xf32>, %u: tensor<4x8xf32>) -> tensor<4x8xf32> {
  %c = kiln.constant dense<2.0> : tensor<f32>
  %s = kiln.sigmoid %g : tensor<4x8xf32>
  %a = kiln.mul %g, %s : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
  %h = kiln.mul %a, %u : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
  %y = kiln.mul %h, %c : (tensor<4x8xf32>, tensor<f32>) -> tensor<4x8xf32>
  return %y : tensor<4x8xf32>
}

// -----

// Left alone: a plain SiLU; an `up` broadcast along the rows; a product of
// four factors; a gate whose activation is not one kiln.glu knows (tanh).
// CHECK-LABEL: func.func @negatives
// CHECK-NOT: kiln.glu
// CHECK: return
func.func @negatives(%g: tensor<4x8xf32>, %u: tensor<4x8xf32>, %b: tensor<8xf32>) -> (tensor<4x8xf32>, tensor<4x8xf32>, tensor<4x8xf32>, tensor<4x8xf32>) {
  %s = kiln.sigmoid %g : tensor<4x8xf32>
  %silu = kiln.mul %g, %s : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
  %bc = kiln.mul %silu, %b : (tensor<4x8xf32>, tensor<8xf32>) -> tensor<4x8xf32>
  %uu = kiln.mul %u, %u : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
  %four = kiln.mul %silu, %uu : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
  %t = kiln.tanh %g : tensor<4x8xf32>
  %th = kiln.mul %t, %u : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
  return %silu, %bc, %four, %th : tensor<4x8xf32>, tensor<4x8xf32>, tensor<4x8xf32>, tensor<4x8xf32>
}
