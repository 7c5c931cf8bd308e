// RUN: kiln-opt %s --split-input-file --kiln-cpu-pack-weights | FileCheck %s

// A [K][N] f32 weight read only as a matmul's right-hand side is stored in
// panels (test/codegen/cpu/convert-kiln-to-loops.mlir checks the call and
// offsets that follow).
// CHECK-LABEL: module
// CHECK: kiln.global @head : tensor<8x16xf32> {{.*}} {kiln.layout = "panels"}
// CHECK: kiln.global @after : tensor<8x16xf32> {{.*}} {kiln.layout = "panels"}
module {
  kiln.global @head : tensor<8x16xf32> [#kiln.blob<"w.bin", offset = 0, size = 512>]
  kiln.global @after : tensor<8x16xf32> [#kiln.blob<"w.bin", offset = 512, size = 512>]
  func.func @main(%x: tensor<1x?x8xf32, #kiln.dims<[tokens]>>) -> tensor<1x?x16xf32, #kiln.dims<[tokens]>> {
    %0 = kiln.weight @head : tensor<8x16xf32>
    %1 = kiln.matmul %x, %0 : (tensor<1x?x8xf32, #kiln.dims<[tokens]>>, tensor<8x16xf32>) -> tensor<1x?x16xf32, #kiln.dims<[tokens]>>
    %2 = kiln.weight @after : tensor<8x16xf32>
    %3 = kiln.matmul %x, %2 : (tensor<1x?x8xf32, #kiln.dims<[tokens]>>, tensor<8x16xf32>) -> tensor<1x?x16xf32, #kiln.dims<[tokens]>>
    %4 = kiln.add %1, %3 : (tensor<1x?x16xf32, #kiln.dims<[tokens]>>, tensor<1x?x16xf32, #kiln.dims<[tokens]>>) -> tensor<1x?x16xf32, #kiln.dims<[tokens]>>
    return %4 : tensor<1x?x16xf32, #kiln.dims<[tokens]>>
  }
}

// -----

// Weights read any other way keep the imported layout: a gathered table,
// a transposed right-hand side (a tied output projection), a weight that is
// also an element-wise operand, one already placed in the weights file,
// and one that is not f32.
// CHECK-LABEL: module
// CHECK-NOT: kiln.layout
module {
  kiln.global @emb : tensor<16x8xf32> [#kiln.blob<"w.bin", offset = 0, size = 512>]
  kiln.global @both : tensor<8x8xf32> [#kiln.blob<"w.bin", offset = 512, size = 256>]
  kiln.global @placed : tensor<8x8xf32> [#kiln.blob<"w.bin", offset = 768, size = 256>] {kiln.offset = 4096 : i64}
  kiln.global @half : tensor<8x8xf16> [#kiln.blob<"w.bin", offset = 1024, size = 128>]
  func.func @main(%ids: tensor<1x?xi64, #kiln.dims<[tokens]>>, %h: tensor<1x?x8xf16, #kiln.dims<[tokens]>>) -> (tensor<1x?x16xf32, #kiln.dims<[tokens]>>, tensor<1x?x8xf32, #kiln.dims<[tokens]>>, tensor<8x8xf32>, tensor<1x?x8xf32, #kiln.dims<[tokens]>>, tensor<1x?x8xf16, #kiln.dims<[tokens]>>) {
    %e = kiln.weight @emb : tensor<16x8xf32>
    %x = kiln.gather %e, %ids {axis = 0 : i64} : (tensor<16x8xf32>, tensor<1x?xi64, #kiln.dims<[tokens]>>) -> tensor<1x?x8xf32, #kiln.dims<[tokens]>>
    %et = kiln.transpose %e {perm = array<i64: 1, 0>} : tensor<16x8xf32> -> tensor<8x16xf32>
    %logits = kiln.matmul %x, %et : (tensor<1x?x8xf32, #kiln.dims<[tokens]>>, tensor<8x16xf32>) -> tensor<1x?x16xf32, #kiln.dims<[tokens]>>
    %b = kiln.weight @both : tensor<8x8xf32>
    %y = kiln.matmul %x, %b : (tensor<1x?x8xf32, #kiln.dims<[tokens]>>, tensor<8x8xf32>) -> tensor<1x?x8xf32, #kiln.dims<[tokens]>>
    %b2 = kiln.add %b, %b : (tensor<8x8xf32>, tensor<8x8xf32>) -> tensor<8x8xf32>
    %p = kiln.weight @placed : tensor<8x8xf32>
    %z = kiln.matmul %x, %p : (tensor<1x?x8xf32, #kiln.dims<[tokens]>>, tensor<8x8xf32>) -> tensor<1x?x8xf32, #kiln.dims<[tokens]>>
    %f = kiln.weight @half : tensor<8x8xf16>
    %hh = kiln.matmul %h, %f : (tensor<1x?x8xf16, #kiln.dims<[tokens]>>, tensor<8x8xf16>) -> tensor<1x?x8xf16, #kiln.dims<[tokens]>>
    return %logits, %y, %b2, %z, %hh : tensor<1x?x16xf32, #kiln.dims<[tokens]>>, tensor<1x?x8xf32, #kiln.dims<[tokens]>>, tensor<8x8xf32>, tensor<1x?x8xf32, #kiln.dims<[tokens]>>, tensor<1x?x8xf16, #kiln.dims<[tokens]>>
  }
}
