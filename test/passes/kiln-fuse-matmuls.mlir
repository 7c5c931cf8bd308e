// RUN: kiln-opt %s --split-input-file --kiln-fuse-matmuls | FileCheck %s

// Q, K and V projections of one activation: one matmul on the weights
// joined along N (a global listing the three blobs, in order), split back
// into the three results; the pieces' globals are gone.
// CHECK-LABEL: module
// CHECK-NOT: kiln.global @q
// CHECK: kiln.global @"q+k+v" : tensor<8x16xf32> [#kiln.blob<"w.bin", offset = 0, size = 256>, #kiln.blob<"w.bin", offset = 256, size = 128>, #kiln.blob<"w.bin", offset = 384, size = 128>] {kiln.parts = array<i64: 8, 4, 4>}
// CHECK-NOT: kiln.global @q
// CHECK-NOT: kiln.global @k
// CHECK-NOT: kiln.global @v
// CHECK-LABEL: func.func @main
// CHECK-SAME: (%[[X:.+]]: tensor<1x?x8xf32
// CHECK: %[[W:.+]] = kiln.weight @"q+k+v" : tensor<8x16xf32>
// CHECK: %[[QKV:.+]] = kiln.matmul %[[X]], %[[W]] : (tensor<1x?x8xf32, #kiln.dims<[tokens]>>, tensor<8x16xf32>) -> tensor<1x?x16xf32, #kiln.dims<[tokens]>>
// CHECK: %[[S:.+]]:3 = kiln.split %[[QKV]] {axis = 2 : i64} : tensor<1x?x16xf32, #kiln.dims<[tokens]>> -> (tensor<1x?x8xf32, #kiln.dims<[tokens]>>, tensor<1x?x4xf32, #kiln.dims<[tokens]>>, tensor<1x?x4xf32, #kiln.dims<[tokens]>>)
// CHECK-NOT: kiln.matmul
// CHECK: return %[[S]]#0, %[[S]]#1, %[[S]]#2
module {
  kiln.global @q : tensor<8x8xf32> [#kiln.blob<"w.bin", offset = 0, size = 256>]
  kiln.global @k : tensor<8x4xf32> [#kiln.blob<"w.bin", offset = 256, size = 128>]
  kiln.global @v : tensor<8x4xf32> [#kiln.blob<"w.bin", offset = 384, size = 128>]
  func.func @main(%x: tensor<1x?x8xf32, #kiln.dims<[tokens]>>) -> (tensor<1x?x8xf32, #kiln.dims<[tokens]>>, tensor<1x?x4xf32, #kiln.dims<[tokens]>>, tensor<1x?x4xf32, #kiln.dims<[tokens]>>) {
    %wq = kiln.weight @q : tensor<8x8xf32>
    %q = kiln.matmul %x, %wq : (tensor<1x?x8xf32, #kiln.dims<[tokens]>>, tensor<8x8xf32>) -> tensor<1x?x8xf32, #kiln.dims<[tokens]>>
    %wk = kiln.weight @k : tensor<8x4xf32>
    %k = kiln.matmul %x, %wk : (tensor<1x?x8xf32, #kiln.dims<[tokens]>>, tensor<8x4xf32>) -> tensor<1x?x4xf32, #kiln.dims<[tokens]>>
    %wv = kiln.weight @v : tensor<8x4xf32>
    %v = kiln.matmul %x, %wv : (tensor<1x?x8xf32, #kiln.dims<[tokens]>>, tensor<8x4xf32>) -> tensor<1x?x4xf32, #kiln.dims<[tokens]>>
    return %q, %k, %v : tensor<1x?x8xf32, #kiln.dims<[tokens]>>, tensor<1x?x4xf32, #kiln.dims<[tokens]>>, tensor<1x?x4xf32, #kiln.dims<[tokens]>>
  }
}

// -----

// Gate and up projections of a gated MLP, with a user of the gate between
// the two matmuls: the joined matmul takes the gate's place (before that
// user), so nothing moves. The down projection reads another activation.
// CHECK-LABEL: module
// CHECK: kiln.global @"gate+up" : tensor<8x32xf32> {{.*}} {kiln.parts = array<i64: 16, 16>}
// CHECK: kiln.global @down : tensor<16x8xf32>
// CHECK-LABEL: func.func @main
// CHECK-SAME: (%[[X:.+]]: tensor<1x?x8xf32
// CHECK: %[[W:.+]] = kiln.weight @"gate+up"
// CHECK: %[[GU:.+]] = kiln.matmul %[[X]], %[[W]]
// CHECK: %[[S:.+]]:2 = kiln.split %[[GU]] {axis = 2 : i64}
// CHECK: %[[ACT:.+]] = kiln.sigmoid %[[S]]#0
// CHECK: %[[H:.+]] = kiln.mul %[[ACT]], %[[S]]#1
// CHECK: %[[D:.+]] = kiln.weight @down
// CHECK: kiln.matmul %[[H]], %[[D]]
module {
  kiln.global @gate : tensor<8x16xf32> [#kiln.blob<"w.bin", offset = 0, size = 512>]
  kiln.global @up : tensor<8x16xf32> [#kiln.blob<"w.bin", offset = 512, size = 512>]
  kiln.global @down : tensor<16x8xf32> [#kiln.blob<"w.bin", offset = 1024, size = 512>]
  func.func @main(%x: tensor<1x?x8xf32, #kiln.dims<[tokens]>>) -> tensor<1x?x8xf32, #kiln.dims<[tokens]>> {
    %wg = kiln.weight @gate : tensor<8x16xf32>
    %g = kiln.matmul %x, %wg : (tensor<1x?x8xf32, #kiln.dims<[tokens]>>, tensor<8x16xf32>) -> tensor<1x?x16xf32, #kiln.dims<[tokens]>>
    %a = kiln.sigmoid %g : tensor<1x?x16xf32, #kiln.dims<[tokens]>>
    %wu = kiln.weight @up : tensor<8x16xf32>
    %u = kiln.matmul %x, %wu : (tensor<1x?x8xf32, #kiln.dims<[tokens]>>, tensor<8x16xf32>) -> tensor<1x?x16xf32, #kiln.dims<[tokens]>>
    %h = kiln.mul %a, %u : (tensor<1x?x16xf32, #kiln.dims<[tokens]>>, tensor<1x?x16xf32, #kiln.dims<[tokens]>>) -> tensor<1x?x16xf32, #kiln.dims<[tokens]>>
    %wd = kiln.weight @down : tensor<16x8xf32>
    %y = kiln.matmul %h, %wd : (tensor<1x?x16xf32, #kiln.dims<[tokens]>>, tensor<16x8xf32>) -> tensor<1x?x8xf32, #kiln.dims<[tokens]>>
    return %y : tensor<1x?x8xf32, #kiln.dims<[tokens]>>
  }
}

// -----

// MatMulNBits-style projections (4-bit, groups of 32, stored zero points,
// accuracy_level 4): packed data, scales and zero points joined along N,
// component by component, and dequantized once.
// CHECK-LABEL: module
// CHECK: kiln.global @"gq+uq" : !kiln.qtensor<64x64, #kiln.quant<u4, group = 32, axis = 1, scale = f32, zero_point = int>> [#kiln.blob<"w.bin", offset = 0, size = 1024>, #kiln.blob<"w.bin", offset = 1024, size = 1024>, #kiln.blob<"w.bin", offset = 2048, size = 256>, #kiln.blob<"w.bin", offset = 2304, size = 256>, #kiln.blob<"w.bin", offset = 2560, size = 32>, #kiln.blob<"w.bin", offset = 2592, size = 32>] {kiln.parts = array<i64: 32, 32>}
// CHECK-LABEL: func.func @main
// CHECK-SAME: (%[[X:.+]]: tensor<1x?x64xf32
// CHECK: %[[W:.+]] = kiln.weight @"gq+uq" : !kiln.qtensor<64x64, #kiln.quant<u4, group = 32, axis = 1, scale = f32, zero_point = int>>
// CHECK: %[[D:.+]] = kiln.dequantize %[[W]] : !kiln.qtensor<64x64, #kiln.quant<u4, group = 32, axis = 1, scale = f32, zero_point = int>> -> tensor<64x64xf32>
// CHECK: %[[T:.+]] = kiln.transpose %[[D]] {perm = array<i64: 1, 0>} : tensor<64x64xf32> -> tensor<64x64xf32>
// CHECK: %[[GU:.+]] = kiln.matmul %[[X]], %[[T]] {accuracy_level = 4 : i64} : (tensor<1x?x64xf32, #kiln.dims<[tokens]>>, tensor<64x64xf32>) -> tensor<1x?x64xf32, #kiln.dims<[tokens]>>
// CHECK: %[[S:.+]]:2 = kiln.split %[[GU]] {axis = 2 : i64} : tensor<1x?x64xf32, #kiln.dims<[tokens]>> -> (tensor<1x?x32xf32, #kiln.dims<[tokens]>>, tensor<1x?x32xf32, #kiln.dims<[tokens]>>)
// CHECK-NOT: kiln.matmul
// CHECK: return %[[S]]#0, %[[S]]#1
module {
  kiln.global @gq : !kiln.qtensor<32x64, #kiln.quant<u4, group = 32, axis = 1, scale = f32, zero_point = int>> [#kiln.blob<"w.bin", offset = 0, size = 1024>, #kiln.blob<"w.bin", offset = 2048, size = 256>, #kiln.blob<"w.bin", offset = 2560, size = 32>]
  kiln.global @uq : !kiln.qtensor<32x64, #kiln.quant<u4, group = 32, axis = 1, scale = f32, zero_point = int>> [#kiln.blob<"w.bin", offset = 1024, size = 1024>, #kiln.blob<"w.bin", offset = 2304, size = 256>, #kiln.blob<"w.bin", offset = 2592, size = 32>]
  func.func @main(%x: tensor<1x?x64xf32, #kiln.dims<[tokens]>>) -> (tensor<1x?x32xf32, #kiln.dims<[tokens]>>, tensor<1x?x32xf32, #kiln.dims<[tokens]>>) {
    %w1 = kiln.weight @gq : !kiln.qtensor<32x64, #kiln.quant<u4, group = 32, axis = 1, scale = f32, zero_point = int>>
    %d1 = kiln.dequantize %w1 : !kiln.qtensor<32x64, #kiln.quant<u4, group = 32, axis = 1, scale = f32, zero_point = int>> -> tensor<32x64xf32>
    %t1 = kiln.transpose %d1 {perm = array<i64: 1, 0>} : tensor<32x64xf32> -> tensor<64x32xf32>
    %y1 = kiln.matmul %x, %t1 {accuracy_level = 4 : i64} : (tensor<1x?x64xf32, #kiln.dims<[tokens]>>, tensor<64x32xf32>) -> tensor<1x?x32xf32, #kiln.dims<[tokens]>>
    %w2 = kiln.weight @uq : !kiln.qtensor<32x64, #kiln.quant<u4, group = 32, axis = 1, scale = f32, zero_point = int>>
    %d2 = kiln.dequantize %w2 : !kiln.qtensor<32x64, #kiln.quant<u4, group = 32, axis = 1, scale = f32, zero_point = int>> -> tensor<32x64xf32>
    %t2 = kiln.transpose %d2 {perm = array<i64: 1, 0>} : tensor<32x64xf32> -> tensor<64x32xf32>
    %y2 = kiln.matmul %x, %t2 {accuracy_level = 4 : i64} : (tensor<1x?x64xf32, #kiln.dims<[tokens]>>, tensor<64x32xf32>) -> tensor<1x?x32xf32, #kiln.dims<[tokens]>>
    return %y1, %y2 : tensor<1x?x32xf32, #kiln.dims<[tokens]>>, tensor<1x?x32xf32, #kiln.dims<[tokens]>>
  }
}

// -----

// Quantized matmuls that must not fuse: a different group size, zero
// points stored in one and implied in the other, a different
// accuracy_level, and pieces whose rows are no whole number of the
// kernels' 32-row units.
// CHECK-LABEL: module
// CHECK-NOT: kiln.parts
// CHECK-COUNT-8: kiln.matmul
// CHECK-NOT: kiln.split
module {
  kiln.global @a : !kiln.qtensor<32x64, #kiln.quant<u4, group = 32, axis = 1, scale = f32, zero_point = int>> [#kiln.blob<"w.bin", offset = 0, size = 1024>, #kiln.blob<"w.bin", offset = 1024, size = 256>, #kiln.blob<"w.bin", offset = 1280, size = 32>]
  kiln.global @b : !kiln.qtensor<32x64, #kiln.quant<u4, group = 16, axis = 1, scale = f32, zero_point = int>> [#kiln.blob<"w.bin", offset = 0, size = 1024>, #kiln.blob<"w.bin", offset = 1024, size = 512>, #kiln.blob<"w.bin", offset = 1536, size = 64>]
  kiln.global @c : !kiln.qtensor<32x64, #kiln.quant<u4, group = 32, axis = 1, scale = f32, zero_point = int>> [#kiln.blob<"w.bin", offset = 0, size = 1024>, #kiln.blob<"w.bin", offset = 1024, size = 256>, #kiln.blob<"w.bin", offset = 1280, size = 32>]
  kiln.global @d : !kiln.qtensor<32x64, #kiln.quant<u4, group = 32, axis = 1, scale = f32, zero_point = mid>> [#kiln.blob<"w.bin", offset = 0, size = 1024>, #kiln.blob<"w.bin", offset = 1024, size = 256>]
  kiln.global @e : !kiln.qtensor<32x64, #kiln.quant<u4, group = 32, axis = 1, scale = f32, zero_point = int>> [#kiln.blob<"w.bin", offset = 0, size = 1024>, #kiln.blob<"w.bin", offset = 1024, size = 256>, #kiln.blob<"w.bin", offset = 1280, size = 32>]
  kiln.global @f : !kiln.qtensor<32x64, #kiln.quant<u4, group = 32, axis = 1, scale = f32, zero_point = int>> [#kiln.blob<"w.bin", offset = 0, size = 1024>, #kiln.blob<"w.bin", offset = 1024, size = 256>, #kiln.blob<"w.bin", offset = 1280, size = 32>]
  kiln.global @g : !kiln.qtensor<16x64, #kiln.quant<u4, group = 32, axis = 1, scale = f32, zero_point = int>> [#kiln.blob<"w.bin", offset = 0, size = 512>, #kiln.blob<"w.bin", offset = 1024, size = 128>, #kiln.blob<"w.bin", offset = 1280, size = 16>]
  kiln.global @h : !kiln.qtensor<16x64, #kiln.quant<u4, group = 32, axis = 1, scale = f32, zero_point = int>> [#kiln.blob<"w.bin", offset = 0, size = 512>, #kiln.blob<"w.bin", offset = 1024, size = 128>, #kiln.blob<"w.bin", offset = 1280, size = 16>]
  func.func @main(%x: tensor<1x?x64xf32, #kiln.dims<[tokens]>>, %x1: tensor<1x?x64xf32, #kiln.dims<[tokens]>>, %x2: tensor<1x?x64xf32, #kiln.dims<[tokens]>>, %x3: tensor<1x?x64xf32, #kiln.dims<[tokens]>>) -> (tensor<1x?x32xf32, #kiln.dims<[tokens]>>, tensor<1x?x32xf32, #kiln.dims<[tokens]>>, tensor<1x?x32xf32, #kiln.dims<[tokens]>>, tensor<1x?x32xf32, #kiln.dims<[tokens]>>, tensor<1x?x32xf32, #kiln.dims<[tokens]>>, tensor<1x?x32xf32, #kiln.dims<[tokens]>>, tensor<1x?x16xf32, #kiln.dims<[tokens]>>, tensor<1x?x16xf32, #kiln.dims<[tokens]>>) {
    %w1 = kiln.weight @a : !kiln.qtensor<32x64, #kiln.quant<u4, group = 32, axis = 1, scale = f32, zero_point = int>>
    %d1 = kiln.dequantize %w1 : !kiln.qtensor<32x64, #kiln.quant<u4, group = 32, axis = 1, scale = f32, zero_point = int>> -> tensor<32x64xf32>
    %t1 = kiln.transpose %d1 {perm = array<i64: 1, 0>} : tensor<32x64xf32> -> tensor<64x32xf32>
    %y1 = kiln.matmul %x, %t1 {accuracy_level = 4 : i64} : (tensor<1x?x64xf32, #kiln.dims<[tokens]>>, tensor<64x32xf32>) -> tensor<1x?x32xf32, #kiln.dims<[tokens]>>
    %w2 = kiln.weight @b : !kiln.qtensor<32x64, #kiln.quant<u4, group = 16, axis = 1, scale = f32, zero_point = int>>
    %d2 = kiln.dequantize %w2 : !kiln.qtensor<32x64, #kiln.quant<u4, group = 16, axis = 1, scale = f32, zero_point = int>> -> tensor<32x64xf32>
    %t2 = kiln.transpose %d2 {perm = array<i64: 1, 0>} : tensor<32x64xf32> -> tensor<64x32xf32>
    %y2 = kiln.matmul %x, %t2 {accuracy_level = 4 : i64} : (tensor<1x?x64xf32, #kiln.dims<[tokens]>>, tensor<64x32xf32>) -> tensor<1x?x32xf32, #kiln.dims<[tokens]>>
    %w3 = kiln.weight @c : !kiln.qtensor<32x64, #kiln.quant<u4, group = 32, axis = 1, scale = f32, zero_point = int>>
    %d3 = kiln.dequantize %w3 : !kiln.qtensor<32x64, #kiln.quant<u4, group = 32, axis = 1, scale = f32, zero_point = int>> -> tensor<32x64xf32>
    %t3 = kiln.transpose %d3 {perm = array<i64: 1, 0>} : tensor<32x64xf32> -> tensor<64x32xf32>
    %y3 = kiln.matmul %x1, %t3 {accuracy_level = 4 : i64} : (tensor<1x?x64xf32, #kiln.dims<[tokens]>>, tensor<64x32xf32>) -> tensor<1x?x32xf32, #kiln.dims<[tokens]>>
    %w4 = kiln.weight @d : !kiln.qtensor<32x64, #kiln.quant<u4, group = 32, axis = 1, scale = f32, zero_point = mid>>
    %d4 = kiln.dequantize %w4 : !kiln.qtensor<32x64, #kiln.quant<u4, group = 32, axis = 1, scale = f32, zero_point = mid>> -> tensor<32x64xf32>
    %t4 = kiln.transpose %d4 {perm = array<i64: 1, 0>} : tensor<32x64xf32> -> tensor<64x32xf32>
    %y4 = kiln.matmul %x1, %t4 {accuracy_level = 4 : i64} : (tensor<1x?x64xf32, #kiln.dims<[tokens]>>, tensor<64x32xf32>) -> tensor<1x?x32xf32, #kiln.dims<[tokens]>>
    %w5 = kiln.weight @e : !kiln.qtensor<32x64, #kiln.quant<u4, group = 32, axis = 1, scale = f32, zero_point = int>>
    %d5 = kiln.dequantize %w5 : !kiln.qtensor<32x64, #kiln.quant<u4, group = 32, axis = 1, scale = f32, zero_point = int>> -> tensor<32x64xf32>
    %t5 = kiln.transpose %d5 {perm = array<i64: 1, 0>} : tensor<32x64xf32> -> tensor<64x32xf32>
    %y5 = kiln.matmul %x2, %t5 {accuracy_level = 4 : i64} : (tensor<1x?x64xf32, #kiln.dims<[tokens]>>, tensor<64x32xf32>) -> tensor<1x?x32xf32, #kiln.dims<[tokens]>>
    %w6 = kiln.weight @f : !kiln.qtensor<32x64, #kiln.quant<u4, group = 32, axis = 1, scale = f32, zero_point = int>>
    %d6 = kiln.dequantize %w6 : !kiln.qtensor<32x64, #kiln.quant<u4, group = 32, axis = 1, scale = f32, zero_point = int>> -> tensor<32x64xf32>
    %t6 = kiln.transpose %d6 {perm = array<i64: 1, 0>} : tensor<32x64xf32> -> tensor<64x32xf32>
    %y6 = kiln.matmul %x2, %t6 {accuracy_level = 0 : i64} : (tensor<1x?x64xf32, #kiln.dims<[tokens]>>, tensor<64x32xf32>) -> tensor<1x?x32xf32, #kiln.dims<[tokens]>>
    %w7 = kiln.weight @g : !kiln.qtensor<16x64, #kiln.quant<u4, group = 32, axis = 1, scale = f32, zero_point = int>>
    %d7 = kiln.dequantize %w7 : !kiln.qtensor<16x64, #kiln.quant<u4, group = 32, axis = 1, scale = f32, zero_point = int>> -> tensor<16x64xf32>
    %t7 = kiln.transpose %d7 {perm = array<i64: 1, 0>} : tensor<16x64xf32> -> tensor<64x16xf32>
    %y7 = kiln.matmul %x3, %t7 {accuracy_level = 4 : i64} : (tensor<1x?x64xf32, #kiln.dims<[tokens]>>, tensor<64x16xf32>) -> tensor<1x?x16xf32, #kiln.dims<[tokens]>>
    %w8 = kiln.weight @h : !kiln.qtensor<16x64, #kiln.quant<u4, group = 32, axis = 1, scale = f32, zero_point = int>>
    %d8 = kiln.dequantize %w8 : !kiln.qtensor<16x64, #kiln.quant<u4, group = 32, axis = 1, scale = f32, zero_point = int>> -> tensor<16x64xf32>
    %t8 = kiln.transpose %d8 {perm = array<i64: 1, 0>} : tensor<16x64xf32> -> tensor<64x16xf32>
    %y8 = kiln.matmul %x3, %t8 {accuracy_level = 4 : i64} : (tensor<1x?x64xf32, #kiln.dims<[tokens]>>, tensor<64x16xf32>) -> tensor<1x?x16xf32, #kiln.dims<[tokens]>>
    return %y1, %y2, %y3, %y4, %y5, %y6, %y7, %y8 : tensor<1x?x32xf32, #kiln.dims<[tokens]>>, tensor<1x?x32xf32, #kiln.dims<[tokens]>>, tensor<1x?x32xf32, #kiln.dims<[tokens]>>, tensor<1x?x32xf32, #kiln.dims<[tokens]>>, tensor<1x?x32xf32, #kiln.dims<[tokens]>>, tensor<1x?x32xf32, #kiln.dims<[tokens]>>, tensor<1x?x16xf32, #kiln.dims<[tokens]>>, tensor<1x?x16xf32, #kiln.dims<[tokens]>>
  }
}

// -----

// Matmuls that must not fuse: a weight also read by another op, a weight
// already placed in the weights file, a transposed weight (a tied output
// projection), a right-hand side that is no weight (an argument), and
// matmuls of different activations. Each activation then has one
// fusable matmul at most.
// CHECK-LABEL: module
// CHECK-NOT: kiln.parts
// CHECK-COUNT-9: kiln.matmul
// CHECK-NOT: kiln.split
module {
  kiln.global @a : tensor<8x8xf32> [#kiln.blob<"w.bin", offset = 0, size = 256>]
  kiln.global @d : tensor<8x8xf32> [#kiln.blob<"w.bin", offset = 256, size = 256>]
  kiln.global @placed : tensor<8x8xf32> [#kiln.blob<"w.bin", offset = 512, size = 256>] {kiln.offset = 4096 : i64}
  kiln.global @b : tensor<8x8xf32> [#kiln.blob<"w.bin", offset = 768, size = 256>]
  kiln.global @tied : tensor<8x8xf32> [#kiln.blob<"w.bin", offset = 1024, size = 256>]
  kiln.global @c : tensor<8x8xf32> [#kiln.blob<"w.bin", offset = 1280, size = 256>]
  kiln.global @e : tensor<8x8xf32> [#kiln.blob<"w.bin", offset = 1536, size = 256>]
  kiln.global @f : tensor<8x8xf32> [#kiln.blob<"w.bin", offset = 1792, size = 256>]
  func.func @main(%x: tensor<1x?x8xf32, #kiln.dims<[tokens]>>, %y: tensor<1x?x8xf32, #kiln.dims<[tokens]>>, %z: tensor<1x?x8xf32, #kiln.dims<[tokens]>>, %r: tensor<8x8xf32>, %v1: tensor<1x?x8xf32, #kiln.dims<[tokens]>>, %v2: tensor<1x?x8xf32, #kiln.dims<[tokens]>>) -> (tensor<1x?x8xf32, #kiln.dims<[tokens]>>, tensor<1x?x8xf32, #kiln.dims<[tokens]>>, tensor<8x8xf32>, tensor<1x?x8xf32, #kiln.dims<[tokens]>>, tensor<1x?x8xf32, #kiln.dims<[tokens]>>, tensor<1x?x8xf32, #kiln.dims<[tokens]>>, tensor<1x?x8xf32, #kiln.dims<[tokens]>>, tensor<1x?x8xf32, #kiln.dims<[tokens]>>, tensor<1x?x8xf32, #kiln.dims<[tokens]>>, tensor<1x?x8xf32, #kiln.dims<[tokens]>>) {
    %wa = kiln.weight @a : tensor<8x8xf32>
    %0 = kiln.matmul %x, %wa : (tensor<1x?x8xf32, #kiln.dims<[tokens]>>, tensor<8x8xf32>) -> tensor<1x?x8xf32, #kiln.dims<[tokens]>>
    %wd = kiln.weight @d : tensor<8x8xf32>
    %1 = kiln.matmul %x, %wd : (tensor<1x?x8xf32, #kiln.dims<[tokens]>>, tensor<8x8xf32>) -> tensor<1x?x8xf32, #kiln.dims<[tokens]>>
    %dd = kiln.add %wd, %wd : (tensor<8x8xf32>, tensor<8x8xf32>) -> tensor<8x8xf32>
    %wp = kiln.weight @placed : tensor<8x8xf32>
    %2 = kiln.matmul %x, %wp : (tensor<1x?x8xf32, #kiln.dims<[tokens]>>, tensor<8x8xf32>) -> tensor<1x?x8xf32, #kiln.dims<[tokens]>>
    %wb = kiln.weight @b : tensor<8x8xf32>
    %3 = kiln.matmul %y, %wb : (tensor<1x?x8xf32, #kiln.dims<[tokens]>>, tensor<8x8xf32>) -> tensor<1x?x8xf32, #kiln.dims<[tokens]>>
    %wt = kiln.weight @tied : tensor<8x8xf32>
    %tt = kiln.transpose %wt {perm = array<i64: 1, 0>} : tensor<8x8xf32> -> tensor<8x8xf32>
    %4 = kiln.matmul %y, %tt : (tensor<1x?x8xf32, #kiln.dims<[tokens]>>, tensor<8x8xf32>) -> tensor<1x?x8xf32, #kiln.dims<[tokens]>>
    %wc = kiln.weight @c : tensor<8x8xf32>
    %5 = kiln.matmul %z, %wc : (tensor<1x?x8xf32, #kiln.dims<[tokens]>>, tensor<8x8xf32>) -> tensor<1x?x8xf32, #kiln.dims<[tokens]>>
    %6 = kiln.matmul %z, %r : (tensor<1x?x8xf32, #kiln.dims<[tokens]>>, tensor<8x8xf32>) -> tensor<1x?x8xf32, #kiln.dims<[tokens]>>
    %we = kiln.weight @e : tensor<8x8xf32>
    %7 = kiln.matmul %v1, %we : (tensor<1x?x8xf32, #kiln.dims<[tokens]>>, tensor<8x8xf32>) -> tensor<1x?x8xf32, #kiln.dims<[tokens]>>
    %wf = kiln.weight @f : tensor<8x8xf32>
    %8 = kiln.matmul %v2, %wf : (tensor<1x?x8xf32, #kiln.dims<[tokens]>>, tensor<8x8xf32>) -> tensor<1x?x8xf32, #kiln.dims<[tokens]>>
    return %0, %1, %dd, %2, %3, %4, %5, %6, %7, %8 : tensor<1x?x8xf32, #kiln.dims<[tokens]>>, tensor<1x?x8xf32, #kiln.dims<[tokens]>>, tensor<8x8xf32>, tensor<1x?x8xf32, #kiln.dims<[tokens]>>, tensor<1x?x8xf32, #kiln.dims<[tokens]>>, tensor<1x?x8xf32, #kiln.dims<[tokens]>>, tensor<1x?x8xf32, #kiln.dims<[tokens]>>, tensor<1x?x8xf32, #kiln.dims<[tokens]>>, tensor<1x?x8xf32, #kiln.dims<[tokens]>>, tensor<1x?x8xf32, #kiln.dims<[tokens]>>
  }
}
