// RUN: kiln-opt %s -kiln-raise-norms -split-input-file | FileCheck %s

// Optimum / torch.onnx: pow, mean, add eps, sqrt, 1/x, mul x, mul w.
// CHECK-LABEL: func.func @optimum
// CHECK-SAME: (%[[X:.+]]: tensor<?x?x64xf32, #kiln.dims<[b, s]>>, %[[W:.+]]: tensor<64xf32>)
// CHECK: %[[Y:.+]] = kiln.rms_norm %[[X]], %[[W]] {axis = 2 : i64, epsilon = 9.99999997E-7 : f32} : (tensor<?x?x64xf32, #kiln.dims<[b, s]>>, tensor<64xf32>) -> tensor<?x?x64xf32, #kiln.dims<[b, s]>>
// CHECK-NEXT: return %[[Y]]
func.func @optimum(%x: tensor<?x?x64xf32, #kiln.dims<[b, s]>>, %w: tensor<64xf32>) -> tensor<?x?x64xf32, #kiln.dims<[b, s]>> {
  %two = kiln.constant dense<2.0> : tensor<f32>
  %eps = kiln.constant dense<1.0e-6> : tensor<f32>
  %one = kiln.constant dense<1.0> : tensor<f32>
  %sq = kiln.pow %x, %two : (tensor<?x?x64xf32, #kiln.dims<[b, s]>>, tensor<f32>) -> tensor<?x?x64xf32, #kiln.dims<[b, s]>>
  %m = kiln.reduce_mean %sq {axes = array<i64: 2>, keepdims} : tensor<?x?x64xf32, #kiln.dims<[b, s]>> -> tensor<?x?x1xf32, #kiln.dims<[b, s]>>
  %v = kiln.add %m, %eps : (tensor<?x?x1xf32, #kiln.dims<[b, s]>>, tensor<f32>) -> tensor<?x?x1xf32, #kiln.dims<[b, s]>>
  %r = kiln.sqrt %v : tensor<?x?x1xf32, #kiln.dims<[b, s]>>
  %i = kiln.div %one, %r : (tensor<f32>, tensor<?x?x1xf32, #kiln.dims<[b, s]>>) -> tensor<?x?x1xf32, #kiln.dims<[b, s]>>
  %n = kiln.mul %x, %i : (tensor<?x?x64xf32, #kiln.dims<[b, s]>>, tensor<?x?x1xf32, #kiln.dims<[b, s]>>) -> tensor<?x?x64xf32, #kiln.dims<[b, s]>>
  %y = kiln.mul %n, %w : (tensor<?x?x64xf32, #kiln.dims<[b, s]>>, tensor<64xf32>) -> tensor<?x?x64xf32, #kiln.dims<[b, s]>>
  return %y : tensor<?x?x64xf32, #kiln.dims<[b, s]>>
}

// -----

// Dynamo: x * x, eps first, reciprocal, weight first.
// CHECK-LABEL: func.func @dynamo
// CHECK: kiln.rms_norm %arg0, %arg1 {axis = 1 : i64, epsilon = 9.99999974E-6 : f32}
// CHECK-NOT: kiln.reduce_mean
func.func @dynamo(%x: tensor<4x8xf32>, %w: tensor<8xf32>) -> tensor<4x8xf32> {
  %eps = kiln.constant dense<1.0e-5> : tensor<1xf32>
  %sq = kiln.mul %x, %x : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
  %m = kiln.reduce_mean %sq {axes = array<i64: 1>, keepdims} : tensor<4x8xf32> -> tensor<4x1xf32>
  %v = kiln.add %eps, %m : (tensor<1xf32>, tensor<4x1xf32>) -> tensor<4x1xf32>
  %r = kiln.sqrt %v : tensor<4x1xf32>
  %i = kiln.reciprocal %r : tensor<4x1xf32>
  %n = kiln.mul %i, %x : (tensor<4x1xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
  %y = kiln.mul %w, %n : (tensor<8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
  return %y : tensor<4x8xf32>
}

// -----

// x / sqrt(...) directly.
// CHECK-LABEL: func.func @divide
// CHECK: kiln.rms_norm %arg0, %arg1 {axis = 1 : i64
func.func @divide(%x: tensor<4x8xf32>, %w: tensor<8xf32>) -> tensor<4x8xf32> {
  %two = kiln.constant dense<2.0> : tensor<f32>
  %eps = kiln.constant dense<1.0e-5> : tensor<f32>
  %sq = kiln.pow %x, %two : (tensor<4x8xf32>, tensor<f32>) -> tensor<4x8xf32>
  %m = kiln.reduce_mean %sq {axes = array<i64: 1>, keepdims} : tensor<4x8xf32> -> tensor<4x1xf32>
  %v = kiln.add %m, %eps : (tensor<4x1xf32>, tensor<f32>) -> tensor<4x1xf32>
  %r = kiln.sqrt %v : tensor<4x1xf32>
  %n = kiln.div %x, %r : (tensor<4x8xf32>, tensor<4x1xf32>) -> tensor<4x8xf32>
  %y = kiln.mul %n, %w : (tensor<4x8xf32>, tensor<8xf32>) -> tensor<4x8xf32>
  return %y : tensor<4x8xf32>
}

// -----

// Must not fire: the mean is over the first axis.
// CHECK-LABEL: func.func @wrong_axis
// CHECK-NOT: kiln.rms_norm
// CHECK: kiln.reduce_mean
func.func @wrong_axis(%x: tensor<8x8xf32>, %w: tensor<8xf32>) -> tensor<8x8xf32> {
  %two = kiln.constant dense<2.0> : tensor<f32>
  %eps = kiln.constant dense<1.0e-5> : tensor<f32>
  %sq = kiln.pow %x, %two : (tensor<8x8xf32>, tensor<f32>) -> tensor<8x8xf32>
  %m = kiln.reduce_mean %sq {axes = array<i64: 0>, keepdims} : tensor<8x8xf32> -> tensor<1x8xf32>
  %v = kiln.add %m, %eps : (tensor<1x8xf32>, tensor<f32>) -> tensor<1x8xf32>
  %r = kiln.sqrt %v : tensor<1x8xf32>
  %n = kiln.div %x, %r : (tensor<8x8xf32>, tensor<1x8xf32>) -> tensor<8x8xf32>
  %y = kiln.mul %n, %w : (tensor<8x8xf32>, tensor<8xf32>) -> tensor<8x8xf32>
  return %y : tensor<8x8xf32>
}

// -----

// Must not fire: the squared value is not the normalized one.
// CHECK-LABEL: func.func @other_value
// CHECK-NOT: kiln.rms_norm
func.func @other_value(%x: tensor<4x8xf32>, %z: tensor<4x8xf32>, %w: tensor<8xf32>) -> tensor<4x8xf32> {
  %two = kiln.constant dense<2.0> : tensor<f32>
  %eps = kiln.constant dense<1.0e-5> : tensor<f32>
  %sq = kiln.pow %z, %two : (tensor<4x8xf32>, tensor<f32>) -> tensor<4x8xf32>
  %m = kiln.reduce_mean %sq {axes = array<i64: 1>, keepdims} : tensor<4x8xf32> -> tensor<4x1xf32>
  %v = kiln.add %m, %eps : (tensor<4x1xf32>, tensor<f32>) -> tensor<4x1xf32>
  %r = kiln.sqrt %v : tensor<4x1xf32>
  %n = kiln.div %x, %r : (tensor<4x8xf32>, tensor<4x1xf32>) -> tensor<4x8xf32>
  %y = kiln.mul %n, %w : (tensor<4x8xf32>, tensor<8xf32>) -> tensor<4x8xf32>
  return %y : tensor<4x8xf32>
}

// -----

// Must not fire: eps is computed, not a constant.
// CHECK-LABEL: func.func @computed_eps
// CHECK-NOT: kiln.rms_norm
func.func @computed_eps(%x: tensor<4x8xf32>, %e: tensor<f32>, %w: tensor<8xf32>) -> tensor<4x8xf32> {
  %two = kiln.constant dense<2.0> : tensor<f32>
  %sq = kiln.pow %x, %two : (tensor<4x8xf32>, tensor<f32>) -> tensor<4x8xf32>
  %m = kiln.reduce_mean %sq {axes = array<i64: 1>, keepdims} : tensor<4x8xf32> -> tensor<4x1xf32>
  %v = kiln.add %m, %e : (tensor<4x1xf32>, tensor<f32>) -> tensor<4x1xf32>
  %r = kiln.sqrt %v : tensor<4x1xf32>
  %n = kiln.div %x, %r : (tensor<4x8xf32>, tensor<4x1xf32>) -> tensor<4x8xf32>
  %y = kiln.mul %n, %w : (tensor<4x8xf32>, tensor<8xf32>) -> tensor<4x8xf32>
  return %y : tensor<4x8xf32>
}

// -----

// Must not fire: the scale is a full tensor, not a per-channel weight.
// CHECK-LABEL: func.func @full_scale
// CHECK-NOT: kiln.rms_norm
func.func @full_scale(%x: tensor<4x8xf32>, %w: tensor<4x8xf32>) -> tensor<4x8xf32> {
  %two = kiln.constant dense<2.0> : tensor<f32>
  %eps = kiln.constant dense<1.0e-5> : tensor<f32>
  %sq = kiln.pow %x, %two : (tensor<4x8xf32>, tensor<f32>) -> tensor<4x8xf32>
  %m = kiln.reduce_mean %sq {axes = array<i64: 1>, keepdims} : tensor<4x8xf32> -> tensor<4x1xf32>
  %v = kiln.add %m, %eps : (tensor<4x1xf32>, tensor<f32>) -> tensor<4x1xf32>
  %r = kiln.sqrt %v : tensor<4x1xf32>
  %n = kiln.div %x, %r : (tensor<4x8xf32>, tensor<4x1xf32>) -> tensor<4x8xf32>
  %y = kiln.mul %n, %w : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
  return %y : tensor<4x8xf32>
}

// -----

// Must not fire: pow with an exponent other than 2.
// CHECK-LABEL: func.func @cube
// CHECK-NOT: kiln.rms_norm
func.func @cube(%x: tensor<4x8xf32>, %w: tensor<8xf32>) -> tensor<4x8xf32> {
  %three = kiln.constant dense<3.0> : tensor<f32>
  %eps = kiln.constant dense<1.0e-5> : tensor<f32>
  %sq = kiln.pow %x, %three : (tensor<4x8xf32>, tensor<f32>) -> tensor<4x8xf32>
  %m = kiln.reduce_mean %sq {axes = array<i64: 1>, keepdims} : tensor<4x8xf32> -> tensor<4x1xf32>
  %v = kiln.add %m, %eps : (tensor<4x1xf32>, tensor<f32>) -> tensor<4x1xf32>
  %r = kiln.sqrt %v : tensor<4x1xf32>
  %n = kiln.div %x, %r : (tensor<4x8xf32>, tensor<4x1xf32>) -> tensor<4x8xf32>
  %y = kiln.mul %n, %w : (tensor<4x8xf32>, tensor<8xf32>) -> tensor<4x8xf32>
  return %y : tensor<4x8xf32>
}
