// RUN: kiln-opt %s -split-input-file -verify-diagnostics

func.func @add_no_broadcast(%a: tensor<4xf32>, %b: tensor<5xf32>) {
  // expected-error @+1 {{operand shapes 'tensor<4xf32>' and 'tensor<5xf32>' do not broadcast}}
  %0 = kiln.add %a, %b : (tensor<4xf32>, tensor<5xf32>) -> tensor<4xf32>
  return
}

// -----

func.func @compare_needs_i1(%a: tensor<4xf32>) {
  // expected-error @+1 {{result element type must be 'i1', got 'f32'}}
  %0 = kiln.less %a, %a : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  return
}

// -----

func.func @dims_count(%a: tensor<?x4xf32, #kiln.dims<[b, s]>>) {
  return
}
// expected-error @-3 {{#kiln.dims names 2 dimensions but the tensor has 1 dynamic dimensions}}

// -----

// expected-error @+1 {{#kiln.quant supports 4 or 8 bits, got 3}}
kiln.global @q : !kiln.qtensor<8x64, #kiln.quant<u3, group = 32, axis = 1, scale = f32, zero_point = none>> []

// -----

// expected-error @+1 {{dimension 1 (64) is not a multiple of the group size 48}}
kiln.global @q : !kiln.qtensor<8x64, #kiln.quant<u4, group = 48, axis = 1, scale = f32, zero_point = none>> []

// -----

// expected-error @+1 {{blob 0 of 'w' holds 100 bytes, expected 128}}
kiln.global @w : tensor<4x8xf32> [#kiln.blob<"w.bin", offset = 0, size = 100>]

// -----

// expected-error @+1 {{needs 3 blob(s)}}
kiln.global @q : !kiln.qtensor<8x64, #kiln.quant<u4, group = 32, axis = 1, scale = f32, zero_point = int>> [#kiln.blob<"w.bin", offset = 0, size = 256>]

// -----

kiln.global @w : tensor<4x8xf32> [#kiln.blob<"w.bin", offset = 0, size = 128>]
func.func @weight_type() {
  // expected-error @+1 {{type 'tensor<8x4xf32>' differs from the type 'tensor<4x8xf32>' of global 'w'}}
  %0 = kiln.weight @w : tensor<8x4xf32>
  return
}

// -----

func.func @weight_missing() {
  // expected-error @+1 {{'nope' does not name a kiln.global}}
  %0 = kiln.weight @nope : tensor<8x4xf32>
  return
}

// -----

func.func @matmul_contraction(%a: tensor<2x3xf32>, %b: tensor<4x5xf32>) {
  // expected-error @+1 {{contraction dimensions differ: 3 vs 4}}
  %0 = kiln.matmul %a, %b : (tensor<2x3xf32>, tensor<4x5xf32>) -> tensor<2x5xf32>
  return
}

// -----

func.func @transpose_perm(%a: tensor<2x3xf32>) {
  // expected-error @+1 {{perm must be a permutation of [0, rank)}}
  %0 = kiln.transpose %a {perm = array<i64: 0, 0>} : tensor<2x3xf32> -> tensor<2x2xf32>
  return
}

// -----

func.func @reshape_count(%a: tensor<2x3xf32>) {
  // expected-error @+1 {{element counts differ: 6 vs 8}}
  %0 = kiln.reshape %a : tensor<2x3xf32> -> tensor<4x2xf32>
  return
}

// -----

func.func @concat_dims(%a: tensor<2x3xf32>, %b: tensor<2x4xf32>) {
  // expected-error @+1 {{operands differ in dimension 1: 3 vs 4}}
  %0 = kiln.concat %a, %b {axis = 0 : i64} : (tensor<2x3xf32>, tensor<2x4xf32>) -> tensor<4x3xf32>
  return
}

// -----

func.func @split_sum(%a: tensor<2x8xf32>) {
  // expected-error @+1 {{pieces add up to 6 along axis 1, expected 8}}
  %0:2 = kiln.split %a {axis = 1 : i64} : tensor<2x8xf32> -> (tensor<2x3xf32>, tensor<2x3xf32>)
  return
}

// -----

func.func @gather_shape(%t: tensor<100x64xf32>, %i: tensor<3xi64>) {
  // expected-error @+1 {{result dimension 0 is 4, expected 3}}
  %0 = kiln.gather %t, %i {axis = 0 : i64} : (tensor<100x64xf32>, tensor<3xi64>) -> tensor<4x64xf32>
  return
}

// -----

func.func @softmax_axis(%a: tensor<2x8xf32>) {
  // expected-error @+1 {{axis 2 is out of range for rank 2}}
  %0 = kiln.softmax %a {axis = 2 : i64} : tensor<2x8xf32>
  return
}

// -----

func.func @reduce_axes(%a: tensor<2x8xf32>) {
  // expected-error @+1 {{axes must be sorted and unique}}
  %0 = kiln.reduce_sum %a {axes = array<i64: 1, 0>} : tensor<2x8xf32> -> tensor<f32>
  return
}

// -----

func.func @rms_norm_scale(%a: tensor<2x8xf32>, %g: tensor<7xf32>) {
  // expected-error @+1 {{does not broadcast to the normalized dimensions}}
  %0 = kiln.rms_norm %a, %g {axis = 1 : i64, epsilon = 1.0e-5 : f32} : (tensor<2x8xf32>, tensor<7xf32>) -> tensor<2x8xf32>
  return
}

// -----

func.func @gelu_mode(%a: tensor<8xf32>) {
  // expected-error @+1 {{approximate must be "none" or "tanh", got "fast"}}
  %0 = kiln.gelu %a {approximate = "fast"} : tensor<8xf32>
  return
}

// -----

func.func @attention_heads(%q: tensor<1x6x4x16xf32>, %k: tensor<1x4x4x16xf32>) {
  // expected-error @+1 {{query heads (6) must be a multiple of KV heads (4)}}
  %0 = kiln.attention %q, %k, %k {scale = 0.25 : f32} : (tensor<1x6x4x16xf32>, tensor<1x4x4x16xf32>, tensor<1x4x4x16xf32>) -> tensor<1x6x4x16xf32>
  return
}

// -----

func.func @rotary_dim(%q: tensor<1x6x4x16xf32>, %c: tensor<128x8xf32>, %p: tensor<1x4xi64>) {
  // expected-error @+1 {{rotary_dim must be even, positive and at most the head dimension, got 18}}
  %0 = kiln.rotary %q, %c, %c, %p {rotary_dim = 18 : i64} : (tensor<1x6x4x16xf32>, tensor<128x8xf32>, tensor<128x8xf32>, tensor<1x4xi64>) -> tensor<1x6x4x16xf32>
  return
}

// -----

func.func @kv_layer(%c: !kiln.kv_cache<layers = 2, heads = 2, head_dim = 16, block = 16, f32>, %k: tensor<3x2x16xf32>, %s: tensor<3xi64>) {
  // expected-error @+1 {{layer 2 is out of range for 2 layers}}
  kiln.kv_cache_write %c, %k, %k, %s {layer = 2 : i64} : !kiln.kv_cache<layers = 2, heads = 2, head_dim = 16, block = 16, f32>, tensor<3x2x16xf32>, tensor<3x2x16xf32>, tensor<3xi64>
  return
}
