// RUN: kiln-opt %s | FileCheck %s
// RUN: kiln-opt %s | kiln-opt | FileCheck %s
// Every kiln op, attribute and type prints and parses back unchanged.

// CHECK: kiln.global @w : tensor<4x8xf32> [#kiln.blob<"model.onnx_data", offset = 0, size = 128>]
kiln.global @w : tensor<4x8xf32> [#kiln.blob<"model.onnx_data", offset = 0, size = 128>]
// CHECK: kiln.global @q : !kiln.qtensor<8x64, #kiln.quant<u4, group = 32, axis = 1, scale = f32, zero_point = int>>
kiln.global @q : !kiln.qtensor<8x64, #kiln.quant<u4, group = 32, axis = 1, scale = f32, zero_point = int>>
    [#kiln.blob<"w.bin", offset = 0, size = 256>, #kiln.blob<"w.bin", offset = 256, size = 64>,
     #kiln.blob<"w.bin", offset = 320, size = 8>]
// CHECK: kiln.global @m : !kiln.qtensor<8x64, #kiln.quant<u4, group = 32, axis = 1, scale = f16, zero_point = mid>>
kiln.global @m : !kiln.qtensor<8x64, #kiln.quant<u4, group = 32, axis = 1, scale = f16, zero_point = mid>>
    [#kiln.blob<"w.bin", offset = 0, size = 256>, #kiln.blob<"w.bin", offset = 256, size = 32>]

// CHECK-LABEL: func.func @elementwise
func.func @elementwise(%a: tensor<?x8xf32, #kiln.dims<[batch]>>, %b: tensor<8xf32>, %c: tensor<?x8xi1, #kiln.dims<[batch]>>) {
  // CHECK: kiln.add %{{.*}}, %{{.*}} : (tensor<?x8xf32, #kiln.dims<[batch]>>, tensor<8xf32>) -> tensor<?x8xf32, #kiln.dims<[batch]>>
  %0 = kiln.add %a, %b : (tensor<?x8xf32, #kiln.dims<[batch]>>, tensor<8xf32>) -> tensor<?x8xf32, #kiln.dims<[batch]>>
  %1 = kiln.sub %a, %b : (tensor<?x8xf32, #kiln.dims<[batch]>>, tensor<8xf32>) -> tensor<?x8xf32, #kiln.dims<[batch]>>
  %2 = kiln.mul %a, %b : (tensor<?x8xf32, #kiln.dims<[batch]>>, tensor<8xf32>) -> tensor<?x8xf32, #kiln.dims<[batch]>>
  %3 = kiln.div %a, %b : (tensor<?x8xf32, #kiln.dims<[batch]>>, tensor<8xf32>) -> tensor<?x8xf32, #kiln.dims<[batch]>>
  %4 = kiln.pow %a, %b : (tensor<?x8xf32, #kiln.dims<[batch]>>, tensor<8xf32>) -> tensor<?x8xf32, #kiln.dims<[batch]>>
  %5 = kiln.max %a, %b : (tensor<?x8xf32, #kiln.dims<[batch]>>, tensor<8xf32>) -> tensor<?x8xf32, #kiln.dims<[batch]>>
  %6 = kiln.min %a, %b : (tensor<?x8xf32, #kiln.dims<[batch]>>, tensor<8xf32>) -> tensor<?x8xf32, #kiln.dims<[batch]>>
  // CHECK: kiln.less {{.*}} -> tensor<?x8xi1, #kiln.dims<[batch]>>
  %7 = kiln.less %a, %b : (tensor<?x8xf32, #kiln.dims<[batch]>>, tensor<8xf32>) -> tensor<?x8xi1, #kiln.dims<[batch]>>
  %8 = kiln.greater %a, %b : (tensor<?x8xf32, #kiln.dims<[batch]>>, tensor<8xf32>) -> tensor<?x8xi1, #kiln.dims<[batch]>>
  %9 = kiln.equal %a, %b : (tensor<?x8xf32, #kiln.dims<[batch]>>, tensor<8xf32>) -> tensor<?x8xi1, #kiln.dims<[batch]>>
  %10 = kiln.less_equal %a, %b : (tensor<?x8xf32, #kiln.dims<[batch]>>, tensor<8xf32>) -> tensor<?x8xi1, #kiln.dims<[batch]>>
  %11 = kiln.greater_equal %a, %b : (tensor<?x8xf32, #kiln.dims<[batch]>>, tensor<8xf32>) -> tensor<?x8xi1, #kiln.dims<[batch]>>
  %12 = kiln.and %c, %7 : (tensor<?x8xi1, #kiln.dims<[batch]>>, tensor<?x8xi1, #kiln.dims<[batch]>>) -> tensor<?x8xi1, #kiln.dims<[batch]>>
  %13 = kiln.or %c, %8 : (tensor<?x8xi1, #kiln.dims<[batch]>>, tensor<?x8xi1, #kiln.dims<[batch]>>) -> tensor<?x8xi1, #kiln.dims<[batch]>>
  %14 = kiln.not %13 : tensor<?x8xi1, #kiln.dims<[batch]>>
  // CHECK: kiln.where
  %15 = kiln.where %14, %a, %0 : (tensor<?x8xi1, #kiln.dims<[batch]>>, tensor<?x8xf32, #kiln.dims<[batch]>>, tensor<?x8xf32, #kiln.dims<[batch]>>) -> tensor<?x8xf32, #kiln.dims<[batch]>>
  %16 = kiln.sqrt %b : tensor<8xf32>
  %17 = kiln.reciprocal %b : tensor<8xf32>
  %18 = kiln.neg %b : tensor<8xf32>
  %19 = kiln.abs %b : tensor<8xf32>
  %20 = kiln.exp %b : tensor<8xf32>
  %21 = kiln.log %b : tensor<8xf32>
  %22 = kiln.tanh %b : tensor<8xf32>
  %23 = kiln.erf %b : tensor<8xf32>
  %24 = kiln.sigmoid %b : tensor<8xf32>
  %25 = kiln.relu %b : tensor<8xf32>
  %26 = kiln.cos %b : tensor<8xf32>
  %27 = kiln.sin %b : tensor<8xf32>
  // CHECK: kiln.gelu %{{.*}} {approximate = "tanh"} : tensor<8xf32>
  %28 = kiln.gelu %b {approximate = "tanh"} : tensor<8xf32>
  // CHECK: kiln.is_nan %{{.*}} : tensor<8xf32> -> tensor<8xi1>
  %29 = kiln.is_nan %b : tensor<8xf32> -> tensor<8xi1>
  // CHECK: kiln.cast %{{.*}} : tensor<8xf32> -> tensor<8xi64>
  %30 = kiln.cast %b : tensor<8xf32> -> tensor<8xi64>
  // CHECK: kiln.glu %{{.*}}, %{{.*}} {activation = "silu"} : tensor<8xf32>
  %31 = kiln.glu %b, %b {activation = "silu"} : tensor<8xf32>
  return
}

// CHECK-LABEL: func.func @shapes
func.func @shapes(%x: tensor<?x?x64xf32, #kiln.dims<[b, s]>>, %i: tensor<?x?xi64, #kiln.dims<[b, s]>>, %t: tensor<100x64xf32>) {
  // CHECK: kiln.shape %{{.*}} : tensor<?x?x64xf32, #kiln.dims<[b, s]>> -> tensor<3xi64>
  %s = kiln.shape %x : tensor<?x?x64xf32, #kiln.dims<[b, s]>> -> tensor<3xi64>
  // CHECK: kiln.dim %{{.*}}[1] : tensor<?x?x64xf32, #kiln.dims<[b, s]>> -> tensor<i64>
  %d = kiln.dim %x[1] : tensor<?x?x64xf32, #kiln.dims<[b, s]>> -> tensor<i64>
  %n = kiln.size %x : tensor<?x?x64xf32, #kiln.dims<[b, s]>> -> tensor<i64>
  // CHECK: kiln.reshape %{{.*}} : tensor<?x?x64xf32, #kiln.dims<[b, s]>> -> tensor<?x?x4x16xf32, #kiln.dims<[b, s]>>
  %r = kiln.reshape %x : tensor<?x?x64xf32, #kiln.dims<[b, s]>> -> tensor<?x?x4x16xf32, #kiln.dims<[b, s]>>
  // CHECK: kiln.reshape %{{.*}}, %{{.*}} : tensor<3xi64> :
  %r2 = kiln.reshape %x, %s : tensor<3xi64> : tensor<?x?x64xf32, #kiln.dims<[b, s]>> -> tensor<?x?x64xf32>
  // CHECK: kiln.transpose %{{.*}} {perm = array<i64: 0, 2, 1, 3>}
  %t2 = kiln.transpose %r {perm = array<i64: 0, 2, 1, 3>} : tensor<?x?x4x16xf32, #kiln.dims<[b, s]>> -> tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>
  // CHECK: kiln.concat {{.*}} -> tensor<?x?x64xf32, #kiln.dims<[b, 2 * s]>>
  %c = kiln.concat %x, %x {axis = 1 : i64} : (tensor<?x?x64xf32, #kiln.dims<[b, s]>>, tensor<?x?x64xf32, #kiln.dims<[b, s]>>) -> tensor<?x?x64xf32, #kiln.dims<[b, 2 * s]>>
  %p:2 = kiln.split %x {axis = 2 : i64} : tensor<?x?x64xf32, #kiln.dims<[b, s]>> -> (tensor<?x?x32xf32, #kiln.dims<[b, s]>>, tensor<?x?x32xf32, #kiln.dims<[b, s]>>)
  %st = kiln.constant dense<0> : tensor<1xi64>
  %en = kiln.constant dense<8> : tensor<1xi64>
  %sl = kiln.slice %x, %st, %en {axes = array<i64: 2>, steps = array<i64: 1>} : (tensor<?x?x64xf32, #kiln.dims<[b, s]>>, tensor<1xi64>, tensor<1xi64>) -> tensor<?x?x8xf32, #kiln.dims<[b, s]>>
  // CHECK: kiln.gather {{.*}} -> tensor<?x?x64xf32, #kiln.dims<[b, s]>>
  %e = kiln.gather %t, %i {axis = 0 : i64} : (tensor<100x64xf32>, tensor<?x?xi64, #kiln.dims<[b, s]>>) -> tensor<?x?x64xf32, #kiln.dims<[b, s]>>
  %x2 = kiln.cast %x : tensor<?x?x64xf32, #kiln.dims<[b, s]>> -> tensor<?x?x64xi64, #kiln.dims<[b, s]>>
  %ge = kiln.gather_elements %x, %x2 {axis = 2 : i64} : (tensor<?x?x64xf32, #kiln.dims<[b, s]>>, tensor<?x?x64xi64, #kiln.dims<[b, s]>>) -> tensor<?x?x64xf32, #kiln.dims<[b, s]>>
  %idx = kiln.constant dense<[[1], [2]]> : tensor<2x1xi64>
  %gn = kiln.gather_nd %t, %idx {batch_dims = 0 : i64} : (tensor<100x64xf32>, tensor<2x1xi64>) -> tensor<2x64xf32>
  %sc = kiln.scatter_nd %t, %idx, %gn : (tensor<100x64xf32>, tensor<2x1xi64>, tensor<2x64xf32>) -> tensor<100x64xf32>
  %ex = kiln.expand %x, %s : (tensor<?x?x64xf32, #kiln.dims<[b, s]>>, tensor<3xi64>) -> tensor<?x?x64xf32, #kiln.dims<[b, s]>>
  %ti = kiln.tile %x, %s : (tensor<?x?x64xf32, #kiln.dims<[b, s]>>, tensor<3xi64>) -> tensor<?x?x?xf32>
  %z = kiln.constant_of_shape %s {value = 0.0 : f32} : (tensor<3xi64>) -> tensor<?x?x?xf32>
  %zero = kiln.constant dense<0> : tensor<i64>
  %one = kiln.constant dense<1> : tensor<i64>
  // CHECK: kiln.range {{.*}} -> tensor<?xi64, #kiln.dims<[s]>>
  %ra = kiln.range %zero, %d, %one : (tensor<i64>, tensor<i64>, tensor<i64>) -> tensor<?xi64, #kiln.dims<[s]>>
  %tr = kiln.trilu %t {upper} : (tensor<100x64xf32>) -> tensor<100x64xf32>
  %tr2 = kiln.trilu %t, %one : (tensor<100x64xf32>, tensor<i64>) -> tensor<100x64xf32>
  return
}

// CHECK-LABEL: func.func @reductions_and_norms
func.func @reductions_and_norms(%x: tensor<?x?x64xf32, #kiln.dims<[b, s]>>, %g: tensor<64xf32>) {
  // CHECK: kiln.reduce_mean %{{.*}} {axes = array<i64: 2>, keepdims}
  %m = kiln.reduce_mean %x {axes = array<i64: 2>, keepdims} : tensor<?x?x64xf32, #kiln.dims<[b, s]>> -> tensor<?x?x1xf32, #kiln.dims<[b, s]>>
  %su = kiln.reduce_sum %x {axes = array<i64: 1, 2>} : tensor<?x?x64xf32, #kiln.dims<[b, s]>> -> tensor<?xf32, #kiln.dims<[b]>>
  %mx = kiln.reduce_max %x {axes = array<i64>} : tensor<?x?x64xf32, #kiln.dims<[b, s]>> -> tensor<f32>
  %am = kiln.argmax %x {axis = 2 : i64} : tensor<?x?x64xf32, #kiln.dims<[b, s]>> -> tensor<?x?xi64, #kiln.dims<[b, s]>>
  %sm = kiln.softmax %x {axis = 2 : i64} : tensor<?x?x64xf32, #kiln.dims<[b, s]>>
  %ls = kiln.log_softmax %x {axis = 2 : i64} : tensor<?x?x64xf32, #kiln.dims<[b, s]>>
  // CHECK: kiln.rms_norm %{{.*}}, %{{.*}} {axis = 2 : i64, epsilon = 9.99999974E-6 : f32}
  %rn = kiln.rms_norm %x, %g {axis = 2 : i64, epsilon = 1.0e-05 : f32} : (tensor<?x?x64xf32, #kiln.dims<[b, s]>>, tensor<64xf32>) -> tensor<?x?x64xf32, #kiln.dims<[b, s]>>
  %ln = kiln.layer_norm %x, %g, %g {axis = 2 : i64, epsilon = 1.0e-05 : f32} : (tensor<?x?x64xf32, #kiln.dims<[b, s]>>, tensor<64xf32>, tensor<64xf32>) -> tensor<?x?x64xf32, #kiln.dims<[b, s]>>
  %ln2 = kiln.layer_norm %x, %g {axis = 2 : i64, epsilon = 1.0e-05 : f32} : (tensor<?x?x64xf32, #kiln.dims<[b, s]>>, tensor<64xf32>) -> tensor<?x?x64xf32, #kiln.dims<[b, s]>>
  return
}

// CHECK-LABEL: func.func @blocks
func.func @blocks(%a: tensor<?x?x64xf32, #kiln.dims<[b, s]>>,
                  %q: tensor<?x6x?x16xf32, #kiln.dims<[b, s]>>,
                  %k: tensor<?x2x?x16xf32, #kiln.dims<[b, past + s]>>,
                  %cos: tensor<128x8xf32>, %pos: tensor<?x?xi64, #kiln.dims<[b, s]>>,
                  %pos1: tensor<1x?xi64, #kiln.dims<[s]>>,
                  %lens: tensor<?xi64, #kiln.dims<[b]>>,
                  %cache: !kiln.kv_cache<layers = 2, heads = 2, head_dim = 16, block = 16, f32>,
                  %kt: tensor<?x2x16xf32, #kiln.dims<[t]>>, %slots: tensor<?xi64, #kiln.dims<[t]>>,
                  %tables: tensor<?x?xi32>, %ctx: tensor<?xi32>) {
  %w = kiln.weight @w : tensor<4x8xf32>
  %qw = kiln.weight @q : !kiln.qtensor<8x64, #kiln.quant<u4, group = 32, axis = 1, scale = f32, zero_point = int>>
  // CHECK: kiln.dequantize %{{.*}} : !kiln.qtensor<8x64, #kiln.quant<u4, group = 32, axis = 1, scale = f32, zero_point = int>> -> tensor<8x64xf32>
  %dq = kiln.dequantize %qw : !kiln.qtensor<8x64, #kiln.quant<u4, group = 32, axis = 1, scale = f32, zero_point = int>> -> tensor<8x64xf32>
  %dqt = kiln.transpose %dq {perm = array<i64: 1, 0>} : tensor<8x64xf32> -> tensor<64x8xf32>
  // CHECK: kiln.matmul {{.*}} -> tensor<?x?x8xf32, #kiln.dims<[b, s]>>
  %mm = kiln.matmul %a, %dqt : (tensor<?x?x64xf32, #kiln.dims<[b, s]>>, tensor<64x8xf32>) -> tensor<?x?x8xf32, #kiln.dims<[b, s]>>
  // The default accuracy_level (0) is not printed; others are.
  // CHECK: kiln.matmul %{{.*}}, %{{.*}} : (tensor<?x?x64xf32
  %mm0 = kiln.matmul %a, %dqt {accuracy_level = 0 : i64} : (tensor<?x?x64xf32, #kiln.dims<[b, s]>>, tensor<64x8xf32>) -> tensor<?x?x8xf32, #kiln.dims<[b, s]>>
  // CHECK: kiln.matmul %{{.*}}, %{{.*}} {accuracy_level = 4 : i64} : (tensor<?x?x64xf32
  %mm4 = kiln.matmul %a, %dqt {accuracy_level = 4 : i64} : (tensor<?x?x64xf32, #kiln.dims<[b, s]>>, tensor<64x8xf32>) -> tensor<?x?x8xf32, #kiln.dims<[b, s]>>
  %sc = kiln.constant dense<5.000000e-01> : tensor<f32>
  %qi = kiln.quantize_linear %mm, %sc {axis = 0 : i64, block_size = 0 : i64} : (tensor<?x?x8xf32, #kiln.dims<[b, s]>>, tensor<f32>) -> tensor<?x?x8xi8, #kiln.dims<[b, s]>>
  %dl = kiln.dequantize_linear %qi, %sc {axis = 0 : i64, block_size = 0 : i64} : (tensor<?x?x8xi8, #kiln.dims<[b, s]>>, tensor<f32>) -> tensor<?x?x8xf32, #kiln.dims<[b, s]>>
  // CHECK: kiln.rotary {{.*}} {rotary_dim = 16 : i64}
  %rq = kiln.rotary %q, %cos, %cos, %pos {rotary_dim = 16 : i64} : (tensor<?x6x?x16xf32, #kiln.dims<[b, s]>>, tensor<128x8xf32>, tensor<128x8xf32>, tensor<?x?xi64, #kiln.dims<[b, s]>>) -> tensor<?x6x?x16xf32, #kiln.dims<[b, s]>>
  // Per-token angles: no positions operand.
  // CHECK: kiln.rotary %{{[^,]+}}, %{{[^,]+}}, %{{[^,]+}} {interleaved, rotary_dim = 16 : i64} : (tensor<?x6x?x16xf32, #kiln.dims<[b, s]>>, tensor<1x?x8xf32, #kiln.dims<[s]>>, tensor<1x?x8xf32, #kiln.dims<[s]>>) -> tensor<?x6x?x16xf32, #kiln.dims<[b, s]>>
  %tc = kiln.gather %cos, %pos1 {axis = 0 : i64} : (tensor<128x8xf32>, tensor<1x?xi64, #kiln.dims<[s]>>) -> tensor<1x?x8xf32, #kiln.dims<[s]>>
  %rt = kiln.rotary %q, %tc, %tc {interleaved, rotary_dim = 16 : i64} : (tensor<?x6x?x16xf32, #kiln.dims<[b, s]>>, tensor<1x?x8xf32, #kiln.dims<[s]>>, tensor<1x?x8xf32, #kiln.dims<[s]>>) -> tensor<?x6x?x16xf32, #kiln.dims<[b, s]>>
  // CHECK: kiln.attention %{{.*}}, %{{.*}}, %{{.*}} key_lengths(%{{.*}}) {causal, scale = 2.500000e-01 : f32}
  %o = kiln.attention %rq, %k, %k key_lengths(%lens) {causal, scale = 0.25 : f32} : (tensor<?x6x?x16xf32, #kiln.dims<[b, s]>>, tensor<?x2x?x16xf32, #kiln.dims<[b, past + s]>>, tensor<?x2x?x16xf32, #kiln.dims<[b, past + s]>>, tensor<?xi64, #kiln.dims<[b]>>) -> tensor<?x6x?x16xf32, #kiln.dims<[b, s]>>
  // CHECK: kiln.kv_cache_write
  kiln.kv_cache_write %cache, %kt, %kt, %slots {layer = 1 : i64} : !kiln.kv_cache<layers = 2, heads = 2, head_dim = 16, block = 16, f32>, tensor<?x2x16xf32, #kiln.dims<[t]>>, tensor<?x2x16xf32, #kiln.dims<[t]>>, tensor<?xi64, #kiln.dims<[t]>>
  // CHECK: kiln.kv_cache_read
  %ck, %cv = kiln.kv_cache_read %cache, %tables, %ctx {layer = 0 : i64} : !kiln.kv_cache<layers = 2, heads = 2, head_dim = 16, block = 16, f32>, tensor<?x?xi32>, tensor<?xi32> -> tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>
  return
}
