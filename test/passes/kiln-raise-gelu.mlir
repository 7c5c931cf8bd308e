// RUN: kiln-opt %s -kiln-raise-gelu -split-input-file | FileCheck %s

// GPT-2 (Optimum): (x * 0.5) * (1 + tanh(0.7978 * (x + 0.044715 * x^3))).
// CHECK-LABEL: func.func @gpt2
// CHECK-SAME: (%[[X:.+]]: tensor<?x256xf32, #kiln.dims<[n]>>)
// CHECK: %[[Y:.+]] = kiln.gelu %[[X]] {approximate = "tanh"} : tensor<?x256xf32, #kiln.dims<[n]>>
// CHECK-NEXT: return %[[Y]]
func.func @gpt2(%x: tensor<?x256xf32, #kiln.dims<[n]>>) -> tensor<?x256xf32, #kiln.dims<[n]>> {
  %half = kiln.constant dense<0.5> : tensor<f32>
  %three = kiln.constant dense<3.0> : tensor<f32>
  %k = kiln.constant dense<0.044715> : tensor<f32>
  %c = kiln.constant dense<0.797884583> : tensor<f32>
  %one = kiln.constant dense<1.0> : tensor<f32>
  %a = kiln.mul %x, %half : (tensor<?x256xf32, #kiln.dims<[n]>>, tensor<f32>) -> tensor<?x256xf32, #kiln.dims<[n]>>
  %p = kiln.pow %x, %three : (tensor<?x256xf32, #kiln.dims<[n]>>, tensor<f32>) -> tensor<?x256xf32, #kiln.dims<[n]>>
  %q = kiln.mul %p, %k : (tensor<?x256xf32, #kiln.dims<[n]>>, tensor<f32>) -> tensor<?x256xf32, #kiln.dims<[n]>>
  %s = kiln.add %x, %q : (tensor<?x256xf32, #kiln.dims<[n]>>, tensor<?x256xf32, #kiln.dims<[n]>>) -> tensor<?x256xf32, #kiln.dims<[n]>>
  %u = kiln.mul %s, %c : (tensor<?x256xf32, #kiln.dims<[n]>>, tensor<f32>) -> tensor<?x256xf32, #kiln.dims<[n]>>
  %t = kiln.tanh %u : tensor<?x256xf32, #kiln.dims<[n]>>
  %o = kiln.add %t, %one : (tensor<?x256xf32, #kiln.dims<[n]>>, tensor<f32>) -> tensor<?x256xf32, #kiln.dims<[n]>>
  %y = kiln.mul %a, %o : (tensor<?x256xf32, #kiln.dims<[n]>>, tensor<?x256xf32, #kiln.dims<[n]>>) -> tensor<?x256xf32, #kiln.dims<[n]>>
  return %y : tensor<?x256xf32, #kiln.dims<[n]>>
}

// -----

// Exact GELU: x * 0.5 * (1 + erf(x / 1.41421356)), 1 + erf written first.
// CHECK-LABEL: func.func @erf
// CHECK: kiln.gelu %arg0 : tensor<4x8xf32>
// CHECK-NOT: kiln.erf
func.func @erf(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
  %half = kiln.constant dense<0.5> : tensor<f32>
  %r2 = kiln.constant dense<1.41421356> : tensor<f32>
  %one = kiln.constant dense<1.0> : tensor<f32>
  %d = kiln.div %x, %r2 : (tensor<4x8xf32>, tensor<f32>) -> tensor<4x8xf32>
  %e = kiln.erf %d : tensor<4x8xf32>
  %o = kiln.add %one, %e : (tensor<f32>, tensor<4x8xf32>) -> tensor<4x8xf32>
  %m = kiln.mul %o, %x : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
  %y = kiln.mul %m, %half : (tensor<4x8xf32>, tensor<f32>) -> tensor<4x8xf32>
  return %y : tensor<4x8xf32>
}

// -----

// x^3 as x * x * x.
// CHECK-LABEL: func.func @cube_product
// CHECK: kiln.gelu %arg0 {approximate = "tanh"}
func.func @cube_product(%x: tensor<8xf32>) -> tensor<8xf32> {
  %half = kiln.constant dense<0.5> : tensor<f32>
  %k = kiln.constant dense<0.044715> : tensor<f32>
  %c = kiln.constant dense<0.797884583> : tensor<f32>
  %one = kiln.constant dense<1.0> : tensor<f32>
  %x2 = kiln.mul %x, %x : (tensor<8xf32>, tensor<8xf32>) -> tensor<8xf32>
  %x3 = kiln.mul %x2, %x : (tensor<8xf32>, tensor<8xf32>) -> tensor<8xf32>
  %q = kiln.mul %k, %x3 : (tensor<f32>, tensor<8xf32>) -> tensor<8xf32>
  %s = kiln.add %q, %x : (tensor<8xf32>, tensor<8xf32>) -> tensor<8xf32>
  %u = kiln.mul %c, %s : (tensor<f32>, tensor<8xf32>) -> tensor<8xf32>
  %t = kiln.tanh %u : tensor<8xf32>
  %o = kiln.add %t, %one : (tensor<8xf32>, tensor<f32>) -> tensor<8xf32>
  %h = kiln.mul %half, %o : (tensor<f32>, tensor<8xf32>) -> tensor<8xf32>
  %y = kiln.mul %x, %h : (tensor<8xf32>, tensor<8xf32>) -> tensor<8xf32>
  return %y : tensor<8xf32>
}

// -----

// Must not fire: the cubic coefficient is not 0.044715.
// CHECK-LABEL: func.func @wrong_coefficient
// CHECK-NOT: kiln.gelu
func.func @wrong_coefficient(%x: tensor<8xf32>) -> tensor<8xf32> {
  %half = kiln.constant dense<0.5> : tensor<f32>
  %three = kiln.constant dense<3.0> : tensor<f32>
  %k = kiln.constant dense<0.05> : tensor<f32>
  %c = kiln.constant dense<0.797884583> : tensor<f32>
  %one = kiln.constant dense<1.0> : tensor<f32>
  %a = kiln.mul %x, %half : (tensor<8xf32>, tensor<f32>) -> tensor<8xf32>
  %p = kiln.pow %x, %three : (tensor<8xf32>, tensor<f32>) -> tensor<8xf32>
  %q = kiln.mul %p, %k : (tensor<8xf32>, tensor<f32>) -> tensor<8xf32>
  %s = kiln.add %x, %q : (tensor<8xf32>, tensor<8xf32>) -> tensor<8xf32>
  %u = kiln.mul %s, %c : (tensor<8xf32>, tensor<f32>) -> tensor<8xf32>
  %t = kiln.tanh %u : tensor<8xf32>
  %o = kiln.add %t, %one : (tensor<8xf32>, tensor<f32>) -> tensor<8xf32>
  %y = kiln.mul %a, %o : (tensor<8xf32>, tensor<8xf32>) -> tensor<8xf32>
  return %y : tensor<8xf32>
}

// -----

// Must not fire: the erf argument is another value than the gated one.
// CHECK-LABEL: func.func @other_value
// CHECK-NOT: kiln.gelu
func.func @other_value(%x: tensor<8xf32>, %z: tensor<8xf32>) -> tensor<8xf32> {
  %half = kiln.constant dense<0.5> : tensor<f32>
  %r = kiln.constant dense<0.707106769> : tensor<f32>
  %one = kiln.constant dense<1.0> : tensor<f32>
  %d = kiln.mul %z, %r : (tensor<8xf32>, tensor<f32>) -> tensor<8xf32>
  %e = kiln.erf %d : tensor<8xf32>
  %o = kiln.add %e, %one : (tensor<8xf32>, tensor<f32>) -> tensor<8xf32>
  %a = kiln.mul %x, %half : (tensor<8xf32>, tensor<f32>) -> tensor<8xf32>
  %y = kiln.mul %a, %o : (tensor<8xf32>, tensor<8xf32>) -> tensor<8xf32>
  return %y : tensor<8xf32>
}

// -----

// Must not fire: quick GELU x * sigmoid(1.702 x) is a different function.
// CHECK-LABEL: func.func @quick_gelu
// CHECK-NOT: kiln.gelu
func.func @quick_gelu(%x: tensor<8xf32>) -> tensor<8xf32> {
  %k = kiln.constant dense<1.702> : tensor<f32>
  %a = kiln.mul %x, %k : (tensor<8xf32>, tensor<f32>) -> tensor<8xf32>
  %s = kiln.sigmoid %a : tensor<8xf32>
  %y = kiln.mul %x, %s : (tensor<8xf32>, tensor<8xf32>) -> tensor<8xf32>
  return %y : tensor<8xf32>
}

// -----

// Must not fire: without the 0.5 it is 2 * GELU.
// CHECK-LABEL: func.func @no_half
// CHECK-NOT: kiln.gelu
func.func @no_half(%x: tensor<8xf32>) -> tensor<8xf32> {
  %r = kiln.constant dense<0.707106769> : tensor<f32>
  %one = kiln.constant dense<1.0> : tensor<f32>
  %d = kiln.mul %x, %r : (tensor<8xf32>, tensor<f32>) -> tensor<8xf32>
  %e = kiln.erf %d : tensor<8xf32>
  %o = kiln.add %e, %one : (tensor<8xf32>, tensor<f32>) -> tensor<8xf32>
  %y = kiln.mul %x, %o : (tensor<8xf32>, tensor<8xf32>) -> tensor<8xf32>
  return %y : tensor<8xf32>
}
