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

func.func @glu_activation(%a: tensor<8xf32>) {
  // expected-error @+1 {{activation must be "silu", "gelu", "gelu_tanh", "relu" or "sigmoid", got "swish"}}
  %0 = kiln.glu %a, %a {activation = "swish"} : tensor<8xf32>
  return
}

// -----

func.func @glu_int(%a: tensor<8xi32>) {
  // expected-error @+1 {{must be ranked tensor of floating-point values}}
  %0 = kiln.glu %a, %a {activation = "relu"} : tensor<8xi32>
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

// -----

//===----------------------------------------------------------------------===//
// kiln.global and kiln.weight
//===----------------------------------------------------------------------===//

// expected-error @+1 {{weight type must have a static shape}}
kiln.global @dynamic : tensor<?x8xf32> []

// -----

// expected-error @+1 {{weight element type must be an integer or float}}
kiln.global @index_elements : tensor<4xindex> []

// -----

// expected-error @+1 {{weight type must be a ranked tensor or !kiln.qtensor, got 'memref<4xf32>'}}
kiln.global @memref : memref<4xf32> []

// -----

// expected-error @+1 {{needs 1 blob(s) for 'tensor<4x8xf32>', got 0}}
kiln.global @no_blob : tensor<4x8xf32> []

// -----

// expected-error @+1 {{needs 1 blob(s) for 'tensor<4x8xf32>', got 2}}
kiln.global @two_blobs : tensor<4x8xf32> [#kiln.blob<"w.bin", offset = 0, size = 128>, #kiln.blob<"w.bin", offset = 128, size = 128>]

// -----

// Booleans take one byte each, not one bit.
// expected-error @+1 {{blob 0 of 'mask' holds 2 bytes, expected 10}}
kiln.global @mask : tensor<10xi1> [#kiln.blob<"w.bin", offset = 0, size = 2>]

// -----

// expected-error @+1 {{needs 2 blob(s) for '!kiln.qtensor<8x64, #kiln.quant<u4, group = 32, axis = 1, scale = f32, zero_point = none>>', got 3}}
kiln.global @q_none : !kiln.qtensor<8x64, #kiln.quant<u4, group = 32, axis = 1, scale = f32, zero_point = none>> [#kiln.blob<"w.bin", offset = 0, size = 256>, #kiln.blob<"w.bin", offset = 256, size = 64>, #kiln.blob<"w.bin", offset = 320, size = 8>]

// -----

// An implied (mid) zero point is not stored.
// expected-error @+1 {{needs 2 blob(s) for '!kiln.qtensor<8x64, #kiln.quant<u4, group = 32, axis = 1, scale = f16, zero_point = mid>>', got 3}}
kiln.global @q_mid : !kiln.qtensor<8x64, #kiln.quant<u4, group = 32, axis = 1, scale = f16, zero_point = mid>> [#kiln.blob<"w.bin", offset = 0, size = 256>, #kiln.blob<"w.bin", offset = 256, size = 32>, #kiln.blob<"w.bin", offset = 288, size = 8>]

// -----

// expected-error @+1 {{needs 3 blob(s) for '!kiln.qtensor<8x64, #kiln.quant<u4, group = 32, axis = 1, scale = f32, zero_point = float>>', got 2}}
kiln.global @q_float_count : !kiln.qtensor<8x64, #kiln.quant<u4, group = 32, axis = 1, scale = f32, zero_point = float>> [#kiln.blob<"w.bin", offset = 0, size = 256>, #kiln.blob<"w.bin", offset = 256, size = 64>]

// -----

// 8 x 64 4-bit values pack into 256 bytes.
// expected-error @+1 {{blob 0 of 'q_data' holds 512 bytes, expected 256}}
kiln.global @q_data : !kiln.qtensor<8x64, #kiln.quant<u4, group = 32, axis = 1, scale = f32, zero_point = none>> [#kiln.blob<"w.bin", offset = 0, size = 512>, #kiln.blob<"w.bin", offset = 512, size = 64>]

// -----

// An odd number of 4-bit values rounds up to a whole byte: 3 x 5 -> 8 bytes.
// expected-error @+1 {{blob 0 of 'q_odd' holds 7 bytes, expected 8}}
kiln.global @q_odd : !kiln.qtensor<3x5, #kiln.quant<i4, axis = -1, scale = f32, zero_point = none>> [#kiln.blob<"w.bin", offset = 0, size = 7>, #kiln.blob<"w.bin", offset = 7, size = 4>]

// -----

// Scales of a grouped scheme: 8 x (64 / 32) f32 values.
// expected-error @+1 {{blob 1 of 'q_scales' holds 32 bytes, expected 64}}
kiln.global @q_scales : !kiln.qtensor<8x64, #kiln.quant<u4, group = 32, axis = 1, scale = f32, zero_point = none>> [#kiln.blob<"w.bin", offset = 0, size = 256>, #kiln.blob<"w.bin", offset = 256, size = 32>]

// -----

// Scales of a per-channel scheme: one per slice along the axis (8 f16).
// expected-error @+1 {{blob 1 of 'q_channel' holds 64 bytes, expected 16}}
kiln.global @q_channel : !kiln.qtensor<8x64, #kiln.quant<i8, axis = 0, scale = f16, zero_point = none>> [#kiln.blob<"w.bin", offset = 0, size = 512>, #kiln.blob<"w.bin", offset = 512, size = 64>]

// -----

// A per-tensor scheme has a single scale.
// expected-error @+1 {{blob 1 of 'q_tensor' holds 8 bytes, expected 4}}
kiln.global @q_tensor : !kiln.qtensor<8x64, #kiln.quant<u8, axis = -1, scale = f32, zero_point = none>> [#kiln.blob<"w.bin", offset = 0, size = 512>, #kiln.blob<"w.bin", offset = 512, size = 8>]

// -----

// Integer zero points are packed like the data: 16 4-bit values -> 8 bytes.
// expected-error @+1 {{blob 2 of 'q_int_zp' holds 16 bytes, expected 8}}
kiln.global @q_int_zp : !kiln.qtensor<8x64, #kiln.quant<u4, group = 32, axis = 1, scale = f32, zero_point = int>> [#kiln.blob<"w.bin", offset = 0, size = 256>, #kiln.blob<"w.bin", offset = 256, size = 64>, #kiln.blob<"w.bin", offset = 320, size = 16>]

// -----

// Float zero points have the scale type: 16 f32 values.
// expected-error @+1 {{blob 2 of 'q_float_zp' holds 8 bytes, expected 64}}
kiln.global @q_float_zp : !kiln.qtensor<8x64, #kiln.quant<u4, group = 32, axis = 1, scale = f32, zero_point = float>> [#kiln.blob<"w.bin", offset = 0, size = 256>, #kiln.blob<"w.bin", offset = 256, size = 64>, #kiln.blob<"w.bin", offset = 320, size = 8>]

// -----

func.func @weight_of_function() {
  // expected-error @+1 {{'weight_of_function' does not name a kiln.global}}
  %0 = kiln.weight @weight_of_function : tensor<4xf32>
  return
}

// -----

func.func @constant_vector() {
  // expected-error @+1 {{result #0 must be ranked tensor of any type values, but got 'vector<4xi32>'}}
  %0 = kiln.constant dense<1> : vector<4xi32>
  return
}

// -----

//===----------------------------------------------------------------------===//
// #kiln.dims
//===----------------------------------------------------------------------===//

// expected-error @+1 {{#kiln.dims entry '8' is a constant; make that dimension static}}
func.func @dims_constant(%a: tensor<?xf32, #kiln.dims<[8]>>) {
  return
}

// -----

// Terms that cancel leave a constant too.
// expected-error @+1 {{#kiln.dims entry '0' is a constant; make that dimension static}}
func.func @dims_cancel(%a: tensor<?xf32, #kiln.dims<[s - s]>>) {
  return
}

// -----

// expected-error @+1 {{expected a dimension expression}}
func.func @dims_dangling_plus(%a: tensor<?xf32, #kiln.dims<[s + ]>>) {
  return
}

// -----

// expected-error @+1 {{malformed dimension expression 'a$b'}}
func.func @dims_bad_symbol(%a: tensor<?xf32, #kiln.dims<[a$b]>>) {
  return
}

// -----

// expected-error @+1 {{malformed dimension expression 's - -3'}}
func.func @dims_double_minus(%a: tensor<?xf32, #kiln.dims<[s - -3]>>) {
  return
}

// -----

//===----------------------------------------------------------------------===//
// #kiln.quant and !kiln.qtensor
//===----------------------------------------------------------------------===//

// expected-error @+1 {{#kiln.quant group size must be >= 0, got -32}}
kiln.global @q : !kiln.qtensor<8x64, #kiln.quant<u4, group = -32, axis = 1>> []

// -----

// expected-error @+1 {{#kiln.quant axis must be >= -1, got -2}}
kiln.global @q : !kiln.qtensor<8x64, #kiln.quant<u4, axis = -2>> []

// -----

// expected-error @+1 {{#kiln.quant per-tensor scheme (axis -1) cannot have a group size}}
kiln.global @q : !kiln.qtensor<8x64, #kiln.quant<u4, group = 32>> []

// -----

// expected-error @+1 {{#kiln.quant scale type must be a float, got 'i32'}}
kiln.global @q : !kiln.qtensor<8x64, #kiln.quant<u4, axis = 1, scale = i32>> []

// -----

// expected-error @+1 {{unknown #kiln.quant key 'bits', expected group, axis, scale or zero_point}}
kiln.global @q : !kiln.qtensor<8x64, #kiln.quant<u4, axis = 1, bits = 4>> []

// -----

// expected-error @+1 {{zero_point must be none, mid, int or float}}
kiln.global @q : !kiln.qtensor<8x64, #kiln.quant<u4, axis = 1, zero_point = half>> []

// -----

// expected-error @+1 {{expected i4, u4, i8 or u8}}
kiln.global @q : !kiln.qtensor<8x64, #kiln.quant<f4, axis = 1>> []

// -----

// expected-error @+1 {{expected i4, u4, i8 or u8}}
kiln.global @q : !kiln.qtensor<8x64, #kiln.quant<i, axis = 1>> []

// -----

// expected-error @+1 {{#kiln.quant supports 4 or 8 bits, got 16}}
kiln.global @q : !kiln.qtensor<8x64, #kiln.quant<i16, axis = 1>> []

// -----

// expected-error @+1 {{!kiln.qtensor needs a static, positive shape}}
kiln.global @q : !kiln.qtensor<0x64, #kiln.quant<u4, axis = 1>> []

// -----

// expected-error @+1 {{expected static shape}}
kiln.global @q : !kiln.qtensor<?x64, #kiln.quant<u4, axis = 1>> []

// -----

// expected-error @+1 {{#kiln.quant axis 2 is out of range for rank 2}}
kiln.global @q : !kiln.qtensor<8x64, #kiln.quant<u4, axis = 2>> []

// -----

//===----------------------------------------------------------------------===//
// Elementwise
//===----------------------------------------------------------------------===//

func.func @binary_element_types(%a: tensor<4xf32>, %b: tensor<4xi32>) {
  // expected-error @+1 {{element types differ: 'f32' vs 'i32'}}
  %0 = kiln.add %a, %b : (tensor<4xf32>, tensor<4xi32>) -> tensor<4xf32>
  return
}

// -----

func.func @arith_result_element(%a: tensor<4xf32>) {
  // expected-error @+1 {{result element type must be 'f32', got 'i1'}}
  %0 = kiln.mul %a, %a : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xi1>
  return
}

// -----

func.func @binary_result_dim(%a: tensor<4x1xf32>, %b: tensor<5xf32>) {
  // expected-error @+1 {{result dimension 1 is 4, expected 5}}
  %0 = kiln.sub %a, %b : (tensor<4x1xf32>, tensor<5xf32>) -> tensor<4x4xf32>
  return
}

// -----

func.func @binary_result_rank(%a: tensor<4xf32>, %b: tensor<2x4xf32>) {
  // expected-error @+1 {{result has rank 1, expected 2}}
  %0 = kiln.pow %a, %b : (tensor<4xf32>, tensor<2x4xf32>) -> tensor<4xf32>
  return
}

// -----

func.func @equal_needs_i1(%a: tensor<4xi64>) {
  // expected-error @+1 {{result element type must be 'i1', got 'i64'}}
  %0 = kiln.equal %a, %a : (tensor<4xi64>, tensor<4xi64>) -> tensor<4xi64>
  return
}

// -----

func.func @greater_equal_needs_i1(%a: tensor<4xf16>) {
  // expected-error @+1 {{result element type must be 'i1', got 'f16'}}
  %0 = kiln.greater_equal %a, %a : (tensor<4xf16>, tensor<4xf16>) -> tensor<4xf16>
  return
}

// -----

func.func @and_needs_i1(%a: tensor<4xi32>) {
  // expected-error @+1 {{operands must be i1 tensors}}
  %0 = kiln.and %a, %a : (tensor<4xi32>, tensor<4xi32>) -> tensor<4xi1>
  return
}

// -----

func.func @or_needs_i1(%a: tensor<4xf32>) {
  // expected-error @+1 {{operands must be i1 tensors}}
  %0 = kiln.or %a, %a : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xi1>
  return
}

// -----

func.func @sqrt_needs_float(%a: tensor<4xi32>) {
  // expected-error @+1 {{expects a float tensor, got 'tensor<4xi32>'}}
  %0 = kiln.sqrt %a : tensor<4xi32>
  return
}

// -----

func.func @exp_needs_float(%a: tensor<4xi64>) {
  // expected-error @+1 {{expects a float tensor, got 'tensor<4xi64>'}}
  %0 = kiln.exp %a : tensor<4xi64>
  return
}

// -----

func.func @not_needs_i1(%a: tensor<4xi8>) {
  // expected-error @+1 {{expects an i1 tensor, got 'tensor<4xi8>'}}
  %0 = kiln.not %a : tensor<4xi8>
  return
}

// -----

func.func @is_nan_shape(%a: tensor<4x8xf32>) {
  // expected-error @+1 {{result dimension 1 is 7, expected 8}}
  %0 = kiln.is_nan %a : tensor<4x8xf32> -> tensor<4x7xi1>
  return
}

// -----

func.func @cast_shape(%a: tensor<4x8xf32>) {
  // expected-error @+1 {{result has rank 1, expected 2}}
  %0 = kiln.cast %a : tensor<4x8xf32> -> tensor<32xi32>
  return
}

// -----

func.func @where_branches(%c: tensor<4xi1>, %a: tensor<4xf32>, %b: tensor<4xf16>) {
  // expected-error @+1 {{element types differ: 'f32' vs 'f16'}}
  %0 = kiln.where %c, %a, %b : (tensor<4xi1>, tensor<4xf32>, tensor<4xf16>) -> tensor<4xf32>
  return
}

// -----

func.func @where_result_element(%c: tensor<4xi1>, %a: tensor<4xf32>) {
  // expected-error @+1 {{element types differ: 'f32' vs 'i1'}}
  %0 = kiln.where %c, %a, %a : (tensor<4xi1>, tensor<4xf32>, tensor<4xf32>) -> tensor<4xi1>
  return
}

// -----

func.func @where_broadcast(%c: tensor<3xi1>, %a: tensor<4xf32>) {
  // expected-error @+1 {{operand shapes 'tensor<3xi1>' and 'tensor<4xf32>' do not broadcast}}
  %0 = kiln.where %c, %a, %a : (tensor<3xi1>, tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  return
}

// -----

func.func @where_result_shape(%c: tensor<2x1xi1>, %a: tensor<4xf32>) {
  // expected-error @+1 {{result has rank 1, expected 2}}
  %0 = kiln.where %c, %a, %a : (tensor<2x1xi1>, tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  return
}

// -----

//===----------------------------------------------------------------------===//
// Normalization
//===----------------------------------------------------------------------===//

func.func @log_softmax_negative_axis(%a: tensor<2x8xf32>) {
  // expected-error @+1 {{axis -1 is out of range for rank 2}}
  %0 = kiln.log_softmax %a {axis = -1 : i64} : tensor<2x8xf32>
  return
}

// -----

func.func @softmax_rank0(%a: tensor<f32>) {
  // expected-error @+1 {{axis 0 is out of range for rank 0}}
  %0 = kiln.softmax %a {axis = 0 : i64} : tensor<f32>
  return
}

// -----

func.func @layer_norm_axis(%a: tensor<2x8xf32>, %g: tensor<8xf32>) {
  // expected-error @+1 {{axis 2 is out of range for rank 2}}
  %0 = kiln.layer_norm %a, %g {axis = 2 : i64, epsilon = 1.0e-5 : f32} : (tensor<2x8xf32>, tensor<8xf32>) -> tensor<2x8xf32>
  return
}

// -----

func.func @rms_norm_epsilon(%a: tensor<2x8xf32>, %g: tensor<8xf32>) {
  // expected-error @+1 {{epsilon must be >= 0, got -1}}
  %0 = kiln.rms_norm %a, %g {axis = 1 : i64, epsilon = -1.0 : f32} : (tensor<2x8xf32>, tensor<8xf32>) -> tensor<2x8xf32>
  return
}

// -----

func.func @layer_norm_bias(%a: tensor<2x8xf32>, %g: tensor<8xf32>, %b: tensor<7xf32>) {
  // expected-error @+1 {{parameter of type 'tensor<7xf32>' does not broadcast to the normalized dimensions of 'tensor<2x8xf32>'}}
  %0 = kiln.layer_norm %a, %g, %b {axis = 1 : i64, epsilon = 1.0e-5 : f32} : (tensor<2x8xf32>, tensor<8xf32>, tensor<7xf32>) -> tensor<2x8xf32>
  return
}

// -----

// A scale of higher rank than the normalized dimensions would broadcast the
// result beyond the input.
func.func @rms_norm_scale_rank(%a: tensor<2x8xf32>, %g: tensor<2x8xf32>) {
  // expected-error @+1 {{parameter of type 'tensor<2x8xf32>' does not broadcast to the normalized dimensions of 'tensor<2x8xf32>'}}
  %0 = kiln.rms_norm %a, %g {axis = 1 : i64, epsilon = 1.0e-5 : f32} : (tensor<2x8xf32>, tensor<2x8xf32>) -> tensor<2x8xf32>
  return
}

// -----

func.func @layer_norm_scale_element(%a: tensor<2x8xf32>, %g: tensor<8xf16>) {
  // expected-error @+1 {{element types differ: 'f32' vs 'f16'}}
  %0 = kiln.layer_norm %a, %g {axis = 1 : i64, epsilon = 1.0e-5 : f32} : (tensor<2x8xf32>, tensor<8xf16>) -> tensor<2x8xf32>
  return
}

// -----

func.func @rms_norm_result(%a: tensor<2x8xf32>, %g: tensor<8xf32>) {
  // expected-error @+1 {{result dimension 0 is 3, expected 2}}
  %0 = kiln.rms_norm %a, %g {axis = 1 : i64, epsilon = 1.0e-5 : f32} : (tensor<2x8xf32>, tensor<8xf32>) -> tensor<3x8xf32>
  return
}

// -----

//===----------------------------------------------------------------------===//
// Linear algebra and quantization
//===----------------------------------------------------------------------===//

func.func @matmul_rank0(%a: tensor<f32>, %b: tensor<4x4xf32>) {
  // expected-error @+1 {{operands must have rank >= 1}}
  %0 = kiln.matmul %a, %b : (tensor<f32>, tensor<4x4xf32>) -> tensor<4xf32>
  return
}

// -----

func.func @matmul_batch(%a: tensor<2x3x4xf32>, %b: tensor<5x4x6xf32>) {
  // expected-error @+1 {{batch dimensions do not broadcast}}
  %0 = kiln.matmul %a, %b : (tensor<2x3x4xf32>, tensor<5x4x6xf32>) -> tensor<2x3x6xf32>
  return
}

// -----

func.func @matmul_accuracy_level(%a: tensor<3x4xf32>, %b: tensor<4x6xf32>) {
  // expected-error @+1 {{attribute 'accuracy_level' failed to satisfy constraint: 64-bit signless integer attribute whose minimum value is 0 whose maximum value is 4}}
  %0 = kiln.matmul %a, %b {accuracy_level = 5 : i64} : (tensor<3x4xf32>, tensor<4x6xf32>) -> tensor<3x6xf32>
  return
}

// -----

func.func @matmul_element(%a: tensor<3x4xf32>, %b: tensor<4x6xf16>) {
  // expected-error @+1 {{element types differ: 'f32' vs 'f16'}}
  %0 = kiln.matmul %a, %b : (tensor<3x4xf32>, tensor<4x6xf16>) -> tensor<3x6xf32>
  return
}

// -----

// A 1-D right operand drops the promoted dimension.
func.func @matmul_vector_result(%a: tensor<3x4xf32>, %b: tensor<4xf32>) {
  // expected-error @+1 {{result has rank 2, expected 1}}
  %0 = kiln.matmul %a, %b : (tensor<3x4xf32>, tensor<4xf32>) -> tensor<3x1xf32>
  return
}

// -----

func.func @dequantize_shape(%w: !kiln.qtensor<8x64, #kiln.quant<u4, group = 32, axis = 1, scale = f32, zero_point = none>>) {
  // expected-error @+1 {{result shape must equal the quantized shape}}
  %0 = kiln.dequantize %w : !kiln.qtensor<8x64, #kiln.quant<u4, group = 32, axis = 1, scale = f32, zero_point = none>> -> tensor<64x8xf32>
  return
}

// -----

func.func @dequantize_linear_axis(%q: tensor<4x8xi8>, %s: tensor<8xf32>) {
  // expected-error @+1 {{axis 2 is out of range for rank 2}}
  %0 = kiln.dequantize_linear %q, %s {axis = 2 : i64, block_size = 0 : i64} : (tensor<4x8xi8>, tensor<8xf32>) -> tensor<4x8xf32>
  return
}

// -----

func.func @quantize_linear_block_size(%x: tensor<4x8xf32>, %s: tensor<4x2xf32>) {
  // expected-error @+1 {{block_size must be >= 0, got -4}}
  %0 = kiln.quantize_linear %x, %s {axis = 1 : i64, block_size = -4 : i64} : (tensor<4x8xf32>, tensor<4x2xf32>) -> tensor<4x8xi8>
  return
}

// -----

func.func @dequantize_linear_zero_point(%q: tensor<4x8xi8>, %s: tensor<8xf32>, %z: tensor<4xi8>) {
  // expected-error @+1 {{zero point dimension 0 is 4, expected 8}}
  %0 = kiln.dequantize_linear %q, %s, %z {axis = 1 : i64, block_size = 0 : i64} : (tensor<4x8xi8>, tensor<8xf32>, tensor<4xi8>) -> tensor<4x8xf32>
  return
}

// -----

func.func @quantize_linear_zero_point_rank(%x: tensor<4x8xf32>, %s: tensor<f32>, %z: tensor<1xi8>) {
  // expected-error @+1 {{zero point has rank 1, expected 0}}
  %0 = kiln.quantize_linear %x, %s, %z {axis = 1 : i64, block_size = 0 : i64} : (tensor<4x8xf32>, tensor<f32>, tensor<1xi8>) -> tensor<4x8xi8>
  return
}

// -----

func.func @quantize_linear_result(%x: tensor<4x8xf32>, %s: tensor<f32>) {
  // expected-error @+1 {{result dimension 1 is 4, expected 8}}
  %0 = kiln.quantize_linear %x, %s {axis = 1 : i64, block_size = 0 : i64} : (tensor<4x8xf32>, tensor<f32>) -> tensor<4x4xi8>
  return
}

// -----

//===----------------------------------------------------------------------===//
// Shape manipulation
//===----------------------------------------------------------------------===//

func.func @transpose_perm_size(%a: tensor<2x3xf32>) {
  // expected-error @+1 {{perm has 3 entries for rank 2}}
  %0 = kiln.transpose %a {perm = array<i64: 0, 1, 2>} : tensor<2x3xf32> -> tensor<2x3xf32>
  return
}

// -----

func.func @transpose_perm_negative(%a: tensor<2x3xf32>) {
  // expected-error @+1 {{perm must be a permutation of [0, rank)}}
  %0 = kiln.transpose %a {perm = array<i64: -1, 0>} : tensor<2x3xf32> -> tensor<3x2xf32>
  return
}

// -----

func.func @transpose_result(%a: tensor<2x3xf32>) {
  // expected-error @+1 {{result dimension 0 is 2, expected 3}}
  %0 = kiln.transpose %a {perm = array<i64: 1, 0>} : tensor<2x3xf32> -> tensor<2x3xf32>
  return
}

// -----

func.func @transpose_element(%a: tensor<2x3xf32>) {
  // expected-error @+1 {{element types differ: 'f32' vs 'f16'}}
  %0 = kiln.transpose %a {perm = array<i64: 1, 0>} : tensor<2x3xf32> -> tensor<3x2xf16>
  return
}

// -----

func.func @reshape_shape_rank(%a: tensor<2x3xf32>, %s: tensor<1x2xi64>) {
  // expected-error @+1 {{shape operand must be 1-D}}
  %0 = kiln.reshape %a, %s : tensor<1x2xi64> : tensor<2x3xf32> -> tensor<3x2xf32>
  return
}

// -----

func.func @reshape_shape_length(%a: tensor<2x3xf32>, %s: tensor<3xi64>) {
  // expected-error @+1 {{shape operand has 3 elements for a result of rank 2}}
  %0 = kiln.reshape %a, %s : tensor<3xi64> : tensor<2x3xf32> -> tensor<3x2xf32>
  return
}

// -----

func.func @reshape_element(%a: tensor<2x3xf32>) {
  // expected-error @+1 {{element types differ: 'f32' vs 'i32'}}
  %0 = kiln.reshape %a : tensor<2x3xf32> -> tensor<6xi32>
  return
}

// -----

func.func @expand_shape_rank(%a: tensor<1x3xf32>, %s: tensor<i64>) {
  // expected-error @+1 {{shape operand must be 1-D}}
  %0 = kiln.expand %a, %s : (tensor<1x3xf32>, tensor<i64>) -> tensor<4x3xf32>
  return
}

// -----

func.func @expand_rank(%a: tensor<2x3xf32>) {
  // expected-error @+1 {{result rank must be at least the input rank}}
  %0 = kiln.expand %a : (tensor<2x3xf32>) -> tensor<3xf32>
  return
}

// -----

func.func @expand_dim(%a: tensor<3x1xf32>) {
  // expected-error @+1 {{input dimension 0 (3) is neither 1 nor the result's 4}}
  %0 = kiln.expand %a : (tensor<3x1xf32>) -> tensor<2x4x5xf32>
  return
}

// -----

func.func @expand_element(%a: tensor<1x3xf32>) {
  // expected-error @+1 {{element types differ: 'f32' vs 'i64'}}
  %0 = kiln.expand %a : (tensor<1x3xf32>) -> tensor<4x3xi64>
  return
}

// -----

func.func @tile_rank(%a: tensor<2x3xf32>, %r: tensor<2xi64>) {
  // expected-error @+1 {{result rank must equal input rank}}
  %0 = kiln.tile %a, %r : (tensor<2x3xf32>, tensor<2xi64>) -> tensor<12xf32>
  return
}

// -----

func.func @tile_element(%a: tensor<2x3xf32>, %r: tensor<2xi64>) {
  // expected-error @+1 {{element types differ: 'f32' vs 'f64'}}
  %0 = kiln.tile %a, %r : (tensor<2x3xf32>, tensor<2xi64>) -> tensor<4x3xf64>
  return
}

// -----

func.func @concat_empty() {
  // expected-error @+1 {{needs at least one operand}}
  %0 = kiln.concat {axis = 0 : i64} : () -> tensor<4xf32>
  return
}

// -----

func.func @concat_axis(%a: tensor<2x3xf32>) {
  // expected-error @+1 {{axis -1 is out of range for rank 2}}
  %0 = kiln.concat %a, %a {axis = -1 : i64} : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x6xf32>
  return
}

// -----

func.func @concat_rank(%a: tensor<2x3xf32>, %b: tensor<2x3x1xf32>) {
  // expected-error @+1 {{operands must have the same rank}}
  %0 = kiln.concat %a, %b {axis = 0 : i64} : (tensor<2x3xf32>, tensor<2x3x1xf32>) -> tensor<4x3xf32>
  return
}

// -----

func.func @concat_element(%a: tensor<2x3xf32>, %b: tensor<2x3xi32>) {
  // expected-error @+1 {{element types differ: 'f32' vs 'i32'}}
  %0 = kiln.concat %a, %b {axis = 0 : i64} : (tensor<2x3xf32>, tensor<2x3xi32>) -> tensor<4x3xf32>
  return
}

// -----

func.func @concat_result(%a: tensor<2x3xf32>, %b: tensor<3x3xf32>) {
  // expected-error @+1 {{result dimension 0 is 4, expected 5}}
  %0 = kiln.concat %a, %b {axis = 0 : i64} : (tensor<2x3xf32>, tensor<3x3xf32>) -> tensor<4x3xf32>
  return
}

// -----

func.func @split_axis(%a: tensor<2x8xf32>) {
  // expected-error @+1 {{axis 2 is out of range for rank 2}}
  %0:2 = kiln.split %a {axis = 2 : i64} : tensor<2x8xf32> -> (tensor<2x4xf32>, tensor<2x4xf32>)
  return
}

// -----

func.func @split_rank(%a: tensor<2x8xf32>) {
  // expected-error @+1 {{results must have the input's rank}}
  %0:2 = kiln.split %a {axis = 1 : i64} : tensor<2x8xf32> -> (tensor<2x4xf32>, tensor<8xf32>)
  return
}

// -----

func.func @split_other_dim(%a: tensor<2x8xf32>) {
  // expected-error @+1 {{result dimension 0 is 3, expected 2}}
  %0:2 = kiln.split %a {axis = 1 : i64} : tensor<2x8xf32> -> (tensor<2x4xf32>, tensor<3x4xf32>)
  return
}

// -----

func.func @split_element(%a: tensor<2x8xf32>) {
  // expected-error @+1 {{element types differ: 'f32' vs 'f16'}}
  %0:2 = kiln.split %a {axis = 1 : i64} : tensor<2x8xf32> -> (tensor<2x4xf32>, tensor<2x4xf16>)
  return
}

// -----

func.func @split_no_results(%a: tensor<8xf32>) {
  // expected-error @+1 {{pieces add up to 0 along axis 0, expected 8}}
  "kiln.split"(%a) {axis = 0 : i64} : (tensor<8xf32>) -> ()
  return
}

// -----

func.func @slice_lengths(%a: tensor<4x5xf32>, %s: tensor<1xi64>) {
  // expected-error @+1 {{axes and steps must have the same length}}
  %0 = kiln.slice %a, %s, %s {axes = array<i64: 0>, steps = array<i64: 1, 1>} : (tensor<4x5xf32>, tensor<1xi64>, tensor<1xi64>) -> tensor<?x5xf32>
  return
}

// -----

func.func @slice_axis(%a: tensor<4x5xf32>, %s: tensor<1xi64>) {
  // expected-error @+1 {{slice axis 2 is out of range for rank 2}}
  %0 = kiln.slice %a, %s, %s {axes = array<i64: 2>, steps = array<i64: 1>} : (tensor<4x5xf32>, tensor<1xi64>, tensor<1xi64>) -> tensor<4x5xf32>
  return
}

// -----

func.func @slice_rank0(%a: tensor<f32>, %s: tensor<1xi64>) {
  // expected-error @+1 {{slice axis 0 is out of range for rank 0}}
  %0 = kiln.slice %a, %s, %s {axes = array<i64: 0>, steps = array<i64: 1>} : (tensor<f32>, tensor<1xi64>, tensor<1xi64>) -> tensor<f32>
  return
}

// -----

func.func @slice_zero_step(%a: tensor<4x5xf32>, %s: tensor<1xi64>) {
  // expected-error @+1 {{steps must be non-zero}}
  %0 = kiln.slice %a, %s, %s {axes = array<i64: 1>, steps = array<i64: 0>} : (tensor<4x5xf32>, tensor<1xi64>, tensor<1xi64>) -> tensor<4x?xf32>
  return
}

// -----

func.func @slice_result_rank(%a: tensor<4x5xf32>, %s: tensor<1xi64>) {
  // expected-error @+1 {{result rank must equal input rank}}
  %0 = kiln.slice %a, %s, %s {axes = array<i64: 1>, steps = array<i64: 1>} : (tensor<4x5xf32>, tensor<1xi64>, tensor<1xi64>) -> tensor<?xf32>
  return
}

// -----

func.func @slice_element(%a: tensor<4x5xf32>, %s: tensor<1xi64>) {
  // expected-error @+1 {{element types differ: 'f32' vs 'bf16'}}
  %0 = kiln.slice %a, %s, %s {axes = array<i64: 1>, steps = array<i64: 1>} : (tensor<4x5xf32>, tensor<1xi64>, tensor<1xi64>) -> tensor<4x?xbf16>
  return
}

// -----

func.func @gather_axis(%t: tensor<100x64xf32>, %i: tensor<3xi64>) {
  // expected-error @+1 {{axis 2 is out of range for rank 2}}
  %0 = kiln.gather %t, %i {axis = 2 : i64} : (tensor<100x64xf32>, tensor<3xi64>) -> tensor<100x64x3xf32>
  return
}

// -----

func.func @gather_element(%t: tensor<100x64xf32>, %i: tensor<3xi64>) {
  // expected-error @+1 {{element types differ: 'f32' vs 'f16'}}
  %0 = kiln.gather %t, %i {axis = 0 : i64} : (tensor<100x64xf32>, tensor<3xi64>) -> tensor<3x64xf16>
  return
}

// -----

func.func @gather_nd_rank0_indices(%a: tensor<4x5xf32>, %i: tensor<i64>) {
  // expected-error @+1 {{indices must end in a static size k with batch_dims + k <= input rank}}
  %0 = kiln.gather_nd %a, %i {batch_dims = 0 : i64} : (tensor<4x5xf32>, tensor<i64>) -> tensor<5xf32>
  return
}

// -----

func.func @gather_nd_dynamic_k(%a: tensor<4x5xf32>, %i: tensor<2x?xi64>) {
  // expected-error @+1 {{indices must end in a static size k with batch_dims + k <= input rank}}
  %0 = kiln.gather_nd %a, %i {batch_dims = 0 : i64} : (tensor<4x5xf32>, tensor<2x?xi64>) -> tensor<2x?xf32>
  return
}

// -----

func.func @gather_nd_k_too_large(%a: tensor<4x5xf32>, %i: tensor<2x3xi64>) {
  // expected-error @+1 {{indices must end in a static size k with batch_dims + k <= input rank}}
  %0 = kiln.gather_nd %a, %i {batch_dims = 0 : i64} : (tensor<4x5xf32>, tensor<2x3xi64>) -> tensor<2xf32>
  return
}

// -----

func.func @gather_nd_negative_batch_dims(%a: tensor<4x5xf32>, %i: tensor<2x1xi64>) {
  // expected-error @+1 {{indices must end in a static size k with batch_dims + k <= input rank}}
  %0 = kiln.gather_nd %a, %i {batch_dims = -1 : i64} : (tensor<4x5xf32>, tensor<2x1xi64>) -> tensor<2x5xf32>
  return
}

// -----

func.func @gather_nd_batch_dims_rank(%a: tensor<4x5xf32>, %i: tensor<1xi64>) {
  // expected-error @+1 {{indices must end in a static size k with batch_dims + k <= input rank}}
  %0 = kiln.gather_nd %a, %i {batch_dims = 1 : i64} : (tensor<4x5xf32>, tensor<1xi64>) -> tensor<f32>
  return
}

// -----

func.func @gather_nd_result(%a: tensor<4x5xf32>, %i: tensor<2x1xi64>) {
  // expected-error @+1 {{result dimension 1 is 4, expected 5}}
  %0 = kiln.gather_nd %a, %i {batch_dims = 0 : i64} : (tensor<4x5xf32>, tensor<2x1xi64>) -> tensor<2x4xf32>
  return
}

// -----

func.func @gather_nd_element(%a: tensor<4x5xf32>, %i: tensor<2x1xi64>) {
  // expected-error @+1 {{element types differ: 'f32' vs 'i64'}}
  %0 = kiln.gather_nd %a, %i {batch_dims = 0 : i64} : (tensor<4x5xf32>, tensor<2x1xi64>) -> tensor<2x5xi64>
  return
}

// -----

func.func @gather_elements_axis(%a: tensor<2x3xf32>, %i: tensor<2x2xi64>) {
  // expected-error @+1 {{axis -1 is out of range for rank 2}}
  %0 = kiln.gather_elements %a, %i {axis = -1 : i64} : (tensor<2x3xf32>, tensor<2x2xi64>) -> tensor<2x2xf32>
  return
}

// -----

func.func @gather_elements_rank(%a: tensor<2x3xf32>, %i: tensor<4xi64>) {
  // expected-error @+1 {{indices must have the input's rank}}
  %0 = kiln.gather_elements %a, %i {axis = 1 : i64} : (tensor<2x3xf32>, tensor<4xi64>) -> tensor<4xf32>
  return
}

// -----

func.func @gather_elements_result(%a: tensor<2x3xf32>, %i: tensor<2x2xi64>) {
  // expected-error @+1 {{result dimension 1 is 3, expected 2}}
  %0 = kiln.gather_elements %a, %i {axis = 1 : i64} : (tensor<2x3xf32>, tensor<2x2xi64>) -> tensor<2x3xf32>
  return
}

// -----

func.func @gather_elements_element(%a: tensor<2x3xf32>, %i: tensor<2x2xi64>) {
  // expected-error @+1 {{element types differ: 'f32' vs 'i64'}}
  %0 = kiln.gather_elements %a, %i {axis = 1 : i64} : (tensor<2x3xf32>, tensor<2x2xi64>) -> tensor<2x2xi64>
  return
}

// -----

func.func @scatter_nd_reduction(%x: tensor<8xf32>, %i: tensor<2x1xi64>, %u: tensor<2xf32>) {
  // expected-error @+1 {{reduction must be none, add, mul, max or min, got sum}}
  %0 = kiln.scatter_nd %x, %i, %u {reduction = "sum"} : (tensor<8xf32>, tensor<2x1xi64>, tensor<2xf32>) -> tensor<8xf32>
  return
}

// -----

func.func @scatter_nd_updates(%x: tensor<8xf32>, %i: tensor<2x1xi64>, %u: tensor<2xf16>) {
  // expected-error @+1 {{element types differ: 'f32' vs 'f16'}}
  %0 = kiln.scatter_nd %x, %i, %u : (tensor<8xf32>, tensor<2x1xi64>, tensor<2xf16>) -> tensor<8xf32>
  return
}

// -----

func.func @scatter_nd_result(%x: tensor<8xf32>, %i: tensor<2x1xi64>, %u: tensor<2xf32>) {
  // expected-error @+1 {{result dimension 0 is 2, expected 8}}
  %0 = kiln.scatter_nd %x, %i, %u : (tensor<8xf32>, tensor<2x1xi64>, tensor<2xf32>) -> tensor<2xf32>
  return
}

// -----

func.func @shape_rank(%x: tensor<2x3xf32>) {
  // expected-error @+1 {{result must be 1-D}}
  %0 = kiln.shape %x : tensor<2x3xf32> -> tensor<i64>
  return
}

// -----

func.func @shape_size(%x: tensor<2x3xf32>) {
  // expected-error @+1 {{result has 3 elements, expected 2}}
  %0 = kiln.shape %x : tensor<2x3xf32> -> tensor<3xi64>
  return
}

// -----

// start and end clamp to [0, rank] after negative values count from the end.
func.func @shape_range(%x: tensor<2x3x4xf32>) {
  // expected-error @+1 {{result has 2 elements, expected 1}}
  %0 = kiln.shape %x {start = -1 : i64, end = 100 : i64} : tensor<2x3x4xf32> -> tensor<2xi64>
  return
}

// -----

func.func @dim_index(%x: tensor<2x3xf32>) {
  // expected-error @+1 {{index 2 is out of range for rank 2}}
  %0 = kiln.dim %x[2] : tensor<2x3xf32> -> tensor<i64>
  return
}

// -----

func.func @dim_negative_index(%x: tensor<2x3xf32>) {
  // expected-error @+1 {{index -1 is out of range for rank 2}}
  %0 = kiln.dim %x[-1] : tensor<2x3xf32> -> tensor<i64>
  return
}

// -----

func.func @dim_result(%x: tensor<2x3xf32>) {
  // expected-error @+1 {{result must be tensor<i64> or tensor<1xi64>}}
  %0 = kiln.dim %x[0] : tensor<2x3xf32> -> tensor<2xi64>
  return
}

// -----

func.func @constant_of_shape_rank(%s: tensor<i64>) {
  // expected-error @+1 {{shape operand must be 1-D}}
  %0 = kiln.constant_of_shape %s {value = 0.0 : f32} : (tensor<i64>) -> tensor<f32>
  return
}

// -----

func.func @constant_of_shape_value(%s: tensor<2xi64>) {
  // expected-error @+1 {{value type 'i64' differs from the result element type 'f32'}}
  %0 = kiln.constant_of_shape %s {value = 0 : i64} : (tensor<2xi64>) -> tensor<?x?xf32>
  return
}

// -----

func.func @range_rank(%a: tensor<1xi64>, %b: tensor<i64>) {
  // expected-error @+1 {{start, limit and delta must be rank-0 tensors}}
  %0 = kiln.range %a, %b, %b : (tensor<1xi64>, tensor<i64>, tensor<i64>) -> tensor<?xi64>
  return
}

// -----

func.func @range_element(%a: tensor<i64>, %b: tensor<i32>) {
  // expected-error @+1 {{element types differ: 'i32' vs 'i64'}}
  %0 = kiln.range %a, %a, %b : (tensor<i64>, tensor<i64>, tensor<i32>) -> tensor<?xi64>
  return
}

// -----

func.func @range_result(%a: tensor<i64>) {
  // expected-error @+1 {{result must be 1-D}}
  %0 = kiln.range %a, %a, %a : (tensor<i64>, tensor<i64>, tensor<i64>) -> tensor<i64>
  return
}

// -----

func.func @trilu_rank(%a: tensor<8xf32>) {
  // expected-error @+1 {{input must have rank >= 2}}
  %0 = kiln.trilu %a : (tensor<8xf32>) -> tensor<8xf32>
  return
}

// -----

func.func @trilu_k(%a: tensor<8x8xf32>, %k: tensor<1xi64>) {
  // expected-error @+1 {{k must be a rank-0 tensor}}
  %0 = kiln.trilu %a, %k : (tensor<8x8xf32>, tensor<1xi64>) -> tensor<8x8xf32>
  return
}

// -----

func.func @trilu_element(%a: tensor<8x8xf32>) {
  // expected-error @+1 {{element types differ: 'f32' vs 'i32'}}
  %0 = kiln.trilu %a : (tensor<8x8xf32>) -> tensor<8x8xi32>
  return
}

// -----

func.func @trilu_result(%a: tensor<8x8xf32>) {
  // expected-error @+1 {{result dimension 1 is 9, expected 8}}
  %0 = kiln.trilu %a : (tensor<8x8xf32>) -> tensor<8x9xf32>
  return
}

// -----

//===----------------------------------------------------------------------===//
// Reductions
//===----------------------------------------------------------------------===//

func.func @reduce_axis(%a: tensor<2x8xf32>) {
  // expected-error @+1 {{axis 2 is out of range for rank 2}}
  %0 = kiln.reduce_mean %a {axes = array<i64: 2>} : tensor<2x8xf32> -> tensor<2xf32>
  return
}

// -----

func.func @reduce_duplicate_axes(%a: tensor<2x8xf32>) {
  // expected-error @+1 {{axes must be sorted and unique}}
  %0 = kiln.reduce_max %a {axes = array<i64: 1, 1>} : tensor<2x8xf32> -> tensor<2xf32>
  return
}

// -----

func.func @reduce_keepdims(%a: tensor<2x8xf32>) {
  // expected-error @+1 {{result dimension 1 is 8, expected 1}}
  %0 = kiln.reduce_mean %a {axes = array<i64: 1>, keepdims} : tensor<2x8xf32> -> tensor<2x8xf32>
  return
}

// -----

func.func @reduce_no_keepdims(%a: tensor<2x8xf32>) {
  // expected-error @+1 {{result has rank 2, expected 1}}
  %0 = kiln.reduce_sum %a {axes = array<i64: 1>} : tensor<2x8xf32> -> tensor<2x1xf32>
  return
}

// -----

// Empty axes reduce every axis.
func.func @reduce_all(%a: tensor<2x8xf32>) {
  // expected-error @+1 {{result has rank 1, expected 0}}
  %0 = kiln.reduce_max %a {axes = array<i64>} : tensor<2x8xf32> -> tensor<1xf32>
  return
}

// -----

func.func @reduce_element(%a: tensor<2x8xf32>) {
  // expected-error @+1 {{element types differ: 'f32' vs 'f64'}}
  %0 = kiln.reduce_sum %a {axes = array<i64: 1>} : tensor<2x8xf32> -> tensor<2xf64>
  return
}

// -----

func.func @argmax_axis(%a: tensor<2x8xf32>) {
  // expected-error @+1 {{axis 2 is out of range for rank 2}}
  %0 = kiln.argmax %a {axis = 2 : i64} : tensor<2x8xf32> -> tensor<2xi64>
  return
}

// -----

func.func @argmax_keepdims(%a: tensor<2x8xf32>) {
  // expected-error @+1 {{result has rank 1, expected 2}}
  %0 = kiln.argmax %a {axis = 1 : i64, keepdims} : tensor<2x8xf32> -> tensor<2xi64>
  return
}

// -----

func.func @argmax_no_keepdims(%a: tensor<2x8xf32>) {
  // expected-error @+1 {{result dimension 0 is 8, expected 2}}
  %0 = kiln.argmax %a {axis = 1 : i64} : tensor<2x8xf32> -> tensor<8xi64>
  return
}

// -----

//===----------------------------------------------------------------------===//
// Transformer blocks
//===----------------------------------------------------------------------===//

func.func @rotary_rank(%q: tensor<6x4x16xf32>, %c: tensor<128x8xf32>, %p: tensor<1x4xi64>) {
  // expected-error @+1 {{input must be [batch, heads, seq, head_dim], got 'tensor<6x4x16xf32>'}}
  %0 = kiln.rotary %q, %c, %c, %p {rotary_dim = 16 : i64} : (tensor<6x4x16xf32>, tensor<128x8xf32>, tensor<128x8xf32>, tensor<1x4xi64>) -> tensor<6x4x16xf32>
  return
}

// -----

func.func @rotary_dim_odd(%q: tensor<1x6x4x16xf32>, %c: tensor<128x8xf32>, %p: tensor<1x4xi64>) {
  // expected-error @+1 {{rotary_dim must be even, positive and at most the head dimension, got 7}}
  %0 = kiln.rotary %q, %c, %c, %p {rotary_dim = 7 : i64} : (tensor<1x6x4x16xf32>, tensor<128x8xf32>, tensor<128x8xf32>, tensor<1x4xi64>) -> tensor<1x6x4x16xf32>
  return
}

// -----

func.func @rotary_dim_zero(%q: tensor<1x6x4x16xf32>, %c: tensor<128x8xf32>, %p: tensor<1x4xi64>) {
  // expected-error @+1 {{rotary_dim must be even, positive and at most the head dimension, got 0}}
  %0 = kiln.rotary %q, %c, %c, %p {rotary_dim = 0 : i64} : (tensor<1x6x4x16xf32>, tensor<128x8xf32>, tensor<128x8xf32>, tensor<1x4xi64>) -> tensor<1x6x4x16xf32>
  return
}

// -----

func.func @rotary_cache_width(%q: tensor<1x6x4x16xf32>, %c: tensor<128x4xf32>, %p: tensor<1x4xi64>) {
  // expected-error @+1 {{cos/sin caches must be [max_position, 8], got 'tensor<128x4xf32>'}}
  %0 = kiln.rotary %q, %c, %c, %p {rotary_dim = 16 : i64} : (tensor<1x6x4x16xf32>, tensor<128x4xf32>, tensor<128x4xf32>, tensor<1x4xi64>) -> tensor<1x6x4x16xf32>
  return
}

// -----

func.func @rotary_cache_rank(%q: tensor<1x6x4x16xf32>, %c: tensor<128x8xf32>, %s: tensor<8xf32>, %p: tensor<1x4xi64>) {
  // expected-error @+1 {{cos/sin caches must be [max_position, 8], got 'tensor<8xf32>'}}
  %0 = kiln.rotary %q, %c, %s, %p {rotary_dim = 16 : i64} : (tensor<1x6x4x16xf32>, tensor<128x8xf32>, tensor<8xf32>, tensor<1x4xi64>) -> tensor<1x6x4x16xf32>
  return
}

// -----

func.func @rotary_cache_element(%q: tensor<1x6x4x16xf32>, %c: tensor<128x8xf16>, %p: tensor<1x4xi64>) {
  // expected-error @+1 {{element types differ: 'f32' vs 'f16'}}
  %0 = kiln.rotary %q, %c, %c, %p {rotary_dim = 16 : i64} : (tensor<1x6x4x16xf32>, tensor<128x8xf16>, tensor<128x8xf16>, tensor<1x4xi64>) -> tensor<1x6x4x16xf32>
  return
}

// -----

func.func @rotary_positions(%q: tensor<1x6x4x16xf32>, %c: tensor<128x8xf32>, %p: tensor<1x5xi64>) {
  // expected-error @+1 {{positions must be [batch, seq], got 'tensor<1x5xi64>'}}
  %0 = kiln.rotary %q, %c, %c, %p {rotary_dim = 16 : i64} : (tensor<1x6x4x16xf32>, tensor<128x8xf32>, tensor<128x8xf32>, tensor<1x5xi64>) -> tensor<1x6x4x16xf32>
  return
}

// -----

func.func @rotary_positions_rank(%q: tensor<1x6x4x16xf32>, %c: tensor<128x8xf32>, %p: tensor<4xi64>) {
  // expected-error @+1 {{positions must be [batch, seq], got 'tensor<4xi64>'}}
  %0 = kiln.rotary %q, %c, %c, %p {rotary_dim = 16 : i64} : (tensor<1x6x4x16xf32>, tensor<128x8xf32>, tensor<128x8xf32>, tensor<4xi64>) -> tensor<1x6x4x16xf32>
  return
}

// -----

func.func @rotary_result(%q: tensor<1x6x4x16xf32>, %c: tensor<128x8xf32>, %p: tensor<1x4xi64>) {
  // expected-error @+1 {{result dimension 1 is 3, expected 6}}
  %0 = kiln.rotary %q, %c, %c, %p {rotary_dim = 16 : i64} : (tensor<1x6x4x16xf32>, tensor<128x8xf32>, tensor<128x8xf32>, tensor<1x4xi64>) -> tensor<1x3x4x16xf32>
  return
}

// -----

func.func @attention_rank(%q: tensor<6x4x16xf32>, %k: tensor<1x2x4x16xf32>) {
  // expected-error @+1 {{query, key and value must be 4-D [batch, heads, seq, head_dim]}}
  %0 = kiln.attention %q, %k, %k {scale = 0.25 : f32} : (tensor<6x4x16xf32>, tensor<1x2x4x16xf32>, tensor<1x2x4x16xf32>) -> tensor<6x4x16xf32>
  return
}

// -----

func.func @attention_head_dim(%q: tensor<1x2x4x16xf32>, %k: tensor<1x2x4x8xf32>) {
  // expected-error @+1 {{query head_dim 16 differs from key head_dim 8}}
  %0 = kiln.attention %q, %k, %k {scale = 0.25 : f32} : (tensor<1x2x4x16xf32>, tensor<1x2x4x8xf32>, tensor<1x2x4x8xf32>) -> tensor<1x2x4x8xf32>
  return
}

// -----

func.func @attention_kv_heads(%q: tensor<1x4x4x16xf32>, %k: tensor<1x2x4x16xf32>, %v: tensor<1x1x4x16xf32>) {
  // expected-error @+1 {{key and value must agree in heads and length}}
  %0 = kiln.attention %q, %k, %v {scale = 0.25 : f32} : (tensor<1x4x4x16xf32>, tensor<1x2x4x16xf32>, tensor<1x1x4x16xf32>) -> tensor<1x4x4x16xf32>
  return
}

// -----

func.func @attention_kv_length(%q: tensor<1x2x4x16xf32>, %k: tensor<1x2x4x16xf32>, %v: tensor<1x2x5x16xf32>) {
  // expected-error @+1 {{key and value must agree in heads and length}}
  %0 = kiln.attention %q, %k, %v {scale = 0.25 : f32} : (tensor<1x2x4x16xf32>, tensor<1x2x4x16xf32>, tensor<1x2x5x16xf32>) -> tensor<1x2x4x16xf32>
  return
}

// -----

func.func @attention_zero_kv_heads(%q: tensor<1x2x4x16xf32>, %k: tensor<1x0x4x16xf32>) {
  // expected-error @+1 {{query heads (2) must be a multiple of KV heads (0)}}
  %0 = kiln.attention %q, %k, %k {scale = 0.25 : f32} : (tensor<1x2x4x16xf32>, tensor<1x0x4x16xf32>, tensor<1x0x4x16xf32>) -> tensor<1x2x4x16xf32>
  return
}

// -----

func.func @attention_softcap(%q: tensor<1x2x4x16xf32>) {
  // expected-error @+1 {{softcap must be >= 0}}
  %0 = kiln.attention %q, %q, %q {scale = 0.25 : f32, softcap = -30.0 : f32} : (tensor<1x2x4x16xf32>, tensor<1x2x4x16xf32>, tensor<1x2x4x16xf32>) -> tensor<1x2x4x16xf32>
  return
}

// -----

func.func @attention_key_lengths(%q: tensor<1x2x4x16xf32>, %l: tensor<1x1xi32>) {
  // expected-error @+1 {{key_lengths must be 1-D [batch]}}
  %0 = kiln.attention %q, %q, %q key_lengths(%l) {scale = 0.25 : f32} : (tensor<1x2x4x16xf32>, tensor<1x2x4x16xf32>, tensor<1x2x4x16xf32>, tensor<1x1xi32>) -> tensor<1x2x4x16xf32>
  return
}

// -----

func.func @attention_element(%q: tensor<1x2x4x16xf32>, %k: tensor<1x2x4x16xf16>) {
  // expected-error @+1 {{element types differ: 'f32' vs 'f16'}}
  %0 = kiln.attention %q, %k, %k {scale = 0.25 : f32} : (tensor<1x2x4x16xf32>, tensor<1x2x4x16xf16>, tensor<1x2x4x16xf16>) -> tensor<1x2x4x16xf32>
  return
}

// -----

// The result takes the value's head_dim.
func.func @attention_result(%q: tensor<1x2x4x16xf32>, %v: tensor<1x2x4x8xf32>) {
  // expected-error @+1 {{result dimension 3 is 16, expected 8}}
  %0 = kiln.attention %q, %q, %v {scale = 0.25 : f32} : (tensor<1x2x4x16xf32>, tensor<1x2x4x16xf32>, tensor<1x2x4x8xf32>) -> tensor<1x2x4x16xf32>
  return
}

// -----

func.func @kv_write_slots(%c: !kiln.kv_cache<layers = 2, heads = 2, head_dim = 16, block = 16, f32>, %k: tensor<3x2x16xf32>, %s: tensor<3x1xi64>) {
  // expected-error @+1 {{slots must be 1-D [tokens]}}
  kiln.kv_cache_write %c, %k, %k, %s {layer = 0 : i64} : !kiln.kv_cache<layers = 2, heads = 2, head_dim = 16, block = 16, f32>, tensor<3x2x16xf32>, tensor<3x2x16xf32>, tensor<3x1xi64>
  return
}

// -----

func.func @kv_write_key(%c: !kiln.kv_cache<layers = 2, heads = 2, head_dim = 16, block = 16, f32>, %k: tensor<3x3x16xf32>, %v: tensor<3x2x16xf32>, %s: tensor<3xi64>) {
  // expected-error @+1 {{key dimension 1 is 3, expected 2}}
  kiln.kv_cache_write %c, %k, %v, %s {layer = 0 : i64} : !kiln.kv_cache<layers = 2, heads = 2, head_dim = 16, block = 16, f32>, tensor<3x3x16xf32>, tensor<3x2x16xf32>, tensor<3xi64>
  return
}

// -----

func.func @kv_write_value(%c: !kiln.kv_cache<layers = 2, heads = 2, head_dim = 16, block = 16, f32>, %k: tensor<3x2x16xf32>, %v: tensor<4x2x16xf32>, %s: tensor<3xi64>) {
  // expected-error @+1 {{value dimension 0 is 4, expected 3}}
  kiln.kv_cache_write %c, %k, %v, %s {layer = 0 : i64} : !kiln.kv_cache<layers = 2, heads = 2, head_dim = 16, block = 16, f32>, tensor<3x2x16xf32>, tensor<4x2x16xf32>, tensor<3xi64>
  return
}

// -----

func.func @kv_write_key_rank(%c: !kiln.kv_cache<layers = 2, heads = 2, head_dim = 16, block = 16, f32>, %k: tensor<3x32xf32>, %s: tensor<3xi64>) {
  // expected-error @+1 {{key has rank 2, expected 3}}
  kiln.kv_cache_write %c, %k, %k, %s {layer = 0 : i64} : !kiln.kv_cache<layers = 2, heads = 2, head_dim = 16, block = 16, f32>, tensor<3x32xf32>, tensor<3x32xf32>, tensor<3xi64>
  return
}

// -----

func.func @kv_read_layer(%c: !kiln.kv_cache<layers = 2, heads = 2, head_dim = 16, block = 16, f32>, %t: tensor<1x4xi32>, %l: tensor<1xi32>) {
  // expected-error @+1 {{layer 5 is out of range for 2 layers}}
  %k, %v = kiln.kv_cache_read %c, %t, %l {layer = 5 : i64} : !kiln.kv_cache<layers = 2, heads = 2, head_dim = 16, block = 16, f32>, tensor<1x4xi32>, tensor<1xi32> -> tensor<1x2x?x16xf32>, tensor<1x2x?x16xf32>
  return
}

// -----

func.func @kv_read_tables(%c: !kiln.kv_cache<layers = 2, heads = 2, head_dim = 16, block = 16, f32>, %t: tensor<4xi32>, %l: tensor<1xi32>) {
  // expected-error @+1 {{block_tables must be 2-D and lengths 1-D}}
  %k, %v = kiln.kv_cache_read %c, %t, %l {layer = 0 : i64} : !kiln.kv_cache<layers = 2, heads = 2, head_dim = 16, block = 16, f32>, tensor<4xi32>, tensor<1xi32> -> tensor<1x2x?x16xf32>, tensor<1x2x?x16xf32>
  return
}

// -----

func.func @kv_read_lengths(%c: !kiln.kv_cache<layers = 2, heads = 2, head_dim = 16, block = 16, f32>, %t: tensor<1x4xi32>, %l: tensor<i32>) {
  // expected-error @+1 {{block_tables must be 2-D and lengths 1-D}}
  %k, %v = kiln.kv_cache_read %c, %t, %l {layer = 0 : i64} : !kiln.kv_cache<layers = 2, heads = 2, head_dim = 16, block = 16, f32>, tensor<1x4xi32>, tensor<i32> -> tensor<1x2x?x16xf32>, tensor<1x2x?x16xf32>
  return
}

// -----

func.func @kv_read_heads(%c: !kiln.kv_cache<layers = 2, heads = 2, head_dim = 16, block = 16, f32>, %t: tensor<1x4xi32>, %l: tensor<1xi32>) {
  // expected-error @+1 {{results must be [batch, 2, tokens, 16], got 'tensor<1x3x?x16xf32>'}}
  %k, %v = kiln.kv_cache_read %c, %t, %l {layer = 0 : i64} : !kiln.kv_cache<layers = 2, heads = 2, head_dim = 16, block = 16, f32>, tensor<1x4xi32>, tensor<1xi32> -> tensor<1x3x?x16xf32>, tensor<1x2x?x16xf32>
  return
}

// -----

func.func @kv_read_value_head_dim(%c: !kiln.kv_cache<layers = 2, heads = 2, head_dim = 16, block = 16, f32>, %t: tensor<1x4xi32>, %l: tensor<1xi32>) {
  // expected-error @+1 {{results must be [batch, 2, tokens, 16], got 'tensor<1x2x?x8xf32>'}}
  %k, %v = kiln.kv_cache_read %c, %t, %l {layer = 0 : i64} : !kiln.kv_cache<layers = 2, heads = 2, head_dim = 16, block = 16, f32>, tensor<1x4xi32>, tensor<1xi32> -> tensor<1x2x?x16xf32>, tensor<1x2x?x8xf32>
  return
}

// -----

func.func @kv_read_rank(%c: !kiln.kv_cache<layers = 2, heads = 2, head_dim = 16, block = 16, f32>, %t: tensor<1x4xi32>, %l: tensor<1xi32>) {
  // expected-error @+1 {{results must be [batch, 2, tokens, 16], got 'tensor<2x?x16xf32>'}}
  %k, %v = kiln.kv_cache_read %c, %t, %l {layer = 0 : i64} : !kiln.kv_cache<layers = 2, heads = 2, head_dim = 16, block = 16, f32>, tensor<1x4xi32>, tensor<1xi32> -> tensor<2x?x16xf32>, tensor<2x?x16xf32>
  return
}

// -----

func.func @tile_repeats_length(%a: tensor<2x3xf32>, %r: tensor<5xi64>) {
  // expected-error @+1 {{repeats must be 1-D with one entry per input dimension, got 'tensor<5xi64>'}}
  %0 = kiln.tile %a, %r : (tensor<2x3xf32>, tensor<5xi64>) -> tensor<?x?xf32>
  return
}

// -----

func.func @slice_axis_twice(%a: tensor<8xf32>, %s: tensor<2xi64>) {
  // expected-error @+1 {{slice axis 0 appears twice}}
  %0 = kiln.slice %a, %s, %s {axes = array<i64: 0, 0>, steps = array<i64: 1, 1>} : (tensor<8xf32>, tensor<2xi64>, tensor<2xi64>) -> tensor<?xf32>
  return
}

// -----

func.func @scatter_nd_updates(%a: tensor<4xf32>, %i: tensor<2x1xi64>, %u: tensor<7x7xf32>) {
  // expected-error @+1 {{updates has rank 2, expected 1}}
  %0 = kiln.scatter_nd %a, %i, %u : (tensor<4xf32>, tensor<2x1xi64>, tensor<7x7xf32>) -> tensor<4xf32>
  return
}

// -----

func.func @scatter_nd_rank0_indices(%a: tensor<4xf32>, %i: tensor<i64>, %u: tensor<f32>) {
  // expected-error @+1 {{indices must end in a static size between 1 and the input rank, got 'tensor<i64>'}}
  %0 = kiln.scatter_nd %a, %i, %u : (tensor<4xf32>, tensor<i64>, tensor<f32>) -> tensor<4xf32>
  return
}

// -----

func.func @attention_batch(%q: tensor<1x4x4x16xf32>, %k: tensor<3x4x4x16xf32>) {
  // expected-error @+1 {{query, key and value batch sizes differ: 1, 3, 3}}
  %0 = kiln.attention %q, %k, %k {scale = 0.25 : f32} : (tensor<1x4x4x16xf32>, tensor<3x4x4x16xf32>, tensor<3x4x4x16xf32>) -> tensor<1x4x4x16xf32>
  return
}

// -----

func.func @attention_mask(%q: tensor<1x4x4x16xf32>, %m: tensor<7x7x7xf32>) {
  // expected-error @+1 {{mask 'tensor<7x7x7xf32>' does not broadcast to [batch, heads, seq, total]}}
  %0 = kiln.attention %q, %q, %q mask(%m) {scale = 0.25 : f32} : (tensor<1x4x4x16xf32>, tensor<1x4x4x16xf32>, tensor<1x4x4x16xf32>, tensor<7x7x7xf32>) -> tensor<1x4x4x16xf32>
  return
}

// -----

func.func @attention_softcap_nan(%q: tensor<1x4x4x16xf32>) {
  // expected-error @+1 {{softcap must be >= 0}}
  %0 = kiln.attention %q, %q, %q {scale = 0.25 : f32, softcap = 0x7FC00000 : f32} : (tensor<1x4x4x16xf32>, tensor<1x4x4x16xf32>, tensor<1x4x4x16xf32>) -> tensor<1x4x4x16xf32>
  return
}

// -----

func.func @kv_negative_layer(%c: !kiln.kv_cache<layers = 2, heads = 2, head_dim = 16, block = 16, f32>, %k: tensor<3x2x16xf32>, %s: tensor<3xi64>) {
  // expected-error @+1 {{layer -1 is out of range for 2 layers}}
  kiln.kv_cache_write %c, %k, %k, %s {layer = -1 : i64} : !kiln.kv_cache<layers = 2, heads = 2, head_dim = 16, block = 16, f32>, tensor<3x2x16xf32>, tensor<3x2x16xf32>, tensor<3xi64>
  return
}

// -----

func.func @kv_rank0_slots(%c: !kiln.kv_cache<layers = 2, heads = 2, head_dim = 16, block = 16, f32>, %k: tensor<3x2x16xf32>, %s: tensor<i64>) {
  // expected-error @+1 {{slots must be 1-D [tokens]}}
  kiln.kv_cache_write %c, %k, %k, %s {layer = 0 : i64} : !kiln.kv_cache<layers = 2, heads = 2, head_dim = 16, block = 16, f32>, tensor<3x2x16xf32>, tensor<3x2x16xf32>, tensor<i64>
  return
}

// -----

func.func @kv_element_type(%c: !kiln.kv_cache<layers = 2, heads = 2, head_dim = 16, block = 16, f16>, %k: tensor<3x2x16xf32>, %s: tensor<3xi64>) {
  // expected-error @+1 {{key and value must have the cache's element type 'f16'}}
  kiln.kv_cache_write %c, %k, %k, %s {layer = 0 : i64} : !kiln.kv_cache<layers = 2, heads = 2, head_dim = 16, block = 16, f16>, tensor<3x2x16xf32>, tensor<3x2x16xf32>, tensor<3xi64>
  return
}

// -----

// expected-error @+1 {{!kiln.kv_cache needs positive layers, heads, head_dim and block, got -1, 0, -5, 0}}
func.func @kv_type(%c: !kiln.kv_cache<layers = -1, heads = 0, head_dim = -5, block = 0, f32>) {
  return
}

// -----

// expected-error @+1 {{#kiln.quant key 'group' appears twice}}
kiln.global @q : !kiln.qtensor<8x64, #kiln.quant<u4, group = 32, group = 16, axis = 1, scale = f32, zero_point = none>> []

// -----

// expected-error @+1 {{integer value too large}}
func.func @dims_overflow(%a: tensor<?xf32, #kiln.dims<[a + 99999999999999999999]>>) {
  return
}

// -----

func.func @constant_of_shape_length(%s: tensor<3xi64>) {
  // expected-error @+1 {{shape operand has 3 elements for a result of rank 1}}
  %0 = kiln.constant_of_shape %s {value = 0.0 : f32} : (tensor<3xi64>) -> tensor<?xf32>
  return
}

// -----

func.func @reshape_operand_count(%a: tensor<2x3xf32>, %s: tensor<2xi64>) {
  // expected-error @+1 {{element counts differ: 6 vs 8}}
  %0 = kiln.reshape %a, %s : tensor<2xi64> : tensor<2x3xf32> -> tensor<4x2xf32>
  return
}

// -----

func.func @expand_operand_rank(%a: tensor<2x3xf32>, %s: tensor<1xi64>) {
  // expected-error @+1 {{result rank must be at least the input rank}}
  %0 = kiln.expand %a, %s : (tensor<2x3xf32>, tensor<1xi64>) -> tensor<7xf32>
  return
}

// -----

func.func @per_axis_scale(%q: tensor<4x8xi8>, %s: tensor<5xf32>) {
  // expected-error @+1 {{per-axis scale has 5 elements for axis 1 of size 8}}
  %0 = kiln.dequantize_linear %q, %s {axis = 1 : i64, block_size = 0 : i64} : (tensor<4x8xi8>, tensor<5xf32>) -> tensor<4x8xf32>
  return
}

// -----

// A weight joined from pieces (kiln.parts, --kiln-fuse-matmuls): the
// sizes must add up to N, and each piece needs its blob of its size.
// expected-error @+1 {{kiln.parts sizes add up to 6, expected 8}}
kiln.global @parts_sum : tensor<4x8xf32> [#kiln.blob<"w.bin", offset = 0, size = 64>, #kiln.blob<"w.bin", offset = 64, size = 32>] {kiln.parts = array<i64: 4, 2>}

// -----

// expected-error @+1 {{blob 1 of 'parts_size' holds 32 bytes, expected 64}}
kiln.global @parts_size : tensor<4x8xf32> [#kiln.blob<"w.bin", offset = 0, size = 64>, #kiln.blob<"w.bin", offset = 64, size = 32>] {kiln.parts = array<i64: 4, 4>}

// -----

// expected-error @+1 {{needs 6 blob(s)}}
kiln.global @parts_count : !kiln.qtensor<64x64, #kiln.quant<u4, group = 32, axis = 1, scale = f32, zero_point = int>> [#kiln.blob<"w.bin", offset = 0, size = 2048>, #kiln.blob<"w.bin", offset = 0, size = 512>, #kiln.blob<"w.bin", offset = 0, size = 64>] {kiln.parts = array<i64: 32, 32>}

// -----

// expected-error @+1 {{piece 0 of 'parts_bytes' does not fill whole bytes}}
kiln.global @parts_bytes : !kiln.qtensor<2x1, #kiln.quant<u4, group = 1, axis = 1, scale = f32, zero_point = none>> [#kiln.blob<"w.bin", offset = 0, size = 1>, #kiln.blob<"w.bin", offset = 1, size = 1>, #kiln.blob<"w.bin", offset = 2, size = 4>, #kiln.blob<"w.bin", offset = 6, size = 4>] {kiln.parts = array<i64: 1, 1>}

// -----

func.func @rotary_per_token_shape(%q: tensor<2x6x4x16xf32>, %c: tensor<2x5x8xf32>) {
  // expected-error @+1 {{without positions, cos/sin must be [batch, seq, 8] (batch may be 1), got 'tensor<2x5x8xf32>'}}
  %0 = kiln.rotary %q, %c, %c {rotary_dim = 16 : i64} : (tensor<2x6x4x16xf32>, tensor<2x5x8xf32>, tensor<2x5x8xf32>) -> tensor<2x6x4x16xf32>
  return
}

// -----

func.func @rotary_per_token_batch(%q: tensor<2x6x4x16xf32>, %c: tensor<3x4x8xf32>) {
  // expected-error @+1 {{without positions, cos/sin must be [batch, seq, 8] (batch may be 1), got 'tensor<3x4x8xf32>'}}
  %0 = kiln.rotary %q, %c, %c {rotary_dim = 16 : i64} : (tensor<2x6x4x16xf32>, tensor<3x4x8xf32>, tensor<3x4x8xf32>) -> tensor<2x6x4x16xf32>
  return
}
