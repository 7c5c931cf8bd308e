// RUN: kiln-opt %s -kiln-raise-attention -split-input-file | FileCheck %s

// Optimum Llama with GQA: scale split between q and k^T, float mask,
// NaN guard, keys and values repeated (repeat_kv).
// CHECK-LABEL: func.func @gqa
// CHECK-SAME: (%[[Q:[a-z0-9]+]]: {{.*}}, %[[K:[a-z0-9]+]]: {{.*}}, %[[V:[a-z0-9]+]]: {{.*}}, %[[M:[a-z0-9]+]]: {{.*}})
// CHECK: %[[O:.+]] = kiln.attention %[[Q]], %[[K]], %[[V]] mask(%[[M]]) {scale = 2.500000e-01 : f32} : (tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>, tensor<?x2x?x16xf32, #kiln.dims<[b, t]>>, tensor<?x2x?x16xf32, #kiln.dims<[b, t]>>, tensor<?x1x?x?xf32, #kiln.dims<[b, s, t]>>) -> tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>
// CHECK-NEXT: return %[[O]]
func.func @gqa(%q: tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>, %k: tensor<?x2x?x16xf32, #kiln.dims<[b, t]>>,
               %v: tensor<?x2x?x16xf32, #kiln.dims<[b, t]>>, %m: tensor<?x1x?x?xf32, #kiln.dims<[b, s, t]>>) -> tensor<?x4x?x16xf32, #kiln.dims<[b, s]>> {
  %c = kiln.constant dense<0.5> : tensor<f32>
  %zero = kiln.constant dense<0.0> : tensor<1xf32>
  %k5 = kiln.reshape %k : tensor<?x2x?x16xf32, #kiln.dims<[b, t]>> -> tensor<?x2x1x?x16xf32, #kiln.dims<[b, t]>>
  %ke = kiln.expand %k5 : (tensor<?x2x1x?x16xf32, #kiln.dims<[b, t]>>) -> tensor<?x2x2x?x16xf32, #kiln.dims<[b, t]>>
  %kr = kiln.reshape %ke : tensor<?x2x2x?x16xf32, #kiln.dims<[b, t]>> -> tensor<?x4x?x16xf32, #kiln.dims<[b, t]>>
  %v5 = kiln.reshape %v : tensor<?x2x?x16xf32, #kiln.dims<[b, t]>> -> tensor<?x2x1x?x16xf32, #kiln.dims<[b, t]>>
  %ve = kiln.expand %v5 : (tensor<?x2x1x?x16xf32, #kiln.dims<[b, t]>>) -> tensor<?x2x2x?x16xf32, #kiln.dims<[b, t]>>
  %vr = kiln.reshape %ve : tensor<?x2x2x?x16xf32, #kiln.dims<[b, t]>> -> tensor<?x4x?x16xf32, #kiln.dims<[b, t]>>
  %kt = kiln.transpose %kr {perm = array<i64: 0, 1, 3, 2>} : tensor<?x4x?x16xf32, #kiln.dims<[b, t]>> -> tensor<?x4x16x?xf32, #kiln.dims<[b, t]>>
  %qs = kiln.mul %q, %c : (tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>, tensor<f32>) -> tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>
  %ks = kiln.mul %kt, %c : (tensor<?x4x16x?xf32, #kiln.dims<[b, t]>>, tensor<f32>) -> tensor<?x4x16x?xf32, #kiln.dims<[b, t]>>
  %sc = kiln.matmul %qs, %ks : (tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>, tensor<?x4x16x?xf32, #kiln.dims<[b, t]>>) -> tensor<?x4x?x?xf32, #kiln.dims<[b, s, t]>>
  %ad = kiln.add %sc, %m : (tensor<?x4x?x?xf32, #kiln.dims<[b, s, t]>>, tensor<?x1x?x?xf32, #kiln.dims<[b, s, t]>>) -> tensor<?x4x?x?xf32, #kiln.dims<[b, s, t]>>
  %p = kiln.softmax %ad {axis = 3 : i64} : tensor<?x4x?x?xf32, #kiln.dims<[b, s, t]>>
  %n = kiln.is_nan %p : tensor<?x4x?x?xf32, #kiln.dims<[b, s, t]>> -> tensor<?x4x?x?xi1, #kiln.dims<[b, s, t]>>
  %g = kiln.where %n, %zero, %p : (tensor<?x4x?x?xi1, #kiln.dims<[b, s, t]>>, tensor<1xf32>, tensor<?x4x?x?xf32, #kiln.dims<[b, s, t]>>) -> tensor<?x4x?x?xf32, #kiln.dims<[b, s, t]>>
  %o = kiln.matmul %g, %vr : (tensor<?x4x?x?xf32, #kiln.dims<[b, s, t]>>, tensor<?x4x?x16xf32, #kiln.dims<[b, t]>>) -> tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>
  return %o : tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>
}

// -----

// GPT-2 style: no mask, scores divided by sqrt(d) after the matmul.
// CHECK-LABEL: func.func @divided_scores
// CHECK: kiln.attention %arg0, %arg1, %arg2 {scale = 2.500000e-01 : f32} : (tensor<1x4x8x16xf32>, tensor<1x4x8x16xf32>, tensor<1x4x8x16xf32>) -> tensor<1x4x8x16xf32>
func.func @divided_scores(%q: tensor<1x4x8x16xf32>, %k: tensor<1x4x8x16xf32>, %v: tensor<1x4x8x16xf32>) -> tensor<1x4x8x16xf32> {
  %d = kiln.constant dense<4.0> : tensor<f32>
  %kt = kiln.transpose %k {perm = array<i64: 0, 1, 3, 2>} : tensor<1x4x8x16xf32> -> tensor<1x4x16x8xf32>
  %sc = kiln.matmul %q, %kt : (tensor<1x4x8x16xf32>, tensor<1x4x16x8xf32>) -> tensor<1x4x8x8xf32>
  %s2 = kiln.div %sc, %d : (tensor<1x4x8x8xf32>, tensor<f32>) -> tensor<1x4x8x8xf32>
  %p = kiln.softmax %s2 {axis = 3 : i64} : tensor<1x4x8x8xf32>
  %o = kiln.matmul %p, %v : (tensor<1x4x8x8xf32>, tensor<1x4x8x16xf32>) -> tensor<1x4x8x16xf32>
  return %o : tensor<1x4x8x16xf32>
}

// -----

// Scale on the scores and a mask: the factor counts once (0.25, not its
// square).
// CHECK-LABEL: func.func @scaled_scores_with_mask
// CHECK: kiln.attention %arg0, %arg1, %arg2 mask(%arg3) {scale = 2.500000e-01 : f32}
func.func @scaled_scores_with_mask(%q: tensor<1x4x8x16xf32>, %k: tensor<1x4x8x16xf32>, %v: tensor<1x4x8x16xf32>, %m: tensor<1x1x8x8xf32>) -> tensor<1x4x8x16xf32> {
  %c = kiln.constant dense<0.25> : tensor<f32>
  %kt = kiln.transpose %k {perm = array<i64: 0, 1, 3, 2>} : tensor<1x4x8x16xf32> -> tensor<1x4x16x8xf32>
  %sc = kiln.matmul %q, %kt : (tensor<1x4x8x16xf32>, tensor<1x4x16x8xf32>) -> tensor<1x4x8x8xf32>
  %s2 = kiln.mul %sc, %c : (tensor<1x4x8x8xf32>, tensor<f32>) -> tensor<1x4x8x8xf32>
  %ad = kiln.add %s2, %m : (tensor<1x4x8x8xf32>, tensor<1x1x8x8xf32>) -> tensor<1x4x8x8xf32>
  %p = kiln.softmax %ad {axis = 3 : i64} : tensor<1x4x8x8xf32>
  %o = kiln.matmul %p, %v : (tensor<1x4x8x8xf32>, tensor<1x4x8x16xf32>) -> tensor<1x4x8x16xf32>
  return %o : tensor<1x4x8x16xf32>
}

// -----

// Gemma 2's soft-capping: scores * 0.25, / 50, tanh, * 50, + mask.
// CHECK-LABEL: func.func @softcap
// CHECK: kiln.attention %arg0, %arg1, %arg2 mask(%arg3) {scale = 2.500000e-01 : f32, softcap = 5.000000e+01 : f32}
func.func @softcap(%q: tensor<1x4x8x16xf32>, %k: tensor<1x4x8x16xf32>, %v: tensor<1x4x8x16xf32>, %m: tensor<1x1x8x8xf32>) -> tensor<1x4x8x16xf32> {
  %c = kiln.constant dense<0.25> : tensor<f32>
  %cap = kiln.constant dense<50.0> : tensor<f32>
  %kt = kiln.transpose %k {perm = array<i64: 0, 1, 3, 2>} : tensor<1x4x8x16xf32> -> tensor<1x4x16x8xf32>
  %sc = kiln.matmul %q, %kt : (tensor<1x4x8x16xf32>, tensor<1x4x16x8xf32>) -> tensor<1x4x8x8xf32>
  %s2 = kiln.mul %sc, %c : (tensor<1x4x8x8xf32>, tensor<f32>) -> tensor<1x4x8x8xf32>
  %s3 = kiln.div %s2, %cap : (tensor<1x4x8x8xf32>, tensor<f32>) -> tensor<1x4x8x8xf32>
  %t = kiln.tanh %s3 : tensor<1x4x8x8xf32>
  %s4 = kiln.mul %t, %cap : (tensor<1x4x8x8xf32>, tensor<f32>) -> tensor<1x4x8x8xf32>
  %ad = kiln.add %s4, %m : (tensor<1x4x8x8xf32>, tensor<1x1x8x8xf32>) -> tensor<1x4x8x8xf32>
  %p = kiln.softmax %ad {axis = 3 : i64} : tensor<1x4x8x8xf32>
  %o = kiln.matmul %p, %v : (tensor<1x4x8x8xf32>, tensor<1x4x8x16xf32>) -> tensor<1x4x8x16xf32>
  return %o : tensor<1x4x8x16xf32>
}

// -----

// torch dynamo: k^T through merged heads: [B*H, T, D] -> [0, 2, 1] -> split.
// CHECK-LABEL: func.func @merged_transpose
// CHECK: kiln.attention %arg0, %arg1, %arg2 {scale = 1.000000e+00 : f32}
func.func @merged_transpose(%q: tensor<2x4x8x16xf32>, %k: tensor<2x4x8x16xf32>, %v: tensor<2x4x8x16xf32>) -> tensor<2x4x8x16xf32> {
  %m = kiln.reshape %k : tensor<2x4x8x16xf32> -> tensor<8x8x16xf32>
  %t = kiln.transpose %m {perm = array<i64: 0, 2, 1>} : tensor<8x8x16xf32> -> tensor<8x16x8xf32>
  %kt = kiln.reshape %t : tensor<8x16x8xf32> -> tensor<2x4x16x8xf32>
  %sc = kiln.matmul %q, %kt : (tensor<2x4x8x16xf32>, tensor<2x4x16x8xf32>) -> tensor<2x4x8x8xf32>
  %p = kiln.softmax %sc {axis = 3 : i64} : tensor<2x4x8x8xf32>
  %o = kiln.matmul %p, %v : (tensor<2x4x8x8xf32>, tensor<2x4x8x16xf32>) -> tensor<2x4x8x16xf32>
  return %o : tensor<2x4x8x16xf32>
}

// -----

// Must not fire: softmax over the query axis.
// CHECK-LABEL: func.func @softmax_axis
// CHECK-NOT: kiln.attention
func.func @softmax_axis(%q: tensor<1x4x8x16xf32>, %k: tensor<1x4x8x16xf32>, %v: tensor<1x4x8x16xf32>) -> tensor<1x4x8x16xf32> {
  %kt = kiln.transpose %k {perm = array<i64: 0, 1, 3, 2>} : tensor<1x4x8x16xf32> -> tensor<1x4x16x8xf32>
  %sc = kiln.matmul %q, %kt : (tensor<1x4x8x16xf32>, tensor<1x4x16x8xf32>) -> tensor<1x4x8x8xf32>
  %p = kiln.softmax %sc {axis = 2 : i64} : tensor<1x4x8x8xf32>
  %o = kiln.matmul %p, %v : (tensor<1x4x8x8xf32>, tensor<1x4x8x16xf32>) -> tensor<1x4x8x16xf32>
  return %o : tensor<1x4x8x16xf32>
}

// -----

// Must not fire: the "key" is not transposed (q @ k, not q @ k^T).
// CHECK-LABEL: func.func @no_transpose
// CHECK-NOT: kiln.attention
func.func @no_transpose(%q: tensor<1x4x8x8xf32>, %k: tensor<1x4x8x8xf32>, %v: tensor<1x4x8x16xf32>) -> tensor<1x4x8x16xf32> {
  %sc = kiln.matmul %q, %k : (tensor<1x4x8x8xf32>, tensor<1x4x8x8xf32>) -> tensor<1x4x8x8xf32>
  %p = kiln.softmax %sc {axis = 3 : i64} : tensor<1x4x8x8xf32>
  %o = kiln.matmul %p, %v : (tensor<1x4x8x8xf32>, tensor<1x4x8x16xf32>) -> tensor<1x4x8x16xf32>
  return %o : tensor<1x4x8x16xf32>
}

// -----

// Must not fire: the scale is computed at run time.
// CHECK-LABEL: func.func @runtime_scale
// CHECK-NOT: kiln.attention
func.func @runtime_scale(%q: tensor<1x4x8x16xf32>, %k: tensor<1x4x8x16xf32>, %v: tensor<1x4x8x16xf32>, %s: tensor<f32>) -> tensor<1x4x8x16xf32> {
  %kt = kiln.transpose %k {perm = array<i64: 0, 1, 3, 2>} : tensor<1x4x8x16xf32> -> tensor<1x4x16x8xf32>
  %sc = kiln.matmul %q, %kt : (tensor<1x4x8x16xf32>, tensor<1x4x16x8xf32>) -> tensor<1x4x8x8xf32>
  %s2 = kiln.mul %sc, %s : (tensor<1x4x8x8xf32>, tensor<f32>) -> tensor<1x4x8x8xf32>
  %p = kiln.softmax %s2 {axis = 3 : i64} : tensor<1x4x8x8xf32>
  %o = kiln.matmul %p, %v : (tensor<1x4x8x8xf32>, tensor<1x4x8x16xf32>) -> tensor<1x4x8x16xf32>
  return %o : tensor<1x4x8x16xf32>
}

// -----

// Must not fire: a NaN guard that replaces NaN with something other than 0
// changes the result; the softmax stays.
// CHECK-LABEL: func.func @other_guard
// CHECK-NOT: kiln.attention
func.func @other_guard(%q: tensor<1x4x8x16xf32>, %k: tensor<1x4x8x16xf32>, %v: tensor<1x4x8x16xf32>) -> tensor<1x4x8x16xf32> {
  %one = kiln.constant dense<1.0> : tensor<f32>
  %kt = kiln.transpose %k {perm = array<i64: 0, 1, 3, 2>} : tensor<1x4x8x16xf32> -> tensor<1x4x16x8xf32>
  %sc = kiln.matmul %q, %kt : (tensor<1x4x8x16xf32>, tensor<1x4x16x8xf32>) -> tensor<1x4x8x8xf32>
  %p = kiln.softmax %sc {axis = 3 : i64} : tensor<1x4x8x8xf32>
  %n = kiln.is_nan %p : tensor<1x4x8x8xf32> -> tensor<1x4x8x8xi1>
  %g = kiln.where %n, %one, %p : (tensor<1x4x8x8xi1>, tensor<f32>, tensor<1x4x8x8xf32>) -> tensor<1x4x8x8xf32>
  %o = kiln.matmul %g, %v : (tensor<1x4x8x8xf32>, tensor<1x4x8x16xf32>) -> tensor<1x4x8x16xf32>
  return %o : tensor<1x4x8x16xf32>
}
